package feedback

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// Metrics are ranking metrics at K averaged over the Users evaluated (users
// with at least one test item). For a user with test set T and top-K list R
// (the whole catalogue minus the user's train items, ranked; |R| ≤ K):
//
//	hits       = |R ∩ T|
//	precision  = hits / K                    (not min(K,|T|), unlike implicit)
//	recall     = hits / |T|
//	ndcg       = DCG / IDCG, DCG = Σ_{r∈R∩T} 1/log2(rank_r+1) with rank from 1,
//	             IDCG = Σ_{i=1..min(K,|T|)} 1/log2(i+1)
//	map        = (Σ_{r∈R∩T} hits_within_first_rank_r / rank_r) / min(K,|T|)
//	hit_rate   = share of users with hits ≥ 1
//	coverage   = distinct items in any evaluated user's R / catalogue size
//
// JSON field names carry the cut-off explicitly (precision_at_k, ...).
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

func (m Metrics) String() string {
	return fmt.Sprintf("users=%d p@%d=%.4f r@%d=%.4f ndcg@%d=%.4f map@%d=%.4f hit@%d=%.4f cov@%d=%.4f",
		m.Users, m.K, m.Precision, m.K, m.Recall, m.K, m.NDCG, m.K, m.MAP, m.K, m.HitRate, m.K, m.Coverage)
}

// SplitHoldout moves round(fraction·n) of each user's n positive entries
// (at most n−1) to test, chosen by a generator seeded from (seed, user) so a
// user's split does not depend on any other row. Users with fewer than 2
// positives keep everything in train so every test user still has history;
// dislikes always stay in train. Both results have m's shape.
func SplitHoldout(m *CSR, fraction float64, seed int64) (train, test *CSR) {
	var trainE, testE []Entry
	var pos []int
	for u := 0; u < m.Rows; u++ {
		cols, vals := m.Row(u)
		pos = pos[:0]
		for j, v := range vals {
			if v > 0 {
				pos = append(pos, j)
			}
		}
		nTest := 0
		if len(pos) >= 2 && fraction > 0 {
			nTest = min(len(pos)-1, int(math.Round(fraction*float64(len(pos)))))
		}
		held := make(map[int]bool, nTest)
		if nTest > 0 {
			rng := rand.New(rand.NewPCG(uint64(seed), uint64(u)))
			rng.Shuffle(len(pos), func(i, j int) { pos[i], pos[j] = pos[j], pos[i] })
			for _, j := range pos[:nTest] {
				held[j] = true
			}
		}
		for j, c := range cols {
			e := Entry{Row: int32(u), Col: c, Value: vals[j]}
			if held[j] {
				testE = append(testE, e)
			} else {
				trainE = append(trainE, e)
			}
		}
	}
	return NewCSR(m.Rows, m.Cols, trainE), NewCSR(m.Rows, m.Cols, testE)
}

// metricSums accumulates one user's contribution; rec is best first and
// test sorted.
type metricSums struct {
	users                                  int
	precision, recall, ndcg, mapk, hitRate float64
}

func (s *metricSums) add(rec []int32, test []int32, k int) {
	if len(test) == 0 {
		return
	}
	s.users++
	var hits int
	var dcg, ap float64
	for r, item := range rec {
		if r >= k {
			break
		}
		if _, ok := slices.BinarySearch(test, item); ok {
			hits++
			dcg += 1 / math.Log2(float64(r+2))
			ap += float64(hits) / float64(r+1)
		}
	}
	ideal := min(k, len(test))
	var idcg float64
	for r := 0; r < ideal; r++ {
		idcg += 1 / math.Log2(float64(r+2))
	}
	s.precision += float64(hits) / float64(k)
	s.recall += float64(hits) / float64(len(test))
	s.ndcg += dcg / idcg
	s.mapk += ap / float64(ideal)
	if hits > 0 {
		s.hitRate++
	}
}

