package feedback

import (
	"math"
	"reflect"
	"slices"
	"testing"
)

func TestMetricSums(t *testing.T) {
	l2 := func(r int) float64 { return 1 / math.Log2(float64(r+1)) }
	tests := []struct {
		name                          string
		rec, test                     []int32
		k                             int
		precision, recall, ndcg, mapk float64
	}{
		{"all hits", []int32{1, 2}, []int32{1, 2}, 2, 1, 1, 1, 1},
		{"hit at rank 2 of 3", []int32{5, 1, 7}, []int32{1, 9}, 3, 1.0 / 3, 0.5, l2(2) / (l2(1) + l2(2)), (1.0 / 2) / 2},
		{"no hits", []int32{5, 6}, []int32{1}, 2, 0, 0, 0, 0},
		{"short list, small test", []int32{3}, []int32{3}, 5, 0.2, 1, 1, 1},
		{"hits at 1 and 3, big test", []int32{4, 0, 8}, []int32{4, 8, 10, 11, 12}, 3, 2.0 / 3, 2.0 / 5, (l2(1) + l2(3)) / (l2(1) + l2(2) + l2(3)), (1 + 2.0/3) / 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var s metricSums
			s.add(tc.rec, tc.test, tc.k)
			m := s.metrics(tc.k, 20, make([]bool, 20))
			for _, c := range []struct {
				name      string
				got, want float64
			}{{"precision", m.Precision, tc.precision}, {"recall", m.Recall, tc.recall}, {"ndcg", m.NDCG, tc.ndcg}, {"map", m.MAP, tc.mapk}} {
				if math.Abs(c.got-c.want) > 1e-12 {
					t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
				}
			}
			if wantHit := tc.precision > 0; (m.HitRate == 1) != wantHit {
				t.Errorf("hit rate %v", m.HitRate)
			}
		})
	}
}

func TestNewCSR(t *testing.T) {
	tests := []struct {
		name    string
		rows    int
		cols    int
		entries []Entry
		indptr  []int64
		indices []int32
		data    []float32
	}{
		{"empty", 2, 3, nil, []int64{0, 0, 0}, []int32{}, []float32{}},
		{"sorts and sums duplicates", 2, 4, []Entry{{0, 3, 1}, {0, 1, 2}, {0, 3, 4}, {1, 0, -1}}, []int64{0, 2, 3}, []int32{1, 3, 0}, []float32{2, 5, -1}},
		{"drops zero sums, zeros and out of range", 2, 2, []Entry{{0, 0, 1}, {0, 0, -1}, {1, 1, 0}, {2, 0, 1}, {0, 2, 1}, {-1, 0, 1}, {1, 0, 3}}, []int64{0, 0, 1}, []int32{0}, []float32{3}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := NewCSR(tc.rows, tc.cols, tc.entries)
			if !slices.Equal(m.Indptr, tc.indptr) || !slices.Equal(m.Indices, tc.indices) || !slices.Equal(m.Data, tc.data) {
				t.Fatalf("got %v %v %v, want %v %v %v", m.Indptr, m.Indices, m.Data, tc.indptr, tc.indices, tc.data)
			}
			if err := m.Validate(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestTranspose(t *testing.T) {
	m := NewCSR(3, 2, []Entry{{0, 1, 1}, {2, 1, 2}, {1, 0, 3}, {2, 0, 4}})
	tr := m.Transpose()
	want := NewCSR(2, 3, []Entry{{1, 0, 1}, {1, 2, 2}, {0, 1, 3}, {0, 2, 4}})
	if !reflect.DeepEqual(tr, want) {
		t.Fatalf("transpose = %+v, want %+v", tr, want)
	}
	if !reflect.DeepEqual(tr.Transpose(), m) {
		t.Fatal("double transpose differs")
	}
	cols, vals := tr.Row(1)
	if !slices.Equal(cols, []int32{0, 2}) || !slices.Equal(vals, []float32{1, 2}) {
		t.Fatalf("row 1 = %v %v", cols, vals)
	}
	if c, _ := tr.Row(5); c != nil {
		t.Fatal("out-of-range row not nil")
	}
}

func TestSplitHoldout(t *testing.T) {
	m := NewCSR(3, 10, []Entry{
		{0, 0, 1}, {0, 1, 2}, {0, 2, 1}, {0, 3, 1}, {0, 4, 1}, {0, 5, 1}, {0, 6, -1},
		{1, 0, 1}, {1, 1, -3},
		{2, 7, 1}, {2, 8, 1},
	})
	train, test := SplitHoldout(m, 0.5, 9)
	// user 0: 6 positives → 3 to test; dislike stays. user 1: 1 positive →
	// all train. user 2: 2 positives → round(1) = 1 to test.
	if got := []int{rowLen(test, 0), rowLen(test, 1), rowLen(test, 2)}; got[0] != 3 || got[1] != 0 || got[2] != 1 {
		t.Fatalf("test row sizes %v, want [3 0 1]", got)
	}
	if train.NNZ()+test.NNZ() != m.NNZ() {
		t.Fatal("split lost entries")
	}
	cols, vals := train.Row(0)
	if cols[len(cols)-1] != 6 || vals[len(vals)-1] != -1 {
		t.Fatal("dislike not kept in train")
	}
	tr2, te2 := SplitHoldout(m, 0.5, 9)
	if !equalCSR(train, tr2) || !equalCSR(test, te2) {
		t.Fatal("split not deterministic")
	}
}

func rowLen(m *CSR, r int) int { c, _ := m.Row(r); return len(c) }

func equalCSR(a, b *CSR) bool {
	if a.Rows != b.Rows || a.Cols != b.Cols || len(a.Indices) != len(b.Indices) {
		return false
	}
	for i := range a.Indices {
		if a.Indices[i] != b.Indices[i] || a.Data[i] != b.Data[i] {
			return false
		}
	}
	for i := range a.Indptr {
		if a.Indptr[i] != b.Indptr[i] {
			return false
		}
	}
	return true
}
