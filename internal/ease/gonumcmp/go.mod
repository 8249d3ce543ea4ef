// A separate module so that gonum stays out of setlist's go.mod: it exists
// only to time gonum's Cholesky inverse against internal/ease's sweep
// (docs/BENCHMARKS.md, "gonum's Cholesky against our sweep").
module github.com/setlist/setlist/internal/ease/gonumcmp

go 1.26

require gonum.org/v1/gonum v0.17.0
