package ease

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"

	"github.com/setlist/setlist/internal/feedback"
)

// Wire format of Model (all little-endian):
//
//	magic "SLEASE\x00\x00" | version u32 | items u32
//	weighting: len u8 + bytes | lambda, log epsilon, bm25 k1, bm25 b f64
//	threads i32 | B f32×items² | item weights: n u32 + f32×n
//	crc32 (IEEE) of everything before it, u32
const (
	codecMagic   = "SLEASE\x00\x00"
	codecVersion = 1
)

// MarshalBinary encodes the model in a compact, versioned format.
func (m *Model) MarshalBinary() ([]byte, error) {
	n := m.Items
	if len(m.B) != n*n {
		return nil, fmt.Errorf("marshal ease model: %d weights do not match %d×%d songs", len(m.B), n, n)
	}
	w := []byte(m.Params.Weighting)
	if len(w) > 255 {
		return nil, errors.New("marshal ease model: weighting name too long")
	}
	b := make([]byte, 0, len(codecMagic)+8+1+len(w)+4*8+4+4*n*n+4+4*len(m.ItemWeights)+4)
	b = append(b, codecMagic...)
	b = binary.LittleEndian.AppendUint32(b, codecVersion)
	b = binary.LittleEndian.AppendUint32(b, uint32(n))
	b = append(b, byte(len(w)))
	b = append(b, w...)
	p := m.Params
	for _, f := range []float64{p.Lambda, p.LogEpsilon, p.BM25K1, p.BM25B} {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(int32(p.Threads)))
	for _, f := range m.B {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(f))
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(len(m.ItemWeights)))
	for _, f := range m.ItemWeights {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(f))
	}
	return binary.LittleEndian.AppendUint32(b, crc32.ChecksumIEEE(b)), nil
}

// UnmarshalBinary decodes what MarshalBinary wrote, refusing a wrong magic,
// version, length or checksum.
func (m *Model) UnmarshalBinary(data []byte) error {
	if len(data) < len(codecMagic)+4 || string(data[:len(codecMagic)]) != codecMagic {
		return errors.New("unmarshal ease model: not an EASE model (bad magic)")
	}
	body, sum := data[:len(data)-4], binary.LittleEndian.Uint32(data[len(data)-4:])
	if crc32.ChecksumIEEE(body) != sum {
		return errors.New("unmarshal ease model: checksum mismatch (corrupt data)")
	}
	r := body[len(codecMagic):]
	fail := errors.New("unmarshal ease model: truncated input")
	take := func(k int) []byte {
		if len(r) < k {
			return nil
		}
		out := r[:k]
		r = r[k:]
		return out
	}
	u32 := func() (uint32, bool) {
		b := take(4)
		if b == nil {
			return 0, false
		}
		return binary.LittleEndian.Uint32(b), true
	}
	v, ok := u32()
	if !ok {
		return fail
	}
	if v != codecVersion {
		return fmt.Errorf("unmarshal ease model: unsupported version %d", v)
	}
	items, ok := u32()
	if !ok {
		return fail
	}
	wl := take(1)
	if wl == nil {
		return fail
	}
	w := take(int(wl[0]))
	if w == nil && wl[0] > 0 {
		return fail
	}
	var p Params
	p.Weighting = feedback.Weighting(w)
	for _, dst := range []*float64{&p.Lambda, &p.LogEpsilon, &p.BM25K1, &p.BM25B} {
		b := take(8)
		if b == nil {
			return fail
		}
		*dst = math.Float64frombits(binary.LittleEndian.Uint64(b))
	}
	th, ok := u32()
	if !ok {
		return fail
	}
	p.Threads = int(int32(th))
	n := int(items)
	if uint64(len(r)) < 4*uint64(n)*uint64(n) {
		return fail
	}
	bw := make([]float32, n*n)
	raw := take(4 * n * n)
	for i := range bw {
		bw[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	nw, ok := u32()
	if !ok || uint64(len(r)) != 4*uint64(nw) {
		return fail
	}
	var iw []float32
	if nw > 0 {
		iw = make([]float32, nw)
		for i := range iw {
			iw[i] = math.Float32frombits(binary.LittleEndian.Uint32(r[4*i:]))
		}
	}
	if err := p.Validate(); err != nil {
		return fmt.Errorf("unmarshal ease model: %w", err)
	}
	*m = Model{Params: p, Items: n, B: bw, ItemWeights: iw}
	return nil
}
