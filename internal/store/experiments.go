package store

import (
	"fmt"
	"time"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/experiment"
)

// ExperimentStatus is where an experiment is in its life.
type ExperimentStatus string

// The experiment statuses: one experiment at most is running (a partial
// unique index in both backends); it ends stopped (control kept) or
// promoted (the challenger became current).
const (
	ExperimentRunning  ExperimentStatus = "running"
	ExperimentStopped  ExperimentStatus = "stopped"
	ExperimentPromoted ExperimentStatus = "promoted"
)

// CheckEnding refuses a status an experiment cannot end in (both backends'
// EndExperiment check it before writing).
func (s ExperimentStatus) CheckEnding(id int64) error {
	if s != ExperimentStopped && s != ExperimentPromoted {
		return fmt.Errorf("end experiment %d: status %q: %w", id, s, setlist.ErrInvalid)
	}
	return nil
}

// NewExperiment is what StartExperiment records.
type NewExperiment struct {
	Name       string
	Control    int64 // the current version when it starts
	Challenger int64
	Share      float64
	Salt       string
	Alpha      float64
	MDE        float64
}

// Validate checks the fields both backends' CHECK constraints would refuse,
// so the error says which one.
func (n NewExperiment) Validate() error {
	r := experiment.Routing{Challenger: n.Challenger, Share: n.Share, Salt: n.Salt}
	if err := r.Validate(); err != nil {
		return err
	}
	if n.Control == n.Challenger {
		return fmt.Errorf("challenger version %d is the control (current) version: %w", n.Challenger, setlist.ErrInvalid)
	}
	d := experiment.Design{Alpha: n.Alpha, MDE: n.MDE, Share: n.Share, Power: 0.8}
	return d.Validate()
}

// ExperimentExposure is one user answered in an arm of an experiment, first
// at At.
type ExperimentExposure struct {
	User setlist.UserID
	Arm  setlist.Arm
	At   time.Time
}

// Experiment is one stored experiment.
type Experiment struct {
	ID         int64            `json:"id"`
	Name       string           `json:"name"`
	Control    int64            `json:"control_version"`
	Challenger int64            `json:"challenger_version"`
	Share      float64          `json:"share"`
	Salt       string           `json:"-"` // routing detail; not for clients, who could otherwise pick their arm
	Alpha      float64          `json:"alpha"`
	MDE        float64          `json:"mde"`
	Status     ExperimentStatus `json:"status"`
	StartedAt  time.Time        `json:"started_at"`
	EndedAt    *time.Time       `json:"ended_at,omitempty"`
}

// Routing is what serve needs to route users into the experiment's arms.
func (e Experiment) Routing() experiment.Routing {
	return experiment.Routing{ID: e.ID, Challenger: e.Challenger, Share: e.Share, Salt: e.Salt}
}

// Design is the readout's test design.
func (e Experiment) Design() experiment.Design {
	return experiment.Design{Alpha: e.Alpha, MDE: e.MDE, Share: e.Share, Power: 0.8}
}
