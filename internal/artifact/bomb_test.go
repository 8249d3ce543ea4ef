package artifact_test

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/artifact"
	"github.com/setlist/setlist/internal/npz"
)

// bombNPZ is an .npz whose member name.npy has a header declaring
// shape and then zeros bytes of zeros, deflated (1 GiB is about 1 MB).
func bombNPZ(t *testing.T, name, shape string, zeros int64) []byte {
	t.Helper()
	header := fmt.Sprintf("{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }", shape)
	header += strings.Repeat(" ", (64-(10+len(header)+1)%64)%64) + "\n"
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.CreateHeader(&zip.FileHeader{Name: name + ".npy", Method: zip.Deflate})
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("\x93NUMPY\x01\x00"))
	w.Write([]byte{byte(len(header)), byte(len(header) >> 8)})
	w.Write([]byte(header))
	chunk := make([]byte, 1<<20)
	for n := int64(0); n < zeros; n += int64(len(chunk)) {
		w.Write(chunk[:min(int64(len(chunk)), zeros-n)])
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestImplicitBombRefusedBeforeInflating (issue 24 item 6): archives that
// inflate to hundreds of MiB or 1 GiB are refused from the declared shapes
// (checked against the id maps) before their data is inflated: the read
// allocates a few MiB, not the gigabyte (before the fix each member was
// read whole first: a 6.8 MB file of 1 GiB of zeros reached 3.77 GB RSS).
func TestImplicitBombRefusedBeforeInflating(t *testing.T) {
	users := "row,user_id\n0,a\n1,b\n2,c\n"
	items := "row,artist,track\n0,A,x\n1,B,y\n"
	cases := []struct {
		name, member, shape string
		zeros               int64
		want                string
	}{
		{"1 GiB of factors the id map does not name", "user_factors", "268435456, 1", 1 << 30, "users.csv names 3 rows"},
		{"a parameter declaring 256 MiB", "alpha", "67108864,", 256 << 20, "more than the 1024 values"},
		{"a small declared shape over 256 MiB of data", "user_factors", "3, 4", 256 << 20, "the member has more"},
	}
	for _, tc := range cases {
		b := bombNPZ(t, tc.member, tc.shape, tc.zeros)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		_, err := artifact.ReadImplicit(b, strings.NewReader(users), strings.NewReader(items))
		runtime.ReadMemStats(&after)
		alloc := after.TotalAlloc - before.TotalAlloc
		t.Logf("%s: %d KiB compressed, %d MiB allocated reading it", tc.name, len(b)>>10, alloc>>20)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, setlist.ErrInvalid) && tc.want != "the member has more" {
			t.Errorf("%s: %v, want an error naming %q", tc.name, err, tc.want)
		}
		if alloc > 32<<20 {
			t.Errorf("%s: %d MiB allocated before refusing, want at most 32", tc.name, alloc>>20)
		}
	}
	// The streaming reader still reads an honest archive exactly.
	var buf bytes.Buffer
	if err := npz.Write(&buf, []npz.Entry{{Name: "x", Array: npz.Float32s([]float32{1, 2, 3}, 3)}}); err != nil {
		t.Fatal(err)
	}
	f, err := npz.ReadChecked(bytes.NewReader(buf.Bytes()), int64(buf.Len()), 12, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := f.Array("x"); a.Len() != 3 {
		t.Errorf("read back %v", a.Shape)
	}
	if _, err := npz.ReadChecked(bytes.NewReader(buf.Bytes()), int64(buf.Len()), 11, nil); err == nil {
		t.Error("12 bytes of data read within an 11-byte limit")
	}
}
