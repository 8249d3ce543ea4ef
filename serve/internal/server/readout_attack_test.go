package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/experiment"
	"github.com/setlist/setlist/internal/model"
	"github.com/setlist/setlist/serve/internal/api"
	"github.com/setlist/setlist/serve/internal/fixture"
)

// tokenDo sends method path (JSON body, may be nil) with a bearer token and
// returns the status and body.
func tokenDo(t *testing.T, in *instance, method, path, token string, body any) (int, []byte) {
	t.Helper()
	b := ""
	if body != nil {
		j, _ := json.Marshal(body)
		b = string(j)
	}
	r := in.doHeaders(t, method, path, b, map[string]string{"Authorization": "Bearer " + token})
	return r.status, r.body
}

// TestReadoutAttack (issue 24 item 8): half the listeners use the page
// (answered, they like their favourites among their five songs); then a
// write token likes a song for each of the others, learns their arm from
// the answer (its arm, or its version against the challenger's) and
// deletes the like, and a read token asks for recommendations of only
// those in the challenger arm: units without conversions, for one arm.
// The readout moved from +0.115 to −0.178 in the issue. A write answer now
// names neither arm nor version, so the attacker learns nothing to select
// by, and the readout stays what the listeners made it.
func TestReadoutAttack(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	songs, err := fixture.Songs(ctx, e.db, 0, 120)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(24, 8))
	pop := newPopulation(rng, 240, songs)
	if err := fixture.Users(ctx, e.db, pop.users); err != nil {
		t.Fatal(err)
	}
	var runs [2]int64
	for i := range runs {
		if runs[i], err = e.db.StartRun(ctx, "readout attack fixture"); err != nil {
			t.Fatal(err)
		}
	}
	challenger, control := model.Version(runs[0]), model.Version(runs[1])
	// The challenger finds a favourite for every listener, the control
	// for half of them.
	favs := map[model.Version]func() int{challenger: func() int { return 1 }, control: func() int { return map[bool]int{true: 1}[rng.Float64() < 0.5] }}
	for _, v := range []model.Version{challenger, control} {
		fv := fixture.Version{Version: v, Songs: songs, Factors: 4, Seed: uint64(v), K: 5, Lists: pop.lists(rng, favs[v])}
		if err := fixture.Publish(ctx, e.rdb, e.prefix, fv); err != nil {
			t.Fatal(err)
		}
	}
	const page, writer, reader = "page-token-0123456789", "writer-token-0123456789", "reader-token-0123456789"
	tokens, err := api.ParseTokens(strings.NewReader("write "+page+"\nwrite "+writer+"\nread "+reader+"\n"), "tokens")
	if err != nil {
		t.Fatal(err)
	}
	cfg := fastConfig()
	cfg.API.Tokens, cfg.API.RequireAuth, cfg.API.WriteRate = tokens, true, 0
	in := e.start(t, cfg, nil)
	in.waitModel(t, int64(control))
	if code, out, errOut := e.batchCLI(t, "experiment", "start", "--challenger", fmt.Sprint(challenger), "--share", "0.5"); code != 0 {
		t.Fatalf("start: exit %d\n%s\n%s", code, out, errOut)
	}
	running, err := e.db.RunningExperiment(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the experiment is served", func() bool {
		r, ok := in.srv.Recs().Experiment()
		return ok && r == running.Routing()
	})
	readout := func() (control, challenger experiment.Counts) {
		in.srv.Exposure().Flush(ctx)
		c, x, err := e.db.ExperimentCounts(ctx, running.ID)
		if err != nil {
			t.Fatal(err)
		}
		return c, x
	}

	// The listeners.
	listeners, others := pop.users[:len(pop.users)/2], pop.users[len(pop.users)/2:]
	for _, u := range listeners {
		path := "/v1/users/" + url.PathEscape(string(u))
		code, body := tokenDo(t, in, http.MethodGet, path+"/recommendations?n=5", page, nil)
		if code != http.StatusOK {
			t.Fatalf("%s: %d %s", u, code, body)
		}
		var a armAnswer
		if err := json.Unmarshal(body, &a); err != nil {
			t.Fatal(err)
		}
		for _, it := range a.Items {
			if pop.favs[u][it.SongID] {
				if code, body := tokenDo(t, in, http.MethodPost, path+"/reactions", page, map[string]any{"song_id": it.SongID, "kind": "like"}); code != http.StatusCreated {
					t.Fatalf("%s's like: %d %s", u, code, body)
				}
			}
		}
	}
	c0, x0 := readout()
	before := experiment.Test(running.Design(), c0, x0)
	t.Logf("listeners' readout: control %d/%d, challenger %d/%d, diff %+.3f", c0.Converted, c0.Units, x0.Converted, x0.Units, before.Diff)
	if c0.Units == 0 || x0.Units == 0 || c0.Converted == 0 || x0.Converted == 0 {
		t.Fatalf("the listeners made no readout to skew: control %+v, challenger %+v", c0, x0)
	}

	// The attack.
	var probed, targeted int
	for _, u := range others {
		path := "/v1/users/" + url.PathEscape(string(u))
		code, body := tokenDo(t, in, http.MethodPost, path+"/reactions", writer, map[string]any{"song_id": songs[0], "kind": "like"})
		if code != http.StatusCreated {
			t.Fatalf("the writer's like for %s: %d %s", u, code, body)
		}
		probed++
		var a struct {
			Attribution struct {
				Arm     setlist.Arm `json:"arm"`
				Version int64       `json:"model_version"`
			} `json:"attribution"`
		}
		if err := json.Unmarshal(body, &a); err != nil {
			t.Fatal(err)
		}
		if code, body := tokenDo(t, in, http.MethodDelete, fmt.Sprintf("%s/reactions/%d?kind=like", path, songs[0]), writer, nil); code != http.StatusNoContent {
			t.Fatalf("the writer's delete for %s: %d %s", u, code, body)
		}
		if a.Attribution.Arm == setlist.ArmChallenger || a.Attribution.Version == int64(challenger) {
			targeted++
			if code, body := tokenDo(t, in, http.MethodGet, path+"/recommendations?n=5", reader, nil); code != http.StatusOK {
				t.Fatalf("the reader's ask for %s: %d %s", u, code, body)
			}
		}
	}
	c1, x1 := readout()
	after := experiment.Test(running.Design(), c1, x1)
	t.Logf("after the attack (%d probed, %d targeted): control %d/%d, challenger %d/%d, diff %+.3f", probed, targeted,
		c1.Converted, c1.Units, x1.Converted, x1.Units, after.Diff)
	if c1 != c0 || x1 != x0 {
		t.Errorf("the attack moved the readout: control %+v → %+v, challenger %+v → %+v (diff %+.3f → %+.3f)", c0, c1, x0, x1, before.Diff, after.Diff)
	}
}
