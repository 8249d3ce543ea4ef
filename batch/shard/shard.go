// Package shard computes one shard of the top-K precompute for a staged
// model version: the Kubernetes scale-out path, where an Indexed Job's pod k
// of N runs `batch precompute --shard-index k --shards N --version V`.
//
// Each shard takes a contiguous range of users (ordered by database id,
// among users with reactions created no later than the model's snapshot)
// and streams it in batches: a batch's reactions by one ordered read, each
// user folded in against the version's stored item side (an exact,
// deterministic Cholesky solve, as serve's fold-in), the batch ranked by
// the top-N kernel training ranks with (model.Published.FoldInAll), and the
// lists written under V before the next batch is read, so a shard's memory
// is one batch's whatever its size. Because a user's list depends only on
// their reactions and the item side, N shards write byte-for-byte what one
// shard writes. The worker that completes the set of shards switches the
// pointer (keyspace.Publisher.FinishShards).
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
	// UsersPerBatch is how many users are read, folded in and ranked
	// together (0: DefaultUsersPerBatch); it bounds the shard's memory.
	UsersPerBatch int
	// Threads ranks with this many goroutines (0: GOMAXPROCS).
	Threads int
}

// Result says what a shard did.
type Result struct {
	Lo, Hi   int // this shard's half-open range in the ordered user list
	Users    int // users in the whole list
	Written  int // lists written (users with no usable reaction get none)
	Done     int // shards recorded as done, this one included
	Switched bool
	Phases   Phases
}

