// Package embedded is the backend that needs no servers (--store embedded,
// `make run`): the relational data in a SQLite file (internal/sqlite) and the
// published model versions in an in-process Redis-compatible server
// (miniredis) on 127.0.0.1, reached through go-redis like the real one. So
// the key space, its Lua-scripted pointer switch, pub/sub events and SCAN
// cleanup run through keyspace's one implementation, byte for byte, and
// nothing in batch or serve logic knows which backend it talks to.
//
// miniredis keeps keys in memory only. To make published versions survive a
// restart, every key is written into the SQLite file's kv table in one
// transaction after each version switch or rollback (the "version" event the
// switch script publishes) and on Close, and loaded back at Open. A crash
// between a switch and its snapshot loses that switch: the restart serves the
// version before it, consistently, and the next publish cleans up.
//
// One process owns a data directory's key-value store at a time (an flock
// on kv.lock), since two in-memory copies would overwrite each other's
// snapshots; commands that only need the SQLite data (import, runs) do not
// take it.
package embedded

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/keyspace"
	"github.com/setlist/setlist/internal/sqlite"
)

// DefaultDir is where `make run` keeps its state (gitignored).
const DefaultDir = ".run"

// ttlTick is how often key TTLs advance: miniredis only expires keys when
// told time has passed.
const ttlTick = time.Second

// saveDelay lets the publisher's cleanup after a switch (retiring old
// versions) finish before the snapshot is taken.
const saveDelay = 300 * time.Millisecond

// Store is an open embedded backend: the SQLite database and, once
// StartKV has run, the in-process key-value server.
type Store struct {
	DB  *sqlite.DB
	dir string
	log *slog.Logger

	kv     *miniredis.Miniredis
	rdb    *redis.Client
	lock   *os.File
	stop   context.CancelFunc
	done   sync.WaitGroup
	saveMu sync.Mutex
}

// Open opens and migrates the SQLite database in dir. It starts no key-value
// server: call StartKV for commands that read or publish models.
func Open(ctx context.Context, dir string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	db, err := sqlite.Open(ctx, dir)
	if err != nil {
		return nil, err
	}
	applied, err := db.Migrate(ctx)
	if err != nil {
		db.Close()
		return nil, err
	}
	if len(applied) > 0 {
		log.Info("migrated embedded database", "path", db.Path(), "applied", applied)
	}
	return &Store{DB: db, dir: dir, log: log}, nil
}

// StartKV takes the data directory's key-value lock, starts the in-process
// server on a free loopback port, restores the last snapshot into it and
// returns a client to it; prefix is the key prefix whose events trigger
// snapshots.
func (s *Store) StartKV(ctx context.Context, prefix string) (*redis.Client, error) {
	if s.rdb != nil {
		return s.rdb, nil
	}
	lock, err := lockDir(filepath.Join(s.dir, "kv.lock"))
	if err != nil {
		return nil, err
	}
	m := miniredis.NewMiniRedis()
	if err := m.StartAddr("127.0.0.1:0"); err != nil {
		lock.Close()
		return nil, fmt.Errorf("start embedded key-value server: %w", err)
	}
	entries, err := s.DB.LoadKV(ctx)
	if err != nil {
		m.Close()
		lock.Close()
		return nil, err
	}
	if err := restore(m, entries); err != nil {
		m.Close()
		lock.Close()
		return nil, err
	}
	s.kv, s.lock = m, lock
	s.rdb = redis.NewClient(&redis.Options{Addr: m.Addr()})
	bg, stop := context.WithCancel(context.WithoutCancel(ctx))
	s.stop = stop
	s.done.Add(2)
	go s.tick(bg)
	go s.saveOnSwitch(bg, keyspace.NewKeys(prefix))
	s.log.Debug("embedded key-value server started", "addr", m.Addr(), "keys_restored", len(entries))
	return s.rdb, nil
}

// Close saves the key-value snapshot, stops the server and closes the
// database. It is safe to call once.
func (s *Store) Close() error {
	var err error
	if s.kv != nil {
		s.stop()
		s.done.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = s.Save(ctx)
		cancel()
		_ = s.rdb.Close()
		s.kv.Close()
		_ = s.lock.Close()
	}
	s.DB.Close()
	return err
}

