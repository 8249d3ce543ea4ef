package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/experiment"
	"github.com/setlist/setlist/internal/store"
)

// testExperiments checks the experiment registry: one running at a time
// (even when two starts race), its salt and design come back as stored,
// ending it twice is refused, and the list is newest first.
func testExperiments(t *testing.T, b Backend) {
	ctx := context.Background()
	var v [3]int64
	for i := range v {
		var err error
		if v[i], err = b.DB.StartRun(ctx, ""); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.DB.RunningExperiment(ctx); !isErr(err, setlist.ErrNotFound) {
		t.Fatalf("running experiment of an empty registry: %v", err)
	}
	n := store.NewExperiment{Name: "first", Control: v[0], Challenger: v[1], Share: 0.1, Salt: "0123456789abcdef", Alpha: 0.05, MDE: 0.02}
	for _, bad := range []store.NewExperiment{
		{Name: "same", Control: v[0], Challenger: v[0], Share: 0.1, Salt: "s", Alpha: 0.05, MDE: 0.02},
		{Name: "share", Control: v[0], Challenger: v[1], Share: 1, Salt: "s", Alpha: 0.05, MDE: 0.02},
		{Name: "salt", Control: v[0], Challenger: v[1], Share: 0.1, Alpha: 0.05, MDE: 0.02},
	} {
		_, err := b.DB.StartExperiment(ctx, bad)
		wantErr(t, "start "+bad.Name, err, setlist.ErrInvalid)
	}
	_, err := b.DB.StartExperiment(ctx, store.NewExperiment{Name: "unknown", Control: v[0], Challenger: 1 << 40, Share: 0.1, Salt: "s", Alpha: 0.05, MDE: 0.02})
	wantErr(t, "start against an unknown version", err, setlist.ErrNotFound)

	// Two racing starts: exactly one wins, the other is a conflict.
	var (
		wg   sync.WaitGroup
		errs [2]error
		got  [2]store.Experiment
	)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := n
			m.Challenger = v[1+i]
			got[i], errs[i] = b.DB.StartExperiment(ctx, m)
		}()
	}
	wg.Wait()
	won := -1
	for i, err := range errs {
		switch {
		case err == nil:
			won = i
		case !isErr(err, setlist.ErrConflict):
			t.Errorf("racing start %d: %v", i, err)
		}
	}
	if won < 0 || errs[1-won] == nil {
		t.Fatalf("racing starts: %v, %v; want exactly one conflict", errs[0], errs[1])
	}
	first := got[won]
	if first.ID == 0 || first.Status != store.ExperimentRunning || first.Salt != n.Salt || first.Share != 0.1 ||
		first.Alpha != 0.05 || first.MDE != 0.02 || first.Control != v[0] || first.StartedAt.IsZero() || first.EndedAt != nil {
		t.Errorf("started %+v", first)
	}
	run, err := b.DB.RunningExperiment(ctx)
	if err != nil || run.ID != first.ID || run.Salt != first.Salt || run.Challenger != first.Challenger || !run.StartedAt.Equal(first.StartedAt) {
		t.Errorf("running = %+v, %v; want %+v", run, err, first)
	}
	testExposures(t, b, first.ID)
	_, err = b.DB.EndExperiment(ctx, first.ID, store.ExperimentRunning)
	wantErr(t, "end as running", err, setlist.ErrInvalid)
	ended, err := b.DB.EndExperiment(ctx, first.ID, store.ExperimentStopped)
	if err != nil || ended.Status != store.ExperimentStopped || ended.EndedAt == nil || ended.EndedAt.Before(ended.StartedAt) {
		t.Fatalf("end = %+v, %v", ended, err)
	}
	_, err = b.DB.EndExperiment(ctx, first.ID, store.ExperimentPromoted)
	wantErr(t, "end twice", err, setlist.ErrNotFound)
	if _, err := b.DB.RunningExperiment(ctx); !isErr(err, setlist.ErrNotFound) {
		t.Errorf("running after stop: %v", err)
	}

	// After the end, new likes do not count.
	if _, _, err := b.DB.ReactAttributed(ctx, "carol", setlist.SongRef{Artist: "Cher", Track: "Believe"}, setlist.Like, shownIn(t, b, setlist.ArmControl, "Cher", "Believe")); err != nil {
		t.Fatal(err)
	}
	wantCounts(t, b, first.ID, experiment.Counts{Units: 2, Converted: 1}, experiment.Counts{Units: 1})

	// The next one starts once the first ended.
	n.Name, n.Challenger = "second", v[2]
	second, err := b.DB.StartExperiment(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.DB.EndExperiment(ctx, second.ID, store.ExperimentPromoted); err != nil {
		t.Fatal(err)
	}
	list, err := b.DB.Experiments(ctx, 10)
	if err != nil || len(list) != 2 || list[0].ID != second.ID || list[0].Status != store.ExperimentPromoted || list[1].ID != first.ID {
		t.Errorf("experiments = %+v, %v; want second (promoted), first", list, err)
	}
	if list, _ := b.DB.Experiments(ctx, 1); len(list) != 1 {
		t.Errorf("limit 1: %d experiments", len(list))
	}
}

