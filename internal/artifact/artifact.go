// Package artifact is a published model version's durable form: everything
// needed to put the version back in Redis without retraining (the item
// side, every user's factors and the songs they are never recommended, the
// popular list, the meta with parameters and data snapshot time, the id
// maps), in one checksummed blob that the system of record keeps
// (PostgreSQL or SQLite, see internal/store). Redis becomes a cache of these:
// Lists and Release rebuild a version's keys from its artifact with the
// same top-N (als.TopNAll) and publish (keyspace.Publisher) the batch
// uses (pipeline.Restore drives them for batch republish and rollback
// --to), and ExportNPZ writes implicit's own save format.
//
// Format (little-endian):
//
//	magic "SLMODEL\x00" | header length u32 | header JSON | sections...
//
// The header names the model family, the format version, the meta and the
// sections in order with their sizes; a reader refuses a family or a format
// it does not know. Sections of the "als" family:
//
//	items         model.EncodeItems: song ids + item side (exactly the Redis value)
//	popular       model.EncodeRecs of the popular list
//	users         uvarint count, then per user uvarint length + external id
//	user_factors  float32 users × factors, row-major
//	exclude       uvarint rows, then per row uvarint n + n column deltas (uvarint):
//	              the songs each user reacted to at the snapshot, never recommended
//
// Sections of the "ease" family (internal/ease):
//
//	items         model.EncodeItemModel: song ids + B pruned to ease.DefaultPrune
//	              entries per row (exactly the Redis value)
//	popular, users  as for ALS
//	lists         uvarint rows, then per row uvarint n + n × (item uvarint, score f32):
//	              every user's top-K ranked with the dense B at training time
//
// EASE has no user factors: a user's list is a function of the dense B
// (400 MB at 10 k songs, too big to keep per version), so the artifact keeps
// the lists themselves, and Republish writes them back unchanged. The
// container, the store and the checksum are the same for both families.
package artifact

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/als"
	"github.com/setlist/setlist/internal/ease"
	"github.com/setlist/setlist/internal/feedback"
	"github.com/setlist/setlist/internal/model"
)

// Families an artifact holds: the implicit-feedback matrix factorisation
// of internal/als and the item-item model of internal/ease.
const (
	FamilyALS  = model.FamilyALS
	FamilyEASE = model.FamilyEASE
)

// Sources of a version, as recorded in the artifact and the registry.
const (
	SourceTrained  = "trained"
	SourceImported = "imported"
)

const (
	magic         = "SLMODEL\x00"
	formatVersion = 1
	// maxHeader bounds the JSON header a reader accepts.
	maxHeader = 16 << 20
)

// ErrNotFinite marks an artifact whose factors, weights or scores hold a
// NaN, an infinity or a vector of absurd norm: it is refused wherever it
// enters (assembled after training or import, decoded for republish or
// rollback), never published.
var ErrNotFinite = fmt.Errorf("model is not finite: %w", setlist.ErrInvalid)

// Artifact is one version in memory.
type Artifact struct {
	Family string
	Source string
	// Meta is what the version's meta key holds (Version is the version;
	// Users and Keys are set again by each publish).
	Meta    model.Meta
	Catalog *model.Catalog
	Side    *als.ItemSide
	Popular []model.Rec
	// Users[i] owns row i of UserFactors and of Exclude.
	Users       []setlist.UserID
	UserFactors []float32
	// Exclude row i holds the item indexes user i is never recommended (the
	// songs they reacted to at the snapshot); only the pattern is kept.
	Exclude *feedback.CSR
	// Model is the item model of any family (Side's for ALS); Ranked are
	// an EASE version's stored lists, row i user i's (nil for ALS).
	Model  model.ItemModel
	Ranked [][]feedback.Scored

	items []byte // Catalog and Side encoded once: the Redis items value
}

// NewALS assembles an ALS artifact and checks that its parts agree.
func NewALS(meta model.Meta, source string, catalog *model.Catalog, side *als.ItemSide, popular []model.Rec,
	users []setlist.UserID, userFactors []float32, exclude *feedback.CSR) (*Artifact, error) {
	items, err := model.EncodeItems(catalog, side)
	if err != nil {
		return nil, fmt.Errorf("artifact: %w", err)
	}
	a := &Artifact{Family: FamilyALS, Source: source, Meta: meta, Catalog: catalog, Side: side, Popular: popular,
		Users: users, UserFactors: userFactors, Exclude: exclude, Model: model.ALSItems(side), items: items}
	if err := a.check(); err != nil {
		return nil, err
	}
	return a, nil
}

