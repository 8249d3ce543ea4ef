package model

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/als"
	"github.com/setlist/setlist/internal/ease"
	"github.com/setlist/setlist/internal/feedback"
)

// Model families. The published model names its family (Meta.Family); the
// key space, the batch lists, the near cache and serve's fold-in path do
// not depend on it: they ask the version's ItemModel.
const (
	FamilyALS  = "als"
	FamilyEASE = "ease"
)

// ItemModel is a published version's item side, whatever its family: what
// a fold-in, an explanation and similar songs need. ALS folds a user in by
// a k×k solve against the item factors; EASE by summing the rows of B (in
// Redis pruned to ease.DefaultPrune entries per row) of the user's songs.
type ItemModel interface {
	Family() string
	NumItems() int
	// FoldRow weighs one user's row of raw weights (feedback.Entry values) as
	// training did and returns what ranks and explains for that user.
	FoldRow(cols []int32, vals []float32) (FoldedRow, error)
	// Similar returns up to n songs most like item, best first.
	Similar(item int32, n int) []feedback.Scored
	// TopNRows folds in every row of x (raw weights, one user a row, each
	// with a positive weight) as FoldRow does and ranks their top n songs,
	// never one of the row's own, with the items of withheld (ascending
	// indexes: the songs taken down at training) withheld as
	// feedback.RankWithheld withholds them, with the batched top-N kernel
	// training ranks its users with: the precompute's path
	// (Published.FoldInAll). Each row is solved once however many
	// rankings the withheld songs take.
	TopNRows(ctx context.Context, x *feedback.CSR, n int, withheld []int32, threads int) ([][]feedback.Scored, error)
	MarshalBinary() ([]byte, error)
}

// FoldedRow is one folded-in user.
type FoldedRow interface {
	// Recommend returns the user's top n songs, never one of exclude.
	Recommend(n int, exclude []int32) []feedback.Scored
	// Explain splits the user's score of item into each reacted song's
	// share: the total and the n largest.
	Explain(item int32, n int) (float32, []feedback.Contribution, error)
}

// ALSItems is an ALS item side as an ItemModel.
func ALSItems(s *als.ItemSide) ItemModel { return alsItems{s} }

type alsItems struct{ s *als.ItemSide }

func (a alsItems) Family() string                              { return FamilyALS }
func (a alsItems) NumItems() int                               { return a.s.NumItems() }
func (a alsItems) Similar(item int32, n int) []feedback.Scored { return a.s.Similar(item, n) }
func (a alsItems) MarshalBinary() ([]byte, error)              { return a.s.MarshalBinary() }
func (a alsItems) FoldRow(cols []int32, vals []float32) (FoldedRow, error) {
	f, err := a.s.Fold(cols, vals)
	if err != nil {
		return nil, err
	}
	return alsFolded{a.s, f}, nil
}

// TopNRows solves every row's vector (als.ItemSide.FoldRows: FoldRow's
// solve, in parallel, with no allocation per row) and ranks them all with
// als.TopNAll, training's kernel.
func (a alsItems) TopNRows(ctx context.Context, x *feedback.CSR, n int, withheld []int32, threads int) ([][]feedback.Scored, error) {
	uf := make([]float32, x.Rows*a.s.Factors)
	if err := a.s.FoldRows(ctx, x, uf, threads); err != nil {
		return nil, err
	}
	return feedback.RankWithheld(n, a.s.Items, withheld, func(n int, except []int32) ([][]feedback.Scored, error) {
		return als.TopNAll(ctx, uf, a.s, n, x, except, threads)
	})
}

type alsFolded struct {
	s *als.ItemSide
	f *als.Folded
}

func (a alsFolded) Recommend(n int, exclude []int32) []feedback.Scored {
	return a.s.Recommend(a.f.Vector, n, exclude)
}
func (a alsFolded) Explain(item int32, n int) (float32, []feedback.Contribution, error) {
	return a.f.Explain(item, n)
}

// EASEItems is a pruned EASE model as an ItemModel.
func EASEItems(p *ease.Pruned) ItemModel { return easeItems{p} }

