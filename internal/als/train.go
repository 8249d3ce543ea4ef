package als

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/setlist/setlist/internal/feedback"
	"github.com/setlist/setlist/internal/parallel"
)

// gramChunk fixes the summation order of Gram and loss partial sums, making
// results independent of the thread count as well as of scheduling.
const gramChunk = 1024

// gram32 returns FᵀF (k×k, row-major, both triangles) for rows×k factors F.
// float32 is enough here: it only feeds the CG operator, and CG corrects
// for small perturbations of it within a sweep.
//
// Each chunk of gramChunk rows is copied with its rows zero-padded to ld
// floats (a multiple of the 6×16 tile in both directions) and multiplied by
// gramTile stripe by stripe, reading both factors straight from the rows,
// so the k×k result is accumulated in registers tile by tile instead of by
// n rank-1 updates through memory. Both triangles come out of the same
// products summed in the same order, so the result is exactly symmetric;
// partial sums are added in chunk order (thread-independent).
func gram32(f []float32, rows, k, threads int) []float32 {
	if !blockedGram {
		return gram32Rank1(f, rows, k, threads)
	}
	chunks := (rows + gramChunk - 1) / gramChunk
	partial := make([][]float32, chunks)
	kr := (k + gemmRows - 1) / gemmRows * gemmRows
	ld := (max(kr, k) + gemmCols - 1) / gemmCols * gemmCols
	np := (k + gemmCols - 1) / gemmCols
	type scratch struct{ fp, out []float32 }
	ws := make([]*scratch, parallel.Threads(threads))
	parallel.Chunks(rows, gramChunk, threads, func(w, lo, hi int) {
		if ws[w] == nil {
			ws[w] = &scratch{fp: make([]float32, ld*gramChunk), out: make([]float32, kr*ld)}
		}
		s, n := ws[w], hi-lo
		fp := s.fp[:ld*n]
		for r := 0; r < n; r++ {
			dst := fp[r*ld : (r+1)*ld]
			copy(dst, f[(lo+r)*k:(lo+r+1)*k])
			clear(dst[k:])
		}
		for g := 0; g < kr/gemmRows; g++ {
			gramTile(fp[g*gemmRows:], fp, n, ld, np, s.out[g*gemmRows*ld:], ld)
		}
		gc := make([]float32, k*k)
		for a := 0; a < k; a++ {
			copy(gc[a*k:(a+1)*k], s.out[a*ld:a*ld+k])
		}
		partial[lo/gramChunk] = gc
	})
	g := make([]float32, k*k)
	for _, p := range partial {
		for i, v := range p {
			g[i] += v
		}
	}
	return g
}

// gram32Rank1 is the portable build's Gram: rank-1 updates of the upper
// triangle, half the flops of the blocked version, which only pays with
// the assembly tile kernel.
func gram32Rank1(f []float32, rows, k, threads int) []float32 {
	chunks := (rows + gramChunk - 1) / gramChunk
	partial := make([][]float32, chunks)
	parallel.Chunks(rows, gramChunk, threads, func(_, lo, hi int) {
		g := make([]float32, k*k)
		for r := lo; r < hi; r++ {
			y := f[r*k : (r+1)*k]
			for a := 0; a < k; a++ {
				if y[a] != 0 {
					axpy(y[a], y[a:], g[a*k+a:a*k+k])
				}
			}
		}
		partial[lo/gramChunk] = g
	})
	g := make([]float32, k*k)
	for _, p := range partial {
		for i, v := range p {
			g[i] += v
		}
	}
	for a := 0; a < k; a++ {
		for b := a + 1; b < k; b++ {
			g[b*k+a] = g[a*k+b]
		}
	}
	return g
}

func withRidge(g []float32, k int, lambda float64) []float32 {
	a := make([]float32, len(g))
	copy(a, g)
	for i := 0; i < k; i++ {
		a[i*k+i] += float32(lambda)
	}
	return a
}

