// Package command defines the serve CLI and wires the server together. It
// is a package (not main) so tests can check Kubernetes manifests against the
// real flag definitions (ParseConfig), and so the playground's binary
// (serve/playground) can reuse every flag and the wiring with a Mode of its
// own, while production serve links none of the playground's code (its
// embedded store, the training pipeline, the sample's names).
package command

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/urfave/cli/v2"

	"github.com/setlist/setlist/internal/config"
	"github.com/setlist/setlist/serve/internal/api"
	"github.com/setlist/setlist/serve/internal/recs"
	"github.com/setlist/setlist/serve/internal/server"
	"github.com/setlist/setlist/web"
)

// Config is everything serve is configured with; every field is a flag that
// also reads the environment variable named in its help.
type Config struct {
	Stores config.Stores
	Log    config.Log
	Addr   string
	// RedisPoolSize caps Redis connections (0: go-redis's default of ten
	// per CPU).
	RedisPoolSize int
	Server        server.Config
	// TrustedProxies is --trusted-proxies as given (parsed by validate).
	TrustedProxies string
	// NearCacheBytes is --near-cache-bytes as given (parsed by validate).
	NearCacheBytes string
	// AdminTokenFile holds one admin-scope bearer token (a mounted Secret);
	// SETLIST_ADMIN_TOKEN is read when it is unset. Kept for compatibility:
	// APITokensFile can hold admin tokens too.
	AdminTokenFile string
	// Auth is "tokens" (every /v1 request needs a bearer token of its
	// scope) or "off" (only /v1/admin does: the loopback playground).
	Auth string
	// APITokensFile holds the API's bearer tokens, "SCOPE TOKEN" a line.
	APITokensFile string
	// MetricsAddr is where /metrics is served, apart from the API ("" off).
	MetricsAddr string
}

// Values of --auth.
const (
	AuthTokens = "tokens"
	AuthOff    = "off"
)

