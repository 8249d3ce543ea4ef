package keyspace

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/model"
)

// Sharded publishing: the Kubernetes scale-out path (an Indexed Job, see
// docs/deploy.md#scale-out-precompute). The training side stages a version
// (Stage: items, popular, meta, no pointer switch); N shard workers each
// write their users' lists under it (WriteShard) and record themselves in
// the version's shard hash; the worker that completes the set switches the
// pointer (FinishShards) with the same compare-and-set script Publish uses.
// Until then readers never see the version, exactly as with Publish.
//
//	P:v{V}:{P}:shards   hash: shard index → user lists it wrote

// PrecomputeLease marks staged version v as wanted by its precompute: the
// sweep keeps a "precomputing" version while this key lives (its TTL is
// Publisher.PrecomputeLease, renewed by every shard batch).
func (k Keys) PrecomputeLease(v Version) string { return k.versionShared(v, "lease") }

// ShardsKey is the hash of the shards of version v that are done, in the
// slot of v's other shared records.
func (k Keys) ShardsKey(v Version) string { return k.versionShared(v, "shards") }

// Stage writes release r as version v (items, popular, r's user lists if
// any, meta last) and marks it precomputing, without switching the pointer:
// the user lists are written by WriteShard and the switch done by
// FinishShards. Publishes and clean-ups meanwhile leave it alone while its
// lease lives (PrecomputeLease); one never finished is deleted by the first
// clean-up after the lease runs out.
func (p *Publisher) Stage(ctx context.Context, v Version, r Release) (Report, error) {
	rep := Report{Version: v}
	if v <= 0 {
		return rep, fmt.Errorf("stage: version must be > 0, got %d: %w", v, setlist.ErrInvalid)
	}
	ptr, err := p.Pointers(ctx)
	if err != nil {
		return rep, fmt.Errorf("stage version %d: %w", v, err)
	}
	if v == ptr.Current || v == ptr.Previous {
		return rep, fmt.Errorf("stage version %d: it is already current or previous: %w", v, setlist.ErrConflict)
	}
	// The lease first: a sweep between the two sees a building version
	// (deleted as crashed, which nothing has written to yet), never a
	// precomputing one without its lease.
	if err := p.rdb.Set(ctx, p.keys.PrecomputeLease(v), "staged", p.lease()).Err(); err != nil {
		return rep, fmt.Errorf("stage version %d: lease: %w: %w", v, setlist.ErrUnavailable, err)
	}
	if err := p.rdb.HSet(ctx, p.keys.Versions(), versionString(v), statePrecomputing).Err(); err != nil {
		return rep, fmt.Errorf("stage version %d: mark precomputing: %w: %w", v, setlist.ErrUnavailable, err)
	}
	if err := p.write(ctx, v, r, &rep); err != nil {
		return rep, fmt.Errorf("stage version %d: %w", v, err)
	}
	return rep, nil
}

// WriteShard SETs users lists (list(i) for 0 ≤ i < users) under staged
// version v and records shard as done with the count written. Writing a
// shard again (a retried pod) rewrites the same keys and the same record.
// It returns how many shards are done. It is ShardWriter for lists that
// are already at hand.
func (p *Publisher) WriteShard(ctx context.Context, v Version, shard, users int, list func(i int) (setlist.UserID, []model.Rec)) (written, done int, err error) {
	w := p.NewShardWriter(v, shard)
	if err := w.Write(ctx, users, list); err != nil {
		return w.Written(), 0, err
	}
	return w.Finish(ctx)
}

// ShardWriter writes one shard's lists under a staged version as they are
// computed, batch by batch, so a precompute holds one batch of users, never
// its whole shard (issue 25 item 5), then records the shard.
//
// Before every pipelined batch it re-checks that the version is still
// staged and renews its lease, and Finish records the shard with a script
// that checks again, so a version deleted under it (its lease ran out, or an
// operator removed it) stops the shard with ErrConflict instead of leaving
// lists no version owns: the batch written since the last check is
// unlinked.
type ShardWriter struct {
	p       *Publisher
	v       Version
	shard   int
	written int
	checked bool
	last    []string // keys of the batch written since the last check
}

