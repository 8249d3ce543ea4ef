package keyspace

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/model"
)

// Version states in the P:versions hash. A version is "building" from before
// its first key is written until the pointer switch names it, and
// "published" from then until it drops out of current and previous, when its
// keys get a grace TTL and its field is removed.
//
// A version written by PublishHeld is "held": complete and counted like a
// published one, but never switched to. It is a challenger waiting for an
// experiment (batch experiment start), so the sweep keeps it while it is
// newer than current; once a newer version is current it is retired like
// any version that is no longer served.
//
// A version staged for the sharded precompute (Stage) is "precomputing"
// from Stage until its last shard switches the pointer: its shards may be
// written over hours by a Job started later, so the sweep leaves it alone
// while its lease key lives (issue 25 item 4: a publish used to delete it
// as a crashed build). Each shard batch renews the lease; a version whose
// lease ran out is abandoned and deleted like a crashed build.
const (
	stateBuilding     = "building"
	statePrecomputing = "precomputing"
	statePublished    = "published"
	stateHeld         = "held"
)

// Defaults for a Publisher; measured in docs/BENCHMARKS.md.
const (
	// DefaultBatchSize is how many SETs go in one pipelined round trip: past
	// ~1k the round trip is amortised and bigger batches only cost memory.
	DefaultBatchSize = 2000
	// DefaultGrace is how long a version that drops out of previous stays
	// readable, so a reader that resolved the pointer just before a switch
	// finishes its reads.
	DefaultGrace = time.Hour
	// DefaultPrecomputeLease is how long a staged version is kept for its
	// precompute without a shard writing to it: the Job is started by hand
	// or by a later step (docs/deploy.md#scale-out-precompute), and a
	// nightly retrain between the two must not delete it.
	DefaultPrecomputeLease = 24 * time.Hour
)

// ErrConflict is returned (wrapping setlist.ErrConflict) when the pointer
// changed under a switch: another publisher or rollback ran concurrently.
var errSwitchConflict = fmt.Errorf("pointer changed during the switch (another publish or rollback ran): %w", setlist.ErrConflict)

// Publisher writes model versions and moves the pointer. One publisher per
// prefix should run at a time (the batch holds a lock for that); if two do,
// the compare-and-set switch makes the second fail instead of silently
// replacing the first.
type Publisher struct {
	rdb  redis.UniversalClient
	keys Keys
	// BatchSize is the number of commands per pipelined round trip.
	BatchSize int
	// Grace is how long a version that leaves previous stays readable.
	Grace time.Duration
	// PrecomputeLease is how long a staged version survives the sweep
	// without a shard renewing it (0: DefaultPrecomputeLease).
	PrecomputeLease time.Duration
	// OnBatch, if set, is called after each pipelined batch of user lists
	// with the number written so far (progress bars; tests cancel with it).
	OnBatch func(written int)
}

// NewPublisher returns a publisher with the default batch size and grace.
func NewPublisher(rdb redis.UniversalClient, keys Keys) *Publisher {
	return &Publisher{rdb: rdb, keys: keys, BatchSize: DefaultBatchSize, Grace: DefaultGrace, PrecomputeLease: DefaultPrecomputeLease}
}

// Release is everything one version consists of.
type Release struct {
	// Meta is stored as JSON; Publish sets its Version, Users and Keys.
	Meta model.Meta
	// Items is model.EncodeItems' output: the item side serve folds in with.
	Items []byte
	// Popular is the list for users with no usable reactions.
	Popular []model.Rec
	// Users is the number of user lists; List(i) returns the i-th user's id
	// and top-K for 0 ≤ i < Users. It is a function so a million users' lists
	// need not be copied into one more structure before writing.
	// The returned slice is read only until the next call, so List may
	// reuse one buffer.
	Users int
	List  func(i int) (setlist.UserID, []model.Rec)
	// Progress, if set, is told the number of user lists written after each
	// pipelined batch.
	Progress func(written int)
}