func (s *metricSums) metrics(k, catalogue int, recommended []bool) Metrics {
	m := Metrics{K: k, Users: s.users}
	if s.users == 0 {
		return m
	}
	n := float64(s.users)
	m.Precision, m.Recall, m.NDCG, m.MAP, m.HitRate = s.precision/n, s.recall/n, s.ndcg/n, s.mapk/n, s.hitRate/n
	var distinct int
	for _, r := range recommended {
		if r {
			distinct++
		}
	}
	if catalogue > 0 {
		m.Coverage = float64(distinct) / float64(catalogue)
	}
	return m
}

// Summarize averages the metrics of every user with test items, given
// their ranked lists: the one aggregation of Evaluate and EvaluateDense.
func Summarize(recs, tests [][]int32, k, items int) Metrics {
	var sums metricSums
	seen := make([]bool, items)
	for u, rec := range recs {
		if len(tests[u]) == 0 {
			continue
		}
		sums.add(rec, tests[u], k)
		for _, i := range rec {
			seen[i] = true
		}
	}
	return sums.metrics(k, items, seen)
}

// CheckShapes reports why train, test and a catalog of items cannot be
// evaluated together (a malformed matrix, or shapes that differ).
func CheckShapes(train, test *CSR, items int) error {
	if err := train.Validate(); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	if err := test.Validate(); err != nil {
		return fmt.Errorf("test: %w", err)
	}
	if train.Rows != test.Rows || train.Cols != items || test.Cols != items {
		return fmt.Errorf("train %d×%d, test %d×%d and %d items do not match", train.Rows, train.Cols, test.Rows, test.Cols, items)
	}
	return nil
}

// PositiveRows lists each row's positive columns (sorted, as CSR rows are).
func PositiveRows(m *CSR) [][]int32 {
	out := make([][]int32, m.Rows)
	for u := range out {
		cols, vals := m.Row(u)
		for j, v := range vals {
			if v > 0 {
				out[u] = append(out[u], cols[j])
			}
		}
	}
	return out
}

// PopularityBaseline recommends the items with the most positive train
// users (ties to the lower index) to everyone, minus their train items: the
// floor any personalised model must beat.
func PopularityBaseline(train, test *CSR, k int) Metrics {
	if k <= 0 || CheckShapes(train, test, train.Cols) != nil {
		return Metrics{K: k}
	}
	count := make([]int, train.Cols)
	for p, c := range train.Indices {
		if train.Data[p] > 0 {
			count[c]++
		}
	}
	order := make([]int32, train.Cols)
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortStableFunc(order, func(a, b int32) int { return count[b] - count[a] })
	tests := PositiveRows(test)
	var sums metricSums
	seen := make([]bool, train.Cols)
	rec := make([]int32, 0, k)
	for u := 0; u < train.Rows; u++ {
		if len(tests[u]) == 0 {
			continue
		}
		own, _ := train.Row(u)
		rec = rec[:0]
		for _, i := range order {
			if len(rec) == k {
				break
			}
			if _, ok := slices.BinarySearch(own, i); !ok {
				rec = append(rec, i)
				seen[i] = true
			}
		}
		sums.add(rec, tests[u], k)
	}
	return sums.metrics(k, train.Cols, seen)
}

// Mean is the mean of xs (0 when empty): of one metric over repeated
// draws, such as the tuner's incumbent scored with several seeds.
func Mean(xs []float64) float64 {
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(max(len(xs), 1))
}

// StdDev is the sample standard deviation of xs (n−1; 0 for fewer than
// two): the spread of repeated draws, the tuner's noise margin.
func StdDev(xs []float64) float64 {
	if len(xs) < 2 {
		return 0
	}
	m := Mean(xs)
	var s float64
	for _, x := range xs {
		s += (x - m) * (x - m)
	}
	return math.Sqrt(s / float64(len(xs)-1))
}