// flags binds c to serve's flags (a Mode's own come after them).
func (c *Config) flags() []cli.Flag {
	s := &c.Server
	flags := append(c.Stores.ServerFlags(), c.Log.Flags()...)
	return append(flags,
		&cli.StringFlag{Name: "addr", Usage: "listen address of the API and web page (serve-playground: 127.0.0.1:8080, loopback only, unless set)", EnvVars: []string{"SETLIST_ADDR"}, Value: ":8080", Destination: &c.Addr},
		&cli.StringFlag{Name: "metrics-addr", Usage: "listen address of /metrics, a port the ingress does not route (\"\": no metrics; serve-playground: off unless set)", EnvVars: []string{"SETLIST_METRICS_ADDR"}, Value: ":9464", Destination: &c.MetricsAddr},
		&cli.StringFlag{Name: "auth", Usage: "tokens: every /v1 request needs a bearer token of its scope (read, write, admin) from --api-tokens-file; off: only /v1/admin does (serve-playground: off unless set; see docs/SECURITY.md)", EnvVars: []string{"SETLIST_AUTH"}, Value: AuthTokens, Destination: &c.Auth},
		&cli.StringFlag{Name: "api-tokens-file", Usage: "file of API bearer tokens, one \"SCOPE TOKEN\" a line (scope read, write or admin; a mounted Secret)", EnvVars: []string{"SETLIST_API_TOKENS_FILE"}, Destination: &c.APITokensFile},
		&cli.Float64Flag{Name: "auth-fail-rate", Usage: "failed authentications per second each client may sustain, whatever the method (429 beyond; 0 disables)", EnvVars: []string{"SETLIST_AUTH_FAIL_RATE"}, Value: 1, Destination: &s.API.AuthFailRate},
		&cli.IntFlag{Name: "auth-fail-burst", Usage: "failed authentications a client may make at once before --auth-fail-rate applies", EnvVars: []string{"SETLIST_AUTH_FAIL_BURST"}, Value: 10, Destination: &s.API.AuthFailBurst},
		&cli.IntFlag{Name: "max-conns-per-client", Usage: "open connections one client address may hold (trusted proxies exempt; more are answered 429 and closed; 0: no cap)", EnvVars: []string{"SETLIST_MAX_CONNS_PER_CLIENT"}, Value: 256, Destination: &s.MaxConnsPerClient},
		&cli.DurationFlag{Name: "shutdown-timeout", Usage: "how long to drain in-flight requests on SIGTERM; keep below terminationGracePeriodSeconds minus --shutdown-delay", EnvVars: []string{"SETLIST_SHUTDOWN_TIMEOUT"}, Value: 20 * time.Second, Destination: &s.ShutdownTimeout},
		&cli.DurationFlag{Name: "shutdown-delay", Usage: "how long /readyz fails before the listener closes on SIGTERM, so endpoints drop this pod first", EnvVars: []string{"SETLIST_SHUTDOWN_DELAY"}, Value: 0, Destination: &s.ShutdownDelay},
		&cli.DurationFlag{Name: "request-timeout", Usage: "deadline for handling one request, store calls included", EnvVars: []string{"SETLIST_REQUEST_TIMEOUT"}, Value: 5 * time.Second, Destination: &s.API.RequestTimeout},
		&cli.DurationFlag{Name: "read-timeout", Usage: "deadline for reading a request", EnvVars: []string{"SETLIST_READ_TIMEOUT"}, Value: 10 * time.Second, Destination: &s.API.ReadTimeout},
		&cli.DurationFlag{Name: "write-timeout", Usage: "deadline for writing a response", EnvVars: []string{"SETLIST_WRITE_TIMEOUT"}, Value: 10 * time.Second, Destination: &s.API.WriteTimeout},
		&cli.DurationFlag{Name: "idle-timeout", Usage: "how long a keep-alive connection may idle", EnvVars: []string{"SETLIST_IDLE_TIMEOUT"}, Value: 60 * time.Second, Destination: &s.API.IdleTimeout},
		&cli.IntFlag{Name: "body-limit", Usage: "largest request body in bytes (413 beyond)", EnvVars: []string{"SETLIST_BODY_LIMIT"}, Value: 64 << 10, Destination: &s.API.BodyLimit},
		&cli.DurationFlag{Name: "redis-timeout", Usage: "deadline of one Redis call on the request path", EnvVars: []string{"SETLIST_REDIS_TIMEOUT"}, Value: 250 * time.Millisecond, Destination: &s.Recs.RedisTimeout},
		&cli.DurationFlag{Name: "postgres-timeout", Usage: "deadline of one PostgreSQL read on the request path", EnvVars: []string{"SETLIST_POSTGRES_TIMEOUT"}, Value: 2 * time.Second, Destination: &s.Recs.PostgresTimeout},
		&cli.IntFlag{Name: "redis-pool-size", Usage: "Redis connections (0: ten per CPU)", EnvVars: []string{"SETLIST_REDIS_POOL_SIZE"}, Value: 0, Destination: &c.RedisPoolSize},
		&cli.StringFlag{Name: "near-cache-bytes", Usage: "memory for answers kept in process, e.g. 128MiB (0 disables the near cache; auto: an eighth of GOMEMLIMIT or the cgroup memory limit, else 256MiB)", EnvVars: []string{"SETLIST_NEAR_CACHE_BYTES"}, Value: "auto", Destination: &c.NearCacheBytes},
		&cli.DurationFlag{Name: "foldin-ttl", Usage: "lifetime of a cached fold-in answer in Redis", EnvVars: []string{"SETLIST_FOLDIN_TTL"}, Value: time.Hour, Destination: &s.Recs.FoldInTTL},
		&cli.IntFlag{Name: "foldin-depth", Usage: "songs a fold-in computes and caches, so later requests for more reuse it", EnvVars: []string{"SETLIST_FOLDIN_DEPTH"}, Value: 20, Destination: &s.Recs.FoldInDepth},
		&cli.IntFlag{Name: "explain", Usage: "fold-in songs given a \"because\" (each reuses the fold-in's factorisation: two triangular solves)", EnvVars: []string{"SETLIST_EXPLAIN"}, Value: 1, Destination: &s.Recs.Explain},
		&cli.IntFlag{Name: "foldin-concurrency", Usage: "fold-ins running at once, shared fairly between users (one each); more wait until their deadline, then get 503 (0: two per CPU)", EnvVars: []string{"SETLIST_FOLDIN_CONCURRENCY"}, Value: 0, Destination: &s.Recs.FoldInConcurrency},
		&cli.IntFlag{Name: "foldin-max-reactions", Usage: "reactions one fold-in reads and solves with, likes and dislikes first, then the newest and most played (-1: all); bounds the cost of a user with a huge history", EnvVars: []string{"SETLIST_FOLDIN_MAX_REACTIONS"}, Value: recs.DefaultFoldInMaxReactions, Destination: &s.Recs.FoldInMaxReactions},
		&cli.Float64Flag{Name: "scoring-rate", Usage: "scored answers (fold-ins, similar-song scans, filtered answers; not batch lists or cached answers) per second each client (its token, else its address) may sustain; more wait for their turn up to --request-timeout, then get 429 (0 disables)", EnvVars: []string{"SETLIST_SCORING_RATE"}, Value: recs.DefaultScoringRate, Destination: &s.Recs.ScoringRate},
		&cli.IntFlag{Name: "scoring-burst", Usage: "scored answers a client may ask for at once before --scoring-rate applies", EnvVars: []string{"SETLIST_SCORING_BURST"}, Value: recs.DefaultScoringBurst, Destination: &s.Recs.ScoringBurst},
		&cli.Float64Flag{Name: "similar-rate", Usage: "similar-songs answers, cached ones included, per second each client (its token, else its address) may sustain; more wait for their turn up to --request-timeout, then get 429 (0 disables)", EnvVars: []string{"SETLIST_SIMILAR_RATE"}, Value: recs.DefaultSimilarRate, Destination: &s.Recs.SimilarRate},
		&cli.IntFlag{Name: "similar-burst", Usage: "similar-songs answers a client may ask for at once before --similar-rate applies", EnvVars: []string{"SETLIST_SIMILAR_BURST"}, Value: recs.DefaultSimilarBurst, Destination: &s.Recs.SimilarBurst},
		&cli.Float64Flag{Name: "report-rate", Usage: "GET /v1/model and GET /v1/experiments answers (304s included) per second each client (its token, else its address) may sustain; more wait for their turn up to --request-timeout, then get 429 (0 disables)", EnvVars: []string{"SETLIST_REPORT_RATE"}, Value: api.DefaultReportRate, Destination: &s.API.ReportRate},
		&cli.IntFlag{Name: "report-burst", Usage: "report answers a client may ask for at once before --report-rate applies", EnvVars: []string{"SETLIST_REPORT_BURST"}, Value: api.DefaultReportBurst, Destination: &s.API.ReportBurst},
		&cli.Float64Flag{Name: "write-rate", Usage: "POST/DELETE requests per second each client may sustain (429 beyond; 0 disables)", EnvVars: []string{"SETLIST_WRITE_RATE"}, Value: 10, Destination: &s.API.WriteRate},
		&cli.IntFlag{Name: "write-burst", Usage: "POST/DELETE requests a client may send at once before --write-rate applies", EnvVars: []string{"SETLIST_WRITE_BURST"}, Value: 20, Destination: &s.API.WriteBurst},
		&cli.StringFlag{Name: "trusted-proxies", Usage: "comma-separated addresses or CIDRs of reverse proxies whose X-Forwarded-For names the client (the rate limit's key)", EnvVars: []string{"SETLIST_TRUSTED_PROXIES"}, Destination: &c.TrustedProxies},
		&cli.StringFlag{Name: "admin-token-file", Usage: "file holding one admin-scope bearer token (else SETLIST_ADMIN_TOKEN; no admin token anywhere: admin endpoints are off)", EnvVars: []string{"SETLIST_ADMIN_TOKEN_FILE"}, Destination: &c.AdminTokenFile},
		&cli.DurationFlag{Name: "model-poll-interval", Usage: "how often to check the model pointer besides pub/sub events", EnvVars: []string{"SETLIST_MODEL_POLL_INTERVAL"}, Value: 5 * time.Second, Destination: &s.Recs.PollInterval},
	)
}

