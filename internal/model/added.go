package model

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/als"
)

// AddedSong is a song folded into a published ALS version after training
// (batch refresh): its vector solved from its listeners' user vectors
// (als.UserSide.FoldItem), with what a user fold-in needs to weigh it.
type AddedSong struct {
	Song setlist.SongID
	// Listeners is how many of the version's users had a signal on the song
	// when it was folded in; a later refresh folds it in again only when
	// this number changed.
	Listeners int
	// Weight is the song's entry of ItemSide.ItemWeights (bm25's idf;
	// 0 under the other weightings).
	Weight float32
	Vector []float32
}

const addedFormat = 1

// EncodeAdded is the record of a version's added songs in the key space
// (keyspace.Keys.Added): [format=1][n uvarint][k uvarint] then per song
// {song int64, listeners uint32, weight float32, vector float32×k}, all
// little-endian.
func EncodeAdded(songs []AddedSong) ([]byte, error) {
	k := 0
	if len(songs) > 0 {
		k = len(songs[0].Vector)
	}
	b := []byte{addedFormat}
	b = binary.AppendUvarint(b, uint64(len(songs)))
	b = binary.AppendUvarint(b, uint64(k))
	for _, s := range songs {
		if len(s.Vector) != k {
			return nil, fmt.Errorf("encode added songs: song %d has %d factors, want %d", s.Song, len(s.Vector), k)
		}
		b = binary.LittleEndian.AppendUint64(b, uint64(s.Song))
		b = binary.LittleEndian.AppendUint32(b, uint32(min(s.Listeners, math.MaxUint32)))
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(s.Weight))
		for _, v := range s.Vector {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
		}
	}
	return b, nil
}

// DecodeAdded reverses EncodeAdded.
func DecodeAdded(b []byte) ([]AddedSong, error) {
	if len(b) == 0 || b[0] != addedFormat {
		return nil, errors.New("decode added songs: unknown format")
	}
	b = b[1:]
	n, i := binary.Uvarint(b)
	if i <= 0 {
		return nil, errors.New("decode added songs: bad count")
	}
	b = b[i:]
	k, i := binary.Uvarint(b)
	if i <= 0 || k > 1<<16 {
		return nil, errors.New("decode added songs: bad factor count")
	}
	b = b[i:]
	size := 16 + 4*k
	if n > uint64(len(b))/size || uint64(len(b)) != n*size {
		return nil, fmt.Errorf("decode added songs: %d bytes for %d songs of %d factors", len(b), n, k)
	}
	out := make([]AddedSong, n)
	for j := range out {
		s := &out[j]
		s.Song = setlist.SongID(binary.LittleEndian.Uint64(b))
		s.Listeners = int(binary.LittleEndian.Uint32(b[8:]))
		s.Weight = math.Float32frombits(binary.LittleEndian.Uint32(b[12:]))
		s.Vector = make([]float32, k)
		for t := range s.Vector {
			s.Vector[t] = math.Float32frombits(binary.LittleEndian.Uint32(b[16+4*t:]))
		}
		b = b[size:]
	}
	return out, nil
}

// WithAdded returns p with the added songs in its catalog and item side, so
// fold-ins, similar songs and explanations know them as if trained: their
// vectors appended to the item factors, their rows added to the Gram matrix
// (YᵀY over the grown catalogue, as training with them would have it),
// their norms and item weights appended. Songs the catalog already has are
// skipped (a refresh never folds in a trained song). p is not modified; the
// result shares nothing mutable with it. Only ALS versions take songs.
func (p *Published) WithAdded(added []AddedSong) (*Published, error) {
	if len(added) == 0 {
		return p, nil
	}
	side := p.Side
	if side == nil {
		return nil, fmt.Errorf("add songs: a %s version has no item factors to add to", p.Meta.FamilyOf())
	}
	k := side.Factors
	songs := slices.Clone(p.Catalog.Songs())
	grown := *side
	grown.ItemFactors = slices.Clone(side.ItemFactors)
	grown.ItemNorms = slices.Clone(side.ItemNorms)
	grown.Gram = slices.Clone(side.Gram)
	var weights []float32
	if len(side.ItemWeights) > 0 { // bm25: per-item idf, then the mean row length
		weights = slices.Clone(side.ItemWeights[:len(side.ItemWeights)-1])
	}
	for _, a := range added {
		if _, ok := p.Catalog.Index(a.Song); ok {
			continue
		}
		if len(a.Vector) != k {
			return nil, fmt.Errorf("add songs: song %d has %d factors, the version %d", a.Song, len(a.Vector), k)
		}
		songs = append(songs, a.Song)
		grown.ItemFactors = append(grown.ItemFactors, a.Vector...)
		var norm float64
		for i, x := range a.Vector {
			norm += float64(x) * float64(x)
			for j, y := range a.Vector {
				grown.Gram[i*k+j] += float64(x) * float64(y)
			}
		}
		grown.ItemNorms = append(grown.ItemNorms, float32(math.Sqrt(norm)))
		if weights != nil {
			weights = append(weights, a.Weight)
		}
	}
	if weights != nil {
		grown.ItemWeights = append(weights, side.ItemWeights[len(side.ItemWeights)-1])
	}
	grown.Items = len(songs)
	q := *p
	q.Catalog, q.Side, q.Items = NewCatalog(songs), &grown, ALSItems(&grown)
	return &q, nil
}

// ALSUserSide is the als.UserSide of a version's user factors, with the
// parameters and item weights of its item side (for batch refresh).
func ALSUserSide(side *als.ItemSide, userFactors []float32, users int) (*als.UserSide, error) {
	return als.NewUserSide(side.Params, userFactors, users, side.ItemWeights)
}
