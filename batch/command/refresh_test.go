package command_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/keyspace"
	"github.com/setlist/setlist/internal/model"
	"github.com/setlist/setlist/internal/store"
)

// plantedCSV writes clusters of users who each play their cluster's songs
// (and a little of the others', so the clusters are not disconnected).
func plantedCSV(t *testing.T, clusters, usersPer, songsPer int) string {
	var b strings.Builder
	b.WriteString("user_id,artist,track,count\n")
	for c := range clusters {
		for u := range usersPer {
			user := fmt.Sprintf("c%d-u%02d", c, u)
			for s := range songsPer {
				if (u+s)%4 != 0 { // three quarters of the cluster's songs
					fmt.Fprintf(&b, "%s,Artist %d,Song %d-%d,%d\n", user, c, c, s, 1+(u*s)%5)
				}
			}
			o := (c + 1) % clusters
			fmt.Fprintf(&b, "%s,Artist %d,Song %d-%d,1\n", user, o, o, u%songsPer)
		}
	}
	path := filepath.Join(t.TempDir(), "planted.csv")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestRefreshPlanted: a song released after training and played by one
// taste cluster enters that cluster's lists and no one else's (never its
// own listeners'), serve's view of the version knows it, the registry
// records the refresh, a second refresh writes nothing, and a refresh
// beside a run holding the training lock exits 4.
func TestRefreshPlanted(t *testing.T) {
	c := newCLI(t)
	ctx := context.Background()
	const clusters, usersPer, songsPer = 3, 30, 12
	c.mustRun("import", "--csv", plantedCSV(t, clusters, usersPer, songsPer))
	c.mustRun("train", "--factors", "8", "--iterations", "15", "--regularization", "0.1", "--threads", "2", "--k", "5")

	// Nothing new yet.
	out := c.mustRun("refresh")
	if !strings.Contains(out, "nothing new") {
		t.Fatalf("first refresh:\n%s", out)
	}
	// Eight of cluster 0 play a new release; two of cluster 1 do (too few).
	var b strings.Builder
	b.WriteString("user_id,artist,track,count\n")
	for u := range 8 {
		fmt.Fprintf(&b, "c0-u%02d,New Artist,Release,%d\n", u, 3+u%3)
	}
	b.WriteString("c1-u00,Other Artist,Flop,2\nc1-u01,Other Artist,Flop,1\n")
	for u := range 8 { // a release of cluster 2 that is taken down
		fmt.Fprintf(&b, "c2-u%02d,Gone Artist,Withdrawn,4\n", u)
	}
	news := filepath.Join(t.TempDir(), "new.csv")
	if err := os.WriteFile(news, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	c.mustRun("import", "--csv", news)
	db := c.db()
	songs, err := db.SearchSongs(ctx, "Release", 5)
	if err != nil || len(songs) != 1 {
		t.Fatalf("new song: %v, %v", songs, err)
	}
	release := songs[0].ID
	gone, err := db.SearchSongs(ctx, "Withdrawn", 5)
	if err != nil || len(gone) != 1 {
		t.Fatalf("withdrawn song: %v, %v", gone, err)
	}
	if _, err := db.SetAvailable(ctx, []setlist.SongID{gone[0].ID}, false); err != nil {
		t.Fatal(err)
	}

	v := keyspace.Version(1)
	var users []setlist.UserID
	for cl := range clusters {
		for u := range usersPer {
			users = append(users, setlist.UserID(fmt.Sprintf("c%d-u%02d", cl, u)))
		}
	}
	before := c.lists(v, users)
	out = c.mustRun("refresh", "--min-listeners", "3")
	if !strings.Contains(out, fmt.Sprintf("1 songs folded in [%d]", release)) || !strings.Contains(out, "1 songs wait for more listeners") {
		t.Fatalf("refresh output:\n%s", out)
	}
	after := c.lists(v, users)
	entered := map[int]int{}
	for i, u := range users {
		has := slices.ContainsFunc(after[u], func(r model.Rec) bool { return r.Song == release })
		cl := i / usersPer
		switch {
		case has && cl == 0 && i%usersPer < 8:
			t.Errorf("%s, a listener of the release, is recommended it", u)
		case has:
			entered[cl]++
		case !slices.Equal(before[u], after[u]):
			t.Errorf("%s's list changed without the release: %v → %v", u, before[u], after[u])
		}
		if len(after[u]) != len(before[u]) {
			t.Errorf("%s's list has %d songs, had %d", u, len(after[u]), len(before[u]))
		}
	}
	t.Logf("the release entered %v lists per cluster", entered)
	if entered[0] < (usersPer-8)/2 || entered[1] != 0 || entered[2] != 0 {
		t.Errorf("the release entered %v lists per cluster; want most of cluster 0's %d non-listeners and no one else", entered, usersPer-8)
	}
	r, err := db.LastRefresh(ctx, 1)
	if err != nil || r.Status != store.RefreshDone || !slices.Equal(r.Songs, []setlist.SongID{release}) || r.UsersUpdated != entered[0] {
		t.Errorf("registry: %+v, %v; want done, [%d], %d users", r, err, release, entered[0])
	}
	// Serve's reader knows the release: similar songs of a cluster 0 song.
	reader := keyspace.NewReader(c.rdb, c.keys.Prefix())
	pub, err := reader.Load(ctx, v)
	if err != nil || pub.Refreshes != 1 {
		t.Fatalf("load after refresh: refreshes %v, %v", pub, err)
	}
	idx, ok := pub.Catalog.Index(release)
	if !ok {
		t.Fatal("the loaded version does not know the release")
	}
	sim := pub.Items.Similar(idx, 3)
	for _, s := range sim {
		song := pub.Catalog.Song(s.Item)
		name, _ := db.Song(ctx, song)
		if name.Artist != "Artist 0" {
			t.Errorf("a song similar to the release is %v, not cluster 0's", name)
		}
	}

	// Idempotent: nothing new, nothing written.
	keysBefore := c.versionKeysRaw(v)
	if len(keysBefore) < len(users) {
		t.Fatalf("found %d keys of version %d", len(keysBefore), v)
	}
	out = c.mustRun("refresh", "--min-listeners", "3")
	if !strings.Contains(out, "nothing new") {
		t.Errorf("second refresh:\n%s", out)
	}
	if keysAfter := c.versionKeysRaw(v); !mapsEqual(keysBefore, keysAfter) {
		t.Error("a refresh with nothing new changed the version's keys")
	}

	// Beside a run holding the lock: exit 4, and nothing recorded.
	release2, err := db.LockTraining(ctx, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	code, _, errOut := c.run("refresh")
	release2()
	if code != 4 || !strings.Contains(errOut, "--wait-lock") {
		t.Errorf("refresh beside a locked run: exit %d, stderr:\n%s", code, errOut)
	}
	if r2, _ := db.LastRefresh(ctx, 1); r2.ID != r.ID+1 {
		t.Errorf("the locked-out refresh was recorded: last %+v", r2)
	}
}

// versionKeysRaw is every key of version v with its value.
func (c *cli) versionKeysRaw(v keyspace.Version) map[string]string {
	c.t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	iter := c.rdb.Scan(ctx, 0, c.keys.VersionPrefix(v)+"*", 1000).Iterator()
	for iter.Next(ctx) {
		out[iter.Val()] = c.rdb.Get(ctx, iter.Val()).Val()
	}
	if err := iter.Err(); err != nil {
		c.t.Fatal(err)
	}
	return out
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
