package als

import (
	"errors"
	"fmt"
	"math"

	"github.com/setlist/setlist/internal/feedback"
)

// UserSide is the user half of a trained model with what folding an item
// in needs: implicit's recalculate_item, the item-side twin of FoldIn. A
// song that was not in the training data (released, or first played, after
// the snapshot) gets the vector training would have given it from its
// listeners' user vectors, which are kept fixed, so a model can take new
// songs between trainings (batch refresh). It is read-only after
// construction and safe for concurrent use.
type UserSide struct {
	Params      Params
	Users       int
	Factors     int
	UserFactors []float32 // row-major Users×Factors
	// Gram is XᵀX (Factors×Factors, float64), as ItemSide.Gram is YᵀY.
	Gram []float64
	// AvgRowLength is bm25's mean row length at training (the last entry of
	// ItemSide.ItemWeights); unused by the other weightings.
	AvgRowLength float64
}

// NewUserSide keeps the user factors of a model with the parameters and
// item weights it was trained with (the factors are shared, not copied)
// and precomputes their Gram matrix.
func NewUserSide(p Params, userFactors []float32, users int, itemWeights []float32) (*UserSide, error) {
	k := p.Factors
	if k < 1 || len(userFactors) != users*k {
		return nil, fmt.Errorf("user side: %d floats for %d users of %d factors", len(userFactors), users, k)
	}
	u := &UserSide{Params: p, Users: users, Factors: k, UserFactors: userFactors, Gram: gram64(userFactors, users, k)}
	if p.Weighting == feedback.WeightBM25 {
		if len(itemWeights) == 0 {
			return nil, errors.New("user side: bm25 weighting without the item weights it was trained with")
		}
		u.AvgRowLength = float64(itemWeights[len(itemWeights)-1])
	}
	return u, nil
}

// Listener is one user's signal on an item being folded in.
type Listener struct {
	User  int32   // row of UserFactors
	Value float32 // the raw weight (as in feedback.Entry.Value; < 0 a dislike)
	// RowLength is Σ|w| of the user's whole row with this entry (bm25's
	// length normalisation); unused by the other weightings.
	RowLength float64
}

// FoldItem solves the vector training would give an item whose users are
// listeners, with the user factors fixed: the exact Cholesky solve of
// (XᵀX + λI + Σ_u cm1_u x_u x_uᵀ) y = Σ_u cp_u x_u, the confidences weighed
// as training weighs them (feedback.ColumnConfidence; bm25's idf counts the
// item's users among the model's users). A user listed twice is an error:
// the caller merges a user's reactions into one value first.
func (u *UserSide) FoldItem(listeners []Listener) ([]float32, error) {
	k := u.Factors
	if u == nil || len(u.Gram) != k*k || len(u.UserFactors) != u.Users*k {
		return nil, errors.New("fold item: user side is not initialised")
	}
	rows := make([]int32, len(listeners))
	vals := make([]float32, len(listeners))
	lens := make([]float64, len(listeners))
	seen := make(map[int32]bool, len(listeners))
	for j, l := range listeners {
		if l.User < 0 || int(l.User) >= u.Users {
			return nil, fmt.Errorf("fold item: user %d outside the model's %d users", l.User, u.Users)
		}
		if seen[l.User] {
			return nil, fmt.Errorf("fold item: user %d listed twice", l.User)
		}
		if v := float64(l.Value); math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("fold item: user %d has non-finite weight %v", l.User, l.Value)
		}
		seen[l.User] = true
		rows[j], vals[j], lens[j] = l.User, l.Value, l.RowLength
	}
	cm1 := make([]float32, len(listeners))
	cp := make([]float32, len(listeners))
	idf := feedback.IDF(u.Users, len(listeners))
	feedback.ColumnConfidence(u.Params.Weighing(), u.Params.Alpha, idf, u.AvgRowLength, lens, vals, cm1, cp)
	f := newFoldScratch(k, len(rows))
	if err := normalSystem(f, u.Gram, k, u.Params.Regularization, u.UserFactors, rows, cm1, cp); err != nil {
		return nil, fmt.Errorf("fold item: %w", err)
	}
	choleskySolve(f.a, k, f.b)
	y := make([]float32, k)
	for i, v := range f.b {
		y[i] = float32(v)
	}
	return y, nil
}
