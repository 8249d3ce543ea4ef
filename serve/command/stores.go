package command

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/embedded"
	"github.com/setlist/setlist/internal/modelstore"
	"github.com/setlist/setlist/internal/pipeline"
	"github.com/setlist/setlist/internal/postgres"
	"github.com/setlist/setlist/internal/store"
	"github.com/setlist/setlist/serve/internal/server"
)

// database is the system of record as serve uses it: the server's needs,
// plus the import and the training run the playground performs on its
// first start. Both *postgres.DB and *sqlite.DB have it.
type database interface {
	server.DB
	pipeline.Source
	pipeline.Registry
	pipeline.Locker
	pipeline.Artifacts
	Import(ctx context.Context, r io.Reader, opts store.ImportOptions) (store.ImportSummary, error)
	NameUsers(ctx context.Context, name func(setlist.UserID) string) (int64, error)
}

// stores are the opened backend --store selected. This is the only place
// serve picks an implementation; everything past it sees interfaces.
type stores struct {
	db    database
	rdb   redis.UniversalClient
	close func()
	// dbName and kvName say what db and rdb are, for /readyz.
	dbName, kvName string
}

// openStores opens and checks the backend (see openPostgres for who
// migrates).
func openStores(ctx context.Context, cfg Config, logger *slog.Logger) (*stores, error) {
	if err := cfg.Stores.Validate(); err != nil {
		return nil, err
	}
	if cfg.Stores.Embedded() {
		emb, err := embedded.Open(ctx, cfg.Stores.DataDir, logger)
		if err != nil {
			return nil, err
		}
		rdb, err := emb.StartKV(ctx, cfg.Stores.RedisPrefix)
		if err != nil {
			_ = emb.Close()
			return nil, err
		}
		logger.Info("embedded store", "data_dir", cfg.Stores.DataDir, "database", emb.DB.Path())
		return &stores{db: emb.DB, rdb: rdb, dbName: "sqlite", kvName: "embedded_redis", close: func() {
			if err := emb.Close(); err != nil {
				logger.Error("embedded store not saved", "err", err)
			}
		}}, nil
	}
	db, err := openPostgres(ctx, cfg, logger)
	if err != nil {
		return nil, err
	}
	rdb, err := modelstore.Dial(ctx, cfg.Stores.RedisURL, cfg.RedisPoolSize, cfg.Stores.RedisCluster)
	if err != nil {
		db.Close()
		return nil, err
	}
	return &stores{db: db, rdb: rdb, dbName: "postgres", kvName: "redis", close: func() { _ = rdb.Close(); db.Close() }}, nil
}

// openPostgres opens the database. batch owns the schema (the migrate Job,
// and every batch subcommand): serve waits, within ctx, until the schema is
// current instead of changing it, so no serve replica runs DDL on the
// request path or needs the rights to. The playground migrates: it is serve
// doing batch's work (import, train) in one process, with no Job to wait
// for.
func openPostgres(ctx context.Context, cfg Config, logger *slog.Logger) (*postgres.DB, error) {
	if cfg.Playground.Enabled {
		db, applied, err := postgres.OpenMigrated(ctx, cfg.Stores.DatabaseURL)
		if err == nil && len(applied) > 0 {
			logger.Info("migrated", "applied", applied)
		}
		return db, err
	}
	db, err := postgres.Open(ctx, cfg.Stores.DatabaseURL)
	if err != nil {
		return nil, err
	}
	err = db.WaitMigrated(ctx, 2*time.Second, func(pending []string) {
		logger.Warn("waiting for the schema: run batch migrate (the setlist-migrate Job)", "pending", pending)
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// pageURL is the address a person opens for the web page.
func pageURL(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		return a.String()
	}
	host := "localhost"
	if !tcp.IP.IsUnspecified() && !tcp.IP.IsLoopback() {
		host = tcp.IP.String()
	}
	return fmt.Sprintf("http://%s/", net.JoinHostPort(host, strconv.Itoa(tcp.Port)))
}
