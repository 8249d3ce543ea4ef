package keyspace

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/model"
)

// Reader is serve's side of the key space: it resolves the pointer, loads a
// version's shared records, reads a user's state in one round trip, caches
// fold-in answers and records that a user reacted. It never writes a
// version's batch keys; only the publisher does.
type Reader struct {
	rdb  redis.UniversalClient
	keys Keys
}

// NewReader reads the key space under prefix ("" means DefaultPrefix).
func NewReader(rdb redis.UniversalClient, prefix string) *Reader {
	return &Reader{rdb: rdb, keys: NewKeys(prefix)}
}

// Keys is the reader's key builder.
func (r *Reader) Keys() Keys { return r.keys }

// Ping checks that Redis answers, for readiness probes.
func (r *Reader) Ping(ctx context.Context) error {
	if err := r.rdb.Ping(ctx).Err(); err != nil {
		return r.unavailable(ctx, "ping redis", err)
	}
	return nil
}

// Health is CheckHealth of the reader's Redis, for readiness: degraded
// (some masters down) is not unavailable.
func (r *Reader) Health(ctx context.Context) (Health, error) {
	h, err := CheckHealth(ctx, r.rdb)
	if err != nil {
		return h, r.unavailable(ctx, "redis health", err)
	}
	return h, nil
}

// Current returns the version readers should use, or ErrNotFound when no
// model was ever published.
func (r *Reader) Current(ctx context.Context) (Version, error) {
	s, err := r.rdb.Get(ctx, r.keys.Current()).Result()
	if errors.Is(err, redis.Nil) {
		return 0, fmt.Errorf("current version: %w", setlist.ErrNotFound)
	}
	if err != nil {
		return 0, r.unavailable(ctx, "current version", err)
	}
	v, err := ParseVersion(s)
	if err != nil {
		return 0, fmt.Errorf("current version: pointer holds %q: %w", s, err)
	}
	return v, nil
}

// Load reads version v's meta, item side and popular list in one pipeline
// and decodes them. A missing key means the version is incomplete or
// expired (ErrNotFound): the caller keeps what it has.
func (r *Reader) Load(ctx context.Context, v Version) (*model.Published, error) {
	k := r.keys
	cmds, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Get(ctx, k.Meta(v))
		p.Get(ctx, k.Items(v))
		p.Get(ctx, k.Popular(v))
		// The refresh count before the added songs: a refresh landing
		// between the two reads leaves a count that is already stale,
		// so the next check loads the version again.
		p.Get(ctx, k.Refreshes(v))
		p.Get(ctx, k.Added(v))
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, r.unavailable(ctx, fmt.Sprintf("load version %d", v), err)
	}
	var raw [3][]byte
	for i, c := range cmds[:3] {
		b, err := c.(*redis.StringCmd).Bytes()
		if errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("load version %d: %s missing: %w", v, c.Args()[1], setlist.ErrNotFound)
		}
		if err != nil {
			return nil, r.unavailable(ctx, fmt.Sprintf("load version %d", v), err)
		}
		raw[i] = b
	}
	p := &model.Published{}
	if err := json.Unmarshal(raw[0], &p.Meta); err != nil {
		return nil, fmt.Errorf("load version %d: decode meta: %w", v, err)
	}
	if p.Meta.Version != v {
		return nil, fmt.Errorf("load version %d: meta names version %d", v, p.Meta.Version)
	}
	// A layout this code does not know is a newer writer's, whose other
	// keys it cannot name.
	if l := p.Meta.KeyLayout; l > KeyLayout {
		return nil, fmt.Errorf("load version %d: key layout %d is newer than this reader's %d", v, l, KeyLayout)
	}
	if p.Catalog, p.Items, err = model.DecodeItemModel(raw[1]); err != nil {
		return nil, fmt.Errorf("load version %d: %w", v, err)
	}
	if fam := p.Items.Family(); fam != p.Meta.FamilyOf() {
		return nil, fmt.Errorf("load version %d: meta says family %s, items hold %s", v, p.Meta.FamilyOf(), fam)
	}
	p.Side = model.ALSSide(p.Items)
	if p.Popular, err = model.DecodeRecs(raw[2]); err != nil {
		return nil, fmt.Errorf("load version %d: popular: %w", v, err)
	}
	// Songs batch refresh folded in after training (docs/KEYSPACE.md).
	if n, err := cmds[3].(*redis.StringCmd).Int64(); err == nil {
		p.Refreshes = n
	} else if !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("load version %d: refreshes: %w", v, err)
	}
	if b, err := cmds[4].(*redis.StringCmd).Bytes(); err == nil {
		added, err := model.DecodeAdded(b)
		if err != nil {
			return nil, fmt.Errorf("load version %d: %w", v, err)
		}
		refreshes := p.Refreshes
		if p, err = p.WithAdded(added); err != nil {
			return nil, fmt.Errorf("load version %d: %w", v, err)
		}
		p.Refreshes = refreshes
	} else if !errors.Is(err, redis.Nil) {
		return nil, r.unavailable(ctx, fmt.Sprintf("load version %d", v), err)
	}
	return p, nil
}

