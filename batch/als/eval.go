package als

import "context"

// Metrics are ranking metrics at K averaged over the Users evaluated (users
// with at least one test item). Definitions, for a user with test set T and
// top-K list R (the whole catalogue minus the user's train items, ranked):
//
//	hits       = |R ∩ T|
//	precision  = hits / K
//	recall     = hits / |T|
//	ndcg       = DCG / IDCG, DCG = Σ_{r∈R∩T} 1/log2(rank_r+1), IDCG over min(K,|T|) hits
//	map        = (Σ_{r∈R∩T} precision@rank_r) / min(K,|T|)
//	hit_rate   = share of users with hits ≥ 1
//	coverage   = distinct items recommended to any evaluated user / catalogue size
type Metrics struct {
	K         int     `json:"k"`
	Users     int     `json:"users"`
	Precision float64 `json:"precision_at_k"`
	Recall    float64 `json:"recall_at_k"`
	NDCG      float64 `json:"ndcg_at_k"`
	MAP       float64 `json:"map_at_k"`
	HitRate   float64 `json:"hit_rate_at_k"`
	Coverage  float64 `json:"coverage_at_k"`
}

// SplitHoldout moves a seeded fraction of each user's positive entries to
// test. Users with fewer than 2 positives keep everything in train so every
// test user still has a train history; dislikes always stay in train.
func SplitHoldout(m *CSR, fraction float64, seed int64) (train, test *CSR) {
	return nil, nil
}

// Evaluate ranks the whole catalogue minus each user's train items and
// scores the top k against test.
func Evaluate(ctx context.Context, userFactors []float32, s *ItemSide, train, test *CSR, k int, threads int) (Metrics, error) {
	return Metrics{}, errTODO
}

// PopularityBaseline recommends the items with the most positive train
// users to everyone (minus their train items), the floor any model must beat.
func PopularityBaseline(train, test *CSR, k int) Metrics {
	return Metrics{}
}
