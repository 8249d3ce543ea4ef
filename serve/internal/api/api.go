// Package api is serve's HTTP surface: the Fiber app, its routes, the
// request-id, timeout and metrics middleware, and the mapping of domain
// errors to statuses. Handlers only translate HTTP to calls on the
// recommendation service and the database and back.
package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"log/slog"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/batch/store"
	"github.com/setlist/setlist/serve/internal/metrics"
	"github.com/setlist/setlist/serve/internal/recs"
)

// DB is what the handlers need from the system of record (PostgreSQL).
type DB interface {
	CreateUser(ctx context.Context, u store.NewUser) (setlist.User, error)
	User(ctx context.Context, id setlist.UserID) (setlist.User, error)
	SearchUsers(ctx context.Context, q store.UserQuery) (store.UserPage, error)
	React(ctx context.Context, id setlist.UserID, ref store.SongRef, kind setlist.ReactionKind) (setlist.Reaction, error)
	Unreact(ctx context.Context, id setlist.UserID, song setlist.SongID, kind setlist.ReactionKind) (time.Time, error)
	ReactionList(ctx context.Context, id setlist.UserID, limit int) ([]store.ReactedSong, error)
	SearchSongs(ctx context.Context, query string, limit int) ([]setlist.Song, error)
	Song(ctx context.Context, id setlist.SongID) (setlist.Song, error)
	Runs(ctx context.Context, limit int) ([]store.Run, error)
	Run(ctx context.Context, id int64) (store.Run, error)
	TuningTrials(ctx context.Context, id int64) ([]store.TuningTrial, error)
	Ping(ctx context.Context) error
}

// Pinger checks that a dependency answers (readiness).
type Pinger interface {
	Ping(ctx context.Context) error
}

// Config tunes the HTTP layer.
type Config struct {
	// RequestTimeout bounds the whole handling of one request: every store
	// call derives its deadline from it (and has its own, shorter one).
	RequestTimeout time.Duration
	// BodyLimit is the largest request body accepted (413 beyond).
	BodyLimit int
	// ReadTimeout, WriteTimeout and IdleTimeout bound a connection's I/O.
	ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// WriteRate and WriteBurst are each client's token bucket for POST and
	// DELETE (429 beyond; WriteRate ≤ 0 disables the limit); TrustedProxies
	// are the peers whose X-Forwarded-For names the client (see limits.go).
	WriteRate      float64
	WriteBurst     int
	TrustedProxies []netip.Prefix
	// AdminToken enables /v1/admin (bearer auth); empty disables it.
	AdminToken string
}

// Deps are what the API serves from.
type Deps struct {
	Recs     *recs.Service
	DB       DB
	Redis    Pinger
	Metrics  *metrics.Metrics
	Gatherer prometheus.Gatherer
	Log      *slog.Logger
	Static   fs.FS // the web page, served at /
	Admin    Admin // rollback for /v1/admin; nil when not wired
	// Retrain trains and publishes in this process (the playground's
	// /v1/admin/retrain); nil elsewhere.
	Retrain Retrainer
	// DBName and KVName name what DB and Redis really are in /readyz's
	// checks ("postgres" and "redis" when empty; the embedded store's
	// SQLite file and in-process Redis say so).
	DBName, KVName string
}

// API is the HTTP app plus the state readiness depends on.
type API struct {
	App      *fiber.App
	deps     Deps
	cfg      Config
	draining atomic.Bool
	limiter  *writeLimiter
	// adminDigest is sha256 of the admin token, nil when admin is disabled.
	adminDigest []byte
}

