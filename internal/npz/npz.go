// Package npz reads and writes numpy's .npz archives (a zip of .npy files),
// the format implicit's Model.save and numpy.savez use, so models move
// between setlist and the Python ecosystem without a Python dependency.
// It covers what model files hold: little-endian numeric, boolean and
// unicode arrays in C order, stored or deflated. Anything else (pickled
// objects, Fortran order, big-endian data) is refused with an error naming
// the array, never misread.
package npz

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Array is one n-dimensional array in C (row-major) order.
type Array struct {
	// Descr is numpy's type string: "<f4", "<f8", "<i4", "<i8", "|b1",
	// "<U7" (UTF-32 of 7 characters), ...
	Descr string
	// Shape is the size of each dimension; empty for a 0-d array (a scalar).
	Shape []int
	// Data holds the elements, little-endian, len = elements × item size.
	Data []byte
}

// Len is the number of elements (1 for a 0-d array).
func (a *Array) Len() int {
	n := 1
	for _, d := range a.Shape {
		n *= d
	}
	return n
}

// Entry is a named array, in the order it is written.
type Entry struct {
	Name  string
	Array *Array
}

// Float32s returns an array of the given shape holding v.
func Float32s(v []float32, shape ...int) *Array {
	b := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
	}
	return &Array{Descr: "<f4", Shape: shape, Data: b}
}

// Float64 returns a 0-d float64 array.
func Float64(v float64) *Array {
	return &Array{Descr: "<f8", Data: binary.LittleEndian.AppendUint64(nil, math.Float64bits(v))}
}

// Int64 returns a 0-d int64 array.
func Int64(v int64) *Array {
	return &Array{Descr: "<i8", Data: binary.LittleEndian.AppendUint64(nil, uint64(v))}
}

// Bool returns a 0-d boolean array.
func Bool(v bool) *Array {
	b := byte(0)
	if v {
		b = 1
	}
	return &Array{Descr: "|b1", Data: []byte{b}}
}

// String returns a 0-d unicode array (numpy's <U, UTF-32LE).
func String(s string) *Array {
	rs := []rune(s)
	b := make([]byte, 4*len(rs))
	for i, r := range rs {
		binary.LittleEndian.PutUint32(b[4*i:], uint32(r))
	}
	return &Array{Descr: "<U" + strconv.Itoa(max(len(rs), 1)), Data: padTo(b, 4*max(len(rs), 1))}
}

func padTo(b []byte, n int) []byte {
	for len(b) < n {
		b = append(b, 0)
	}
	return b
}

// Float32s returns the elements as float32, converting from float64.
func (a *Array) Float32s() ([]float32, error) {
	switch a.Descr {
	case "<f4":
		out := make([]float32, len(a.Data)/4)
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(a.Data[4*i:]))
		}
		return out, nil
	case "<f8":
		out := make([]float32, len(a.Data)/8)
		for i := range out {
			out[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(a.Data[8*i:])))
		}
		return out, nil
	}
	return nil, fmt.Errorf("dtype %s is not a float array", a.Descr)
}

// Float is a 0-d (or one-element) numeric or boolean array's value.
func (a *Array) Float() (float64, error) {
	if a.Len() != 1 {
		return 0, fmt.Errorf("shape %v is not a scalar", a.Shape)
	}
	switch a.Descr {
	case "<f4":
		return float64(math.Float32frombits(binary.LittleEndian.Uint32(a.Data))), nil
	case "<f8":
		return math.Float64frombits(binary.LittleEndian.Uint64(a.Data)), nil
	case "<i4":
		return float64(int32(binary.LittleEndian.Uint32(a.Data))), nil
	case "<i8":
		return float64(int64(binary.LittleEndian.Uint64(a.Data))), nil
	case "|b1", "|u1":
		return float64(a.Data[0]), nil
	}
	return 0, fmt.Errorf("dtype %s is not numeric", a.Descr)
}