// cgScratch is per-worker memory so the sweep allocates nothing per row:
// room for cgGroup rows' residuals, directions and products, one after
// another (symv4 reads and writes four consecutive vectors).
type cgScratch struct{ r, p, ap []float32 }

func newScratch(k int) *cgScratch {
	return &cgScratch{r: make([]float32, cgGroup*k), p: make([]float32, cgGroup*k), ap: make([]float32, cgGroup*k)}
}

// cgGroup rows run their CG steps in lockstep (cgRows4).
const cgGroup = 4

// cgRow improves x in place with `steps` conjugate-gradient steps on
// (A0 + Σ_j cm1_j y_j y_jᵀ) x = Σ_j cp_j y_j, where A0 = YᵀY + λI. Warm
// starting from the previous x is what makes 3 steps enough.
func cgRow(x, a0, other []float32, k int, cols []int32, cm1, cp []float32, steps int, s *cgScratch) {
	r, p, ap := s.r[:k], s.p[:k], s.ap[:k]
	symv(a0, k, x, ap)
	for i := range r {
		r[i] = -ap[i]
	}
	accumRows(other, k, cols, cm1, cp, x, r)
	rsold := dot(r, r)
	if rsold < 1e-20 {
		return
	}
	copy(p, r)
	for it := 0; it < steps; it++ {
		symv(a0, k, p, ap)
		accumRows(other, k, cols, cm1, nil, p, ap)
		pap := dot(p, ap)
		if !(pap > 0) {
			return
		}
		alpha := rsold / pap
		axpy(alpha, p, x)
		axpy(-alpha, ap, r)
		rsnew := dot(r, r)
		if rsnew < 1e-20 {
			return
		}
		beta := rsnew / rsold
		for i := range p {
			p[i] = r[i] + beta*p[i]
		}
		rsold = rsnew
	}
}

// cgRows4 runs cgRow on the four consecutive rows x[0:4k] (rows u0..u0+3 of
// m) in lockstep, so each product with A0 is one symv4 serving four rows:
// A0 (k×k, 92 KiB at k = 152) no longer fits L1, and streaming it once per
// row made the mat-vecs as costly as all the nonzeros. Every row's arithmetic
// is exactly cgRow's (symv4 is bit-identical to symv), including its early
// exits; a finished row just stops taking part.
func cgRows4(x, a0, other []float32, k int, m *feedback.CSR, u0 int, c confidence, steps int, s *cgScratch) {
	r, p, ap := s.r[:4*k], s.p[:4*k], s.ap[:4*k]
	var rsold [4]float32
	var active [4]bool
	live := 0
	symv4(a0, k, x[:4*k], ap)
	for g := 0; g < 4; g++ {
		rg, pg, apg := r[g*k:(g+1)*k], p[g*k:(g+1)*k], ap[g*k:(g+1)*k]
		for i := range rg {
			rg[i] = -apg[i]
		}
		b, e := m.Indptr[u0+g], m.Indptr[u0+g+1]
		accumRows(other, k, m.Indices[b:e], c.cm1[b:e], c.cp[b:e], x[g*k:(g+1)*k], rg)
		rsold[g] = dot(rg, rg)
		if rsold[g] < 1e-20 {
			clear(pg) // keep the unused lane's symv4 input finite and normal
			continue
		}
		active[g] = true
		live++
		copy(pg, rg)
	}
	for it := 0; it < steps && live > 0; it++ {
		symv4(a0, k, p, ap)
		for g := 0; g < 4; g++ {
			if !active[g] {
				continue
			}
			xg, rg, pg, apg := x[g*k:(g+1)*k], r[g*k:(g+1)*k], p[g*k:(g+1)*k], ap[g*k:(g+1)*k]
			b, e := m.Indptr[u0+g], m.Indptr[u0+g+1]
			accumRows(other, k, m.Indices[b:e], c.cm1[b:e], nil, pg, apg)
			pap := dot(pg, apg)
			if !(pap > 0) {
				active[g] = false
				live--
				continue
			}
			alpha := rsold[g] / pap
			axpy(alpha, pg, xg)
			axpy(-alpha, apg, rg)
			rsnew := dot(rg, rg)
			if rsnew < 1e-20 {
				active[g] = false
				live--
				continue
			}
			beta := rsnew / rsold[g]
			for i := range pg {
				pg[i] = rg[i] + beta*pg[i]
			}
			rsold[g] = rsnew
		}
	}
}

