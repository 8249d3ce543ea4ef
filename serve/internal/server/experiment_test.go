package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/batch/command"
	"github.com/setlist/setlist/internal/experiment"
	"github.com/setlist/setlist/internal/keyspace"
	"github.com/setlist/setlist/internal/keyspace/redistest"
	"github.com/setlist/setlist/internal/model"
	"github.com/setlist/setlist/internal/store"
	"github.com/setlist/setlist/serve/internal/fixture"
)

// batchCLI runs the batch CLI in-process against e's database and prefix.
func (e *env) batchCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	app := command.NewApp("test")
	var out, errOut bytes.Buffer
	app.Writer, app.ErrWriter = &out, &errOut
	global := []string{"batch", "--database-url", e.dbURL, "--redis-url", redistest.ServerURL(), "--redis-prefix", e.prefix}
	code := command.Run(context.Background(), app, append(global, args...))
	return code, out.String(), errOut.String()
}

// population is a simulated set of listeners: each has favourite songs,
// likes a shown favourite with probability pFav and any other shown song
// with probability pOther.
type population struct {
	users        []setlist.UserID
	favs         map[setlist.UserID]map[setlist.SongID]bool
	pFav, pOther float64
	songs        []setlist.SongID
}

func newPopulation(rng *rand.Rand, n int, songs []setlist.SongID) *population {
	p := &population{favs: map[setlist.UserID]map[setlist.SongID]bool{}, pFav: 0.5, pOther: 0.02, songs: songs}
	for i := range n {
		u := setlist.UserID(fmt.Sprintf("listener-%04d", i))
		p.users = append(p.users, u)
		f := map[setlist.SongID]bool{}
		for len(f) < 10 {
			f[songs[rng.IntN(len(songs))]] = true
		}
		p.favs[u] = f
	}
	return p
}

// lists builds a version whose top-5 for each user holds favs of their
// favourites (the rest songs they do not care for), in random positions:
// the version's quality is how many favourites it finds.
func (p *population) lists(rng *rand.Rand, favs func() int) map[setlist.UserID][]model.Rec {
	out := map[setlist.UserID][]model.Rec{}
	for _, u := range p.users {
		var fav, other []setlist.SongID
		for s := range p.favs[u] {
			fav = append(fav, s)
		}
		rng.Shuffle(len(fav), func(i, j int) { fav[i], fav[j] = fav[j], fav[i] })
		for len(other) < 10 {
			if s := p.songs[rng.IntN(len(p.songs))]; !p.favs[u][s] {
				other = append(other, s)
			}
		}
		k := favs()
		picked := append(append([]setlist.SongID{}, fav[:k]...), other[:5-k]...)
		rng.Shuffle(len(picked), func(i, j int) { picked[i], picked[j] = picked[j], picked[i] })
		recs := make([]model.Rec, len(picked))
		for i, s := range picked {
			recs[i] = model.Rec{Song: s, Score: float32(5 - i)}
		}
		out[u] = recs
	}
	return out
}

type armAnswer struct {
	ModelVersion int64  `json:"model_version"`
	Arm          string `json:"arm"`
	Source       string `json:"source"`
	Items        []struct {
		SongID setlist.SongID `json:"song_id"`
	} `json:"items"`
}