// NewShardWriter starts shard of staged version v.
func (p *Publisher) NewShardWriter(v Version, shard int) *ShardWriter {
	return &ShardWriter{p: p, v: v, shard: shard}
}

// Written is the number of lists Redis acknowledged so far.
func (w *ShardWriter) Written() int { return w.written }

// Write SETs users more lists, list(i) for 0 ≤ i < users, in pipelined
// batches of the Publisher's BatchSize.
func (w *ShardWriter) Write(ctx context.Context, users int, list func(i int) (setlist.UserID, []model.Rec)) error {
	p := w.p
	batch := max(p.BatchSize, 1)
	for lo := 0; lo < users; lo += batch {
		if err := w.check(ctx); err != nil {
			return err
		}
		pipe := p.rdb.Pipeline()
		w.last = w.last[:0]
		for i := lo; i < min(lo+batch, users); i++ {
			u, recs := list(i)
			k := p.keys.Recs(w.v, u)
			w.last = append(w.last, k)
			pipe.Set(ctx, k, model.EncodeRecs(recs), 0)
		}
		cmds, err := pipe.Exec(ctx)
		if err != nil {
			return fmt.Errorf("write shard %d of version %d: %w: %w", w.shard, w.v, setlist.ErrUnavailable, err)
		}
		ok := 0
		for _, c := range cmds {
			if c.(*redis.StatusCmd).Val() == "OK" {
				ok++
			}
		}
		w.written += ok
		if ok != len(cmds) {
			return fmt.Errorf("write shard %d of version %d: %d of %d lists acknowledged", w.shard, w.v, ok, len(cmds))
		}
		if p.OnBatch != nil {
			p.OnBatch(w.written)
		}
	}
	return nil
}

// check fails with ErrConflict, unlinking the batch written since the last
// check, unless the version is still staged; it renews the lease.
func (w *ShardWriter) check(ctx context.Context) error {
	w.checked = true
	if err := w.p.checkStaged(ctx, w.v); err != nil {
		if len(w.last) > 0 {
			_ = w.p.unlinkEach(ctx, w.last)
		}
		return fmt.Errorf("write shard %d of version %d: %w", w.shard, w.v, err)
	}
	return nil
}

// Finish records the shard as done with the count written and returns it
// and how many shards are done.
func (w *ShardWriter) Finish(ctx context.Context) (written, done int, err error) {
	p := w.p
	if !w.checked {
		// An empty shard still checks (and renews the lease of) its version.
		if err := w.check(ctx); err != nil {
			return w.written, 0, err
		}
	}
	n, err := recordShardScript.Run(ctx, p.rdb, []string{p.keys.Versions(), p.keys.ShardsKey(w.v)},
		versionString(w.v), strconv.Itoa(w.shard), w.written).Int()
	if err != nil {
		if strings.HasPrefix(err.Error(), "SETLIST_CONFLICT") {
			_ = p.unlinkEach(ctx, w.last)
			return w.written, 0, fmt.Errorf("record shard %d of version %d: %s: %w", w.shard, w.v, strings.TrimPrefix(err.Error(), "SETLIST_CONFLICT "), setlist.ErrConflict)
		}
		return w.written, 0, fmt.Errorf("record shard %d of version %d: %w: %w", w.shard, w.v, setlist.ErrUnavailable, err)
	}
	return w.written, n, nil
}

// recordShardScript records a shard as done only while its version is
// still staged, and returns how many shards are.
var recordShardScript = redis.NewScript(`
local state = redis.call('HGET', KEYS[1], ARGV[1])
if state ~= 'precomputing' and state ~= 'building' then
  return redis.error_reply('SETLIST_CONFLICT version ' .. ARGV[1] .. ' is no longer staged (state "' .. tostring(state) .. '")')
end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
return redis.call('HLEN', KEYS[2])
`)

