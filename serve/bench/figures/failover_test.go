package figures

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/setlist/setlist/serve/internal/servertest/failover"
)

// TestFigureClusterFailover measures the failover at the figure's settings
// (node timeout 2 s, longer load, more users):
//
//	SETLIST_FIGURES=1 go test ./serve/bench/figures/ -run TestFigureClusterFailover -v -count 1
//
// SETLIST_FAILOVER_RUNS (default 3) repeats it, each on a fresh cluster.
func TestFigureClusterFailover(t *testing.T) {
	skipUnlessFigures(t)
	runs := 3
	if v := os.Getenv("SETLIST_FAILOVER_RUNS"); v != "" {
		fmt.Sscan(v, &runs)
	}
	for i := range runs {
		for _, c := range []struct {
			near     int64
			defaults bool
		}{{0, true}, {0, false}, {64 << 20, false}} {
			client := "failfast"
			if c.defaults {
				client = "go-redis-defaults"
			}
			near := c.near
			t.Run(fmt.Sprintf("run=%d/near-cache=%dMiB/client=%s", i, near>>20, client), func(t *testing.T) {
				load, _ := os.ReadFile("/proc/loadavg")
				r := failover.Run(t, failover.Options{Readers: 300, Writers: 30, Workers: 8, Before: 5 * time.Second, After: 5 * time.Second,
					NodeTimeout: 2 * time.Second, NearCache: near, GoRedisDefaults: c.defaults})
				t.Logf("load %s: %s", strings.TrimSpace(string(load)), r)
				r.Check(t)
			})
		}
	}
}
