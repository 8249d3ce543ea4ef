// Package ease trains and serves EASE (Steck, "Embarrassingly Shallow
// Autoencoders for Sparse Data", WWW 2019), the closed-form item-item
// model: with X the users×songs matrix of weighted reactions,
//
//	P = (XᵀX + λI)⁻¹,  B = −P / diag(P) (column j divided by P_jj), B_jj = 0,
//
// and a user's score of song i is Σ_j x_j·B_ji over the songs j they
// reacted to. It sits beside internal/als and shares its weighting (raw, log
// and bm25 mean the same in both families), top-N kernels and holdout
// metrics, so the two are compared on one yardstick.
//
// Why a second family: on the shared playlist data EASE ranks better than
// the best ALS setting found, and it suits serving: a fold-in is a sum of
// B's rows (no solve) and an explanation is exact (each reacted song's
// term of the sum). Why not only EASE: B is dense n×n, so memory grows with
// the square of the catalog and training with its cube (see NeedBytes);
// past the limit ALS stays the answer.
//
// The Gram matrix and its inverse are float64 (λ is small against the
// Gram's largest entries on popular songs, and float32 loses the small
// entries of P that rank the long tail); B is stored float32.
package ease

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/setlist/setlist/internal/feedback"
	"github.com/setlist/setlist/internal/parallel"
)

// Params configures training. Weighting, LogEpsilon, BM25K1 and BM25B turn a
// raw reaction weight w into x = f(|w|) exactly as ALS's confidence does
// (feedback.Weights; dislikes give x = 0 and are only excluded from lists).
type Params struct {
	Lambda     float64            `json:"lambda"`
	Weighting  feedback.Weighting `json:"weighting"`
	LogEpsilon float64            `json:"log_epsilon"`
	BM25K1     float64            `json:"bm25_k1"`
	BM25B      float64            `json:"bm25_b"`
	Threads    int                `json:"threads"` // 0 means GOMAXPROCS
}

// DefaultParams are log weighting and λ 100: on the shared playlist data
// (log1p of playlist counts) the holdout optimum is near 50–100; the tuner
// searches λ over several decades around the Gram's mean diagonal.
func DefaultParams() Params {
	return Params{Lambda: 100, Weighting: feedback.WeightLog, LogEpsilon: 1, BM25K1: 100, BM25B: 0.8}
}

// Weighing is p's weighting, for feedback.Weights and feedback.ItemWeights.
func (p Params) Weighing() feedback.Weighing {
	return feedback.Weighing{Weighting: p.Weighting, LogEpsilon: p.LogEpsilon, BM25K1: p.BM25K1, BM25B: p.BM25B}
}

// Validate reports every invalid field at once.
func (p Params) Validate() error {
	var errs []error
	if math.IsNaN(p.Lambda) || math.IsInf(p.Lambda, 0) || !(p.Lambda > 0) {
		errs = append(errs, fmt.Errorf("lambda must be a finite number > 0, got %v", p.Lambda))
	}
	if p.Threads < 0 {
		errs = append(errs, fmt.Errorf("threads must be ≥ 0 (0 means GOMAXPROCS), got %d", p.Threads))
	}
	// The weighting fields are checked by the one validation ALS uses.
	if err := p.Weighing().Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Model is a trained EASE model: everything serving needs.
type Model struct {
	Params Params
	Items  int
	// B is row-major Items×Items float32: B[j*Items+i] is how much a
	// reaction to song j (weighted x_j) adds to song i's score. Its
	// diagonal is zero.
	B []float32
	// ItemWeights is what weighing a new row needs (bm25: idf per song and
	// the mean row length; nil otherwise), as in als.Model.
	ItemWeights []float32
}

// NeedBytes is the memory training a catalog of items songs takes at its
// peak: the float64 Gram matrix (8·n²), inverted in place and turned into
// the float32 B in the same buffer (weightsFromInverse), plus the sweep's
// panels (three n×128 float64). The trained Model's B keeps that buffer
// (8·n², twice B's size) alive: a second 4·n² buffer for B would raise the
// peak by half, and the peak is what limits the catalog.
func NeedBytes(items int) int64 {
	n := int64(items)
	return 8*n*n + 3*8*n*sweepBlock
}

// MemoryError is a catalog too large for the memory limit.
type MemoryError struct {
	Items       int
	Need, Limit int64
}

func (e *MemoryError) Error() string {
	return fmt.Sprintf("ease: a catalog of %d songs needs %s to train (float64 songs × songs Gram, inverted in place into B), over the memory limit of %s (--memory-limit; at most %d songs fit it); train ALS for this catalog",
		e.Items, bytesString(e.Need), bytesString(e.Limit), MaxItems(e.Limit))
}

// CheckFits refuses a catalog whose training would not fit limit bytes
// (limit ≤ 0 means no limit).
func CheckFits(items int, limit int64) error {
	if need := NeedBytes(items); limit > 0 && need > limit {
		return &MemoryError{Items: items, Need: need, Limit: limit}
	}
	return nil
}

// MaxItems is the largest catalog CheckFits accepts under limit.
func MaxItems(limit int64) int {
	n := int(math.Sqrt(float64(limit) / 8))
	for n > 0 && NeedBytes(n) > limit {
		n--
	}
	return n
}

func bytesString(b int64) string {
	const gib = 1 << 30
	if b >= gib {
		return fmt.Sprintf("%.1f GiB", float64(b)/gib)
	}
	return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20))
}

