package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/store"
)

// querier is what both a pool and a transaction offer, so lookups can run
// inside a caller's transaction.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// resolveSong returns the id of the song r names, or ErrNotFound.
func resolveSong(ctx context.Context, q querier, r setlist.SongRef) (setlist.SongID, error) {
	var id setlist.SongID
	var err error
	if r.ID != 0 {
		err = q.QueryRow(ctx, `SELECT id FROM songs WHERE id = $1`, r.ID).Scan(&id)
	} else {
		err = q.QueryRow(ctx, `SELECT id FROM songs WHERE artist = $1 AND track = $2`, r.Artist, r.Track).Scan(&id)
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("%s: %w", r, setlist.ErrNotFound)
	}
	if err != nil {
		return 0, classify(fmt.Sprintf("look up %s", r), err)
	}
	return id, nil
}

// Song returns one song by id, or ErrNotFound.
func (db *DB) Song(ctx context.Context, id setlist.SongID) (setlist.Song, error) {
	s := setlist.Song{ID: id}
	err := db.Pool.QueryRow(ctx, `SELECT artist, track FROM songs WHERE id = $1`, id).Scan(&s.Artist, &s.Track)
	if errors.Is(err, pgx.ErrNoRows) {
		return setlist.Song{}, fmt.Errorf("song %d: %w", id, setlist.ErrNotFound)
	}
	if err != nil {
		return setlist.Song{}, classify(fmt.Sprintf("song %d", id), err)
	}
	return s, nil
}

// SongsByID returns the songs among ids that exist, keyed by id. Serve calls
// it once per model load to name every song of the catalog, so answers need
// no database read; a song deleted since is simply absent.
func (db *DB) SongsByID(ctx context.Context, ids []setlist.SongID) (map[setlist.SongID]setlist.Song, error) {
	rows, err := db.Pool.Query(ctx, `SELECT id, artist, track FROM songs WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, classify("songs by id", err)
	}
	out := make(map[setlist.SongID]setlist.Song, len(ids))
	var s setlist.Song
	_, err = pgx.ForEachRow(rows, []any{&s.ID, &s.Artist, &s.Track}, func() error {
		out[s.ID] = s
		return nil
	})
	if err != nil {
		return nil, classify("songs by id", err)
	}
	return out, nil
}

// SearchSongs is the catalog typeahead: songs whose "artist track" contains
// query (case-insensitive), best first: an artist or track equal to the
// query, then one that starts with it, then any other match; within each,
// the most popular first (most reactions, counted on the reactions_song
// index), then alphabetical. So "coldplay" lists Coldplay's best-known songs
// first. Queries of three or more characters use the trigram index; shorter
// ones scan the catalog, which is small. An empty query lists the catalog
// alphabetically.
func (db *DB) SearchSongs(ctx context.Context, query string, limit int) ([]setlist.Song, error) {
	songs, err := db.SearchCatalog(ctx, store.SongQuery{Query: query, Limit: limit})
	if err != nil {
		return nil, err
	}
	return store.Songs(songs), nil
}

// escapeLike makes s match literally inside a LIKE pattern (the default
// escape character is the backslash).
func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// classify wraps err with op, adding setlist.ErrUnavailable when the database
// could not be reached or gave up for reasons the caller cannot fix, so the
// HTTP edge answers 503 and the client retries.
func classify(op string, err error) error {
	if isUnavailable(err) {
		return fmt.Errorf("%s: %w: %w", op, setlist.ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

func isUnavailable(err error) bool {
	if errors.Is(err, setlist.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	var connErr *pgconn.ConnectError
	var netErr net.Error
	if errors.As(err, &connErr) || errors.As(err, &netErr) || pgconn.SafeToRetry(err) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// 08: connection exception; 53: insufficient resources; 57P0x:
		// the server is shutting down or crashed.
		return strings.HasPrefix(pgErr.Code, "08") || strings.HasPrefix(pgErr.Code, "53") || strings.HasPrefix(pgErr.Code, "57P0")
	}
	// pgx reports a closed or broken connection with plain errors.
	msg := err.Error()
	return strings.Contains(msg, "closed pool") || strings.Contains(msg, "conn closed") || strings.Contains(msg, "connection refused")
}
