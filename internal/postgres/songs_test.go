package postgres_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/postgres"
	"github.com/setlist/setlist/internal/postgres/pgtest"
)

// mustSongs inserts songs as "artist|track" pairs and returns their ids in order.
func mustSongs(tb testing.TB, db *postgres.DB, pairs ...[2]string) []setlist.SongID {
	tb.Helper()
	ids := make([]setlist.SongID, len(pairs))
	for i, p := range pairs {
		if err := db.Pool.QueryRow(context.Background(), `INSERT INTO songs (artist, track) VALUES ($1, $2) RETURNING id`, p[0], p[1]).Scan(&ids[i]); err != nil {
			tb.Fatalf("insert song %v: %v", p, err)
		}
	}
	return ids
}

func TestSearchSongs(t *testing.T) {
	db := pgtest.DB(t)
	ctx := context.Background()
	ids := mustSongs(t, db,
		[2]string{"Queen", "Bohemian Rhapsody"},
		[2]string{"Arctic Monkeys", "Do I Wanna Know?"},
		[2]string{"The Queenies", "Song"},
		[2]string{"Abba", "Queen of Hearts"},
		[2]string{"Muse", "Dancing Queen Cover"},
		[2]string{"Odd", "100% pure_fun"},
	)
	t.Run("PrefixFirst", func(t *testing.T) {
		got, err := db.SearchSongs(ctx, "queen", 10)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, s := range got {
			names = append(names, s.Artist+" - "+s.Track)
		}
		want := []string{"Queen - Bohemian Rhapsody", "Abba - Queen of Hearts", "Muse - Dancing Queen Cover", "The Queenies - Song"}
		if len(names) != len(want) {
			t.Fatalf("got %q, want %q", names, want)
		}
		for i := range want {
			if names[i] != want[i] {
				t.Fatalf("got %q, want %q", names, want)
			}
		}
	})
	t.Run("Limit", func(t *testing.T) {
		got, err := db.SearchSongs(ctx, "queen", 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].ID != ids[0] {
			t.Fatalf("got %+v, want 2 songs starting with %d", got, ids[0])
		}
	})
	t.Run("LikeCharactersAreLiteral", func(t *testing.T) {
		got, err := db.SearchSongs(ctx, "0% pure_", 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].ID != ids[5] {
			t.Fatalf("got %+v, want only song %d", got, ids[5])
		}
		if got, _ := db.SearchSongs(ctx, "%", 10); len(got) != 1 {
			t.Fatalf("%% matched %d songs, want 1 (literal)", len(got))
		}
	})
	t.Run("EmptyListsAlphabetically", func(t *testing.T) {
		got, err := db.SearchSongs(ctx, "", 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(ids) || got[0].Artist != "Abba" {
			t.Fatalf("got %+v", got)
		}
	})
	t.Run("BadLimit", func(t *testing.T) {
		if _, err := db.SearchSongs(ctx, "x", 0); !errors.Is(err, setlist.ErrInvalid) {
			t.Fatalf("err = %v, want ErrInvalid", err)
		}
	})
	t.Run("SongsByID", func(t *testing.T) {
		got, err := db.SongsByID(ctx, []setlist.SongID{ids[0], ids[3], 999999})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[ids[3]].Track != "Queen of Hearts" {
			t.Fatalf("got %+v", got)
		}
	})
	t.Run("Song", func(t *testing.T) {
		if s, err := db.Song(ctx, ids[1]); err != nil || s.Artist != "Arctic Monkeys" {
			t.Fatalf("Song = %+v, %v", s, err)
		}
		if _, err := db.Song(ctx, 999999); !errors.Is(err, setlist.ErrNotFound) {
			t.Fatalf("err = %v, want ErrNotFound", err)
		}
	})
}

func TestSongRefValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		ref  setlist.SongRef
		ok   bool
	}{
		{"ID", setlist.SongRef{ID: 3}, true},
		{"Name", setlist.SongRef{Artist: "a", Track: "t"}, true},
		{"Both", setlist.SongRef{ID: 3, Artist: "a", Track: "t"}, false},
		{"TrackMissing", setlist.SongRef{Artist: "a"}, false},
		{"Empty", setlist.SongRef{}, false},
		{"Negative", setlist.SongRef{ID: -1}, false},
		{"ArtistAtLimit", setlist.SongRef{Artist: strings.Repeat("a", setlist.MaxSongNameLen), Track: "t"}, true},
		{"ArtistOverLimit", setlist.SongRef{Artist: strings.Repeat("a", 3000), Track: "t"}, false},
		{"TrackOverLimit", setlist.SongRef{Artist: "a", Track: strings.Repeat("é", setlist.MaxSongNameLen/2+1)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.ref.Validate()
			if got := err == nil; got != tc.ok {
				t.Fatalf("Validate(%+v) = %v, want ok=%v", tc.ref, err, tc.ok)
			}
			if err != nil && !errors.Is(err, setlist.ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
		})
	}
}