// Progress reports training: the phase ("gram", "invert", "weights") and
// how far it is.
type Progress func(phase string, done, total int)

// Options are what training needs besides the parameters.
type Options struct {
	MemoryLimit int64 // bytes; ≤ 0 means no limit
	Progress    Progress
}

// Stats says where a training's time went.
type Stats struct {
	Gram, Invert, Weights time.Duration
}

// Train fits EASE on m (users × songs of raw weights, as for als.Train).
// The result does not depend on the thread count.
func Train(ctx context.Context, m *feedback.CSR, p Params, opt Options) (*Model, Stats, error) {
	var st Stats
	if err := p.Validate(); err != nil {
		return nil, st, fmt.Errorf("ease: invalid params: %w", err)
	}
	if m == nil || m.Cols <= 0 {
		return nil, st, errors.New("ease: empty catalog")
	}
	if err := CheckFits(m.Cols, opt.MemoryLimit); err != nil {
		return nil, st, err
	}
	progress := opt.Progress
	if progress == nil {
		progress = func(string, int, int) {}
	}
	n := m.Cols
	wp := p.Weighing()
	iw := feedback.ItemWeights(m, wp)
	start := time.Now()
	g, err := regularizedGram(ctx, m, wp, iw, p)
	if err != nil {
		return nil, st, err
	}
	progress("gram", 1, 1)
	st.Gram = time.Since(start)
	start = time.Now()
	if err := invertSPD(ctx, g, n, p.Threads, func(done, total int) { progress("invert", done, total) }); err != nil {
		return nil, st, fmt.Errorf("ease: invert XᵀX + λI: %w", err)
	}
	st.Invert = time.Since(start)
	start = time.Now()
	b := weightsFromInverse(g, n, p.Threads)
	st.Weights = time.Since(start)
	progress("weights", 1, 1)
	return &Model{Params: p, Items: n, B: b, ItemWeights: iw}, st, nil
}

// Gram is XᵀX + λI for m weighted as p says: the songs × songs matrix,
// row-major float64 with its lower triangle filled, whose inverse gives
// EASE's weights. Train builds it first and then inverts it in place; on
// its own it is that first step's time and memory (its 8·n² bytes are
// NeedBytes's main term) without the n³ inverse.
func Gram(ctx context.Context, m *feedback.CSR, p Params) ([]float64, error) {
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("ease: invalid params: %w", err)
	}
	if m == nil || m.Cols <= 0 {
		return nil, errors.New("ease: empty catalog")
	}
	wp := p.Weighing()
	return regularizedGram(ctx, m, wp, feedback.ItemWeights(m, wp), p)
}

// regularizedGram is gram with λ added to the diagonal.
func regularizedGram(ctx context.Context, m *feedback.CSR, wp feedback.Weighing, iw []float32, p Params) ([]float64, error) {
	g, err := gram(ctx, m, wp, iw, p.Threads)
	if err != nil {
		return nil, err
	}
	n := m.Cols
	for i := 0; i < n; i++ {
		g[i*n+i] += p.Lambda
	}
	return g, nil
}