// Int is a 0-d integer (or boolean) array's value; a float is accepted only
// when it is integral.
func (a *Array) Int() (int64, error) {
	switch a.Descr {
	case "<i8":
		if a.Len() != 1 {
			return 0, fmt.Errorf("shape %v is not a scalar", a.Shape)
		}
		return int64(binary.LittleEndian.Uint64(a.Data)), nil
	}
	f, err := a.Float()
	if err != nil {
		return 0, err
	}
	if f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, fmt.Errorf("%v is not an integer", f)
	}
	return int64(f), nil
}

// Str is a 0-d unicode array's value (trailing NULs removed, as numpy does).
func (a *Array) Str() (string, error) {
	if !strings.HasPrefix(a.Descr, "<U") || a.Len() != 1 {
		return "", fmt.Errorf("dtype %s shape %v is not a string scalar", a.Descr, a.Shape)
	}
	var b strings.Builder
	for i := 0; i+4 <= len(a.Data); i += 4 {
		r := rune(binary.LittleEndian.Uint32(a.Data[i:]))
		if r == 0 {
			break
		}
		if !utf8.ValidRune(r) {
			return "", fmt.Errorf("invalid code point %#x", r)
		}
		b.WriteRune(r)
	}
	return b.String(), nil
}

// itemSize is the byte size of one element of descr, or an error for a
// type this package does not read.
func itemSize(descr string) (int, error) {
	if len(descr) < 3 {
		return 0, fmt.Errorf("unsupported dtype %q", descr)
	}
	order, kind, size := descr[0], descr[1], descr[2:]
	if order == '>' {
		return 0, fmt.Errorf("big-endian dtype %q is not supported (save with '<' byte order)", descr)
	}
	if order != '<' && order != '|' && order != '=' {
		return 0, fmt.Errorf("unsupported dtype %q", descr)
	}
	n, err := strconv.Atoi(size)
	if err != nil || n <= 0 || n > 1<<20 {
		return 0, fmt.Errorf("unsupported dtype %q", descr)
	}
	switch kind {
	case 'f', 'i', 'u', 'b':
		if n != 1 && n != 2 && n != 4 && n != 8 {
			return 0, fmt.Errorf("unsupported dtype %q", descr)
		}
		return n, nil
	case 'U':
		return 4 * n, nil
	}
	return 0, fmt.Errorf("unsupported dtype %q (only numbers, booleans and unicode strings)", descr)
}

// normDescr spells the native and not-applicable byte orders as numpy does
// on a little-endian machine, so callers compare against one spelling.
func normDescr(d string) string {
	if strings.HasPrefix(d, "=") {
		d = "<" + d[1:]
	}
	if len(d) >= 2 && (d[1] == 'b' || d == "<u1" || d == "<i1") {
		d = "|" + d[1:]
	}
	return d
}

var headerRE = regexp.MustCompile(`^\{\s*'descr'\s*:\s*'([^']*)'\s*,\s*'fortran_order'\s*:\s*(True|False)\s*,\s*'shape'\s*:\s*\(([0-9,\s]*)\)\s*,?\s*\}\s*$`)

// ReadNPY parses one .npy file.
func ReadNPY(b []byte) (*Array, error) {
	a, need, hdr, err := readHeader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, err
	}
	data := b[hdr:]
	if int64(len(data)) != need {
		return nil, fmt.Errorf("shape %v of %s needs %d bytes, file has %d", a.Shape, a.Descr, need, len(data))
	}
	a.Data = data
	return a, nil
}

// maxHeaderLen bounds a .npy header: numpy writes a few hundred bytes.
const maxHeaderLen = 1 << 16

