package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/serve/internal/recs"
)

// errorBody is every error response: a short status phrase and what went
// wrong in words a caller can act on.
type errorBody struct {
	Error  string `json:"error"`
	Detail string `json:"detail"`
}

// statusOf maps an error to its HTTP status: the one place where domain
// errors meet HTTP.
func statusOf(err error) int {
	var fe *fiber.Error
	switch {
	case errors.As(err, &fe):
		return fe.Code
	case errors.Is(err, setlist.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, setlist.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, setlist.ErrConflict):
		return http.StatusConflict
	case errors.Is(err, setlist.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// RetryAfter is what a 503 tells clients to wait, in seconds.
const RetryAfter = "2"

// errorHandler writes err as JSON and logs it if it is the server's fault.
// Handlers only return errors; this is where they are logged, once.
func errorHandler(log *slog.Logger) fiber.ErrorHandler {
	return func(c *fiber.Ctx, err error) error {
		code := statusOf(err)
		body := errorBody{Error: strings.ToLower(http.StatusText(code)), Detail: err.Error()}
		var fe *fiber.Error
		if errors.As(err, &fe) {
			body.Detail = fe.Message
		}
		id := requestID(c)
		if code >= 500 {
			switch {
			case errors.Is(err, recs.ErrNoModel):
				// No model yet is a state, not a failure: not logged per request.
			case errors.Is(err, recs.ErrBusy):
				// Load, not a fault: the server shed it as designed.
				log.WarnContext(c.UserContext(), "fold-in capacity busy", "status", code, "method", c.Method(), "route", c.Route().Path,
					"request_id", id, "err", err)
			default:
				log.ErrorContext(c.UserContext(), "request failed", "status", code, "method", c.Method(), "route", c.Route().Path,
					"request_id", id, "err", err)
			}
			// The detail of a server-side failure names hosts and
			// internals: it goes to the log, the client gets the id.
			body.Detail = fmt.Sprintf("%s (request id %s)", serverDetail(err, code), id)
		}
		if code == http.StatusServiceUnavailable {
			c.Set(fiber.HeaderRetryAfter, RetryAfter)
		}
		// Also on errors raised before edge ran (a body over the limit).
		c.Set(headerNoSniff, "nosniff")
		return c.Status(code).JSON(body)
	}
}

func serverDetail(err error, code int) string {
	switch {
	case errors.Is(err, recs.ErrNoModel):
		return "no model is published yet (run batch train)"
	case errors.Is(err, recs.ErrBusy):
		return "fold-in capacity is busy: too many recommendations are being computed at once; retry after " + RetryAfter + " s"
	case code == http.StatusServiceUnavailable:
		return "a backing store is unavailable; retry later"
	}
	return "internal error"
}

// decodeJSON reads the request body into v, rejecting unknown fields and
// naming the field of a type error, as a 400.
func decodeJSON(c *fiber.Ctx, v any) error {
	body := c.Body()
	if len(body) == 0 {
		return fmt.Errorf("the request needs a JSON body: %w", setlist.ErrInvalid)
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case err == nil:
		if _, err := dec.Token(); err != io.EOF {
			return fmt.Errorf("the body has data after its JSON value: %w", setlist.ErrInvalid)
		}
		return nil
	case errors.As(err, &syntax):
		return fmt.Errorf("the body is not valid JSON (at byte %d): %w", syntax.Offset, setlist.ErrInvalid)
	case errors.As(err, &typ):
		return fmt.Errorf("field %s: want a JSON %s, got %s: %w", typ.Field, typ.Type.Kind(), typ.Value, setlist.ErrInvalid)
	case strings.HasPrefix(err.Error(), "json: unknown field"):
		return fmt.Errorf("%s: %w", strings.TrimPrefix(err.Error(), "json: "), setlist.ErrInvalid)
	default:
		return fmt.Errorf("the body is not valid JSON: %w", setlist.ErrInvalid)
	}
}
