package npz_test

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/setlist/setlist/internal/npz"
)

// TestReadImplicit reads the model implicit 0.7.2 saved (the committed
// fixture): its factors and its parameters as 0-d arrays.
func TestReadImplicit(t *testing.T) {
	b, err := os.ReadFile("../pipeline/testdata/implicit-model/model.npz")
	if err != nil {
		t.Fatal(err)
	}
	f, err := npz.ReadBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	uf, err := f.Array("user_factors")
	if err != nil {
		t.Fatal(err)
	}
	if uf.Descr != "<f4" || len(uf.Shape) != 2 || uf.Shape[0] != 303 || uf.Shape[1] != 32 {
		t.Fatalf("user_factors %s %v, want <f4 [303 32]", uf.Descr, uf.Shape)
	}
	itf, _ := f.Array("item_factors")
	v, err := itf.Float32s()
	if err != nil || len(v) != 9119*32 {
		t.Fatalf("item_factors: %d values, %v", len(v), err)
	}
	for name, want := range map[string]float64{"factors": 32, "regularization": 0.05, "alpha": 1, "iterations": 15, "random_state": 7, "use_cg": 1} {
		a, err := f.Array(name)
		if err != nil {
			t.Fatal(err)
		}
		got, err := a.Float()
		if err != nil || got != want {
			t.Errorf("%s = %v (%v), want %v", name, got, err, want)
		}
	}
	dt, _ := f.Array("dtype")
	if s, err := dt.Str(); err != nil || s != "float32" {
		t.Errorf("dtype = %q, %v", s, err)
	}
	if _, err := f.Array("nope"); err == nil || !strings.Contains(err.Error(), "user_factors") {
		t.Errorf("missing array error %v does not list the arrays present", err)
	}
}

// TestRoundTrip writes every kind of array and reads it back, byte for byte,
// and checks the .npy header is the one numpy writes (64-byte aligned data).
func TestRoundTrip(t *testing.T) {
	entries := []npz.Entry{
		{Name: "m", Array: npz.Float32s([]float32{1, -2.5, 3, 4, 5, 6}, 2, 3)},
		{Name: "v", Array: npz.Float32s([]float32{7, 8}, 2)},
		{Name: "f", Array: npz.Float64(0.125)},
		{Name: "i", Array: npz.Int64(-42)},
		{Name: "b", Array: npz.Bool(true)},
		{Name: "s", Array: npz.String("float32")},
	}
	var buf bytes.Buffer
	if err := npz.Write(&buf, entries); err != nil {
		t.Fatal(err)
	}
	f, err := npz.ReadBytes(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(f.Names, ",") != "m,v,f,i,b,s" {
		t.Fatalf("names %v", f.Names)
	}
	for _, e := range entries {
		a, _ := f.Array(e.Name)
		if a.Descr != e.Array.Descr || !bytes.Equal(a.Data, e.Array.Data) || len(a.Shape) != len(e.Array.Shape) {
			t.Errorf("%s: got %s %v %x, want %s %v %x", e.Name, a.Descr, a.Shape, a.Data, e.Array.Descr, e.Array.Shape, e.Array.Data)
		}
	}
	npy, err := npz.AppendNPY(nil, npz.Float32s([]float32{1, 2}, 2))
	if err != nil {
		t.Fatal(err)
	}
	if (len(npy)-8)%64 != 0 || !strings.Contains(string(npy), "'shape': (2,), }") {
		t.Errorf("header not numpy's: %q", npy[:len(npy)-8])
	}
	if i, _ := f.Array("i"); true {
		if n, err := i.Int(); err != nil || n != -42 {
			t.Errorf("Int() = %d, %v", n, err)
		}
	}
	if s, _ := f.Array("s"); true {
		if v, err := s.Str(); err != nil || v != "float32" {
			t.Errorf("Str() = %q, %v", v, err)
		}
	}
}

// TestRefuses checks that what this package cannot read faithfully is an
// error naming the member, not a misread.
func TestRefuses(t *testing.T) {
	good, _ := npz.AppendNPY(nil, npz.Float32s([]float32{1, 2}, 2))
	cases := map[string][]byte{
		"bad magic":   append([]byte("NOTNPY"), good[6:]...),
		"fortran":     bytes.Replace(good, []byte("'fortran_order': False"), []byte("'fortran_order': True "), 1),
		"big-endian":  bytes.Replace(good, []byte("'<f4'"), []byte("'>f4'"), 1),
		"object":      bytes.Replace(good, []byte("'<f4'"), []byte("'|O8'"), 1),
		"short data":  good[:len(good)-1],
		"wrong shape": bytes.Replace(good, []byte("(2,)"), []byte("(3,)"), 1),
	}
	for name, b := range cases {
		if _, err := npz.ReadNPY(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := npz.ReadBytes([]byte("not a zip")); err == nil {
		t.Error("non-zip accepted")
	}
	if err := npz.Write(&bytes.Buffer{}, []npz.Entry{{Name: "a", Array: &npz.Array{Descr: "<f4", Shape: []int{3}, Data: make([]byte, 8)}}}); err == nil {
		t.Error("write of an array whose data does not match its shape accepted")
	}
}
