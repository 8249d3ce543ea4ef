package api

import (
	"time"

	"github.com/gofiber/fiber/v2"
)

// Retrainer runs the batch pipeline inside this process. Only the
// playground has one: its embedded store is owned by serve, so `batch train`
// cannot open it while serve runs (production retrains with the batch Job).
type Retrainer interface {
	// StartRetrain begins a run in the background unless one is running;
	// started says which, and status describes the run either way.
	StartRetrain(force bool) (status RetrainStatus, started bool)
	// RetrainStatus describes the running or the last finished run.
	RetrainStatus() RetrainStatus
}

// RetrainStatus is the answer of /v1/admin/retrain.
type RetrainStatus struct {
	Running    bool       `json:"running"`
	Force      bool       `json:"force,omitempty"`
	StartedAt  *time.Time `json:"started_at,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	RunID      int64      `json:"run_id,omitempty"`
	// Version is the published model version, 0 when none was published.
	Version int64 `json:"version,omitempty"`
	// Outcome is "published", "rejected" (the quality gate; Reason says
	// why) or "failed" (Error says why); empty while running or before
	// any run.
	Outcome string  `json:"outcome,omitempty"`
	Reason  string  `json:"reason,omitempty"`
	Error   string  `json:"error,omitempty"`
	NDCG    float64 `json:"ndcg_at_5,omitempty"`
	Seconds float64 `json:"seconds,omitempty"`
}

// retrainAllowed guards /v1/admin/retrain beyond the admin token: only the
// playground wires a Retrainer, and only a client on this machine may use
// it (the playground is a local demo; a retrain costs a few seconds of
// every core).
func (a *API) retrainAllowed(c *fiber.Ctx) error {
	if a.deps.Retrain == nil {
		return fiber.NewError(fiber.StatusNotFound, "retrain runs inside serve only in the playground (serve-playground, make run); elsewhere run batch train")
	}
	if !c.Context().RemoteIP().IsLoopback() {
		return fiber.NewError(fiber.StatusForbidden, "retrain is accepted only from this machine (a loopback address)")
	}
	return nil
}

// startRetrain is POST /v1/admin/retrain, body optional {"force": true}
// (publish even when the quality gate rejects): 202 with the run's status,
// or 409 with the running one's while a run is in progress. Poll GET
// /v1/admin/retrain until "running" is false.
func (a *API) startRetrain(c *fiber.Ctx) error {
	if err := a.retrainAllowed(c); err != nil {
		return err
	}
	var b struct {
		Force bool `json:"force"`
	}
	if len(c.Body()) > 0 {
		if err := decodeJSON(c, &b); err != nil {
			return err
		}
	}
	st, started := a.deps.Retrain.StartRetrain(b.Force)
	if !started {
		return c.Status(fiber.StatusConflict).JSON(fiber.Map{"error": "conflict", "detail": "a retrain is already running", "retrain": st})
	}
	c.Set(fiber.HeaderLocation, "/v1/admin/retrain")
	return c.Status(fiber.StatusAccepted).JSON(st)
}

// retrainStatus is GET /v1/admin/retrain.
func (a *API) retrainStatus(c *fiber.Ctx) error {
	if err := a.retrainAllowed(c); err != nil {
		return err
	}
	return c.JSON(a.deps.Retrain.RetrainStatus())
}