// Save writes every key of the key-value server into the SQLite file in one
// transaction.
func (s *Store) Save(ctx context.Context) error {
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	entries := snapshot(s.kv, time.Now())
	if err := s.DB.SaveKV(ctx, entries); err != nil {
		return err
	}
	s.log.Debug("embedded key-value snapshot saved", "keys", len(entries))
	return nil
}

// tick advances miniredis's clock so TTLs (fold-in cache, retired
// versions) expire in real time.
func (s *Store) tick(ctx context.Context) {
	defer s.done.Done()
	t := time.NewTicker(ttlTick)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			s.kv.FastForward(now.Sub(last))
			last = now
		}
	}
}

// saveOnSwitch snapshots the key-value store shortly after every version
// switch or rollback announced on the events channel.
func (s *Store) saveOnSwitch(ctx context.Context, keys keyspace.Keys) {
	defer s.done.Done()
	sub := s.rdb.Subscribe(ctx, keys.Events())
	defer sub.Close()
	ch := sub.Channel()
	var timer <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case msg, ok := <-ch:
			if !ok {
				return
			}
			if strings.HasPrefix(msg.Payload, "version ") {
				timer = time.After(saveDelay)
			}
		case <-timer:
			timer = nil
			if err := s.Save(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("embedded key-value snapshot not saved; the published model is kept in memory and saved again at shutdown", "err", err)
			}
		}
	}
}

// snapshot reads every key of m with its TTL as of now.
func snapshot(m *miniredis.Miniredis, now time.Time) []sqlite.KV {
	var out []sqlite.KV
	for _, k := range m.Keys() {
		e := sqlite.KV{Key: k, Type: m.Type(k)}
		switch e.Type {
		case "string":
			v, err := m.Get(k)
			if err != nil {
				continue // expired or deleted since Keys
			}
			e.Value = []byte(v)
		case "hash":
			fields, err := m.HKeys(k)
			if err != nil {
				continue
			}
			e.Fields = make(map[string][]byte, len(fields))
			for _, f := range fields {
				e.Fields[f] = []byte(m.HGet(k, f))
			}
		default:
			continue // the key space uses strings and hashes only
		}
		if ttl := m.TTL(k); ttl > 0 {
			e.ExpireAt = now.Add(ttl)
		}
		out = append(out, e)
	}
	return out
}

// restore loads entries into m.
func restore(m *miniredis.Miniredis, entries []sqlite.KV) error {
	now := time.Now()
	for _, e := range entries {
		switch e.Type {
		case "string":
			if err := m.Set(e.Key, string(e.Value)); err != nil {
				return fmt.Errorf("restore key %q: %w", e.Key, err)
			}
		case "hash":
			fv := make([]string, 0, 2*len(e.Fields))
			for f, v := range e.Fields {
				fv = append(fv, f, string(v))
			}
			if len(fv) == 0 {
				continue
			}
			m.HSet(e.Key, fv...)
		default:
			return fmt.Errorf("restore key %q: unknown type %q", e.Key, e.Type)
		}
		if !e.ExpireAt.IsZero() {
			m.SetTTL(e.Key, max(e.ExpireAt.Sub(now), time.Millisecond))
		}
	}
	return nil
}

// InUseError is StartKV's error when another process owns the data
// directory's key-value store. It matches setlist.ErrConflict (errors.Is)
// but reads as one sentence, without the sentinel's "already exists".
type InUseError struct {
	Dir    string // the data directory
	Holder string // "pid N (program)", as the owner wrote it
}

func (e *InUseError) Error() string {
	holder := e.Holder
	if holder == "" {
		holder = "another process"
	}
	return fmt.Sprintf("the embedded store in %s is in use by %s: only one process may own its published models; "+
		"stop it first, or while the playground serves, retrain through it with `make retrain`", e.Dir, holder)
}

// Is makes errors.Is(err, setlist.ErrConflict) hold.
func (e *InUseError) Is(target error) bool { return target == setlist.ErrConflict }
