package model

import (
	"fmt"
	"slices"
	"time"

	"github.com/setlist/setlist"
)

// Explained is a recommendation and the reacted song that contributed most
// to its score, so a listener sees why it is there.
type Explained struct {
	Rec
	// Because is the liked or played song with the largest share of the
	// score (als.ItemSide.Explain), or 0 when none contributes positively.
	Because setlist.SongID
}

// FoldInTimings says where a fold-in's time went, for serve's metrics.
type FoldInTimings struct {
	Solve     time.Duration // the user's row and the Cholesky solve
	Recommend time.Duration // scoring every item and keeping the top n
	Explain   time.Duration // the because of each recommendation
}

// FoldInExplained is FoldIn with, for the first explain recommendations, the
// reaction that contributed most, and the time each phase took. It makes the
// same calls as FoldIn in the same order, so the lists are identical (the
// tests check it); only the explanations and the timings are added.
//
// Explanations reuse the fold-in's Cholesky factor (als.Folded), so each
// costs two triangular solves and a pass over the user's reactions.
func (p *Published) FoldInExplained(reactions []setlist.Reaction, n, explain int) ([]Explained, FoldInTimings, error) {
	return p.FoldInExcluding(reactions, nil, n, explain)
}

// FoldInExcluding is FoldInExplained for a history cut to its strongest
// part (serve caps what a fold-in solves with): the vector is solved from
// reactions alone, and the songs of also, the rest of the history, are
// excluded from the recommendations as well, as they would be uncut.
func (p *Published) FoldInExcluding(reactions []setlist.Reaction, also []setlist.SongID, n, explain int) ([]Explained, FoldInTimings, error) {
	var t FoldInTimings
	start := time.Now()
	cols, vals, err := p.row(reactions)
	if err != nil {
		return nil, t, err
	}
	folded, err := p.itemModel().FoldRow(cols, vals)
	if err != nil {
		return nil, t, fmt.Errorf("fold in: %w", err)
	}
	solved := time.Now()
	t.Solve = solved.Sub(start)
	exclude := cols
	if len(also) > 0 {
		exclude = slices.Clone(cols)
		for _, song := range also {
			if i, ok := p.Catalog.Index(song); ok {
				exclude = append(exclude, i)
			}
		}
	}
	recs := p.Catalog.Recs(folded.Recommend(n, exclude))
	scored := time.Now()
	t.Recommend = scored.Sub(solved)
	out := make([]Explained, len(recs))
	for i, r := range recs {
		out[i].Rec = r
		if i >= explain {
			continue
		}
		item, _ := p.Catalog.Index(r.Song)
		// The kept factorisation makes each because a pair of triangular
		// solves, not another fold-in.
		_, top, err := folded.Explain(item, 1)
		if err != nil {
			return nil, t, fmt.Errorf("explain song %d: %w", r.Song, err)
		}
		if len(top) > 0 && top[0].Score > 0 {
			out[i].Because = p.Catalog.Song(top[0].Item)
		}
	}
	t.Explain = time.Since(scored)
	return out, t, nil
}

// Knows reports whether the version's model has factors for song.
func (p *Published) Knows(song setlist.SongID) bool {
	_, ok := p.Catalog.Index(song)
	return ok
}

// Similar returns up to n songs whose item factors are closest in cosine to
// song's, best first. ok is false when the model does not know the song
// (added after training, or never reacted to).
func (p *Published) Similar(song setlist.SongID, n int) (recs []Rec, ok bool) {
	item, ok := p.Catalog.Index(song)
	if !ok {
		return nil, false
	}
	return p.Catalog.Recs(p.itemModel().Similar(item, n)), true
}
