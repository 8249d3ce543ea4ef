// Package shard computes one shard of the top-K precompute for a staged
// model version: the Kubernetes scale-out path, where an Indexed Job's pod k
// of N runs `batch precompute --shard-index k --shards N --version V`.
//
// Each shard takes a contiguous range of users (ordered by database id,
// among users with reactions created no later than the model's snapshot),
// folds each one in against the version's stored item side (an exact,
// deterministic Cholesky solve: model.Published.FoldIn, the code serve uses
// for users the batch did not see) and writes their lists under V. Because
// a user's list depends only on their reactions and the item side, N shards
// write byte-for-byte what one shard writes. The worker that completes the
// set of shards switches the pointer (keyspace.Publisher.FinishShards).
package shard

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/keyspace"
	"github.com/setlist/setlist/internal/model"
	"github.com/setlist/setlist/internal/postgres"
	"github.com/setlist/setlist/internal/store"
)

// Config says which shard to compute.
type Config struct {
	Version keyspace.Version
	Shards  int // N ≥ 1
	Index   int // 0 ≤ Index < Shards
	// K is the list length; 0 means the version's meta.K.
	K int
	// Switch switches the pointer when this shard completes the set.
	Switch bool
	// BatchSize is the Redis commands per pipelined round trip (0: default).
	BatchSize int
}

// Result says what a shard did.
type Result struct {
	Lo, Hi   int // this shard's half-open range in the ordered user list
	Users    int // users in the whole list
	Written  int // lists written (users with no usable reaction get none)
	Done     int // shards recorded as done, this one included
	Switched bool
}

// Range is shard index's half-open range [lo, hi) of n items split into
// shards contiguous parts whose sizes differ by at most one.
func Range(n, shards, index int) (lo, hi int) {
	return n * index / shards, n * (index + 1) / shards
}

// Validate reports a configuration that cannot run.
func (c Config) Validate() error {
	var errs []error
	if c.Version <= 0 {
		errs = append(errs, fmt.Errorf("--version must be > 0, got %d", c.Version))
	}
	if c.Shards < 1 {
		errs = append(errs, fmt.Errorf("--shards must be ≥ 1, got %d", c.Shards))
	}
	if c.Index < 0 || c.Index >= max(c.Shards, 1) {
		errs = append(errs, fmt.Errorf("--shard-index must be in [0, %d), got %d", c.Shards, c.Index))
	}
	if c.K < 0 || c.K > 1000 {
		errs = append(errs, fmt.Errorf("--k must be between 0 and 1000, got %d", c.K))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", err, setlist.ErrInvalid)
	}
	return nil
}

