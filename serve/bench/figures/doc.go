// Package figures holds the figure harnesses of serve's server in
// process: long measurements (docs/BENCHMARKS.md, "Redis Cluster at
// scale") that used to sit among serve/internal/server's tests. They skip unless SETLIST_FIGURES=1. The scenarios they measure
// are shared with the tests that check them (serve/internal/servertest and
// its failover package); this package is under serve/ because only code
// there may import serve/internal.
package figures
