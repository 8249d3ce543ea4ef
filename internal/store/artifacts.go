package store

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/setlist/setlist"
)

// ArtifactInfo describes one stored model artifact (the bytes themselves
// are fetched separately: they can be hundreds of megabytes).
type ArtifactInfo struct {
	Version   int64     `json:"version"`
	Family    string    `json:"family"`
	Bytes     int64     `json:"bytes"`
	SHA256    string    `json:"sha256"` // hex digest of the whole artifact
	Pinned    bool      `json:"pinned"`
	CreatedAt time.Time `json:"created_at"`
}

// ErrCorrupt marks an artifact whose bytes no longer match the checksum
// recorded when it was saved: it is refused, never republished.
var ErrCorrupt = errors.New("artifact is corrupt (sha256 mismatch)")

// ArtifactChunk is how many bytes go in one stored chunk: big enough that
// per-row overhead vanishes, small enough that no single value approaches a
// database's limits or a driver's buffer sizes.
const ArtifactChunk = 4 << 20

// Checksum is the hex sha256 every backend records and verifies.
func Checksum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// Chunks splits b into ArtifactChunk-sized pieces (none for empty b); they
// share b's memory.
func Chunks(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		n := min(len(b), ArtifactChunk)
		out = append(out, b[:n])
		b = b[n:]
	}
	return out
}

// Expired picks the artifacts retention deletes from infos (any order):
// all but the keep newest versions, sparing pinned ones and those in
// protect (the versions Redis currently points at). keep < 1 keeps one.
// Both backends call it inside their delete transaction so the rule is
// written once.
func Expired(infos []ArtifactInfo, keep int, protect []int64) (drop []int64) {
	keep = max(keep, 1)
	versions := make([]int64, 0, len(infos))
	pinned := map[int64]bool{}
	for _, a := range infos {
		versions = append(versions, a.Version)
		pinned[a.Version] = a.Pinned
	}
	slices.SortFunc(versions, func(a, b int64) int { return cmp.Compare(b, a) }) // newest first
	prot := map[int64]bool{}
	for _, v := range protect {
		prot[v] = true
	}
	for i, v := range versions {
		if i >= keep && !pinned[v] && !prot[v] {
			drop = append(drop, v)
		}
	}
	return drop
}

// CheckStored compares the length an artifact's record gives with the
// bytes its chunks hold (total, from a cheap sum query) before anything is
// allocated: a record whose length was overwritten (a stray UPDATE, a bad
// disk) is refused with ErrCorrupt instead of sizing a buffer (a length of
// 2^62 panicked in make, one of 20 GB ran out of memory).
func CheckStored(info ArtifactInfo, total int64) error {
	if info.Bytes != total {
		return fmt.Errorf("artifact of version %d: %d bytes recorded, its chunks hold %d: %w", info.Version, info.Bytes, total, ErrCorrupt)
	}
	return nil
}

// Verify checks an artifact's bytes against what was recorded when it was
// saved; a mismatch wraps ErrCorrupt.
func Verify(info ArtifactInfo, data []byte) error {
	if int64(len(data)) != info.Bytes {
		return fmt.Errorf("artifact of version %d: %d bytes stored, %d recorded: %w", info.Version, len(data), info.Bytes, ErrCorrupt)
	}
	if sum := Checksum(data); sum != info.SHA256 {
		return fmt.Errorf("artifact of version %d: sha256 %s, recorded %s: %w", info.Version, sum, info.SHA256, ErrCorrupt)
	}
	return nil
}

// SongKey names a song by its unique (artist, track), as an imported
// model's items.csv does.
type SongKey struct{ Artist, Track string }

func (k SongKey) String() string { return fmt.Sprintf("%q by %q", k.Track, k.Artist) }

// Resolved is what ResolveIDs found: the song id of each key (in order) and
// the users and songs the database does not know (none when created).
type Resolved struct {
	Songs        []setlist.SongID
	MissingUsers []setlist.UserID
	MissingSongs []SongKey
}