// NewEASE assembles an EASE artifact: the pruned item model serve folds in
// with and every user's list, ranked with the dense B.
func NewEASE(meta model.Meta, source string, catalog *model.Catalog, pruned *ease.Pruned, popular []model.Rec,
	users []setlist.UserID, lists [][]feedback.Scored) (*Artifact, error) {
	im := model.EASEItems(pruned)
	items, err := model.EncodeItemModel(catalog, im)
	if err != nil {
		return nil, fmt.Errorf("artifact: %w", err)
	}
	a := &Artifact{Family: FamilyEASE, Source: source, Meta: meta, Catalog: catalog, Model: im, Popular: popular,
		Users: users, Ranked: lists, items: items}
	if err := a.check(); err != nil {
		return nil, err
	}
	return a, nil
}

func (a *Artifact) check() error {
	if a.Family == FamilyEASE {
		switch {
		case len(a.Ranked) != len(a.Users):
			return fmt.Errorf("artifact: %d lists for %d users", len(a.Ranked), len(a.Users))
		case a.Meta.K < 1:
			return fmt.Errorf("artifact: list length k = %d", a.Meta.K)
		}
		if p, ok := a.Model.(interface{ Pruned() *ease.Pruned }); ok {
			if err := p.Pruned().Validate(); err != nil {
				return fmt.Errorf("artifact: %w: %w", ErrNotFinite, err)
			}
		}
		for i, l := range a.Ranked {
			for _, s := range l {
				if s.Item < 0 || int(s.Item) >= a.Catalog.Len() {
					return fmt.Errorf("artifact: list %d names song %d outside %d", i, s.Item, a.Catalog.Len())
				}
				if math.IsNaN(float64(s.Score)) || math.IsInf(float64(s.Score), 0) {
					return fmt.Errorf("artifact: %w: list %d scores song %d %v", ErrNotFinite, i, s.Item, s.Score)
				}
			}
		}
		return nil
	}
	k := a.Side.Factors
	if err := a.Side.Validate(); err != nil {
		return fmt.Errorf("artifact: %w: %w", ErrNotFinite, err)
	}
	if len(a.UserFactors) == len(a.Users)*k {
		if err := feedback.CheckRows("user factors", a.UserFactors, len(a.Users), k); err != nil {
			return fmt.Errorf("artifact: %w: %w", ErrNotFinite, err)
		}
	}
	switch {
	case len(a.UserFactors) != len(a.Users)*k:
		return fmt.Errorf("artifact: %d user factor values for %d users × %d factors", len(a.UserFactors), len(a.Users), k)
	case a.Exclude == nil || a.Exclude.Rows != len(a.Users) || a.Exclude.Cols != a.Catalog.Len():
		return fmt.Errorf("artifact: exclusions do not match %d users × %d songs", len(a.Users), a.Catalog.Len())
	case a.Meta.K < 1:
		return fmt.Errorf("artifact: list length k = %d", a.Meta.K)
	}
	return nil
}

// Items is the encoded catalog and item side: the version's Redis items value.
func (a *Artifact) Items() []byte { return a.items }

type section struct {
	Name  string `json:"name"`
	Bytes int64  `json:"bytes"`
}

type header struct {
	Format   int        `json:"format"`
	Family   string     `json:"family"`
	Source   string     `json:"source"`
	Meta     model.Meta `json:"meta"`
	Sections []section  `json:"sections"`
}

// MarshalBinary encodes the artifact (see the package comment).
func (a *Artifact) MarshalBinary() ([]byte, error) {
	type part struct {
		name string
		data []byte
	}
	var parts []part
	switch a.Family {
	case FamilyALS:
		parts = []part{
			{"items", a.items},
			{"popular", model.EncodeRecs(a.Popular)},
			{"users", encodeUsers(a.Users)},
			{"user_factors", encodeFloats(a.UserFactors)},
			{"exclude", encodePattern(a.Exclude)},
		}
	case FamilyEASE:
		parts = []part{
			{"items", a.items},
			{"popular", model.EncodeRecs(a.Popular)},
			{"users", encodeUsers(a.Users)},
			{"lists", encodeLists(a.Ranked)},
		}
	default:
		return nil, fmt.Errorf("artifact: family %q cannot be encoded by this build", a.Family)
	}
	h := header{Format: formatVersion, Family: a.Family, Source: a.Source, Meta: a.Meta}
	size := 0
	for _, p := range parts {
		h.Sections = append(h.Sections, section{Name: p.name, Bytes: int64(len(p.data))})
		size += len(p.data)
	}
	hj, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("artifact: encode header: %w", err)
	}
	b := make([]byte, 0, len(magic)+4+len(hj)+size)
	b = append(b, magic...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(hj)))
	b = append(b, hj...)
	for _, p := range parts {
		b = append(b, p.data...)
	}
	return b, nil
}

