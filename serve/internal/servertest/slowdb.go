package servertest

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/postgres"
	"github.com/setlist/setlist/internal/store"
)

// SlowReportsDB holds a real pooled connection for Hold whenever the
// online metrics are read: the shape of /v1/model on a database with
// months of outcomes (110 ms in issue 24), on a test's small one. Reads
// counts the reads. serve/internal/server's report test counts them; the
// flood figure under serve/bench measures other users beside them.
type SlowReportsDB struct {
	*postgres.DB
	Hold  time.Duration
	Reads atomic.Int32
}

// OnlineMetrics holds a connection for s.Hold, then reads the metrics.
func (s *SlowReportsDB) OnlineMetrics(ctx context.Context, since time.Time) ([]store.OnlineMetric, error) {
	s.Reads.Add(1)
	if _, err := s.Pool.Exec(ctx, "SELECT pg_sleep($1)", s.Hold.Seconds()); err != nil {
		return nil, fmt.Errorf("hold a connection: %w", err)
	}
	return s.DB.OnlineMetrics(ctx, since)
}

// SlowUsersDB makes the history reads of users whose id starts with Prefix
// take Delay (a long history's read and solve, holding the fold-in slot).
type SlowUsersDB struct {
	*postgres.DB
	Prefix string
	Delay  time.Duration
}

// UserReactions sleeps s.Delay for users under s.Prefix, then reads.
func (s *SlowUsersDB) UserReactions(ctx context.Context, u setlist.UserID, limit int) ([]setlist.Reaction, error) {
	if strings.HasPrefix(string(u), s.Prefix) {
		time.Sleep(s.Delay)
	}
	return s.DB.UserReactions(ctx, u, limit)
}