func isErr(err, sentinel error) bool { return errors.Is(err, sentinel) }

// testExposures: a user is recorded once per experiment in the arm of their
// first exposure; unknown users are skipped; only a like at or after the
// exposure converts.
func testExposures(t *testing.T, b Backend, id int64) {
	ctx := context.Background()
	importSample(t, b.DB)
	if _, err := b.DB.React(ctx, "bob", setlist.SongRef{Artist: "Cher", Track: "Believe"}, setlist.Like); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Millisecond) // a later timestamp than bob's like on any clock resolution either backend has
	now := time.Now()
	err := b.DB.RecordExposures(ctx, id, []store.ExperimentExposure{{User: "alice", Arm: setlist.ArmControl, At: now}, {User: "carol", Arm: setlist.ArmControl, At: now}, {User: "nobody", Arm: setlist.ArmControl, At: now}})
	if err != nil {
		t.Fatal(err)
	}
	err = b.DB.RecordExposures(ctx, id, []store.ExperimentExposure{{User: "alice", Arm: setlist.ArmChallenger, At: now}, {User: "bob", Arm: setlist.ArmChallenger, At: now}})
	if err != nil {
		t.Fatal(err)
	}
	wantCounts(t, b, id, experiment.Counts{Units: 2}, experiment.Counts{Units: 1})
	time.Sleep(2 * time.Millisecond)
	// Only a like of a song shown in the user's arm converts: an
	// unattributed like and one shown in the other arm do not.
	if _, err := b.DB.React(ctx, "carol", setlist.SongRef{Artist: "Abba", Track: "Waterloo"}, setlist.Like); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.DB.ReactAttributed(ctx, "bob", setlist.SongRef{Artist: "Beck", Track: "Loser"}, setlist.Like, shownIn(t, b, setlist.ArmControl, "Beck", "Loser")); err != nil {
		t.Fatal(err)
	}
	wantCounts(t, b, id, experiment.Counts{Units: 2}, experiment.Counts{Units: 1})
	if _, _, err := b.DB.ReactAttributed(ctx, "alice", setlist.SongRef{Artist: "Beck", Track: "Loser"}, setlist.Like, shownIn(t, b, setlist.ArmControl, "Beck", "Loser")); err != nil {
		t.Fatal(err)
	}
	wantCounts(t, b, id, experiment.Counts{Units: 2, Converted: 1}, experiment.Counts{Units: 1})
}

// shownIn is what serve shows a user in arm: a batch list holding the song.
func shownIn(t *testing.T, b Backend, arm setlist.Arm, artist, track string) *store.Shown {
	return &store.Shown{Version: 1, Arm: arm, Source: setlist.SourceBatch, Songs: []setlist.SongID{songID(t, b.DB, artist, track)}}
}

func wantCounts(t *testing.T, b Backend, id int64, control, challenger experiment.Counts) {
	t.Helper()
	c, ch, err := b.DB.ExperimentCounts(context.Background(), id)
	if err != nil || c != control || ch != challenger {
		t.Errorf("counts = control %+v, challenger %+v, %v; want %+v, %+v", c, ch, err, control, challenger)
	}
}
