package command_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/batch/command"
	"github.com/setlist/setlist/internal/embedded"
	"github.com/setlist/setlist/internal/postgres"
	"github.com/setlist/setlist/internal/store"
)

// catalogReader is what TestCatalogBadInput reads back from either
// backend's system of record.
type catalogReader interface {
	SearchCatalog(ctx context.Context, q store.SongQuery) ([]setlist.CatalogSong, error)
	HiddenSongs(ctx context.Context) (int64, []setlist.SongID, error)
}

// catalogBackend runs batch against one backend and reads its catalog.
type catalogBackend struct {
	run  func(args ...string) (int, string, string)
	read func(func(catalogReader))
}

// eachCatalogBackend runs test with batch on PostgreSQL+Redis and on the
// embedded store (SQLite and the in-process Redis in a data directory).
func eachCatalogBackend(t *testing.T, test func(t *testing.T, b catalogBackend)) {
	t.Run("postgres+redis", func(t *testing.T) {
		c := newCLI(t)
		test(t, catalogBackend{run: c.run, read: func(f func(catalogReader)) {
			db, err := postgres.Open(context.Background(), c.dbURL)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			f(db)
		}})
	})
	t.Run("embedded", func(t *testing.T) {
		dir := t.TempDir()
		test(t, catalogBackend{run: func(args ...string) (int, string, string) {
			app := command.NewApp("test")
			var out, errOut bytes.Buffer
			app.Writer, app.ErrWriter = &out, &errOut
			code := command.Run(context.Background(), app, append([]string{"batch", "--store", "embedded", "--data-dir", dir}, args...))
			return code, out.String(), errOut.String()
		}, read: func(f func(catalogReader)) {
			emb, err := embedded.Open(context.Background(), dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer emb.Close()
			f(emb.DB)
		}})
	})
}

// TestCatalogBadInput: every kind of bad catalog CSV fails the whole import
// at its file:line, said once (and the field, when one is to blame), exit 1,
// nothing written, a bad row after good ones included; hiding or showing
// an unknown song fails naming it, exit 1, changing nothing; both
// backends.
func TestCatalogBadInput(t *testing.T) {
	eachCatalogBackend(t, func(t *testing.T, b catalogBackend) {
		write := csvWriter(t)
		const header = "external_id,artist,track,tags,released,available\n"
		const good = header + "SEAYD7401001,Abba,Waterloo,pop swedish,1974-03-04,true\n,Beck,Loser,rock,,\n"
		if code, out, errOut := b.run("catalog", "import", "--csv", write("good.csv", good)); code != 0 {
			t.Fatalf("good import: exit %d\n%s\n%s", code, out, errOut)
		}
		state := func() string {
			var s string
			b.read(func(db catalogReader) {
				songs, err := db.SearchCatalog(context.Background(), store.SongQuery{Limit: 100})
				if err != nil {
					t.Fatal(err)
				}
				seq, hidden, err := db.HiddenSongs(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				s = fmt.Sprintf("seq %d hidden %v songs", seq, hidden)
				for _, c := range songs {
					s += fmt.Sprintf(" [%d %s/%s %v %v %s %v]", c.ID, c.Artist, c.Track, c.Tags, c.Released, c.ExternalID, c.Available)
				}
			})
			return s
		}
		before := state()
		// A good row first in every file: the import is all or nothing.
		const first = header + ",Cher,Believe,pop,1998-10-19,\n"
		long := strings.Repeat("a", setlist.MaxSongNameLen+1)
		for _, tc := range []struct {
			name, body string
			line       int
			field      string // "" when no one field is to blame
		}{
			{"too few fields", first + "X2,Daft Punk,Around the World,house\n", 3, ""},
			{"too many fields", first + "X2,Daft Punk,Around the World,house,,,extra\n", 3, ""},
			{"bad tag", first + ",Daft Punk,Around the World,house tag!,,\n", 3, "tags"},
			{"bad release day", first + ",Daft Punk,Around the World,,1999-02-30,\n", 3, "released"},
			{"release day far ahead", first + ",Daft Punk,Around the World,,2999-01-01,\n", 3, "released"},
			{"bad available", first + ",Daft Punk,Around the World,,,maybe\n", 3, "available"},
			{"empty artist", first + ",,Around the World,,,\n", 3, "artist"},
			{"empty track", first + ",Daft Punk,,,,\n", 3, "track"},
			{"artist too long", first + "," + long + ",Around the World,,,\n", 3, "artist"},
			{"invalid UTF-8", first + ",Daft Punk,Around the \xff World,,,\n", 3, "track"},
			{"song twice", first + ",Daft Punk,Da Funk,,,\n,Cher,Believe,,,\n", 4, ""},
			{"external id twice", first + "X9,Daft Punk,Da Funk,,,\nX9,Daft Punk,Revolution 909,,,\n", 4, "external_id"},
			{"external id of another stored song", first + "SEAYD7401001,Beck,Loser,,,\n", 3, "external_id"},
			{"stored song has another external id", first + "OTHER1,Abba,Waterloo,,,\n", 3, "external_id"},
			{"bare quote", first + ",Daft \"Punk,Da Funk,,,\n", 3, ""},
			{"unknown column", "artist,track,genre\nCher,Believe,pop\n", 1, ""},
			{"missing track column", "artist,tags\nCher,pop\n", 1, ""},
			{"empty file", "", 1, ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				code, out, errOut := b.run("catalog", "import", "--csv", write("bad.csv", tc.body))
				at := fmt.Sprintf("bad.csv:%d:", tc.line)
				if code != 1 || !strings.Contains(errOut, at) || strings.Count(errOut, "bad.csv") != 1 || (tc.field != "" && !strings.Contains(errOut, "field "+tc.field)) {
					t.Errorf("exit %d, want 1 naming %s field %q\nstdout %s\nstderr %s", code, at, tc.field, out, errOut)
				}
				if after := state(); after != before {
					t.Errorf("a failed import changed the catalog:\nbefore %s\nafter  %s", before, after)
				}
			})
		}
		for _, verb := range []string{"hide", "show"} {
			code, out, errOut := b.run("catalog", verb, "1", "999999")
			if code != 1 || !strings.Contains(errOut, "999999") || !strings.Contains(errOut, "unknown") {
				t.Errorf("%s with an unknown song: exit %d, want 1 naming the unknown song 999999\nstdout %s\nstderr %s", verb, code, out, errOut)
			}
			if after := state(); after != before {
				t.Errorf("a failed %s changed the catalog:\nbefore %s\nafter  %s", verb, before, after)
			}
		}
	})
}

// csvWriter returns a function writing a file of a test's temporary
// directory and returning its path.
func csvWriter(t *testing.T) func(name, body string) string {
	dir := t.TempDir()
	return func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
}
