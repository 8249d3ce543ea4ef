package feedback

import (
	"math"
	"strings"
	"testing"
)

func TestCheckRows(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	tests := []struct {
		name string
		v    []float32
		rows int
		want string // "" = accepted
	}{
		{"finite", []float32{1, 2, 3, 4}, 2, ""},
		{"zero rows", nil, 0, ""},
		{"NaN", []float32{1, 2, 3, nan}, 2, "row 1 column 1 is NaN"},
		{"+Inf", []float32{inf, 2, 3, 4}, 2, "row 0 column 0 is +Inf"},
		{"-Inf", []float32{1, float32(math.Inf(-1)), 3, 4}, 2, "row 0 column 1 is -Inf"},
		{"norm over the bound", []float32{1, 2, 3e6, 4e6}, 2, "row 1 has norm 5e+06"},
		{"norm at the bound", []float32{6e5, 8e5, 0, 0}, 2, ""},
		{"wrong length", []float32{1, 2, 3}, 2, "3 values for 2 rows"},
	}
	for _, tt := range tests {
		err := CheckRows("f", tt.v, tt.rows, 2)
		if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
	if err := CheckFinite("w", []float32{0, 1, nan}); err == nil || !strings.Contains(err.Error(), "value 2 is NaN") {
		t.Errorf("CheckFinite: %v", err)
	}
}
