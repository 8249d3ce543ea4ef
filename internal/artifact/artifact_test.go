package artifact_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/als"
	"github.com/setlist/setlist/internal/artifact"
	"github.com/setlist/setlist/internal/feedback"
	"github.com/setlist/setlist/internal/model"
	"github.com/setlist/setlist/internal/npz"
)

// random builds an ALS artifact of the given shape with perUser reacted
// songs per user (Zipf-ish: popular songs are reacted to more).
func random(tb testing.TB, users, songs, factors, perUser int) *artifact.Artifact {
	tb.Helper()
	rng := rand.New(rand.NewPCG(uint64(users), uint64(songs)))
	p := als.DefaultParams()
	p.Factors = factors
	m := &als.Model{Params: p, Users: users, Items: songs, Factors: factors,
		UserFactors: make([]float32, users*factors), ItemFactors: make([]float32, songs*factors)}
	for i := range m.UserFactors {
		m.UserFactors[i] = float32(rng.NormFloat64() * 0.1)
	}
	for i := range m.ItemFactors {
		m.ItemFactors[i] = float32(rng.NormFloat64() * 0.1)
	}
	if p.Weighting == feedback.WeightBM25 {
		m.ItemWeights = make([]float32, songs+1)
		for i := range m.ItemWeights {
			m.ItemWeights[i] = 1
		}
	}
	zipf := rand.NewZipf(rng, 1.1, 1, uint64(songs-1))
	entries := make([]feedback.Entry, 0, users*perUser)
	for u := range users {
		for range perUser {
			entries = append(entries, feedback.Entry{Row: int32(u), Col: int32(zipf.Uint64()), Value: 1})
		}
	}
	exclude := feedback.NewCSR(users, songs, entries)
	ids := make([]setlist.UserID, users)
	for i := range ids {
		ids[i] = setlist.UserID(fmt.Sprintf("%032x", rng.Uint64()))
	}
	catalog := make([]setlist.SongID, songs)
	for i := range catalog {
		catalog[i] = setlist.SongID(1000 + 3*i)
	}
	meta := model.Meta{Version: 7, TrainedAt: time.Date(2026, 11, 29, 12, 0, 0, 123456789, time.UTC), Params: p,
		Scheme: model.DefaultScheme(), K: 5, Items: songs, Metrics: map[string]float64{"ndcg_at_5": 0.1234567}}
	popular := []model.Rec{{Song: catalog[0], Score: 9}, {Song: catalog[1], Score: 8}}
	a, err := artifact.NewALS(meta, artifact.SourceTrained, model.NewCatalog(catalog), m.ItemSide(), popular, ids, m.UserFactors, exclude)
	if err != nil {
		tb.Fatal(err)
	}
	return a
}

// TestRoundTrip: what is decoded ranks exactly as what was encoded, and
// encoding it again gives the same bytes.
func TestRoundTrip(t *testing.T) {
	a := random(t, 50, 300, 8, 12)
	b, err := a.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	got, err := artifact.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Family != artifact.FamilyALS || got.Source != artifact.SourceTrained || !got.Meta.TrainedAt.Equal(a.Meta.TrainedAt) ||
		got.Meta.Version != 7 || got.Meta.Metrics["ndcg_at_5"] != 0.1234567 || !slices.Equal(got.Users, a.Users) ||
		!slices.Equal(got.UserFactors, a.UserFactors) || !slices.Equal(got.Popular, a.Popular) ||
		!slices.Equal(got.Exclude.Indptr, a.Exclude.Indptr) || !slices.Equal(got.Exclude.Indices, a.Exclude.Indices) ||
		!bytes.Equal(got.Items(), a.Items()) {
		t.Fatal("decoded artifact differs from the encoded one")
	}
	again, _ := got.MarshalBinary()
	if !bytes.Equal(again, b) {
		t.Error("re-encoding changed the bytes")
	}
	l1, err := a.Lists(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	l2, _ := got.Lists(context.Background(), 2)
	if len(l1) != 50 || !slices.EqualFunc(l1, l2, func(x, y []feedback.Scored) bool { return slices.Equal(x, y) }) {
		t.Error("lists from the decoded artifact differ")
	}
	for u, l := range l1 {
		cols, _ := a.Exclude.Row(u)
		for _, s := range l {
			if slices.Contains(cols, s.Item) {
				t.Fatalf("user %d is recommended item %d they reacted to", u, s.Item)
			}
		}
	}
}

// TestDecodeRefuses: a foreign family, a newer format, truncation and
// sections that disagree are errors, never a misread model.
func TestDecodeRefuses(t *testing.T) {
	a := random(t, 10, 40, 4, 3)
	good, _ := a.MarshalBinary()
	hlen := int(binary.LittleEndian.Uint32(good[8:]))
	header := string(good[12 : 12+hlen])
	withHeader := func(h string) []byte {
		b := append([]byte{}, good[:8]...)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(h)))
		b = append(b, h...)
		return append(b, good[12+hlen:]...)
	}
	cases := map[string]struct {
		data []byte
		want string
	}{
		"family":    {withHeader(strings.Replace(header, `"family":"als"`, `"family":"knn"`, 1)), `model family "knn" is not supported`},
		"ease":      {withHeader(strings.Replace(header, `"family":"als"`, `"family":"ease"`, 1)), "section lists is missing"},
		"format":    {withHeader(strings.Replace(header, `"format":1`, `"format":2`, 1)), "format 2"},
		"magic":     {append([]byte("NOTMODEL"), good[8:]...), "bad magic"},
		"truncated": {good[:len(good)-3], "truncated"},
		"trailing":  {append(append([]byte{}, good...), 0), "trailing"},
		"section":   {withHeader(strings.Replace(header, `"name":"exclude"`, `"name":"other"`, 1)), "section exclude is missing"},
	}
	for name, c := range cases {
		_, err := artifact.Decode(c.data)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error containing %q", name, err, c.want)
		}
	}
	if fam, err := artifact.Family(cases["family"].data); err != nil || fam != "knn" {
		t.Errorf("Family() = %q, %v", fam, err)
	}
}

