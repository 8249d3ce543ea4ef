package api

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/store"
)

// TestContentionIs503 (issue 18 item 4): a write that kept colliding after
// the backend's retries is a 503 with Retry-After that says so, never a 500.
func TestContentionIs503(t *testing.T) {
	app := fiber.New(fiber.Config{ErrorHandler: errorHandler(slog.New(slog.NewTextHandler(io.Discard, nil)), 64<<10)})
	app.Get("/", func(*fiber.Ctx) error {
		return fmt.Errorf("react like to song 1 for %q: gave up after 4 tries: %w: %w", "u", store.ErrContention,
			errors.New("ERROR: deadlock detected (SQLSTATE 40P01)"))
	})
	res, err := app.Test(httptest.NewRequest(http.MethodGet, "/", nil))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" ||
		!strings.Contains(string(body), "concurrent writes") || strings.Contains(string(body), "deadlock") {
		t.Fatalf("%d Retry-After %q %s; want 503 with Retry-After naming the collision, not the internals",
			res.StatusCode, res.Header.Get("Retry-After"), body)
	}
	if !errors.Is(store.ErrContention, setlist.ErrUnavailable) {
		t.Fatal("ErrContention must be ErrUnavailable")
	}
}
