package storetest

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/store"
)

// testArtifacts checks the durable artifact store: bytes come back exactly
// (across chunk boundaries), a version has one artifact, corruption is
// refused by the checksum, and retention deletes exactly the versions that
// are neither among the newest, pinned, nor protected.
func testArtifacts(t *testing.T, b Backend) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	var versions []int64
	blobs := map[int64][]byte{}
	for i := range 5 {
		v, err := b.DB.StartRun(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		size := 1000 * (i + 1)
		if i == 4 {
			size = 2*store.ArtifactChunk + 12345 // three chunks
		}
		data := make([]byte, size)
		for j := range data {
			data[j] = byte(rng.Uint32())
		}
		info, err := b.DB.SaveArtifact(ctx, v, "als", data)
		if err != nil {
			t.Fatal(err)
		}
		if info.Version != v || info.Bytes != int64(size) || info.SHA256 != store.Checksum(data) || info.Family != "als" || info.CreatedAt.IsZero() {
			t.Errorf("saved info %+v", info)
		}
		versions = append(versions, v)
		blobs[v] = data
	}
	for _, v := range versions {
		got, info, err := b.DB.Artifact(ctx, v)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, blobs[v]) || info.SHA256 != store.Checksum(blobs[v]) {
			t.Errorf("version %d: %d bytes back, want %d identical", v, len(got), len(blobs[v]))
		}
	}
	_, err := b.DB.SaveArtifact(ctx, versions[0], "als", []byte("again"))
	wantErr(t, "second artifact for a version", err, setlist.ErrConflict)
	if got, _, _ := b.DB.Artifact(ctx, versions[0]); !bytes.Equal(got, blobs[versions[0]]) {
		t.Error("a refused second save changed the stored artifact")
	}
	_, _, err = b.DB.Artifact(ctx, 1<<40)
	wantErr(t, "unknown artifact", err, setlist.ErrNotFound)
	wantErr(t, "pin unknown", b.DB.PinArtifact(ctx, 1<<40, true), setlist.ErrNotFound)

	list, err := b.DB.Artifacts(ctx)
	if err != nil || len(list) != 5 || list[0].Version != versions[4] {
		t.Fatalf("artifacts = %+v, %v; want 5 newest first", list, err)
	}

	// Retention: keep the 2 newest (v5, v4); v2 is pinned, v1 protected
	// (Redis still points at it): exactly v3 goes.
	if err := b.DB.PinArtifact(ctx, versions[1], true); err != nil {
		t.Fatal(err)
	}
	dropped, err := b.DB.PruneArtifacts(ctx, 2, []int64{versions[0]})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(dropped, []int64{versions[2]}) {
		t.Errorf("pruned %v, want [%d]", dropped, versions[2])
	}
	_, _, err = b.DB.Artifact(ctx, versions[2])
	wantErr(t, "pruned artifact", err, setlist.ErrNotFound)
	list, _ = b.DB.Artifacts(ctx)
	var left []int64
	for _, a := range list {
		left = append(left, a.Version)
		if a.Pinned != (a.Version == versions[1]) {
			t.Errorf("version %d pinned = %v", a.Version, a.Pinned)
		}
	}
	if want := []int64{versions[4], versions[3], versions[1], versions[0]}; !slices.Equal(left, want) {
		t.Errorf("left %v, want %v", left, want)
	}
	// Unpinned and unprotected, the older two go too.
	if err := b.DB.PinArtifact(ctx, versions[1], false); err != nil {
		t.Fatal(err)
	}
	dropped, _ = b.DB.PruneArtifacts(ctx, 2, nil)
	slices.Sort(dropped)
	if !slices.Equal(dropped, []int64{versions[0], versions[1]}) {
		t.Errorf("pruned %v, want [%d %d]", dropped, versions[0], versions[1])
	}
	if dropped, _ = b.DB.PruneArtifacts(ctx, 2, nil); len(dropped) != 0 {
		t.Errorf("second prune dropped %v", dropped)
	}

	// A flipped byte in the last (three-chunk) artifact is refused.
	b.CorruptArtifact(t, versions[4])
	_, _, err = b.DB.Artifact(ctx, versions[4])
	wantErr(t, "corrupt artifact", err, store.ErrCorrupt)
	if got, _, err := b.DB.Artifact(ctx, versions[3]); err != nil || !bytes.Equal(got, blobs[versions[3]]) {
		t.Errorf("an intact artifact beside the corrupt one: %v", err)
	}

	// A recorded length that does not match the chunks is refused before
	// anything is allocated (issue 24 item 7: 2^62 panicked in make, 20e9
	// ran out of memory).
	for _, n := range []int64{1 << 62, 20e9, int64(len(blobs[versions[3]])) + 1, int64(len(blobs[versions[3]])) - 1, 0} {
		b.SetArtifactBytes(t, versions[3], n)
		_, _, err = b.DB.Artifact(ctx, versions[3])
		wantErr(t, fmt.Sprintf("artifact recorded as %d bytes", n), err, store.ErrCorrupt)
	}
}

// testResolveIDs checks an imported model's id lookup: unknown users and
// songs are reported and nothing is written, or with create all are
// inserted in one go; and that the registry's published run is the one
// most recently made live, even when a rollback restored an older one.
func testResolveIDs(t *testing.T, b Backend) {
	ctx := context.Background()
	importSample(t, b.DB)
	users := []setlist.UserID{"alice", "zoe", "bob", "yann"}
	songs := []store.SongKey{{Artist: "Abba", Track: "Waterloo"}, {Artist: "New", Track: "Song"}, {Artist: "Cher", Track: "Believe"}}
	res, err := b.DB.ResolveIDs(ctx, users, songs, false)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.MissingUsers, []setlist.UserID{"zoe", "yann"}) || !slices.Equal(res.MissingSongs, songs[1:2]) {
		t.Errorf("missing %v %v", res.MissingUsers, res.MissingSongs)
	}
	if res.Songs[0] != songID(t, b.DB, "Abba", "Waterloo") || res.Songs[1] != 0 || res.Songs[2] != songID(t, b.DB, "Cher", "Believe") {
		t.Errorf("song ids %v", res.Songs)
	}
	_, err = b.DB.User(ctx, "zoe")
	wantErr(t, "user after a lookup without create", err, setlist.ErrNotFound)
	res, err = b.DB.ResolveIDs(ctx, users, songs, true)
	if err != nil || len(res.MissingUsers)+len(res.MissingSongs) != 0 || slices.Contains(res.Songs, 0) {
		t.Fatalf("with create: %+v, %v", res, err)
	}
	if _, err := b.DB.User(ctx, "yann"); err != nil {
		t.Errorf("created user: %v", err)
	}
	if s, err := b.DB.Song(ctx, res.Songs[1]); err != nil || s.Artist != "New" || s.Track != "Song" {
		t.Errorf("created song: %+v, %v", s, err)
	}

	var ids [3]int64
	for i := range ids {
		ids[i], _ = b.DB.StartRun(ctx, "")
		v := ids[i]
		if err := b.DB.UpdateRun(ctx, v, store.RunUpdate{Status: store.RunPublished, Version: &v}); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.DB.RecordRollback(ctx, ids[2], ids[0], "to the first"); err != nil {
		t.Fatal(err)
	}
	if last, err := b.DB.LastPublished(ctx); err != nil || last.ID != ids[0] {
		t.Errorf("last published after rollback to %d: %d, %v", ids[0], last.ID, err)
	}
}