type easeItems struct{ p *ease.Pruned }

// Pruned is the EASE model behind e (for export).
func (e easeItems) Pruned() *ease.Pruned { return e.p }

func (e easeItems) Family() string                              { return FamilyEASE }
func (e easeItems) NumItems() int                               { return e.p.NumItems() }
func (e easeItems) Similar(item int32, n int) []feedback.Scored { return e.p.Similar(item, n) }
func (e easeItems) MarshalBinary() ([]byte, error)              { return e.p.MarshalBinary() }

// TopNRows ranks the rows with the pruned model's TopNAll, training's
// (dense-row) kernel for EASE.
func (e easeItems) TopNRows(ctx context.Context, x *feedback.CSR, n int, withheld []int32, threads int) ([][]feedback.Scored, error) {
	return feedback.RankWithheld(n, e.p.NumItems(), withheld, func(n int, except []int32) ([][]feedback.Scored, error) {
		return e.p.TopNAll(ctx, x, n, x, except, threads)
	})
}

func (e easeItems) FoldRow(cols []int32, vals []float32) (FoldedRow, error) {
	f, err := e.p.Fold(cols, vals)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// EncodeItemModel packs the catalog and any family's item model as
// [format][count uvarint]{song int64 LE}*[item model]; the item model's own
// magic names its family. For ALS it is byte-identical to EncodeItems.
func EncodeItemModel(c *Catalog, im ItemModel) ([]byte, error) {
	body, err := im.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("encode items: %w", err)
	}
	if im.NumItems() != c.Len() {
		return nil, fmt.Errorf("encode items: catalog has %d songs, %s model %d", c.Len(), im.Family(), im.NumItems())
	}
	b := make([]byte, 0, 1+binary.MaxVarintLen64+8*c.Len()+len(body))
	b = append(b, itemsFormat)
	b = binary.AppendUvarint(b, uint64(c.Len()))
	for _, s := range c.songs {
		b = binary.LittleEndian.AppendUint64(b, uint64(s))
	}
	return append(b, body...), nil
}

// DecodeItemModel reverses EncodeItemModel for either family.
func DecodeItemModel(b []byte) (*Catalog, ItemModel, error) {
	songs, rest, err := decodeSongs(b)
	if err != nil {
		return nil, nil, err
	}
	var im ItemModel
	if ease.IsPruned(rest) {
		p := new(ease.Pruned)
		if err := p.UnmarshalBinary(rest); err != nil {
			return nil, nil, fmt.Errorf("decode items: %w", err)
		}
		im = EASEItems(p)
	} else {
		side := new(als.ItemSide)
		if err := side.UnmarshalBinary(rest); err != nil {
			return nil, nil, fmt.Errorf("decode items: %w", err)
		}
		im = ALSItems(side)
	}
	if im.NumItems() != len(songs) {
		return nil, nil, fmt.Errorf("decode items: %d songs but a %s model of %d", len(songs), im.Family(), im.NumItems())
	}
	return NewCatalog(songs), im, nil
}

// ALSSide is im's ALS item side, nil for another family.
func ALSSide(im ItemModel) *als.ItemSide {
	if a, ok := im.(alsItems); ok {
		return a.s
	}
	return nil
}

func decodeSongs(b []byte) ([]setlist.SongID, []byte, error) {
	if len(b) == 0 || b[0] != itemsFormat {
		return nil, nil, fmt.Errorf("decode items: unknown format")
	}
	n, k := binary.Uvarint(b[1:])
	if k <= 0 || n > uint64(len(b))/8 || uint64(len(b)-1-k) < n*8 { // n bounded first: n*8 must not overflow
		return nil, nil, fmt.Errorf("decode items: truncated song list")
	}
	b = b[1+k:]
	songs := make([]setlist.SongID, n)
	for i := range songs {
		songs[i] = setlist.SongID(binary.LittleEndian.Uint64(b[8*i:]))
	}
	return songs, b[8*n:], nil
}
