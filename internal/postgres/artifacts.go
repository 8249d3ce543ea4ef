package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/store"
)

// ArtifactInfo is internal/store's, shared by every backend.
type ArtifactInfo = store.ArtifactInfo

// SaveArtifact stores data as version's artifact in one transaction: the
// row with its sha256 and every chunk (COPY), or nothing. A version has one
// artifact; saving a second is a conflict.
func (db *DB) SaveArtifact(ctx context.Context, version int64, family string, data []byte) (ArtifactInfo, error) {
	info := ArtifactInfo{Version: version, Family: family, Bytes: int64(len(data)), SHA256: store.Checksum(data)}
	chunks := store.Chunks(data)
	err := pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `INSERT INTO model_artifacts (version, family, bytes, sha256, chunks)
			VALUES ($1, $2, $3, $4, $5) ON CONFLICT (version) DO NOTHING RETURNING created_at`,
			version, family, info.Bytes, info.SHA256, len(chunks)).Scan(&info.CreatedAt)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("version %d already has an artifact: %w", version, setlist.ErrConflict)
		}
		if err != nil {
			return classify("insert", err)
		}
		n, err := tx.CopyFrom(ctx, pgx.Identifier{"model_artifact_chunks"}, []string{"version", "seq", "data"},
			pgx.CopyFromSlice(len(chunks), func(i int) ([]any, error) { return []any{version, int32(i), chunks[i]}, nil }))
		if err != nil {
			return classify("copy chunks", err)
		}
		if n != int64(len(chunks)) {
			return fmt.Errorf("copied %d of %d chunks", n, len(chunks))
		}
		return nil
	})
	if err != nil {
		return ArtifactInfo{}, fmt.Errorf("save artifact of version %d: %w", version, err)
	}
	return info, nil
}

const artifactColumns = `version, family, bytes, sha256, pinned, created_at`

func scanArtifact(row pgx.CollectableRow) (ArtifactInfo, error) {
	var a ArtifactInfo
	err := row.Scan(&a.Version, &a.Family, &a.Bytes, &a.SHA256, &a.Pinned, &a.CreatedAt)
	return a, err
}

// Artifact reads version's artifact from one snapshot and verifies its
// length and sha256; a mismatch is an error wrapping store.ErrCorrupt.
func (db *DB) Artifact(ctx context.Context, version int64) ([]byte, ArtifactInfo, error) {
	var (
		info ArtifactInfo
		data []byte
	)
	err := pgx.BeginTxFunc(ctx, db.Pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, `SELECT `+artifactColumns+` FROM model_artifacts WHERE version = $1`, version)
		var err error
		info, err = pgx.CollectExactlyOneRow(rows, scanArtifact)
		if errors.Is(err, pgx.ErrNoRows) {
			return setlist.ErrNotFound
		}
		if err != nil {
			return classify("select", err)
		}
		var total int64
		if err := tx.QueryRow(ctx, `SELECT coalesce(sum(length(data)), 0)::bigint FROM model_artifact_chunks WHERE version = $1`,
			version).Scan(&total); err != nil {
			return classify("select chunk sizes", err)
		}
		if err := store.CheckStored(info, total); err != nil {
			return err
		}
		data = make([]byte, 0, info.Bytes)
		rows, _ = tx.Query(ctx, `SELECT data FROM model_artifact_chunks WHERE version = $1 ORDER BY seq`, version)
		var chunk []byte
		_, err = pgx.ForEachRow(rows, []any{&chunk}, func() error {
			data = append(data, chunk...)
			return nil
		})
		if err != nil {
			return classify("select chunks", err)
		}
		return nil
	})
	if err != nil {
		return nil, ArtifactInfo{}, fmt.Errorf("artifact of version %d: %w", version, err)
	}
	if err := store.Verify(info, data); err != nil {
		return nil, info, err
	}
	return data, info, nil
}

// Artifacts lists every stored artifact, newest version first.
func (db *DB) Artifacts(ctx context.Context) ([]ArtifactInfo, error) {
	rows, _ := db.Pool.Query(ctx, `SELECT `+artifactColumns+` FROM model_artifacts ORDER BY version DESC`)
	out, err := pgx.CollectRows(rows, scanArtifact)
	if err != nil {
		return nil, fmt.Errorf("list artifacts: %w", classify("select", err))
	}
	return out, nil
}

// PinArtifact sets whether version's artifact is exempt from retention.
func (db *DB) PinArtifact(ctx context.Context, version int64, pinned bool) error {
	tag, err := db.Pool.Exec(ctx, `UPDATE model_artifacts SET pinned = $2 WHERE version = $1`, version, pinned)
	if err != nil {
		return fmt.Errorf("pin artifact of version %d: %w", version, classify("update", err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("pin artifact of version %d: no artifact stored for it: %w", version, setlist.ErrNotFound)
	}
	return nil
}

// PruneArtifacts deletes every artifact but the keep newest, the pinned
// ones and those in protect (store.Expired), in one transaction that locks
// the table against a concurrent pin, and returns the versions deleted.
func (db *DB) PruneArtifacts(ctx context.Context, keep int, protect []int64) ([]int64, error) {
	var drop []int64
	err := pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, `SELECT `+artifactColumns+` FROM model_artifacts FOR UPDATE`)
		infos, err := pgx.CollectRows(rows, scanArtifact)
		if err != nil {
			return classify("select", err)
		}
		drop = store.Expired(infos, keep, protect)
		if len(drop) == 0 {
			return nil
		}
		if _, err := tx.Exec(ctx, `DELETE FROM model_artifacts WHERE version = ANY($1)`, drop); err != nil {
			return classify("delete", err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("prune artifacts (keep %d): %w", keep, err)
	}
	return drop, nil
}