// Run computes and writes shard cfg.Index of version cfg.Version.
func Run(ctx context.Context, db *postgres.DB, rdb redis.UniversalClient, prefix string, cfg Config) (Result, error) {
	var res Result
	if err := cfg.Validate(); err != nil {
		return res, err
	}
	pub, err := keyspace.NewReader(rdb, prefix).Load(ctx, cfg.Version)
	if err != nil {
		return res, fmt.Errorf("precompute: %w", err)
	}
	k := cfg.K
	if k == 0 {
		k = pub.Meta.K
	}
	if k <= 0 {
		return res, fmt.Errorf("precompute: version %d's meta has no k; pass --k", cfg.Version)
	}
	snapshot := pub.Meta.SnapshotAt
	if snapshot.IsZero() {
		snapshot = time.Now()
	}
	ids, err := userIDs(ctx, db, snapshot)
	if err != nil {
		return res, err
	}
	res.Users = len(ids)
	res.Lo, res.Hi = Range(len(ids), cfg.Shards, cfg.Index)
	var users []setlist.UserID
	var lists [][]model.Rec
	if res.Lo < res.Hi {
		byUser, order, err := reactions(ctx, db, ids[res.Lo], ids[res.Hi-1], snapshot)
		if err != nil {
			return res, err
		}
		for _, u := range order {
			recs, err := pub.FoldIn(byUser[u], k)
			if errors.Is(err, model.ErrNoSignal) {
				continue // serve answers the popular list
			}
			if err != nil {
				return res, fmt.Errorf("precompute: user %q: %w", u, err)
			}
			users, lists = append(users, u), append(lists, recs)
		}
	}
	p := keyspace.NewPublisher(rdb, keyspace.NewKeys(prefix))
	if cfg.BatchSize > 0 {
		p.BatchSize = cfg.BatchSize
	}
	res.Written, res.Done, err = p.WriteShard(ctx, cfg.Version, cfg.Index, len(users), func(i int) (setlist.UserID, []model.Rec) {
		return users[i], lists[i]
	})
	if err != nil {
		return res, fmt.Errorf("precompute: %w", err)
	}
	if cfg.Switch && res.Done >= cfg.Shards {
		if _, res.Switched, err = p.FinishShards(ctx, cfg.Version, cfg.Shards); err != nil {
			return res, fmt.Errorf("precompute: %w", err)
		}
	}
	if res.Switched {
		// The run `batch train --stage-only` recorded as staged is live now.
		v := int64(cfg.Version)
		err := db.UpdateRun(ctx, v, store.RunUpdate{Status: store.RunPublished, Version: &v})
		if err != nil && !errors.Is(err, setlist.ErrNotFound) {
			return res, fmt.Errorf("precompute: switched to version %d, but recording it in the registry failed: %w", v, err)
		}
	}
	return res, nil
}

// userIDs lists, by database id, the users with at least one reaction who
// existed at the snapshot: the same list for every shard of a version, even
// while new users sign up.
func userIDs(ctx context.Context, db *postgres.DB, snapshot time.Time) ([]int64, error) {
	rows, err := db.Pool.Query(ctx, `SELECT u.id FROM users u
		WHERE u.created_at <= $1 AND EXISTS (SELECT 1 FROM reactions r WHERE r.user_id = u.id)
		ORDER BY u.id`, snapshot)
	if err != nil {
		return nil, fmt.Errorf("precompute: list users: %w: %w", setlist.ErrUnavailable, err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("precompute: list users: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("precompute: list users: %w: %w", setlist.ErrUnavailable, err)
	}
	return ids, nil
}

// reactions reads every reaction of the users with ids in [lo, hi] (among
// those userIDs lists) in one range scan, grouped by user in id order, as
// postgres.DB.UserReactions returns them to serve's fold-in.
func reactions(ctx context.Context, db *postgres.DB, lo, hi int64, snapshot time.Time) (map[setlist.UserID][]setlist.Reaction, []setlist.UserID, error) {
	rows, err := db.Pool.Query(ctx, `SELECT u.external_id, r.song_id, r.kind, r.weight, r.updated_at
		FROM users u JOIN reactions r ON r.user_id = u.id
		WHERE u.id BETWEEN $1 AND $2 AND u.created_at <= $3
		ORDER BY u.id, r.song_id, r.kind`, lo, hi, snapshot)
	if err != nil {
		return nil, nil, fmt.Errorf("precompute: read reactions: %w: %w", setlist.ErrUnavailable, err)
	}
	defer rows.Close()
	by := map[setlist.UserID][]setlist.Reaction{}
	var order []setlist.UserID
	for rows.Next() {
		var (
			user, kind string
			song       int64
			weight     float32
			updated    time.Time
		)
		if err := rows.Scan(&user, &song, &kind, &weight, &updated); err != nil {
			return nil, nil, fmt.Errorf("precompute: read reactions: %w", err)
		}
		u := setlist.UserID(user)
		if _, seen := by[u]; !seen {
			order = append(order, u)
		}
		by[u] = append(by[u], setlist.Reaction{User: u, Song: setlist.SongID(song), Kind: setlist.ReactionKind(kind),
			Weight: float64(weight), UpdatedAt: updated})
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("precompute: read reactions: %w: %w", setlist.ErrUnavailable, err)
	}
	return by, order, nil
}