// Report says what a publish did.
type Report struct {
	Version  Version
	Previous Version   // the version now kept for rollback; 0 if none
	Keys     int       // keys written, counted from Redis's replies
	Bytes    int64     // key and value bytes written
	Users    int       // user lists written
	Cleaned  []Version // versions left building by a crashed publish, deleted first
}

// Cleanup says what Cleanup did.
type Cleanup struct {
	Retired []Version // published versions that left previous: keys given the grace TTL
	Deleted []Version // versions left building by a crashed publish
}

// Pointers are the versions readers use and the one kept for rollback (0
// when unset).
type Pointers struct {
	Current, Previous Version
}

// Pointers reads the current and previous versions.
func (p *Publisher) Pointers(ctx context.Context) (Pointers, error) {
	return readPointers(ctx, p.rdb, p.keys)
}

// readPointers reads both pointers in one pipeline of GETs.
func readPointers(ctx context.Context, rdb redis.UniversalClient, keys Keys) (ps Pointers, err error) {
	cur := redis.NewStringCmd(ctx, "get", keys.Current())
	prev := redis.NewStringCmd(ctx, "get", keys.Previous())
	_, err = rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		_ = pipe.Process(ctx, cur)
		_ = pipe.Process(ctx, prev)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return Pointers{}, fmt.Errorf("read version pointers: %w: %w", setlist.ErrUnavailable, err)
	}
	for _, x := range []struct {
		cmd *redis.StringCmd
		dst *Version
	}{{cur, &ps.Current}, {prev, &ps.Previous}} {
		s, err := x.cmd.Result()
		if errors.Is(err, redis.Nil) || s == "" {
			continue
		}
		v, err := ParseVersion(s)
		if err != nil {
			return Pointers{}, fmt.Errorf("read version pointers: %q is not a version", s)
		}
		*x.dst = v
	}
	return ps, nil
}

// Meta reads version v's metadata.
func (p *Publisher) Meta(ctx context.Context, v Version) (model.Meta, error) {
	b, err := p.rdb.Get(ctx, p.keys.Meta(v)).Bytes()
	if errors.Is(err, redis.Nil) {
		return model.Meta{}, fmt.Errorf("meta of version %d: %w", v, setlist.ErrNotFound)
	}
	if err != nil {
		return model.Meta{}, fmt.Errorf("meta of version %d: %w: %w", v, setlist.ErrUnavailable, err)
	}
	var m model.Meta
	if err := json.Unmarshal(b, &m); err != nil {
		return model.Meta{}, fmt.Errorf("meta of version %d: %w", v, err)
	}
	return m, nil
}

// Publish writes release r as version v and, only once every key is written
// and counted, switches the pointer to it:
//
//  1. Versions left "building" by a crashed publish are deleted, and
//     published versions that are neither current nor previous get the
//     grace TTL (a retire that failed last time).
//  2. v is marked building; items, popular and every user's list are SET
//     in pipelined batches, counting the OK replies; meta is written last.
//  3. If the count of user lists differs from r.Users nothing is switched.
//  4. A Lua script checks that current is still what step 1 read, that v's
//     meta exists and v is still building, then sets previous to the old
//     current, current to v, marks v published and PUBLISHes "version v".
//
// The version that left previous is not touched here: Cleanup retires it
// once the new version is live, off the path that makes it live.
//
// Cancelling ctx before step 4 leaves the pointer untouched; the partial keys
// are deleted by the next publish. Keys of a version are never written after
// the switch, so a reader that resolves current once and then reads only
// that version's keys never mixes versions.
func (p *Publisher) Publish(ctx context.Context, v Version, r Release) (Report, error) {
	return p.publish(ctx, v, r, false)
}

// PublishHeld writes release r as version v exactly as Publish does, every
// key written and counted, but leaves the pointer where it is and marks v
// held: a complete version no reader is sent to until an experiment routes a
// share of users to it (CheckChallenger accepts it) or it is promoted.
func (p *Publisher) PublishHeld(ctx context.Context, v Version, r Release) (Report, error) {
	return p.publish(ctx, v, r, true)
}