// UserState is what serve needs to know about one user under one version,
// read in a single MGET.
type UserState struct {
	Recs    []model.Rec // the batch top-K; nil when the version has no list for the user
	FoldIn  *FoldInRecord
	Touched int64 // unix nanoseconds of the user's last reaction through serve; 0 if none
}

// UserState reads the user's batch list, cached fold-in and last-reaction
// time for version v in one round trip. Records that fail to decode are
// treated as absent (the caller recomputes) and reported in the error only
// when nothing could be read.
func (r *Reader) UserState(ctx context.Context, v Version, u setlist.UserID) (UserState, error) {
	keys := r.keys
	vals, err := r.rdb.MGet(ctx, keys.Recs(v, u), keys.FoldIn(v, u), keys.Touched(u)).Result()
	if err != nil {
		return UserState{}, r.unavailable(ctx, fmt.Sprintf("state of %q", u), err)
	}
	var st UserState
	if s, ok := vals[0].(string); ok {
		if st.Recs, err = model.DecodeRecs([]byte(s)); err != nil {
			st.Recs = nil
		}
	}
	if s, ok := vals[1].(string); ok {
		if rec, err := DecodeFoldIn([]byte(s)); err == nil {
			st.FoldIn = &rec
		}
	}
	if s, ok := vals[2].(string); ok {
		st.Touched, _ = strconv.ParseInt(s, 10, 64)
	}
	return st, nil
}

// FoldInRecord is serve's cached answer for a user the batch list cannot
// serve. It is valid only while the user's touched time equals Touched: a
// reaction written after the answer was computed changes touched, which
// makes the record stale even if its delete raced with the write.
type FoldInRecord struct {
	Source  setlist.Source // fold-in, or popular when the user had no usable reactions
	Touched int64
	// Catalog is the catalog change sequence (CatalogSeq) the list was
	// computed under: hidden songs were left out as of that sequence. A
	// record of another sequence is recomputed, so a song shown again
	// comes back (filtering on read would only handle hides).
	Catalog int64
	// Complete means the catalog ran out: the list holds every song the
	// user can get, so it answers any n.
	Complete bool
	Items    []model.Explained
}

// foldInFormat 2 added the catalog sequence after touched; format 1
// records (written by replicas of the older code) decode with Catalog 0.
const (
	foldInFormat1 = 1
	foldInFormat  = 2
)

// EncodeFoldIn packs rec as [format][source][complete][touched i64]
// [catalog i64][count uvarint]{song i64, score f32, because i64}*
// (little-endian).
func EncodeFoldIn(rec FoldInRecord) []byte {
	b := make([]byte, 0, 20+binary.MaxVarintLen32+20*len(rec.Items))
	src := byte(0)
	if rec.Source == setlist.SourcePopular {
		src = 1
	}
	complete := byte(0)
	if rec.Complete {
		complete = 1
	}
	b = append(b, foldInFormat, src, complete)
	b = binary.LittleEndian.AppendUint64(b, uint64(rec.Touched))
	b = binary.LittleEndian.AppendUint64(b, uint64(rec.Catalog))
	b = binary.AppendUvarint(b, uint64(len(rec.Items)))
	for _, it := range rec.Items {
		b = binary.LittleEndian.AppendUint64(b, uint64(it.Song))
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(it.Score))
		b = binary.LittleEndian.AppendUint64(b, uint64(it.Because))
	}
	return b
}

