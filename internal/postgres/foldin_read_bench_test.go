package postgres_test

import (
	"context"
	"testing"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/postgres/pgtest"
)

// BenchmarkUserReactionsCapped reads the capped fold-in history (1000 rows,
// serve's default --foldin-max-reactions) of a user with 100,000 reactions,
// with migration 0008's index and after dropping it, in the same run: the
// index is what lets the LIMIT stop the read instead of sorting the whole
// history.
func BenchmarkUserReactionsCapped(b *testing.B) {
	const history, cap = 100_000, 1000
	ctx := context.Background()
	db := pgtest.DB(b)
	songs, err := pgtest.InsertSongs(ctx, db, 0, history)
	if err != nil {
		b.Fatal(err)
	}
	const user = setlist.UserID("heavy-listener")
	if err := pgtest.InsertUsers(ctx, db, []setlist.UserID{user}); err != nil {
		b.Fatal(err)
	}
	rs := make([]setlist.Reaction, 0, history+200)
	for i, s := range songs {
		rs = append(rs, setlist.Reaction{User: user, Song: s, Kind: setlist.Play, Weight: float64(1 + i%97)})
		if i%500 == 0 {
			rs = append(rs, setlist.Reaction{User: user, Song: s, Kind: setlist.Like, Weight: 1})
		}
	}
	if err := pgtest.InsertReactions(ctx, db, rs); err != nil {
		b.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `ANALYZE reactions`); err != nil {
		b.Fatal(err)
	}
	read := func(b *testing.B) {
		for b.Loop() {
			got, err := db.UserReactions(ctx, user, cap)
			if err != nil {
				b.Fatal(err)
			}
			if len(got) != cap || got[0].Kind != setlist.Like {
				b.Fatalf("read %d reactions, first %s; want %d with the likes first", len(got), got[0].Kind, cap)
			}
		}
	}
	b.Run("index", read)
	if _, err := db.Pool.Exec(ctx, `DROP INDEX reactions_foldin_order`); err != nil {
		b.Fatal(err)
	}
	b.Run("sort", read)
}