func (p *Publisher) publish(ctx context.Context, v Version, r Release, hold bool) (Report, error) {
	rep := Report{Version: v}
	if v <= 0 {
		return rep, fmt.Errorf("publish: version must be > 0, got %d: %w", v, setlist.ErrInvalid)
	}
	ptr, err := p.Pointers(ctx)
	if err != nil {
		return rep, fmt.Errorf("publish version %d: %w", v, err)
	}
	if v == ptr.Current || v == ptr.Previous {
		return rep, fmt.Errorf("publish version %d: it is already current or previous: %w", v, setlist.ErrConflict)
	}
	if rep.Cleaned, _, err = p.sweep(ctx, ptr, v, false); err != nil {
		return rep, fmt.Errorf("publish version %d: clean up: %w", v, err)
	}
	if err := p.rdb.HSet(ctx, p.keys.Versions(), versionString(v), stateBuilding).Err(); err != nil {
		return rep, fmt.Errorf("publish version %d: mark building: %w: %w", v, setlist.ErrUnavailable, err)
	}
	if err := p.write(ctx, v, r, &rep); err != nil {
		return rep, fmt.Errorf("publish version %d: %w", v, err)
	}
	if rep.Users != r.Users {
		return rep, fmt.Errorf("publish version %d: wrote %d user lists, expected %d; pointer not switched", v, rep.Users, r.Users)
	}
	if hold {
		if err := p.markHeld(ctx, v); err != nil {
			return rep, fmt.Errorf("publish version %d: %w", v, err)
		}
		rep.Previous = ptr.Previous
		return rep, nil
	}
	if err := p.switchTo(ctx, ptr.Current, v); err != nil {
		return rep, fmt.Errorf("publish version %d: %w", v, err)
	}
	rep.Previous = ptr.Current
	return rep, nil
}

// Cleanup retires every published version that is neither current nor
// previous (its keys get the grace TTL, so readers that resolved it just
// before a switch finish) and deletes versions a crashed publish left
// building. It SCANs the key space once per such version, which is why it
// is separate from Publish: the new version is live before this starts.
// Call it only while holding the lock that serialises publishes: it cannot
// tell a crashed build from one in progress.
func (p *Publisher) Cleanup(ctx context.Context) (Cleanup, error) {
	ptr, err := p.Pointers(ctx)
	if err != nil {
		return Cleanup{}, fmt.Errorf("clean up versions: %w", err)
	}
	var c Cleanup
	c.Deleted, c.Retired, err = p.sweep(ctx, ptr, 0, true)
	if err != nil {
		return c, fmt.Errorf("clean up versions: %w", err)
	}
	return c, nil
}

// write SETs every key of v, meta last, counting replies into rep.
func (p *Publisher) write(ctx context.Context, v Version, r Release, rep *Report) error {
	batch := max(p.BatchSize, 1)
	pipe := p.rdb.Pipeline()
	var arena []byte
	set := func(key string, val []byte) {
		pipe.Set(ctx, key, val, 0)
		rep.Bytes += int64(len(key) + len(val))
	}
	flush := func() (int, error) {
		cmds, err := pipe.Exec(ctx)
		if err != nil {
			return 0, fmt.Errorf("write keys: %w", err)
		}
		ok := 0
		for _, c := range cmds {
			if c.(*redis.StatusCmd).Val() == "OK" {
				ok++
			}
		}
		rep.Keys += ok
		return ok, nil
	}
	set(p.keys.Items(v), r.Items)
	set(p.keys.Popular(v), model.EncodeRecs(r.Popular))
	if n, err := flush(); err != nil {
		return err
	} else if n != 2 {
		return fmt.Errorf("write items and popular: %d of 2 acknowledged", n)
	}
	for lo := 0; lo < r.Users; lo += batch {
		hi := min(lo+batch, r.Users)
		// One arena per batch: go-redis keeps the value slices until Exec.
		arena = make([]byte, 0, cap(arena))
		for i := lo; i < hi; i++ {
			u, recs := r.List(i)
			start := len(arena)
			arena = model.AppendRecs(arena, recs)
			set(p.keys.Recs(v, u), arena[start:len(arena):len(arena)])
		}
		n, err := flush()
		if err != nil {
			return err
		}
		rep.Users += n
		if r.Progress != nil {
			r.Progress(rep.Users)
		}
		if p.OnBatch != nil {
			p.OnBatch(rep.Users)
		}
	}
	meta := r.Meta
	meta.Version, meta.Users, meta.Keys = v, rep.Users, rep.Keys+1
	meta.KeyLayout = KeyLayout
	b, err := json.Marshal(meta)
	if err != nil {
		return fmt.Errorf("encode meta: %w", err)
	}
	set(p.keys.Meta(v), b)
	if n, err := flush(); err != nil {
		return err
	} else if n != 1 {
		return fmt.Errorf("write meta: not acknowledged")
	}
	return nil
}

