package command

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/setlist/setlist/internal/keyspace"
	"github.com/setlist/setlist/internal/postgres"
	"github.com/setlist/setlist/serve/internal/server"
)

// Stores are an opened backend, as the server sees it. Production's are
// PostgreSQL and Redis (openStores); the playground opens its own.
type Stores struct {
	DB    server.DB
	Redis redis.UniversalClient
	// DBName and KVName say what DB and Redis are, for /readyz.
	DBName, KVName string
	// Close closes both.
	Close func()
}

// openStores opens and checks production's backend, PostgreSQL and Redis
// (see openPostgres for who migrates).
func openStores(ctx context.Context, cfg Config, logger *slog.Logger) (*Stores, error) {
	db, err := openPostgres(ctx, cfg, logger)
	if err != nil {
		return nil, err
	}
	rdb, err := keyspace.Dial(ctx, cfg.Stores.RedisURL, cfg.RedisPoolSize, cfg.Stores.RedisCluster, keyspace.FailFast())
	if err != nil {
		db.Close()
		return nil, err
	}
	return &Stores{DB: db, Redis: rdb, DBName: "postgres", KVName: "redis", Close: func() { _ = rdb.Close(); db.Close() }}, nil
}

// openPostgres opens the database. batch owns the schema (the migrate Job,
// and every batch subcommand): serve waits, within ctx, until the schema is
// current instead of changing it, so no serve replica runs DDL on the
// request path or needs the rights to. (The playground migrates: it does
// batch's work, import and train, in one process, with no Job to wait for.)
func openPostgres(ctx context.Context, cfg Config, logger *slog.Logger) (*postgres.DB, error) {
	url := cfg.Stores.DatabaseURL
	db, err := postgres.Open(ctx, url)
	// batch migrate also creates the database: until then, wait as for
	// the schema.
	for errors.Is(err, postgres.ErrNoDatabase) {
		logger.Warn("waiting for the database: run batch migrate (the setlist-migrate Job)",
			"database", postgres.DatabaseName(url), "server", postgres.Server(url))
		select {
		case <-time.After(2 * time.Second):
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (waited until %w)", err, ctx.Err())
		}
		db, err = postgres.Open(ctx, url)
	}
	if err != nil {
		return nil, err
	}
	logger.Info("database", "database", db.Name(), "server", postgres.Server(url))
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
