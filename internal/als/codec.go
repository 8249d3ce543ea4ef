package als

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"

	"github.com/setlist/setlist/internal/feedback"
)

// Wire format of ItemSide (all little-endian):
//
//	magic "SLALSIS\x00" | version u32 | items u32 | factors u32
//	weighting: len u8 + bytes | regularization, alpha, bm25 k1, bm25 b,
//	log epsilon f64 | iterations, cg steps, threads i32 | seed i64
//	item factors f32×items×factors | item weights: n u32 + f32×n
//	gram f64×factors² | crc32 (IEEE) of everything before it, u32
//
// Item norms are recomputed on load: they are cheap and one fewer thing to
// get out of sync. The checksum catches corruption a length check cannot.
const (
	codecMagic   = "SLALSIS\x00"
	codecVersion = 1
)

// MarshalBinary encodes the item side in a compact, versioned format.
func (s *ItemSide) MarshalBinary() ([]byte, error) {
	k, n := s.Factors, s.Items
	if len(s.ItemFactors) != n*k || len(s.Gram) != k*k {
		return nil, fmt.Errorf("marshal item side: factors (%d) or gram (%d) do not match %d items × %d factors", len(s.ItemFactors), len(s.Gram), n, k)
	}
	w := []byte(s.Params.Weighting)
	if len(w) > 255 {
		return nil, fmt.Errorf("marshal item side: weighting name too long")
	}
	size := len(codecMagic) + 12 + 1 + len(w) + 5*8 + 3*4 + 8 + 4*n*k + 4 + 4*len(s.ItemWeights) + 8*k*k + 4
	b := make([]byte, 0, size)
	b = append(b, codecMagic...)
	b = binary.LittleEndian.AppendUint32(b, codecVersion)
	b = binary.LittleEndian.AppendUint32(b, uint32(n))
	b = binary.LittleEndian.AppendUint32(b, uint32(k))
	b = append(b, byte(len(w)))
	b = append(b, w...)
	p := s.Params
	for _, f := range []float64{p.Regularization, p.Alpha, p.BM25K1, p.BM25B, p.LogEpsilon} {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
	}
	for _, v := range []int{p.Iterations, p.CGSteps, p.Threads} {
		b = binary.LittleEndian.AppendUint32(b, uint32(int32(v)))
	}
	b = binary.LittleEndian.AppendUint64(b, uint64(p.Seed))
	for _, f := range s.ItemFactors {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(f))
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(len(s.ItemWeights)))
	for _, f := range s.ItemWeights {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(f))
	}
	for _, f := range s.Gram {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
	}
	return binary.LittleEndian.AppendUint32(b, crc32.ChecksumIEEE(b)), nil
}

var errTruncated = errors.New("truncated input")

type reader struct {
	b   []byte
	err error
}

func (r *reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.err = errTruncated
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) u32() uint32 {
	if b := r.take(4); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

func (r *reader) u64() uint64 {
	if b := r.take(8); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

// UnmarshalBinary decodes MarshalBinary's output, rejecting truncated or
// corrupt input with an error and leaving s unchanged on failure.
func (s *ItemSide) UnmarshalBinary(data []byte) error {
	fail := func(err error) error { return fmt.Errorf("unmarshal item side: %w", err) }
	if len(data) < len(codecMagic)+4 || string(data[:len(codecMagic)]) != codecMagic {
		return fail(errors.New("not an ALS item side (bad magic)"))
	}
	if v := binary.LittleEndian.Uint32(data[len(codecMagic):]); v != codecVersion {
		return fail(fmt.Errorf("unsupported version %d (this build reads %d)", v, codecVersion))
	}
	if len(data) < len(codecMagic)+8 {
		return fail(errTruncated)
	}
	body, sum := data[:len(data)-4], binary.LittleEndian.Uint32(data[len(data)-4:])
	r := &reader{b: body[len(codecMagic)+4:]}
	n, k := int(r.u32()), int(r.u32())
	var wl int
	if b := r.take(1); b != nil {
		wl = int(b[0])
	}
	weighting := feedback.Weighting(r.take(wl))
	var fl [5]float64
	for i := range fl {
		fl[i] = math.Float64frombits(r.u64())
	}
	var in [3]int
	for i := range in {
		in[i] = int(int32(r.u32()))
	}
	seed := int64(r.u64())
	if r.err == nil && (k < 1 || k > maxFactors || n < 0 || int64(n)*int64(k)*4 > int64(len(r.b))) {
		if k < 1 || k > maxFactors {
			return fail(fmt.Errorf("factors %d out of range", k))
		}
		return fail(errTruncated)
	}
	factors := make([]float32, 0, n*k)
	raw := r.take(4 * n * k)
	for i := 0; i+4 <= len(raw); i += 4 {
		factors = append(factors, math.Float32frombits(binary.LittleEndian.Uint32(raw[i:])))
	}
	nw := int(r.u32())
	if r.err == nil && nw*4 > len(r.b) {
		return fail(errTruncated)
	}
	var weights []float32
	raw = r.take(4 * nw)
	for i := 0; i+4 <= len(raw); i += 4 {
		weights = append(weights, math.Float32frombits(binary.LittleEndian.Uint32(raw[i:])))
	}
	gram := make([]float64, 0, k*k)
	raw = r.take(8 * k * k)
	for i := 0; i+8 <= len(raw); i += 8 {
		gram = append(gram, math.Float64frombits(binary.LittleEndian.Uint64(raw[i:])))
	}
	if r.err != nil {
		return fail(r.err)
	}
	if len(r.b) != 0 {
		return fail(fmt.Errorf("%d unexpected trailing bytes", len(r.b)))
	}
	if crc32.ChecksumIEEE(body) != sum {
		return fail(errors.New("checksum mismatch (corrupt input)"))
	}
	p := Params{
		Factors: k, Regularization: fl[0], Alpha: fl[1], BM25K1: fl[2], BM25B: fl[3], LogEpsilon: fl[4],
		Iterations: in[0], CGSteps: in[1], Threads: in[2], Seed: seed, Weighting: weighting,
	}
	if err := p.Validate(); err != nil {
		return fail(fmt.Errorf("stored params: %w", err))
	}
	if weighting == feedback.WeightBM25 && len(weights) != n+1 {
		return fail(fmt.Errorf("bm25 needs %d item weights, got %d", n+1, len(weights)))
	}
	t := ItemSide{Params: p, Items: n, Factors: k, ItemFactors: factors, ItemWeights: weights, Gram: gram}
	if err := t.Validate(); err != nil {
		return fail(err)
	}
	*s = t
	s.ItemNorms = itemNorms(factors, n, k)
	return nil
}
