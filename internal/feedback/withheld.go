package feedback

import (
	"fmt"
	"slices"
)

// Songs taken down when a model is trained ("unavailable") are ranked like
// any other and kept in each stored list where they rank, withheld: every
// answer leaves them out while they stay hidden (serve's hidden set), and
// showing one again brings it back to every list it belongs in at once,
// with no training (issue 22). They do not count towards a list's depth,
// so a list holds its k available songs plus the withheld ones ranked
// above the last of them: no list runs short because of a takedown known
// at training time.

// RankFunc ranks every user's top n items, leaving out the items of except
// (ascending). It is the one ranking of a model family (training's top-N,
// an artifact's, the precompute's batched fold-in).
type RankFunc func(n int, except []int32) ([][]Scored, error)

// RankWithheld is rank's lists of depth k with the unavailable items
// withheld in place: each list is its top k of the available items, and
// of its top min(k, len(unavailable)) unavailable items those that rank
// above its k-th available one (all of them when it has fewer than k).
// unavailable is ascending, every index below cols. With none it is
// rank(k, nil).
func RankWithheld(k, cols int, unavailable []int32, rank RankFunc) ([][]Scored, error) {
	lists, err := rank(k, unavailable)
	if err != nil || len(unavailable) == 0 || k <= 0 {
		return lists, err
	}
	if err := CheckExcept(unavailable, cols); err != nil {
		return nil, fmt.Errorf("withheld songs: %w", err)
	}
	held, err := rank(min(k, len(unavailable)), Complement(unavailable, cols))
	if err != nil {
		return nil, fmt.Errorf("rank the withheld songs: %w", err)
	}
	if len(held) != len(lists) {
		return nil, fmt.Errorf("rank the withheld songs: %d lists for %d users", len(held), len(lists))
	}
	for u := range lists {
		lists[u] = MergeWithheld(lists[u], held[u], k)
	}
	return lists, nil
}

// MergeWithheld merges into list (the top k available items, ranked) the
// withheld items of held (ranked) that rank above its k-th item, or all of
// held when list is shorter than k. The order is the rankings' own: score
// descending, then item ascending.
func MergeWithheld(list, held []Scored, k int) []Scored {
	if len(held) == 0 {
		return list
	}
	if len(list) >= k {
		last := list[k-1]
		n := 0
		for n < len(held) && ranksBefore(held[n], last) {
			n++
		}
		held = held[:n]
		if n == 0 {
			return list
		}
	}
	out := make([]Scored, 0, len(list)+len(held))
	i, j := 0, 0
	for i < len(list) || j < len(held) {
		if j == len(held) || (i < len(list) && ranksBefore(list[i], held[j])) {
			out = append(out, list[i])
			i++
		} else {
			out = append(out, held[j])
			j++
		}
	}
	return out
}

// ranksBefore is the rankings' order: a higher score first, then the lower
// item index.
func ranksBefore(a, b Scored) bool {
	return a.Score > b.Score || (a.Score == b.Score && a.Item < b.Item)
}

// Complement is every index below cols not in sorted (ascending), in
// ascending order.
func Complement(sorted []int32, cols int) []int32 {
	out := make([]int32, 0, max(cols-len(sorted), 0))
	j := 0
	for i := int32(0); int(i) < cols; i++ {
		if j < len(sorted) && sorted[j] == i {
			j++
			continue
		}
		out = append(out, i)
	}
	return out
}

// Withheld counts the entries of list whose item is in unavailable
// (ascending): how much longer than its depth a stored list is.
func Withheld(list []Scored, unavailable []int32) int {
	n := 0
	for _, s := range list {
		if _, ok := slices.BinarySearch(unavailable, s.Item); ok {
			n++
		}
	}
	return n
}
