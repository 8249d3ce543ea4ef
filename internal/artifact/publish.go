package artifact

import (
	"context"
	"fmt"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/als"
	"github.com/setlist/setlist/internal/feedback"
	"github.com/setlist/setlist/internal/keyspace"
	"github.com/setlist/setlist/internal/model"
	"github.com/setlist/setlist/internal/store"
)

// Lists computes every user's top-K from the stored factors with the one
// top-N of the batch (als.TopNAll), excluding the songs they reacted to,
// with the songs taken down at the snapshot (Meta.Unavailable) withheld
// (feedback.RankWithheld): the same inputs the training run ranked, so the
// same lists.
// An EASE artifact's lists are stored as ranked at training time.
func (a *Artifact) Lists(ctx context.Context, threads int) ([][]feedback.Scored, error) {
	if a.Family == FamilyEASE {
		return a.Ranked, nil
	}
	lists, err := feedback.RankWithheld(a.Meta.K, a.Side.Items, a.Catalog.Indexes(a.Meta.Unavailable), func(n int, except []int32) ([][]feedback.Scored, error) {
		return als.TopNAll(ctx, a.UserFactors, a.Side, n, a.Exclude, except, threads)
	})
	if err != nil {
		return nil, fmt.Errorf("lists of version %d: %w", a.Meta.Version, err)
	}
	return lists, nil
}

// Release is what keyspace publishes for this version given every user's
// list (nil for a staged version, whose lists the precompute shards write).
func (a *Artifact) Release(lists [][]feedback.Scored, progress func(written int)) keyspace.Release {
	var buf []model.Rec
	return keyspace.Release{
		Meta:    a.Meta,
		Items:   a.items,
		Popular: a.Popular,
		Users:   len(lists),
		// The buffer is reused: Publish encodes each list before asking for the next.
		List: func(i int) (setlist.UserID, []model.Rec) {
			buf = buf[:0]
			for _, s := range lists[i] {
				buf = append(buf, model.Rec{Song: a.Catalog.Song(s.Item), Score: s.Score})
			}
			return a.Users[i], buf
		},
		Progress: progress,
	}
}

// Loader reads a stored artifact, verified against its checksum (both
// backends' SaveArtifact/Artifact).
type Loader interface {
	Artifact(ctx context.Context, version int64) ([]byte, store.ArtifactInfo, error)
}

// Load reads and decodes version v's artifact.
func Load(ctx context.Context, l Loader, v model.Version) (*Artifact, error) {
	b, info, err := l.Artifact(ctx, int64(v))
	if err != nil {
		return nil, err
	}
	a, err := Decode(b)
	if err != nil {
		return nil, fmt.Errorf("version %d (%d bytes, family %s): %w", v, info.Bytes, info.Family, err)
	}
	if a.Meta.Version != v {
		return nil, fmt.Errorf("artifact stored for version %d says it is version %d", v, a.Meta.Version)
	}
	return a, nil
}
