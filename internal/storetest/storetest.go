// Package storetest is the storage contract: one suite of tests that every
// backend (PostgreSQL+Redis, and the embedded SQLite+miniredis) must pass,
// so the consumers' interfaces mean the same thing whichever is wired in.
// It exercises users, songs, reactions, the import, the training load, the
// run registry, the training lock and the model store's publish, read and
// rollback, each through the methods the consumers call.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/experiment"
	"github.com/setlist/setlist/internal/keyspace"
	"github.com/setlist/setlist/internal/model"
	"github.com/setlist/setlist/internal/pipeline"
	"github.com/setlist/setlist/internal/store"
)

// DB is every method a consumer calls on the system of record (api.DB,
// recs.History, pipeline.Source/Registry/Locker, the batch commands).
type DB interface {
	CreateUser(ctx context.Context, u setlist.NewUser) (setlist.User, error)
	User(ctx context.Context, id setlist.UserID) (setlist.User, error)
	SearchUsers(ctx context.Context, q store.UserQuery) (store.UserPage, error)
	React(ctx context.Context, id setlist.UserID, ref setlist.SongRef, kind setlist.ReactionKind) (setlist.Reaction, error)
	ReactAttributed(ctx context.Context, id setlist.UserID, ref setlist.SongRef, kind setlist.ReactionKind, shown *store.Shown) (setlist.Reaction, *store.Outcome, error)
	AddExposure(ctx context.Context, rows []store.Exposure) error
	OnlineMetrics(ctx context.Context, since time.Time) ([]store.OnlineMetric, error)
	Unreact(ctx context.Context, id setlist.UserID, song setlist.SongID, kind setlist.ReactionKind) (seq int64, err error)
	ReactionList(ctx context.Context, id setlist.UserID, limit int) ([]store.ReactedSong, error)
	UserReactions(ctx context.Context, id setlist.UserID, limit int) ([]setlist.Reaction, error)
	ReactedSongs(ctx context.Context, id setlist.UserID) ([]setlist.SongID, error)
	SearchSongs(ctx context.Context, query string, limit int) ([]setlist.Song, error)
	NameUsers(ctx context.Context, name func(setlist.UserID) string) (int64, error)
	Song(ctx context.Context, id setlist.SongID) (setlist.Song, error)
	SongsByID(ctx context.Context, ids []setlist.SongID) (map[setlist.SongID]setlist.Song, error)
	Import(ctx context.Context, r io.Reader, opts store.ImportOptions) (store.ImportSummary, error)
	LoadTraining(ctx context.Context, scheme model.Scheme, progress store.LoadProgress) (*model.Training, error)
	StartRun(ctx context.Context, notes string) (int64, error)
	UpdateRun(ctx context.Context, id int64, u store.RunUpdate) error
	Run(ctx context.Context, id int64) (store.Run, error)
	Runs(ctx context.Context, limit int) ([]store.Run, error)
	LastPublished(ctx context.Context) (store.Run, error)
	LastTuned(ctx context.Context) (store.Run, error)
	TuningTrials(ctx context.Context, id int64) ([]store.TuningTrial, error)
	RecordRollback(ctx context.Context, rolledBack, restored int64, reason string) error
	ReactionSeq(ctx context.Context) (int64, error)
	LockTraining(ctx context.Context, wait bool, onWait func(holder string)) (release func(), err error)
	Ping(ctx context.Context) error
	SaveArtifact(ctx context.Context, version int64, family string, data []byte) (store.ArtifactInfo, error)
	Artifact(ctx context.Context, version int64) ([]byte, store.ArtifactInfo, error)
	Artifacts(ctx context.Context) ([]store.ArtifactInfo, error)
	PinArtifact(ctx context.Context, version int64, pinned bool) error
	PruneArtifacts(ctx context.Context, keep int, protect []int64) ([]int64, error)
	ResolveIDs(ctx context.Context, users []setlist.UserID, songs []store.SongKey, create bool) (store.Resolved, error)
	StartExperiment(ctx context.Context, n store.NewExperiment) (store.Experiment, error)
	RunningExperiment(ctx context.Context) (store.Experiment, error)
	EndExperiment(ctx context.Context, id int64, status store.ExperimentStatus) (store.Experiment, error)
	Experiments(ctx context.Context, limit int) ([]store.Experiment, error)
	RecordExposures(ctx context.Context, id int64, exps []store.ExperimentExposure) error
	ExperimentCounts(ctx context.Context, id int64) (control, challenger experiment.Counts, err error)
	CreateSong(ctx context.Context, n setlist.NewSong) (setlist.CatalogSong, int64, error)
	PatchSong(ctx context.Context, id setlist.SongID, p setlist.SongPatch) (setlist.CatalogSong, int64, error)
	SetAvailable(ctx context.Context, ids []setlist.SongID, available bool) (int64, error)
	CatalogSong(ctx context.Context, id setlist.SongID) (setlist.CatalogSong, error)
	CatalogSongs(ctx context.Context, ids []setlist.SongID) (map[setlist.SongID]setlist.CatalogSong, error)
	HiddenSongs(ctx context.Context) (int64, []setlist.SongID, error)
	CatalogSeq(ctx context.Context) (int64, error)
	SearchCatalog(ctx context.Context, q store.SongQuery) ([]setlist.CatalogSong, error)
	ImportCatalog(ctx context.Context, r io.Reader, opts store.ImportOptions) (store.CatalogImportSummary, error)
	StartRefresh(ctx context.Context, version int64) (int64, error)
	FinishRefresh(ctx context.Context, id int64, end store.RefreshEnd) error
	LastRefresh(ctx context.Context, version int64) (store.Refresh, error)
	SongsReactedSince(ctx context.Context, since time.Time) ([]setlist.SongID, error)
	SongReactions(ctx context.Context, songs []setlist.SongID) ([]setlist.Reaction, error)
}

// Backend is one fresh, empty, migrated backend.
type Backend struct {
	DB     DB
	Redis  redis.UniversalClient
	Prefix string
	// CorruptArtifact flips one stored byte of version's artifact behind
	// the backend's back (as a bad disk or a stray UPDATE would).
	CorruptArtifact func(t *testing.T, version int64)
	// SetArtifactBytes overwrites the length version's artifact record
	// gives (UPDATE model_artifacts SET bytes = n).
	SetArtifactBytes func(t *testing.T, version, n int64)
}

