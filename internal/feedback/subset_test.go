package feedback

import (
	"slices"
	"testing"
)

func TestSubsetRows(t *testing.T) {
	m := NewCSR(3, 4, []Entry{{Row: 0, Col: 1, Value: 1}, {Row: 1, Col: 0, Value: 2}, {Row: 1, Col: 3, Value: 3}, {Row: 2, Col: 2, Value: 4}})
	for _, tc := range []struct {
		name string
		rows []int
		want [][]int32 // each new row's columns
	}{
		{"all", []int{0, 1, 2}, [][]int32{{1}, {0, 3}, {2}}},
		{"reordered", []int{2, 0}, [][]int32{{2}, {1}}},
		{"one", []int{1}, [][]int32{{0, 3}}},
		{"none", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := m.SubsetRows(tc.rows)
			if s.Rows != len(tc.rows) || s.Cols != m.Cols {
				t.Fatalf("shape %d×%d, want %d×%d", s.Rows, s.Cols, len(tc.rows), m.Cols)
			}
			for i, r := range tc.rows {
				cols, vals := s.Row(i)
				wantCols, wantVals := m.Row(r)
				if !slices.Equal(cols, tc.want[i]) || !slices.Equal(cols, wantCols) || !slices.Equal(vals, wantVals) {
					t.Errorf("row %d (from %d): %v %v, want %v %v", i, r, cols, vals, wantCols, wantVals)
				}
			}
		})
	}
}