// Family reads only the header's family, so a caller can say which
// family an artifact holds even when this build cannot decode it.
func Family(b []byte) (string, error) {
	h, _, err := readHeader(b)
	return h.Family, err
}

func readHeader(b []byte) (header, []byte, error) {
	var h header
	if len(b) < len(magic)+4 || string(b[:len(magic)]) != magic {
		return h, nil, errors.New("artifact: not a setlist model artifact (bad magic)")
	}
	n := binary.LittleEndian.Uint32(b[len(magic):])
	rest := b[len(magic)+4:]
	if n > maxHeader || int(n) > len(rest) {
		return h, nil, errors.New("artifact: truncated header")
	}
	if err := json.Unmarshal(rest[:n], &h); err != nil {
		return h, nil, fmt.Errorf("artifact: header: %w", err)
	}
	if h.Format != formatVersion {
		return h, nil, fmt.Errorf("artifact: format %d is not readable by this build (reads %d)", h.Format, formatVersion)
	}
	return h, rest[n:], nil
}

// Decode reverses MarshalBinary, refusing an unknown family or format and
// any section that does not agree with the others.
func Decode(b []byte) (*Artifact, error) {
	h, body, err := readHeader(b)
	if err != nil {
		return nil, err
	}
	need := []string{"items", "popular", "users", "user_factors", "exclude"}
	switch h.Family {
	case FamilyALS:
	case FamilyEASE:
		need = []string{"items", "popular", "users", "lists"}
	default:
		return nil, fmt.Errorf("artifact: model family %q is not supported by this build", h.Family)
	}
	secs := map[string][]byte{}
	for _, s := range h.Sections {
		if s.Bytes < 0 || s.Bytes > int64(len(body)) {
			return nil, fmt.Errorf("artifact: section %s is truncated", s.Name)
		}
		secs[s.Name], body = body[:s.Bytes], body[s.Bytes:]
	}
	if len(body) != 0 {
		return nil, fmt.Errorf("artifact: %d unexpected trailing bytes", len(body))
	}
	for _, name := range need {
		if _, ok := secs[name]; !ok {
			return nil, fmt.Errorf("artifact: section %s is missing", name)
		}
	}
	a := &Artifact{Family: h.Family, Source: h.Source, Meta: h.Meta, items: secs["items"]}
	if a.Catalog, a.Model, err = model.DecodeItemModel(a.items); err != nil {
		return nil, fmt.Errorf("artifact: %w", err)
	}
	if a.Model.Family() != h.Family {
		return nil, fmt.Errorf("artifact: header says family %s, items hold %s", h.Family, a.Model.Family())
	}
	a.Side = model.ALSSide(a.Model)
	if a.Popular, err = model.DecodeRecs(secs["popular"]); err != nil {
		return nil, fmt.Errorf("artifact: popular: %w", err)
	}
	if a.Users, err = decodeUsers(secs["users"]); err != nil {
		return nil, fmt.Errorf("artifact: users: %w", err)
	}
	if h.Family == FamilyEASE {
		if a.Ranked, err = decodeLists(secs["lists"]); err != nil {
			return nil, fmt.Errorf("artifact: lists: %w", err)
		}
		if err := a.check(); err != nil {
			return nil, err
		}
		return a, nil
	}
	if a.UserFactors, err = decodeFloats(secs["user_factors"]); err != nil {
		return nil, fmt.Errorf("artifact: user factors: %w", err)
	}
	if a.Exclude, err = decodePattern(secs["exclude"], a.Catalog.Len()); err != nil {
		return nil, fmt.Errorf("artifact: exclusions: %w", err)
	}
	if err := a.check(); err != nil {
		return nil, err
	}
	return a, nil
}

func encodeUsers(users []setlist.UserID) []byte {
	n := binary.MaxVarintLen64
	for _, u := range users {
		n += len(u) + 2
	}
	b := binary.AppendUvarint(make([]byte, 0, n), uint64(len(users)))
	for _, u := range users {
		b = binary.AppendUvarint(b, uint64(len(u)))
		b = append(b, u...)
	}
	return b
}