// Run runs the contract against backends made by open, one per subtest.
func Run(t *testing.T, open func(t *testing.T) Backend) {
	tests := []struct {
		name string
		fn   func(t *testing.T, b Backend)
	}{
		{"Users", testUsers},
		{"Reactions", testReactions},
		{"CappedHistory", testCappedHistory},
		{"Import", testImport},
		{"ImportSkipsBadRows", testImportSkipsBadRows},
		{"SongSearch", testSongSearch},
		{"NameUsers", testNameUsers},
		{"Load", testLoad},
		{"Sequence", testSequence},
		{"ImportIDs", testImportIDs},
		{"Opinions", testOpinions},
		{"Registry", testRegistry},
		{"TuningTrials", testTuningTrials},
		{"Lock", testLock},
		{"PublishReadRollback", testPublish},
		{"Artifacts", testArtifacts},
		{"ResolveIDs", testResolveIDs},
		{"Experiments", testExperiments},
		{"Online", testOnline},
		{"Catalog", testCatalog},
		{"CatalogImport", testCatalogImport},
		{"CatalogConcurrent", testCatalogConcurrent},
		{"Refreshes", testRefreshes},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

// RunRedis runs the part of the contract that goes through Redis (a
// publish, reads and a rollback), for a backend whose database side Run
// already covers on another Redis deployment (a Redis Cluster).
func RunRedis(t *testing.T, open func(t *testing.T) Backend) {
	t.Run("PublishReadRollback", func(t *testing.T) { testPublish(t, open(t)) })
}

const sampleCSV = `user_id,artist,track,count
alice,Abba,Waterloo,3
alice,Beck,Loser,1
bob,Abba,Waterloo,2
bob,Cher,Believe,5
carol,Beck,Loser,1
alice,Abba,Waterloo,2
`

func importSample(t *testing.T, db DB) store.ImportSummary {
	t.Helper()
	sum, err := db.Import(context.Background(), strings.NewReader(sampleCSV), store.ImportOptions{Source: "sample.csv"})
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	return sum
}

func songID(t *testing.T, db DB, artist, track string) setlist.SongID {
	t.Helper()
	songs, err := db.SearchSongs(context.Background(), artist+" "+track, 5)
	if err != nil || len(songs) == 0 {
		t.Fatalf("find %s %s: %v (%d found)", artist, track, err, len(songs))
	}
	return songs[0].ID
}

func wantErr(t *testing.T, what string, err, sentinel error) {
	t.Helper()
	if !errors.Is(err, sentinel) {
		t.Errorf("%s: got %v, want %v", what, err, sentinel)
	}
}

func testUsers(t *testing.T, b Backend) {
	ctx := context.Background()
	importSample(t, b.DB)
	waterloo := songID(t, b.DB, "Abba", "Waterloo")
	u, err := b.DB.CreateUser(ctx, setlist.NewUser{ID: "dave", DisplayName: "Dave", Likes: []setlist.SongRef{{ID: waterloo}, {Artist: "Cher", Track: "Believe"}}})
	if err != nil {
		t.Fatal(err)
	}
	if u.ID != "dave" || u.DisplayName != "Dave" || u.CreatedAt.IsZero() {
		t.Errorf("created %+v", u)
	}
	got, err := b.DB.User(ctx, "dave")
	if err != nil || got.DisplayName != "Dave" || !got.CreatedAt.Equal(u.CreatedAt) {
		t.Errorf("User(dave) = %+v, %v; want created %+v", got, err, u)
	}
	_, err = b.DB.CreateUser(ctx, setlist.NewUser{ID: "dave"})
	wantErr(t, "duplicate user", err, setlist.ErrConflict)
	_, err = b.DB.CreateUser(ctx, setlist.NewUser{ID: "erin", Likes: []setlist.SongRef{{Artist: "No", Track: "Such"}}})
	wantErr(t, "unknown liked song", err, setlist.ErrInvalid)
	_, err = b.DB.User(ctx, "erin")
	wantErr(t, "user of a failed create (nothing written)", err, setlist.ErrNotFound)
	_, err = b.DB.CreateUser(ctx, setlist.NewUser{ID: ""})
	wantErr(t, "empty id", err, setlist.ErrInvalid)
	rs, err := b.DB.UserReactions(ctx, "dave", 0)
	if err != nil || len(rs) != 2 || rs[0].Kind != setlist.Like {
		t.Errorf("dave's reactions = %+v, %v; want two likes", rs, err)
	}

	// Pages: a prefix, in byte order, with a cursor; then a substring.
	var ids []setlist.UserID
	q := store.UserQuery{Limit: 2}
	for {
		page, err := b.DB.SearchUsers(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range page.Users {
			ids = append(ids, u.ID)
		}
		if page.Next == "" {
			break
		}
		q.Cursor = page.Next
	}
	if fmt.Sprint(ids) != "[alice bob carol dave]" {
		t.Errorf("all users by pages of 2 = %v", ids)
	}
	page, err := b.DB.SearchUsers(ctx, store.UserQuery{Query: "ave", Limit: 10})
	if err != nil || len(page.Users) != 1 || page.Users[0].ID != "dave" {
		t.Errorf("substring search ave = %+v, %v", page, err)
	}
	_, err = b.DB.SearchUsers(ctx, store.UserQuery{Limit: 1, Cursor: "garbage!"})
	wantErr(t, "bad cursor", err, setlist.ErrInvalid)

	// Songs.
	s, err := b.DB.Song(ctx, waterloo)
	if err != nil || s.Artist != "Abba" || s.Track != "Waterloo" {
		t.Errorf("Song = %+v, %v", s, err)
	}
	_, err = b.DB.Song(ctx, 1<<40)
	wantErr(t, "unknown song", err, setlist.ErrNotFound)
	m, err := b.DB.SongsByID(ctx, []setlist.SongID{waterloo, 1 << 40})
	if err != nil || len(m) != 1 || m[waterloo].Track != "Waterloo" {
		t.Errorf("SongsByID = %v, %v", m, err)
	}
	all, err := b.DB.SearchSongs(ctx, "", 10)
	if err != nil || len(all) != 3 || all[0].Artist != "Abba" || all[2].Artist != "Cher" {
		t.Errorf("catalog = %+v, %v", all, err)
	}
	if err := b.DB.Ping(ctx); err != nil {
		t.Error(err)
	}
}

// testSongSearch: the typeahead puts songs whose artist or title is the
// query first, then prefix matches, then the rest, each by popularity
// (reactions), case-insensitively; alphabetical only breaks ties.
func testSongSearch(t *testing.T, b Backend) {
	ctx := context.Background()
	var csv strings.Builder
	csv.WriteString("user_id,artist,track,count\n")
	listen := func(artist, track string, listeners int) {
		for i := range listeners {
			fmt.Fprintf(&csv, "u%d,%s,%s,1\n", i, artist, track)
		}
	}
	listen("Coldplay", "42", 1)
	listen("Coldplay", "Yellow", 4)
	listen("Coldplay", "Viva la Vida", 2)
	listen("Aaron", "Coldplay", 3)              // a title equal to the query
	listen("Coldplay Tribute", "Clocks", 6)     // starts with it: after exact matches
	listen("Abba", "Coldplay Was Here", 9)      // also starts with it (the track)
	listen("Band", "Not Coldplay At All", 12)   // only contains it: last
	listen("Zed", "Yellow Submarine Cover", 20) // does not contain it
	if _, err := b.DB.Import(ctx, strings.NewReader(csv.String()), store.ImportOptions{Source: "search.csv"}); err != nil {
		t.Fatal(err)
	}
	label := func(songs []setlist.Song) string {
		var out []string
		for _, s := range songs {
			out = append(out, s.Artist+" – "+s.Track)
		}
		return strings.Join(out, " | ")
	}
	for q, want := range map[string]string{
		"coldplay": "Coldplay – Yellow | Aaron – Coldplay | Coldplay – Viva la Vida | Coldplay – 42 | " +
			"Abba – Coldplay Was Here | Coldplay Tribute – Clocks | Band – Not Coldplay At All",
		"COLDPLAY": "Coldplay – Yellow | Aaron – Coldplay | Coldplay – Viva la Vida | Coldplay – 42 | " +
			"Abba – Coldplay Was Here | Coldplay Tribute – Clocks | Band – Not Coldplay At All",
		"yellow": "Coldplay – Yellow | Zed – Yellow Submarine Cover",
		"vida":   "Coldplay – Viva la Vida",
	} {
		songs, err := b.DB.SearchSongs(ctx, q, 10)
		if err != nil {
			t.Fatalf("search %q: %v", q, err)
		}
		if got := label(songs); got != want {
			t.Errorf("search %q:\n got %s\nwant %s", q, got, want)
		}
	}
	if songs, err := b.DB.SearchSongs(ctx, "coldplay", 2); err != nil || label(songs) != "Coldplay – Yellow | Aaron – Coldplay" {
		t.Errorf("search coldplay, limit 2: %s, %v; want the two most popular exact matches", label(songs), err)
	}
}

// testNameUsers: unnamed users get generated names in id order, in one
// transaction; a name a user chose is kept; a bad name writes nothing.
func testNameUsers(t *testing.T, b Backend) {
	ctx := context.Background()
	importSample(t, b.DB)
	if _, err := b.DB.CreateUser(ctx, setlist.NewUser{ID: "dave", DisplayName: "Dave"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.DB.NameUsers(ctx, func(id setlist.UserID) string {
		if id == "bob" {
			return "bad\x00name"
		}
		return "x"
	}); !errors.Is(err, setlist.ErrInvalid) {
		t.Errorf("a name with NUL: %v, want ErrInvalid", err)
	}
	if u, _ := b.DB.User(ctx, "alice"); u.DisplayName != "" {
		t.Errorf("a failed NameUsers left alice named %q", u.DisplayName)
	}
	var order []setlist.UserID
	n, err := b.DB.NameUsers(ctx, func(id setlist.UserID) string {
		order = append(order, id)
		if id == "carol" {
			return ""
		}
		return "Named " + string(id)
	})
	if err != nil || n != 2 {
		t.Fatalf("NameUsers = %d, %v; want alice and bob named", n, err)
	}
	if fmt.Sprint(order) != "[alice bob carol]" {
		t.Errorf("names asked for %v, want the unnamed users in id order", order)
	}
	for id, want := range map[setlist.UserID]string{"alice": "Named alice", "bob": "Named bob", "carol": "", "dave": "Dave"} {
		if u, err := b.DB.User(ctx, id); err != nil || u.DisplayName != want {
			t.Errorf("User(%s) = %+v, %v; want display name %q", id, u, err, want)
		}
	}
	if n, err := b.DB.NameUsers(ctx, func(setlist.UserID) string { return "" }); err != nil || n != 0 {
		t.Errorf("second NameUsers = %d, %v; want nothing to do", n, err)
	}
}

func testReactions(t *testing.T, b Backend) {
	ctx := context.Background()
	importSample(t, b.DB)
	loser := songID(t, b.DB, "Beck", "Loser")
	ref := setlist.SongRef{ID: loser}
	r, err := b.DB.React(ctx, "bob", ref, setlist.Like)
	if err != nil || r.Weight != 1 || r.Song != loser {
		t.Fatalf("like = %+v, %v", r, err)
	}
	if _, err := b.DB.React(ctx, "bob", ref, setlist.Dislike); err != nil {
		t.Fatal(err)
	}
	kinds := map[setlist.ReactionKind]float64{}
	list, err := b.DB.ReactionList(ctx, "bob", 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, rs := range list {
		if rs.Song.ID == loser {
			kinds[rs.Kind] = rs.Weight
		}
	}
	if _, ok := kinds[setlist.Like]; ok || kinds[setlist.Dislike] != 1 {
		t.Errorf("after like then dislike: %v; want only the dislike", kinds)
	}
	if list[0].Song.ID != loser {
		t.Errorf("newest first: got %+v first", list[0])
	}
	p1, _ := b.DB.React(ctx, "carol", ref, setlist.Play) // the import gave carol 1 play
	p2, err := b.DB.React(ctx, "carol", ref, setlist.Play)
	if err != nil || p1.Weight != 2 || p2.Weight != 3 {
		t.Errorf("plays = %v then %v (%v); want 2 then 3", p1.Weight, p2.Weight, err)
	}
	_, err = b.DB.React(ctx, "nobody", ref, setlist.Like)
	wantErr(t, "unknown user", err, setlist.ErrNotFound)
	_, err = b.DB.React(ctx, "bob", setlist.SongRef{ID: 1 << 40}, setlist.Like)
	wantErr(t, "unknown song", err, setlist.ErrInvalid)
	_, err = b.DB.React(ctx, "bob", ref, "love")
	wantErr(t, "bad kind", err, setlist.ErrInvalid)
	if _, err := b.DB.Unreact(ctx, "bob", loser, setlist.Dislike); err != nil {
		t.Error(err)
	}
	_, err = b.DB.Unreact(ctx, "bob", loser, setlist.Dislike)
	wantErr(t, "unreact twice", err, setlist.ErrNotFound)
	_, err = b.DB.ReactionList(ctx, "nobody", 10)
	wantErr(t, "list of unknown user", err, setlist.ErrNotFound)
	_, err = b.DB.UserReactions(ctx, "nobody", 0)
	wantErr(t, "history of unknown user", err, setlist.ErrNotFound)
}

// testCappedHistory: UserReactions with a limit returns the strongest
// evidence first (store.FoldInOrder): likes and dislikes, newest first, then
// plays by count.
func testCappedHistory(t *testing.T, b Backend) {
	ctx := context.Background()
	csv := "user_id,artist,track,count\nhoarder,A,One,1\nhoarder,A,Two,5\nhoarder,A,Three,3\nhoarder,A,Four,2\n"
	if _, err := b.DB.Import(ctx, strings.NewReader(csv), store.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	one, two, three, four := songID(t, b.DB, "A", "One"), songID(t, b.DB, "A", "Two"), songID(t, b.DB, "A", "Three"), songID(t, b.DB, "A", "Four")
	if _, err := b.DB.React(ctx, "hoarder", setlist.SongRef{ID: one}, setlist.Like); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Millisecond) // distinct updated_at at the backends' microsecond resolution
	if _, err := b.DB.React(ctx, "hoarder", setlist.SongRef{ID: four}, setlist.Dislike); err != nil {
		t.Fatal(err)
	}
	type key struct {
		song setlist.SongID
		kind setlist.ReactionKind
	}
	got := func(limit int) []key {
		rs, err := b.DB.UserReactions(ctx, "hoarder", limit)
		if err != nil {
			t.Fatal(err)
		}
		out := make([]key, len(rs))
		for i, r := range rs {
			out[i] = key{r.Song, r.Kind}
		}
		return out
	}
	want := []key{{four, setlist.Dislike}, {one, setlist.Like}, {two, setlist.Play}, {three, setlist.Play}}
	if g := got(4); fmt.Sprint(g) != fmt.Sprint(want) {
		t.Errorf("UserReactions(limit 4) = %v; want %v (explicit newest first, then plays by count)", g, want)
	}
	if g := got(1); fmt.Sprint(g) != fmt.Sprint(want[:1]) {
		t.Errorf("UserReactions(limit 1) = %v; want %v", g, want[:1])
	}
	for _, limit := range []int{0, -1, 100} {
		if g := got(limit); len(g) != 6 {
			t.Errorf("UserReactions(limit %d) = %d reactions; want all 6", limit, len(g))
		}
	}
	// What a capped fold-in still excludes: every song, once.
	songs, err := b.DB.ReactedSongs(ctx, "hoarder")
	slices.Sort(songs)
	wantSongs := []setlist.SongID{one, two, three, four}
	slices.Sort(wantSongs)
	if err != nil || !slices.Equal(songs, wantSongs) {
		t.Errorf("ReactedSongs = %v, %v; want %v", songs, err, wantSongs)
	}
	_, err = b.DB.ReactedSongs(ctx, "nobody")
	wantErr(t, "reacted songs of unknown user", err, setlist.ErrNotFound)
}

func testImport(t *testing.T, b Backend) {
	ctx := context.Background()
	sum := importSample(t, b.DB)
	if sum.Rows != 6 || sum.Users.Inserted != 3 || sum.Songs.Inserted != 3 || sum.Reactions.Inserted != 5 {
		t.Errorf("first import = %+v", sum)
	}
	rs, err := b.DB.UserReactions(ctx, "alice", 0)
	if err != nil {
		t.Fatal(err)
	}
	waterloo := songID(t, b.DB, "Abba", "Waterloo")
	for _, r := range rs {
		if r.Song == waterloo && r.Weight != 5 {
			t.Errorf("alice's Waterloo plays = %v; want 3+2 summed", r.Weight)
		}
	}
	again := importSample(t, b.DB)
	if again.Users.Unchanged != 3 || again.Songs.Unchanged != 3 || again.Reactions.Unchanged != 5 || again.Reactions.Inserted+again.Reactions.Updated != 0 {
		t.Errorf("re-import of a snapshot changed something: %+v", again)
	}
	changed, err := b.DB.Import(ctx, strings.NewReader("user_id,artist,track,count\nbob,Cher,Believe,7\n"), store.ImportOptions{})
	if err != nil || changed.Reactions.Updated != 1 {
		t.Errorf("changed count: %+v, %v", changed, err)
	}
	_, err = b.DB.Import(ctx, strings.NewReader("user_id,artist,track,count\nzed,Abba,Waterloo,1\nzed,Abba,,1\n"), store.ImportOptions{})
	wantErr(t, "bad row", err, setlist.ErrInvalid)
	_, err = b.DB.User(ctx, "zed")
	wantErr(t, "user of an aborted import (all or nothing)", err, setlist.ErrNotFound)
	skipped, err := b.DB.Import(ctx, strings.NewReader("user_id,artist,track,count\nzed,Abba,Waterloo,1\nzed,Abba,,1\n"), store.ImportOptions{SkipInvalid: true})
	if err != nil || skipped.Rows != 1 || skipped.Skipped != 1 {
		t.Errorf("skip invalid: %+v, %v", skipped, err)
	}
}

// testImportSkipsBadRows: with SkipInvalid, a row whose quoting is wrong
// and a row whose artist is too long to index are skipped and reported at
// their lines (issue 26 item 11, issue 24 item 12); the other rows land.
func testImportSkipsBadRows(t *testing.T, b Backend) {
	ctx := context.Background()
	in := "user_id,artist,track,count\n" +
		"amy,Abba,Waterloo,1\n" + // 2
		"amy,Ab\"ba,Loser,1\n" + // 3: bare quote
		"amy,\"Beck,Loser,1\n" + // 4: a quote opened and never closed: spans the rest
		"amy,Cher,Believe,1\n"
	sum, err := b.DB.Import(ctx, strings.NewReader(in), store.ImportOptions{Source: "q.csv", SkipInvalid: true})
	if err != nil {
		t.Fatalf("unbalanced quotes with SkipInvalid: %v", err)
	}
	if sum.Rows != 1 || sum.Skipped != 2 || len(sum.SkippedRows) != 2 ||
		!strings.HasPrefix(sum.SkippedRows[0].Error(), "q.csv:3: malformed CSV") ||
		!strings.HasPrefix(sum.SkippedRows[1].Error(), "q.csv:4: malformed CSV (a quoted field starts in this row; error found at line 5)") {
		t.Errorf("quotes: %+v, skipped %v", sum, sum.SkippedRows)
	}
	_, err = b.DB.Import(ctx, strings.NewReader(in), store.ImportOptions{Source: "q.csv"})
	wantErr(t, "unbalanced quote without SkipInvalid", err, setlist.ErrInvalid)

	long := strings.Repeat("x", 3000)
	in = "user_id,artist,track\nbea,Abba,Waterloo\nbea," + long + ",Loser\nbea,Beck,Loser\n"
	_, err = b.DB.Import(ctx, strings.NewReader(in), store.ImportOptions{Source: "long.csv"})
	if err == nil || !strings.HasPrefix(err.Error(), "long.csv:3: artist is longer than 1024 bytes (3000 bytes) (field artist)") {
		t.Errorf("3000-byte artist: %v", err)
	}
	wantErr(t, "3000-byte artist", err, setlist.ErrInvalid)
	sum, err = b.DB.Import(ctx, strings.NewReader(in), store.ImportOptions{Source: "long.csv", SkipInvalid: true})
	if err != nil || sum.Rows != 2 || sum.Skipped != 1 || sum.SkippedRows[0].Line != 3 {
		t.Errorf("3000-byte artist with SkipInvalid: %+v, %v", sum, err)
	}
	rs, err := b.DB.UserReactions(ctx, "bea", 0)
	if err != nil || len(rs) != 2 {
		t.Errorf("bea's reactions = %v, %v; want the 2 valid rows", rs, err)
	}
}

func testLoad(t *testing.T, b Backend) {
	ctx := context.Background()
	importSample(t, b.DB)
	if _, err := b.DB.CreateUser(ctx, setlist.NewUser{ID: "idle"}); err != nil { // no reactions: not in the training data
		t.Fatal(err)
	}
	before := time.Now().Add(-time.Second)
	tr, err := b.DB.LoadTraining(ctx, model.DefaultScheme(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.Users) != 3 || len(tr.Songs) != 3 || tr.Reactions != 5 || len(tr.Entries) != 5 {
		t.Errorf("training = %d users, %d songs, %d reactions, %d entries; want 3, 3, 5, 5", len(tr.Users), len(tr.Songs), tr.Reactions, len(tr.Entries))
	}
	if tr.SnapshotAt.Before(before) || tr.SnapshotAt.After(time.Now().Add(time.Second)) {
		t.Errorf("snapshot at %v", tr.SnapshotAt)
	}
}

// testSequence: every reaction write gets a number above the last one, and
// a training snapshot's number separates the writes it holds from later
// ones (see store.SeqBase).
func testSequence(t *testing.T, b Backend) {
	ctx := context.Background()
	importSample(t, b.DB)
	loser := songID(t, b.DB, "Beck", "Loser")
	last, err := b.DB.ReactionSeq(ctx)
	if err != nil || last < store.SeqBase {
		t.Fatalf("ReactionSeq = %d, %v; want ≥ SeqBase", last, err)
	}
	next := func(what string, seq int64, err error) {
		t.Helper()
		if err != nil || seq <= last {
			t.Fatalf("%s: number %d, %v; want above %d", what, seq, err, last)
		}
		last = seq
	}
	r, err := b.DB.React(ctx, "bob", setlist.SongRef{ID: loser}, setlist.Like)
	next("like", r.Seq, err)
	u, err := b.DB.CreateUser(ctx, setlist.NewUser{ID: "dora", Likes: []setlist.SongRef{{ID: loser}}})
	next("create user", u.Seq, err)
	seq, err := b.DB.Unreact(ctx, "bob", loser, setlist.Like)
	next("unreact", seq, err)
	tr, err := b.DB.LoadTraining(ctx, model.DefaultScheme(), nil)
	if err != nil || tr.SnapshotSeq != last {
		t.Fatalf("snapshot number %d, %v; want the last write's %d", tr.SnapshotSeq, err, last)
	}
	r, err = b.DB.React(ctx, "bob", setlist.SongRef{ID: loser}, setlist.Play)
	next("play after the snapshot", r.Seq, err)
	if r.Seq <= tr.SnapshotSeq {
		t.Fatalf("a write after the snapshot is numbered %d ≤ the snapshot's %d", r.Seq, tr.SnapshotSeq)
	}
}

// testImportIDs: the import applies the API's user id rule (setlist.ParseUserID):
// NFC and NFD spellings are one user, an id with an invisible character or
// made only of look-alikes of ASCII is refused with its line and field.
func testImportIDs(t *testing.T, b Backend) {
	ctx := context.Background()
	csv := "user_id,artist,track\ncafe\u0301,Abba,Waterloo\ncaf\u00e9,Beck,Loser\n"
	sum, err := b.DB.Import(ctx, strings.NewReader(csv), store.ImportOptions{Source: "ids.csv"})
	if err != nil || sum.Users.Total() != 1 {
		t.Fatalf("import = %+v, %v; want one user", sum.Users, err)
	}
	if _, err := b.DB.User(ctx, "caf\u00e9"); err != nil {
		t.Fatalf("the NFC id: %v", err)
	}
	_, err = b.DB.Import(ctx, strings.NewReader("user_id,artist,track\nok,Abba,Waterloo\ncaf\u200b\u00e9,Abba,Waterloo\n"), store.ImportOptions{Source: "zw.csv"})
	if !errors.Is(err, setlist.ErrInvalid) || !strings.Contains(err.Error(), "zw.csv:3:") || !strings.Contains(err.Error(), "U+200B") || !strings.Contains(err.Error(), "field user_id") {
		t.Fatalf("zero-width id: %v; want the line, the character and the field", err)
	}
	if _, err := b.DB.User(ctx, "ok"); !errors.Is(err, setlist.ErrNotFound) {
		t.Fatalf("a refused import wrote user ok: %v", err)
	}
	// An id wholly of look-alikes of ASCII (issue 24 item 9): Cyrillic
	// "Сара" passes for "Capa"; Cyrillic "Анна" has letters of its own.
	_, err = b.DB.Import(ctx, strings.NewReader("user_id,artist,track\nАнна,Abba,Waterloo\nСара,Abba,Waterloo\n"), store.ImportOptions{Source: "look.csv"})
	if !errors.Is(err, setlist.ErrInvalid) || !strings.Contains(err.Error(), "look.csv:3:") || !strings.Contains(err.Error(), `"С" (U+0421, Cyrillic) imitates "C"`) {
		t.Fatalf("look-alike id: %v; want the line and the character it imitates", err)
	}
	if _, err := b.DB.Import(ctx, strings.NewReader("user_id,artist,track\nАнна,Abba,Waterloo\n"), store.ImportOptions{Source: "anna.csv"}); err != nil {
		t.Fatalf("Cyrillic Анна: %v", err)
	}
}

// testOpinions: like and dislike of one song exclude each other whatever
// the interleaving of concurrent writers: the latest wins, never both.
func testOpinions(t *testing.T, b Backend) {
	ctx := context.Background()
	importSample(t, b.DB)
	ref := setlist.SongRef{ID: songID(t, b.DB, "Beck", "Loser")}
	var wg sync.WaitGroup
	for c := range 8 {
		wg.Go(func() {
			for i := range 10 {
				kind := setlist.Like
				if (c+i)%2 == 1 {
					kind = setlist.Dislike
				}
				if _, err := b.DB.React(ctx, "bob", ref, kind); err != nil && !errors.Is(err, setlist.ErrUnavailable) {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	rs, err := b.DB.UserReactions(ctx, "bob", 0)
	if err != nil {
		t.Fatal(err)
	}
	opinions := 0
	for _, r := range rs {
		if r.Song == ref.ID && r.Kind != setlist.Play {
			opinions++
		}
	}
	if opinions != 1 {
		t.Fatalf("%d opinions of one song after concurrent likes and dislikes, want 1: %+v", opinions, rs)
	}
}

func testRegistry(t *testing.T, b Backend) {
	ctx := context.Background()
	_, err := b.DB.LastPublished(ctx)
	wantErr(t, "no published run", err, setlist.ErrNotFound)
	id1, err := b.DB.StartRun(ctx, "first")
	if err != nil {
		t.Fatal(err)
	}
	r, err := b.DB.Run(ctx, id1)
	if err != nil || r.Status != store.RunRunning || r.Notes != "first" || r.FinishedAt != nil {
		t.Fatalf("new run = %+v, %v", r, err)
	}
	v := id1
	snap := time.Now().Add(-time.Minute).Truncate(time.Microsecond)
	if err := b.DB.UpdateRun(ctx, id1, store.RunUpdate{Status: store.RunPublished, Version: &v, Metrics: map[string]float64{"ndcg_at_5": 0.5}, SnapshotAt: &snap}); err != nil {
		t.Fatal(err)
	}
	r, _ = b.DB.Run(ctx, id1)
	if r.Status != store.RunPublished || r.PublishedAt == nil || r.FinishedAt == nil || r.Version == nil || *r.Version != id1 ||
		r.SnapshotAt == nil || !r.SnapshotAt.Equal(snap) || !strings.Contains(string(r.Metrics), "0.5") || r.Notes != "first" {
		t.Errorf("published run = %+v", r)
	}
	id2, _ := b.DB.StartRun(ctx, "")
	if id2 <= id1 {
		t.Errorf("run ids %d then %d: want increasing (they are model versions)", id1, id2)
	}
	if err := b.DB.UpdateRun(ctx, id2, store.RunUpdate{Status: store.RunPublished}); err != nil {
		t.Fatal(err)
	}
	last, err := b.DB.LastPublished(ctx)
	if err != nil || last.ID != id2 {
		t.Errorf("last published = %d, %v; want %d", last.ID, err, id2)
	}
	if err := b.DB.RecordRollback(ctx, id2, id1, "bad"); err != nil {
		t.Fatal(err)
	}
	last, _ = b.DB.LastPublished(ctx)
	r2, _ := b.DB.Run(ctx, id2)
	if last.ID != id1 || r2.Status != store.RunRolledBack || r2.Reason != "bad" {
		t.Errorf("after rollback: last published %d, run %d %s %q", last.ID, id2, r2.Status, r2.Reason)
	}
	runs, err := b.DB.Runs(ctx, 10)
	if err != nil || len(runs) != 2 || runs[0].ID != id2 {
		t.Errorf("runs = %d, %v; want 2 newest first", len(runs), err)
	}
	err = b.DB.UpdateRun(ctx, 1<<40, store.RunUpdate{Status: store.RunFailed})
	wantErr(t, "update unknown run", err, setlist.ErrNotFound)
	_, err = b.DB.Run(ctx, 1<<40)
	wantErr(t, "unknown run", err, setlist.ErrNotFound)
	err = b.DB.RecordRollback(ctx, 1<<40, id1, "x")
	wantErr(t, "rollback of unknown run", err, setlist.ErrNotFound)
}

func testTuningTrials(t *testing.T, b Backend) {
	ctx := context.Background()
	_, err := b.DB.LastTuned(ctx)
	wantErr(t, "no tuned run", err, setlist.ErrNotFound)
	_, err = b.DB.TuningTrials(ctx, 1<<40)
	wantErr(t, "trials of an unknown run", err, setlist.ErrNotFound)
	id, err := b.DB.StartRun(ctx, "tune")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := b.DB.TuningTrials(ctx, id); err != nil || got == nil || len(got) != 0 {
		t.Errorf("trials of a run that did not tune = %#v, %v; want empty, not nil", got, err)
	}
	trial := func(number, rung, split int, ndcg float64) store.TuningTrial {
		return store.TuningTrial{
			Number: number, Rung: rung, Split: split, Iterations: 5 * (rung + 1), UserFraction: 0.25 * float64(rung+1),
			Params:  json.RawMessage(fmt.Sprintf(`{"factors": %d, "weighting": "bm25"}`, 32*(number+1))),
			Metrics: json.RawMessage(fmt.Sprintf(`{"ndcg_at_5": %g}`, ndcg)), Seconds: 0.5 + float64(number),
			Pruned: rung == 0 && number == 2, Promoted: rung == 0 && number != 2, Incumbent: number == 0,
		}
	}
	// Recorded out of order: read back by number, rung, split.
	trials := []store.TuningTrial{trial(1, 1, 0, 0.31), trial(0, 0, 0, 0.2), trial(2, 0, 0, 0.1), trial(1, 0, 0, 0.3), trial(0, 1, 0, 0.22), trial(1, 1, 1, 0.29)}
	summary := map[string]any{"tuning": map[string]any{"best_trial": 1, "stop_reason": "budget"}}
	if err := b.DB.UpdateRun(ctx, id, store.RunUpdate{Status: store.RunTuned, Params: summary, Trials: trials}); err != nil {
		t.Fatal(err)
	}
	got, err := b.DB.TuningTrials(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, g := range got {
		order = append(order, fmt.Sprintf("%d/%d/%d", g.Number, g.Rung, g.Split))
	}
	if fmt.Sprint(order) != "[0/0/0 0/1/0 1/0/0 1/1/0 1/1/1 2/0/0]" {
		t.Errorf("trial order = %v; want by number, rung, split", order)
	}
	for _, g := range got {
		var want store.TuningTrial
		for _, w := range trials {
			if w.Number == g.Number && w.Rung == g.Rung && w.Split == g.Split {
				want = w
			}
		}
		var gp, wp, gm, wm any
		_ = json.Unmarshal(g.Params, &gp)
		_ = json.Unmarshal(want.Params, &wp)
		_ = json.Unmarshal(g.Metrics, &gm)
		_ = json.Unmarshal(want.Metrics, &wm)
		if g.RunID != id || g.Iterations != want.Iterations || g.UserFraction != want.UserFraction || g.Seconds != want.Seconds ||
			g.Pruned != want.Pruned || g.Promoted != want.Promoted || g.Incumbent != want.Incumbent ||
			fmt.Sprint(gp) != fmt.Sprint(wp) || fmt.Sprint(gm) != fmt.Sprint(wm) {
			t.Errorf("trial %d/%d/%d read back as %+v (params %s metrics %s); want %+v", g.Number, g.Rung, g.Split, g, g.Params, g.Metrics, want)
		}
	}
	r, err := b.DB.Run(ctx, id)
	if err != nil || r.Status != store.RunTuned || r.FinishedAt == nil || r.PublishedAt != nil || !strings.Contains(string(r.Params), "budget") {
		t.Errorf("tuned run = %+v, %v; want finished, not published, with its summary", r, err)
	}
	if last, err := b.DB.LastTuned(ctx); err != nil || last.ID != id {
		t.Errorf("last tuned = %d, %v; want %d", last.ID, err, id)
	}
	if _, err := b.DB.LastPublished(ctx); !errors.Is(err, setlist.ErrNotFound) {
		t.Errorf("a tuned run counts as published: %v", err)
	}

	// Bad trials are refused whole, naming the trial, and the run's
	// update is refused with them: nothing is half-written.
	dup := append(slices.Clone(trials[:2]), trial(1, 1, 0, 0.5))
	badFrac := trial(3, 0, 0, 0.1)
	badFrac.UserFraction = 0
	badJSON := trial(4, 0, 0, 0.1)
	badJSON.Metrics = json.RawMessage(`[1]`)
	for name, bad := range map[string][]store.TuningTrial{"duplicate": dup, "user fraction 0": {badFrac}, "metrics not an object": {badJSON}} {
		err := b.DB.UpdateRun(ctx, id, store.RunUpdate{Status: store.RunFailed, Reason: "x", Trials: bad})
		wantErr(t, name, err, setlist.ErrInvalid)
		if err != nil && !strings.Contains(err.Error(), "trial ") {
			t.Errorf("%s: error %q does not name the trial", name, err)
		}
	}
	if r, _ := b.DB.Run(ctx, id); r.Status != store.RunTuned || r.Reason != "" {
		t.Errorf("a refused update changed the run: %s %q", r.Status, r.Reason)
	}
	if got, _ := b.DB.TuningTrials(ctx, id); len(got) != len(trials) {
		t.Errorf("a refused update changed the trials: %d, want %d", len(got), len(trials))
	}

	// An update without trials keeps them; an empty list clears them; an
	// unknown run writes no trials.
	if err := b.DB.UpdateRun(ctx, id, store.RunUpdate{Notes: "kept"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := b.DB.TuningTrials(ctx, id); len(got) != len(trials) {
		t.Errorf("an update without trials dropped them: %d left", len(got))
	}
	err = b.DB.UpdateRun(ctx, 1<<40, store.RunUpdate{Status: store.RunTuned, Trials: trials})
	wantErr(t, "trials of an unknown run", err, setlist.ErrNotFound)
	if err := b.DB.UpdateRun(ctx, id, store.RunUpdate{Trials: []store.TuningTrial{}}); err != nil {
		t.Fatal(err)
	}
	if got, err := b.DB.TuningTrials(ctx, id); err != nil || len(got) != 0 {
		t.Errorf("trials after an empty list = %d, %v; want none", len(got), err)
	}

	// A later tuned run is the last tuned; ids keep increasing.
	id2, err := b.DB.StartRun(ctx, "")
	if err != nil || id2 <= id {
		t.Fatalf("second run %d, %v after %d", id2, err, id)
	}
	if err := b.DB.UpdateRun(ctx, id2, store.RunUpdate{Status: store.RunTuned, Trials: trials[:1]}); err != nil {
		t.Fatal(err)
	}
	if last, err := b.DB.LastTuned(ctx); err != nil || last.ID != id2 {
		t.Errorf("last tuned = %d, %v; want %d", last.ID, err, id2)
	}
}

func testLock(t *testing.T, b Backend) {
	ctx := context.Background()
	orphan, err := b.DB.StartRun(ctx, "killed before it recorded an outcome")
	if err != nil {
		t.Fatal(err)
	}
	release, err := b.DB.LockTraining(ctx, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := b.DB.Run(ctx, orphan); err != nil || r.Status != store.RunFailed || r.FinishedAt == nil {
		t.Errorf("a running row found by the next lock holder: %s, %v; want failed", r.Status, err)
	}
	_, err = b.DB.LockTraining(ctx, false, nil)
	wantErr(t, "second lock", err, setlist.ErrConflict)
	waited := make(chan string, 1)
	got := make(chan error, 1)
	go func() {
		rel, err := b.DB.LockTraining(ctx, true, func(holder string) { waited <- holder })
		if err == nil {
			rel()
		}
		got <- err
	}()
	select {
	case <-waited:
	case <-time.After(10 * time.Second):
		t.Fatal("a waiting LockTraining never reported the holder")
	}
	release()
	select {
	case err := <-got:
		if err != nil {
			t.Errorf("waiter: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the waiter did not get the lock after release")
	}
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	rel, err := b.DB.LockTraining(short, false, nil)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	rel()
}

// testPublish runs the batch pipeline twice on the backend (so the real
// publisher writes through its Redis client), reads a user's list back and
// rolls back.
func testPublish(t *testing.T, b Backend) {
	ctx := context.Background()
	var csv strings.Builder
	csv.WriteString("user_id,artist,track,count\n")
	for u := range 40 {
		for s := range 12 {
			song := (u%4)*10 + (u+s)%15
			fmt.Fprintf(&csv, "u%02d,artist%d,track%d,%d\n", u, song%7, song, 1+(u*s)%5)
		}
	}
	if _, err := b.DB.Import(ctx, strings.NewReader(csv.String()), store.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	factors, iters := 4, 3
	keys := keyspace.NewKeys(b.Prefix)
	train := func() *pipeline.Result {
		t.Helper()
		res, err := pipeline.Run(ctx, pipeline.Config{Force: true, Overrides: pipeline.Overrides{Factors: &factors, Iterations: &iters}},
			pipeline.Deps{Source: b.DB, Registry: b.DB, Locker: b.DB, Publisher: keyspace.NewPublisher(b.Redis, keys)})
		if err != nil {
			t.Fatalf("pipeline: %v", err)
		}
		return res
	}
	first := train()
	reader := keyspace.NewReader(b.Redis, b.Prefix)
	cur, err := reader.Current(ctx)
	if err != nil || cur != first.Version {
		t.Fatalf("current = %d, %v; want %d", cur, err, first.Version)
	}
	pub, err := reader.Load(ctx, cur)
	if err != nil || pub.Meta.Users != 40 {
		t.Fatalf("load = %v; meta %+v", err, pub)
	}
	st, err := reader.UserState(ctx, cur, "u07")
	if err != nil || len(st.Recs) != pipeline.DefaultK {
		t.Errorf("u07's list = %+v, %v", st.Recs, err)
	}
	second := train()
	if second.Version <= first.Version {
		t.Fatalf("versions %d then %d", first.Version, second.Version)
	}
	ptr, err := keyspace.NewPublisher(b.Redis, keys).Rollback(ctx)
	if err != nil || ptr.Current != first.Version || ptr.Previous != second.Version {
		t.Fatalf("rollback = %+v, %v", ptr, err)
	}
	if err := b.DB.RecordRollback(ctx, int64(ptr.Previous), int64(ptr.Current), "test"); err != nil {
		t.Fatal(err)
	}
	last, err := b.DB.LastPublished(ctx)
	if err != nil || last.ID != int64(first.Version) {
		t.Errorf("registry's published run = %d, %v; want %d", last.ID, err, first.Version)
	}
	if cur, _ := reader.Current(ctx); cur != first.Version {
		t.Errorf("readers use %d after rollback; want %d", cur, first.Version)
	}
}

// testRefreshes: the refresh registry (batch refresh) and the two reads
// that find a refresh's new songs and their listeners.
func testRefreshes(t *testing.T, b Backend) {
	ctx := context.Background()
	before := time.Now().Add(-time.Second)
	importSample(t, b.DB)
	waterloo, loser := songID(t, b.DB, "Abba", "Waterloo"), songID(t, b.DB, "Beck", "Loser")
	all, err := b.DB.SongsReactedSince(ctx, before)
	if err != nil || len(all) != 3 {
		t.Fatalf("songs reacted since before the import = %v, %v; want all 3", all, err)
	}
	time.Sleep(20 * time.Millisecond)
	mark := time.Now()
	time.Sleep(20 * time.Millisecond)
	if _, err := b.DB.React(ctx, "carol", setlist.SongRef{ID: waterloo}, setlist.Like); err != nil {
		t.Fatal(err)
	}
	// A repeated play updates its row; it is not a new reaction.
	if _, err := b.DB.React(ctx, "alice", setlist.SongRef{ID: loser}, setlist.Play); err != nil {
		t.Fatal(err)
	}
	got, err := b.DB.SongsReactedSince(ctx, mark)
	if err != nil || !slices.Equal(got, []setlist.SongID{waterloo}) {
		t.Errorf("songs reacted since the mark = %v, %v; want [%d]", got, err, waterloo)
	}
	if got, err := b.DB.SongsReactedSince(ctx, time.Now().Add(time.Hour)); err != nil || len(got) != 0 {
		t.Errorf("songs reacted in the future = %v, %v", got, err)
	}
	rs, err := b.DB.SongReactions(ctx, []setlist.SongID{waterloo})
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	for _, r := range rs {
		if r.Song != waterloo {
			t.Errorf("reaction of another song: %+v", r)
		}
		seen = append(seen, string(r.User)+":"+string(r.Kind)+":"+fmt.Sprint(r.Weight))
	}
	if want := []string{"alice:play:5", "bob:play:2", "carol:like:1"}; !slices.Equal(seen, want) {
		t.Errorf("reactions of Waterloo = %v, want %v", seen, want)
	}
	if rs, err := b.DB.SongReactions(ctx, nil); err != nil || len(rs) != 0 {
		t.Errorf("reactions of no songs = %v, %v", rs, err)
	}

	_, err = b.DB.LastRefresh(ctx, 7)
	wantErr(t, "no refresh yet", err, setlist.ErrNotFound)
	id, err := b.DB.StartRefresh(ctx, 7)
	if err != nil {
		t.Fatal(err)
	}
	r, err := b.DB.LastRefresh(ctx, 7)
	if err != nil || r.ID != id || r.Status != store.RefreshRunning || r.FinishedAt != nil {
		t.Fatalf("running refresh = %+v, %v", r, err)
	}
	end := store.RefreshEnd{Status: store.RefreshDone, Songs: []setlist.SongID{waterloo, loser}, UsersUpdated: 12}
	if err := b.DB.FinishRefresh(ctx, id, end); err != nil {
		t.Fatal(err)
	}
	r, err = b.DB.LastRefresh(ctx, 7)
	if err != nil || r.Status != store.RefreshDone || r.SongsAdded != 2 || r.UsersUpdated != 12 ||
		!slices.Equal(r.Songs, end.Songs) || r.FinishedAt == nil || r.Version != 7 {
		t.Errorf("finished refresh = %+v, %v", r, err)
	}
	id2, _ := b.DB.StartRefresh(ctx, 7)
	if err := b.DB.FinishRefresh(ctx, id2, store.RefreshEnd{Status: store.RefreshFailed, Reason: "boom"}); err != nil {
		t.Fatal(err)
	}
	if r, err := b.DB.LastRefresh(ctx, 7); err != nil || r.ID != id2 || r.Reason != "boom" || r.Songs == nil || len(r.Songs) != 0 {
		t.Errorf("newest refresh = %+v, %v; want the failed one with no songs", r, err)
	}
	_, err = b.DB.LastRefresh(ctx, 8)
	wantErr(t, "another version", err, setlist.ErrNotFound)
	err = b.DB.FinishRefresh(ctx, 1<<40, end)
	wantErr(t, "unknown refresh", err, setlist.ErrNotFound)
}
