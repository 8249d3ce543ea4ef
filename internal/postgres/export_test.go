package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// ReactionTx exposes reactionTx to the external tests.
func (db *DB) ReactionTx(ctx context.Context, fn func(pgx.Tx) error) error {
	return db.reactionTx(ctx, fn)
}

// SetStageBounds bounds the import's staging dictionaries to keys keys
// each and a user's summed run to songs songs, until the returned function
// restores the bounds.
func SetStageBounds(keys, songs int) (restore func()) {
	oldKeys, oldSongs := maxStageKeys, maxRunSongs
	maxStageKeys, maxRunSongs = keys, songs
	return func() { maxStageKeys, maxRunSongs = oldKeys, oldSongs }
}