// DecodeFoldIn reverses EncodeFoldIn, rejecting truncated or foreign data.
func DecodeFoldIn(b []byte) (FoldInRecord, error) {
	head := 11
	if len(b) > 0 && b[0] == foldInFormat {
		head = 19
	}
	if len(b) < head || (b[0] != foldInFormat && b[0] != foldInFormat1) || b[1] > 1 || b[2] > 1 {
		return FoldInRecord{}, errors.New("decode fold-in: unknown format")
	}
	rec := FoldInRecord{Source: setlist.SourceFoldIn, Complete: b[2] == 1, Touched: int64(binary.LittleEndian.Uint64(b[3:]))}
	if b[0] == foldInFormat {
		rec.Catalog = int64(binary.LittleEndian.Uint64(b[11:]))
	}
	if b[1] == 1 {
		rec.Source = setlist.SourcePopular
	}
	n, k := binary.Uvarint(b[head:])
	if k <= 0 || n > uint64(len(b)) || uint64(len(b)-head-k) != n*20 {
		return FoldInRecord{}, errors.New("decode fold-in: length does not match count")
	}
	b = b[head+k:]
	rec.Items = make([]model.Explained, n)
	for i := range rec.Items {
		it := &rec.Items[i]
		it.Song = setlist.SongID(binary.LittleEndian.Uint64(b))
		it.Score = math.Float32frombits(binary.LittleEndian.Uint32(b[8:]))
		it.Because = setlist.SongID(binary.LittleEndian.Uint64(b[12:]))
		b = b[20:]
	}
	return rec, nil
}

// StoreFoldIn caches rec for user u under version v for ttl.
func (r *Reader) StoreFoldIn(ctx context.Context, v Version, u setlist.UserID, rec FoldInRecord, ttl time.Duration) error {
	if err := r.rdb.Set(ctx, r.keys.FoldIn(v, u), EncodeFoldIn(rec), ttl).Err(); err != nil {
		return r.unavailable(ctx, fmt.Sprintf("store fold-in of %q", u), err)
	}
	return nil
}

// Touch records that user u's reactions changed by the write numbered seq
// (see store.SeqBase): it raises P:touched:{U} to seq (never lowers it: two
// writes of one user may reach here in either order, and the larger number
// is the later commit) expiring TouchedTTL later, deletes U's cached
// fold-in under v and announces "user U" on the events channel so every
// replica drops U from its near cache, all in one script so no replica sees
// the message before the new mark. The script's keys are U's, in U's slot;
// the channel is not a key (a classic PUBLISH reaches every node of a
// cluster; see docs/KEYSPACE.md for why not a sharded one).
func (r *Reader) Touch(ctx context.Context, v Version, u setlist.UserID, seq int64) error {
	keys := r.keys
	mark, ttl := strconv.FormatInt(seq, 10), TouchedTTL.Milliseconds()
	ks := []string{keys.Touched(u)}
	if v != 0 {
		ks = append(ks, keys.FoldIn(v, u))
	}
	if err := touchScript.Run(ctx, r.rdb, ks, mark, ttl, r.keys.Events(), UserEvent(u)).Err(); err != nil {
		return r.unavailable(ctx, fmt.Sprintf("touch %q", u), err)
	}
	return nil
}

// raiseToLua defines raise(key, new, ttl): it sets key to new, expiring in
// ttl ms, unless key holds a larger number. Both are non-negative decimal
// integers without leading zeros, compared by length then digits (Lua's
// numbers are doubles and would round them).
const raiseToLua = `
local function raise(key, new, ttl)
  local cur = redis.call('GET', key)
  if cur and (#cur > #new or (#cur == #new and cur >= new)) then return 0 end
  redis.call('SET', key, new, 'PX', ttl)
  return 1
end
`

// touchScript raises KEYS[1] (raiseToLua), deletes KEYS[2] (the fold-in
// record) if given and publishes ARGV[4] on channel ARGV[3].
var touchScript = redis.NewScript(raiseToLua + `
raise(KEYS[1], ARGV[1], ARGV[2])
if KEYS[2] then redis.call('DEL', KEYS[2]) end
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1`)

