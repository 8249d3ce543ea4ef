// Package config holds the settings both binaries share (where PostgreSQL and
// Redis are, how to log). Every setting is a flag that also reads an
// environment variable, so the same binary is configured by a person's flags
// or by a Kubernetes ConfigMap without a config file.
package config

import (
	"fmt"
	"io"
	"log/slog"
	"math"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"
)

// The defaults live here rather than in the adapters so that this package,
// which both binaries import for their flags, does not pull pgx or go-redis.
const (
	// DefaultDatabaseURL is where a fresh machine's PostgreSQL listens
	// (trust auth).
	DefaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/setlist?sslmode=disable"
	// DefaultRedisURL is where a fresh machine's Redis listens.
	DefaultRedisURL = "redis://127.0.0.1:6379/0"
	// DefaultRedisPrefix namespaces every Redis key; it equals
	// keyspace.DefaultPrefix (a test pins that).
	DefaultRedisPrefix = "setlist"
)

// The storage backends --store selects.
const (
	// StorePostgresRedis is production: PostgreSQL and Redis servers.
	StorePostgresRedis = "postgres+redis"
	// StoreEmbedded needs no server: SQLite and an in-process Redis in
	// --data-dir (internal/embedded), for the playground.
	StoreEmbedded = "embedded"
)

// DefaultDataDir is the embedded backend's directory (gitignored in the repo).
const DefaultDataDir = ".run"

// Stores says where the data and the published models live.
type Stores struct {
	// Backend is StorePostgresRedis or StoreEmbedded; only the commands'
	// wiring reads it.
	Backend     string
	DataDir     string
	DatabaseURL string
	RedisURL    string
	RedisPrefix string
	// RedisCluster makes RedisURL a Redis Cluster seed list and the client
	// a cluster client (keyspace.Dial).
	RedisCluster bool
}

// Validate checks the backend's name.
func (s *Stores) Validate() error {
	switch s.Backend {
	case StorePostgresRedis, StoreEmbedded:
		return nil
	}
	return fmt.Errorf("--store %q: want %s or %s", s.Backend, StorePostgresRedis, StoreEmbedded)
}

// Embedded reports whether the embedded backend is selected.
func (s *Stores) Embedded() bool { return s.Backend == StoreEmbedded }

// Flags binds s to flags, the backend's choice and the servers'; each also
// reads the environment variable shown.
func (s *Stores) Flags() []cli.Flag {
	return append(s.BackendFlags(StorePostgresRedis), s.ServerFlags()...)
}

// BackendFlags are --store, defaulting to backend, and --data-dir: the
// choice of the embedded backend, which only the binaries that link it
// offer (batch and the playground; production serve runs on the servers
// alone).
func (s *Stores) BackendFlags(backend string) []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "store", Usage: "storage backend: postgres+redis (servers at --database-url and --redis-url) or embedded (SQLite and an in-process Redis in --data-dir; no servers)", EnvVars: []string{"SETLIST_STORE"}, Value: backend, Destination: &s.Backend},
		&cli.StringFlag{Name: "data-dir", Usage: "directory of the embedded backend's files (--store embedded)", EnvVars: []string{"SETLIST_DATA_DIR"}, Value: DefaultDataDir, Destination: &s.DataDir},
	}
}

// ServerFlags say where the PostgreSQL and Redis servers are.
func (s *Stores) ServerFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "database-url", Usage: "PostgreSQL URL; batch migrate (and the playground) creates the database if missing, everything else refuses a missing one", EnvVars: []string{"DATABASE_URL"}, Value: DefaultDatabaseURL, Destination: &s.DatabaseURL},
		&cli.StringFlag{Name: "redis-url", Usage: "Redis URL for published models", EnvVars: []string{"REDIS_URL"}, Value: DefaultRedisURL, Destination: &s.RedisURL},
		&cli.BoolFlag{Name: "redis-cluster", Usage: "--redis-url is a Redis Cluster: redis://HOST:PORT?addr=HOST2:PORT2&addr=HOST3:PORT3 (any reachable nodes; rediss:// for TLS), and every key is routed to its slot's master", EnvVars: []string{"SETLIST_REDIS_CLUSTER"}, Value: false, Destination: &s.RedisCluster},
		&cli.StringFlag{Name: "redis-prefix", Usage: "namespace of every Redis key", EnvVars: []string{"SETLIST_REDIS_PREFIX"}, Value: DefaultRedisPrefix, Destination: &s.RedisPrefix},
	}
}

// Log says how to log.
type Log struct {
	Format string
	Level  string
}

// Flags binds l to flags; each also reads the environment variable shown.
func (l *Log) Flags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "log-format", Usage: "text or json", EnvVars: []string{"SETLIST_LOG_FORMAT"}, Value: "text", Destination: &l.Format},
		&cli.StringFlag{Name: "log-level", Usage: "debug, info, warn or error", EnvVars: []string{"SETLIST_LOG_LEVEL"}, Value: "info", Destination: &l.Level},
	}
}

// Logger builds the logger described by l, writing to w.
func (l *Log) Logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(l.Level)); err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", l.Level)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(l.Format) {
	case "text", "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("log format %q: want text or json", l.Format)
	}
}

// ParseBytes reads a size: a count of bytes with an optional KiB, MiB, GiB
// (or KB, MB, GB) suffix.
func ParseBytes(given string) (int64, error) {
	v := strings.TrimSpace(given)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}} {
		if rest, ok := strings.CutSuffix(v, u.suffix); ok {
			v, mult = strings.TrimSpace(rest), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("want a size such as 134217728, 128MiB or 1GiB, got %q", given)
	}
	return n * mult, nil
}
