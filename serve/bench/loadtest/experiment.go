package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/setlist/setlist/internal/keyspace"
	"github.com/setlist/setlist/internal/postgres"
	"github.com/setlist/setlist/internal/store"
)

// benchExperiment is an A/B experiment for the batch+exp scenario: the
// challenger is a copy of the published version's keys under a new run id
// (so both arms are batch hits of the same size, and only routing and
// exposure recording differ from the batch scenario), recorded in the
// experiments table so serve's exposure flushes really write.
type benchExperiment struct {
	ctx     context.Context
	db      *postgres.DB
	pub     *keyspace.Publisher
	rdb     redis.UniversalClient
	keys    keyspace.Keys
	exp     store.Experiment
	peer    *servePeer
	copyTo  keyspace.Version
	created []string
}

func newBenchExperiment(ctx context.Context, db *postgres.DB, rdb redis.UniversalClient, keys keyspace.Keys, v keyspace.Version, share float64, peer *servePeer) (*benchExperiment, error) {
	b := &benchExperiment{ctx: ctx, db: db, pub: keyspace.NewPublisher(rdb, keys), rdb: rdb, keys: keys, peer: peer}
	if _, err := db.Pool.Exec(ctx, `UPDATE experiments SET status = 'stopped', ended_at = now() WHERE status = 'running'`); err != nil {
		return nil, err
	}
	run, err := db.StartRun(ctx, "loadtest experiment challenger (a copy of the published version)")
	if err != nil {
		return nil, err
	}
	b.copyTo = keyspace.Version(run)
	from, to := keys.VersionPrefix(v), keys.VersionPrefix(b.copyTo)
	iter := rdb.Scan(ctx, 0, strings.ReplaceAll(from, "[", `\[`)+"*", 2000).Iterator()
	pipe := rdb.Pipeline()
	for iter.Next(ctx) {
		k := iter.Val()
		if strings.Contains(k, ":foldin:") {
			continue
		}
		nk := to + strings.TrimPrefix(k, from)
		pipe.Copy(ctx, k, nk, 0, true)
		b.created = append(b.created, nk)
		if pipe.Len() >= 2000 {
			if _, err := pipe.Exec(ctx); err != nil {
				return nil, err
			}
		}
	}
	if err := iter.Err(); err != nil {
		return nil, err
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	// The meta names its version (serve checks it on load).
	meta, err := b.pub.Meta(ctx, v)
	if err != nil {
		return nil, err
	}
	meta.Version = b.copyTo
	mb, err := json.Marshal(meta)
	if err != nil {
		return nil, err
	}
	if err := rdb.Set(ctx, keys.Meta(b.copyTo), mb, 0).Err(); err != nil {
		return nil, err
	}
	var salt [8]byte
	_, _ = rand.Read(salt[:])
	b.exp, err = db.StartExperiment(ctx, store.NewExperiment{Name: "loadtest", Control: int64(v), Challenger: run, Share: share,
		Salt: hex.EncodeToString(salt[:]), Alpha: 0.05, MDE: 0.02})
	if err != nil {
		return nil, err
	}
	fmt.Printf("experiment %d: %.0f%% of users routed to version %d, a copy of version %d (%d keys), during batch+exp only\n",
		b.exp.ID, 100*share, b.copyTo, v, len(b.created))
	return b, nil
}

// around runs measure with the experiment routed by serve.
func (b *benchExperiment) around(measure func() error) error {
	if err := b.pub.StartExperiment(b.ctx, b.exp.Routing()); err != nil {
		return err
	}
	defer func() { _ = b.pub.EndExperiment(b.ctx) }()
	if err := b.wait(true); err != nil {
		return err
	}
	err := measure()
	if err := b.pub.EndExperiment(b.ctx); err != nil {
		return err
	}
	return errors.Join(err, b.wait(false))
}

func (b *benchExperiment) wait(running bool) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, ok := b.peer.srv.Recs().Experiment(); ok == running {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("serve did not see the experiment %s within 30s", map[bool]string{true: "start", false: "end"}[running])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (b *benchExperiment) cleanup() {
	_ = b.pub.EndExperiment(b.ctx)
	_, _ = b.db.EndExperiment(b.ctx, b.exp.ID, store.ExperimentStopped)
	for i := 0; i < len(b.created); i += 1000 {
		_ = b.rdb.Unlink(b.ctx, b.created[i:min(i+1000, len(b.created))]...).Err()
	}
}
