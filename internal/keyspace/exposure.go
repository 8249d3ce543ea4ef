package keyspace

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/setlist/setlist"
)

// ExposureTTL is how long a day's exposure HyperLogLog outlives its last
// add: serve persists its count every few seconds, so a week is only for
// reading it back by hand.
const ExposureTTL = 8 * 24 * time.Hour

// ExposureKey names one exposure HyperLogLog (see Keys.Exposure).
type ExposureKey struct {
	Version Version
	Day     string // UTC, YYYY-MM-DD
	Source  setlist.Source
	Arm     setlist.Arm
}

func (r *Reader) exposureKey(e ExposureKey) string {
	return r.keys.Exposure(e.Version, e.Day, e.Source, e.Arm)
}

// AddExposed adds users to their keys' HyperLogLogs, one PFADD (and one
// EXPIRE) per key, all in one pipeline: serve calls it from a background
// flush, never from a request.
func (r *Reader) AddExposed(ctx context.Context, users map[ExposureKey][]string) error {
	if len(users) == 0 {
		return nil
	}
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for k, us := range users {
			args := make([]any, len(us))
			for i, u := range us {
				args[i] = u
			}
			key := r.exposureKey(k)
			p.PFAdd(ctx, key, args...)
			p.Expire(ctx, key, ExposureTTL)
		}
		return nil
	})
	if err != nil {
		return unavailable("add exposed users", err)
	}
	return nil
}

// CountExposed returns each key's distinct-user estimate (PFCOUNT, one per
// key, pipelined), 0 for a key that does not exist.
func (r *Reader) CountExposed(ctx context.Context, keys []ExposureKey) ([]int64, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	cmds := make([]*redis.IntCmd, len(keys))
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			cmds[i] = p.PFCount(ctx, r.exposureKey(k))
		}
		return nil
	})
	if err != nil {
		return nil, unavailable(fmt.Sprintf("count exposed users of %d keys", len(keys)), err)
	}
	out := make([]int64, len(keys))
	for i, c := range cmds {
		out[i] = c.Val()
	}
	return out, nil
}

// ShownWindow is how long after an answer a like or dislike of one of its
// songs is attributed to it (and how long P:shown:{U} lives): a listening
// session and the day after it. Older answers attribute nothing: the
// opinion came from elsewhere, or from a list no one can say was seen.
const ShownWindow = 24 * time.Hour

// ShownList is one list serve answered a user: the version and arm it was
// served from, its source, when, and its songs in order (for an answer
// from the stored batch list or a cached fold-in, the whole list it was
// cut from, so a later request with another n does not change positions;
// for a filtered answer, what it answered).
type ShownList struct {
	User    setlist.UserID
	Version Version
	Arm     setlist.Arm
	Source  setlist.Source
	At      time.Time
	Songs   []setlist.SongID
}

const shownFormat = 1

var (
	shownArms    = []setlist.Arm{setlist.ArmNone, setlist.ArmControl, setlist.ArmChallenger}
	shownSources = []setlist.Source{setlist.SourceBatch, setlist.SourceFoldIn, setlist.SourcePopular}
)

// EncodeShown packs l (without its user, the key's) as [format][arm]
// [source][version i64][at unix ms i64][count uvarint]{song i64}*
// (little-endian).
func EncodeShown(l ShownList) []byte {
	b := make([]byte, 0, 19+binary.MaxVarintLen32+8*len(l.Songs))
	b = append(b, shownFormat, byte(max(slices.Index(shownArms, l.Arm), 0)), byte(max(slices.Index(shownSources, l.Source), 0)))
	b = binary.LittleEndian.AppendUint64(b, uint64(l.Version))
	b = binary.LittleEndian.AppendUint64(b, uint64(l.At.UnixMilli()))
	b = binary.AppendUvarint(b, uint64(len(l.Songs)))
	for _, s := range l.Songs {
		b = binary.LittleEndian.AppendUint64(b, uint64(s))
	}
	return b
}

// DecodeShown reverses EncodeShown, rejecting truncated or foreign data.
func DecodeShown(b []byte) (ShownList, error) {
	const head = 19
	if len(b) < head || b[0] != shownFormat || int(b[1]) >= len(shownArms) || int(b[2]) >= len(shownSources) {
		return ShownList{}, errors.New("decode shown list: unknown format")
	}
	l := ShownList{Arm: shownArms[b[1]], Source: shownSources[b[2]], Version: Version(binary.LittleEndian.Uint64(b[3:])),
		At: time.UnixMilli(int64(binary.LittleEndian.Uint64(b[11:])))}
	n, k := binary.Uvarint(b[head:])
	if k <= 0 || n > uint64(len(b)) || uint64(len(b)-head-k) != 8*n {
		return ShownList{}, errors.New("decode shown list: length does not match count")
	}
	b = b[head+k:]
	l.Songs = make([]setlist.SongID, n)
	for i := range l.Songs {
		l.Songs[i] = setlist.SongID(binary.LittleEndian.Uint64(b[8*i:]))
	}
	return l, nil
}

// RecordShown stores each list as its user's last answered one, expiring
// ShownWindow after its answer, in one pipeline: serve calls it from the
// exposure flush, never from a request.
func (r *Reader) RecordShown(ctx context.Context, lists []ShownList) error {
	if len(lists) == 0 {
		return nil
	}
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, l := range lists {
			if ttl := time.Until(l.At.Add(ShownWindow)); ttl > 0 {
				p.Set(ctx, r.keys.Shown(l.User), EncodeShown(l), ttl)
			}
		}
		return nil
	})
	if err != nil {
		return unavailable(fmt.Sprintf("record the lists shown to %d users", len(lists)), err)
	}
	return nil
}

// Shown returns the last list answered to u if it was answered within
// ShownWindow of now (ok false: none).
func (r *Reader) Shown(ctx context.Context, u setlist.UserID, now time.Time) (l ShownList, ok bool, err error) {
	b, err := r.rdb.Get(ctx, r.keys.Shown(u)).Bytes()
	if errors.Is(err, redis.Nil) {
		return ShownList{}, false, nil
	}
	if err != nil {
		return ShownList{}, false, r.unavailable(ctx, fmt.Sprintf("the list shown to %q", u), err)
	}
	l, err = DecodeShown(b)
	if err != nil || now.Sub(l.At) > ShownWindow || l.At.After(now.Add(time.Minute)) {
		return ShownList{}, false, nil // unreadable or out of the window: nothing to attribute to
	}
	l.User = u
	return l, true, nil
}
