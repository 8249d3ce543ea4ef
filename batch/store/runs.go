package store

import (
	"encoding/json"
	"time"
)

// RunStatus is where a model run stands in its life.
type RunStatus string

// The run statuses. A run is created running and ends in exactly one of the
// others; rolled_back marks a published run that a rollback replaced, and
// staged one whose users' lists the shards of `batch precompute` are still
// writing (the shard that completes them switches it to published).
const (
	RunRunning    RunStatus = "running"
	RunStaged     RunStatus = "staged"
	RunPublished  RunStatus = "published"
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
}
