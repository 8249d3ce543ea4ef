package api

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/experiment"
	"github.com/setlist/setlist/internal/model"
	"github.com/setlist/setlist/internal/store"
)

// Admin performs the operator actions exposed under /v1/admin.
type Admin interface {
	// Rollback swaps the current and previous model versions and records it
	// in the run registry, as `batch rollback` does; it returns the
	// versions now current and previous.
	Rollback(ctx context.Context, reason string) (current, previous model.Version, err error)
	// StartExperiment and StopExperiment are `batch experiment start` and
	// `stop` (internal/registry); stopped is false when none was running.
	StartExperiment(ctx context.Context, n store.NewExperiment) (store.Experiment, error)
	StopExperiment(ctx context.Context) (e store.Experiment, stopped bool, err error)
}

// RegistryError is Rollback's error when the pointer moved but the run
// registry could not record it: the rollback happened, so it is answered
// 200 with "registry_error" rather than as a failure a client would retry
// (a retried rollback rolls forward again).
type RegistryError struct{ Err error }

func (e *RegistryError) Error() string {
	return "the rollback is done but the run registry was not updated: " + e.Err.Error()
}

func (e *RegistryError) Unwrap() error { return e.Err }

// rollback is POST /v1/admin/rollback {"reason": "..."} (body optional).
// After the switch this replica reloads at once; the others follow the
// pointer's announcement.
func (a *API) rollback(c *fiber.Ctx) error {
	if a.deps.Admin == nil {
		return fiber.NewError(fiber.StatusNotFound, "rollback is not available on this server")
	}
	b := struct {
		Reason string `json:"reason"`
	}{Reason: "rolled back over HTTP"}
	if len(c.Body()) > 0 {
		if err := decodeJSON(c, &b); err != nil {
			return err
		}
	}
	if len(b.Reason) > 1000 || strings.IndexByte(b.Reason, 0) >= 0 {
		return fmt.Errorf("reason must be at most 1000 bytes without NUL: %w", setlist.ErrInvalid)
	}
	cur, prev, err := a.deps.Admin.Rollback(c.UserContext(), b.Reason)
	var regErr *RegistryError
	if err != nil && !errors.As(err, &regErr) {
		return err
	}
	out := fiber.Map{"current": cur, "previous": prev}
	if regErr != nil {
		a.deps.Log.ErrorContext(c.UserContext(), "rollback not recorded", "err", regErr, "request_id", requestID(c))
		out["registry_error"] = regErr.Error()
	}
	loaded, err := a.deps.Recs.Refresh(c.UserContext())
	if err != nil {
		// The switch happened; this replica catches up on its next poll.
		a.deps.Log.WarnContext(c.UserContext(), "reload after rollback failed", "err", err, "request_id", requestID(c))
	}
	out["served"] = loaded
	return c.JSON(out)
}

// reload is POST /v1/admin/reload: check the pointer now instead of at the
// next poll or event.
func (a *API) reload(c *fiber.Ctx) error {
	v, err := a.deps.Recs.Refresh(c.UserContext())
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"served": v})
}

// experimentBody is POST /v1/admin/experiments' body: the flags of `batch
// experiment start`, with the same defaults.
type experimentBody struct {
	Challenger int64    `json:"challenger_version"`
	Share      *float64 `json:"share"`
	Name       string   `json:"name"`
	Alpha      *float64 `json:"alpha"`
	MDE        *float64 `json:"mde"`
}

// startExperiment is POST /v1/admin/experiments: start an A/B experiment
// of challenger_version against the current version (201 with it; 409 when
// one runs or a training holds the lock). This replica routes by it at
// once; the others follow the key space's announcement.
func (a *API) startExperiment(c *fiber.Ctx) error {
	if a.deps.Admin == nil {
		return fiber.NewError(fiber.StatusNotFound, "experiments are not available on this server")
	}
	var b experimentBody
	if err := decodeJSON(c, &b); err != nil {
		return err
	}
	if b.Challenger <= 0 {
		return fmt.Errorf("challenger_version must be a published version (a positive integer): %w", setlist.ErrInvalid)
	}
	if len(b.Name) > 200 || strings.IndexByte(b.Name, 0) >= 0 {
		return fmt.Errorf("name must be at most 200 bytes without NUL: %w", setlist.ErrInvalid)
	}
	n := store.NewExperiment{Name: b.Name, Challenger: b.Challenger, Share: 0.1, Alpha: 0.05, MDE: 0.02}
	for _, f := range []struct {
		v   *float64
		dst *float64
	}{{b.Share, &n.Share}, {b.Alpha, &n.Alpha}, {b.MDE, &n.MDE}} {
		if f.v != nil {
			*f.dst = *f.v
		}
	}
	// The design's figures are checked before the lock is taken (the
	// registry checks the rest: the salt and control it fills in).
	if err := (experiment.Design{Alpha: n.Alpha, MDE: n.MDE, Share: n.Share, Power: 0.8}).Validate(); err != nil {
		return err
	}
	e, err := a.deps.Admin.StartExperiment(c.UserContext(), n)
	if err != nil {
		return err
	}
	if _, err := a.deps.Recs.Refresh(c.UserContext()); err != nil {
		a.deps.Log.WarnContext(c.UserContext(), "reload after starting an experiment failed", "err", err, "request_id", requestID(c))
	}
	return c.Status(fiber.StatusCreated).JSON(e)
}

// stopExperiment is POST /v1/admin/experiments/stop: end the running
// experiment (every user is served the current version again); 404 when
// none runs.
func (a *API) stopExperiment(c *fiber.Ctx) error {
	if a.deps.Admin == nil {
		return fiber.NewError(fiber.StatusNotFound, "experiments are not available on this server")
	}
	e, stopped, err := a.deps.Admin.StopExperiment(c.UserContext())
	if err != nil {
		return err
	}
	if !stopped {
		return fmt.Errorf("no experiment is running: %w", setlist.ErrNotFound)
	}
	if _, err := a.deps.Recs.Refresh(c.UserContext()); err != nil {
		a.deps.Log.WarnContext(c.UserContext(), "reload after stopping an experiment failed", "err", err, "request_id", requestID(c))
	}
	return c.JSON(e)
}
