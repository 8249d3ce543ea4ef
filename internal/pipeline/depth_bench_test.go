package pipeline_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/artifact"
	"github.com/setlist/setlist/internal/feedback"
	"github.com/setlist/setlist/internal/keyspace"
	"github.com/setlist/setlist/internal/keyspace/redistest"
	"github.com/setlist/setlist/internal/model"
	"github.com/setlist/setlist/internal/pipeline"
	"github.com/setlist/setlist/internal/postgres/pgtest"
	"github.com/setlist/setlist/internal/realdata"
)

// depths are the stored list depths BenchmarkStoredDepth compares: 5 (the
// default before issue 22), 10, 20 and 50.
var depths = []int{5, 10, 20, 50}

// BenchmarkStoredDepth measures what a deeper stored list costs and buys
// on the shared data (13.6k users × 10k songs, ALS 64 factors): it trains
// once at depth 50, publishes the lists cut to each depth as a version of
// its own through the one Publisher, and reports
//
//   - Redis bytes per user: MEMORY USAGE of a sample of every 7th user's
//     recs key (32-character user ids, as the shared data's), and the
//     value bytes the publish wrote;
//   - how often a request would run the list short, per scenario: the share
//     of users whose first d songs hold fewer than n (5, the API's default,
//     and 10) that pass the hides or the filter, so serve must score.
//
// Tags do not exist in the shared data: each song gets one of ten genre
// tags and a tenth of them "explicit", at random (seeded), which is what
// the tag filters test.
func BenchmarkStoredDepth(b *testing.B) {
	ctx := context.Background()
	db := pgtest.DB(b)
	importFile(b, db, sharedData(b))
	rdb, prefix := redistest.Client(b)
	pub := keyspace.NewPublisher(rdb, keyspace.NewKeys(prefix))
	figure := realdata.FigureLog(b)
	res, err := pipeline.Run(ctx, pipeline.Config{K: slices.Max(depths), EvalUsers: 2000, Force: true,
		Overrides: pipeline.Overrides{Factors: ptr(64), Iterations: ptr(15)}},
		pipeline.Deps{Source: db, Registry: db, Locker: db, Publisher: pub, Artifacts: db})
	if err != nil {
		b.Fatal(err)
	}
	a, err := artifact.Load(ctx, db, res.Version)
	if err != nil {
		b.Fatal(err)
	}
	lists, err := a.Lists(ctx, 0)
	if err != nil {
		b.Fatal(err)
	}
	songs, err := db.SongsByID(ctx, a.Catalog.Songs())
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		for i, d := range depths {
			v := res.Version + model.Version(1000*(i+1))
			rep, err := pub.Publish(ctx, v, a.Release(cut(lists, d), nil))
			if err != nil {
				b.Fatal(err)
			}
			keys := keyspace.NewKeys(prefix)
			var sum, n int64
			for u := 0; u < len(a.Users); u += 7 {
				if len(lists[u]) == 0 {
					continue
				}
				mu, err := rdb.MemoryUsage(ctx, keys.Recs(v, a.Users[u]), 0).Result()
				if err != nil {
					b.Fatal(err)
				}
				sum, n = sum+mu, n+1
			}
			figure("depth %d: MEMORY USAGE %.0f bytes per user (mean of %d keys); publish wrote %d bytes for %d users (%.0f per user)",
				d, float64(sum)/float64(n), n, rep.Bytes, rep.Users, float64(rep.Bytes)/float64(rep.Users))
			b.ReportMetric(float64(sum)/float64(n), fmt.Sprintf("bytes/user@%d", d))
		}
	}
	for _, s := range depthScenarios(a, lists, songs) {
		var line strings.Builder
		fmt.Fprintf(&line, "%-52s", s.name)
		for _, n := range []int{5, 10} {
			for _, d := range depths {
				if d < n {
					continue
				}
				short, users := 0, 0
				for _, l := range lists {
					if len(l) == 0 {
						continue
					}
					users++
					if !s.enough(l[:min(d, len(l))], n) {
						short++
					}
				}
				fmt.Fprintf(&line, " n=%d d=%d: %5.1f%%", n, d, 100*float64(short)/float64(users))
			}
		}
		figure("short: %s", line.String())
	}
}

