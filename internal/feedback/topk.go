package feedback

import (
	"fmt"
	"math"
	"slices"
)

// TopK keeps the n best (score desc, item asc) candidates in a min-heap whose
// root is the current worst, so most candidates are rejected by one compare.
type TopK struct {
	n    int
	heap []Scored
}

// NewTopK keeps the n best.
func NewTopK(n int) *TopK { return &TopK{n: n, heap: make([]Scored, 0, max(n, 0))} }

// Reset empties t for the next row.
func (t *TopK) Reset() { t.heap = t.heap[:0] }

// better orders by score, then by lower item index for deterministic ties.
func better(a, b Scored) bool {
	return a.Score > b.Score || (a.Score == b.Score && a.Item < b.Item)
}

// threshold returns the score a candidate must reach to possibly enter.
func (t *TopK) full() bool { return len(t.heap) >= t.n }

// Push offers item with score; a NaN score never ranks.
func (t *TopK) Push(item int32, score float32) {
	if t.n <= 0 || score != score { // NaN never ranks
		return
	}
	c := Scored{Item: item, Score: score}
	h := t.heap
	if len(h) < t.n {
		h = append(h, c)
		i := len(h) - 1
		for i > 0 {
			parent := (i - 1) / 2
			if !better(h[parent], h[i]) {
				break
			}
			h[parent], h[i] = h[i], h[parent]
			i = parent
		}
		t.heap = h
		return
	}
	if !better(c, h[0]) {
		return
	}
	h[0] = c
	i := 0
	for {
		l := 2*i + 1
		if l >= len(h) {
			break
		}
		worst := l
		if r := l + 1; r < len(h) && better(h[l], h[r]) {
			worst = r
		}
		if !better(h[i], h[worst]) {
			break
		}
		h[i], h[worst] = h[worst], h[i]
		i = worst
	}
}

// Sorted returns the kept candidates best first in a new slice.
func (t *TopK) Sorted() []Scored {
	out := slices.Clone(t.heap)
	slices.SortFunc(out, func(a, b Scored) int {
		if better(a, b) {
			return -1
		}
		if better(b, a) {
			return 1
		}
		return 0
	})
	return out
}

// minScore is the root's score; only meaningful when full.
func (t *TopK) minScore() float32 { return t.heap[0].Score }

// offer pushes item unless it is excluded. ex is the user's sorted exclude
// row and *cur a cursor into it that only moves forward: a user's items are
// offered in increasing order, so the exclusion check is a merge.
func (t *TopK) offer(item int32, score float32, ex []int32, cur *int) {
	c := *cur
	for c < len(ex) && ex[c] < item {
		c++
	}
	*cur = c
	if c < len(ex) && ex[c] == item {
		return
	}
	t.Push(item, score)
}

// pushRowGo offers row[j] as item base+j. Items arrive in increasing order,
// so once t is full a later item can only enter with a strictly greater
// score than the worst kept (an equal score loses the tie on index): one
// compare rejects most candidates before the exclusion check or the heap.
func pushRowGo(row []float32, base int32, t *TopK, ex []int32, cur *int) {
	for j, v := range row {
		if t.full() && !(v > t.minScore()) {
			continue
		}
		t.offer(base+int32(j), v, ex, cur)
	}
}

// Mask sets the score of every item of except (sorted ascending) that falls
// in row, which holds items base, base+1, …, to NaN, which never ranks: the
// one way a top-N leaves out items for every user (songs taken down) without
// a row of exclusions per user.
func Mask(row []float32, base int32, except []int32) {
	if len(except) == 0 {
		return
	}
	end := base + int32(len(row))
	i, _ := slices.BinarySearch(except, base)
	nan := float32(math.NaN())
	for ; i < len(except) && except[i] < end; i++ {
		row[except[i]-base] = nan
	}
}

// CheckExcept reports an except list Mask cannot use: not strictly
// ascending, or naming an item outside [0, items).
func CheckExcept(except []int32, items int) error {
	for i, it := range except {
		if it < 0 || int(it) >= items || (i > 0 && it <= except[i-1]) {
			return fmt.Errorf("items left out of every list must be ascending indexes below %d; entry %d is %d", items, i, it)
		}
	}
	return nil
}