// TestExperimentEndToEnd publishes a worse control and a better
// challenger, starts an experiment through the batch CLI, drives a
// simulated population through the HTTP API (each user asks for five songs
// and likes them by their preferences) and checks that every answer names
// the version and arm the routing gives, that the readout (batch
// experiment status) finds the challenger better, that a second start is
// refused and that promote switches the pointer and ends the experiment.
func TestExperimentEndToEnd(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	songs, err := fixture.Songs(ctx, e.db, 0, 200)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(14, 1))
	pop := newPopulation(rng, 800, songs)
	if err := fixture.Users(ctx, e.db, pop.users); err != nil {
		t.Fatal(err)
	}
	// Versions are run ids: the challenger (better: two favourites in
	// every list) is published first, so the worse control (a favourite
	// in one list of four) is current and the challenger previous.
	lists := map[model.Version]map[setlist.UserID][]model.Rec{}
	var runs [2]int64
	for i := range runs {
		if runs[i], err = e.db.StartRun(ctx, "experiment fixture"); err != nil {
			t.Fatal(err)
		}
	}
	challenger, control := model.Version(runs[0]), model.Version(runs[1])
	for _, v := range []struct {
		version model.Version
		favs    func() int
	}{
		{challenger, func() int { return 2 }},
		{control, func() int { return map[bool]int{true: 1}[rng.Float64() < 0.25] }},
	} {
		lists[v.version] = pop.lists(rng, v.favs)
		fv := fixture.Version{Version: v.version, Songs: songs, Factors: 4, Seed: uint64(v.version), K: 5, Lists: lists[v.version]}
		if err := fixture.Publish(ctx, e.rdb, e.prefix, fv); err != nil {
			t.Fatal(err)
		}
	}
	cfg := fastConfig()
	cfg.API.WriteRate = 0 // one client plays every listener
	in := e.start(t, cfg, nil)
	in.waitModel(t, int64(control))

	if code, out, errOut := e.batchCLI(t, "experiment", "start", "--challenger", fmt.Sprint(control), "--share", "0.5"); code == 0 {
		t.Fatalf("the current version accepted as challenger: %s", out)
	} else if !strings.Contains(errOut, "current version") {
		t.Errorf("refusal of the current version: %s", errOut)
	}
	code, out, errOut := e.batchCLI(t, "experiment", "start", "--challenger", fmt.Sprint(challenger), "--share", "0.5", "--name", "two favourites")
	if code != 0 {
		t.Fatalf("start: exit %d\n%s\n%s", code, out, errOut)
	}
	code, _, errOut = e.batchCLI(t, "experiment", "start", "--challenger", fmt.Sprint(challenger), "--share", "0.2")
	if code == 0 || !strings.Contains(errOut, "is running: stop or promote it first") {
		t.Errorf("second start: exit %d, %s", code, errOut)
	}
	running, err := e.db.RunningExperiment(ctx)
	if err != nil {
		t.Fatal(err)
	}
	routing := running.Routing()
	waitFor(t, "the experiment is served", func() bool {
		r, ok := in.srv.Recs().Experiment()
		return ok && r == routing
	})
	if got := in.metric(t, "setlist_serve_experiment_running"); got != 1 {
		t.Errorf("setlist_serve_experiment_running = %v", got)
	}

	perArm := map[string]int{}
	reacted := map[setlist.UserID]bool{}
	for _, u := range pop.users {
		r := in.get(t, "/v1/users/"+url.PathEscape(string(u))+"/recommendations?n=5")
		wantStatus(t, r, http.StatusOK)
		var a armAnswer
		r.json(t, &a)
		wantArm, wantVersion := routing.Arm(u), control
		if wantArm == setlist.ArmChallenger {
			wantVersion = challenger
		}
		if a.Arm != string(wantArm) || a.ModelVersion != int64(wantVersion) || a.Source != "batch" || len(a.Items) != 5 {
			t.Fatalf("%s: arm %s version %d source %s (%d items); want %s %d batch", u, a.Arm, a.ModelVersion, a.Source, len(a.Items), wantArm, wantVersion)
		}
		perArm[a.Arm]++
		for _, it := range a.Items {
			p := pop.pOther
			if pop.favs[u][it.SongID] {
				p = pop.pFav
			}
			if rng.Float64() < p {
				r := in.do(t, http.MethodPost, "/v1/users/"+url.PathEscape(string(u))+"/reactions", map[string]any{"song_id": it.SongID, "kind": "like"})
				wantStatus(t, r, http.StatusCreated)
				reacted[u] = true
			}
		}
	}
	t.Logf("answers per arm: %v", perArm)

	// Attribution follows the arm: a control user's like of a song only
	// the challenger's list holds for them was not shown to them; a
	// challenger user's like of their challenger list's third song was
	// shown there, at position 3. Users who have not reacted yet, so their
	// batch lists are still what they are shown.
	var controlUser, challengerUser setlist.UserID
	for _, u := range pop.users {
		switch {
		case reacted[u]:
		case routing.Arm(u) == setlist.ArmControl && controlUser == "":
			controlUser = u
		case routing.Arm(u) == setlist.ArmChallenger && challengerUser == "":
			challengerUser = u
		}
	}
	if controlUser == "" || challengerUser == "" {
		t.Fatal("no user without reactions in one of the arms")
	}
	otherArmSong := func() setlist.SongID {
		for _, c := range lists[challenger][controlUser] {
			if !slices.ContainsFunc(lists[control][controlUser], func(r model.Rec) bool { return r.Song == c.Song }) {
				return c.Song
			}
		}
		t.Fatalf("%s's challenger list is their control list", controlUser)
		return 0
	}()
	for _, c := range []struct {
		user setlist.UserID
		song setlist.SongID
		want store.Outcome
	}{
		{controlUser, otherArmSong, store.Outcome{Version: int64(control), Arm: setlist.ArmControl}},
		{challengerUser, lists[challenger][challengerUser][2].Song,
			store.Outcome{Version: int64(challenger), Arm: setlist.ArmChallenger, Source: setlist.SourceBatch, Position: 3}},
	} {
		r := in.do(t, http.MethodPost, "/v1/users/"+url.PathEscape(string(c.user))+"/reactions", map[string]any{"song_id": c.song, "kind": "like"})
		wantStatus(t, r, http.StatusCreated)
		var a reactAnswer
		r.json(t, &a)
		if a.Attribution == nil || *a.Attribution != answered(c.want) {
			t.Errorf("%s (%s arm) liked %d: answered attribution %+v, want %+v", c.user, routing.Arm(c.user), c.song, a.Attribution, answered(c.want))
		}
		if bytes.Contains(r.body, []byte(`"arm"`)) || bytes.Contains(r.body, []byte(`"model_version"`)) {
			t.Errorf("a reaction answer names the arm or version: %s", r.body)
		}
		if got := e.storedOutcome(t, string(c.user), c.song); got == nil || *got != c.want {
			t.Errorf("%s liked %d: stored attribution %+v, want %+v", c.user, c.song, got, c.want)
		}
	}
	in.srv.Exposure().Flush(ctx)

	code, out, errOut = e.batchCLI(t, "experiment", "status", "-o", "json")
	if code != 0 {
		t.Fatalf("status: exit %d\n%s", code, errOut)
	}
	var st struct {
		Readout experiment.Result `json:"readout"`
		Routing string            `json:"routing"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status json %s: %v", out, err)
	}
	rd := st.Readout
	t.Logf("readout: control %d/%d, challenger %d/%d, diff %+.3f [%+.3f, %+.3f], p %.2g, %s",
		rd.Control.Converted, rd.Control.Units, rd.Challenger.Converted, rd.Challenger.Units, rd.Diff, rd.DiffCI.Low, rd.DiffCI.High, rd.P, rd.Verdict)
	if rd.Control.Units != int64(perArm["control"]) || rd.Challenger.Units != int64(perArm["challenger"]) {
		t.Errorf("exposed %d/%d, answered %v", rd.Control.Units, rd.Challenger.Units, perArm)
	}
	if rd.Verdict != experiment.VerdictBetter || st.Routing != "ok" {
		t.Errorf("verdict %q (routing %s), want %q", rd.Verdict, st.Routing, experiment.VerdictBetter)
	}
	if _, table, _ := e.batchCLI(t, "experiment", "status"); !strings.Contains(table, "verdict: challenger better") || !strings.Contains(table, "planned sample") {
		t.Errorf("status table:\n%s", table)
	}

	r := in.get(t, "/v1/experiments")
	wantStatus(t, r, http.StatusOK)
	var list struct {
		Running *struct {
			ID      int64              `json:"id"`
			Serving bool               `json:"serving"`
			Readout *experiment.Result `json:"readout"`
		} `json:"running"`
		Experiments []json.RawMessage `json:"experiments"`
	}
	r.json(t, &list)
	if list.Running == nil || list.Running.ID != running.ID || !list.Running.Serving || list.Running.Readout == nil ||
		list.Running.Readout.Verdict != experiment.VerdictBetter || len(list.Experiments) != 1 || bytes.Contains(r.body, []byte(routing.Salt)) {
		t.Errorf("/v1/experiments: %s", r.body)
	}

	if code, out, errOut := e.batchCLI(t, "experiment", "promote"); code != 0 {
		t.Fatalf("promote: exit %d\n%s\n%s", code, out, errOut)
	}
	ptr, err := keyspace.NewPublisher(e.rdb, keyspace.NewKeys(e.prefix)).Pointers(ctx)
	if err != nil || ptr.Current != challenger || ptr.Previous != control {
		t.Errorf("pointers after promote %+v, %v; want current %d, previous %d", ptr, err, challenger, control)
	}
	if _, err := e.db.RunningExperiment(ctx); err == nil {
		t.Error("an experiment still runs after promote")
	}
	if list, _ := e.db.Experiments(ctx, 1); len(list) != 1 || list[0].Status != "promoted" {
		t.Errorf("after promote: %+v", list)
	}
	in.waitModel(t, int64(challenger))
	waitFor(t, "the experiment is no longer served", func() bool {
		_, ok := in.srv.Recs().Experiment()
		return !ok
	})
	var a armAnswer
	in.get(t, "/v1/users/"+url.PathEscape(string(pop.users[0]))+"/recommendations?n=5").json(t, &a)
	if a.Arm != "none" || a.ModelVersion != int64(challenger) {
		t.Errorf("after promote: arm %s version %d", a.Arm, a.ModelVersion)
	}
}
