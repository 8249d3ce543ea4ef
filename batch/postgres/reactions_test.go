package postgres_test

import (
	"context"
	"errors"
	"testing"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/batch/postgres/pgtest"
	"github.com/setlist/setlist/batch/store"
)

func TestReact(t *testing.T) {
	db := pgtest.DB(t)
	ctx := context.Background()
	ids := mustSongs(t, db, [2]string{"Queen", "Bohemian Rhapsody"}, [2]string{"Muse", "Uprising"})
	if _, err := db.CreateUser(ctx, store.NewUser{ID: "ana"}); err != nil {
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
	song := store.SongRef{ID: ids[0]}

	r, err := db.React(ctx, "ana", song, setlist.Like)
	if err != nil || r.Song != ids[0] || r.UpdatedAt.IsZero() {
		t.Fatalf("React like = %+v, %v", r, err)
	}
	if _, err := db.React(ctx, "ana", store.SongRef{Artist: "Queen", Track: "Bohemian Rhapsody"}, setlist.Play); err != nil {
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
		if _, err := db.React(ctx, "ana", store.SongRef{ID: 99999}, setlist.Like); !errors.Is(err, setlist.ErrInvalid) {
			t.Errorf("unknown song: %v, want ErrInvalid", err)
		}
		if _, err := db.React(ctx, "ana", song, "love"); !errors.Is(err, setlist.ErrInvalid) {
			t.Errorf("bad kind: %v, want ErrInvalid", err)
		}
	})
	t.Run("Unreact", func(t *testing.T) {
		at, err := db.Unreact(ctx, "ana", ids[0], setlist.Like)
		if err != nil || at.IsZero() {
			t.Fatalf("Unreact = %v, %v", at, err)
		}
		if _, err := db.Unreact(ctx, "ana", ids[0], setlist.Like); !errors.Is(err, setlist.ErrNotFound) {
			t.Fatalf("second Unreact: %v, want ErrNotFound", err)
		}
		if got := kinds(t); len(got) != 1 || got[setlist.Play] != 2 {
			t.Fatalf("after unlike: %v", got)
		}
	})
	t.Run("List", func(t *testing.T) {
		if _, err := db.React(ctx, "ana", store.SongRef{ID: ids[1]}, setlist.Like); err != nil {
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
		if _, err := db.CreateUser(ctx, store.NewUser{ID: "empty"}); err != nil {
			t.Fatal(err)
		}
		rs, err := db.UserReactions(ctx, "empty", 0)
		if err != nil || len(rs) != 0 {
			t.Fatalf("UserReactions(empty) = %v, %v; want none", rs, err)
		}
	})
}
