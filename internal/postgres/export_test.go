package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// ReactionTx exposes reactionTx to the external tests.
func (db *DB) ReactionTx(ctx context.Context, fn func(pgx.Tx) error) error {
	return db.reactionTx(ctx, fn)
}
