package server_test

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/store"
)

// reactAnswer is POST /v1/users/{id}/reactions' answer.
type reactAnswer struct {
	SongID      setlist.SongID     `json:"song_id"`
	Kind        string             `json:"kind"`
	Attribution *answerAttribution `json:"attribution"`
}

// answerAttribution is what a write answer says of an attribution: never
// the arm nor the version (issue 24 item 8).
type answerAttribution struct {
	Shown    bool           `json:"shown"`
	Source   setlist.Source `json:"source"`
	Position int            `json:"position"`
}

// answered is what the answer says of o.
func answered(o store.Outcome) answerAttribution {
	return answerAttribution{Shown: o.Shown(), Source: o.Source, Position: o.Position}
}

func (in *instance) react(t *testing.T, user string, song setlist.SongID, kind string) reactAnswer {
	t.Helper()
	r := in.do(t, http.MethodPost, "/v1/users/"+user+"/reactions", map[string]any{"song_id": song, "kind": kind})
	wantStatus(t, r, http.StatusCreated)
	var a reactAnswer
	r.json(t, &a)
	return a
}

// storedOutcome reads the attribution columns of user's opinion on song
// straight from PostgreSQL (nil: unattributed).
func (w *env) storedOutcome(t *testing.T, user string, song setlist.SongID) *store.Outcome {
	t.Helper()
	var (
		version, position *int64
		arm, source       *string
	)
	err := w.db.Pool.QueryRow(context.Background(), `SELECT r.shown_version, r.shown_arm, r.shown_source, r.shown_position
		FROM reactions r JOIN users u ON u.id = r.user_id
		WHERE u.external_id = $1 AND r.song_id = $2 AND r.kind IN ('like', 'dislike')`, user, song).
		Scan(&version, &arm, &source, &position)
	if err != nil {
		t.Fatal(err)
	}
	if arm == nil {
		return nil
	}
	o := &store.Outcome{Arm: setlist.Arm(*arm)}
	if version != nil {
		o.Version = *version
	}
	if source != nil {
		o.Source, o.Position = setlist.Source(*source), int(*position)
	}
	return o
}

// wantOutcome checks both the answer's attribution and the stored one.
func (w *world) wantOutcome(t *testing.T, what, user string, a reactAnswer, want store.Outcome) {
	t.Helper()
	if a.Attribution == nil || *a.Attribution != answered(want) {
		t.Errorf("%s: answered attribution %+v, want %+v", what, a.Attribution, answered(want))
	}
	if got := w.storedOutcome(t, user, a.SongID); got == nil || *got != want {
		t.Errorf("%s: stored attribution %+v, want %+v", what, got, want)
	}
}

