package feedback

import (
	"errors"
	"slices"
	"testing"
)

func sc(pairs ...float32) []Scored {
	out := make([]Scored, 0, len(pairs)/2)
	for i := 0; i < len(pairs); i += 2 {
		out = append(out, Scored{Item: int32(pairs[i]), Score: pairs[i+1]})
	}
	return out
}

func TestMergeWithheld(t *testing.T) {
	for _, tc := range []struct {
		name       string
		list, held []Scored
		k          int
		want       []Scored
	}{
		{"nothing withheld", sc(1, 9, 2, 8), nil, 2, sc(1, 9, 2, 8)},
		{"above the last: kept in place", sc(1, 9, 2, 5), sc(7, 6), 2, sc(1, 9, 7, 6, 2, 5)},
		{"first of all", sc(1, 9, 2, 5), sc(7, 10, 8, 9.5), 2, sc(7, 10, 8, 9.5, 1, 9, 2, 5)},
		{"below the last: dropped", sc(1, 9, 2, 5), sc(7, 4, 8, 1), 2, sc(1, 9, 2, 5)},
		{"some above, some below", sc(1, 9, 2, 5), sc(7, 6, 8, 4), 2, sc(1, 9, 7, 6, 2, 5)},
		{"tie with the last: lower index ranks first", sc(1, 9, 5, 5), sc(3, 5, 7, 5), 2, sc(1, 9, 3, 5, 5, 5)},
		{"tie within: item order", sc(4, 9, 6, 5), sc(2, 9), 2, sc(2, 9, 4, 9, 6, 5)},
		{"short list keeps every withheld song", sc(1, 9), sc(7, 6, 8, 1), 3, sc(1, 9, 7, 6, 8, 1)},
		{"empty list", nil, sc(7, 6), 2, sc(7, 6)},
		{"list longer than k: compared with its k-th", sc(1, 9, 2, 8, 3, 1), sc(7, 5), 2, sc(1, 9, 2, 8, 3, 1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := MergeWithheld(slices.Clone(tc.list), tc.held, tc.k); !slices.Equal(got, tc.want) {
				t.Fatalf("MergeWithheld(%v, %v, %d) = %v, want %v", tc.list, tc.held, tc.k, got, tc.want)
			}
		})
	}
}

// TestRankWithheld checks RankWithheld against its definition on one user
// whose ranking of items 0..9 is known: the first k available items, plus
// the unavailable ones among the top min(k, |unavailable|) of them that
// rank above the k-th available one.
func TestRankWithheld(t *testing.T) {
	// Item i scores 100-i*i%17 (a fixed shuffle); rank sorts by it.
	score := func(i int32) float32 { return float32(100 - (i*i)%17) }
	rank := func(n int, except []int32) ([][]Scored, error) {
		var all []Scored
		for i := int32(0); i < 10; i++ {
			if _, ok := slices.BinarySearch(except, i); !ok {
				all = append(all, Scored{Item: i, Score: score(i)})
			}
		}
		slices.SortFunc(all, func(a, b Scored) int {
			if ranksBefore(a, b) {
				return -1
			}
			return 1
		})
		return [][]Scored{all[:min(n, len(all))]}, nil
	}
	full, _ := rank(10, nil)
	for _, tc := range []struct {
		k           int
		unavailable []int32
	}{
		{3, nil}, {3, []int32{0}}, {3, []int32{1, 4}}, {2, []int32{0, 1, 2, 3, 4, 5}},
		{5, []int32{9}}, {4, []int32{0, 1, 2, 3, 4, 5, 6, 7, 8}}, {10, []int32{2}},
	} {
		got, err := RankWithheld(tc.k, 10, tc.unavailable, rank)
		if err != nil {
			t.Fatal(err)
		}
		// The definition, walked over the full ranking.
		var want []Scored
		avail, held := 0, 0
		for _, s := range full[0] {
			_, un := slices.BinarySearch(tc.unavailable, s.Item)
			switch {
			case avail == tc.k:
			case un && held < min(tc.k, len(tc.unavailable)):
				want, held = append(want, s), held+1
			case !un:
				want, avail = append(want, s), avail+1
			}
		}
		if !slices.Equal(got[0], want) {
			t.Errorf("k %d unavailable %v: got %v, want %v", tc.k, tc.unavailable, got[0], want)
		}
		if n := len(got[0]) - Withheld(got[0], tc.unavailable); n != min(tc.k, 10-len(tc.unavailable)) {
			t.Errorf("k %d unavailable %v: %d available songs", tc.k, tc.unavailable, n)
		}
	}
	if _, err := RankWithheld(3, 10, []int32{4, 2}, rank); err == nil {
		t.Error("unsorted unavailable indexes accepted")
	}
	boom := errors.New("boom")
	if _, err := RankWithheld(3, 10, []int32{2}, func(n int, except []int32) ([][]Scored, error) {
		if len(except) > 1 {
			return nil, boom
		}
		return rank(n, except)
	}); !errors.Is(err, boom) {
		t.Errorf("the second ranking's error was not returned: %v", err)
	}
}

func TestComplement(t *testing.T) {
	for _, tc := range []struct {
		in   []int32
		cols int
		want []int32
	}{
		{nil, 3, []int32{0, 1, 2}}, {[]int32{0, 2}, 4, []int32{1, 3}}, {[]int32{0, 1}, 2, []int32{}},
	} {
		if got := Complement(tc.in, tc.cols); !slices.Equal(got, tc.want) {
			t.Errorf("Complement(%v, %d) = %v, want %v", tc.in, tc.cols, got, tc.want)
		}
	}
}
