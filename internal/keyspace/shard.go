package keyspace

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"

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

// ShardsKey is the hash of the shards of version v that are done, in the
// slot of v's other shared records.
func (k Keys) ShardsKey(v Version) string { return k.versionShared(v, "shards") }

// Stage writes release r as version v (items, popular, r's user lists if
// any, meta last) and marks it building, without switching the pointer: the
// user lists are written by WriteShard and the switch done by FinishShards.
// Like Publish, a version that is never finished is deleted by the next
// Publish's clean-up.
func (p *Publisher) Stage(ctx context.Context, v Version, r Release) (Report, error) {
	rep := Report{Version: v}
	if v <= 0 {
		return rep, fmt.Errorf("stage: version must be > 0, got %d: %w", v, setlist.ErrInvalid)
	}
	if err := p.adopt(ctx); err != nil {
		return rep, fmt.Errorf("stage version %d: %w", v, err)
	}
	ptr, err := p.Pointers(ctx)
	if err != nil {
		return rep, fmt.Errorf("stage version %d: %w", v, err)
	}
	if v == ptr.Current || v == ptr.Previous {
		return rep, fmt.Errorf("stage version %d: it is already current or previous: %w", v, setlist.ErrConflict)
	}
	if err := p.rdb.HSet(ctx, p.keys.Versions(), versionString(v), stateBuilding).Err(); err != nil {
		return rep, fmt.Errorf("stage version %d: mark building: %w: %w", v, setlist.ErrUnavailable, err)
	}
	if err := p.write(ctx, v, r, &rep); err != nil {
		return rep, fmt.Errorf("stage version %d: %w", v, err)
	}
	return rep, nil
}

// WriteShard SETs users lists (list(i) for 0 ≤ i < users) under staged
// version v and records shard as done with the count written. Writing a
// shard again (a retried pod) rewrites the same keys and the same record.
// It returns how many shards are done.
func (p *Publisher) WriteShard(ctx context.Context, v Version, shard, users int, list func(i int) (setlist.UserID, []model.Rec)) (written, done int, err error) {
	state, err := p.rdb.HGet(ctx, p.keys.Versions(), versionString(v)).Result()
	if err == redis.Nil || (err == nil && state != stateBuilding) {
		return 0, 0, fmt.Errorf("write shard %d of version %d: the version is not staged (state %q): %w", shard, v, state, setlist.ErrConflict)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("write shard %d of version %d: %w: %w", shard, v, setlist.ErrUnavailable, err)
	}
	batch := max(p.BatchSize, 1)
	for lo := 0; lo < users; lo += batch {
		pipe := p.rdb.Pipeline()
		for i := lo; i < min(lo+batch, users); i++ {
			u, recs := list(i)
			pipe.Set(ctx, p.keys.Recs(v, u), model.EncodeRecs(recs), 0)
		}
		cmds, err := pipe.Exec(ctx)
		if err != nil {
			return written, 0, fmt.Errorf("write shard %d of version %d: %w: %w", shard, v, setlist.ErrUnavailable, err)
		}
		for _, c := range cmds {
			if c.(*redis.StatusCmd).Val() == "OK" {
				written++
			}
		}
		if p.OnBatch != nil {
			p.OnBatch(written)
		}
	}
	if written != users {
		return written, 0, fmt.Errorf("write shard %d of version %d: %d of %d lists acknowledged", shard, v, written, users)
	}
	pipe := p.rdb.TxPipeline()
	pipe.HSet(ctx, p.keys.ShardsKey(v), strconv.Itoa(shard), written)
	n := pipe.HLen(ctx, p.keys.ShardsKey(v))
	if _, err := pipe.Exec(ctx); err != nil {
		return written, 0, fmt.Errorf("record shard %d of version %d: %w: %w", shard, v, setlist.ErrUnavailable, err)
	}
	return written, int(n.Val()), nil
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
