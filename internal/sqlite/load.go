package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/feedback"
	"github.com/setlist/setlist/internal/model"
	"github.com/setlist/setlist/internal/store"
)

// loadProgressEvery is how many rows pass between progress reports.
const loadProgressEvery = 1 << 16

// LoadTraining reads every reaction for training as one consistent
// snapshot: users, songs and reactions are read in one read transaction,
// which in WAL mode sees the database as of its first read whatever commits
// meanwhile. Each user+song's reactions are folded into one raw weight with
// model.Signal; only users and songs with reactions get a dense index (see
// model.Training). SnapshotAt is taken just before the first read, for
// people; SnapshotSeq is exact.
func (db *DB) LoadTraining(ctx context.Context, scheme model.Scheme, progress store.LoadProgress) (*model.Training, error) {
	if err := scheme.Validate(); err != nil {
		return nil, fmt.Errorf("load training data: %w", err)
	}
	t := &model.Training{}
	err := inTx(ctx, db.r, nil, func(tx *sql.Tx) error {
		t.SnapshotAt = fromMicros(micros(time.Now()))
		// The first read fixes the snapshot, and the counter is written in
		// every reaction write's own transaction: exactly the writes
		// numbered ≤ SnapshotSeq are in it (see store.SeqBase).
		var estimate int64
		if err := tx.QueryRowContext(ctx, `SELECT (SELECT n FROM reaction_seq), (SELECT count(*) FROM reactions)`).Scan(&t.SnapshotSeq, &estimate); err != nil {
			return fmt.Errorf("count reactions: %w", err)
		}
		userPos := map[int64]int32{}
		if err := eachRow(ctx, tx, `SELECT u.id, u.external_id FROM users u
			WHERE EXISTS (SELECT 1 FROM reactions r WHERE r.user_id = u.id) ORDER BY u.id`, func(rows *sql.Rows) error {
			var id int64
			var ext string
			if err := rows.Scan(&id, &ext); err != nil {
				return err
			}
			userPos[id] = int32(len(t.Users))
			t.Users = append(t.Users, setlist.UserID(ext))
			return nil
		}); err != nil {
			return fmt.Errorf("list users: %w", err)
		}
		songPos := map[int64]int32{}
		if err := eachRow(ctx, tx, `SELECT s.id, s.available FROM songs s
			WHERE EXISTS (SELECT 1 FROM reactions r WHERE r.song_id = s.id) ORDER BY s.id`, func(rows *sql.Rows) error {
			var id int64
			var available bool
			if err := rows.Scan(&id, &available); err != nil {
				return err
			}
			songPos[id] = int32(len(t.Songs))
			t.Songs = append(t.Songs, setlist.SongID(id))
			if !available {
				t.Unavailable = append(t.Unavailable, setlist.SongID(id))
			}
			return nil
		}); err != nil {
			return fmt.Errorf("list songs: %w", err)
		}
		t.Entries = make([]feedback.Entry, 0, estimate)
		var (
			curUser, curSong int64
			sig              model.Signal
			have             bool
		)
		emit := func() error {
			row, ok := userPos[curUser]
			if !ok {
				return fmt.Errorf("reaction of user %d not in the user list of the same snapshot", curUser)
			}
			col, ok := songPos[curSong]
			if !ok {
				return fmt.Errorf("reaction on song %d not in the song list of the same snapshot", curSong)
			}
			if w, ok := sig.Weight(scheme); ok {
				t.Entries = append(t.Entries, feedback.Entry{Row: row, Col: col, Value: w})
			}
			return nil
		}
		err := eachRow(ctx, tx, `SELECT user_id, song_id, kind, weight FROM reactions ORDER BY user_id, song_id`, func(rows *sql.Rows) error {
			var user, song int64
			var kind string
			var weight float64
			if err := rows.Scan(&user, &song, &kind, &weight); err != nil {
				return err
			}
			t.Reactions++
			if have && (user != curUser || song != curSong) {
				if err := emit(); err != nil {
					return err
				}
				sig = model.Signal{}
			}
			curUser, curSong, have = user, song, true
			sig.Add(reactionKind(kind), float32(weight))
			if progress != nil && t.Reactions%loadProgressEvery == 0 {
				progress(t.Reactions, estimate)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("stream reactions: %w", err)
		}
		if have {
			if err := emit(); err != nil {
				return err
			}
		}
		if progress != nil {
			progress(t.Reactions, t.Reactions)
		}
		return nil
	})
	if err != nil {
		return nil, classify("load training data", err)
	}
	return t, nil
}

func eachRow(ctx context.Context, tx *sql.Tx, query string, fn func(*sql.Rows) error) error {
	rows, err := tx.QueryContext(ctx, query)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}