// checkStaged fails with ErrConflict unless v is staged (precomputing, or
// building when staged by an older binary) and renews its lease.
func (p *Publisher) checkStaged(ctx context.Context, v Version) error {
	state, err := p.rdb.HGet(ctx, p.keys.Versions(), versionString(v)).Result()
	if errors.Is(err, redis.Nil) || (err == nil && state != statePrecomputing && state != stateBuilding) {
		return fmt.Errorf("the version is not staged (state %q; deleted by a clean-up after its lease ran out?): %w", state, setlist.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("%w: %w", setlist.ErrUnavailable, err)
	}
	if err := p.rdb.Expire(ctx, p.keys.PrecomputeLease(v), p.lease()).Err(); err != nil {
		return fmt.Errorf("renew the lease: %w: %w", setlist.ErrUnavailable, err)
	}
	return nil
}

func (p *Publisher) lease() time.Duration {
	if p.PrecomputeLease > 0 {
		return p.PrecomputeLease
	}
	return DefaultPrecomputeLease
}

// unlinkEach removes keys one command each (they span slots).
func (p *Publisher) unlinkEach(ctx context.Context, keys []string) error {
	pipe := p.rdb.Pipeline()
	for _, k := range keys {
		pipe.Unlink(ctx, k)
	}
	_, err := pipe.Exec(ctx)
	return err
}

// FinishShards switches the pointer to staged version v once all of shards
// 0..shards-1 are recorded; before that it does nothing and returns
// switched = false. The meta is rewritten first with the total user count
// and key count. When several workers finish at once, one switches and the
// others find v already current, which is success too.
func (p *Publisher) FinishShards(ctx context.Context, v Version, shards int) (rep Report, switched bool, err error) {
	rep.Version = v
	recorded, err := p.rdb.HGetAll(ctx, p.keys.ShardsKey(v)).Result()
	if err != nil {
		return rep, false, fmt.Errorf("finish version %d: %w: %w", v, setlist.ErrUnavailable, err)
	}
	var missing []int
	users := 0
	for i := 0; i < shards; i++ {
		s, ok := recorded[strconv.Itoa(i)]
		if !ok {
			missing = append(missing, i)
			continue
		}
		n, _ := strconv.Atoi(s)
		users += n
	}
	if len(missing) > 0 {
		return rep, false, nil
	}
	if len(recorded) != shards {
		keys := make([]string, 0, len(recorded))
		for k := range recorded {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		return rep, false, fmt.Errorf("finish version %d: shards %v recorded, want 0..%d: were two shard counts used?", v, keys, shards-1)
	}
	ptr, err := p.Pointers(ctx)
	if err != nil {
		return rep, false, fmt.Errorf("finish version %d: %w", v, err)
	}
	if ptr.Current == v {
		return rep, true, nil // another worker switched
	}
	meta, err := p.Meta(ctx, v)
	if err != nil {
		return rep, false, fmt.Errorf("finish version %d: %w", v, err)
	}
	// Meta counted items, popular, any staged lists and itself; add the
	// shards' lists and the shard hash.
	meta.Users += users
	meta.Keys += users + 1
	b, err := json.Marshal(meta)
	if err != nil {
		return rep, false, fmt.Errorf("finish version %d: encode meta: %w", v, err)
	}
	if err := p.rdb.Set(ctx, p.keys.Meta(v), b, 0).Err(); err != nil {
		return rep, false, fmt.Errorf("finish version %d: write meta: %w: %w", v, setlist.ErrUnavailable, err)
	}
	rep.Users, rep.Keys = meta.Users, meta.Keys
	if err := p.switchTo(ctx, ptr.Current, v); err != nil {
		if now, perr := p.Pointers(ctx); perr == nil && now.Current == v {
			return rep, true, nil
		}
		return rep, false, fmt.Errorf("finish version %d: %w", v, err)
	}
	// The version that left previous is retired by the next Publish's
	// clean-up, as after any switch.
	rep.Previous = ptr.Current
	return rep, true, nil
}
