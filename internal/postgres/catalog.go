package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/store"
)

// catalogColumns is what scanCatalogSong reads, in order.
const catalogColumns = `s.id, s.artist, s.track, s.available, s.tags, s.released, s.external_id, s.created_at`

func scanCatalogSong(row pgx.Row) (setlist.CatalogSong, error) {
	var (
		s        setlist.CatalogSong
		released *time.Time
		ext      *string
	)
	if err := row.Scan(&s.ID, &s.Artist, &s.Track, &s.Available, &s.Tags, &released, &ext, &s.CreatedAt); err != nil {
		return setlist.CatalogSong{}, err
	}
	if released != nil {
		d := setlist.DateOf(*released)
		s.Released = &d
	}
	if ext != nil {
		s.ExternalID = *ext
	}
	if s.Tags == nil {
		s.Tags = []string{}
	}
	return s, nil
}

// releasedArg and externalIDArg are the nullable columns' parameters.
func releasedArg(d *setlist.Date) any {
	if d == nil || d.IsZero() {
		return nil
	}
	return d.Time
}

func externalIDArg(id string) any {
	if id == "" {
		return nil
	}
	return id
}

// conflict turns a unique violation on songs into ErrConflict naming what
// is duplicated.
func conflict(err error, n setlist.CatalogSong) error {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "23505" {
		return err
	}
	if strings.Contains(pgErr.ConstraintName, "external_id") {
		return fmt.Errorf("external_id %q belongs to another song: %w", n.ExternalID, setlist.ErrConflict)
	}
	return fmt.Errorf("%q by %q is already in the catalog: %w", n.Track, n.Artist, setlist.ErrConflict)
}

// lockCatalog takes the catalog sequence's row lock first thing in every
// catalog write: one catalog writer at a time (catalog writes are rare),
// and no deadlock between a writer holding song rows and waiting for the
// sequence and one holding the sequence and waiting for song rows.
func lockCatalog(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, `SELECT seq FROM catalog_seq FOR UPDATE`); err != nil {
		return classify("lock catalog", err)
	}
	return nil
}

// bumpCatalogSeq takes the next catalog change number inside tx; the row
// lock (taken by lockCatalog) orders concurrent catalog writes by commit.
func bumpCatalogSeq(ctx context.Context, tx pgx.Tx) (int64, error) {
	var seq int64
	if err := tx.QueryRow(ctx, `UPDATE catalog_seq SET seq = seq + 1 RETURNING seq`).Scan(&seq); err != nil {
		return 0, classify("bump catalog sequence", err)
	}
	return seq, nil
}

