package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/setlist/setlist"
)

// RunStatus is where a model run stands in its life.
type RunStatus string

// The run statuses. A run is created running and ends in exactly one of the
// others; rolled_back marks a published run that a rollback replaced, and
// staged one whose users' lists the shards of `batch precompute` are still
// writing (the shard that completes them switches it to published). tuned
// is a search alone (`batch tune`): its parameters are recorded, nothing is
// published, and the next train starts from them.
const (
	RunRunning    RunStatus = "running"
	RunStaged     RunStatus = "staged"
	RunPublished  RunStatus = "published"
	RunTuned      RunStatus = "tuned"
	RunRejected   RunStatus = "rejected"
	RunFailed     RunStatus = "failed"
	RunRolledBack RunStatus = "rolled_back"
)

// Run is one row of the model registry. Params, Metrics, Counts and Timings
// are JSON objects whose shape belongs to the pipeline; the registry only
// stores them.
type Run struct {
	ID          int64           `json:"id"`
	Status      RunStatus       `json:"status"`
	Params      json.RawMessage `json:"params"`
	Metrics     json.RawMessage `json:"metrics"`
	Counts      json.RawMessage `json:"counts"`
	Timings     json.RawMessage `json:"timings"`
	Version     *int64          `json:"version,omitempty"`
	Reason      string          `json:"reason,omitempty"`
	Notes       string          `json:"notes,omitempty"`
	SnapshotAt  *time.Time      `json:"snapshot_at,omitempty"`
	StartedAt   time.Time       `json:"started_at"`
	FinishedAt  *time.Time      `json:"finished_at,omitempty"`
	PublishedAt *time.Time      `json:"published_at,omitempty"`
}

// RunUpdate is what a run records when it ends (or along the way). Nil
// fields are left as they are.
type RunUpdate struct {
	Status     RunStatus
	Params     any
	Metrics    any
	Counts     any
	Timings    any
	Version    *int64
	Reason     string
	Notes      string
	SnapshotAt *time.Time
	// Trials, when not nil, replace the run's recorded search, in the
	// same transaction as the rest of the update: the registry never shows
	// a tuned run without its trials.
	Trials []TuningTrial
}

// TuningTrial is one evaluation of a run's hyper-parameter search: a
// configuration (Number) at one fidelity (Rung: Iterations sweeps on a
// UserFraction of the users) on one validation split. Number, Rung and Split
// identify it within the run. Params and Metrics are JSON objects whose shape
// belongs to the pipeline (the ALS parameters; ndcg_at_5, precision_at_5,
// ...).
type TuningTrial struct {
	RunID        int64           `json:"run_id"`
	Number       int             `json:"number"`
	Rung         int             `json:"rung"`
	Split        int             `json:"split"`
	Params       json.RawMessage `json:"params"`
	Iterations   int             `json:"iterations"`
	UserFraction float64         `json:"user_fraction"`
	Metrics      json.RawMessage `json:"metrics"`
	Seconds      float64         `json:"seconds"`
	Pruned       bool            `json:"pruned"`
	Promoted     bool            `json:"promoted"`
	Incumbent    bool            `json:"incumbent"`
}

// ValidateTrials reports every trial that cannot be stored (which one, and
// why) before anything is written.
func ValidateTrials(trials []TuningTrial) error {
	var errs []error
	type key struct{ number, rung, split int }
	seen := make(map[key]int, len(trials))
	finite := func(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
	for i, t := range trials {
		bad := func(format string, a ...any) {
			errs = append(errs, fmt.Errorf("trial %d (number %d, rung %d, split %d): %s", i, t.Number, t.Rung, t.Split, fmt.Sprintf(format, a...)))
		}
		if t.Number < 0 || t.Rung < 0 || t.Split < 0 {
			bad("number, rung and split must be ≥ 0")
		}
		if k := (key{t.Number, t.Rung, t.Split}); seen[k] > 0 {
			bad("same number, rung and split as trial %d", seen[k]-1)
		} else {
			seen[k] = i + 1
		}
		if t.Iterations < 0 {
			bad("iterations must be ≥ 0, got %d", t.Iterations)
		}
		if !(t.UserFraction > 0 && t.UserFraction <= 1) {
			bad("user fraction must be in (0, 1], got %v", t.UserFraction)
		}
		if !finite(t.Seconds) || t.Seconds < 0 {
			bad("seconds must be a finite number ≥ 0, got %v", t.Seconds)
		}
		for name, raw := range map[string]json.RawMessage{"params": t.Params, "metrics": t.Metrics} {
			if len(raw) == 0 {
				continue
			}
			var obj map[string]any
			if json.Unmarshal(raw, &obj) != nil || obj == nil {
				bad("%s must be a JSON object", name)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("tuning trials: %w: %w", setlist.ErrInvalid, err)
	}
	return nil
}

// JSONObject is raw as stored: an empty value is the empty object.
func JSONObject(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "{}"
	}
	return string(raw)
}
