package postgres_test

import (
	"context"
	"errors"
	"io/fs"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/postgres/pgtest"
	"github.com/setlist/setlist/internal/store"
	schema "github.com/setlist/setlist/sql"
)

func TestReact(t *testing.T) {
	db := pgtest.DB(t)
	ctx := context.Background()
	ids := mustSongs(t, db, [2]string{"Queen", "Bohemian Rhapsody"}, [2]string{"Muse", "Uprising"})
	if _, err := db.CreateUser(ctx, setlist.NewUser{ID: "ana"}); err != nil {
		t.Fatal(err)
	}
	kinds := func(t *testing.T) map[setlist.ReactionKind]float64 {
		t.Helper()
		rs, err := db.UserReactions(ctx, "ana", 0)
		if err != nil {
			t.Fatal(err)
		}
		m := map[setlist.ReactionKind]float64{}
		for _, r := range rs {
			if r.Song == ids[0] {
				m[r.Kind] = r.Weight
			}
		}
		return m
	}
	song := setlist.SongRef{ID: ids[0]}

	r, err := db.React(ctx, "ana", song, setlist.Like)
	if err != nil || r.Song != ids[0] || r.UpdatedAt.IsZero() {
		t.Fatalf("React like = %+v, %v", r, err)
	}
	if _, err := db.React(ctx, "ana", setlist.SongRef{Artist: "Queen", Track: "Bohemian Rhapsody"}, setlist.Play); err != nil {
		t.Fatal(err)
	}
	r, err = db.React(ctx, "ana", song, setlist.Play)
	if err != nil || r.Weight != 2 {
		t.Fatalf("second play = %+v, %v; want weight 2", r, err)
	}
	if got := kinds(t); got[setlist.Like] != 1 || got[setlist.Play] != 2 || len(got) != 2 {
		t.Fatalf("after like + 2 plays: %v", got)
	}
	if _, err := db.React(ctx, "ana", song, setlist.Dislike); err != nil {
		t.Fatal(err)
	}
	if got := kinds(t); len(got) != 2 || got[setlist.Dislike] != 1 || got[setlist.Play] != 2 {
		t.Fatalf("a dislike must replace the like and keep plays: %v", got)
	}
	if _, err := db.React(ctx, "ana", song, setlist.Like); err != nil {
		t.Fatal(err)
	}
	if got := kinds(t); len(got) != 2 || got[setlist.Like] != 1 {
		t.Fatalf("a like must replace the dislike: %v", got)
	}

	t.Run("Errors", func(t *testing.T) {
		if _, err := db.React(ctx, "nobody", song, setlist.Like); !errors.Is(err, setlist.ErrNotFound) {
			t.Errorf("unknown user: %v, want ErrNotFound", err)
		}
		if _, err := db.React(ctx, "ana", setlist.SongRef{ID: 99999}, setlist.Like); !errors.Is(err, setlist.ErrInvalid) {
			t.Errorf("unknown song: %v, want ErrInvalid", err)
		}
		if _, err := db.React(ctx, "ana", song, "love"); !errors.Is(err, setlist.ErrInvalid) {
			t.Errorf("bad kind: %v, want ErrInvalid", err)
		}
	})
	t.Run("Unreact", func(t *testing.T) {
		seq, err := db.Unreact(ctx, "ana", ids[0], setlist.Like)
		if err != nil || seq <= store.SeqBase {
			t.Fatalf("Unreact = %v, %v", seq, err)
		}
		if _, err := db.Unreact(ctx, "ana", ids[0], setlist.Like); !errors.Is(err, setlist.ErrNotFound) {
			t.Fatalf("second Unreact: %v, want ErrNotFound", err)
		}
		if got := kinds(t); len(got) != 1 || got[setlist.Play] != 2 {
			t.Fatalf("after unlike: %v", got)
		}
	})
	t.Run("List", func(t *testing.T) {
		if _, err := db.React(ctx, "ana", setlist.SongRef{ID: ids[1]}, setlist.Like); err != nil {
			t.Fatal(err)
		}
		got, err := db.ReactionList(ctx, "ana", 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].Song.Track != "Uprising" || got[0].Kind != setlist.Like {
			t.Fatalf("list = %+v, want newest (Uprising like) first", got)
		}
		if _, err := db.ReactionList(ctx, "nobody", 10); !errors.Is(err, setlist.ErrNotFound) {
			t.Fatalf("unknown user: %v", err)
		}
	})
	t.Run("UnknownUserHasNoReactions", func(t *testing.T) {
		if _, err := db.UserReactions(ctx, "nobody", 0); !errors.Is(err, setlist.ErrNotFound) {
			t.Fatalf("err = %v, want ErrNotFound", err)
		}
		if _, err := db.CreateUser(ctx, setlist.NewUser{ID: "empty"}); err != nil {
			t.Fatal(err)
		}
		rs, err := db.UserReactions(ctx, "empty", 0)
		if err != nil || len(rs) != 0 {
			t.Fatalf("UserReactions(empty) = %v, %v; want none", rs, err)
		}
	})
}

