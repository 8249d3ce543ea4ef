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
// O(nnz·k²). Rows are split into contiguous ranges of about equal work
// (nonzeros plus a per-row share of the k×k mat-vecs; the bounds depend only
// on the matrix) handed out dynamically, four consecutive rows run their CG
// steps in lockstep so each pass over YᵀY + λI serves four mat-vecs, and
// each row's update reads only shared, read-only data, so results are
// bit-identical for a given seed and thread count regardless of scheduling
// (and of the grouping, which is tested to change no bit).
//
// TrainFrom starts from a given model's factors instead of random ones: the
// batch pipeline refits the published model on all data from the holdout
// model in a few iterations.
//
// # Confidence convention
//
// The libraries disagree (implicit uses C = α·w and treats the 1 as implicit;
// Spark uses 1 + α·|w| and scales λ by the row's count). setlist uses
// c_ui = 1 + α·f(|w_ui|) with preference 1 for a positive weight and 0 for a
// dislike, f the Weighting (raw, log or bm25): the formula, shared with
// EASE, is package feedback's (feedback.Confidence; its package doc gives
// it in full). The item weights bm25 needs are stored in ItemWeights so
// fold-in weighs a new row exactly as training weighed a training row.
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
// The hot loops have an AVX2/FMA implementation built with GOEXPERIMENT=simd
// on amd64 and a portable Go fallback otherwise; both give the same API.
// Small vector helpers use simd/archsimd; the four register-blocked kernels
// are Go assembly (the compiler does not keep a dozen loop-carried vector
// accumulators in registers): the CG nonzero kernel (accum_amd64.s), the
// four-vector symv (symv_amd64.s), the 6×16 scoring GEMM over packed item
// panels used by top-N and evaluation (gemm_amd64.s) and the Gram stripe
// (gram_amd64.s). The CPU is checked at run time, so a GOEXPERIMENT=simd
// binary still runs without AVX2. Results may differ in the last bits
// between the two builds, but each build is deterministic.
//
// Top-N scores users × items densely in blocks (48 users × 256 items, with
// the items' factors packed into 16-item panels), then feeds each user's
// scores through feedback's threshold filter and heap (feedback.PushRow).
// Lists equal a one-by-one scan, ties going to the lower item index.
package als