// readHeader reads a .npy header from r (at most maxHeaderLen bytes, never
// more than limit), returning the array without data, the data's byte
// length its shape declares and the header's own length.
func readHeader(r io.Reader, limit int64) (*Array, int64, int64, error) {
	const magic = "\x93NUMPY"
	var pre [12]byte
	if n, _ := io.ReadFull(r, pre[:10]); n < 10 || string(pre[:6]) != magic {
		return nil, 0, 0, errors.New("not a .npy file (bad magic)")
	}
	major := pre[6]
	var hlen, off int64
	switch major {
	case 1:
		hlen, off = int64(binary.LittleEndian.Uint16(pre[8:])), 10
	case 2, 3:
		if _, err := io.ReadFull(r, pre[10:12]); err != nil {
			return nil, 0, 0, errors.New("truncated .npy header")
		}
		hlen, off = int64(binary.LittleEndian.Uint32(pre[8:])), 12
	default:
		return nil, 0, 0, fmt.Errorf(".npy format version %d is not supported", major)
	}
	if hlen > maxHeaderLen || hlen > limit-off {
		return nil, 0, 0, errors.New("truncated or oversized .npy header")
	}
	hb := make([]byte, hlen)
	if _, err := io.ReadFull(r, hb); err != nil {
		return nil, 0, 0, errors.New("truncated .npy header")
	}
	header := strings.TrimSpace(string(hb))
	m := headerRE.FindStringSubmatch(header)
	if m == nil {
		// numpy writes the keys sorted, in this one form; anything else is
		// refused rather than guessed at.
		return nil, 0, 0, fmt.Errorf("unrecognised .npy header %q", truncate(header, 120))
	}
	if m[2] == "True" {
		return nil, 0, 0, errors.New("arrays in Fortran order are not supported (save a C-order copy)")
	}
	descr := normDescr(m[1])
	if strings.HasPrefix(descr, "|O") || strings.HasPrefix(descr, "<O") {
		return nil, 0, 0, errors.New("object arrays (pickles) are not supported")
	}
	size, err := itemSize(descr)
	if err != nil {
		return nil, 0, 0, err
	}
	a := &Array{Descr: descr}
	n := int64(1)
	for _, f := range strings.Split(m[3], ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		d, err := strconv.Atoi(f)
		if err != nil || d < 0 || d > math.MaxInt32 {
			return nil, 0, 0, fmt.Errorf("bad shape (%s)", m[3])
		}
		a.Shape = append(a.Shape, d)
		if d > 0 && n > math.MaxInt64/int64(size)/int64(d) {
			return nil, 0, 0, fmt.Errorf("shape (%s) is too large", m[3])
		}
		n *= int64(d)
	}
	return a, n * int64(size), off + hlen, nil
}

// AppendNPY appends a as a version 1.0 .npy file to b.
func AppendNPY(b []byte, a *Array) ([]byte, error) {
	size, err := itemSize(a.Descr)
	if err != nil {
		return nil, err
	}
	if len(a.Data) != a.Len()*size {
		return nil, fmt.Errorf("shape %v of %s needs %d bytes, have %d", a.Shape, a.Descr, a.Len()*size, len(a.Data))
	}
	var shape strings.Builder
	for i, d := range a.Shape {
		if i > 0 {
			shape.WriteString(", ")
		}
		shape.WriteString(strconv.Itoa(d))
	}
	if len(a.Shape) == 1 {
		shape.WriteString(",")
	}
	header := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': (%s), }", a.Descr, shape.String())
	// numpy pads the header with spaces and a newline so the data starts on
	// a 64-byte boundary.
	total := 10 + len(header) + 1
	pad := (64 - total%64) % 64
	header += strings.Repeat(" ", pad) + "\n"
	if len(header) > math.MaxUint16 {
		return nil, errors.New("npy header too long")
	}
	b = append(b, "\x93NUMPY\x01\x00"...)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(header)))
	b = append(b, header...)
	return append(b, a.Data...), nil
}

// File is an opened .npz archive.
type File struct {
	// Names lists the arrays in archive order (without the .npy suffix).
	Names  []string
	arrays map[string]*Array
}

// Array returns the named array, or an error naming the missing one.
func (f *File) Array(name string) (*Array, error) {
	a, ok := f.arrays[name]
	if !ok {
		return nil, fmt.Errorf("npz has no array %q (it has %s)", name, strings.Join(f.Names, ", "))
	}
	return a, nil
}

// Has reports whether the archive holds the named array.
func (f *File) Has(name string) bool { _, ok := f.arrays[name]; return ok }

