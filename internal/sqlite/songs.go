package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/store"
)

// resolveSong returns the id of the song r names, or ErrNotFound.
func resolveSong(ctx context.Context, q querier, r setlist.SongRef) (setlist.SongID, error) {
	var id setlist.SongID
	var err error
	if r.ID != 0 {
		err = q.QueryRowContext(ctx, `SELECT id FROM songs WHERE id = ?`, int64(r.ID)).Scan(&id)
	} else {
		err = q.QueryRowContext(ctx, `SELECT id FROM songs WHERE artist = ? AND track = ?`, r.Artist, r.Track).Scan(&id)
	}
	if errors.Is(err, sql.ErrNoRows) {
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
	err := db.r.QueryRowContext(ctx, `SELECT artist, track FROM songs WHERE id = ?`, int64(id)).Scan(&s.Artist, &s.Track)
	if errors.Is(err, sql.ErrNoRows) {
		return setlist.Song{}, fmt.Errorf("song %d: %w", id, setlist.ErrNotFound)
	}
	if err != nil {
		return setlist.Song{}, classify(fmt.Sprintf("song %d", id), err)
	}
	return s, nil
}

// songsByIDChunk stays under SQLite's bound on host parameters per statement.
const songsByIDChunk = 500

// SongsByID returns the songs among ids that exist, keyed by id.
func (db *DB) SongsByID(ctx context.Context, ids []setlist.SongID) (map[setlist.SongID]setlist.Song, error) {
	out := make(map[setlist.SongID]setlist.Song, len(ids))
	for lo := 0; lo < len(ids); lo += songsByIDChunk {
		chunk := ids[lo:min(lo+songsByIDChunk, len(ids))]
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = int64(id)
		}
		rows, err := db.r.QueryContext(ctx, `SELECT id, artist, track FROM songs WHERE id IN (?`+strings.Repeat(",?", len(chunk)-1)+`)`, args...)
		if err != nil {
			return nil, classify("songs by id", err)
		}
		for rows.Next() {
			var s setlist.Song
			if err := rows.Scan(&s.ID, &s.Artist, &s.Track); err != nil {
				rows.Close()
				return nil, classify("songs by id", err)
			}
			out[s.ID] = s
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, classify("songs by id", err)
		}
	}
	return out, nil
}

// SearchSongs is the catalog typeahead with the postgres backend's order: an
// artist or track equal to the query, then one that starts with it, then any
// other match; within each the most popular first (most reactions), then
// alphabetical (SQLite's LIKE and NOCASE fold ASCII case only).
func (db *DB) SearchSongs(ctx context.Context, query string, limit int) ([]setlist.Song, error) {
	songs, err := db.SearchCatalog(ctx, store.SongQuery{Query: query, Limit: limit})
	if err != nil {
		return nil, err
	}
	return store.Songs(songs), nil
}