func (c *Config) validate() error {
	var errs []error
	if c.Server.API.BodyLimit < 1 {
		errs = append(errs, fmt.Errorf("--body-limit must be ≥ 1, got %d", c.Server.API.BodyLimit))
	}
	if n, err := parseBytes(c.NearCacheBytes); err != nil {
		errs = append(errs, fmt.Errorf("--near-cache-bytes: %w", err))
	} else {
		c.Server.Recs.NearCacheBytes = n
	}
	if c.Server.Recs.FoldInMaxReactions == 0 || c.Server.Recs.FoldInMaxReactions < -1 {
		errs = append(errs, fmt.Errorf("--foldin-max-reactions must be ≥ 1, or -1 for no cap, got %d", c.Server.Recs.FoldInMaxReactions))
	}
	if c.Server.Recs.Explain < 0 || c.Server.Recs.Explain > 100 {
		errs = append(errs, fmt.Errorf("--explain must be from 0 to 100, got %d", c.Server.Recs.Explain))
	}
	for name, d := range map[string]time.Duration{"--request-timeout": c.Server.API.RequestTimeout, "--redis-timeout": c.Server.Recs.RedisTimeout,
		"--postgres-timeout": c.Server.Recs.PostgresTimeout, "--shutdown-timeout": c.Server.ShutdownTimeout, "--model-poll-interval": c.Server.Recs.PollInterval} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s must be > 0, got %v", name, d))
		}
	}
	for _, b := range []struct {
		name  string
		rate  float64
		burst int
	}{
		{"write", c.Server.API.WriteRate, c.Server.API.WriteBurst},
		{"scoring", c.Server.Recs.ScoringRate, c.Server.Recs.ScoringBurst},
		{"similar", c.Server.Recs.SimilarRate, c.Server.Recs.SimilarBurst},
		{"report", c.Server.API.ReportRate, c.Server.API.ReportBurst},
		{"auth-fail", c.Server.API.AuthFailRate, c.Server.API.AuthFailBurst},
	} {
		if b.rate < 0 || b.burst < 1 {
			errs = append(errs, fmt.Errorf("--%s-rate must be ≥ 0 and --%s-burst ≥ 1, got %g and %d", b.name, b.name, b.rate, b.burst))
		}
	}
	if c.Server.MaxConnsPerClient < 0 {
		errs = append(errs, fmt.Errorf("--max-conns-per-client must be ≥ 0, got %d", c.Server.MaxConnsPerClient))
	}
	switch c.Auth {
	case AuthTokens:
		if c.APITokensFile == "" && c.AdminTokenFile == "" && os.Getenv("SETLIST_ADMIN_TOKEN") == "" {
			errs = append(errs, errors.New("--auth tokens needs --api-tokens-file (or --auth off, only for a playground on loopback: docs/SECURITY.md)"))
		}
	case AuthOff:
	default:
		errs = append(errs, fmt.Errorf("--auth must be tokens or off, got %q", c.Auth))
	}
	c.Server.API.RequireAuth = c.Auth == AuthTokens
	proxies, err := api.ParseTrustedProxies([]string{c.TrustedProxies})
	if err != nil {
		errs = append(errs, fmt.Errorf("--trusted-proxies: %w", err))
	}
	c.Server.API.TrustedProxies = proxies
	return errors.Join(errs...)
}