// MaxBytes bounds the uncompressed size Read accepts, so a hostile archive
// (a zip bomb) fails instead of exhausting memory; ReadChecked takes a
// tighter bound.
const MaxBytes = 16 << 30

// Read parses a whole .npz archive, at most MaxBytes of arrays.
func Read(r io.ReaderAt, size int64) (*File, error) { return ReadChecked(r, size, MaxBytes, nil) }

// ReadChecked parses a .npz archive without trusting it: each member is
// streamed, its .npy header read first and its declared shape passed to
// check (nil: any) and counted against maxBytes before its data is
// allocated and inflated, exactly as many bytes as the shape declares, so a
// compressed member that inflates to gigabytes is refused after reading its
// header, not after inflating it (a 6.8 MB archive of 1 GiB of zeros took
// 3.77 GB RSS before Read refused it). The sizes the zip directory claims
// are not relied on.
func ReadChecked(r io.ReaderAt, size int64, maxBytes int64, check func(name string, a *Array) error) (*File, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("read npz: not a zip archive: %w", err)
	}
	f := &File{arrays: map[string]*Array{}}
	var total int64
	for _, zf := range zr.File {
		name, ok := strings.CutSuffix(zf.Name, ".npy")
		if !ok {
			return nil, fmt.Errorf("read npz: member %q is not a .npy file", zf.Name)
		}
		if _, dup := f.arrays[name]; dup {
			return nil, fmt.Errorf("read npz: array %q appears twice", name)
		}
		a, err := readMember(zf, name, maxBytes-total, check)
		if err != nil {
			return nil, fmt.Errorf("read npz: %s: %w", zf.Name, err)
		}
		total += int64(len(a.Data))
		f.Names = append(f.Names, name)
		f.arrays[name] = a
	}
	return f, nil
}

// readMember streams one member: header, check, then exactly the declared
// data (budget bytes at most) and nothing after it.
func readMember(zf *zip.File, name string, budget int64, check func(string, *Array) error) (*Array, error) {
	rc, err := zf.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	a, need, _, err := readHeader(rc, math.MaxInt64)
	if err != nil {
		return nil, err
	}
	if check != nil {
		if err := check(name, a); err != nil {
			return nil, err
		}
	}
	if need > budget {
		return nil, fmt.Errorf("shape %v of %s declares %d bytes, over the %d left of the archive's limit", a.Shape, a.Descr, need, max(budget, 0))
	}
	a.Data = make([]byte, need)
	if _, err := io.ReadFull(rc, a.Data); err != nil {
		return nil, fmt.Errorf("shape %v of %s needs %d bytes, the member has fewer: %w", a.Shape, a.Descr, need, err)
	}
	var one [1]byte
	if n, _ := io.ReadFull(rc, one[:]); n != 0 {
		return nil, fmt.Errorf("shape %v of %s needs %d bytes, the member has more", a.Shape, a.Descr, need)
	}
	return a, nil
}

// ReadBytes is Read over an in-memory archive.
func ReadBytes(b []byte) (*File, error) { return Read(bytes.NewReader(b), int64(len(b))) }

// Write writes entries as an uncompressed .npz archive (what numpy.savez
// and implicit's save produce).
func Write(w io.Writer, entries []Entry) error {
	zw := zip.NewWriter(w)
	seen := map[string]bool{}
	for _, e := range entries {
		if e.Name == "" || seen[e.Name] || strings.ContainsAny(e.Name, "/\\") {
			return fmt.Errorf("write npz: bad or repeated array name %q", e.Name)
		}
		seen[e.Name] = true
		b, err := AppendNPY(nil, e.Array)
		if err != nil {
			return fmt.Errorf("write npz: %s: %w", e.Name, err)
		}
		zf, err := zw.CreateHeader(&zip.FileHeader{Name: e.Name + ".npy", Method: zip.Store})
		if err != nil {
			return fmt.Errorf("write npz: %w", err)
		}
		if _, err := zf.Write(b); err != nil {
			return fmt.Errorf("write npz: %w", err)
		}
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("write npz: %w", err)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