// gram computes the lower triangle of XᵀX in float64 for the weighted X:
// row i of the result (song i) is accumulated by one worker from the users
// who reacted to i, so the sums' order is fixed.
func gram(ctx context.Context, m *feedback.CSR, wp feedback.Weighing, iw []float32, threads int) ([]float64, error) {
	n := m.Cols
	x := make([]float32, m.NNZ())
	for u := 0; u < m.Rows; u++ {
		lo, hi := m.Indptr[u], m.Indptr[u+1]
		feedback.Weights(wp, iw, m.Indices[lo:hi], m.Data[lo:hi], x[lo:hi])
	}
	// Transpose the positions: for each song, which users and where in X.
	t := m.Transpose()
	pos := make([]int64, len(t.Indices)) // pos[q] is the entry of m behind t's q
	next := make([]int64, n)
	copy(next, t.Indptr[:n])
	for u := 0; u < m.Rows; u++ {
		for p := m.Indptr[u]; p < m.Indptr[u+1]; p++ {
			c := m.Indices[p]
			pos[next[c]] = p
			next[c]++
		}
	}
	// Work of song i: Σ over its users of their row length.
	work := make([]int64, n+1)
	for i := 0; i < n; i++ {
		var w int64
		for q := t.Indptr[i]; q < t.Indptr[i+1]; q++ {
			u := t.Indices[q]
			w += m.Indptr[u+1] - m.Indptr[u]
		}
		work[i+1] = work[i] + w
	}
	g := make([]float64, n*n)
	bounds := parallel.BalancedBounds(work, 1, 8*parallel.Threads(threads), 1)
	var cancelled atomic.Bool
	parallel.Ranges(bounds, threads, func(_, lo, hi int) {
		if ctx.Err() != nil {
			cancelled.Store(true)
			return
		}
		for i := lo; i < hi; i++ {
			row := g[i*n : i*n+i+1]
			for q := t.Indptr[i]; q < t.Indptr[i+1]; q++ {
				xi := float64(x[pos[q]])
				if xi == 0 {
					continue
				}
				u := t.Indices[q]
				for p := m.Indptr[u]; p < m.Indptr[u+1]; p++ {
					j := m.Indices[p]
					if int(j) > i {
						break // columns are sorted
					}
					row[j] += xi * float64(x[p])
				}
			}
		}
	})
	if cancelled.Load() || ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return g, nil
}

// weightsFromInverse turns P's lower triangle into B in place: B_ji =
// −P_ji / P_ii, B_ii = 0, float32, written over p's own buffer (the
// returned slice aliases p, which must not be used after).
//
// Row j of B (4n bytes at 4jn) overwrites half of P's row ⌊j/2⌋ (8n bytes
// at 8kn), so rows are converted in stages [2^s, 2^(s+1)): a stage only
// overwrites rows of the stages before it, already converted, and its rows
// are independent. Row 0 overwrites itself and goes through a copy.
func weightsFromInverse(p []float64, n, threads int) []float32 {
	diag := make([]float64, n)
	for i := range diag {
		diag[i] = p[i*n+i]
	}
	// Mirror the lower triangle into the upper in 64×64 tiles, so each row
	// of P is then read contiguously.
	const tile = 64
	tiles := (n + tile - 1) / tile
	chunks(tiles, 1, threads, func(lo, hi int) {
		for bj := lo; bj < hi; bj++ {
			for bi := bj; bi < tiles; bi++ {
				for i := bi * tile; i < min(n, (bi+1)*tile); i++ {
					for j := bj * tile; j < min(i, (bj+1)*tile); j++ {
						p[j*n+i] = p[i*n+j]
					}
				}
			}
		}
	})
	b := unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(p))), n*n)
	convert := func(j int, prow []float64) {
		row := b[j*n : (j+1)*n]
		for i, v := range prow {
			row[i] = float32(-v / diag[i])
		}
		row[j] = 0
	}
	convert(0, slices.Clone(p[:n]))
	for lo := 1; lo < n; lo *= 2 {
		hi := min(n, 2*lo)
		chunks(hi-lo, 64, threads, func(a, z int) {
			for j := lo + a; j < lo+z; j++ {
				convert(j, p[j*n:(j+1)*n])
			}
		})
	}
	return b
}

func chunks(n, chunk, threads int, fn func(lo, hi int)) {
	parallel.Chunks(n, chunk, threads, func(_, lo, hi int) { fn(lo, hi) })
}

// Scale is the mean diagonal of XᵀX for p's weighting (Σ x² / songs): the
// size λ is measured against, so a search's λ grid suits the data.
func Scale(m *feedback.CSR, p Params) float64 {
	wp := p.Weighing()
	iw := feedback.ItemWeights(m, wp)
	var sum float64
	x := make([]float32, 0)
	for u := 0; u < m.Rows; u++ {
		cols, vals := m.Row(u)
		x = append(x[:0], make([]float32, len(cols))...)
		feedback.Weights(wp, iw, cols, vals, x)
		for _, v := range x {
			sum += float64(v) * float64(v)
		}
	}
	if m.Cols == 0 || sum == 0 {
		return 1
	}
	return sum / float64(m.Cols)
}
