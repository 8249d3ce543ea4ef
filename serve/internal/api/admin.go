package api

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/model"
)

// Admin performs the operator actions exposed under /v1/admin.
type Admin interface {
	// Rollback swaps the current and previous model versions and records it
	// in the run registry, as `batch rollback` does; it returns the
	// versions now current and previous.
	Rollback(ctx context.Context, reason string) (current, previous model.Version, err error)
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