// Phases is where a shard's wall time went, summed over its batches.
type Phases struct {
	Read  time.Duration // the batch's user ids and reactions from PostgreSQL
	Rank  time.Duration // fold-ins and the batched top-N
	Write time.Duration // the lists to Redis
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
	users, err := countUsers(ctx, db, snapshot)
	if err != nil {
		return res, err
	}
	res.Users = users
	res.Lo, res.Hi = Range(users, cfg.Shards, cfg.Index)
	p := keyspace.NewPublisher(rdb, keyspace.NewKeys(prefix))
	if cfg.BatchSize > 0 {
		p.BatchSize = cfg.BatchSize
	}
	w := p.NewShardWriter(cfg.Version, cfg.Index)
	if res.Lo < res.Hi {
		if err := stream(ctx, db, pub, w, cfg, snapshot, res.Lo, res.Hi, k, &res.Phases); err != nil {
			return res, err
		}
	}
	res.Written, res.Done, err = w.Finish(ctx)
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

// DefaultUsersPerBatch is how many users a shard reads, folds in, ranks
// and writes at a time: enough for the ranking kernel's user blocks and a
// few Redis round trips, few enough that a batch's reactions and lists are
// a few MB whatever the shard's size.
const DefaultUsersPerBatch = 2048

// usersWhere is the users a version's precompute covers, in id order: those
// with at least one reaction who existed at the snapshot ($1), so every
// shard of a version splits the same list even while new users sign up.
// The reaction check is a correlated scalar subquery, one probe of the
// reactions' primary key per user, which the planner cannot turn into a
// semi-join: with an EXISTS it hashed every reaction's user (a full scan
// of 50 M rows) before each batch of 2,048 users whenever the statistics
// were stale, as after a bulk import.
const usersWhere = `u.created_at <= $1 AND (SELECT true FROM reactions r WHERE r.user_id = u.id LIMIT 1)`

// countUsers counts the users the precompute covers.
func countUsers(ctx context.Context, db *postgres.DB, snapshot time.Time) (int, error) {
	var n int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM users u WHERE `+usersWhere, snapshot).Scan(&n); err != nil {
		return 0, fmt.Errorf("precompute: count users: %w: %w", setlist.ErrUnavailable, err)
	}
	return n, nil
}

// userAt is the database id of the user at position i (0-based) of the
// covered users in id order: an index scan that skips i rows, holding none.
func userAt(ctx context.Context, db *postgres.DB, snapshot time.Time, i int) (int64, error) {
	var id int64
	err := db.Pool.QueryRow(ctx, `SELECT u.id FROM users u WHERE `+usersWhere+` ORDER BY u.id OFFSET $2 LIMIT 1`, snapshot, i).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("precompute: find user %d of the list: %w: %w", i, setlist.ErrUnavailable, err)
	}
	return id, nil
}

// stream computes users [lo, hi) of the covered list batch by batch: each
// batch's ids by a keyset read (id order, from the last id of the batch
// before), their reactions by one range scan of the reactions' primary key,
// their lists by Published.FoldInAll, written by w before the next batch is
// read. Memory is one batch's, whatever the shard's size (issue 25 item 5).
func stream(ctx context.Context, db *postgres.DB, pub *model.Published, w *keyspace.ShardWriter, cfg Config, snapshot time.Time, lo, hi, k int, ph *Phases) error {
	first, err := userAt(ctx, db, snapshot, lo)
	if err != nil {
		return err
	}
	batch := cfg.UsersPerBatch
	if batch <= 0 {
		batch = DefaultUsersPerBatch
	}
	after := first - 1 // the last id done
	var (
		ids   []int64
		rows  batchRows
		users []setlist.UserID
		lists [][]model.Rec
	)
	for left := hi - lo; left > 0; {
		t0 := time.Now()
		ids, err = batchIDs(ctx, db, snapshot, after, min(batch, left), ids[:0])
		if err != nil {
			return err
		}
		if len(ids) == 0 {
			// Users lost their last reaction (or were deleted) since the
			// count: the range ends early; the next version covers it.
			break
		}
		if err := rows.read(ctx, db, ids); err != nil {
			return err
		}
		t1 := time.Now()
		ranked, err := pub.FoldInAll(ctx, rows.byUser, k, cfg.Threads)
		if err != nil {
			return fmt.Errorf("precompute: %w", err)
		}
		users, lists = users[:0], lists[:0]
		for i, l := range ranked {
			if l != nil { // nil: no usable reaction; serve answers the popular list
				users, lists = append(users, rows.ext[i]), append(lists, l)
			}
		}
		t2 := time.Now()
		if err := w.Write(ctx, len(users), func(i int) (setlist.UserID, []model.Rec) { return users[i], lists[i] }); err != nil {
			return fmt.Errorf("precompute: %w", err)
		}
		ph.Read += t1.Sub(t0)
		ph.Rank += t2.Sub(t1)
		ph.Write += time.Since(t2)
		left -= len(ids)
		after = ids[len(ids)-1]
	}
	return nil
}

// batchIDs appends to ids the next n covered users' database ids after id
// after, in id order.
func batchIDs(ctx context.Context, db *postgres.DB, snapshot time.Time, after int64, n int, ids []int64) ([]int64, error) {
	rows, err := db.Pool.Query(ctx, `SELECT u.id FROM users u WHERE u.id > $2 AND `+usersWhere+` ORDER BY u.id LIMIT $3`, snapshot, after, n)
	if err != nil {
		return nil, fmt.Errorf("precompute: list users: %w: %w", setlist.ErrUnavailable, err)
	}
	defer rows.Close()
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

// batchRows is one batch's users and their reactions, its memory reused
// from batch to batch. Every reaction of the batch is in one flat slice, so
// what it keeps is the largest batch's total, not (as a slice kept per
// user slot would) the heaviest user ever seen in each of 2,048 slots,
// which grew with the shard.
type batchRows struct {
	ext    []setlist.UserID     // ext[i] is ids[i]'s external id ("" for a user without reactions)
	byUser [][]setlist.Reaction // byUser[i] is ids[i]'s reactions, a window on flat
	flat   []setlist.Reaction
	start  []int // user i's reactions are flat[start[i]:start[i+1]]
}

// read reads every reaction of the users ids (ascending) in one range scan
// of the reactions' primary key, grouped by user as
// postgres.DB.UserReactions returns them to serve's fold-in.
func (b *batchRows) read(ctx context.Context, db *postgres.DB, ids []int64) error {
	b.ext, b.flat, b.start = b.ext[:0], b.flat[:0], b.start[:0]
	// The range on r.user_id is what makes this one scan of the reactions'
	// primary key; ANY($3) then drops the users in it the batch does not
	// cover (created after the snapshot, or without reactions).
	rows, err := db.Pool.Query(ctx, `SELECT u.id, u.external_id, r.song_id, r.kind, r.weight, r.updated_at
		FROM reactions r JOIN users u ON u.id = r.user_id
		WHERE r.user_id BETWEEN $1 AND $2 AND r.user_id = ANY($3)
		ORDER BY r.user_id, r.song_id, r.kind`, ids[0], ids[len(ids)-1], ids)
	if err != nil {
		return fmt.Errorf("precompute: read reactions: %w: %w", setlist.ErrUnavailable, err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id         int64
			user, kind string
			song       int64
			weight     float32
			updated    time.Time
		)
		if err := rows.Scan(&id, &user, &song, &kind, &weight, &updated); err != nil {
			return fmt.Errorf("precompute: read reactions: %w", err)
		}
		if n := len(b.ext); n == 0 || ids[n-1] != id {
			// Users of the batch before this one without a reaction (they
			// lost every one since the id list) get an empty row.
			for len(b.ext) < len(ids) && ids[len(b.ext)] != id {
				b.addUser("")
			}
			if len(b.ext) == len(ids) {
				return fmt.Errorf("precompute: read reactions: user %d is not in the batch", id)
			}
			b.addUser(setlist.UserID(user))
		}
		b.flat = append(b.flat, setlist.Reaction{User: b.ext[len(b.ext)-1], Song: setlist.SongID(song), Kind: setlist.ReactionKind(kind),
			Weight: float64(weight), UpdatedAt: updated})
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("precompute: read reactions: %w: %w", setlist.ErrUnavailable, err)
	}
	for len(b.ext) < len(ids) {
		b.addUser("")
	}
	b.start = append(b.start, len(b.flat))
	b.byUser = b.byUser[:0]
	for i := range ids {
		b.byUser = append(b.byUser, b.flat[b.start[i]:b.start[i+1]:b.start[i+1]])
	}
	return nil
}

func (b *batchRows) addUser(u setlist.UserID) {
	b.ext = append(b.ext, u)
	b.start = append(b.start, len(b.flat))
}
