package api

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/model"
	"github.com/setlist/setlist/internal/registry"
	"github.com/setlist/setlist/internal/store"
	"github.com/setlist/setlist/serve/internal/exposure"
	"github.com/setlist/setlist/serve/internal/recs"
)

// userParam is the :user_id path segment, unescaped and copied out of the
// request buffer (fasthttp reuses it; the near cache keeps the id).
func userParam(c *fiber.Ctx) (setlist.UserID, error) {
	raw := c.Params("user_id")
	s, err := url.PathUnescape(raw)
	if err != nil {
		return "", fmt.Errorf("user_id %q is not a valid URL path segment: %w", raw, setlist.ErrInvalid)
	}
	// The rule normalises (NFC), so a path spelt in another form finds the
	// same user; the result never aliases the request buffer.
	return setlist.ParseUserID(strings.Clone(s))
}

func songParam(c *fiber.Ctx) (setlist.SongID, error) {
	n, err := strconv.ParseInt(c.Params("song_id"), 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("song_id must be a positive integer, got %q: %w", c.Params("song_id"), setlist.ErrInvalid)
	}
	return setlist.SongID(n), nil
}

// intQuery reads an integer query parameter within [lo, hi], def if absent.
func intQuery(c *fiber.Ctx, name string, def, lo, hi int) (int, error) {
	s := c.Query(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%s must be an integer from %d to %d, got %q: %w", name, lo, hi, s, setlist.ErrInvalid)
	}
	return n, nil
}

