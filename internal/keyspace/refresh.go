package keyspace

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/model"
)

// Refresh is an incremental update of a published version (batch refresh):
// songs folded in after training, and the stored lists they enter. Unlike
// a publish it writes into a live version, so each write must be whole on
// its own: one user's list is one SET (a reader sees the old list or the
// new one), and the added songs become visible to serve at once, with the
// count of refreshes, by one script.
type Refresh struct {
	// Added is model.EncodeAdded of every song the version has gained so
	// far (it replaces the record; songs of earlier refreshes included).
	Added []byte
	// Users is the number of lists to read; User(i) names the i-th.
	Users int
	User  func(i int) setlist.UserID
	// Merge returns user i's new list given the stored one, and whether it
	// differs (only changed lists are written). It is called with the
	// stored list of every user that has one, in order; old is read only.
	Merge func(i int, old []model.Rec) (updated []model.Rec, changed bool)
	// Progress, if set, is told the number of lists read after each batch.
	Progress func(read int)
}

// RefreshReport says what a refresh wrote.
type RefreshReport struct {
	Read    int   // stored lists read
	Updated int   // lists rewritten (acknowledged)
	Keys    int   // keys written in all, the added record included
	Bytes   int64 // key and value bytes written
	// Refreshes is the version's refresh count after this one (0: nothing
	// was written).
	Refreshes int64
}

// ApplyRefresh writes r into version v, which must be published (its meta
// exists): it reads the stored lists in pipelined batches, rewrites those
// Merge changes (SET XX KEEPTTL: a list that vanished, a version retired
// meanwhile, is not recreated, and a retiring version keeps its TTL), then
// one script on the version's slot checks the meta again, SETs the added
// record, INCRs the refresh count and PUBLISHes "version V" so every serve
// replica reloads the version's items and drops its near cache. The added
// record goes last: a refresh killed before it leaves the songs unrecorded,
// and the next refresh folds them in and merges them again (a merge of a
// song already in a list gives the same list). With nothing changed and no
// record, nothing is written.
//
// It must run under the training lock, as a publish does: a refresh and a
// publish of another version would otherwise race on which lists are live.
func (p *Publisher) ApplyRefresh(ctx context.Context, v Version, r Refresh) (RefreshReport, error) {
	var rep RefreshReport
	if _, err := p.Meta(ctx, v); err != nil {
		return rep, fmt.Errorf("refresh version %d: %w", v, err)
	}
	keys := p.keys
	batch := max(p.BatchSize, 1)
	for lo := 0; lo < r.Users; lo += batch {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		hi := min(lo+batch, r.Users)
		gets, err := p.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
			for i := lo; i < hi; i++ {
				pipe.Get(ctx, keys.Recs(v, r.User(i)))
			}
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return rep, fmt.Errorf("refresh version %d: read lists: %w: %w", v, setlist.ErrUnavailable, err)
		}
		var sets []*redis.StatusCmd
		pipe := p.rdb.Pipeline()
		for j, c := range gets {
			b, err := c.(*redis.StringCmd).Bytes()
			if errors.Is(err, redis.Nil) {
				continue // no list under v (a user without one, or v went away)
			}
			if err != nil {
				return rep, fmt.Errorf("refresh version %d: read lists: %w: %w", v, setlist.ErrUnavailable, err)
			}
			old, err := model.DecodeRecs(b)
			if err != nil {
				return rep, fmt.Errorf("refresh version %d: list of %q: %w", v, r.User(lo+j), err)
			}
			rep.Read++
			updated, changed := r.Merge(lo+j, old)
			if !changed {
				continue
			}
			key, val := keys.Recs(v, r.User(lo+j)), model.EncodeRecs(updated)
			sets = append(sets, pipe.SetArgs(ctx, key, val, redis.SetArgs{Mode: "XX", KeepTTL: true}))
			rep.Bytes += int64(len(key) + len(val))
		}
		if len(sets) > 0 {
			if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
				return rep, fmt.Errorf("refresh version %d: write lists: %w: %w", v, setlist.ErrUnavailable, err)
			}
			for _, c := range sets {
				if c.Val() == "OK" {
					rep.Updated++
				}
			}
		}
		if r.Progress != nil {
			r.Progress(rep.Read)
		}
	}
	rep.Keys = rep.Updated
	if r.Added == nil && rep.Updated == 0 {
		return rep, nil
	}
	n, err := refreshScript.Run(ctx, p.rdb, []string{keys.Meta(v), keys.Added(v), keys.Refreshes(v)},
		r.Added, keys.Events(), VersionEvent(v)).Int64()
	if err != nil {
		return rep, fmt.Errorf("refresh version %d: %w", v, scriptError("record added songs", err))
	}
	rep.Keys++
	rep.Bytes += int64(len(keys.Added(v)) + len(r.Added))
	rep.Refreshes = n
	return rep, nil
}

// refreshScript records a refresh of a version that still exists: the
// added songs and the count in one step, then the event serve reloads on.
var refreshScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then
  return redis.error_reply('SETLIST_INCOMPLETE the version is gone (meta missing)')
end
if ARGV[1] ~= '' then redis.call('SET', KEYS[2], ARGV[1], 'KEEPTTL') end
local n = redis.call('INCR', KEYS[3])
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[3], ttl)
  redis.call('PEXPIRE', KEYS[2], ttl)
end
redis.call('PUBLISH', ARGV[2], ARGV[3])
return n
`)

// Added reads the songs refreshes folded into version v (nil: none).
func (p *Publisher) Added(ctx context.Context, v Version) ([]model.AddedSong, error) {
	if _, err := p.Meta(ctx, v); err != nil {
		return nil, err
	}
	return readAdded(ctx, p.rdb, p.keys, v)
}

func readAdded(ctx context.Context, rdb redis.UniversalClient, keys Keys, v Version) ([]model.AddedSong, error) {
	b, err := rdb.Get(ctx, keys.Added(v)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("added songs of version %d: %w: %w", v, setlist.ErrUnavailable, err)
	}
	added, err := model.DecodeAdded(b)
	if err != nil {
		return nil, fmt.Errorf("added songs of version %d: %w", v, err)
	}
	return added, nil
}

// Refreshes reads how many refreshes changed version v (0: none), so a
// reader holding v knows when to load it again.
func (r *Reader) Refreshes(ctx context.Context, v Version) (int64, error) {
	n, err := r.rdb.Get(ctx, r.keys.Refreshes(v)).Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, r.unavailable(ctx, fmt.Sprintf("refreshes of version %d", v), err)
	}
	return n, nil
}