// sweep updates every row of x (rows×k) against the fixed other side.
func sweep(x, other []float32, k int, m *feedback.CSR, c confidence, a0 []float32, steps, threads int) {
	scratch := make([]*cgScratch, parallel.Threads(threads))
	for i := range scratch {
		scratch[i] = newScratch(k)
	}
	// A row costs about 4·2k flops per nonzero plus four k×k mat-vecs shared
	// by four rows: k/8 nonzeros' worth. 32 ranges per worker keep the
	// dynamic hand-out's tail short.
	bounds := parallel.BalancedBounds(m.Indptr, int64(k/8+1), 32*parallel.Threads(threads), cgGroup)
	parallel.Ranges(bounds, threads, func(w, lo, hi int) {
		s := scratch[w]
		u := lo
		for ; u+cgGroup <= hi; u += cgGroup {
			cgRows4(x[u*k:(u+cgGroup)*k], a0, other, k, m, u, c, steps, s)
		}
		for ; u < hi; u++ {
			b, e := m.Indptr[u], m.Indptr[u+1]
			cgRow(x[u*k:(u+1)*k], a0, other, k, m.Indices[b:e], c.cm1[b:e], c.cp[b:e], steps, s)
		}
	})
}

// loss evaluates the full objective using gy = YᵀY (without λ) for the
// unobserved pairs: Σ_i (x·y_i)² = xᵀ(YᵀY)x, then corrects the observed ones.
func loss(x, y []float32, gy []float32, k int, m *feedback.CSR, c confidence, lambda float64, threads int) float64 {
	chunks := (m.Rows + gramChunk - 1) / gramChunk
	partial := make([]float64, chunks)
	tmp := make([][]float32, parallel.Threads(threads))
	for i := range tmp {
		tmp[i] = make([]float32, k)
	}
	parallel.Chunks(m.Rows, gramChunk, threads, func(w, lo, hi int) {
		var sum float64
		t := tmp[w]
		for u := lo; u < hi; u++ {
			xu := x[u*k : (u+1)*k]
			symv(gy, k, xu, t)
			sum += float64(dot(xu, t))
			for p := m.Indptr[u]; p < m.Indptr[u+1]; p++ {
				i := int(m.Indices[p])
				s := float64(dot(xu, y[i*k:(i+1)*k]))
				conf := 1 + float64(c.cm1[p])
				pref := 0.0
				if c.cp[p] > 0 {
					pref = 1
				}
				sum += conf*(pref-s)*(pref-s) - s*s
			}
			sum += lambda * float64(dot(xu, xu))
		}
		partial[lo/gramChunk] = sum
	})
	var total float64
	for _, p := range partial {
		total += p
	}
	var ny float64
	for i := 0; i < len(y); i += k {
		ny += float64(dot(y[i:i+k], y[i:i+k]))
	}
	return total + lambda*ny
}

// Train fits a model to m (users × items of raw weights, see Entry). onIter,
// if non-nil, is called after each iteration from the calling goroutine with
// the training loss; computing that loss costs roughly one extra half-sweep
// of dot products, so it is skipped when onIter is nil. Cancelling ctx stops
// training between iterations and returns ctx.Err().
func Train(ctx context.Context, m *feedback.CSR, p Params, onIter func(IterationStats)) (*Model, error) {
	return TrainFrom(ctx, m, p, nil, onIter)
}

