// Package api is serve's HTTP surface: the Fiber app, its routes, the
// request-id, timeout and metrics middleware, and the mapping of domain
// errors to statuses. Handlers only translate HTTP to calls on the
// recommendation service and the database and back.
package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/keyspace"
	"github.com/setlist/setlist/internal/store"
	"github.com/setlist/setlist/serve/internal/exposure"
	"github.com/setlist/setlist/serve/internal/metrics"
	"github.com/setlist/setlist/serve/internal/ratelimit"
	"github.com/setlist/setlist/serve/internal/recs"
)

// DB is what the handlers need from the system of record (PostgreSQL).
type DB interface {
	CreateUser(ctx context.Context, u setlist.NewUser) (setlist.User, error)
	User(ctx context.Context, id setlist.UserID) (setlist.User, error)
	SearchUsers(ctx context.Context, q store.UserQuery) (store.UserPage, error)
	// ReactAttributed records a reaction and, for a like or dislike, its
	// attribution against shown (nil: unattributed), in one transaction.
	ReactAttributed(ctx context.Context, id setlist.UserID, ref setlist.SongRef, kind setlist.ReactionKind, shown *store.Shown) (setlist.Reaction, *store.Outcome, error)
	Unreact(ctx context.Context, id setlist.UserID, song setlist.SongID, kind setlist.ReactionKind) (seq int64, err error)
	ReactionList(ctx context.Context, id setlist.UserID, limit int) ([]store.ReactedSong, error)
	SearchSongs(ctx context.Context, query string, limit int) ([]setlist.Song, error)
	Song(ctx context.Context, id setlist.SongID) (setlist.Song, error)
	Runs(ctx context.Context, limit int) ([]store.Run, error)
	Run(ctx context.Context, id int64) (store.Run, error)
	TuningTrials(ctx context.Context, id int64) ([]store.TuningTrial, error)
	OnlineMetrics(ctx context.Context, since time.Time) ([]store.OnlineMetric, error)
	// LastRefresh is the newest batch refresh of version (ErrNotFound:
	// none yet).
	LastRefresh(ctx context.Context, version int64) (store.Refresh, error)
	Ping(ctx context.Context) error
	ExperimentDB
	CatalogDB
}

// Pinger checks that a dependency answers (readiness).
type Pinger interface {
	Ping(ctx context.Context) error
}

// RedisHealth is the key space's readiness check: a Redis Cluster can be
// degraded (masters down, their users served fold-in or popular answers)
// and still answer, which is not a reason to pull the pod.
type RedisHealth interface {
	Health(ctx context.Context) (keyspace.Health, error)
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
	// Tokens are the API's bearer tokens (auth.go); an admin-scope token
	// enables /v1/admin. RequireAuth makes every /v1 request need a token
	// of its route's scope; without it (the loopback playground) only
	// /v1/admin needs one.
	Tokens      *Tokens
	RequireAuth bool
	// AdminToken is one more admin-scope token (--admin-token-file, kept
	// for compatibility): empty adds none.
	AdminToken string
	// AuthFailRate and AuthFailBurst are each client's bucket of failed
	// authentications (429 beyond, before the token is checked);
	// AuthFailRate ≤ 0 disables it.
	AuthFailRate  float64
	AuthFailBurst int
	// ReportMaxAge is how long GET /v1/model and GET /v1/experiments
	// serve one computation for the same snapshot (reports.go; default
	// 5s, serve sets it to the model poll interval).
	ReportMaxAge time.Duration
	// ReportRate and ReportBurst are each client's token bucket of
	// GET /v1/model and GET /v1/experiments answers (304s included): over
	// it a request waits for its turn up to its deadline, then 429;
	// ReportRate ≤ 0 disables it (serve's flags default to
	// DefaultReportRate and DefaultReportBurst).
	ReportRate  float64
	ReportBurst int
}

// The report rate's defaults: a page asks for /v1/model and
// /v1/experiments when it loads and polls /v1/model every 10 s, so 20 a
// second is two hundred open pages behind one token or address; a reader
// reloading in a hurry spends the burst.
const (
	DefaultReportRate  = 20
	DefaultReportBurst = 40
)

// Deps are what the API serves from.
type Deps struct {
	Recs    *recs.Service
	DB      DB
	Redis   Pinger
	Metrics *metrics.Metrics
	Log     *slog.Logger
	Static  fs.FS // the web page, served at /
	Admin   Admin // rollback for /v1/admin; nil when not wired
	// Retrain trains and publishes in this process (the playground's
	// /v1/admin/retrain); nil elsewhere.
	Retrain Retrainer
	// Exposure is told of every recommendation answer and says what a like
	// or dislike is attributed to (package exposure); nil: answers are not
	// recorded and every opinion is attributed as not shown.
	Exposure *exposure.Recorder
	// Catalog tells every replica that the catalog changed (catalog.go);
	// nil sends nothing (replicas then see changes at their periodic check).
	Catalog CatalogNotifier
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
	// limiter is each client address's bucket of writes (POST, DELETE:
	// refused at once when empty). Reads are not limited here: most cost
	// memory lookups, and recs bounds the scored ones per client.
	limiter *ratelimit.Buckets[netip.Addr]
	// authFailures counts failed authentications per client, whatever the
	// method (auth.go).
	authFailures *ratelimit.Buckets[netip.Addr]
	// modelReport and experimentsReport cache the read-only reports
	// (reports.go).
	modelReport, experimentsReport *report
	// reportReads is each client's bucket of report answers
	// (limitReports): the reports are cached, but a closed loop of cached
	// answers still takes the cores from everyone else.
	reportReads *ratelimit.Buckets[string]
}

