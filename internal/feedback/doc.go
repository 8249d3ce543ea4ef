// Package feedback is what both model families (internal/als,
// internal/ease) do with implicit feedback besides fitting a model: the
// user × song matrix of reaction weights (CSR), how a weight becomes
// confidence (Weighting, Confidence, Weights), ranking a user's scores into
// a top-N (TopK, TopNRow, TopNDense), and the offline evaluation, the
// per-user holdout split and its ranking metrics (SplitHoldout, Metrics,
// EvaluateDense, PopularityBaseline). One implementation of each, so two
// families compared on a split are compared on one yardstick.
//
// # Confidence convention
//
// setlist uses
//
//	c_ui = 1 + α·f(|w_ui|),  p_ui = 1 if w_ui > 0, p_ui = 0 if w_ui < 0
//
// where w is the raw reaction weight (Entry.Value) and f the Weighting:
//
//	raw:  f(w) = w
//	log:  f(w) = log(1 + w/ε)                         (ε = Weighing.LogEpsilon)
//	bm25: f(w) = w·(K1+1) / (K1·(1−B+B·len_u/avglen) + w) · idf_i
//
// bm25 follows implicit's bm25_weight applied to the user×item matrix: idf_i
// = log(N_users) − log(1 + df_i) where df_i counts the users with a nonzero
// entry on item i, len_u = Σ_i |w_ui| is user u's row sum, and avglen the
// mean of len_u over all training users. idf is clamped at 0 (items nearly
// everyone has get c = 1). The idf vector and avglen are stored in the item
// weights (Items+1 values: idf then avglen, ItemWeights) so fold-in weighs a
// new row exactly as training weighed a training row.
//
// # Top-N
//
// A user's scores are fed through a threshold filter (eight scores compared
// with the current k-th best at once, on AVX2 with GOEXPERIMENT=simd) before
// the exclusion merge and the heap. Lists equal a one-by-one scan, ties
// going to the lower item index.
package feedback
