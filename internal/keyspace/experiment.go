package keyspace

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/experiment"
)

// Experiment holds the running experiment's routing ("ID CHALLENGER SHARE
// SALT"), absent when none runs. The system of record is the database's
// experiments table; this is serve's copy, read with the pointer on every
// refresh, so every replica (and a restarted one) routes the same users the
// same way without a database round trip, and the sweep can see which
// version it must not retire. It is in the slot of {P}, with the pointers.
func (k Keys) Experiment() string { return k.shared("experiment") }

// ExperimentEvent is the events-channel message announcing that the
// running experiment started or ended.
const ExperimentEvent = "experiment"

func encodeRouting(r experiment.Routing) string {
	return fmt.Sprintf("%d %d %s %s", r.ID, r.Challenger, strconv.FormatFloat(r.Share, 'g', -1, 64), r.Salt)
}

// ParseRouting reads the Experiment key's value.
func ParseRouting(s string) (experiment.Routing, error) {
	f := strings.Fields(s)
	if len(f) != 4 {
		return experiment.Routing{}, fmt.Errorf("experiment routing %q: want \"ID CHALLENGER SHARE SALT\"", s)
	}
	var r experiment.Routing
	var err error
	if r.ID, err = strconv.ParseInt(f[0], 10, 64); err != nil {
		return r, fmt.Errorf("experiment routing %q: id: %w", s, err)
	}
	if r.Challenger, err = strconv.ParseInt(f[1], 10, 64); err != nil {
		return r, fmt.Errorf("experiment routing %q: challenger: %w", s, err)
	}
	if r.Share, err = strconv.ParseFloat(f[2], 64); err != nil {
		return r, fmt.Errorf("experiment routing %q: share: %w", s, err)
	}
	r.Salt = f[3]
	if err := r.Validate(); err != nil {
		return r, fmt.Errorf("experiment routing %q: %w", s, err)
	}
	return r, nil
}

// readExperiment returns the routing in Redis (ok false when none runs).
func readExperiment(ctx context.Context, rdb redis.Cmdable, keys Keys) (experiment.Routing, bool, error) {
	s, err := rdb.Get(ctx, keys.Experiment()).Result()
	if errors.Is(err, redis.Nil) {
		return experiment.Routing{}, false, nil
	}
	if err != nil {
		return experiment.Routing{}, false, unavailable("read experiment", err)
	}
	r, err := ParseRouting(s)
	if err != nil {
		return r, false, err
	}
	return r, true, nil
}

// Experiment returns the running experiment's routing; ok is false when
// none runs.
func (r *Reader) Experiment(ctx context.Context) (experiment.Routing, bool, error) {
	return readExperiment(ctx, r.rdb, r.keys)
}

// Experiment returns the routing in Redis; ok is false when none runs.
func (p *Publisher) Experiment(ctx context.Context) (experiment.Routing, bool, error) {
	return readExperiment(ctx, p.rdb, p.keys)
}

// CheckChallenger checks that version v can be an experiment's challenger:
// not the current version, and its shared keys (meta, items, popular) in
// Redis with no expiry, so it is neither a version retired into its grace
// period nor one a crashed publish left behind.
func (p *Publisher) CheckChallenger(ctx context.Context, v Version) error {
	ptr, err := p.Pointers(ctx)
	if err != nil {
		return err
	}
	if v == ptr.Current {
		return fmt.Errorf("version %d is the current version (the control); the challenger must be another: %w", v, setlist.ErrInvalid)
	}
	state, err := p.rdb.HGet(ctx, p.keys.Versions(), versionString(v)).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return unavailable("version state", err)
	}
	if state != statePublished && state != stateHeld {
		return fmt.Errorf("version %d has no complete keys in Redis (state %q; a version is kept there while it is current or previous): "+
			"train it with batch train --hold, or restore it with batch rollback --to and roll back: %w", v, state, setlist.ErrNotFound)
	}
	keys := p.keys
	cmds, err := p.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for _, k := range []string{keys.Meta(v), keys.Items(v), keys.Popular(v)} {
			pipe.PTTL(ctx, k)
		}
		return nil
	})
	if err != nil {
		return unavailable("check challenger keys", err)
	}
	for _, c := range cmds {
		switch ttl := c.(*redis.DurationCmd).Val(); {
		case ttl == -2: // go-redis passes PTTL's -2 (missing) and -1 (no expiry) through unscaled
			return fmt.Errorf("version %d: key %s is missing: %w", v, c.Args()[1], setlist.ErrNotFound)
		case ttl >= 0:
			return fmt.Errorf("version %d is being retired (key %s expires in %s): %w", v, c.Args()[1], ttl, setlist.ErrConflict)
		}
	}
	return nil
}

// setExperimentScript writes the routing only if none is there (or the
// same one: a retried start) and announces it.
var setExperimentScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] then
  return redis.error_reply('SETLIST_CONFLICT experiment "' .. cur .. '" is running in Redis')
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('PUBLISH', ARGV[2], 'experiment')
return 1
`)

// StartExperiment makes serve route r's share of users to r.Challenger:
// it writes the routing (refused while another one is there) and announces
// it on the events channel. From then on the sweep never retires or deletes
// the challenger's keys. Call it holding the training lock, after
// CheckChallenger, so no publish's sweep runs in between.
func (p *Publisher) StartExperiment(ctx context.Context, r experiment.Routing) error {
	if err := r.Validate(); err != nil {
		return fmt.Errorf("start experiment: %w", err)
	}
	err := setExperimentScript.Run(ctx, p.rdb, []string{p.keys.Experiment()}, encodeRouting(r), p.keys.Events()).Err()
	return scriptError("start experiment", err)
}

// EndExperiment removes the routing and announces it: serve routes every
// user to the current version again, and the challenger is an ordinary
// version for the sweep (retired at the next publish if it is neither
// current nor previous). Removing what is not there is not an error.
func (p *Publisher) EndExperiment(ctx context.Context) error {
	if err := endExperimentScript.Run(ctx, p.rdb, []string{p.keys.Experiment()}, p.keys.Events()).Err(); err != nil {
		return unavailable("end experiment", err)
	}
	return nil
}

// endExperimentScript deletes the routing and announces it, atomically. A
// script rather than a MULTI: on a Redis Cluster a transaction's PUBLISH
// counts its channel as a key of another slot.
var endExperimentScript = redis.NewScript(`
redis.call('DEL', KEYS[1])
redis.call('PUBLISH', ARGV[1], 'experiment')
return 1
`)
