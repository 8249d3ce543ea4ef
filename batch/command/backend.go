package command

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/embedded"
	"github.com/setlist/setlist/internal/keyspace"
	"github.com/setlist/setlist/internal/pipeline"
	"github.com/setlist/setlist/internal/store"
)

// database is what the subcommands need from the system of record; both
// *postgres.DB and *sqlite.DB have it.
type database interface {
	pipeline.Source
	pipeline.Registry
	pipeline.Locker
	pipeline.RefreshSource
	Import(ctx context.Context, r io.Reader, opts store.ImportOptions) (store.ImportSummary, error)
	NameUsers(ctx context.Context, name func(setlist.UserID) string) (int64, error)
	Runs(ctx context.Context, limit int) ([]store.Run, error)
	Run(ctx context.Context, id int64) (store.Run, error)
	TuningTrials(ctx context.Context, id int64) ([]store.TuningTrial, error)
	RecordRollback(ctx context.Context, rolledBack, restored int64, reason string) error
	pipeline.Artifacts
	pipeline.Resolver
	Artifact(ctx context.Context, version int64) ([]byte, store.ArtifactInfo, error)
	Artifacts(ctx context.Context) ([]store.ArtifactInfo, error)
	PinArtifact(ctx context.Context, version int64, pinned bool) error
	SongsByID(ctx context.Context, ids []setlist.SongID) (map[setlist.SongID]setlist.Song, error)
	OnlineMetrics(ctx context.Context, since time.Time) ([]store.OnlineMetric, error)
	catalogDB
}

// backend is the storage --store selected, opened and migrated. This is the
// only place the batch CLI picks an implementation.
type backend struct {
	db    database
	emb   *embedded.Store // set for --store embedded
	close []func()
}

// open opens and migrates the database: every subcommand that touches data
// migrates first, so a new release needs no separate step. A PostgreSQL
// database must exist (batch migrate creates it); a data dir is created.
func (g *globals) open(ctx context.Context) (*backend, error) {
	return g.openBackend(ctx, false)
}

// openBackend is open; create lets it create a missing PostgreSQL database
// (batch migrate).
func (g *globals) openBackend(ctx context.Context, create bool) (*backend, error) {
	if err := g.stores.Validate(); err != nil {
		return nil, err
	}
	if g.stores.Embedded() {
		emb, err := embedded.Open(ctx, g.stores.DataDir, g.logger)
		if err != nil {
			return nil, err
		}
		return &backend{db: emb.DB, emb: emb}, nil
	}
	db, err := g.openDB(ctx, create)
	if err != nil {
		return nil, err
	}
	return &backend{db: db, close: []func(){db.Close}}, nil
}

// openWithModels opens the data backend and the model store together, as
// status, train and rollback all need both; the caller closes the backend,
// which closes the model store too.
func (g *globals) openWithModels(ctx context.Context) (*backend, redis.UniversalClient, keyspace.Keys, error) {
	b, err := g.open(ctx)
	if err != nil {
		return nil, nil, keyspace.Keys{}, err
	}
	rdb, keys, err := b.redis(ctx, g)
	if err != nil {
		b.Close(g)
		return nil, nil, keyspace.Keys{}, err
	}
	return b, rdb, keys, nil
}

// redis connects to where published models live: the Redis server, or the
// embedded store's in-process one (restored from its data dir).
func (b *backend) redis(ctx context.Context, g *globals) (redis.UniversalClient, keyspace.Keys, error) {
	if b.emb != nil {
		rdb, err := b.emb.StartKV(ctx, g.stores.RedisPrefix)
		if err != nil {
			return nil, keyspace.Keys{}, err
		}
		return rdb, keyspace.NewKeys(g.stores.RedisPrefix), nil
	}
	rdb, keys, err := g.openRedis(ctx)
	if err != nil {
		return nil, keyspace.Keys{}, err
	}
	b.close = append(b.close, func() { _ = rdb.Close() })
	return rdb, keys, nil
}

// Close releases everything open; the embedded store saves its published
// models first.
func (b *backend) Close(g *globals) {
	for i := len(b.close) - 1; i >= 0; i-- {
		b.close[i]()
	}
	if b.emb != nil {
		if err := b.emb.Close(); err != nil {
			g.logger.Error("embedded store not saved", "err", err)
		}
	}
}

// postgresOnly refuses a subcommand the embedded backend does not offer.
func (g *globals) postgresOnly(name string) error {
	if g.stores.Embedded() {
		return fmt.Errorf("batch %s needs --store %s (it scales out over PostgreSQL)", name, "postgres+redis")
	}
	return nil
}