// apiTokens reads --api-tokens-file; nil when it is unset.
func (c *Config) apiTokens() (*api.Tokens, error) {
	if c.APITokensFile == "" {
		return nil, nil
	}
	f, err := os.Open(c.APITokensFile)
	if err != nil {
		return nil, fmt.Errorf("read --api-tokens-file: %w", err)
	}
	defer f.Close()
	return api.ParseTokens(f, c.APITokensFile)
}

// adminToken reads the admin token from --admin-token-file or
// SETLIST_ADMIN_TOKEN; "" disables the admin endpoints.
func (c *Config) adminToken() (string, error) {
	if c.AdminTokenFile == "" {
		return strings.TrimSpace(os.Getenv("SETLIST_ADMIN_TOKEN")), nil
	}
	b, err := os.ReadFile(c.AdminTokenFile)
	if err != nil {
		return "", fmt.Errorf("read --admin-token-file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("--admin-token-file %s is empty", c.AdminTokenFile)
	}
	return tok, nil
}

// Mode is what sets a serve binary apart. Production's (NewApp) runs on
// PostgreSQL and Redis and waits for batch to migrate the schema; the
// playground's (serve/internal/playground) brings its own stores, migrates,
// and trains in this process. Both share every other flag and the server's
// wiring.
type Mode struct {
	// Name and Usage are the CLI's.
	Name, Usage string
	// Flags, if set, are the mode's own flags, after serve's; they may bind
	// to cfg.
	Flags func(cfg *Config) []cli.Flag
	// Resolve, if set, runs after parsing and before validation: it sets
	// the mode's defaults for what neither the command line nor the
	// environment set (c.IsSet), and refuses what the mode cannot do.
	Resolve func(c *cli.Context, cfg *Config) error
	// Open opens the stores, within ctx (the start deadline).
	Open func(ctx context.Context, cfg Config, logger *slog.Logger) (*Stores, error)
	// Prepare, if set, runs once the stores are open and before the server
	// is built, under the server's lifetime (ctx ends at SIGTERM): it may
	// add to cfg and deps. The returned func, if not nil, runs after the
	// server has stopped and before the stores close.
	Prepare func(ctx context.Context, cfg *Config, st *Stores, deps *server.Deps, logger *slog.Logger) (done func(), err error)
}

// production is serve as deployed.
var production = Mode{
	Name:  "serve",
	Usage: "serve setlist's recommendations, API and web page over HTTP",
	Flags: func(*Config) []cli.Flag {
		// The playground is its own binary now: say so to whoever
		// still passes the old flag, instead of "flag provided but not
		// defined".
		return []cli.Flag{&cli.BoolFlag{Name: "playground", Hidden: true, EnvVars: []string{"SETLIST_PLAYGROUND"}}}
	},
	Resolve: func(c *cli.Context, cfg *Config) error {
		if c.Bool("playground") {
			return errPlaygroundMoved
		}
		cfg.Stores.Backend = config.StorePostgresRedis
		return nil
	},
	Open: openStores,
}

// errPlaygroundMoved answers serve --playground.
var errPlaygroundMoved = errors.New("--playground: the playground is its own binary, serve-playground (make run, or go run ./serve/playground); production serve runs on PostgreSQL and Redis only")

// NewApp builds the serve CLI.
func NewApp(version string) *cli.App { return New(version, production) }

// New builds the CLI of a serve binary of the given mode.
func New(version string, mode Mode) *cli.App {
	var cfg Config
	app := newApp(version, mode, &cfg, func(c *cli.Context) error { return Serve(c.Context, version, cfg, mode) })
	// Run logs a start error with the configured --log-format, as every
	// other line (issue 26 item 12).
	app.Metadata = map[string]any{logMetadata: &cfg.Log}
	return app
}

// logMetadata is the app's Metadata key of its *config.Log.
const logMetadata = "log"

func newApp(version string, mode Mode, cfg *Config, action cli.ActionFunc) *cli.App {
	flags := cfg.flags()
	if mode.Flags != nil {
		flags = append(flags, mode.Flags(cfg)...)
	}
	return &cli.App{
		Name:           mode.Name,
		Usage:          mode.Usage,
		Version:        version,
		Flags:          flags,
		ExitErrHandler: func(*cli.Context, error) {},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return fmt.Errorf("unexpected arguments %q", c.Args().Slice())
			}
			if mode.Resolve != nil {
				if err := mode.Resolve(c, cfg); err != nil {
					return err
				}
			}
			if err := cfg.validate(); err != nil {
				return err
			}
			return action(c)
		},
	}
}

