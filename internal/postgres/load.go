package postgres

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/feedback"
	"github.com/setlist/setlist/internal/model"
	"github.com/setlist/setlist/internal/store"
)

// loadProgressEvery is how many rows pass between progress reports: often
// enough for a bar, rare enough to cost nothing.
const loadProgressEvery = 1 << 16

// LoadTraining reads every reaction for training as one consistent snapshot:
// users, songs and reactions are read in one REPEATABLE READ, READ ONLY
// transaction, so a song deleted or a user added mid-load cannot make the
// three disagree. Reactions are streamed in one query ordered by (user, song)
// (the primary key's order) and each user+song's reactions are folded into
// one raw weight with model.Signal as they pass, so memory holds only the
// compact result: 12 bytes an entry plus the user ids, never a row of strings
// per reaction.
//
// Only users and songs with at least one reaction get a dense index (see
// model.Training). SnapshotAt is the transaction's now(), for people;
// SnapshotSeq is exact (see store.SeqBase): the snapshot starts while it
// holds store.SeqLock exclusively, which waits for every reaction write
// that has taken a number to commit and holds back the next ones until the
// snapshot is fixed, so exactly the writes numbered ≤ SnapshotSeq are in it.
// New writes wait for that lock for the time of one statement.
func (db *DB) LoadTraining(ctx context.Context, scheme model.Scheme, progress store.LoadProgress) (*model.Training, error) {
	if err := scheme.Validate(); err != nil {
		return nil, fmt.Errorf("load training data: %w", err)
	}
	conn, err := db.Pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("load training data: %w", classify("acquire connection", err))
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, store.SeqLock); err != nil {
		return nil, fmt.Errorf("load training data: fence reaction writes: %w", err)
	}
	locked := true
	unlock := func() error {
		if !locked {
			return nil
		}
		locked = false
		// A fresh context: a leaked session lock would stop every reaction
		// write until the pooled connection closes.
		uctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := conn.Exec(uctx, `SELECT pg_advisory_unlock($1)`, store.SeqLock)
		return err
	}
	defer func() {
		if err := unlock(); err != nil {
			conn.Conn().Close(context.Background()) // closing the session releases its locks
		}
	}()
	var t *model.Training
	err = pgx.BeginTxFunc(ctx, conn.Conn(), pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var err error
		t, err = loadSnapshot(ctx, tx, scheme, progress, unlock)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("load training data: %w", err)
	}
	return t, nil
}

