// Package figures holds the figure harnesses of the model families: long,
// CPU- or memory-heavy measurements that used to sit among internal/als's
// and internal/ease's tests. On the shared data (realdata.CSR): the tuner
// and EASE against the tuned ALS (docs/BENCHMARKS.md, "Tuner" and "EASE
// against the tuned ALS"). On internal/synth's data: the ALS trainer's
// growth with users (TestTrainerScale, docs/scaling.md) and EASE's training
// against the catalog size (TestFigureCatalogSizes, "Training cost against
// catalog size"). And batch's precompute shard (TestPrecomputeFigures,
// docs/BENCHMARKS.md "Precompute shard"; batch/shard's test before issue
// 26). They skip unless SETLIST_FIGURES=1 (and, for the shared data, the
// file is present), use only the exported API of what they measure, and
// append their lines to SETLIST_FIGURES_OUT (realdata.FigureLog).
package figures