// New builds the app with every route registered.
func New(cfg Config, d Deps) (*API, error) {
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 5 * time.Second
	}
	if cfg.BodyLimit <= 0 {
		cfg.BodyLimit = 64 << 10
	}
	if cfg.ReportMaxAge <= 0 {
		cfg.ReportMaxAge = 5 * time.Second
	}
	if d.DBName == "" {
		d.DBName = "postgres"
	}
	if d.KVName == "" {
		d.KVName = "redis"
	}
	if cfg.AdminToken != "" {
		if err := CheckToken(cfg.AdminToken); err != nil {
			return nil, fmt.Errorf("new api: the admin token (--admin-token-file or SETLIST_ADMIN_TOKEN) %w", err)
		}
		t := &Tokens{}
		if cfg.Tokens != nil {
			t.entries = append(t.entries, cfg.Tokens.entries...) // the caller's set stays as given
		}
		t.Add(ScopeAdmin, cfg.AdminToken)
		cfg.Tokens = t
	}
	if cfg.RequireAuth && cfg.Tokens.Len() == 0 {
		return nil, errors.New("new api: authentication is required but no token is configured")
	}
	a := &API{deps: d, cfg: cfg, limiter: ratelimit.New[netip.Addr](cfg.WriteRate, cfg.WriteBurst),
		authFailures: ratelimit.New[netip.Addr](cfg.AuthFailRate, cfg.AuthFailBurst),
		reportReads:  ratelimit.New[string](cfg.ReportRate, cfg.ReportBurst)}
	reportGate := make(chan struct{}, reportConcurrency)
	a.modelReport = newReport(cfg.ReportMaxAge, cfg.RequestTimeout, reportGate)
	a.experimentsReport = newReport(cfg.ReportMaxAge, cfg.RequestTimeout, reportGate)
	a.App = fiber.New(fiber.Config{
		DisableStartupMessage: true,
		BodyLimit:             cfg.BodyLimit,
		ReadTimeout:           cfg.ReadTimeout,
		WriteTimeout:          cfg.WriteTimeout,
		IdleTimeout:           cfg.IdleTimeout,
		ErrorHandler:          errorHandler(d.Log, cfg.BodyLimit),
		// Routes match the raw path so an escaped "/" (%2F) inside a user
		// id stays inside its segment; handlers unescape parameters.
		UnescapePath: false,
	})
	static, err := newStatic(d.Static)
	if err != nil {
		return nil, err
	}
	a.App.Use(a.edge, guardWrites, a.limitWrites)
	// Each route names the scope it needs (auth.go), so a refused request
	// is still counted under its route.
	read, write, admin := a.need(ScopeRead), a.need(ScopeWrite), a.need(ScopeAdmin)
	v1 := a.App.Group("/v1")
	// The API's description needs no token: it is what a client reads
	// before it has one (internal/openapi).
	v1.Get("/openapi.json", a.openAPI)
	v1.Get("/users", read, a.searchUsers)
	v1.Post("/users", write, a.createUser)
	v1.Get("/users/:user_id", read, a.user)
	v1.Get("/users/:user_id/recommendations", read, a.recommendations)
	v1.Get("/users/:user_id/reactions", read, a.reactions)
	v1.Post("/users/:user_id/reactions", write, a.react)
	v1.Delete("/users/:user_id/reactions/:song_id", write, a.unreact)
	v1.Get("/songs", read, a.searchSongs)
	v1.Post("/songs", admin, a.createSong)
	v1.Get("/songs/:song_id", read, a.song)
	v1.Patch("/songs/:song_id", admin, a.patchSong)
	v1.Get("/songs/:song_id/similar", read, a.similar)
	v1.Get("/model", read, a.limitReports, a.model)
	v1.Get("/experiments", read, a.limitReports, a.experiments)
	v1.Get("/runs", read, a.runs)
	v1.Get("/runs/:run_id", read, a.run)
	v1.Post("/admin/rollback", admin, a.rollback)
	v1.Post("/admin/reload", admin, a.reload)
	v1.Post("/admin/experiments", admin, a.startExperiment)
	v1.Post("/admin/experiments/stop", admin, a.stopExperiment)
	v1.Post("/admin/retrain", admin, a.startRetrain)
	v1.Get("/admin/retrain", admin, a.retrainStatus)
	v1.Use(func(c *fiber.Ctx) error {
		if methods := allowed(a.App, c.Path()); len(methods) > 0 {
			return methodNotAllowed(c, methods)
		}
		return fiber.NewError(fiber.StatusNotFound, "no such endpoint: "+c.Method()+" "+c.Path())
	})
	a.App.Get("/healthz", func(c *fiber.Ctx) error { return c.JSON(fiber.Map{"status": "ok"}) })
	a.App.Get("/readyz", a.readyz)
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
	c.Set(headerNoSniff, "nosniff")
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
	for _, known := range httpMethods {
		if m == known {
			return known
		}
	}
	return "other"
}

var httpMethods = [...]string{fiber.MethodGet, fiber.MethodHead, fiber.MethodPost, fiber.MethodPut, fiber.MethodPatch,
	fiber.MethodDelete, fiber.MethodOptions, fiber.MethodConnect, fiber.MethodTrace}
