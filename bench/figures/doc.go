// Package figures holds the figure harnesses of the model families: long,
// CPU-heavy measurements on the shared data (docs/BENCHMARKS.md, "Tuner"
// and "EASE against the tuned ALS") that used to sit among internal/als's
// and internal/ease's tests. They skip unless SETLIST_FIGURES=1 and the
// shared data is present (realdata.CSR), use only the families' exported
// API, and append their lines to SETLIST_FIGURES_OUT (realdata.FigureLog).
//
// EASE's catalog-size figure (TestFigureCatalogSizes) stays in
// internal/ease: its memory-only mode runs training's allocations without
// the inverse, which needs the package's unexported steps.
package figures
