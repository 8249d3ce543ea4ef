package parallel

import (
	"slices"
	"testing"
)

func TestBalancedBounds(t *testing.T) {
	// One heavy row among light ones: it gets a range of its own.
	indptr := []int64{0}
	for r := 0; r < 100; r++ {
		n := int64(1)
		if r == 40 {
			n = 1000
		}
		indptr = append(indptr, indptr[len(indptr)-1]+n)
	}
	b := BalancedBounds(indptr, 1, 8, 4)
	if b[0] != 0 || b[len(b)-1] != 100 {
		t.Fatalf("bounds %v do not span the rows", b)
	}
	for i := 1; i < len(b); i++ {
		if b[i] <= b[i-1] || (i < len(b)-1 && b[i]%4 != 0) {
			t.Fatalf("bounds %v not increasing or not aligned", b)
		}
	}
	if !slices.Contains(b, 44) {
		t.Fatalf("bounds %v: the heavy row's range should end at the next multiple of 4", b)
	}
	if got := BalancedBounds([]int64{0}, 1, 8, 4); !slices.Equal(got, []int{0, 0}) {
		t.Fatalf("empty matrix: %v", got)
	}
}
