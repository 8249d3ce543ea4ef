// Package als trains implicit-feedback matrix factorisation models with
// alternating least squares (Hu, Koren & Volinsky 2008) and serves their item
// side: fold-in of new users, top-N, similar items and explanations.
//
// # Solver
//
// Each half-sweep solves, for every row u, the normal equations
//
//	(YᵀY + Yᵀ(C_u − I)Y + λI) x_u = Yᵀ C_u p_u
//
// with a few conjugate-gradient steps warm-started from the previous factors
// (Takács et al. 2011, as the Python implicit library does). CG never forms
// the k×k matrix per row, so a sweep costs O(nnz·k·steps + rows·k²) instead of
// O(nnz·k²). Rows are split into fixed contiguous blocks per worker, and each
// row's update reads only shared, read-only data, so results are bit-identical
// for a given seed and thread count regardless of scheduling.
//
// # Confidence convention
//
// The libraries disagree (implicit uses C = α·w and treats the 1 as implicit;
// Spark uses 1 + α·|w| and scales λ by the row's count). setlist uses
//
//	c_ui = 1 + α·f(|w_ui|),  p_ui = 1 if w_ui > 0, p_ui = 0 if w_ui < 0
//
// where w is the raw reaction weight (Entry.Value) and f the Weighting:
//
//	raw:  f(w) = w
//	log:  f(w) = log(1 + w/ε)                         (ε = Params.LogEpsilon)
//	bm25: f(w) = w·(K1+1) / (K1·(1−B+B·len_u/avglen) + w) · idf_i
//
// bm25 follows implicit's bm25_weight applied to the user×item matrix: idf_i
// = log(N_users) − log(1 + df_i) where df_i counts the users with a nonzero
// entry on item i, len_u = Σ_i |w_ui| is user u's row sum, and avglen the
// mean of len_u over all training users. idf is clamped at 0 (items nearly
// everyone has get c = 1). The idf vector and avglen
// are stored in ItemWeights (Items+1 values: idf then avglen) so fold-in
// weighs a new row exactly as training weighed a training row.
//
// Regularisation is plain L2: λ(Σ‖x_u‖² + Σ‖y_i‖²), not scaled by the row's
// count. The loss reported per iteration is
//
//	Σ_u Σ_i c_ui (p_ui − x_uᵀy_i)² + λ(Σ‖x_u‖² + Σ‖y_i‖²)
//
// over all user×item pairs (the unobserved ones with c = 1, p = 0), computed
// in O(nnz·k + users·k²) with the YᵀY trick.
//
// # SIMD
//
// The hot loops (dot products and axpy over k-length factor rows) have an
// AVX2/FMA implementation built with GOEXPERIMENT=simd on amd64 and a portable
// unrolled Go fallback otherwise; both give the same API. Results may differ
// in the last bits between the two builds, but each build is deterministic.
package als