// TestExportReadImplicit: the .npz export read back as a foreign model has
// the same factors, parameters and item weights.
func TestExportReadImplicit(t *testing.T) {
	a := random(t, 20, 60, 6, 4)
	var buf, users, items bytes.Buffer
	if err := a.ExportNPZ(&buf); err != nil {
		t.Fatal(err)
	}
	if err := a.WriteUsersCSV(&users); err != nil {
		t.Fatal(err)
	}
	songs := map[setlist.SongID]setlist.Song{}
	for i, id := range a.Catalog.Songs() {
		songs[id] = setlist.Song{ID: id, Artist: fmt.Sprintf("Artist, %d", i%7), Track: fmt.Sprintf("Track \"%d\"", i)}
	}
	if err := a.WriteItemsCSV(&items, songs); err != nil {
		t.Fatal(err)
	}
	f, err := npz.ReadBytes(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"user_factors", "item_factors", "factors", "regularization", "alpha", "iterations", "dtype"} {
		if !f.Has(name) {
			t.Errorf("export lacks implicit's %s", name)
		}
	}
	itemsCSV := items.String()
	fm, err := artifact.ReadImplicit(buf.Bytes(), &users, &items)
	if err != nil {
		t.Fatal(err)
	}
	p := a.Side.Params
	if fm.Params.Factors != 6 || fm.Params.Regularization != p.Regularization || fm.Params.Alpha != p.Alpha ||
		fm.Params.Weighting != p.Weighting || fm.Params.BM25K1 != p.BM25K1 || fm.K != 5 ||
		!slices.Equal(fm.UserFactors, a.UserFactors) || !slices.Equal(fm.ItemFactors, a.Side.ItemFactors) ||
		!slices.Equal(fm.ItemWeights, a.Side.ItemWeights) || !slices.Equal(fm.Users, a.Users) {
		t.Errorf("read back: %+v", fm.Params)
	}
	if fm.Items[3].Artist != "Artist, 3" || fm.Items[3].Track != `Track "3"` {
		t.Errorf("item 3 = %+v", fm.Items[3])
	}
	// An id map that does not match the factors is refused, naming the file.
	_, err = artifact.ReadImplicit(buf.Bytes(), strings.NewReader("row,user_id\n0,a\n"), strings.NewReader(""))
	if err == nil || !strings.Contains(err.Error(), "user_factors declares shape [20 6], but users.csv names 1 rows") {
		t.Errorf("short users.csv: %v", err)
	}
	var dup strings.Builder
	dup.WriteString("row,user_id\n0,a\n0,b\n")
	for i := 2; i < 20; i++ {
		fmt.Fprintf(&dup, "%d,u%d\n", i, i)
	}
	_, err = artifact.ReadImplicit(buf.Bytes(), strings.NewReader(dup.String()), strings.NewReader(itemsCSV))
	if err == nil || !strings.Contains(err.Error(), "users.csv:3: row 0 appears twice") {
		t.Errorf("repeated row: %v", err)
	}
}

// BenchmarkArtifactSize reports the encoded size of an ALS artifact and of
// each part, and the encode time, as users, songs and factors grow.
func BenchmarkArtifactSize(b *testing.B) {
	for _, s := range []struct{ users, songs, factors, perUser int }{
		{10_000, 10_000, 64, 120},
		{100_000, 10_000, 64, 120},
		{10_000, 100_000, 64, 120},
		{10_000, 10_000, 128, 120},
		{10_000, 10_000, 64, 480},
	} {
		b.Run(fmt.Sprintf("users=%d/songs=%d/factors=%d/per-user=%d", s.users, s.songs, s.factors, s.perUser), func(b *testing.B) {
			a := random(b, s.users, s.songs, s.factors, s.perUser)
			var n int
			for b.Loop() {
				data, err := a.MarshalBinary()
				if err != nil {
					b.Fatal(err)
				}
				n = len(data)
			}
			b.ReportMetric(float64(n), "bytes")
			b.ReportMetric(float64(4*len(a.UserFactors)), "user-factor-bytes")
			b.ReportMetric(float64(len(a.Items())), "item-side-bytes")
			b.ReportMetric(float64(a.Exclude.NNZ()), "nnz")
		})
	}
}
