package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	sqlitedrv "modernc.org/sqlite"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/store"
)

// The catalog (issue 22 item 1) with the postgres backend's semantics; see
// internal/postgres/catalog.go. Tags are a JSON array, released TEXT
// YYYY-MM-DD.

const catalogColumns = `s.id, s.artist, s.track, s.available, s.tags, s.released, s.external_id, s.created_at`

func scanCatalogSong(row scanner) (setlist.CatalogSong, error) {
	var (
		s        setlist.CatalogSong
		tags     string
		released sql.NullString
		ext      sql.NullString
		created  int64
	)
	if err := row.Scan(&s.ID, &s.Artist, &s.Track, &s.Available, &tags, &released, &ext, &created); err != nil {
		return setlist.CatalogSong{}, err
	}
	if err := json.Unmarshal([]byte(tags), &s.Tags); err != nil {
		return setlist.CatalogSong{}, fmt.Errorf("song %d: tags: %w", s.ID, err)
	}
	if s.Tags == nil {
		s.Tags = []string{}
	}
	if released.Valid {
		d, err := setlist.ParseDate(released.String)
		if err != nil {
			return setlist.CatalogSong{}, fmt.Errorf("song %d: %w", s.ID, err)
		}
		s.Released = &d
	}
	s.ExternalID = ext.String
	s.CreatedAt = fromMicros(created)
	return s, nil
}

func tagsArg(tags []string) string {
	if tags == nil {
		tags = []string{}
	}
	b, _ := json.Marshal(tags)
	return string(b)
}

func releasedArg(d *setlist.Date) any {
	if d == nil || d.IsZero() {
		return nil
	}
	return d.String()
}

func externalIDArg(id string) any {
	if id == "" {
		return nil
	}
	return id
}

// conflict turns a unique violation on songs into ErrConflict naming what
// is duplicated.
func conflict(err error, s setlist.CatalogSong) error {
	if !isUnique(err) {
		return err
	}
	var se *sqlitedrv.Error
	if errors.As(err, &se) && strings.Contains(se.Error(), "external_id") {
		return fmt.Errorf("external_id %q belongs to another song: %w", s.ExternalID, setlist.ErrConflict)
	}
	return fmt.Errorf("%q by %q is already in the catalog: %w", s.Track, s.Artist, setlist.ErrConflict)
}

func bumpCatalogSeq(ctx context.Context, tx *sql.Tx) (int64, error) {
	var seq int64
	if err := tx.QueryRowContext(ctx, `UPDATE catalog_seq SET seq = seq + 1 WHERE id = 1 RETURNING seq`).Scan(&seq); err != nil {
		return 0, classify("bump catalog sequence", err)
	}
	return seq, nil
}

// CreateSong adds a song to the catalog (see postgres.DB.CreateSong).
func (db *DB) CreateSong(ctx context.Context, n setlist.NewSong) (setlist.CatalogSong, int64, error) {
	n, err := n.Normalize(time.Now())
	if err != nil {
		return setlist.CatalogSong{}, 0, err
	}
	var out setlist.CatalogSong
	var seq int64
	err = db.writeTx(ctx, func(tx *sql.Tx) error {
		id, err := sqliteCatalogTx{tx}.InsertSong(ctx, n)
		if err != nil {
			return err
		}
		if out, err = scanCatalogSong(tx.QueryRowContext(ctx, `SELECT `+catalogColumns+` FROM songs s WHERE id = ?`, int64(id))); err != nil {
			return classify("read created song", err)
		}
		seq, err = bumpCatalogSeq(ctx, tx)
		return err
	})
	if err != nil {
		return setlist.CatalogSong{}, 0, wrapTx("create song", err)
	}
	return out, seq, nil
}

// PatchSong changes song id's metadata (see postgres.DB.PatchSong).
func (db *DB) PatchSong(ctx context.Context, id setlist.SongID, p setlist.SongPatch) (setlist.CatalogSong, int64, error) {
	p, err := p.Normalize(time.Now())
	if err != nil {
		return setlist.CatalogSong{}, 0, err
	}
	var out setlist.CatalogSong
	var seq int64
	err = db.writeTx(ctx, func(tx *sql.Tx) error {
		old, err := scanCatalogSong(tx.QueryRowContext(ctx, `SELECT `+catalogColumns+` FROM songs s WHERE id = ?`, int64(id)))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("song %d: %w", id, setlist.ErrNotFound)
		}
		if err != nil {
			return classify("read song", err)
		}
		out = p.Apply(old)
		if store.SameMetadata(old, out) {
			return nil
		}
		if err := (sqliteCatalogTx{tx}).UpdateSong(ctx, out); err != nil {
			return err
		}
		seq, err = bumpCatalogSeq(ctx, tx)
		return err
	})
	if err != nil {
		return setlist.CatalogSong{}, 0, wrapTx(fmt.Sprintf("patch song %d", id), err)
	}
	return out, seq, nil
}

