// Package figures holds the figure harnesses of serve's server in
// process: long measurements (docs/BENCHMARKS.md, "Takedown latency on
// two replicas" and "Redis Cluster at scale"; docs/RELIABILITY.md, the
// read floods of issue 24) that used to sit among serve/internal/server's
// tests. They skip unless SETLIST_FIGURES=1. The scenarios they measure
// are shared with the tests that check them (serve/internal/servertest,
// its failover package and serve/internal/fixture); the package is under
// serve/ because only code there may import serve/internal.
package figures
