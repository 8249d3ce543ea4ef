package server_test

import (
	"testing"
	"time"

	"github.com/setlist/setlist/serve/internal/servertest/failover"
)

// A master of the Redis Cluster dies under load (SIGKILL) and its replica
// is promoted: serve's readers of the other masters keep their batch
// lists, the dead master's readers get 200s throughout, no acknowledged
// write is lost and readiness does not flap (the scenario and its checks:
// serve/internal/servertest/failover).

// TestClusterFailover is the lean version: a second of load, a kill,
// and the checks (failover.Result.Check) once the promoted replica serves
// again. The near cache is off, so every read asks Redis (with it on, the
// dead master's users are mostly answered from memory: serve/bench/figures'
// TestFigureClusterFailover measures both).
func TestClusterFailover(t *testing.T) {
	r := failover.Run(t, failover.Options{Readers: 24, Writers: 6, Workers: 4, Before: time.Second, After: 500 * time.Millisecond, NodeTimeout: time.Second, Client: client})
	t.Log(r)
	r.Check(t)
}