// TestAttribution: a like or dislike is attributed to the last list
// answered to the user, at the song's position in the whole list the
// answer was cut from: the batch list, a cached fold-in, the popular list;
// a song not in it is stored not shown; a repeated opinion keeps its first
// outcome; plays are not attributed.
func TestAttribution(t *testing.T) {
	w := newWorld(t)
	in := w.start(t, fastConfig(), nil)
	in.waitModel(t, 1)
	notShown := store.Outcome{Version: 1, Arm: setlist.ArmNone}

	// Batch: the stored list, positions counted over all of it (K=10),
	// not only the 5 an answer asked for.
	batch := w.v1.Lists["batchy"]
	if a := in.recs(t, "batchy", 5); a.Source != "batch" {
		t.Fatalf("batchy answered from %s", a.Source)
	}
	w.wantOutcome(t, "batch position 3", "batchy", in.react(t, "batchy", batch[2].Song, "like"),
		store.Outcome{Version: 1, Arm: setlist.ArmNone, Source: setlist.SourceBatch, Position: 3})

	// The like outdated batchy's batch list, but it is still the last list
	// batchy was answered: a like of its 8th song is attributed to it.
	w.wantOutcome(t, "after a like, before the next answer", "batchy", in.react(t, "batchy", batch[7].Song, "like"),
		store.Outcome{Version: 1, Arm: setlist.ArmNone, Source: setlist.SourceBatch, Position: 8})

	// The next answer is a fold-in, cached; a dislike of its 2nd song is
	// attributed to it.
	fold := in.recs(t, "batchy", 5)
	if fold.Source != "fold-in" {
		t.Fatalf("after likes batchy answered from %s", fold.Source)
	}
	w.wantOutcome(t, "fold-in position 2", "batchy", in.react(t, "batchy", fold.Items[1].SongID, "dislike"),
		store.Outcome{Version: 1, Arm: setlist.ArmNone, Source: setlist.SourceFoldIn, Position: 2})

	// Popular: newbie's 4th song.
	pop := in.recs(t, "newbie", 5)
	if pop.Source != "popular" {
		t.Fatalf("newbie answered from %s", pop.Source)
	}
	w.wantOutcome(t, "popular position 4", "newbie", in.react(t, "newbie", pop.Items[3].SongID, "like"),
		store.Outcome{Version: 1, Arm: setlist.ArmNone, Source: setlist.SourcePopular, Position: 4})

	// folder's cached fold-in (depth 20) does not hold a song outside the
	// catalog nor one folder reacted to: not shown.
	fa := in.recs(t, "folder", 5)
	if fa.Source != "fold-in" {
		t.Fatalf("folder answered from %s", fa.Source)
	}
	if slices.Contains(fa.songs(), w.songs[55]) {
		t.Fatal("song 55 is outside the catalog yet recommended")
	}
	w.wantOutcome(t, "a song not shown", "folder", in.react(t, "folder", w.songs[55], "like"), notShown)

	// A repeated like keeps its first outcome; turning it into a dislike
	// is a new opinion, attributed anew (to the same list: still the last
	// answered).
	wl := w.v1.Lists[weird]
	esc := "a%20b%2Fc%25"
	in.recs(t, weird, 3)
	atFirst := store.Outcome{Version: 1, Arm: setlist.ArmNone, Source: setlist.SourceBatch, Position: 1}
	w.wantOutcome(t, "first like", weird, in.react(t, esc, wl[0].Song, "like"), atFirst)
	w.wantOutcome(t, "repeated like", weird, in.react(t, esc, wl[0].Song, "like"), atFirst)
	w.wantOutcome(t, "like turned dislike", weird, in.react(t, esc, wl[0].Song, "dislike"), atFirst)

	// Plays are not attributed.
	if a := in.react(t, "folder", w.songs[30], "play"); a.Attribution != nil {
		t.Errorf("a play was attributed: %+v", a.Attribution)
	}
	// Counted per request by the outcome stored (the repeated like too).
	for series, want := range map[string]float64{
		`setlist_serve_attributions_total{kind="like",outcome="shown"}`:        5,
		`setlist_serve_attributions_total{kind="dislike",outcome="shown"}`:     2,
		`setlist_serve_attributions_total{kind="like",outcome="not_shown"}`:    1,
		`setlist_serve_attributions_total{kind="dislike",outcome="not_shown"}`: 0,
	} {
		if got := in.metric(t, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
}

// TestNeverAnsweredNotAttributed (issue 24 item 8): a like of the first
// song of a user's batch list, by a user serve never answered, is not
// attributed to that list (it was attributed at position 1 and counted as
// an online like of the batch source); a like of another user's answered
// list is.
func TestNeverAnsweredNotAttributed(t *testing.T) {
	w := newWorld(t)
	in := w.start(t, fastConfig(), nil)
	in.waitModel(t, 1)
	w.wantOutcome(t, "never answered", weird, in.react(t, "a%20b%2Fc%25", w.v1.Lists[weird][0].Song, "like"),
		store.Outcome{Version: 1, Arm: setlist.ArmNone})
	in.recs(t, "batchy", 5)
	w.wantOutcome(t, "answered", "batchy", in.react(t, "batchy", w.v1.Lists["batchy"][1].Song, "like"),
		store.Outcome{Version: 1, Arm: setlist.ArmNone, Source: setlist.SourceBatch, Position: 2})
	online, err := w.db.OnlineMetrics(context.Background(), time.Now().Add(-24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	likes := int64(0)
	for _, o := range online {
		likes += o.Likes
	}
	if likes != 1 {
		t.Errorf("online metrics count %d likes of shown songs; want 1 (the answered one): %+v", likes, online)
	}
}

// TestAttributionBothBackends (issue 24 item 8): on PostgreSQL+Redis and on
// the embedded store (SQLite and the in-process Redis, where the shown
// list is a key like any other), a like before any answer is not shown, and
// a like of the answered fold-in's second song is shown at position 2 of
// the list it was cut from.
func TestAttributionBothBackends(t *testing.T) {
	eachBackend(t, func(t *testing.T, w *filterWorld) {
		var song setlist.SongID
		for _, s := range w.songs[30:] {
			if !w.hidden[s] {
				song = s
				break
			}
		}
		if a := w.in.react(t, "folder", song, "like"); a.Attribution == nil || *a.Attribution != (answerAttribution{}) {
			t.Errorf("a like before any answer: attribution %+v, want not shown", a.Attribution)
		}
		fold := w.in.recs(t, "folder", 5)
		if fold.Source != "fold-in" || len(fold.Items) < 2 {
			t.Fatalf("folder's answer %+v, want a fold-in", fold)
		}
		want := answerAttribution{Shown: true, Source: setlist.SourceFoldIn, Position: 2}
		if a := w.in.react(t, "folder", fold.Items[1].SongID, "like"); a.Attribution == nil || *a.Attribution != want {
			t.Errorf("a like of the answered fold-in's 2nd song: attribution %+v, want %+v", a.Attribution, want)
		}
	})
}