func loadSnapshot(ctx context.Context, tx pgx.Tx, scheme model.Scheme, progress store.LoadProgress, unfence func() error) (*model.Training, error) {
	t := &model.Training{}
	// The first statement fixes the snapshot; now() is the transaction's
	// start. The sequence is not transactional: its value is read under
	// the fence, then the fence is lifted.
	var estimate float64
	if err := tx.QueryRow(ctx, `SELECT now(), COALESCE((SELECT reltuples FROM pg_class WHERE oid = 'reactions'::regclass), 0),
		(SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM reaction_seq)`).
		Scan(&t.SnapshotAt, &estimate, &t.SnapshotSeq); err != nil {
		return nil, fmt.Errorf("snapshot time: %w", err)
	}
	if err := unfence(); err != nil {
		return nil, fmt.Errorf("lift the reaction fence: %w", err)
	}
	// The sort of the reaction stream may spill at tens of millions of rows;
	// more memory for this one transaction keeps it in RAM.
	if _, err := tx.Exec(ctx, `SET LOCAL work_mem = '256MB'`); err != nil {
		return nil, fmt.Errorf("set work_mem: %w", err)
	}
	userIDs, err := loadUsers(ctx, tx, t)
	if err != nil {
		return nil, err
	}
	songIndex, err := loadSongs(ctx, tx, t)
	if err != nil {
		return nil, err
	}
	est := max(int64(estimate), 0)
	if est > 0 {
		// reltuples counts rows, and entries ≤ rows: one allocation instead
		// of doubling through a slice of tens of millions of entries.
		t.Entries = make([]feedback.Entry, 0, est+est/32+1024)
	}
	rows, err := tx.Query(ctx, `SELECT user_id, song_id, kind, weight FROM reactions ORDER BY user_id, song_id`)
	if err != nil {
		return nil, fmt.Errorf("stream reactions: %w", err)
	}
	defer rows.Close()
	dec, err := newReactionDecoder(rows.FieldDescriptions())
	if err != nil {
		return nil, err
	}
	var (
		cur     reactionRow
		sig     model.Signal
		have    bool
		userPos int // index into userIDs of cur.user
		emit    = func() error {
			for userPos < len(userIDs) && userIDs[userPos] < cur.user {
				userPos++
			}
			if userPos == len(userIDs) || userIDs[userPos] != cur.user {
				return fmt.Errorf("reaction of user %d not in the user list of the same snapshot", cur.user)
			}
			item, ok := songIndex.index(cur.song)
			if !ok {
				return fmt.Errorf("reaction on song %d not in the song list of the same snapshot", cur.song)
			}
			if w, ok := sig.Weight(scheme); ok {
				t.Entries = append(t.Entries, feedback.Entry{Row: int32(userPos), Col: item, Value: w})
			}
			return nil
		}
	)
	for rows.Next() {
		r, err := dec.decode(rows.RawValues())
		if err != nil {
			return nil, err
		}
		t.Reactions++
		if have && (r.user != cur.user || r.song != cur.song) {
			if err := emit(); err != nil {
				return nil, err
			}
			sig = model.Signal{}
		}
		cur, have = r, true
		sig.Add(r.kind, r.weight)
		if progress != nil && t.Reactions%loadProgressEvery == 0 {
			progress(t.Reactions, est)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("stream reactions: %w", err)
	}
	if have {
		if err := emit(); err != nil {
			return nil, err
		}
	}
	if progress != nil {
		progress(t.Reactions, t.Reactions)
	}
	return t, nil
}

// loadUsers fills t.Users with the external ids of users that reacted, in
// internal id order, and returns their internal ids in the same order so the
// reaction stream (ordered by user id) can be merged against them.
func loadUsers(ctx context.Context, tx pgx.Tx, t *model.Training) ([]int64, error) {
	rows, err := tx.Query(ctx, `SELECT u.id, u.external_id FROM users u
		WHERE EXISTS (SELECT 1 FROM reactions r WHERE r.user_id = u.id) ORDER BY u.id`)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	var ids []int64
	var id int64
	var ext string
	_, err = pgx.ForEachRow(rows, []any{&id, &ext}, func() error {
		ids = append(ids, id)
		t.Users = append(t.Users, setlist.UserID(ext))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return ids, nil
}

// loadSongs fills t.Songs with the songs that have reactions, in id order.
func loadSongs(ctx context.Context, tx pgx.Tx, t *model.Training) (songIndex, error) {
	rows, err := tx.Query(ctx, `SELECT s.id, s.available FROM songs s
		WHERE EXISTS (SELECT 1 FROM reactions r WHERE r.song_id = s.id) ORDER BY s.id`)
	if err != nil {
		return songIndex{}, fmt.Errorf("list songs: %w", err)
	}
	var id int64
	var available bool
	_, err = pgx.ForEachRow(rows, []any{&id, &available}, func() error {
		t.Songs = append(t.Songs, setlist.SongID(id))
		if !available {
			t.Unavailable = append(t.Unavailable, setlist.SongID(id))
		}
		return nil
	})
	if err != nil {
		return songIndex{}, fmt.Errorf("list songs: %w", err)
	}
	return newSongIndex(t.Songs), nil
}

// songIndex maps a song id to its dense item index. Ids are a BIGSERIAL, so
// they are usually dense and a flat table (4 bytes per id in range) beats a
// hash map on every one of tens of millions of lookups; sparse ids fall back
// to a map.
type songIndex struct {
	min   int64
	table []int32 // id-min → index, -1 when absent
	m     map[int64]int32
}

func newSongIndex(songs []setlist.SongID) songIndex {
	if len(songs) == 0 {
		return songIndex{}
	}
	lo, hi := int64(songs[0]), int64(songs[len(songs)-1]) // sorted by id
	if span := hi - lo + 1; span <= 4*int64(len(songs))+1024 {
		s := songIndex{min: lo, table: make([]int32, span)}
		for i := range s.table {
			s.table[i] = -1
		}
		for i, id := range songs {
			s.table[int64(id)-lo] = int32(i)
		}
		return s
	}
	s := songIndex{m: make(map[int64]int32, len(songs))}
	for i, id := range songs {
		s.m[int64(id)] = int32(i)
	}
	return s
}

func (s songIndex) index(id int64) (int32, bool) {
	if s.m != nil {
		i, ok := s.m[id]
		return i, ok
	}
	o := id - s.min
	if o < 0 || o >= int64(len(s.table)) || s.table[o] < 0 {
		return 0, false
	}
	return s.table[o], true
}

type reactionRow struct {
	user, song int64
	kind       setlist.ReactionKind
	weight     float32
}

// reactionDecoder reads the raw wire values of (user_id, song_id, kind,
// weight) without pgx's per-value scan machinery: at 50M rows the reflection
// and interface conversions of Scan cost more than the network.
type reactionDecoder struct{ binary [4]bool }

func newReactionDecoder(fields []pgconn.FieldDescription) (reactionDecoder, error) {
	var d reactionDecoder
	if len(fields) != 4 {
		return d, fmt.Errorf("stream reactions: got %d columns, want 4", len(fields))
	}
	for i, f := range fields {
		d.binary[i] = f.Format == pgx.BinaryFormatCode
	}
	return d, nil
}

func (d reactionDecoder) decode(v [][]byte) (reactionRow, error) {
	var r reactionRow
	var err error
	if r.user, err = d.int8(0, v[0]); err != nil {
		return r, err
	}
	if r.song, err = d.int8(1, v[1]); err != nil {
		return r, err
	}
	switch string(v[2]) { // no allocation: the compiler compares in place
	case "play":
		r.kind = setlist.Play
	case "like":
		r.kind = setlist.Like
	case "dislike":
		r.kind = setlist.Dislike
	default:
		return r, fmt.Errorf("stream reactions: unknown kind %q", v[2])
	}
	if d.binary[3] {
		if len(v[3]) != 4 {
			return r, fmt.Errorf("stream reactions: weight is %d bytes, want 4", len(v[3]))
		}
		r.weight = math.Float32frombits(binary.BigEndian.Uint32(v[3]))
		return r, nil
	}
	w, err := strconv.ParseFloat(string(v[3]), 32)
	if err != nil {
		return r, fmt.Errorf("stream reactions: weight %q: %w", v[3], err)
	}
	r.weight = float32(w)
	return r, nil
}

func (d reactionDecoder) int8(col int, b []byte) (int64, error) {
	if d.binary[col] {
		if len(b) != 8 {
			return 0, fmt.Errorf("stream reactions: column %d is %d bytes, want 8", col, len(b))
		}
		return int64(binary.BigEndian.Uint64(b)), nil
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("stream reactions: column %d %q: %w", col, b, err)
	}
	return n, nil
}
