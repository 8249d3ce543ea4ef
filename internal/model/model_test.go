package model

import (
	"bytes"
	"encoding/binary"
	"math"
	"slices"
	"testing"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/als"
	"github.com/setlist/setlist/internal/feedback"
)

func TestSignalWeight(t *testing.T) {
	s := Scheme{LikeWeight: 4, DislikeWeight: 2}
	type r struct {
		kind setlist.ReactionKind
		w    float32
	}
	tests := []struct {
		name   string
		in     []r
		want   float32
		wantOK bool
	}{
		{"nothing", nil, 0, false},
		{"plays sum", []r{{setlist.Play, 3}, {setlist.Play, 2}}, 5, true},
		{"zero plays carry no signal", []r{{setlist.Play, 0}}, 0, false},
		{"like alone", []r{{setlist.Like, 1}}, 4, true},
		{"like adds to plays", []r{{setlist.Play, 3}, {setlist.Like, 1}}, 7, true},
		{"dislike overrides plays and like", []r{{setlist.Play, 9}, {setlist.Like, 1}, {setlist.Dislike, 1}}, -2, true},
		{"dislike alone", []r{{setlist.Dislike, 1}}, -2, true},
		{"unknown kind ignored", []r{{"skip", 5}, {setlist.Play, 1}}, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var a Signal
			for _, x := range tt.in {
				a.Add(x.kind, x.w)
			}
			got, ok := a.Weight(s)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("Weight = %v, %v; want %v, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestCatalogRow(t *testing.T) {
	c := NewCatalog([]setlist.SongID{10, 20, 30, 40})
	s := DefaultScheme()
	react := func(song setlist.SongID, kind setlist.ReactionKind, w float64) setlist.Reaction {
		return setlist.Reaction{User: "u", Song: song, Kind: kind, Weight: w}
	}
	tests := []struct {
		name     string
		in       []setlist.Reaction
		wantCols []int32
		wantVals []float32
	}{
		{"empty", nil, []int32{}, []float32{}},
		{"plays in first-seen order", []setlist.Reaction{react(30, setlist.Play, 2), react(10, setlist.Play, 1)}, []int32{2, 0}, []float32{2, 1}},
		{"unknown song skipped", []setlist.Reaction{react(99, setlist.Play, 5), react(20, setlist.Like, 1)}, []int32{1}, []float32{4}},
		{"play and like combine", []setlist.Reaction{react(20, setlist.Play, 3), react(20, setlist.Like, 1)}, []int32{1}, []float32{7}},
		{"dislike wins", []setlist.Reaction{react(40, setlist.Play, 3), react(40, setlist.Dislike, 1)}, []int32{3}, []float32{-1}},
		{"zero play dropped", []setlist.Reaction{react(10, setlist.Play, 0), react(20, setlist.Play, 1)}, []int32{1}, []float32{1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cols, vals := c.Row(s, tt.in)
			if !slices.Equal(cols, tt.wantCols) || !slices.Equal(vals, tt.wantVals) {
				t.Errorf("Row = %v %v; want %v %v", cols, vals, tt.wantCols, tt.wantVals)
			}
		})
	}
}

func TestRecsCodec(t *testing.T) {
	tests := [][]Rec{
		nil,
		{{Song: 1, Score: 0.5}},
		{{Song: 1 << 40, Score: -3}, {Song: 7, Score: float32(math.Inf(1))}, {Song: 0, Score: 0}},
	}
	for _, recs := range tests {
		b := EncodeRecs(recs)
		if len(b) != 2+12*len(recs) {
			t.Errorf("EncodeRecs(%v) is %d bytes, want %d", recs, len(b), 2+12*len(recs))
		}
		got, err := DecodeRecs(b)
		if err != nil {
			t.Fatalf("DecodeRecs: %v", err)
		}
		if len(got) != len(recs) || (len(recs) > 0 && !slices.Equal(got, recs)) {
			t.Errorf("round trip = %v, want %v", got, recs)
		}
		if !bytes.Equal(AppendRecs([]byte("x"), recs)[1:], b) {
			t.Errorf("AppendRecs differs from EncodeRecs")
		}
	}
}

func TestDecodeRecsRejects(t *testing.T) {
	good := EncodeRecs([]Rec{{Song: 1, Score: 1}, {Song: 2, Score: 2}})
	huge := binary.AppendUvarint([]byte{recsFormat}, 1<<62) // n*12 wraps to 0 on 64 bits
	tests := map[string][]byte{
		"empty":             nil,
		"foreign format":    append([]byte{9}, good[1:]...),
		"truncated":         good[:len(good)-1],
		"trailing bytes":    append(slices.Clone(good), 0),
		"no count":          {recsFormat},
		"overflowing count": huge,
	}
	for name, b := range tests {
		if _, err := DecodeRecs(b); err == nil {
			t.Errorf("%s: DecodeRecs accepted %x", name, b)
		}
	}
}

func TestItemsCodec(t *testing.T) {
	p := als.DefaultParams()
	p.Factors, p.Iterations, p.Threads = 4, 2, 1
	m := feedback.NewCSR(3, 4, []feedback.Entry{{Row: 0, Col: 0, Value: 2}, {Row: 0, Col: 1, Value: 1}, {Row: 1, Col: 2, Value: 3}, {Row: 2, Col: 3, Value: 1}, {Row: 2, Col: 0, Value: -1}})
	model, err := als.Train(t.Context(), m, p, nil)
	if err != nil {
		t.Fatalf("train: %v", err)
	}
	side := model.ItemSide()
	cat := NewCatalog([]setlist.SongID{11, 22, 33, 44})
	b, err := EncodeItems(cat, side)
	if err != nil {
		t.Fatalf("EncodeItems: %v", err)
	}
	gotCat, gotSide, err := DecodeItems(b)
	if err != nil {
		t.Fatalf("DecodeItems: %v", err)
	}
	if !slices.Equal(gotCat.Songs(), cat.Songs()) {
		t.Errorf("songs = %v, want %v", gotCat.Songs(), cat.Songs())
	}
	if !slices.Equal(gotSide.ItemFactors, side.ItemFactors) {
		t.Errorf("item factors differ after round trip")
	}
	if _, err := EncodeItems(NewCatalog([]setlist.SongID{1}), side); err == nil {
		t.Errorf("EncodeItems accepted a catalog of the wrong size")
	}
	for name, bad := range map[string][]byte{
		"empty":      nil,
		"foreign":    append([]byte{9}, b[1:]...),
		"truncated":  b[:len(b)/2],
		"huge count": binary.AppendUvarint([]byte{itemsFormat}, 1<<61), // n*8 wraps to 0
	} {
		if _, _, err := DecodeItems(bad); err == nil {
			t.Errorf("%s: DecodeItems accepted corrupt input", name)
		}
	}
}

func TestPopularFor(t *testing.T) {
	p := &Published{Popular: []Rec{{Song: 1}, {Song: 2}, {Song: 3}, {Song: 4}}}
	got := p.PopularFor(map[setlist.SongID]bool{2: true}, 2)
	if want := []Rec{{Song: 1}, {Song: 3}}; !slices.Equal(got, want) {
		t.Errorf("PopularFor = %v, want %v", got, want)
	}
}