// TrainFrom is Train starting from init's factors instead of random ones
// (nil init is Train). init must have m's shape and p.Factors factors; its
// other parameters are not used. The intended use is a warm start: the
// batch pipeline fits a model on a holdout split (same users and items, a
// few entries fewer) and then refits on all data from it, where a few
// iterations reach the loss a cold start needs all of p.Iterations for
// (see docs/BENCHMARKS.md). The result is deterministic for a given init,
// p.Threads and data; p.Seed is unused.
func TrainFrom(ctx context.Context, m *feedback.CSR, p Params, init *Model, onIter func(IterationStats)) (*Model, error) {
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	if init != nil {
		if init.Users != m.Rows || init.Items != m.Cols || init.Factors != p.Factors ||
			len(init.UserFactors) != m.Rows*p.Factors || len(init.ItemFactors) != m.Cols*p.Factors {
			return nil, fmt.Errorf("train: initial model is %d×%d with %d factors, want %d×%d with %d",
				init.Users, init.Items, init.Factors, m.Rows, m.Cols, p.Factors)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	k, threads, steps := p.Factors, p.Threads, p.cgSteps()
	model := &Model{Params: p, Users: m.Rows, Items: m.Cols, Factors: k}
	model.ItemWeights = feedback.ItemWeights(m, p.Weighing())
	cu := weighMatrix(m, p, model.ItemWeights)
	mt := m.Transpose()
	ci := transposeConfidence(m, cu)

	// Rows are padded to a multiple of 8 floats so every kernel runs whole
	// SIMD vectors; the padding stays exactly zero (its equations reduce to
	// λ·x = 0) and is stripped before returning.
	kp := (k + 7) &^ 7
	var x, y []float32
	if init != nil {
		x = pad(init.UserFactors, m.Rows, k, kp)
		y = pad(init.ItemFactors, m.Cols, k, kp)
	} else {
		rng := rand.New(rand.NewPCG(uint64(p.Seed), 0x5e7115)) // fixed stream: same seed, same start
		x = randomFactors(rng, m.Rows, k, kp)
		y = randomFactors(rng, m.Cols, k, kp)
	}
	k = kp

	gy := gram32(y, m.Cols, k, threads)
	for it := 1; it <= p.Iterations; it++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		start := time.Now()
		sweep(x, y, k, m, cu, withRidge(gy, k, p.Regularization), steps, threads)
		gx := gram32(x, m.Rows, k, threads)
		sweep(y, x, k, mt, ci, withRidge(gx, k, p.Regularization), steps, threads)
		gy = gram32(y, m.Cols, k, threads)
		if onIter != nil {
			st := IterationStats{Iteration: it, Duration: time.Since(start)}
			st.Loss = loss(x, y, gy, k, m, cu, p.Regularization, threads)
			onIter(st)
		}
	}
	model.UserFactors = unpad(x, m.Rows, p.Factors, kp)
	model.ItemFactors = unpad(y, m.Cols, p.Factors, kp)
	return model, nil
}

// randomFactors mirrors implicit's start, uniform [0, 0.01), row by row in a
// fixed order so the start depends only on the seed.
func randomFactors(rng *rand.Rand, rows, k, stride int) []float32 {
	f := make([]float32, rows*stride)
	for r := 0; r < rows; r++ {
		for c := 0; c < k; c++ {
			f[r*stride+c] = float32(rng.Float64() * 0.01)
		}
	}
	return f
}

// pad copies rows of k floats into rows of stride floats (zero tails).
func pad(f []float32, rows, k, stride int) []float32 {
	out := make([]float32, rows*stride)
	for r := 0; r < rows; r++ {
		copy(out[r*stride:r*stride+k], f[r*k:(r+1)*k])
	}
	return out
}

func unpad(f []float32, rows, k, stride int) []float32 {
	if k == stride {
		return f
	}
	out := make([]float32, rows*k)
	for r := 0; r < rows; r++ {
		copy(out[r*k:(r+1)*k], f[r*stride:r*stride+k])
	}
	return out
}