// New builds the app with every route registered.
func New(cfg Config, d Deps) (*API, error) {
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 5 * time.Second
	}
	if cfg.BodyLimit <= 0 {
		cfg.BodyLimit = 64 << 10
	}
	if d.DBName == "" {
		d.DBName = "postgres"
	}
	if d.KVName == "" {
		d.KVName = "redis"
	}
	a := &API{deps: d, cfg: cfg, limiter: newWriteLimiter(cfg.WriteRate, cfg.WriteBurst, cfg.TrustedProxies)}
	if cfg.AdminToken != "" {
		sum := sha256.Sum256([]byte(cfg.AdminToken))
		a.adminDigest = sum[:]
	}
	a.App = fiber.New(fiber.Config{
		DisableStartupMessage: true,
		BodyLimit:             cfg.BodyLimit,
		ReadTimeout:           cfg.ReadTimeout,
		WriteTimeout:          cfg.WriteTimeout,
		IdleTimeout:           cfg.IdleTimeout,
		ErrorHandler:          errorHandler(d.Log),
		// Routes match the raw path so an escaped "/" (%2F) inside a user
		// id stays inside its segment; handlers unescape parameters.
		UnescapePath: false,
	})
	static, err := newStatic(d.Static)
	if err != nil {
		return nil, err
	}
	a.App.Use(a.edge, a.limitWrites)
	v1 := a.App.Group("/v1")
	v1.Get("/users", a.searchUsers)
	v1.Post("/users", a.createUser)
	v1.Get("/users/:user_id", a.user)
	v1.Get("/users/:user_id/recommendations", a.recommendations)
	v1.Get("/users/:user_id/reactions", a.reactions)
	v1.Post("/users/:user_id/reactions", a.react)
	v1.Delete("/users/:user_id/reactions/:song_id", a.unreact)
	v1.Get("/songs", a.searchSongs)
	v1.Get("/songs/:song_id/similar", a.similar)
	v1.Get("/model", a.model)
	admin := v1.Group("/admin", a.adminAuth)
	admin.Post("/rollback", a.rollback)
	admin.Post("/reload", a.reload)
	admin.Post("/retrain", a.startRetrain)
	admin.Get("/retrain", a.retrainStatus)
	v1.Use(func(c *fiber.Ctx) error {
		if methods := allowed(a.App, c.Path()); len(methods) > 0 {
			return methodNotAllowed(c, methods)
		}
		return fiber.NewError(fiber.StatusNotFound, "no such endpoint: "+c.Method()+" "+c.Path())
	})
	a.App.Get("/healthz", func(c *fiber.Ctx) error { return c.JSON(fiber.Map{"status": "ok"}) })
	a.App.Get("/readyz", a.readyz)
	a.App.Get("/metrics", adaptor.HTTPHandler(promhttp.HandlerFor(d.Gatherer, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})))
	a.App.Get("/*", static.serve)
	// Everything outside /v1 is a page, a file or a probe: GET and HEAD only.
	a.App.Use(func(c *fiber.Ctx) error {
		return methodNotAllowed(c, []string{fiber.MethodGet, fiber.MethodHead})
	})
	return a, nil
}

// Drain makes /readyz answer 503 so load balancers stop sending new
// requests before the listener closes.
func (a *API) Drain() { a.draining.Store(true) }

// Request ids: honoured from X-Request-ID when sane, otherwise a
// per-process random prefix and a counter (unique, and cheaper than a UUID
// per request).
var (
	idPrefix = func() string {
		var b [4]byte
		_, _ = rand.Read(b[:])
		return hex.EncodeToString(b[:]) + "-"
	}()
	idCounter atomic.Uint64
)

// requestID is the id edge set on the response (none for errors raised
// before the middleware ran, such as a body over the limit).
func requestID(c *fiber.Ctx) string {
	return string(c.Response().Header.Peek(fiber.HeaderXRequestID))
}

func validRequestID(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '-' || b == '_' || b == '.' || b == ':') {
			return false
		}
	}
	return true
}

// edge wraps every request: request id, deadline, error rendering and the
// duration histogram by route pattern (never the raw path, whose user ids
// would explode the label set).
func (a *API) edge(c *fiber.Ctx) error {
	start := time.Now()
	id := c.Get(fiber.HeaderXRequestID)
	if validRequestID(id) {
		id = string([]byte(id)) // the header aliases a buffer reused after the request
	} else {
		id = idPrefix + strconv.FormatUint(idCounter.Add(1), 36)
	}
	c.Set(fiber.HeaderXRequestID, id)
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.RequestTimeout)
	defer cancel()
	c.SetUserContext(ctx)
	if err := c.Next(); err != nil {
		if herr := a.App.ErrorHandler(c, err); herr != nil {
			return herr
		}
	}
	pattern := c.Route().Path
	switch pattern {
	case "/", "/v1":
		// Only middleware is registered at these paths (edge itself, and
		// the /v1 catch-all): the request matched no route. Fiber reports
		// a middleware route with the request's method, not "USE".
		pattern = "unmatched"
	}
	a.deps.Metrics.ObserveRequest(pattern, methodLabel(c.Method()), c.Response().StatusCode(), time.Since(start))
	return nil
}

// methodLabel is the metrics label of an HTTP method: one of the constant
// method names, never c.Method() itself. Fiber's strings point into
// fasthttp's request buffer, which the next request on any connection
// overwrites; a label kept in the metrics registry read "GETT" or "POS"
// after a while. Constants need no copy and bound the label set.
func methodLabel(m string) string {
	switch m {
	case fiber.MethodGet:
		return fiber.MethodGet
	case fiber.MethodHead:
		return fiber.MethodHead
	case fiber.MethodPost:
		return fiber.MethodPost
	case fiber.MethodPut:
		return fiber.MethodPut
	case fiber.MethodPatch:
		return fiber.MethodPatch
	case fiber.MethodDelete:
		return fiber.MethodDelete
	case fiber.MethodOptions:
		return fiber.MethodOptions
	case fiber.MethodConnect:
		return fiber.MethodConnect
	case fiber.MethodTrace:
		return fiber.MethodTrace
	}
	return "other"
}