// switchScript moves the pointer: compare-and-set on current, and only to a
// version whose meta (written last) exists and that is still being built.
var switchScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1]) or ''
if cur ~= ARGV[1] then
  return redis.error_reply('SETLIST_CONFLICT current is "' .. cur .. '", expected "' .. ARGV[1] .. '"')
end
if redis.call('EXISTS', KEYS[4]) == 0 then
  return redis.error_reply('SETLIST_INCOMPLETE meta of version ' .. ARGV[2] .. ' is missing')
end
local state = redis.call('HGET', KEYS[3], ARGV[2])
if state ~= 'building' and state ~= 'precomputing' then
  return redis.error_reply('SETLIST_INCOMPLETE version ' .. ARGV[2] .. ' is not being built (cleaned up by another publisher?)')
end
if cur ~= '' then redis.call('SET', KEYS[2], cur) end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('HSET', KEYS[3], ARGV[2], 'published')
redis.call('PUBLISH', ARGV[3], 'version ' .. ARGV[2])
return 1
`)

// holdScript marks a complete version held: only one whose meta (written
// last) exists and that is still being built, as the switch checks.
var holdScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[2]) == 0 then
  return redis.error_reply('SETLIST_INCOMPLETE meta of version ' .. ARGV[1] .. ' is missing')
end
if redis.call('HGET', KEYS[1], ARGV[1]) ~= 'building' then
  return redis.error_reply('SETLIST_INCOMPLETE version ' .. ARGV[1] .. ' is not being built (cleaned up by another publisher?)')
end
redis.call('HSET', KEYS[1], ARGV[1], 'held')
return 1
`)

func (p *Publisher) markHeld(ctx context.Context, v Version) error {
	err := holdScript.Run(ctx, p.rdb, []string{p.keys.Versions(), p.keys.Meta(v)}, versionString(v)).Err()
	return scriptError("mark held", err)
}

func (p *Publisher) switchTo(ctx context.Context, expected, v Version) error {
	err := switchScript.Run(ctx, p.rdb,
		[]string{p.keys.Current(), p.keys.Previous(), p.keys.Versions(), p.keys.Meta(v)},
		pointerString(expected), versionString(v), p.keys.Events()).Err()
	return scriptError("switch pointer", err)
}

// rollbackScript swaps current and previous: compare-and-set on both, and
// only to a version whose meta still exists.
var rollbackScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1]) or ''
local prev = redis.call('GET', KEYS[2]) or ''
if cur ~= ARGV[1] or prev ~= ARGV[2] then
  return redis.error_reply('SETLIST_CONFLICT pointers are "' .. cur .. '"/"' .. prev .. '", expected "' .. ARGV[1] .. '"/"' .. ARGV[2] .. '"')
end
if redis.call('EXISTS', KEYS[3]) == 0 then
  return redis.error_reply('SETLIST_INCOMPLETE meta of version ' .. prev .. ' is missing')
