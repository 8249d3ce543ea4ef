package keyspace

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// Catalog holds the catalog change sequence serve's replicas last had to
// hear about (decimal; absent: 0, no change announced yet). The system of
// record (songs.available and its change sequence) is the truth; this key
// is the version serve polls beside the model pointer, so a replica that
// missed the "catalog SEQ" message reloads its hidden set within one poll.
// It is in the slot of {P}, with the pointers.
func (k Keys) Catalog() string { return k.shared("catalog") }

// CatalogEvent is the events-channel message announcing that the catalog
// changed up to sequence seq (a song hidden or shown, its metadata edited):
// every replica reloads its hidden set and song metadata.
func CatalogEvent(seq int64) string { return "catalog " + strconv.FormatInt(seq, 10) }

// catalogScript raises KEYS[1] to ARGV[1] (never lowers it: two notifiers
// may arrive in either order) and publishes ARGV[3] on channel ARGV[2],
// in one script so no replica hears the message before the key says so.
var catalogScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
local new = ARGV[1]
if not cur or #cur < #new or (#cur == #new and cur < new) then redis.call('SET', KEYS[1], new) end
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1`)

func catalogChanged(ctx context.Context, rdb redis.Scripter, keys Keys, seq int64) error {
	if seq < 0 {
		return fmt.Errorf("catalog sequence %d is negative", seq)
	}
	if err := catalogScript.Run(ctx, rdb, []string{keys.Catalog()}, strconv.FormatInt(seq, 10), keys.Events(), CatalogEvent(seq)).Err(); err != nil {
		return unavailable("announce catalog change", err)
	}
	return nil
}

func readCatalogSeq(ctx context.Context, rdb redis.Cmdable, keys Keys) (int64, error) {
	s, err := rdb.Get(ctx, keys.Catalog()).Result()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, unavailable("read catalog sequence", err)
	}
	seq, err := strconv.ParseInt(s, 10, 64)
	if err != nil || seq < 0 {
		return 0, fmt.Errorf("catalog sequence %q in %s is not a non-negative integer", s, keys.Catalog())
	}
	return seq, nil
}

// CatalogChanged announces that the catalog changed up to sequence seq
// (the system of record's catalog change sequence, after its transaction
// committed): it raises the Catalog key and publishes "catalog SEQ", so
// every serve replica applies the change within a round trip. It is the
// api's CatalogNotifier.
func (r *Reader) CatalogChanged(ctx context.Context, seq int64) error {
	return catalogChanged(ctx, r.rdb, r.keys, seq)
}

// CatalogSeq is the catalog sequence last announced (0: none).
func (r *Reader) CatalogSeq(ctx context.Context) (int64, error) {
	return readCatalogSeq(ctx, r.rdb, r.keys)
}

// CatalogChanged is Reader.CatalogChanged for batch (`batch catalog
// hide|show`).
func (p *Publisher) CatalogChanged(ctx context.Context, seq int64) error {
	return catalogChanged(ctx, p.rdb, p.keys, seq)
}
