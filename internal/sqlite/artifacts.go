package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/store"
)

// SaveArtifact stores data as version's artifact in one transaction: the
// row with its sha256 and every chunk, or nothing. A version has one
// artifact; saving a second is a conflict.
func (db *DB) SaveArtifact(ctx context.Context, version int64, family string, data []byte) (store.ArtifactInfo, error) {
	now := time.Now()
	info := store.ArtifactInfo{Version: version, Family: family, Bytes: int64(len(data)), SHA256: store.Checksum(data),
		CreatedAt: fromMicros(micros(now))}
	chunks := store.Chunks(data)
	err := db.writeTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO model_artifacts (version, family, bytes, sha256, chunks, created_at)
			VALUES (?, ?, ?, ?, ?, ?)`, version, family, info.Bytes, info.SHA256, len(chunks), micros(now))
		if isUnique(err) {
			return fmt.Errorf("version %d already has an artifact: %w", version, setlist.ErrConflict)
		}
		if err != nil {
			return classify("insert", err)
		}
		stmt, err := tx.PrepareContext(ctx, `INSERT INTO model_artifact_chunks (version, seq, data) VALUES (?, ?, ?)`)
		if err != nil {
			return classify("prepare", err)
		}
		defer stmt.Close()
		for i, c := range chunks {
			if _, err := stmt.ExecContext(ctx, version, i, c); err != nil {
				return classify("insert chunk", err)
			}
		}
		return nil
	})
	if err != nil {
		return store.ArtifactInfo{}, wrapTx(fmt.Sprintf("save artifact of version %d", version), err)
	}
	return info, nil
}

const artifactColumns = `version, family, bytes, sha256, pinned, created_at`

func scanArtifact(row scanner) (store.ArtifactInfo, error) {
	var (
		a       store.ArtifactInfo
		pinned  int
		created int64
	)
	err := row.Scan(&a.Version, &a.Family, &a.Bytes, &a.SHA256, &pinned, &created)
	a.Pinned, a.CreatedAt = pinned != 0, fromMicros(created)
	return a, err
}

// Artifact reads version's artifact from one snapshot and verifies its
// length and sha256; a mismatch is an error wrapping store.ErrCorrupt.
func (db *DB) Artifact(ctx context.Context, version int64) ([]byte, store.ArtifactInfo, error) {
	var (
		info store.ArtifactInfo
		data []byte
	)
	err := inTx(ctx, db.r, &sql.TxOptions{ReadOnly: true}, func(tx *sql.Tx) error {
		var err error
		info, err = scanArtifact(tx.QueryRowContext(ctx, `SELECT `+artifactColumns+` FROM model_artifacts WHERE version = ?`, version))
		if errors.Is(err, sql.ErrNoRows) {
			return setlist.ErrNotFound
		}
		if err != nil {
			return classify("select", err)
		}
		var total int64
		if err := tx.QueryRowContext(ctx, `SELECT coalesce(sum(length(data)), 0) FROM model_artifact_chunks WHERE version = ?`,
			version).Scan(&total); err != nil {
			return classify("select chunk sizes", err)
		}
		if err := store.CheckStored(info, total); err != nil {
			return err
		}
		data = make([]byte, 0, info.Bytes)
		rows, err := tx.QueryContext(ctx, `SELECT data FROM model_artifact_chunks WHERE version = ? ORDER BY seq`, version)
		if err != nil {
			return classify("select chunks", err)
		}
		defer rows.Close()
		for rows.Next() {
			var chunk []byte
			if err := rows.Scan(&chunk); err != nil {
				return classify("select chunks", err)
			}
			data = append(data, chunk...)
		}
		if err := rows.Err(); err != nil {
			return classify("select chunks", err)
		}
		return nil
	})
	if err != nil {
		return nil, store.ArtifactInfo{}, wrapTx(fmt.Sprintf("artifact of version %d", version), err)
	}
	if err := store.Verify(info, data); err != nil {
		return nil, info, err
	}
	return data, info, nil
}

// Artifacts lists every stored artifact, newest version first.
func (db *DB) Artifacts(ctx context.Context) ([]store.ArtifactInfo, error) {
	return db.artifacts(ctx, db.r)
}

type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func (db *DB) artifacts(ctx context.Context, q queryer) ([]store.ArtifactInfo, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+artifactColumns+` FROM model_artifacts ORDER BY version DESC`)
	if err != nil {
		return nil, classify("list artifacts", err)
	}
	defer rows.Close()
	var out []store.ArtifactInfo
	for rows.Next() {
		a, err := scanArtifact(rows)
		if err != nil {
			return nil, classify("list artifacts", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, classify("list artifacts", err)
	}
	return out, nil
}

// PinArtifact sets whether version's artifact is exempt from retention.
func (db *DB) PinArtifact(ctx context.Context, version int64, pinned bool) error {
	res, err := db.w.ExecContext(ctx, `UPDATE model_artifacts SET pinned = ? WHERE version = ?`, pinned, version)
	if err != nil {
		return classify(fmt.Sprintf("pin artifact of version %d", version), err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("pin artifact of version %d: no artifact stored for it: %w", version, setlist.ErrNotFound)
	}
	return nil
}

// PruneArtifacts deletes every artifact but the keep newest, the pinned
// ones and those in protect (store.Expired), in one write transaction, and
// returns the versions deleted.
func (db *DB) PruneArtifacts(ctx context.Context, keep int, protect []int64) ([]int64, error) {
	var drop []int64
	err := db.writeTx(ctx, func(tx *sql.Tx) error {
		infos, err := db.artifacts(ctx, tx)
		if err != nil {
			return err
		}
		drop = store.Expired(infos, keep, protect)
		for _, v := range drop {
			if _, err := tx.ExecContext(ctx, `DELETE FROM model_artifacts WHERE version = ?`, v); err != nil {
				return classify("delete", err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, wrapTx(fmt.Sprintf("prune artifacts (keep %d)", keep), err)
	}
	return drop, nil
}
