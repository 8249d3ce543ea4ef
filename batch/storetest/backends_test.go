package storetest_test

import (
	"context"
	"testing"

	"github.com/setlist/setlist/batch/embedded"
	"github.com/setlist/setlist/batch/modelstore"
	"github.com/setlist/setlist/batch/modelstore/redistest"
	"github.com/setlist/setlist/batch/postgres/pgtest"
	"github.com/setlist/setlist/batch/storetest"
)

// TestPostgresRedis runs the contract against the production backend: a
// fresh PostgreSQL database and Redis prefix per subtest.
func TestPostgresRedis(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Backend {
		db := pgtest.DB(t)
		rdb, prefix := redistest.Client(t)
		return storetest.Backend{DB: db, Redis: rdb, Prefix: prefix}
	})
}

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
		rdb, err := emb.StartKV(context.Background(), modelstore.DefaultPrefix)
		if err != nil {
			t.Fatal(err)
		}
		return storetest.Backend{DB: emb.DB, Redis: rdb, Prefix: modelstore.DefaultPrefix}
	})
}