// ParseConfig parses args (args[0] is the program name) and the environment
// with the real flag definitions without starting anything, so tests can
// check that Kubernetes manifests pass flags serve understands.
func ParseConfig(args []string) (Config, error) { return Parse(production, args) }

// Parse is ParseConfig for a serve binary of the given mode.
func Parse(mode Mode, args []string) (Config, error) {
	var cfg Config
	app := newApp("test", mode, &cfg, func(*cli.Context) error { return nil })
	app.Writer, app.ErrWriter = discard{}, discard{}
	if err := app.Run(args); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// Serve opens the stores as mode does (production waits for batch to have
// migrated the schema; the playground migrates itself), serves until ctx
// ends (SIGTERM) and then drains.
func Serve(ctx context.Context, version string, cfg Config, mode Mode) error {
	logger, err := cfg.Log.Logger(os.Stderr)
	if err != nil {
		return err
	}
	slog.SetDefault(logger)
	if cfg.Server.API.AdminToken, err = cfg.adminToken(); err != nil {
		return err
	}
	if cfg.Server.API.Tokens, err = cfg.apiTokens(); err != nil {
		return err
	}
	if !cfg.Server.API.RequireAuth {
		if loopback(cfg.Addr) {
			logger.Info("authentication is off (--auth off); listening on loopback only", "addr", cfg.Addr)
		} else {
			logger.Warn("authentication is off (--auth off) on a non-loopback address: anyone who reaches it can read and write every user's data", "addr", cfg.Addr)
		}
	}
	startCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	st, err := mode.Open(startCtx, cfg, logger)
	if err != nil {
		return err
	}
	defer st.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "setlist_serve_build_info", Help: "Always 1; the version label is the build.",
			ConstLabels: prometheus.Labels{"version": version}}, func() float64 { return 1 }))
	deps := server.Deps{DB: st.DB, Redis: st.Redis, RedisPrefix: cfg.Stores.RedisPrefix, Registry: reg, Log: logger, Static: web.Static(),
		DBName: st.DBName, KVName: st.KVName}
	if mode.Prepare != nil {
		done, err := mode.Prepare(ctx, &cfg, st, &deps, logger)
		if err != nil {
			return err
		}
		if done != nil {
			defer done()
		}
	}
	srv, err := server.New(cfg.Server, deps)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	logger.Info("serving", "url", pageURL(ln.Addr()), "store", cfg.Stores.Backend, "near_cache_bytes", cfg.Server.Recs.NearCacheBytes,
		"open_files_limit", fileLimit(), "max_conns_per_client", cfg.Server.MaxConnsPerClient)
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln) }()
	if cfg.MetricsAddr != "" {
		mln, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			_ = srv.Shutdown(context.Background())
			return fmt.Errorf("listen on --metrics-addr %s: %w", cfg.MetricsAddr, err)
		}
		logger.Info("serving metrics", "url", "http://"+mln.Addr().String()+"/metrics")
		go func() {
			if err := srv.ServeMetrics(mln); err != nil {
				errc <- err
			}
		}()
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down", "delay", cfg.Server.ShutdownDelay, "timeout", cfg.Server.ShutdownTimeout)
	// A fresh context: ctx is already cancelled, and the drain has its
	// own deadline.
	if err := srv.Shutdown(context.Background()); err != nil {
		return err
	}
	logger.Info("stopped")
	return nil
}

