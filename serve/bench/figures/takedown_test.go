package figures

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/keyspace/redistest"
	"github.com/setlist/setlist/internal/postgres/pgtest"
	"github.com/setlist/setlist/internal/realdata"
	"github.com/setlist/setlist/serve/internal/fixture"
	"github.com/setlist/setlist/serve/internal/server"
	"github.com/setlist/setlist/serve/internal/servertest"
)

// TestFigureTakedownLatency measures how long a takedown takes to reach
// every answer: from the start of the catalog write (`batch catalog hide`'s
// SetAvailable and CatalogChanged) until the last of two replicas, near
// caches warm, answers a user whose batch list the song heads without it;
// then the same for showing it again. Each replica is asked in a loop
// (HTTP on loopback) from its own goroutine. It reports p50, p99 and the
// maximum of 200 rounds of each. Skipped unless asked:
//
//	SETLIST_FIGURES=1 go test ./serve/bench/figures/ -run TestFigureTakedownLatency -v -count 1
func TestFigureTakedownLatency(t *testing.T) {
	skipUnlessFigures(t)
	ctx := context.Background()
	db := pgtest.DB(t)
	rdb, prefix := redistest.Client(t)
	songs, err := fixture.Songs(ctx, db, 0, 60)
	if err != nil {
		t.Fatal(err)
	}
	hot := songs[30]
	v := fixture.Version{Version: 3, Songs: songs[:40], Factors: 8, Seed: 3, K: 10}
	users := v.HotLists(150, 10, hot, songs[:30], 3) // songs 0–29: never the hot one
	if err := fixture.Users(ctx, db, users); err != nil {
		t.Fatal(err)
	}
	if err := fixture.Publish(ctx, rdb, prefix, v); err != nil {
		t.Fatal(err)
	}
	cfg := servertest.FastConfig()
	cfg.Recs.PollInterval = time.Hour // the event carries the change, as in production between polls
	deps := server.Deps{DB: db, Redis: rdb, RedisPrefix: prefix}
	replicas := []*servertest.Instance{servertest.Start(t, cfg, deps), servertest.Start(t, cfg, deps)}
	u := users[0]
	client := &http.Client{Timeout: 10 * time.Second}
	for _, in := range replicas {
		in.WaitModel(t, 3)
		in.WaitNearCache(t, client, u)
	}
	figure := realdata.FigureLog(t)
	const rounds = 200
	var hide, show []time.Duration
	for range rounds {
		for _, available := range []bool{false, true} {
			start := time.Now()
			var wg sync.WaitGroup
			last := make([]time.Duration, len(replicas))
			for ri, in := range replicas {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						listed, err := lists(client, in, u, hot)
						if err != nil {
							t.Errorf("replica %d: %v", ri, err)
							return
						}
						if listed == available {
							break
						}
						if time.Since(start) > 10*time.Second {
							t.Errorf("replica %d did not apply available=%v in 10 s", ri, available)
							return
						}
					}
					last[ri] = time.Since(start)
				}()
			}
			if err := fixture.SetAvailable(ctx, db, rdb, prefix, hot, available); err != nil {
				t.Fatal(err)
			}
			wg.Wait()
			if t.Failed() {
				t.FailNow()
			}
			if available {
				show = append(show, slices.Max(last))
			} else {
				hide = append(hide, slices.Max(last))
			}
		}
	}
	for _, m := range []struct {
		what string
		d    []time.Duration
	}{{"hide", hide}, {"show", show}} {
		slices.Sort(m.d)
		figure("takedown latency (%s) until the last of 2 replicas answers it, %d rounds: p50 %.2f ms, p99 %.2f ms, max %.2f ms",
			m.what, len(m.d), ms(m.d[len(m.d)/2]), ms(m.d[len(m.d)*99/100]), ms(m.d[len(m.d)-1]))
	}
}

// lists says whether in's answer to user's recommendations (n = 5) holds
// song.
func lists(c *http.Client, in *servertest.Instance, user setlist.UserID, song setlist.SongID) (bool, error) {
	r, err := servertest.Do(c, http.MethodGet, in.Base+"/v1/users/"+url.PathEscape(string(user))+"/recommendations?n=5", nil)
	if err != nil {
		return false, err
	}
	var a struct {
		Items []struct {
			SongID setlist.SongID `json:"song_id"`
		} `json:"items"`
	}
	if r.Status != http.StatusOK || json.Unmarshal(r.Body, &a) != nil {
		return false, fmt.Errorf("recommendations of %s: %d %s", user, r.Status, r.Body)
	}
	return slices.ContainsFunc(a.Items, func(it struct {
		SongID setlist.SongID `json:"song_id"`
	}) bool {
		return it.SongID == song
	}), nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
