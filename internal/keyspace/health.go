package keyspace

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/setlist/setlist"
)

// Health is how much of a Redis deployment answers: a single server is up
// or not; a cluster can lose a master (until its replica is promoted) and
// still serve every other master's users.
type Health struct {
	// Masters is how many masters the slot map names (1 for one server).
	Masters int
	// Down are the addresses of the masters that did not answer a PING.
	Down []string
}

// Degraded says some but not all masters answer: the users of the others
// are served from Redis, the rest fall back.
func (h Health) Degraded() bool { return len(h.Down) > 0 && len(h.Down) < h.Masters }

// String says it for /readyz and logs.
func (h Health) String() string {
	if len(h.Down) == 0 {
		return "ok"
	}
	return fmt.Sprintf("%d of %d masters down: %s", len(h.Down), h.Masters, strings.Join(h.Down, ", "))
}

// CheckHealth pings every master concurrently (one server: that server).
// It fails, wrapping setlist.ErrUnavailable, only when no master answers or
// no seed node gives a slot map: any reachable seed will do, so a batch
// command or a serve replica starts while one node of a cluster is down or
// being rescheduled (issue 25 item 3), and a master lost before its
// replica's promotion is Degraded, not down.
func CheckHealth(ctx context.Context, rdb redis.UniversalClient) (Health, error) {
	switch c := rdb.(type) {
	case *redis.Client:
		if err := c.Ping(ctx).Err(); err != nil {
			return Health{Masters: 1, Down: []string{c.Options().Addr}}, fmt.Errorf("redis does not answer: %w: %w", setlist.ErrUnavailable, err)
		}
		return Health{Masters: 1}, nil
	case *redis.ClusterClient:
		var (
			mu    sync.Mutex
			h     Health
			first error
		)
		// ForEachMaster reloads the slot map from the first seed or known
		// node that answers CLUSTER SLOTS; fn's errors are collected, not
		// returned, so one dead master does not hide the others.
		err := c.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
			err := m.Ping(ctx).Err()
			mu.Lock()
			defer mu.Unlock()
			h.Masters++
			if err != nil {
				h.Down = append(h.Down, m.Options().Addr)
				if first == nil {
					first = err
				}
			}
			return nil
		})
		sort.Strings(h.Down)
		if err != nil {
			return h, fmt.Errorf("redis cluster slot map: no seed node answers: %w: %w", setlist.ErrUnavailable, err)
		}
		if h.Masters == 0 {
			return h, fmt.Errorf("redis cluster: no master serves any slot: %w", setlist.ErrUnavailable)
		}
		if len(h.Down) == h.Masters {
			return h, fmt.Errorf("redis cluster: %s: %w: %w", h, setlist.ErrUnavailable, first)
		}
		return h, nil
	default:
		return Health{}, fmt.Errorf("redis client %T: want *redis.Client or *redis.ClusterClient", rdb)
	}
}