func decodeUsers(b []byte) ([]setlist.UserID, error) {
	r := bytes.NewReader(b)
	n, err := binary.ReadUvarint(r)
	if err != nil || n > uint64(len(b)) {
		return nil, errors.New("bad count")
	}
	out := make([]setlist.UserID, n)
	for i := range out {
		l, err := binary.ReadUvarint(r)
		if err != nil || l > uint64(r.Len()) {
			return nil, fmt.Errorf("user %d is truncated", i)
		}
		s := make([]byte, l)
		_, _ = r.Read(s)
		out[i] = setlist.UserID(s)
	}
	if r.Len() != 0 {
		return nil, errors.New("trailing bytes")
	}
	return out, nil
}

func encodeFloats(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
	}
	return b
}

func decodeFloats(b []byte) ([]float32, error) {
	if len(b)%4 != 0 {
		return nil, errors.New("length is not a multiple of 4")
	}
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out, nil
}

// encodePattern writes m's sparsity pattern: sorted columns as deltas, a
// byte or two each instead of four.
func encodePattern(m *feedback.CSR) []byte {
	b := make([]byte, 0, binary.MaxVarintLen64+m.Rows+2*m.NNZ())
	b = binary.AppendUvarint(b, uint64(m.Rows))
	for r := 0; r < m.Rows; r++ {
		cols, _ := m.Row(r)
		b = binary.AppendUvarint(b, uint64(len(cols)))
		prev := int32(0)
		for _, c := range cols {
			b = binary.AppendUvarint(b, uint64(c-prev))
			prev = c
		}
	}
	return b
}

func decodePattern(b []byte, cols int) (*feedback.CSR, error) {
	r := bytes.NewReader(b)
	rows, err := binary.ReadUvarint(r)
	if err != nil || rows > uint64(len(b)) {
		return nil, errors.New("bad row count")
	}
	m := &feedback.CSR{Rows: int(rows), Cols: cols, Indptr: make([]int64, rows+1)}
	for i := 0; i < int(rows); i++ {
		n, err := binary.ReadUvarint(r)
		if err != nil || n > uint64(r.Len()) {
			return nil, fmt.Errorf("row %d is truncated", i)
		}
		c := uint64(0)
		for j := uint64(0); j < n; j++ {
			d, err := binary.ReadUvarint(r)
			if err != nil {
				return nil, fmt.Errorf("row %d is truncated", i)
			}
			c += d
			if c >= uint64(cols) || (j > 0 && d == 0) {
				return nil, fmt.Errorf("row %d: column %d outside %d songs or repeated", i, c, cols)
			}
			m.Indices = append(m.Indices, int32(c))
		}
		m.Indptr[i+1] = int64(len(m.Indices))
	}
	if r.Len() != 0 {
		return nil, errors.New("trailing bytes")
	}
	m.Data = make([]float32, len(m.Indices))
	for i := range m.Data {
		m.Data[i] = 1
	}
	return m, nil
}

// encodeLists writes every user's list: item index and score per entry.
func encodeLists(lists [][]feedback.Scored) []byte {
	b := binary.AppendUvarint(nil, uint64(len(lists)))
	for _, l := range lists {
		b = binary.AppendUvarint(b, uint64(len(l)))
		for _, s := range l {
			b = binary.AppendUvarint(b, uint64(s.Item))
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(s.Score))
		}
	}
	return b
}

func decodeLists(b []byte) ([][]feedback.Scored, error) {
	r := bytes.NewReader(b)
	n, err := binary.ReadUvarint(r)
	if err != nil || n > uint64(len(b)) {
		return nil, errors.New("bad count")
	}
	out := make([][]feedback.Scored, n)
	var f [4]byte
	for i := range out {
		k, err := binary.ReadUvarint(r)
		if err != nil || k > uint64(r.Len()) {
			return nil, fmt.Errorf("list %d is truncated", i)
		}
		out[i] = make([]feedback.Scored, k)
		for j := range out[i] {
			item, err := binary.ReadUvarint(r)
			if err != nil || item > math.MaxInt32 {
				return nil, fmt.Errorf("list %d is truncated", i)
			}
			if _, err := io.ReadFull(r, f[:]); err != nil {
				return nil, fmt.Errorf("list %d is truncated", i)
			}
			out[i][j] = feedback.Scored{Item: int32(item), Score: math.Float32frombits(binary.LittleEndian.Uint32(f[:]))}
		}
	}
	if r.Len() != 0 {
		return nil, errors.New("trailing bytes")
	}
	return out, nil
}
