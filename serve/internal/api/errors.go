package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	json "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/gofiber/fiber/v2"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/store"
	"github.com/setlist/setlist/serve/internal/ratelimit"
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
	case errors.Is(err, ratelimit.ErrLimited): // every waiting limiter's refusal (scoring, similar, report)
		return http.StatusTooManyRequests
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
// A client's error detail is clean (clientDetail); the wrapped error, with
// every layer's context, goes to the debug log.
func errorHandler(log *slog.Logger, bodyLimit int) fiber.ErrorHandler {
	return func(c *fiber.Ctx, err error) error {
		code := statusOf(err)
		body := errorBody{Error: strings.ToLower(http.StatusText(code)), Detail: clientDetail(err)}
		var fe *fiber.Error
		if errors.As(err, &fe) {
			body.Detail = fe.Message
			if code == http.StatusRequestEntityTooLarge {
				body.Detail = fmt.Sprintf("the body is larger than the limit of %s", byteWords(bodyLimit))
				// The body was not read: the connection must linger on
				// close, or the client still sending it gets a reset
				// instead of this answer (serve/internal/server/linger.go).
				if l, ok := c.Context().Conn().(interface{ LingerOnClose() }); ok {
					l.LingerOnClose()
				}
			}
		}
		id := requestID(c)
		if code < 500 {
			log.DebugContext(c.UserContext(), "request refused", "status", code, "method", c.Method(), "route", c.Route().Path,
				"request_id", id, "err", err)
		}
		if code >= 500 {
			switch {
			case errors.Is(err, recs.ErrNoModel):
				// No model yet is a state, not a failure: not logged per request.
			case errors.Is(err, recs.ErrSimilarBusy):
				log.WarnContext(c.UserContext(), "similar-song capacity busy", "status", code, "method", c.Method(), "route", c.Route().Path,
					"request_id", id, "err", err)
			case errors.Is(err, recs.ErrBusy):
				// Load, not a fault: the server shed it as designed.
				log.WarnContext(c.UserContext(), "fold-in capacity busy", "status", code, "method", c.Method(), "route", c.Route().Path,
					"request_id", id, "err", err)
			case errors.Is(err, ErrReportBusy):
				log.WarnContext(c.UserContext(), "report busy", "status", code, "method", c.Method(), "route", c.Route().Path,
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
		if le := (*ratelimit.LimitedError)(nil); errors.As(err, &le) {
			c.Set(fiber.HeaderRetryAfter, strconv.Itoa(ratelimit.RetryAfterSeconds(le.RetryAfter)))
		}
		// Also on errors raised before edge ran (a body over the limit).
		c.Set(headerNoSniff, "nosniff")
		return c.Status(code).JSON(body)
	}
}

// clientDetail is what a 4xx tells the client: the words of the error that
// names the problem, once. Layers wrap errors with their operation ("react
// like to song 3 for \"x\": ", "recommend for \"x\": reactions of \"x\": "),
// which helps the log and only repeats the request to its sender; those
// prefixes are dropped, field paths ("likes[2]: ") are kept, and the
// sentinel's words end the sentence instead of trailing it (`user "x" not
// found`, not `...: user "x": not found`; no ": invalid input").
func clientDetail(err error) string {
	for _, sentinel := range []error{setlist.ErrInvalid, setlist.ErrNotFound, setlist.ErrConflict} {
		if !errors.Is(err, sentinel) {
			continue
		}
		var fields []string
		e := err
		for {
			next := unwrapToward(e, sentinel)
			if next == nil || next == sentinel {
				break
			}
			if prefix, ok := strings.CutSuffix(e.Error(), ": "+next.Error()); ok && fieldPrefix.MatchString(prefix) {
				fields = append(fields, prefix)
			}
			e = next
		}
		msg, cut := strings.CutSuffix(e.Error(), ": "+sentinel.Error())
		if cut && sentinel != setlist.ErrInvalid {
			msg += " " + sentinel.Error()
		}
		return strings.Join(append(fields, msg), ": ")
	}
	return err.Error()
}

// fieldPrefix matches a context prefix that is a field path (likes[2],
// song.artist), which the client needs to find the problem.
var fieldPrefix = regexp.MustCompile(`^[a-z_]+(\[\d+\])?(\.[a-z_]+(\[\d+\])?)*$`)

// unwrapToward returns the error e wraps on the way to target: the one
// Unwrap gives, or of several the first that leads to target.
func unwrapToward(e, target error) error {
	switch u := e.(type) {
	case interface{ Unwrap() error }:
		return u.Unwrap()
	case interface{ Unwrap() []error }:
		for _, w := range u.Unwrap() {
			if errors.Is(w, target) {
				return w
			}
		}
	}
	return nil
}

// byteWords writes a size as people do: 64 KiB, 1 MiB, 500 bytes.
func byteWords(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

func serverDetail(err error, code int) string {
	switch {
	case errors.Is(err, recs.ErrNoModel):
		return "no model is published yet (run batch train)"
	case errors.Is(err, recs.ErrSimilarBusy):
		return "similar-song capacity is busy: too many similar-song lists are being computed at once; retry after " + RetryAfter + " s"
	case errors.Is(err, recs.ErrBusy):
		return "fold-in capacity is busy: too many recommendations are being computed at once; retry after " + RetryAfter + " s"
	case errors.Is(err, store.ErrNotMarked):
		return "not saved: the serving cache could not be marked, so the write was rolled back; retry after " + RetryAfter + " s"
	case errors.Is(err, store.ErrContention):
		return "concurrent writes to the same data kept colliding; retry after " + RetryAfter + " s"
	case code == http.StatusServiceUnavailable:
		return "a backing store is unavailable; retry later"
	}
	return "internal error"
}

// decodeJSON reads the request body into v as a 400 on any doubt: member
// names must match the fields exactly (encoding/json would take "USER_ID"
// for "user_id"), a name given twice, an unknown name, invalid UTF-8 and
// data after the value are refused. The error names the field as the client
// wrote it ("likes[1].song_id") and says what is allowed.
func decodeJSON(c *fiber.Ctx, v any) error {
	body := c.Body()
	if len(body) == 0 {
		return fmt.Errorf("the request needs a JSON body: %w", setlist.ErrInvalid)
	}
	err := json.Unmarshal(body, v, json.RejectUnknownMembers(true))
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", bodyProblem(err), setlist.ErrInvalid)
}

// bodyProblem says in the client's terms what is wrong with a JSON body.
func bodyProblem(err error) string {
	var sem *json.SemanticError
	var syn *jsontext.SyntacticError
	switch {
	case errors.As(err, &syn):
		switch {
		case errors.Is(syn.Err, jsontext.ErrDuplicateName):
			return fmt.Sprintf("%s is given twice", fieldPath(syn.JSONPointer))
		case strings.Contains(syn.Err.Error(), "UTF-8"), strings.Contains(syn.Err.Error(), "surrogate"):
			return fmt.Sprintf("the body is not valid UTF-8 (at byte %d)", syn.ByteOffset)
		case strings.Contains(syn.Err.Error(), "after top-level value"):
			return "the body has data after its JSON value"
		}
		return fmt.Sprintf("the body is not valid JSON (at byte %d)", syn.ByteOffset)
	case errors.As(err, &sem):
		if errors.Is(sem.Err, json.ErrUnknownName) {
			return fmt.Sprintf("unknown field %s (names are case-sensitive)", fieldPath(sem.JSONPointer))
		}
		got := kindWords(sem.JSONKind)
		if sem.JSONKind == '0' && len(sem.JSONValue) > 0 {
			got = string(sem.JSONValue)
		}
		if sem.JSONPointer == "" {
			return "the body must be " + typeWords(sem.GoType)
		}
		return fmt.Sprintf("%s must be %s, got %s", fieldPath(sem.JSONPointer), typeWords(sem.GoType), got)
	}
	return "the body is not valid JSON"
}

// fieldPath writes a JSON pointer ("/likes/1/song_id") as the field path a
// client reads ("likes[1].song_id").
func fieldPath(p jsontext.Pointer) string {
	var b strings.Builder
	for tok := range p.Tokens() {
		if _, err := strconv.Atoi(tok); err == nil && b.Len() > 0 {
			fmt.Fprintf(&b, "[%s]", tok)
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(tok)
	}
	if b.Len() == 0 {
		return "the body"
	}
	return b.String()
}

// typeWords names what a Go type accepts in JSON terms.
func typeWords(t reflect.Type) string {
	if t == nil {
		return "valid"
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "a JSON object"
	}
	return "valid"
}

// kindWords names a JSON value's kind.
func kindWords(k jsontext.Kind) string {
	switch k {
	case '"':
		return "a string"
	case '0':
		return "a number"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	case '[':
		return "an array"
	case '{':
		return "an object"
	}
	return "something else"
}
