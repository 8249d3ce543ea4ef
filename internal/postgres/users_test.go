package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/postgres/pgtest"
	"github.com/setlist/setlist/internal/store"
)

func TestCreateUser(t *testing.T) {
	db := pgtest.DB(t)
	ctx := context.Background()
	ids := mustSongs(t, db, [2]string{"Queen", "Bohemian Rhapsody"}, [2]string{"Muse", "Uprising"})

	t.Run("OK", func(t *testing.T) {
		u, err := db.CreateUser(ctx, setlist.NewUser{ID: "ana", DisplayName: "Ana", Likes: []setlist.SongRef{
			{ID: ids[0]}, {Artist: "Muse", Track: "Uprising"},
		}})
		if err != nil {
			t.Fatal(err)
		}
		if u.ID != "ana" || u.DisplayName != "Ana" || u.CreatedAt.IsZero() {
			t.Fatalf("user = %+v", u)
		}
		rs, err := db.UserReactions(ctx, "ana", 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) != 2 || rs[0].Kind != setlist.Like || rs[1].Kind != setlist.Like {
			t.Fatalf("reactions = %+v, want two likes", rs)
		}
	})
	t.Run("Conflict", func(t *testing.T) {
		if _, err := db.CreateUser(ctx, setlist.NewUser{ID: "ana"}); !errors.Is(err, setlist.ErrConflict) {
			t.Fatalf("err = %v, want ErrConflict", err)
		}
	})
	t.Run("UnknownSongWritesNothing", func(t *testing.T) {
		_, err := db.CreateUser(ctx, setlist.NewUser{ID: "bob", Likes: []setlist.SongRef{{ID: ids[0]}, {Artist: "Nobody", Track: "Nothing"}}})
		if !errors.Is(err, setlist.ErrInvalid) || !strings.Contains(err.Error(), "likes[1]") || !strings.Contains(err.Error(), "Nothing") {
			t.Fatalf("err = %v, want ErrInvalid naming likes[1] and the song", err)
		}
		if _, err := db.User(ctx, "bob"); !errors.Is(err, setlist.ErrNotFound) {
			t.Fatalf("user bob exists after a failed create: %v", err)
		}
	})
	t.Run("Invalid", func(t *testing.T) {
		for _, u := range []setlist.NewUser{
			{ID: ""},
			{ID: setlist.UserID(strings.Repeat("x", setlist.MaxUserIDLen+1))},
			{ID: "tab\there"},
			{ID: "ok", DisplayName: strings.Repeat("x", setlist.MaxDisplayNameLen+1)},
			{ID: "ok", Likes: []setlist.SongRef{{}}},
		} {
			if _, err := db.CreateUser(ctx, u); !errors.Is(err, setlist.ErrInvalid) {
				t.Errorf("CreateUser(%.40q) err = %v, want ErrInvalid", u.ID, err)
			}
		}
	})
}

func TestSearchUsers(t *testing.T) {
	db := pgtest.DB(t)
	ctx := context.Background()
	for i := range 30 {
		name := fmt.Sprintf("Listener %02d", i)
		if i == 7 {
			name = "Alice Cooper fan"
		}
		if _, err := db.CreateUser(ctx, setlist.NewUser{ID: setlist.UserID(fmt.Sprintf("user%02d", i)), DisplayName: name}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.CreateUser(ctx, setlist.NewUser{ID: "alice", DisplayName: "Alice"}); err != nil {
		t.Fatal(err)
	}
	collect := func(t *testing.T, q store.UserQuery) []string {
		t.Helper()
		var out []string
		for pages := 0; ; pages++ {
			if pages > 100 {
				t.Fatal("pagination does not end")
			}
			p, err := db.SearchUsers(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Users) > q.Limit {
				t.Fatalf("page of %d users, limit %d", len(p.Users), q.Limit)
			}
			for _, u := range p.Users {
				out = append(out, string(u.ID))
			}
			if p.Next == "" {
				return out
			}
			q.Cursor = p.Next
		}
	}
	t.Run("AllPaginated", func(t *testing.T) {
		got := collect(t, store.UserQuery{Limit: 7})
		if len(got) != 31 || got[0] != "alice" || got[1] != "user00" || got[30] != "user29" {
			t.Fatalf("got %d users %q", len(got), got)
		}
	})
	t.Run("ShortPrefix", func(t *testing.T) {
		got := collect(t, store.UserQuery{Query: "us", Limit: 100})
		if len(got) != 30 {
			t.Fatalf("got %d users, want 30", len(got))
		}
	})
	t.Run("SubstringPrefixFirst", func(t *testing.T) {
		got := collect(t, store.UserQuery{Query: "alice", Limit: 1})
		if want := []string{"alice", "user07"}; strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("got %q, want %q", got, want)
		}
	})
	t.Run("SubstringOfDisplayName", func(t *testing.T) {
		got := collect(t, store.UserQuery{Query: "cooper", Limit: 5})
		if strings.Join(got, ",") != "user07" {
			t.Fatalf("got %q", got)
		}
	})
	t.Run("BadCursor", func(t *testing.T) {
		if _, err := db.SearchUsers(ctx, store.UserQuery{Limit: 5, Cursor: "!!"}); !errors.Is(err, setlist.ErrInvalid) {
			t.Fatalf("err = %v, want ErrInvalid", err)
		}
	})
	t.Run("UsesIndexes", func(t *testing.T) {
		// A substring query must be answered from the trigram index, not a
		// scan of every user; seqscans are disabled so the plan shows whether
		// the index can serve it at all.
		conn, err := db.Pool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Release()
		if _, err := conn.Exec(ctx, "SET enable_seqscan = off"); err != nil {
			t.Fatal(err)
		}
		defer conn.Exec(ctx, "RESET enable_seqscan")
		for q, index := range map[string]string{
			`SELECT external_id FROM users WHERE (external_id || ' ' || display_name) ILIKE '%cooper%'`:                         "users_search_trgm",
			`SELECT external_id FROM users WHERE external_id ~>=~ 'us' AND external_id ~<~ 'ut' ORDER BY external_id USING ~<~`: "users_external_id_prefix",
		} {
			var plan strings.Builder
			rows, err := conn.Query(ctx, "EXPLAIN "+q)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var line string
				_ = rows.Scan(&line)
				plan.WriteString(line + "\n")
			}
			if !strings.Contains(plan.String(), index) {
				t.Errorf("plan for %s does not use %s:\n%s", q, index, plan.String())
			}
		}
	})
}
