package als

// ItemSide is everything serving needs from a model: fold-in of a user's
// reactions, top-N, similar items and explanations. It is separate from Model
// so the user factors (the bulk of a model) need not be shipped to serve.
type ItemSide struct {
	Params      Params
	Items       int
	Factors     int
	ItemFactors []float32 // row-major Items×Factors
	ItemWeights []float32 // see Model.ItemWeights
	// Gram is YᵀY (Factors×Factors, row-major, float64): fold-in only adds
	// the user's few rows to it instead of touching the whole catalogue.
	Gram []float64
	// ItemNorms are ‖y_i‖, precomputed for cosine similarity.
	ItemNorms []float32
}

// Scored is an item and its score.
type Scored struct {
	Item  int32
	Score float32
}

// Contribution is one liked item's share of a recommendation's score.
type Contribution struct {
	Item  int32
	Score float32
}

// ItemSide extracts the serving half of the model, precomputing the Gram
// matrix and item norms.
func (m *Model) ItemSide() *ItemSide {
	return nil
}

// NumItems is the catalogue size.
func (s *ItemSide) NumItems() int { return s.Items }

// MarshalBinary encodes the item side in a compact, versioned little-endian
// format (see itemside_codec.go).
func (s *ItemSide) MarshalBinary() ([]byte, error) { return nil, errTODO }

// UnmarshalBinary decodes MarshalBinary's output, rejecting truncated or
// corrupt input.
func (s *ItemSide) UnmarshalBinary(b []byte) error { return errTODO }

// FoldIn computes the user vector that training would have produced for a
// row of raw weights (as in Entry.Value), holding item factors fixed: an exact
// Cholesky solve of the same normal equations with the same confidence
// formula. cols need not be sorted; duplicates are summed.
func (s *ItemSide) FoldIn(cols []int32, vals []float32) ([]float32, error) {
	return nil, errTODO
}

// Recommend returns up to n items by descending score user·y_i, ties broken
// by lower item index. exclude may be in any order.
func (s *ItemSide) Recommend(user []float32, n int, exclude []int32) []Scored {
	return nil
}

// Similar returns up to n items by cosine similarity of item factors,
// excluding item itself; nil for an out-of-range item.
func (s *ItemSide) Similar(item int32, n int) []Scored {
	return nil
}

// Explain decomposes the fold-in score of item for the given reactions into
// per-reaction contributions (as implicit's explain does), returning the
// total score and the n reactions contributing most.
func (s *ItemSide) Explain(cols []int32, vals []float32, item int32, n int) (total float32, top []Contribution, err error) {
	return 0, nil, errTODO
}
