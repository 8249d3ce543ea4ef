package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/store"
)

// testCatalog: songs created with metadata, patched, hidden and shown;
// every change takes a higher catalog number, a change that changes
// nothing takes none; the hidden set and its number agree; the search
// filters by tag and availability.
func testCatalog(t *testing.T, b Backend) {
	ctx := context.Background()
	importSample(t, b.DB)
	waterloo := songID(t, b.DB, "Abba", "Waterloo")
	if seq, hidden, err := b.DB.HiddenSongs(ctx); err != nil || seq != 0 || len(hidden) != 0 {
		t.Fatalf("fresh catalog: HiddenSongs = %d, %v, %v; want 0, none", seq, hidden, err)
	}
	old, err := b.DB.CatalogSong(ctx, waterloo)
	if err != nil || !old.Available || len(old.Tags) != 0 || old.Tags == nil || old.Released != nil || old.ExternalID != "" || old.CreatedAt.IsZero() {
		t.Errorf("an imported song's metadata = %+v, %v; want available, untagged, created_at set", old, err)
	}

	day, _ := setlist.ParseDate("2024-03-01")
	no := false
	s, seq1, err := b.DB.CreateSong(ctx, setlist.NewSong{Artist: " Dua Lipa ", Track: "Houdini", Tags: []string{"Pop", "dance", "pop"},
		Released: &day, ExternalID: "GBAHT2300569", Available: &no})
	if err != nil {
		t.Fatal(err)
	}
	if s.Artist != "Dua Lipa" || s.Available || fmt.Sprint(s.Tags) != "[dance pop]" || s.Released == nil || s.Released.String() != "2024-03-01" ||
		s.ExternalID != "GBAHT2300569" || seq1 < 1 {
		t.Errorf("created %+v (seq %d)", s, seq1)
	}
	got, err := b.DB.CatalogSong(ctx, s.ID)
	if err != nil || !sameSong(got, s) {
		t.Errorf("CatalogSong = %+v, %v; want %+v", got, err, s)
	}
	_, _, err = b.DB.CreateSong(ctx, setlist.NewSong{Artist: "Dua Lipa", Track: "Houdini"})
	wantErr(t, "duplicate artist+track", err, setlist.ErrConflict)
	_, _, err = b.DB.CreateSong(ctx, setlist.NewSong{Artist: "X", Track: "Y", ExternalID: "GBAHT2300569"})
	wantErr(t, "duplicate external_id", err, setlist.ErrConflict)
	_, _, err = b.DB.CreateSong(ctx, setlist.NewSong{Artist: "X", Track: "Y", Tags: []string{"bad tag!"}})
	wantErr(t, "bad tag", err, setlist.ErrInvalid)
	if seq, _ := b.DB.CatalogSeq(ctx); seq != seq1 {
		t.Errorf("failed creates moved the catalog number: %d, want %d", seq, seq1)
	}
	seq, hidden, err := b.DB.HiddenSongs(ctx)
	if err != nil || seq != seq1 || !slices.Equal(hidden, []setlist.SongID{s.ID}) {
		t.Errorf("HiddenSongs = %d, %v, %v; want %d, [%d]", seq, hidden, err, seq1, s.ID)
	}

	// Patch: each field; no change, no number.
	tags := []string{"Swedish", "pop"}
	ext := "SEAYD7401001"
	p, seq2, err := b.DB.PatchSong(ctx, waterloo, setlist.SongPatch{Tags: &tags, ExternalID: &ext, Released: &day})
	if err != nil || seq2 <= seq1 || fmt.Sprint(p.Tags) != "[pop swedish]" || p.ExternalID != ext || p.Released == nil || !p.Available {
		t.Errorf("patch = %+v, seq %d, %v; want seq > %d", p, seq2, err, seq1)
	}
	if _, seq, err := b.DB.PatchSong(ctx, waterloo, setlist.SongPatch{Tags: &tags}); err != nil || seq != 0 {
		t.Errorf("a patch changing nothing: seq %d, %v; want 0", seq, err)
	}
	clear, none := setlist.Date{}, ""
	if p, _, err := b.DB.PatchSong(ctx, waterloo, setlist.SongPatch{Released: &clear, ExternalID: &none}); err != nil || p.Released != nil || p.ExternalID != "" {
		t.Errorf("clearing released and external_id: %+v, %v", p, err)
	}
	taken := "GBAHT2300569"
	_, _, err = b.DB.PatchSong(ctx, waterloo, setlist.SongPatch{ExternalID: &taken})
	wantErr(t, "patch to a taken external_id", err, setlist.ErrConflict)
	_, _, err = b.DB.PatchSong(ctx, 1<<40, setlist.SongPatch{Tags: &tags})
	wantErr(t, "patch of an unknown song", err, setlist.ErrNotFound)

	// Hide and show: unknown ids change nothing.
	before, _ := b.DB.CatalogSeq(ctx)
	_, err = b.DB.SetAvailable(ctx, []setlist.SongID{waterloo, 1 << 40}, false)
	wantErr(t, "hide with an unknown song", err, setlist.ErrNotFound)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprint(int64(1<<40))) {
		t.Errorf("the error %v does not name the unknown song", err)
	}
	if c, _ := b.DB.CatalogSong(ctx, waterloo); !c.Available {
		t.Error("a failed hide hid a song")
	}
	seq3, err := b.DB.SetAvailable(ctx, []setlist.SongID{waterloo}, false)
	if err != nil || seq3 <= before {
		t.Errorf("hide: seq %d, %v; want > %d", seq3, err, before)
	}
	if seq, err := b.DB.SetAvailable(ctx, []setlist.SongID{waterloo}, false); err != nil || seq != 0 {
		t.Errorf("hiding a hidden song: seq %d, %v; want 0", seq, err)
	}
	seq, hidden, _ = b.DB.HiddenSongs(ctx)
	if seq != seq3 || !slices.Equal(hidden, sortedIDs(waterloo, s.ID)) {
		t.Errorf("HiddenSongs = %d, %v; want %d, [%d %d]", seq, hidden, seq3, waterloo, s.ID)
	}
	seq4, err := b.DB.SetAvailable(ctx, []setlist.SongID{waterloo, s.ID}, true)
	if seq, hidden, _ = b.DB.HiddenSongs(ctx); err != nil || seq4 <= seq3 || seq != seq4 || len(hidden) != 0 {
		t.Errorf("show both: seq %d, %v; HiddenSongs = %d, %v", seq4, err, seq, hidden)
	}

	// Search: by tag, by availability, with a query.
	if _, err := b.DB.SetAvailable(ctx, []setlist.SongID{s.ID}, false); err != nil {
		t.Fatal(err)
	}
	yes := true
	for _, tc := range []struct {
		q    store.SongQuery
		want string
	}{
		{store.SongQuery{Tag: "pop", Limit: 10}, "Abba – Waterloo | Dua Lipa – Houdini"},
		{store.SongQuery{Tag: "dance", Limit: 10}, "Dua Lipa – Houdini"},
		{store.SongQuery{Tag: "pop", Available: &yes, Limit: 10}, "Abba – Waterloo"},
		{store.SongQuery{Available: &no, Limit: 10}, "Dua Lipa – Houdini"},
		{store.SongQuery{Query: "water", Tag: "pop", Limit: 10}, "Abba – Waterloo"},
		{store.SongQuery{Query: "water", Tag: "dance", Limit: 10}, ""},
		{store.SongQuery{Limit: 2}, "Abba – Waterloo | Beck – Loser"},
	} {
		songs, err := b.DB.SearchCatalog(ctx, tc.q)
		if err != nil {
			t.Fatalf("%+v: %v", tc.q, err)
		}
		if got := catalogLabel(songs); got != tc.want {
			t.Errorf("search %+v = %q, want %q", tc.q, got, tc.want)
		}
	}
	// Paging the alphabetical list: each page starts after the last song
	// of the one before, and the pages together are the whole list.
	all, err := b.DB.SearchCatalog(ctx, store.SongQuery{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var paged []setlist.CatalogSong
	for q := (store.SongQuery{Limit: 1}); ; {
		page, err := b.DB.SearchCatalog(ctx, q)
		if err != nil {
			t.Fatalf("page after %+v: %v", q.After, err)
		}
		if len(page) == 0 {
			break
		}
		paged = append(paged, page...)
		k := store.Key(page[len(page)-1])
		q.After = &k
	}
	if got, want := catalogLabel(paged), catalogLabel(all); got != want || len(all) < 2 {
		t.Errorf("the list paged one song at a time is %q, want %q (at least two songs)", got, want)
	}
	_, err = b.DB.SearchCatalog(ctx, store.SongQuery{Query: "water", Limit: 1, After: &store.CatalogKey{Artist: "A"}})
	wantErr(t, "a cursor with a query", err, setlist.ErrInvalid)
	_, err = b.DB.SearchCatalog(ctx, store.SongQuery{Tag: "Not A Tag", Limit: 1})
	wantErr(t, "search by a malformed tag", err, setlist.ErrInvalid)

	m, err := b.DB.CatalogSongs(ctx, []setlist.SongID{waterloo, s.ID, 1 << 40})
	if err != nil || len(m) != 2 || fmt.Sprint(m[waterloo].Tags) != "[pop swedish]" || m[s.ID].Artist != "Dua Lipa" || m[s.ID].Available {
		t.Errorf("CatalogSongs = %+v, %v", m, err)
	}
}

// testCatalogImport: the catalog CSV upserts by external id, else by artist
// and track; bad rows fail at their line with nothing written; a repeated
// import writes nothing and takes no catalog number.
func testCatalogImport(t *testing.T, b Backend) {
	ctx := context.Background()
	importSample(t, b.DB)
	const good = "external_id,artist,track,tags,released,available\n" +
		"SEAYD7401001,Abba,Waterloo,pop|swedish,1974-03-04,true\n" +
		"USIR19900001,Beck,Loser,rock alt,,false\n" +
		",New,Song,pop,2026-01-02,\n"
	imp := func(name, csv string) (store.CatalogImportSummary, error) {
		return b.DB.ImportCatalog(ctx, strings.NewReader(csv), store.ImportOptions{Source: name})
	}
	_, err := imp("bad.csv", good+"X1,Cher,Believe,pop,1999-13-01,true\n")
	var ie *store.InputError
	if !errors.As(err, &ie) || ie.Line != 5 || ie.Field != "released" || !strings.HasPrefix(err.Error(), "bad.csv:5:") {
		t.Errorf("bad date: %v; want bad.csv:5 (field released)", err)
	}
	for name, tc := range map[string]struct {
		csv   string
		line  int
		field string
	}{
		"bad tag":        {good + "X1,Cher,Believe,Not!ok,,true\n", 5, "tags"},
		"bad available":  {good + "X1,Cher,Believe,,,maybe\n", 5, "available"},
		"empty artist":   {good + "X1, ,Believe,,,true\n", 5, "artist"},
		"listed twice":   {good + "X1,Abba,Waterloo,,,true\n", 5, ""},
		"ext twice":      {good + "USIR19900001,Cher,Believe,,,true\n", 5, "external_id"},
		"ext of another": {"external_id,artist,track\nSEAYD7401001,Abba,Waterloo\nSEAYD7401001x,Beck,Loser\nSEAYD7401001,Cher,Believe\n", 4, ""},
		"unknown column": {"artist,track,genre\nA,B,c\n", 1, ""},
		"no track":       {"artist,tags\nA,b\n", 1, ""},
		"short row":      {"artist,track,tags\nA,B\n", 2, ""},
	} {
		_, err := imp("bad.csv", tc.csv)
		if !errors.As(err, &ie) || ie.Line != tc.line || (tc.field != "" && ie.Field != tc.field) || !errors.Is(err, setlist.ErrInvalid) {
			t.Errorf("%s: %v; want bad.csv:%d (field %q)", name, err, tc.line, tc.field)
		}
	}
	// Nothing of the bad files was written (the "ext of another" file's
	// first two rows were valid on their own).
	if seq, _ := b.DB.CatalogSeq(ctx); seq != 0 {
		t.Errorf("failed imports moved the catalog number to %d", seq)
	}
	if songs, _ := b.DB.SearchCatalog(ctx, store.SongQuery{Tag: "pop", Limit: 10}); len(songs) != 0 {
		t.Errorf("failed imports tagged %s", catalogLabel(songs))
	}

	sum, err := imp("catalog.csv", good)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Rows != 3 || sum.Songs.Inserted != 1 || sum.Songs.Updated != 2 || sum.Seq < 1 {
		t.Errorf("first import: %+v", sum)
	}
	again, err := imp("catalog.csv", good)
	if err != nil || again.Songs.Unchanged != 3 || again.Seq != 0 {
		t.Errorf("repeated import: %+v, %v; want 3 unchanged, no catalog number", again, err)
	}
	loser := songID(t, b.DB, "Beck", "Loser")
	seq, hidden, _ := b.DB.HiddenSongs(ctx)
	if seq != sum.Seq || !slices.Equal(hidden, []setlist.SongID{loser}) {
		t.Errorf("HiddenSongs = %d, %v; want %d, [%d]", seq, hidden, sum.Seq, loser)
	}
	w, _ := b.DB.CatalogSong(ctx, songID(t, b.DB, "Abba", "Waterloo"))
	if w.ExternalID != "SEAYD7401001" || fmt.Sprint(w.Tags) != "[pop swedish]" || w.Released.String() != "1974-03-04" || !w.Available {
		t.Errorf("Waterloo after import = %+v", w)
	}
	// By external id; a file without a column leaves it alone.
	sum, err = imp("ids.csv", "external_id,artist,track,available\nSEAYD7401001,Abba,Waterloo,false\n")
	if err != nil || sum.Songs.Updated != 1 {
		t.Fatalf("by external id: %+v, %v", sum, err)
	}
	w, _ = b.DB.CatalogSong(ctx, w.ID)
	if w.Available || fmt.Sprint(w.Tags) != "[pop swedish]" {
		t.Errorf("Waterloo after hiding by id = %+v; want hidden, tags kept", w)
	}
}

// testCatalogConcurrent: hides, shows, patches and imports of the same
// songs at once all succeed (no deadlock between writers that touch songs
// in different orders), and every change took its own catalog number.
func testCatalogConcurrent(t *testing.T, b Backend) {
	ctx := context.Background()
	importSample(t, b.DB)
	a, c := songID(t, b.DB, "Abba", "Waterloo"), songID(t, b.DB, "Cher", "Believe")
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 4 {
				ids := []setlist.SongID{a, c}
				if (i+j)%2 == 1 {
					ids = []setlist.SongID{c, a}
				}
				var err error
				switch j {
				case 0, 2:
					_, err = b.DB.SetAvailable(ctx, ids, i%2 == 0)
				case 1:
					tags := []string{fmt.Sprintf("t%d", i)}
					_, _, err = b.DB.PatchSong(ctx, ids[0], setlist.SongPatch{Tags: &tags})
				case 3:
					csv := fmt.Sprintf("artist,track,available\nCher,Believe,%v\nAbba,Waterloo,%v\n", i%2 == 0, i%2 == 1)
					_, err = b.DB.ImportCatalog(ctx, strings.NewReader(csv), store.ImportOptions{Source: "c.csv"})
				}
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent catalog write: %v", err)
	}
	seq, hidden, err := b.DB.HiddenSongs(ctx)
	if err != nil || seq < 1 {
		t.Fatalf("HiddenSongs = %d, %v, %v", seq, hidden, err)
	}
	for _, id := range []setlist.SongID{a, c} {
		s, _ := b.DB.CatalogSong(ctx, id)
		if slices.Contains(hidden, id) == s.Available {
			t.Errorf("song %d: available %v, but hidden set %v", id, s.Available, hidden)
		}
	}
}

func sortedIDs(ids ...setlist.SongID) []setlist.SongID {
	slices.Sort(ids)
	return ids
}

func sameSong(a, b setlist.CatalogSong) bool {
	return a.Song == b.Song && store.SameMetadata(a, b) && a.CreatedAt.Equal(b.CreatedAt)
}

func catalogLabel(songs []setlist.CatalogSong) string {
	var out []string
	for _, s := range songs {
		out = append(out, s.Artist+" – "+s.Track)
	}
	return strings.Join(out, " | ")
}
