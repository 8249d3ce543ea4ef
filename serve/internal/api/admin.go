package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/batch/model"
)

// Admin performs the operator actions exposed under /v1/admin.
type Admin interface {
	// Rollback swaps the current and previous model versions and records it
	// in the run registry, as `batch rollback` does; it returns the
	// versions now current and previous.
	Rollback(ctx context.Context, reason string) (current, previous model.Version, err error)
}

// adminAuth guards /v1/admin. With no token configured the endpoints do not
// exist (404), so an unconfigured deployment exposes nothing. Otherwise the
// request needs "Authorization: Bearer <token>": both sides are hashed first
// and the digests compared in constant time, so neither the token's content
// nor its length leaks through response timing. A wrong or missing token is
// 401.
func (a *API) adminAuth(c *fiber.Ctx) error {
	if a.adminDigest == nil {
		return fiber.NewError(fiber.StatusNotFound, "admin endpoints are disabled (set --admin-token-file or SETLIST_ADMIN_TOKEN)")
	}
	got, ok := strings.CutPrefix(c.Get(fiber.HeaderAuthorization), "Bearer ")
	digest := sha256.Sum256([]byte(strings.TrimSpace(got)))
	if subtle.ConstantTimeCompare(digest[:], a.adminDigest) != 1 || !ok {
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="setlist admin"`)
		return fiber.NewError(fiber.StatusUnauthorized, "admin endpoints need Authorization: Bearer <admin token>")
	}
	return c.Next()
}

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
	if err != nil {
		return err
	}
	loaded, err := a.deps.Recs.Refresh(c.UserContext())
	if err != nil {
		// The switch happened; this replica catches up on its next poll.
		a.deps.Log.WarnContext(c.UserContext(), "reload after rollback failed", "err", err, "request_id", requestID(c))
	}
	return c.JSON(fiber.Map{"current": cur, "previous": prev, "served": loaded})
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