// SetAvailable hides or shows songs (see postgres.DB.SetAvailable).
func (db *DB) SetAvailable(ctx context.Context, ids []setlist.SongID, available bool) (int64, error) {
	var seq int64
	err := db.writeTx(ctx, func(tx *sql.Tx) error {
		var missing []int64
		changed := int64(0)
		for _, id := range ids {
			res, err := tx.ExecContext(ctx, `UPDATE songs SET available = ? WHERE id = ? AND available <> ?`, available, int64(id), available)
			if err != nil {
				return classify("update songs", err)
			}
			n, _ := res.RowsAffected()
			changed += n
			if n == 0 {
				var one int
				err := tx.QueryRowContext(ctx, `SELECT 1 FROM songs WHERE id = ?`, int64(id)).Scan(&one)
				if errors.Is(err, sql.ErrNoRows) {
					missing = append(missing, int64(id))
				} else if err != nil {
					return classify("check songs", err)
				}
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("unknown songs %v: %w", missing, setlist.ErrNotFound)
		}
		if changed == 0 {
			return nil
		}
		var err error
		seq, err = bumpCatalogSeq(ctx, tx)
		return err
	})
	if err != nil {
		return 0, wrapTx("set availability", err)
	}
	return seq, nil
}

// CatalogSong returns one song with its metadata, or ErrNotFound.
func (db *DB) CatalogSong(ctx context.Context, id setlist.SongID) (setlist.CatalogSong, error) {
	s, err := scanCatalogSong(db.r.QueryRowContext(ctx, `SELECT `+catalogColumns+` FROM songs s WHERE id = ?`, int64(id)))
	if errors.Is(err, sql.ErrNoRows) {
		return setlist.CatalogSong{}, fmt.Errorf("song %d: %w", id, setlist.ErrNotFound)
	}
	if err != nil {
		return setlist.CatalogSong{}, classify(fmt.Sprintf("song %d", id), err)
	}
	return s, nil
}

// CatalogSongs returns the songs among ids that exist with their metadata.
func (db *DB) CatalogSongs(ctx context.Context, ids []setlist.SongID) (map[setlist.SongID]setlist.CatalogSong, error) {
	out := make(map[setlist.SongID]setlist.CatalogSong, len(ids))
	for lo := 0; lo < len(ids); lo += songsByIDChunk {
		chunk := ids[lo:min(lo+songsByIDChunk, len(ids))]
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = int64(id)
		}
		songs, err := db.catalogQuery(ctx, `SELECT `+catalogColumns+` FROM songs s WHERE id IN (?`+strings.Repeat(",?", len(chunk)-1)+`)`, args...)
		if err != nil {
			return nil, classify("catalog songs", err)
		}
		for _, s := range songs {
			out[s.ID] = s
		}
	}
	return out, nil
}

