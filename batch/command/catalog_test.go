package command_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/setlist/setlist/internal/keyspace"
	"github.com/setlist/setlist/internal/postgres"
	"github.com/setlist/setlist/internal/store"
)

// TestCatalogCommands runs `batch catalog import|hide|show` end to end: a
// bad row fails the whole file at its line with nothing written, a good
// file upserts and a repeat changes nothing, hiding an unknown song fails
// (exit 1) and hides nothing, hide and show move the catalog number.
func TestCatalogCommands(t *testing.T) {
	c := newCLI(t)
	ctx := context.Background()
	write := csvWriter(t)
	const good = "external_id,artist,track,tags,released\nSEAYD7401001,Abba,Waterloo,pop swedish,1974-03-04\n,Beck,Loser,rock,\n"
	bad := write("bad.csv", good+"X2,Cher,Believe,pop,1999-02-30\n")
	code, out, errOut := c.run("catalog", "import", "--csv", bad)
	if code != 1 || !strings.Contains(errOut, "bad.csv:4:") || !strings.Contains(errOut, "field released") {
		t.Fatalf("bad file: exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}
	db, err := postgres.Open(ctx, c.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if songs, err := db.SearchCatalog(ctx, store.SongQuery{Limit: 10}); err != nil || len(songs) != 0 {
		t.Fatalf("a failed import wrote %v (%v)", songs, err)
	}

	path := write("catalog.csv", good)
	out = c.mustRun("catalog", "import", "--csv", path)
	if !strings.Contains(out, "2 inserted, 0 updated, 0 unchanged") {
		t.Errorf("first import said %q", out)
	}
	out = c.mustRun("catalog", "import", "--csv", path)
	if !strings.Contains(out, "0 inserted, 0 updated, 2 unchanged") {
		t.Errorf("repeated import said %q", out)
	}
	songs, err := db.SearchCatalog(ctx, store.SongQuery{Tag: "pop", Limit: 10})
	if err != nil || len(songs) != 1 || songs[0].ExternalID != "SEAYD7401001" {
		t.Fatalf("imported pop songs = %+v, %v", songs, err)
	}
	waterloo := songs[0].ID
	seq0, _ := db.CatalogSeq(ctx)

	code, out, errOut = c.run("catalog", "hide", fmt.Sprint(waterloo), "999999")
	if code != 1 || !strings.Contains(errOut, "999999") {
		t.Errorf("hide with an unknown song: exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}
	if s, _ := db.CatalogSong(ctx, waterloo); !s.Available {
		t.Error("a failed hide hid a song")
	}
	if code, _, errOut := c.run("catalog", "hide", "abc"); code != 2 {
		t.Errorf("hide abc: exit %d, want 2 (usage)\n%s", code, errOut)
	}
	events := c.rdb.Subscribe(ctx, c.keys.Events())
	defer events.Close()
	if _, err := events.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	out = c.mustRun("catalog", "hide", fmt.Sprint(waterloo))
	seq1, hidden, _ := db.HiddenSongs(ctx)
	// The change is announced on the events channel with its number once
	// the key space can announce it (keyspace.Publisher.CatalogChanged).
	if _, ok := any(keyspace.NewPublisher(c.rdb, c.keys)).(interface {
		CatalogChanged(context.Context, int64) error
	}); ok {
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		for {
			msg, err := events.ReceiveMessage(wctx)
			if err != nil {
				t.Fatalf("no catalog event for change %d: %v", seq1, err)
			}
			if strings.Contains(msg.Payload, "catalog") && strings.Contains(msg.Payload, fmt.Sprint(seq1)) {
				break
			}
		}
	}
	if seq1 <= seq0 || len(hidden) != 1 || hidden[0] != waterloo || !strings.Contains(out, fmt.Sprintf("catalog change %d", seq1)) {
		t.Errorf("after hide: %q; HiddenSongs = %d, %v", out, seq1, hidden)
	}
	if out := c.mustRun("catalog", "hide", fmt.Sprint(waterloo)); !strings.Contains(out, "nothing changed") {
		t.Errorf("hiding a hidden song said %q", out)
	}
	c.mustRun("catalog", "show", fmt.Sprint(waterloo))
	if seq, hidden, _ := db.HiddenSongs(ctx); seq <= seq1 || len(hidden) != 0 {
		t.Errorf("after show: HiddenSongs = %d, %v", seq, hidden)
	}
}