// CreateSong adds a song to the catalog and returns it with the catalog
// change number it was given. A song with the same artist and track, or the
// same external id, is ErrConflict; nothing is written then.
func (db *DB) CreateSong(ctx context.Context, n setlist.NewSong) (setlist.CatalogSong, int64, error) {
	n, err := n.Normalize(time.Now())
	if err != nil {
		return setlist.CatalogSong{}, 0, err
	}
	var out setlist.CatalogSong
	var seq int64
	err = pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		if err := lockCatalog(ctx, tx); err != nil {
			return err
		}
		id, err := pgCatalogTx{tx}.InsertSong(ctx, n)
		if err != nil {
			return err
		}
		if out, err = scanCatalogSong(tx.QueryRow(ctx, `SELECT `+catalogColumns+` FROM songs s WHERE id = $1`, id)); err != nil {
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

// PatchSong changes song id's metadata and returns the song as it now is,
// with the catalog change number of the write (0 when the patch changed
// nothing, and nothing was written). An unknown song is ErrNotFound; an
// external id another song has is ErrConflict.
func (db *DB) PatchSong(ctx context.Context, id setlist.SongID, p setlist.SongPatch) (setlist.CatalogSong, int64, error) {
	p, err := p.Normalize(time.Now())
	if err != nil {
		return setlist.CatalogSong{}, 0, err
	}
	var out setlist.CatalogSong
	var seq int64
	err = pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		if err := lockCatalog(ctx, tx); err != nil {
			return err
		}
		old, err := scanCatalogSong(tx.QueryRow(ctx, `SELECT `+catalogColumns+` FROM songs s WHERE id = $1 FOR UPDATE`, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("song %d: %w", id, setlist.ErrNotFound)
		}
		if err != nil {
			return classify("read song", err)
		}
		out = p.Apply(old)
		if store.SameMetadata(old, out) {
			return nil
		}
		if err := (pgCatalogTx{tx}).UpdateSong(ctx, out); err != nil {
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

// SetAvailable hides (false) or shows (true) every song of ids in one
// transaction and returns the catalog change number (0 when every song
// already was so). Unknown ids are ErrNotFound naming them; nothing is
// written then.
func (db *DB) SetAvailable(ctx context.Context, ids []setlist.SongID, available bool) (int64, error) {
	var seq int64
	err := pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		if err := lockCatalog(ctx, tx); err != nil {
			return err
		}
		var missing []int64
		if err := tx.QueryRow(ctx, `SELECT coalesce(array_agg(i ORDER BY i), '{}') FROM unnest($1::bigint[]) i
			WHERE NOT EXISTS (SELECT 1 FROM songs WHERE id = i)`, ids).Scan(&missing); err != nil {
			return classify("check songs", err)
		}
		if len(missing) > 0 {
			return fmt.Errorf("unknown songs %v: %w", missing, setlist.ErrNotFound)
		}
		tag, err := tx.Exec(ctx, `UPDATE songs SET available = $2 WHERE id = ANY($1) AND available <> $2`, ids, available)
		if err != nil {
			return classify("update songs", err)
		}
		if tag.RowsAffected() == 0 {
			return nil
		}
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
	s, err := scanCatalogSong(db.Pool.QueryRow(ctx, `SELECT `+catalogColumns+` FROM songs s WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return setlist.CatalogSong{}, fmt.Errorf("song %d: %w", id, setlist.ErrNotFound)
	}
	if err != nil {
		return setlist.CatalogSong{}, classify(fmt.Sprintf("song %d", id), err)
	}
	return s, nil
}

// CatalogSongs returns the songs among ids that exist with their metadata,
// keyed by id: what serve's request-time filters read in bulk.
func (db *DB) CatalogSongs(ctx context.Context, ids []setlist.SongID) (map[setlist.SongID]setlist.CatalogSong, error) {
	rows, err := db.Pool.Query(ctx, `SELECT `+catalogColumns+` FROM songs s WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, classify("catalog songs", err)
	}
	defer rows.Close()
	out := make(map[setlist.SongID]setlist.CatalogSong, len(ids))
	for rows.Next() {
		s, err := scanCatalogSong(rows)
		if err != nil {
			return nil, classify("catalog songs", err)
		}
		out[s.ID] = s
	}
	if err := rows.Err(); err != nil {
		return nil, classify("catalog songs", err)
	}
	return out, nil
}

// HiddenSongs returns the catalog change number and the unavailable songs
// (ascending) as of that number, read in one snapshot: serve's hidden set
// and its version.
func (db *DB) HiddenSongs(ctx context.Context) (int64, []setlist.SongID, error) {
	var seq int64
	var ids []setlist.SongID
	err := pgx.BeginTxFunc(ctx, db.Pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT seq FROM catalog_seq`).Scan(&seq); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT id FROM songs WHERE NOT available ORDER BY id`)
		if err != nil {
			return err
		}
		ids, err = pgx.CollectRows(rows, pgx.RowTo[setlist.SongID])
		return err
	})
	if err != nil {
		return 0, nil, classify("hidden songs", err)
	}
	return seq, ids, nil
}

// CatalogSeq is the catalog change number: cheap, for a periodic check
// that heals a missed "catalog changed" event.
func (db *DB) CatalogSeq(ctx context.Context) (int64, error) {
	var seq int64
	if err := db.Pool.QueryRow(ctx, `SELECT seq FROM catalog_seq`).Scan(&seq); err != nil {
		return 0, classify("catalog sequence", err)
	}
	return seq, nil
}

// SearchCatalog is the catalog search: SearchSongs' ranking, narrowed by a
// tag and availability.
func (db *DB) SearchCatalog(ctx context.Context, q store.SongQuery) ([]setlist.CatalogSong, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	args := []any{q.Limit}
	var where []string
	if q.Tag != "" {
		args = append(args, []string{q.Tag})
		where = append(where, "s.tags @> $"+strconv.Itoa(len(args)))
	}
	if q.Available != nil {
		args = append(args, *q.Available)
		where = append(where, "s.available = $"+strconv.Itoa(len(args)))
	}
	if q.After != nil {
		args = append(args, q.After.Artist, q.After.Track, q.After.ID)
		n := len(args)
		where = append(where, fmt.Sprintf("(s.artist, s.track, s.id) > ($%d, $%d, $%d)", n-2, n-1, n))
	}
	order := `s.artist, s.track, s.id`
	if q.Query != "" {
		args = append(args, escapeLike(q.Query), q.Query)
		lit, raw := "$"+strconv.Itoa(len(args)-1), "$"+strconv.Itoa(len(args))
		where = append(where, `(s.artist || ' ' || s.track) ILIKE '%' || `+lit+` || '%'`)
		order = `CASE WHEN lower(s.artist) = lower(` + raw + `) OR lower(s.track) = lower(` + raw + `) THEN 0
			              WHEN s.artist ILIKE ` + lit + ` || '%' OR s.track ILIKE ` + lit + ` || '%' THEN 1 ELSE 2 END,
			         (SELECT count(*) FROM reactions r WHERE r.song_id = s.id) DESC,
			         s.artist, s.track, s.id`
	}
	cond := ""
	if len(where) > 0 {
		cond = " WHERE " + strings.Join(where, " AND ")
	}
	rows, err := db.Pool.Query(ctx, `SELECT `+catalogColumns+` FROM songs s`+cond+` ORDER BY `+order+` LIMIT $1`, args...)
	if err != nil {
		return nil, classify("search songs", err)
	}
	defer rows.Close()
	var out []setlist.CatalogSong
	for rows.Next() {
		s, err := scanCatalogSong(rows)
		if err != nil {
			return nil, classify("search songs", err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, classify("search songs", err)
	}
	return out, nil
}

// ImportCatalog upserts a catalog CSV (store.ParseCatalog, store.ApplyCatalog)
// in one transaction: every row lands, or none does. A repeated import
// changes nothing and takes no catalog change number.
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
	err = pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		if err := lockCatalog(ctx, tx); err != nil {
			return err
		}
		c, err := store.ApplyCatalog(ctx, pgCatalogTx{tx}, opts.Source, rows)
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

// pgCatalogTx is store.CatalogTx on a PostgreSQL transaction.
type pgCatalogTx struct{ tx pgx.Tx }

func (t pgCatalogTx) one(ctx context.Context, where string, args ...any) (setlist.CatalogSong, bool, error) {
	s, err := scanCatalogSong(t.tx.QueryRow(ctx, `SELECT `+catalogColumns+` FROM songs s WHERE `+where+` FOR UPDATE`, args...))
	if errors.Is(err, pgx.ErrNoRows) {
		return setlist.CatalogSong{}, false, nil
	}
	if err != nil {
		return setlist.CatalogSong{}, false, classify("read song", err)
	}
	return s, true, nil
}

func (t pgCatalogTx) SongByExternalID(ctx context.Context, id string) (setlist.CatalogSong, bool, error) {
	return t.one(ctx, `external_id = $1`, id)
}

func (t pgCatalogTx) SongByName(ctx context.Context, artist, track string) (setlist.CatalogSong, bool, error) {
	return t.one(ctx, `artist = $1 AND track = $2`, artist, track)
}

func (t pgCatalogTx) InsertSong(ctx context.Context, n setlist.NewSong) (setlist.SongID, error) {
	available := n.Available == nil || *n.Available
	tags := n.Tags
	if tags == nil {
		tags = []string{}
	}
	var id setlist.SongID
	// A savepoint, so a conflict leaves the caller's transaction usable.
	err := pgx.BeginFunc(ctx, t.tx, func(sp pgx.Tx) error {
		return sp.QueryRow(ctx, `INSERT INTO songs (artist, track, available, tags, released, external_id)
			VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
			n.Artist, n.Track, available, tags, releasedArg(n.Released), externalIDArg(n.ExternalID)).Scan(&id)
	})
	if err != nil {
		return 0, classify("insert song", conflict(err, setlist.CatalogSong{Song: setlist.Song{Artist: n.Artist, Track: n.Track}, ExternalID: n.ExternalID}))
	}
	return id, nil
}

func (t pgCatalogTx) UpdateSong(ctx context.Context, s setlist.CatalogSong) error {
	err := pgx.BeginFunc(ctx, t.tx, func(sp pgx.Tx) error {
		_, err := sp.Exec(ctx, `UPDATE songs SET available = $2, tags = $3, released = $4, external_id = $5 WHERE id = $1`,
			s.ID, s.Available, s.Tags, releasedArg(s.Released), externalIDArg(s.ExternalID))
		return err
	})
	if err != nil {
		return classify(fmt.Sprintf("update song %d", s.ID), conflict(err, s))
	}
	return nil
}
