package storetest_test

import (
	"context"
	"database/sql"
	"os"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/setlist/setlist/internal/embedded"
	"github.com/setlist/setlist/internal/keyspace"
	"github.com/setlist/setlist/internal/keyspace/redistest"
	"github.com/setlist/setlist/internal/postgres/pgtest"
	"github.com/setlist/setlist/internal/storetest"
)

// corruptPostgres flips the low bit of an artifact's second chunk's 100th byte.
const corruptPostgres = `UPDATE model_artifact_chunks SET data = set_byte(data, 100, get_byte(data, 100) # 1)
	WHERE version = $1 AND seq = 1`

// TestPostgresRedis runs the contract against the production backend: a
// fresh PostgreSQL database and Redis prefix per subtest.
func TestPostgresRedis(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Backend {
		db := pgtest.DB(t)
		rdb, prefix := redistest.Client(t)
		return storetest.Backend{DB: db, Redis: rdb, Prefix: prefix, CorruptArtifact: func(t *testing.T, v int64) {
			tag, err := db.Pool.Exec(context.Background(), corruptPostgres, v)
			if err != nil || tag.RowsAffected() != 1 {
				t.Fatalf("corrupt artifact %d: %v (%d rows)", v, err, tag.RowsAffected())
			}
		}, SetArtifactBytes: func(t *testing.T, v, n int64) {
			if _, err := db.Pool.Exec(context.Background(), `UPDATE model_artifacts SET bytes = $2 WHERE version = $1`, v, n); err != nil {
				t.Fatal(err)
			}
		}}
	})
}

// TestPostgresRedisCluster runs the contract's Redis part with the models
// in a Redis Cluster (the package's shared one).
func TestPostgresRedisCluster(t *testing.T) {
	storetest.RunRedis(t, func(t *testing.T) storetest.Backend {
		rdb, prefix := redistest.OnCluster.Client(t)
		return storetest.Backend{DB: pgtest.DB(t), Redis: rdb, Prefix: prefix}
	})
}

func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }

// TestEmbedded runs the same contract against SQLite and the in-process
// Redis in a fresh data directory per subtest.
func TestEmbedded(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Backend {
		emb, err := embedded.Open(context.Background(), t.TempDir(), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := emb.Close(); err != nil {
				t.Error(err)
			}
		})
		rdb, err := emb.StartKV(context.Background(), keyspace.DefaultPrefix)
		if err != nil {
			t.Fatal(err)
		}
		return storetest.Backend{DB: emb.DB, Redis: rdb, Prefix: keyspace.DefaultPrefix, CorruptArtifact: func(t *testing.T, v int64) {
			// A second connection to the file, as another process would.
			raw, err := sql.Open("sqlite", emb.DB.Path())
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			var chunk []byte
			if err := raw.QueryRow(`SELECT data FROM model_artifact_chunks WHERE version = ? AND seq = 1`, v).Scan(&chunk); err != nil {
				t.Fatalf("read chunk of artifact %d: %v", v, err)
			}
			chunk[100] ^= 1
			if _, err := raw.Exec(`UPDATE model_artifact_chunks SET data = ? WHERE version = ? AND seq = 1`, chunk, v); err != nil {
				t.Fatalf("corrupt artifact %d: %v", v, err)
			}
		}, SetArtifactBytes: func(t *testing.T, v, n int64) {
			raw, err := sql.Open("sqlite", emb.DB.Path())
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			if _, err := raw.Exec(`UPDATE model_artifacts SET bytes = ? WHERE version = ?`, n, v); err != nil {
				t.Fatal(err)
			}
		}}
	})
}