// loopback reports whether addr (host:port) listens on loopback only.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Run runs app and turns its error into an exit code, logging it once.
func Run(ctx context.Context, app *cli.App, args []string) int {
	err := app.RunContext(ctx, args)
	if err == nil || errors.Is(err, context.Canceled) {
		return 0
	}
	w := app.ErrWriter
	if w == nil {
		w = os.Stderr
	}
	// The flags parsed so far name the format; the default is text.
	logger := slog.New(slog.NewTextHandler(w, nil))
	if l, ok := app.Metadata[logMetadata].(*config.Log); ok {
		if configured, lerr := l.Logger(w); lerr == nil {
			logger = configured
		}
	}
	logger.Error("serve failed", "err", err)
	return 1
}

// parseBytes reads a size: "auto" (recs.AutoNearCacheBytes), or a count of
// bytes with an optional KiB, MiB, GiB (or KB, MB, GB) suffix.
func parseBytes(given string) (int64, error) {
	if strings.EqualFold(strings.TrimSpace(given), "auto") {
		n, _ := recs.AutoNearCacheBytes()
		return n, nil
	}
	n, err := config.ParseBytes(given)
	if err != nil {
		return 0, fmt.Errorf("want auto or a size such as 134217728, 128MiB or 1GiB, got %q", given)
	}
	return n, nil
}
