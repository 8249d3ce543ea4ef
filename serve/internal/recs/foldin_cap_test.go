package recs

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/als"
	"github.com/setlist/setlist/internal/feedback"
	"github.com/setlist/setlist/internal/model"
	"github.com/setlist/setlist/internal/postgres/pgtest"
	"github.com/setlist/setlist/internal/store"
)

func songsOf(rs []setlist.Reaction) []setlist.SongID {
	out := make([]setlist.SongID, len(rs))
	for i, r := range rs {
		out[i] = r.Song
	}
	return out
}

// BenchmarkFoldInCap measures what --foldin-max-reactions changes: on the
// committed sample (imported into PostgreSQL, ALS trained on every user), each
// user with more reactions than the cap is folded in from all of them and
// from the first cap in store.FoldInOrder (exactly what the capped SQL read
// returns; the rest of the history still excluded, as serve does), and the
// two top-5 lists compared: top5-agree is the share of the
// uncapped top 5 the capped list keeps, ndcg5 the capped list's NDCG@5
// taking the uncapped top 5 as the relevant songs. µs/foldin is the capped
// fold-in's own time (solve, top-K, one explanation; no database).
func BenchmarkFoldInCap(b *testing.B) {
	ctx := context.Background()
	raw, err := os.ReadFile("../../../data/sample.csv.gz")
	if err != nil {
		b.Skip("the committed sample is missing:", err)
	}
	db := pgtest.DB(b)
	if _, err := db.Import(ctx, bytes.NewReader(raw), store.ImportOptions{Source: "sample.csv.gz"}); err != nil {
		b.Fatal(err)
	}
	rows, err := db.Pool.Query(ctx, `SELECT external_id FROM users ORDER BY external_id`)
	if err != nil {
		b.Fatal(err)
	}
	var users []setlist.UserID
	for rows.Next() {
		var u string
		if err := rows.Scan(&u); err != nil {
			b.Fatal(err)
		}
		users = append(users, setlist.UserID(u))
	}
	rows.Close()
	histories := map[setlist.UserID][]setlist.Reaction{}
	var songs []setlist.SongID
	seen := map[setlist.SongID]bool{}
	for _, u := range users {
		rs, err := db.UserReactions(ctx, u, 0) // all, in FoldInOrder
		if err != nil {
			b.Fatal(err)
		}
		histories[u] = rs
		for _, r := range rs {
			if !seen[r.Song] {
				seen[r.Song] = true
				songs = append(songs, r.Song)
			}
		}
	}
	slices.Sort(songs)
	catalog := model.NewCatalog(songs)
	scheme := model.DefaultScheme()
	var entries []feedback.Entry
	for i, u := range users {
		cols, vals := catalog.Row(scheme, histories[u])
		for j, c := range cols {
			entries = append(entries, feedback.Entry{Row: int32(i), Col: c, Value: vals[j]})
		}
	}
	m := feedback.NewCSR(len(users), len(songs), entries)
	params := als.DefaultParamsFor(m)
	trained, err := als.Train(ctx, m, params, nil)
	if err != nil {
		b.Fatal(err)
	}
	p := &model.Published{Meta: model.Meta{Scheme: scheme, Params: params}, Catalog: catalog, Side: trained.ItemSide()}

	for _, limit := range []int{25, 50, 100, 200, 400} {
		b.Run(fmt.Sprintf("cap=%d", limit), func(b *testing.B) {
			var agree, ndcg float64
			var n int
			var took time.Duration
			for b.Loop() {
				agree, ndcg, n, took = 0, 0, 0, 0
				for _, u := range users {
					all := histories[u]
					if len(all) <= limit {
						continue
					}
					full, err1 := p.FoldIn(all, 5)
					start := time.Now()
					capped, _, err2 := p.FoldInExcluding(all[:limit], songsOf(all), 5, 1)
					took += time.Since(start)
					if err1 != nil || err2 != nil {
						continue // no usable signal either way: the popular list
					}
					want := map[setlist.SongID]bool{}
					for _, r := range full {
						want[r.Song] = true
					}
					var dcg, ideal float64
					hits := 0
					for i, r := range capped {
						if want[r.Song] {
							hits++
							dcg += 1 / math.Log2(float64(i+2))
						}
					}
					for i := range len(full) {
						ideal += 1 / math.Log2(float64(i+2))
					}
					agree += float64(hits) / float64(len(full))
					ndcg += dcg / ideal
					n++
				}
			}
			if n == 0 {
				b.Skipf("no user of the sample has more than %d reactions", limit)
			}
			b.ReportMetric(agree/float64(n), "top5-agree")
			b.ReportMetric(ndcg/float64(n), "ndcg5")
			b.ReportMetric(float64(n), "users")
			b.ReportMetric(float64(took.Microseconds())/float64(n), "µs/foldin")
		})
	}
}
