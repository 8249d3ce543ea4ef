package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"
)

// KV is one key of the embedded key-value store (internal/embedded), as kept
// in the kv table so published model versions survive a restart.
type KV struct {
	Key string
	// Type is "string" or "hash".
	Type string
	// Value is a string's bytes; Fields a hash's fields.
	Value  []byte
	Fields map[string][]byte
	// ExpireAt is when a key with a TTL expires; zero when it has none.
	ExpireAt time.Time
}

// SaveKV replaces the stored keys with entries in one transaction, so a
// restart sees one whole snapshot or the one before, never a mix.
func (db *DB) SaveKV(ctx context.Context, entries []KV) error {
	err := db.writeTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM kv`); err != nil {
			return err
		}
		stmt, err := tx.PrepareContext(ctx, `INSERT INTO kv (key, type, value, expire_at) VALUES (?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, e := range entries {
			val := e.Value
			if e.Type == "hash" {
				// []byte fields marshal as base64: binary-safe.
				if val, err = json.Marshal(e.Fields); err != nil {
					return fmt.Errorf("encode hash %q: %w", e.Key, err)
				}
			}
			var exp any
			if !e.ExpireAt.IsZero() {
				exp = e.ExpireAt.UnixMilli()
			}
			if _, err := stmt.ExecContext(ctx, []byte(e.Key), e.Type, val, exp); err != nil {
				return fmt.Errorf("save key %q: %w", e.Key, err)
			}
		}
		return nil
	})
	if err != nil {
		return wrapTx("save kv snapshot", err)
	}
	return nil
}

// LoadKV returns the stored keys that have not expired.
func (db *DB) LoadKV(ctx context.Context) ([]KV, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT key, type, value, expire_at FROM kv
		WHERE expire_at IS NULL OR expire_at > ?`, time.Now().UnixMilli())
	if err != nil {
		return nil, classify("load kv snapshot", err)
	}
	defer rows.Close()
	var out []KV
	for rows.Next() {
		var e KV
		var key []byte
		var exp sql.NullInt64
		if err := rows.Scan(&key, &e.Type, &e.Value, &exp); err != nil {
			return nil, classify("load kv snapshot", err)
		}
		e.Key = string(key)
		if exp.Valid {
			e.ExpireAt = time.UnixMilli(exp.Int64)
		}
		if e.Type == "hash" {
			if err := json.Unmarshal(e.Value, &e.Fields); err != nil {
				return nil, fmt.Errorf("load kv snapshot: hash %q: %w", e.Key, err)
			}
			e.Value = nil
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, classify("load kv snapshot", err)
	}
	return out, nil
}