// Subscribe listens on the events channel. The caller owns the PubSub.
func (r *Reader) Subscribe(ctx context.Context) *redis.PubSub {
	return r.rdb.Subscribe(ctx, r.keys.Events())
}

// Events calls on for every well-formed message of the events channel until
// ctx ends, subscribed each time the subscription is confirmed (first, and
// again after go-redis reconnects a dropped connection), and lost when the
// connection fails: messages may be missed from then until the next
// subscribed. Malformed messages are skipped.
func (r *Reader) Events(ctx context.Context, on func(Event), subscribed func(), lost func(error)) error {
	ps := r.rdb.Subscribe(ctx, r.keys.Events())
	defer ps.Close()
	// Receive blocks in a socket read that ignores ctx; closing the
	// subscription is what interrupts it.
	stop := context.AfterFunc(ctx, func() { _ = ps.Close() })
	defer stop()
	failures := 0
	for {
		msg, err := ps.Receive(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			// The next Receive reconnects and resubscribes; back off so
			// a Redis outage is not a busy loop.
			lost(err)
			failures++
			if failures >= 30 {
				return r.unavailable(ctx, "events subscription", err)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(min(time.Duration(failures)*100*time.Millisecond, 2*time.Second)):
			}
			continue
		}
		failures = 0
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				subscribed()
			}
		case *redis.Message:
			if ev, err := ParseEvent(m.Payload); err == nil {
				on(ev)
			}
		}
	}
}

// EventKind says what an events message announces.
type EventKind int

// The event kinds.
const (
	EventVersion    EventKind = iota + 1 // the pointer switched to Version
	EventUser                            // User reacted; drop their cached answers
	EventExperiment                      // an experiment started or ended: read the routing again
	EventCatalog                         // the catalog changed up to Seq: reload the hidden set
)

// Event is one parsed message of the events channel.
type Event struct {
	Kind    EventKind
	Version Version
	User    setlist.UserID
	Seq     int64 // EventCatalog's catalog sequence
}

// VersionEvent is the message announcing a switch to v.
func VersionEvent(v Version) string { return "version " + versionString(v) }

// UserEvent is the message announcing that u reacted.
func UserEvent(u setlist.UserID) string { return "user " + string(u) }

// ParseEvent reads "version V", "user U" (U may contain spaces),
// "catalog SEQ" or "experiment".
func ParseEvent(msg string) (Event, error) {
	if msg == ExperimentEvent {
		return Event{Kind: EventExperiment}, nil
	}
	kind, arg, ok := strings.Cut(msg, " ")
	switch {
	case ok && kind == "version":
		v, err := ParseVersion(arg)
		if err != nil {
			return Event{}, fmt.Errorf("event %q: bad version: %w", msg, err)
		}
		return Event{Kind: EventVersion, Version: v}, nil
	case ok && kind == "user" && arg != "":
		return Event{Kind: EventUser, User: setlist.UserID(arg)}, nil
	case ok && kind == "catalog":
		seq, err := strconv.ParseInt(arg, 10, 64)
		if err != nil || seq < 0 {
			return Event{}, fmt.Errorf("event %q: bad catalog sequence", msg)
		}
		return Event{Kind: EventCatalog, Seq: seq}, nil
	}
	return Event{}, fmt.Errorf("event %q: want \"version V\", \"user U\", \"catalog SEQ\" or \"experiment\"", msg)
}

// unavailable is unavailable for r's calls. On a Redis Cluster it also
// asks the client to reload the slot map: go-redis refreshes it on MOVED
// and ASK replies and on a 10 s timer, but not on a refused connection, so
// after a master dies and its replica is promoted (no MOVED: the old
// master never answers again) the client would keep sending that master's
// slots to the dead address for up to 10 s. The reload runs in the
// background, one at a time and at most every 200 ms (go-redis), so an
// outage's stream of errors costs a few CLUSTER SLOTS a second. It runs
// after a deadline too: a master cut off without a reset only times out.
func (r *Reader) unavailable(ctx context.Context, op string, err error) error {
	if c, ok := r.rdb.(*redis.ClusterClient); ok {
		c.ReloadState(ctx)
	}
	return unavailable(op, err)
}

func unavailable(op string, err error) error {
	return fmt.Errorf("%s: %w: %w", op, setlist.ErrUnavailable, err)
}
