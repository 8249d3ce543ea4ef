package als

import (
	"context"
	"time"
)

// TuneConfig bounds a hyper-parameter search. Zero values take defaults
// (see withDefaults).
type TuneConfig struct {
	Trials             int           // maximum number of full configurations sampled
	Budget             time.Duration // wall-clock cap; 0 means none
	Seed               int64
	Threads            int
	ValidationFraction float64 // share of each user's positives held out of train; 0 means 0.15
	K                  int     // NDCG@K maximised; 0 means 5

	FactorsMin, FactorsMax               int     // sampled log-uniform, rounded to multiples of 8
	RegularizationMin, RegularizationMax float64 // log-uniform
	AlphaMin, AlphaMax                   float64 // log-uniform
	IterationsMin, IterationsMax         int
	Weightings                           []Weighting
	BM25K1Min, BM25K1Max                 float64 // log-uniform
	BM25BMin, BM25BMax                   float64 // uniform
	LogEpsilonMin, LogEpsilonMax         float64 // log-uniform
}

// Trial is one evaluated configuration. Pruned trials were stopped early by
// successive halving; their Metrics are from the shortened run.
type Trial struct {
	Number   int
	Params   Params
	Metrics  Metrics
	Duration time.Duration
	Pruned   bool
}

// Tune searches hyper-parameters maximising NDCG@K on a validation split
// carved from train only, so the caller's test set never leaks into the
// choice. onTrial is called after each trial from the calling goroutine.
func Tune(ctx context.Context, train *CSR, cfg TuneConfig, onTrial func(Trial)) (best Params, trials []Trial, err error) {
	return Params{}, nil, errTODO
}
