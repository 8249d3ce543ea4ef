package keyspace

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/setlist/setlist"
)

// ExposureTTL is how long a day's exposure HyperLogLog outlives its last
// add: serve persists its count every few seconds, so a week is only for
// reading it back by hand.
const ExposureTTL = 8 * 24 * time.Hour

// ExposureKey names one exposure HyperLogLog (see Keys.Exposure).
type ExposureKey struct {
	Version Version
	Day     string // UTC, YYYY-MM-DD
	Source  setlist.Source
	Arm     setlist.Arm
}

func (r *Reader) exposureKey(e ExposureKey) string {
	return r.keys.Exposure(e.Version, e.Day, e.Source, e.Arm)
}

// AddExposed adds users to their keys' HyperLogLogs, one PFADD (and one
// EXPIRE) per key, all in one pipeline: serve calls it from a background
// flush, never from a request.
func (r *Reader) AddExposed(ctx context.Context, users map[ExposureKey][]string) error {
	if len(users) == 0 {
		return nil
	}
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for k, us := range users {
			args := make([]any, len(us))
			for i, u := range us {
				args[i] = u
			}
			key := r.exposureKey(k)
			p.PFAdd(ctx, key, args...)
			p.Expire(ctx, key, ExposureTTL)
		}
		return nil
	})
	if err != nil {
		return unavailable("add exposed users", err)
	}
	return nil
}

// CountExposed returns each key's distinct-user estimate (PFCOUNT, one per
// key, pipelined), 0 for a key that does not exist.
func (r *Reader) CountExposed(ctx context.Context, keys []ExposureKey) ([]int64, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	cmds := make([]*redis.IntCmd, len(keys))
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			cmds[i] = p.PFCount(ctx, r.exposureKey(k))
		}
		return nil
	})
	if err != nil {
		return nil, unavailable(fmt.Sprintf("count exposed users of %d keys", len(keys)), err)
	}
	out := make([]int64, len(keys))
	for i, c := range cmds {
		out[i] = c.Val()
	}
	return out, nil
}
