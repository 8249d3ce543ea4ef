package synth_test

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/synth"
)

func generate(t *testing.T, cfg synth.Config) []byte {
	t.Helper()
	var buf bytes.Buffer
	st, err := synth.Write(&buf, cfg)
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	if st.Bytes != int64(buf.Len()) {
		t.Errorf("Stats.Bytes = %d, wrote %d", st.Bytes, buf.Len())
	}
	return buf.Bytes()
}

func TestDeterministic(t *testing.T) {
	cfg := synth.Config{Users: 200, Songs: 500, Reactions: 5000, Seed: 7}
	a, b := generate(t, cfg), generate(t, cfg)
	if !bytes.Equal(a, b) {
		t.Errorf("same seed produced different data")
	}
	cfg.Seed = 8
	if bytes.Equal(a, generate(t, cfg)) {
		t.Errorf("different seeds produced the same data")
	}
}

func TestShape(t *testing.T) {
	const clusters = 10
	cfg := synth.Config{Users: 300, Songs: 2000, Reactions: 20000, Clusters: clusters, Seed: 1}
	r := csv.NewReader(bytes.NewReader(generate(t, cfg)))
	header, err := r.Read()
	if err != nil || strings.Join(header, ",") != "user_id,artist,track,count" {
		t.Fatalf("header = %v, %v", header, err)
	}
	type pair struct{ user, track string }
	seen := map[pair]bool{}
	users := map[string]int{}
	plays := map[string]int{}
	var rows, inCluster int
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		rows++
		p := pair{rec[0], rec[2]}
		if seen[p] {
			t.Fatalf("duplicate row for %v", p)
		}
		seen[p] = true
		users[rec[0]]++
		plays[rec[2]]++
		if n, err := strconv.Atoi(rec[3]); err != nil || n < 1 {
			t.Errorf("count %q, want ≥ 1", rec[3])
		}
		u, _ := strconv.Atoi(strings.TrimPrefix(rec[0], "user"))
		j, _ := strconv.Atoi(strings.TrimPrefix(rec[2], "Track "))
		if rec[1] != synth.Artist(j) {
			t.Errorf("song %d has artist %q, want %q", j, rec[1], synth.Artist(j))
		}
		if synth.SongCluster(j, clusters) == synth.Cluster(u, clusters) {
			inCluster++
		}
	}
	if rows != int(cfg.Reactions) {
		t.Errorf("rows = %d, want %d", rows, cfg.Reactions)
	}
	if len(users) != cfg.Users {
		t.Errorf("users = %d, want every one of %d", len(users), cfg.Users)
	}
	// Planted taste: most rows in the user's cluster (10% by chance; below
	// Taste because heavy users exhaust their cluster's hits and retry).
	if share := float64(inCluster) / float64(rows); share < 0.5 {
		t.Errorf("in-cluster share = %.2f, want ≥ 0.5", share)
	}
	// Power law: the top song is far above the median song.
	counts := make([]int, 0, len(plays))
	for _, n := range plays {
		counts = append(counts, n)
	}
	slices.Sort(counts)
	if top, med := counts[len(counts)-1], counts[len(counts)/2]; top < 20*med {
		t.Errorf("top song has %d rows, median %d: not heavy-tailed", top, med)
	}
	// Varied activity: the busiest user has many times the median's rows.
	act := make([]int, 0, len(users))
	for _, n := range users {
		act = append(act, n)
	}
	slices.Sort(act)
	if top, med := act[len(act)-1], act[len(act)/2]; top < 4*med {
		t.Errorf("busiest user has %d rows, median %d: activity not varied", top, med)
	}
}

func TestValidate(t *testing.T) {
	for _, cfg := range []synth.Config{
		{Users: 0, Songs: 10, Reactions: 10},
		{Users: 10, Songs: 10, Reactions: 10, Zipf: 0.5},
		{Users: 10, Songs: 10, Reactions: 10, Taste: 2},
		{Users: 10, Songs: 10, Reactions: 10, Clusters: 11},
	} {
		if _, err := synth.Write(io.Discard, cfg); !errors.Is(err, setlist.ErrInvalid) {
			t.Errorf("Write(%+v) = %v, want ErrInvalid", cfg, err)
		}
	}
}

func BenchmarkWrite(b *testing.B) {
	cfg := synth.Config{Users: 10000, Songs: 100000, Reactions: 500000, Seed: 1}
	for b.Loop() {
		if _, err := synth.Write(io.Discard, cfg); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cfg.Reactions)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

// TestNamer: readable, deterministic, distinct names for opaque ids.
func TestNamer(t *testing.T) {
	ids := make([]setlist.UserID, 400)
	for i := range ids {
		ids[i] = setlist.UserID(fmt.Sprintf("%032x", i*7919))
	}
	a, b := synth.Namer(), synth.Namer()
	seen := map[string]bool{}
	for _, id := range ids {
		na, nb := a(id), b(id)
		if na != nb {
			t.Fatalf("id %s named %q then %q: not deterministic", id, na, nb)
		}
		if seen[na] {
			t.Fatalf("name %q given twice among %d ids", na, len(ids))
		}
		seen[na] = true
		if f := strings.Fields(na); len(f) != 2 {
			t.Fatalf("name %q is not a first and a last name", na)
		}
	}
}