end
redis.call('SET', KEYS[1], prev)
redis.call('SET', KEYS[2], cur)
redis.call('PUBLISH', ARGV[3], 'version ' .. prev)
return 1
`)

// Rollback swaps current and previous atomically and announces the restored
// version: readers go back to the previous version, and the rolled-back one
// becomes previous, so a second Rollback rolls forward again. Nothing is
// deleted. It returns the pointers after the swap.
func (p *Publisher) Rollback(ctx context.Context) (Pointers, error) {
	ptr, err := p.Pointers(ctx)
	if err != nil {
		return Pointers{}, fmt.Errorf("rollback: %w", err)
	}
	if ptr.Current == 0 || ptr.Previous == 0 {
		return Pointers{}, fmt.Errorf("rollback: no previous version to roll back to (current %d): %w", ptr.Current, setlist.ErrNotFound)
	}
	err = rollbackScript.Run(ctx, p.rdb,
		[]string{p.keys.Current(), p.keys.Previous(), p.keys.Meta(ptr.Previous)},
		versionString(ptr.Current), versionString(ptr.Previous), p.keys.Events()).Err()
	if err := scriptError("rollback", err); err != nil {
		return Pointers{}, err
	}
	return Pointers{Current: ptr.Previous, Previous: ptr.Current}, nil
}

func scriptError(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case strings.HasPrefix(err.Error(), "SETLIST_CONFLICT"):
		return fmt.Errorf("%s: %s: %w", op, strings.TrimPrefix(err.Error(), "SETLIST_CONFLICT "), errSwitchConflict)
	case strings.HasPrefix(err.Error(), "SETLIST_INCOMPLETE"):
		return fmt.Errorf("%s: %s", op, strings.TrimPrefix(err.Error(), "SETLIST_INCOMPLETE "))
	default:
		return fmt.Errorf("%s: %w: %w", op, setlist.ErrUnavailable, err)
	}
}

// sweep deletes versions a crashed publish left building (and staged
// versions whose precompute lease ran out) and, with
// retire, gives published versions that are neither current nor previous
// the grace TTL, never touching current, previous or keep.
func (p *Publisher) sweep(ctx context.Context, ptr Pointers, keep Version, retire bool) (deleted, retired []Version, err error) {
	states, err := p.rdb.HGetAll(ctx, p.keys.Versions()).Result()
	if err != nil {
		return nil, nil, fmt.Errorf("list versions: %w: %w", setlist.ErrUnavailable, err)
	}
	// A running experiment's challenger is served to its share of users:
	// it stays however many publishes happen meanwhile. An unreadable
	// routing stops the sweep rather than risk retiring it.
	exp, running, err := p.Experiment(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("list versions: %w", err)
	}
	for s, state := range states {
		v, err := ParseVersion(s)
		if err != nil || v == ptr.Current || v == ptr.Previous || v == keep || (running && v == Version(exp.Challenger)) {
			continue
		}
		switch {
		case state == stateHeld && v > ptr.Current:
			// A challenger newer than what is served: kept for an experiment.
		case state == statePrecomputing:
			live, err := p.rdb.Exists(ctx, p.keys.PrecomputeLease(v)).Result()
			if err != nil {
				return deleted, retired, fmt.Errorf("lease of staged version %d: %w: %w", v, setlist.ErrUnavailable, err)
			}
			if live > 0 {
				continue // its precompute may be running or still to start
			}
			if err := p.deleteVersion(ctx, v); err != nil { // abandoned
				return deleted, retired, err
			}
			deleted = append(deleted, v)
		case state == stateBuilding:
			if err := p.deleteVersion(ctx, v); err != nil {
				return deleted, retired, err
			}
			deleted = append(deleted, v)
		case retire:
			if err := p.retire(ctx, v); err != nil {
				return deleted, retired, err
			}
			retired = append(retired, v)
		}
	}
	return deleted, retired, nil
}

// deleteVersion UNLINKs every key of a version nobody reads (it never
// became current).
func (p *Publisher) deleteVersion(ctx context.Context, v Version) error {
	err := p.eachKeyBatch(ctx, v, func(ctx context.Context, pipe redis.Pipeliner, keys []string) {
		for _, k := range keys {
			pipe.Unlink(ctx, k)
		}
	})
	if err != nil {
		return fmt.Errorf("delete version %d: %w", v, err)
	}
	if err := p.rdb.HDel(ctx, p.keys.Versions(), versionString(v)).Err(); err != nil {
		return fmt.Errorf("delete version %d: %w: %w", v, setlist.ErrUnavailable, err)
	}
	return nil
}

// retire gives every key of v the grace TTL instead of deleting it: a reader
// that resolved the pointer to v just before it moved still finds its keys.
func (p *Publisher) retire(ctx context.Context, v Version) error {
	grace := p.Grace
	if grace <= 0 {
		grace = DefaultGrace
	}
	err := p.eachKeyBatch(ctx, v, func(ctx context.Context, pipe redis.Pipeliner, keys []string) {
		for _, k := range keys {
			pipe.Expire(ctx, k, grace)
		}
	})
	if err != nil {
		return fmt.Errorf("retire version %d: %w", v, err)
	}
	if err := p.rdb.HDel(ctx, p.keys.Versions(), versionString(v)).Err(); err != nil {
		return fmt.Errorf("retire version %d: %w: %w", v, setlist.ErrUnavailable, err)
	}
	return nil
}

// eachKeyBatch SCANs v's keys on every master, concurrently, and applies
// fn to them in pipelined batches on the master that holds them. Commands
// take one key each: a master's keys span many slots.
func (p *Publisher) eachKeyBatch(ctx context.Context, v Version, fn func(context.Context, redis.Pipeliner, []string)) error {
	patterns := []string{globEscape(p.keys.VersionPrefix(v)) + "*"}
	batch := max(p.BatchSize, 1)
	return ForEachMaster(ctx, p.rdb, func(ctx context.Context, node *redis.Client) error {
		for _, pattern := range patterns {
			iter := node.Scan(ctx, 0, pattern, scanCount).Iterator()
			keys := make([]string, 0, batch)
			flush := func() error {
				if len(keys) == 0 {
					return nil
				}
				pipe := node.Pipeline()
				fn(ctx, pipe, keys)
				_, err := pipe.Exec(ctx)
				keys = keys[:0]
				if err != nil {
					return fmt.Errorf("%s: %w: %w", node.Options().Addr, setlist.ErrUnavailable, err)
				}
				return nil
			}
			for iter.Next(ctx) {
				keys = append(keys, iter.Val())
				if len(keys) == batch {
					if err := flush(); err != nil {
						return err
					}
				}
			}
			if err := iter.Err(); err != nil {
				return fmt.Errorf("scan keys on %s: %w: %w", node.Options().Addr, setlist.ErrUnavailable, err)
			}
			if err := flush(); err != nil {
				return err
			}
		}
		return nil
	})
}

// scanCount is SCAN's COUNT, the keys Redis examines per call (not the
// matches it returns): a version is a small part of a big key space (the
// other versions, other prefixes), so a small COUNT costs a round trip per
// few keys skipped. 10,000 keys take about a millisecond of Redis's time.
const scanCount = 10000

// ForEachMaster calls fn with the one server of a single-node client, or
// concurrently with every master of a cluster: SCAN sees one node's keys.
func ForEachMaster(ctx context.Context, rdb redis.UniversalClient, fn func(context.Context, *redis.Client) error) error {
	switch c := rdb.(type) {
	case *redis.ClusterClient:
		return c.ForEachMaster(ctx, fn)
	case *redis.Client:
		return fn(ctx, c)
	default:
		return fmt.Errorf("redis client %T: want *redis.Client or *redis.ClusterClient", rdb)
	}
}

// globEscape quotes the characters SCAN MATCH treats specially.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

func pointerString(v Version) string {
	if v == 0 {
		return ""
	}
	return versionString(v)
}