// TestReactionTxRetries: a transaction PostgreSQL aborts as a deadlock
// victim or serialization failure is run again, a bounded number of times,
// and then reported as ErrUnavailable (a 503 with Retry-After, not a 500);
// other errors are not retried.
func TestReactionTxRetries(t *testing.T) {
	db := pgtest.DB(t)
	ctx := context.Background()
	tries := 0
	err := db.ReactionTx(ctx, func(pgx.Tx) error {
		tries++
		return &pgconn.PgError{Code: "40P01", Message: "deadlock detected"}
	})
	if !errors.Is(err, setlist.ErrUnavailable) || !errors.Is(err, store.ErrContention) || tries < 2 || tries > 10 {
		t.Fatalf("always deadlocked: %d tries, %v; want a few tries, then ErrUnavailable", tries, err)
	}
	tries = 0
	err = db.ReactionTx(ctx, func(pgx.Tx) error {
		if tries++; tries == 1 {
			return &pgconn.PgError{Code: "40001", Message: "could not serialize access"}
		}
		return nil
	})
	if err != nil || tries != 2 {
		t.Fatalf("one serialization failure: %d tries, %v; want success on the second", tries, err)
	}
	tries = 0
	err = db.ReactionTx(ctx, func(pgx.Tx) error {
		tries++
		return &pgconn.PgError{Code: "23505", Message: "duplicate key"}
	})
	if err == nil || errors.Is(err, setlist.ErrUnavailable) || tries != 1 {
		t.Fatalf("a unique violation: %d tries, %v; want one try and the error as is", tries, err)
	}
}

// TestOpinionMigration: migration 0004 keeps the newer of a like and a
// dislike that exist together (written before it) and then refuses a pair.
func TestOpinionMigration(t *testing.T) {
	db := pgtest.DB(t)
	ctx := context.Background()
	ids := mustSongs(t, db, [2]string{"Queen", "Bohemian Rhapsody"}, [2]string{"Muse", "Uprising"})
	if _, err := db.CreateUser(ctx, setlist.NewUser{ID: "ana"}); err != nil {
		t.Fatal(err)
	}
	// Undo the migration's index, write pairs as the old code could, and run
	// the migration's statements again.
	body, err := fs.ReadFile(schema.Postgres, "postgres/0004_reaction_freshness.sql")
	if err != nil {
		t.Fatal(err)
	}
	_, fix, _ := strings.Cut(string(body), "-- The latest opinion wins")
	if _, err := db.Pool.Exec(ctx, `DROP INDEX reactions_one_opinion`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `INSERT INTO reactions (user_id, song_id, kind, updated_at) SELECT u.id, s, k, t::timestamptz FROM users u,
		(VALUES ($1::bigint, 'like', '2026-01-01'), ($1, 'dislike', '2026-01-02'), ($2::bigint, 'like', '2026-01-03'), ($2, 'dislike', '2026-01-02')) v(s, k, t)`,
		ids[0], ids[1]); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, "-- The latest opinion wins"+fix); err != nil {
		t.Fatal(err)
	}
	got := map[setlist.SongID]setlist.ReactionKind{}
	rs, err := db.UserReactions(ctx, "ana", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if _, dup := got[r.Song]; dup {
			t.Fatalf("song %d still has two opinions: %v", r.Song, rs)
		}
		got[r.Song] = r.Kind
	}
	if got[ids[0]] != setlist.Dislike || got[ids[1]] != setlist.Like {
		t.Fatalf("kept %v, want the newer opinion of each song (dislike of %d, like of %d)", got, ids[0], ids[1])
	}
	_, err = db.Pool.Exec(ctx, `INSERT INTO reactions (user_id, song_id, kind) SELECT id, $1, 'like' FROM users`, ids[0])
	if err == nil {
		t.Fatal("a like beside a dislike was stored; the index must refuse it")
	}
}