// cut is every list's first d songs.
func cut(lists [][]feedback.Scored, d int) [][]feedback.Scored {
	out := make([][]feedback.Scored, len(lists))
	for i, l := range lists {
		out[i] = l[:min(d, len(l))]
	}
	return out
}

// depthScenario is a set of hides or a request filter, as serve's sieve
// applies them: enough reports whether n songs of list pass.
type depthScenario struct {
	name   string
	enough func(list []feedback.Scored, n int) bool
}

func depthScenarios(a *artifact.Artifact, lists [][]feedback.Scored, songs map[setlist.SongID]setlist.Song) []depthScenario {
	rng := rand.New(rand.NewPCG(22, 2))
	items := a.Catalog.Len()
	artist := func(it int32) string { return strings.ToLower(songs[a.Catalog.Song(it)].Artist) }
	// in how many lists (of depth 50) each song appears, and each artist's
	// listeners' count (the popular list's scores are listener counts).
	inLists := make([]int, items)
	for _, l := range lists {
		for _, s := range l {
			inLists[s.Item]++
		}
	}
	byListed := make([]int32, items)
	for i := range byListed {
		byListed[i] = int32(i)
	}
	slices.SortFunc(byListed, func(x, y int32) int { return inLists[y] - inLists[x] })
	set := func(its []int32) map[int32]bool {
		m := make(map[int32]bool, len(its))
		for _, it := range its {
			m[it] = true
		}
		return m
	}
	popular := make([]int32, 0, len(a.Popular))
	for _, r := range a.Popular {
		if it, ok := a.Catalog.Index(r.Song); ok {
			popular = append(popular, it)
		}
	}
	random := rng.Perm(items)[:items/100]
	randomSet := map[int32]bool{}
	for _, it := range random {
		randomSet[int32(it)] = true
	}
	genre := make([]int, items)
	explicit := make([]bool, items)
	for i := range genre {
		genre[i] = rng.IntN(10)
		explicit[i] = rng.IntN(10) == 0
	}
	artistPlays := map[string]float32{}
	for _, r := range a.Popular {
		if it, ok := a.Catalog.Index(r.Song); ok {
			artistPlays[artist(it)] += r.Score
		}
	}
	topArtists := slices.Collect(func(yield func(string) bool) {
		for k := range artistPlays {
			if !yield(k) {
				return
			}
		}
	})
	slices.SortFunc(topArtists, func(x, y string) int {
		if artistPlays[x] != artistPlays[y] {
			if artistPlays[x] > artistPlays[y] {
				return -1
			}
			return 1
		}
		return strings.Compare(x, y)
	})
	topArtists = topArtists[:min(10, len(topArtists))]
	passing := func(pass func(it int32) bool) func([]feedback.Scored, int) bool {
		return func(l []feedback.Scored, n int) bool {
			k := 0
			for _, s := range l {
				if pass(s.Item) {
					k++
				}
			}
			return k >= n
		}
	}
	hidden := func(h map[int32]bool) func([]feedback.Scored, int) bool {
		return passing(func(it int32) bool { return !h[it] })
	}
	return []depthScenario{
		{"hide the song in the most lists", hidden(set(byListed[:1]))},
		{"hide the 10 songs in the most lists", hidden(set(byListed[:10]))},
		{"hide the 100 songs in the most lists (1%)", hidden(set(byListed[:items/100]))},
		{"hide the 100 most popular songs (1%, listeners)", hidden(set(popular))},
		{"hide 1% of songs at random", hidden(randomSet)},
		{"exclude_tags=explicit (10% of songs)", passing(func(it int32) bool { return !explicit[it] })},
		{"exclude_artists= the 10 most played artists", passing(func(it int32) bool { return !slices.Contains(topArtists, artist(it)) })},
		{"max_per_artist=1", func(l []feedback.Scored, n int) bool {
			seen := map[string]bool{}
			for _, s := range l {
				seen[artist(s.Item)] = true
			}
			return len(seen) >= n
		}},
		{"max_per_artist=2", func(l []feedback.Scored, n int) bool {
			per := map[string]int{}
			k := 0
			for _, s := range l {
				if a := artist(s.Item); per[a] < 2 {
					per[a]++
					k++
				}
			}
			return k >= n
		}},
		{"tags=one genre (10% of songs)", passing(func(it int32) bool { return genre[it] == 0 })},
		{"tags=three genres (30% of songs)", passing(func(it int32) bool { return genre[it] < 3 })},
	}
}