func (db *DB) catalogQuery(ctx context.Context, query string, args ...any) ([]setlist.CatalogSong, error) {
	rows, err := db.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []setlist.CatalogSong
	for rows.Next() {
		s, err := scanCatalogSong(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// HiddenSongs returns the catalog change number and the unavailable songs
// as of it, read in one transaction (one WAL snapshot).
func (db *DB) HiddenSongs(ctx context.Context) (int64, []setlist.SongID, error) {
	var seq int64
	var ids []setlist.SongID
	err := inTx(ctx, db.r, nil, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `SELECT seq FROM catalog_seq WHERE id = 1`).Scan(&seq); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT id FROM songs WHERE available = 0 ORDER BY id`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				return err
			}
			ids = append(ids, setlist.SongID(id))
		}
		return rows.Err()
	})
	if err != nil {
		return 0, nil, classify("hidden songs", err)
	}
	return seq, ids, nil
}

// CatalogSeq is the catalog change number.
func (db *DB) CatalogSeq(ctx context.Context) (int64, error) {
	var seq int64
	if err := db.r.QueryRowContext(ctx, `SELECT seq FROM catalog_seq WHERE id = 1`).Scan(&seq); err != nil {
		return 0, classify("catalog sequence", err)
	}
	return seq, nil
}

// SearchCatalog is the catalog search (see postgres.DB.SearchCatalog).
func (db *DB) SearchCatalog(ctx context.Context, q store.SongQuery) ([]setlist.CatalogSong, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	var where []string
	var args []any
	if q.Tag != "" {
		where = append(where, `EXISTS (SELECT 1 FROM json_each(s.tags) WHERE json_each.value = ?)`)
		args = append(args, q.Tag)
	}
	if q.Available != nil {
		where = append(where, `s.available = ?`)
		args = append(args, *q.Available)
	}
	if q.After != nil {
		where = append(where, `(s.artist, s.track, s.id) > (?, ?, ?)`)
		args = append(args, q.After.Artist, q.After.Track, q.After.ID)
	}
	order := `s.artist, s.track, s.id`
	var orderArgs []any
	if q.Query != "" {
		lit := escapeLike(q.Query)
		where = append(where, `(s.artist || ' ' || s.track) LIKE '%' || ? || '%' ESCAPE '\'`)
		args = append(args, lit)
		order = `CASE WHEN s.artist = ? COLLATE NOCASE OR s.track = ? COLLATE NOCASE THEN 0
			              WHEN s.artist LIKE ? || '%' ESCAPE '\' OR s.track LIKE ? || '%' ESCAPE '\' THEN 1 ELSE 2 END,
			         (SELECT count(*) FROM reactions r WHERE r.song_id = s.id) DESC,
			         s.artist, s.track, s.id`
		orderArgs = []any{q.Query, q.Query, lit, lit}
	}
	cond := ""
	if len(where) > 0 {
		cond = " WHERE " + strings.Join(where, " AND ")
	}
	args = append(append(args, orderArgs...), q.Limit)
	out, err := db.catalogQuery(ctx, `SELECT `+catalogColumns+` FROM songs s`+cond+` ORDER BY `+order+` LIMIT ?`, args...)
	if err != nil {
		return nil, classify("search songs", err)
	}
	return out, nil
}

// ImportCatalog upserts a catalog CSV in one transaction (see
// postgres.DB.ImportCatalog).
func (db *DB) ImportCatalog(ctx context.Context, r io.Reader, opts store.ImportOptions) (store.CatalogImportSummary, error) {
	start := time.Now()
	if opts.Source == "" {
		opts.Source = "input"
	}
	sum := store.CatalogImportSummary{Source: opts.Source}
	rows, err := store.ParseCatalog(r, opts.Source, start)
	if err != nil {
		return sum, err
	}
	sum.Rows = int64(len(rows))
	err = db.writeTx(ctx, func(tx *sql.Tx) error {
		c, err := store.ApplyCatalog(ctx, sqliteCatalogTx{tx}, opts.Source, rows)
		sum.Songs = c
		if err != nil || c.Inserted+c.Updated == 0 {
			return err
		}
		sum.Seq, err = bumpCatalogSeq(ctx, tx)
		return err
	})
	var bad *store.InputError
	if errors.As(err, &bad) {
		// It names FILE:LINE already: "import catalog FILE: FILE:LINE: …"
		// said the file twice.
		return store.CatalogImportSummary{Source: opts.Source}, err
	}
	if err != nil {
		return store.CatalogImportSummary{Source: opts.Source}, wrapTx(fmt.Sprintf("import catalog %s", opts.Source), err)
	}
	sum.Duration = time.Since(start)
	return sum, nil
}

// sqliteCatalogTx is store.CatalogTx on a SQLite write transaction.
type sqliteCatalogTx struct{ tx *sql.Tx }

func (t sqliteCatalogTx) one(ctx context.Context, where string, args ...any) (setlist.CatalogSong, bool, error) {
	s, err := scanCatalogSong(t.tx.QueryRowContext(ctx, `SELECT `+catalogColumns+` FROM songs s WHERE `+where, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return setlist.CatalogSong{}, false, nil
	}
	if err != nil {
		return setlist.CatalogSong{}, false, classify("read song", err)
	}
	return s, true, nil
}

func (t sqliteCatalogTx) SongByExternalID(ctx context.Context, id string) (setlist.CatalogSong, bool, error) {
	return t.one(ctx, `external_id = ?`, id)
}

func (t sqliteCatalogTx) SongByName(ctx context.Context, artist, track string) (setlist.CatalogSong, bool, error) {
	return t.one(ctx, `artist = ? AND track = ?`, artist, track)
}

func (t sqliteCatalogTx) InsertSong(ctx context.Context, n setlist.NewSong) (setlist.SongID, error) {
	available := n.Available == nil || *n.Available
	var id int64
	err := t.tx.QueryRowContext(ctx, `INSERT INTO songs (artist, track, created_at, available, tags, released, external_id)
		VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		n.Artist, n.Track, micros(time.Now()), available, tagsArg(n.Tags), releasedArg(n.Released), externalIDArg(n.ExternalID)).Scan(&id)
	if err != nil {
		return 0, classify("insert song", conflict(err, setlist.CatalogSong{Song: setlist.Song{Artist: n.Artist, Track: n.Track}, ExternalID: n.ExternalID}))
	}
	return setlist.SongID(id), nil
}

func (t sqliteCatalogTx) UpdateSong(ctx context.Context, s setlist.CatalogSong) error {
	_, err := t.tx.ExecContext(ctx, `UPDATE songs SET available = ?, tags = ?, released = ?, external_id = ? WHERE id = ?`,
		s.Available, tagsArg(s.Tags), releasedArg(s.Released), externalIDArg(s.ExternalID), int64(s.ID))
	if err != nil {
		return classify(fmt.Sprintf("update song %d", s.ID), conflict(err, s))
	}
	return nil
}