func (a *API) recommendations(c *fiber.Ctx) error {
	u, err := userParam(c)
	if err != nil {
		return err
	}
	if err := checkParams(c, append([]string{"n"}, filterParams...)...); err != nil {
		return err
	}
	n, err := intQuery(c, "n", 5, 1, recs.MaxN)
	if err != nil {
		return err
	}
	f, err := parseFilter(c)
	if err != nil {
		return err
	}
	ans, err := a.deps.Recs.RecommendFiltered(c.UserContext(), a.client(c), u, n, f)
	if err != nil {
		return err
	}
	if a.deps.Exposure != nil {
		a.deps.Exposure.Answered(exposure.Answer{User: u, Version: ans.Version, Arm: ans.Arm, Source: ans.Source, Songs: ans.Shown})
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Send(ans.Body)
}

type userPage struct {
	Users      []setlist.User `json:"users"`
	NextCursor string         `json:"next_cursor,omitempty"`
}

func (a *API) searchUsers(c *fiber.Ctx) error {
	limit, err := intQuery(c, "limit", 20, 1, 100)
	if err != nil {
		return err
	}
	q, err := searchQuery(c)
	if err != nil {
		return err
	}
	page, err := a.deps.DB.SearchUsers(c.UserContext(), store.UserQuery{Query: q, Limit: limit, Cursor: c.Query("cursor")})
	if err != nil {
		return err
	}
	if page.Users == nil {
		page.Users = []setlist.User{}
	}
	return c.JSON(userPage{Users: page.Users, NextCursor: page.Next})
}

type newUserBody struct {
	UserID      setlist.UserID    `json:"user_id"`
	DisplayName string            `json:"display_name"`
	Likes       []setlist.SongRef `json:"likes"`
}

func (a *API) createUser(c *fiber.Ctx) error {
	var b newUserBody
	if err := decodeJSON(c, &b); err != nil {
		return err
	}
	id, err := setlist.ParseUserID(string(b.UserID))
	if err != nil {
		return err
	}
	// A recreated id may have lists and fold-ins from its previous life:
	// it is marked touched before it commits, so none of them is served.
	u, err := a.deps.DB.CreateUser(a.marked(c), setlist.NewUser{ID: id, DisplayName: b.DisplayName, Likes: b.Likes})
	if err != nil {
		return err
	}
	c.Location("/v1/users/" + url.PathEscape(string(u.ID)))
	return c.Status(fiber.StatusCreated).JSON(createdUser{User: u, Warning: a.notify(c, u.ID, u.Seq)})
}

// createdUser is a created user, with a warning when the write is saved but
// the replicas could not be told again after its commit (see notify).
type createdUser struct {
	setlist.User
	Warning string `json:"warning,omitempty"`
}

// marked is the request's context carrying the write mark: a reaction
// write raises the user's freshness mark in Redis (Recs.Reacted) as the
// last step before it commits, and is rolled back (503, nothing saved) if
// it cannot. So a committed write always has its mark, and the batch list
// from before it is never served again (issue 24 item 2: a mark written
// after the commit could fail and leave a committed like served back).
func (a *API) marked(c *fiber.Ctx) context.Context {
	return store.WithWriteMark(c.UserContext(), a.deps.Recs.Reacted)
}

// writeSavedWarning is what a saved write answers when telling the caches
// again after the commit failed (docs/API.md, "Writes and freshness").
const writeSavedWarning = "saved, but the serving cache could not be refreshed after the commit: a list computed while it was being saved may still be shown"

// headerWarning carries writeSavedWarning on a 204, which has no body.
const headerWarning = "X-Setlist-Warning"

// notify tells this replica's near cache, the user's cached fold-in and
// the other replicas once more after the commit: a fold-in computed between
// the mark and the commit read the database without the write. The write
// is saved and marked whatever happens here, so a failure is a warning in
// the answer (and a log line), never an error status.
func (a *API) notify(c *fiber.Ctx, u setlist.UserID, seq int64) string {
	if err := a.deps.Recs.Reacted(c.UserContext(), u, seq); err != nil {
		a.deps.Log.WarnContext(c.UserContext(), "write saved and marked, but the caches could not be told after the commit", "user", u, "err", err)
		return writeSavedWarning
	}
	return ""
}

func (a *API) user(c *fiber.Ctx) error {
	id, err := userParam(c)
	if err != nil {
		return err
	}
	u, err := a.deps.DB.User(c.UserContext(), id)
	if err != nil {
		return err
	}
	return c.JSON(u)
}

func (a *API) reactions(c *fiber.Ctx) error {
	id, err := userParam(c)
	if err != nil {
		return err
	}
	limit, err := intQuery(c, "limit", 50, 1, 500)
	if err != nil {
		return err
	}
	list, err := a.deps.DB.ReactionList(c.UserContext(), id, limit)
	if err != nil {
		return err
	}
	if list == nil {
		list = []store.ReactedSong{}
	}
	return c.JSON(fiber.Map{"user_id": id, "reactions": list})
}

type reactionBody struct {
	setlist.SongRef
	Kind setlist.ReactionKind `json:"kind"`
}

func (a *API) react(c *fiber.Ctx) error {
	id, err := userParam(c)
	if err != nil {
		return err
	}
	var b reactionBody
	if err := decodeJSON(c, &b); err != nil {
		return err
	}
	if !b.Kind.Valid() {
		return fmt.Errorf("kind must be like, dislike or play, got %q: %w", b.Kind, setlist.ErrInvalid)
	}
	// A like or dislike is attributed to the last list answered to u
	// within the window, read before the write and stored in the write's
	// transaction. If it cannot be read the reaction is still recorded,
	// unattributed: the listener's opinion matters more than the metric.
	var shown *store.Shown
	if store.Attributed(b.Kind) {
		if sh, err := a.shown(c.UserContext(), id); err == nil {
			shown = &sh
		}
	}
	r, outcome, err := a.deps.DB.ReactAttributed(a.marked(c), id, b.SongRef, b.Kind, shown)
	if err != nil {
		return err
	}
	if store.Attributed(b.Kind) {
		a.deps.Metrics.Attributed(string(b.Kind), outcome != nil, outcome != nil && outcome.Shown())
	}
	return c.Status(fiber.StatusCreated).JSON(reactionAnswer{Reaction: r, Attribution: answeredOf(outcome), Warning: a.notify(c, id, r.Seq)})
}

// shown is what an opinion of u is attributed to (issue 24 item 8): the
// last list answered to u within keyspace.ShownWindow, never a list serve
// merely holds (a like of a batch song by a user never answered is not
// shown); without one, the version and arm u is assigned, not shown.
func (a *API) shown(ctx context.Context, u setlist.UserID) (store.Shown, error) {
	if a.deps.Exposure != nil {
		l, ok, err := a.deps.Exposure.Shown(ctx, u)
		if err != nil {
			return store.Shown{}, err
		}
		if ok {
			return store.Shown{Version: int64(l.Version), Arm: l.Arm, Source: l.Source, Songs: l.Songs}, nil
		}
	}
	v, arm := a.deps.Recs.Assigned(u)
	return store.Shown{Version: int64(v), Arm: arm}, nil
}

// reactionAnswer is a recorded reaction with, for a like or dislike, its
// attribution as stored (absent when it could not be attributed; a
// repeated opinion keeps its first), and a warning when the write is saved
// but the caches could not be told again after its commit.
type reactionAnswer struct {
	setlist.Reaction
	Attribution *answeredAttribution `json:"attribution,omitempty"`
	Warning     string               `json:"warning,omitempty"`
}

// answeredAttribution is what a write answer says of an attribution:
// whether the song was in the list answered, and where. Never the arm nor
// the version (issue 24 item 8): a write token must not learn a user's
// experiment arm without the user being answered, and so counted, in it.
type answeredAttribution struct {
	Shown    bool           `json:"shown"`
	Source   setlist.Source `json:"source,omitempty"`
	Position int            `json:"position,omitempty"`
}

func answeredOf(o *store.Outcome) *answeredAttribution {
	if o == nil {
		return nil
	}
	return &answeredAttribution{Shown: o.Shown(), Source: o.Source, Position: o.Position}
}

func (a *API) unreact(c *fiber.Ctx) error {
	id, err := userParam(c)
	if err != nil {
		return err
	}
	song, err := songParam(c)
	if err != nil {
		return err
	}
	kind := setlist.ReactionKind(c.Query("kind"))
	if kind == "" && len(c.Body()) > 0 {
		var b struct {
			Kind setlist.ReactionKind `json:"kind"`
		}
		if err := decodeJSON(c, &b); err != nil {
			return err
		}
		kind = b.Kind
	}
	if !kind.Valid() {
		return fmt.Errorf("kind (query or body) must be like, dislike or play, got %q: %w", kind, setlist.ErrInvalid)
	}
	seq, err := a.deps.DB.Unreact(a.marked(c), id, song, kind)
	if err != nil {
		return err
	}
	if w := a.notify(c, id, seq); w != "" {
		c.Set(headerWarning, w) // 204 has no body to carry it
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (a *API) searchSongs(c *fiber.Ctx) error {
	limit, err := intQuery(c, "limit", 20, 1, 100)
	if err != nil {
		return err
	}
	q, err := searchQuery(c)
	if err != nil {
		return err
	}
	sq := store.SongQuery{Query: q, Limit: limit}
	if err := songQuery(c, &sq); err != nil {
		return err
	}
	if raw := c.Query("cursor"); raw != "" {
		if sq.After, err = decodeSongCursor(raw); err != nil {
			return err
		}
	}
	songs, err := a.deps.DB.SearchCatalog(c.UserContext(), sq)
	if err != nil {
		return err
	}
	if songs == nil {
		songs = []setlist.CatalogSong{}
	}
	out := fiber.Map{"songs": songs}
	// Without a query the list is alphabetical and pages on: a full page
	// names where the next starts (possibly an empty page at the very end).
	if q == "" && len(songs) == limit {
		out["next_cursor"] = encodeSongCursor(store.Key(songs[len(songs)-1]))
	}
	return c.JSON(out)
}

func (a *API) similar(c *fiber.Ctx) error {
	song, err := songParam(c)
	if err != nil {
		return err
	}
	if err := checkParams(c, append([]string{"n"}, filterParams...)...); err != nil {
		return err
	}
	n, err := intQuery(c, "n", 10, 1, recs.MaxN)
	if err != nil {
		return err
	}
	f, err := parseFilter(c)
	if err != nil {
		return err
	}
	snap, similar, err := a.deps.Recs.SimilarFiltered(c.UserContext(), a.client(c), song, n, f)
	if errors.Is(err, setlist.ErrNotFound) {
		// Say which: a song that does not exist, or one the model
		// has no factors for yet.
		if _, dbErr := a.deps.DB.Song(c.UserContext(), song); dbErr != nil {
			return dbErr
		}
		return err
	}
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Send(snap.AppendSimilar(make([]byte, 0, 64+96*len(similar)), song, similar))
}

// modelInfo is GET /v1/model: what is served, how good it was offline, and
// the registry's recent runs.
type modelInfo struct {
	Version    *model.Version `json:"version"`
	TrainedAt  *time.Time     `json:"trained_at,omitempty"`
	SnapshotAt *time.Time     `json:"snapshot_at,omitempty"`
	AgeSeconds float64        `json:"age_seconds,omitempty"`
	LoadedAt   *time.Time     `json:"loaded_at,omitempty"`
	// Family is the served model's family ("als" or "ease"); Params are
	// that family's parameters.
	Family    string             `json:"family,omitempty"`
	Params    any                `json:"params,omitempty"`
	Scheme    any                `json:"scheme,omitempty"`
	Metrics   map[string]float64 `json:"metrics,omitempty"`
	K         int                `json:"k,omitempty"`
	Users     int                `json:"users,omitempty"`
	Items     int                `json:"items,omitempty"`
	Runs      []store.Run        `json:"runs"`
	RunsError string             `json:"runs_error,omitempty"`
	// Tuning is the search that chose the served parameters (the served
	// run's own, or the one it took them from); absent when none did.
	Tuning *modelTuning `json:"tuning,omitempty"`
	// Online is what listeners did with what they were shown, per version
	// (the offline metrics' online counterpart); OnlineError says it could
	// not be read.
	Online      *modelOnline `json:"online,omitempty"`
	OnlineError string       `json:"online_error,omitempty"`
	// Refresh is how the served version takes new songs between trainings
	// (batch refresh); absent before a model is loaded.
	Refresh *modelRefresh `json:"refresh,omitempty"`
}

// modelRefresh says whether the served version's family takes new songs
// between trainings and what its last refresh did.
type modelRefresh struct {
	Supported bool           `json:"supported"`
	Reason    string         `json:"reason,omitempty"`
	Last      *store.Refresh `json:"last,omitempty"`
	Error     string         `json:"error,omitempty"`
}

// onlineDays is how many UTC days (today included) /v1/model's online
// metrics cover.
const onlineDays = 7

// modelOnline is the online metrics of the last onlineDays UTC days: per
// version (summed over days, sources and arms; users are user-days), per
// version, source and arm, and per day as well. Since is the first of
// those days with figures (the window's first when there are none).
type modelOnline struct {
	Since    string               `json:"since"`
	Versions []store.OnlineMetric `json:"versions"`
	Sources  []store.OnlineMetric `json:"sources"`
	Daily    []store.OnlineMetric `json:"daily"`
}

// firstDay is the first UTC day daily has figures for, else windowStart:
// "since" is when the figures start, not when the window does (data
// created today is "since today", issue 26 item 12).
func firstDay(daily []store.OnlineMetric, windowStart string) string {
	first := ""
	for _, d := range daily {
		if d.Day != "" && (first == "" || d.Day < first) {
			first = d.Day
		}
	}
	if first == "" {
		return windowStart
	}
	return first
}

// modelTuning names the winning trial, the budget used and why the search
// stopped, with every trial in evaluation order and the best so far.
type modelTuning struct {
	registry.TuningSummary
	Trials []registry.TrialView `json:"trials"`
	// TrialsError says the trials could not be read (the summary could).
	TrialsError string `json:"trials_error,omitempty"`
}

// model answers GET /v1/model from the report cache (reports.go): computed
// at most once per ReportMaxAge for the served snapshot, however many ask.
func (a *API) model(c *fiber.Ctx) error {
	snap := a.deps.Recs.Current()
	body, err := a.modelReport.get(c.UserContext(), snap, func(ctx context.Context) ([]byte, bool, error) {
		info := a.modelInfo(ctx, snap)
		body, err := json.Marshal(info)
		return body, info.RunsError == "" && info.OnlineError == "", err
	})
	if err != nil {
		return err
	}
	return sendRevalidated(c, body)
}

// sendRevalidated sends a JSON report with a strong ETag (a hash of the
// body) and no-cache, and a 304 without the body when If-None-Match holds
// that ETag. The page polls GET /v1/model this way to switch to a new
// version by itself (issue 26 item 8): the report is computed at most once
// per ReportMaxAge per process however many tabs poll (reports.go), and an
// unchanged one costs a hash and a few hundred bytes.
func sendRevalidated(c *fiber.Ctx, body []byte) error {
	sum := sha256.Sum256(body)
	etag := `"` + hex.EncodeToString(sum[:12]) + `"`
	c.Set(fiber.HeaderETag, etag)
	c.Set(fiber.HeaderCacheControl, "no-cache")
	if inm := c.Get(fiber.HeaderIfNoneMatch); inm != "" && etagMatches(inm, etag) {
		return c.SendStatus(fiber.StatusNotModified)
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Send(body)
}

// modelInfo reads what GET /v1/model shows about snap (nil: none loaded).
// A part the registry cannot give is left out and named in *_error: the
// model in memory is still worth showing.
func (a *API) modelInfo(ctx context.Context, snap *recs.Snapshot) modelInfo {
	var info modelInfo
	if snap != nil {
		m := snap.Published.Meta
		info.Version, info.LoadedAt = &snap.Version, &snap.LoadedAt
		info.TrainedAt, info.SnapshotAt = &m.TrainedAt, &m.SnapshotAt
		info.AgeSeconds = time.Since(m.TrainedAt).Seconds()
		info.Family, info.Params, info.Scheme, info.Metrics = m.FamilyOf(), m.Params, m.Scheme, m.Metrics
		if m.EASE != nil {
			info.Params = m.EASE
		}
		info.K, info.Users, info.Items = m.K, m.Users, m.Items
		info.Refresh = a.refresh(ctx, snap.Version, m.FamilyOf())
	}
	runs, err := a.deps.DB.Runs(ctx, 10)
	if err != nil {
		a.deps.Metrics.StoreError("postgres", "runs")
		info.RunsError = "the run registry is unavailable"
	}
	info.Runs = runs
	if info.Runs == nil {
		info.Runs = []store.Run{}
	}
	if info.Version != nil && err == nil {
		info.Tuning = a.tuning(ctx, int64(*info.Version), runs)
	}
	since := time.Now().UTC().AddDate(0, 0, 1-onlineDays)
	if daily, err := a.deps.DB.OnlineMetrics(ctx, since); err != nil {
		a.deps.Metrics.StoreError("postgres", "online_metrics")
		info.OnlineError = "the online metrics are unavailable"
	} else {
		if daily == nil {
			daily = []store.OnlineMetric{}
		}
		info.Online = &modelOnline{Since: firstDay(daily, store.Day(since)), Versions: store.VersionOnline(daily), Sources: store.TotalOnline(daily), Daily: daily}
	}
	return info
}

// refresh describes the served version's last batch refresh; the model
// panel still renders without it, so a registry error is only noted.
func (a *API) refresh(ctx context.Context, v model.Version, family string) *modelRefresh {
	if family != model.FamilyALS {
		return &modelRefresh{Reason: "a " + family + " version has no item factors to fold new songs into: they wait for the next train"}
	}
	r := &modelRefresh{Supported: true}
	last, err := a.deps.DB.LastRefresh(ctx, int64(v))
	switch {
	case errors.Is(err, setlist.ErrNotFound):
	case err != nil:
		a.deps.Metrics.StoreError("postgres", "last_refresh")
		r.Error = "the refresh registry is unavailable"
	default:
		r.Last = &last
	}
	return r
}

// tuning finds the search behind the served run's parameters; the model
// panel still renders without it, so a registry error only leaves it out.
func (a *API) tuning(ctx context.Context, version int64, recent []store.Run) *modelTuning {
	i := slices.IndexFunc(recent, func(r store.Run) bool { return r.ID == version })
	var served store.Run
	if i >= 0 {
		served = recent[i]
	} else {
		var err error
		if served, err = a.deps.DB.Run(ctx, version); err != nil {
			if !errors.Is(err, setlist.ErrNotFound) {
				a.deps.Metrics.StoreError("postgres", "runs")
			}
			return nil
		}
	}
	return a.runTuning(ctx, served)
}

// runTuning is the search behind run's parameters (its own, for a tune, or
// the one a train started from), with its trials; nil when none chose them.
func (a *API) runTuning(ctx context.Context, run store.Run) *modelTuning {
	// The run's params are the pipeline's RunParams; only the summary of
	// the search is read here, so serve need not link the pipeline.
	var p struct {
		Tuning *registry.TuningSummary `json:"tuning"`
	}
	if json.Unmarshal(run.Params, &p) != nil || p.Tuning == nil {
		return nil
	}
	t := &modelTuning{TuningSummary: *p.Tuning, Trials: []registry.TrialView{}}
	trials, err := a.deps.DB.TuningTrials(ctx, p.Tuning.Run)
	if err != nil {
		a.deps.Metrics.StoreError("postgres", "tuning_trials")
		t.TrialsError = "the tuning trials are unavailable"
		return t
	}
	t.Trials = registry.ViewTrials(trials)
	return t
}

// runs is GET /v1/runs: the registry's latest runs, newest first (the page's
// run picker).
func (a *API) runs(c *fiber.Ctx) error {
	limit, err := intQuery(c, "limit", 20, 1, 100)
	if err != nil {
		return err
	}
	list, err := a.deps.DB.Runs(c.UserContext(), limit)
	if err != nil {
		return err
	}
	if list == nil {
		list = []store.Run{}
	}
	return c.JSON(fiber.Map{"runs": list})
}

// run is GET /v1/runs/{run_id}: one run and the search behind its
// parameters with every trial (the page's search view, issue 26 item 17).
func (a *API) run(c *fiber.Ctx) error {
	id, err := strconv.ParseInt(c.Params("run_id"), 10, 64)
	if err != nil || id <= 0 {
		return fmt.Errorf("run_id must be a positive integer, got %q: %w", c.Params("run_id"), setlist.ErrInvalid)
	}
	run, err := a.deps.DB.Run(c.UserContext(), id)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"run": run, "tuning": a.runTuning(c.UserContext(), run)})
}

// readyz is 200 only when the key-value store and the database answer and a
// model is loaded; otherwise 503 naming each failed check. The checks are
// named after what was pinged (postgres and redis, or the embedded store's
// sqlite and in-process redis). A Redis Cluster with some masters down
// (one lost before its replica's promotion) is ready but degraded: serve
// answers every request, those masters' users from fold-in or popular,
// and a probe that pulled the pod, on every replica at once, would turn a
// third of the users' fallback answers into everyone's errors (issue 25
// item 1). The answer then lists "degraded" and
// setlist_serve_redis_masters_down counts the masters.
func (a *API) readyz(c *fiber.Ctx) error {
	ctx, cancel := context.WithTimeout(c.UserContext(), time.Second)
	defer cancel()
	checks := map[string]string{}
	var degraded []string
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name, p := range map[string]Pinger{a.deps.KVName: a.deps.Redis, a.deps.DBName: a.deps.DB} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			status, isDegraded := "ok", false
			if h, ok := p.(RedisHealth); ok {
				health, err := h.Health(ctx)
				a.deps.Metrics.RedisMastersDown.Set(float64(len(health.Down)))
				switch {
				case err != nil:
					status = err.Error()
				case health.Degraded():
					status, isDegraded = "degraded: "+health.String(), true
				}
			} else if err := p.Ping(ctx); err != nil {
				status = err.Error()
			}
			mu.Lock()
			checks[name] = status
			if isDegraded {
				degraded = append(degraded, name)
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	checks["model"] = "ok"
	if snap := a.deps.Recs.Current(); snap == nil {
		checks["model"] = "no model loaded yet"
	} else {
		checks["model_version"] = strconv.FormatInt(int64(snap.Version), 10)
	}
	if a.draining.Load() {
		checks["server"] = "shutting down"
	}
	var failed []string
	for _, name := range []string{a.deps.KVName, a.deps.DBName, "model", "server"} {
		if s, ok := checks[name]; ok && s != "ok" && !slices.Contains(degraded, name) {
			failed = append(failed, name)
		}
	}
	if len(failed) > 0 {
		c.Set(fiber.HeaderRetryAfter, RetryAfter)
		return c.Status(fiber.StatusServiceUnavailable).JSON(fiber.Map{
			"error": "not ready", "detail": "failed: " + strings.Join(failed, ", "), "checks": checks})
	}
	if len(degraded) > 0 {
		slices.Sort(degraded)
		return c.JSON(fiber.Map{"status": "ready", "degraded": degraded, "checks": checks})
	}
	return c.JSON(fiber.Map{"status": "ready", "checks": checks})
}

// encodeSongCursor and decodeSongCursor write and read GET /v1/songs'
// next_cursor: the last song's place in the alphabetical list, as
// base64url JSON so clients treat it as opaque.
func encodeSongCursor(k store.CatalogKey) string {
	b, _ := json.Marshal([]any{k.Artist, k.Track, k.ID})
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeSongCursor(raw string) (*store.CatalogKey, error) {
	bad := fmt.Errorf("cursor %.40q is not one this server issued: %w", raw, setlist.ErrInvalid)
	b, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil {
		return nil, bad
	}
	var parts []json.RawMessage
	if json.Unmarshal(b, &parts) != nil || len(parts) != 3 {
		return nil, bad
	}
	var k store.CatalogKey
	if json.Unmarshal(parts[0], &k.Artist) != nil || json.Unmarshal(parts[1], &k.Track) != nil || json.Unmarshal(parts[2], &k.ID) != nil || k.ID <= 0 {
		return nil, bad
	}
	return &k, nil
}
