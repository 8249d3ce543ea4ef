package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/als"
	"github.com/setlist/setlist/internal/artifact"
	"github.com/setlist/setlist/internal/feedback"
	"github.com/setlist/setlist/internal/keyspace"
	"github.com/setlist/setlist/internal/model"
	"github.com/setlist/setlist/internal/store"
)

// DefaultMinListeners is how many of the version's users must have played
// or liked a new song before batch refresh folds it in: with fewer the
// solve rests on one or two people's taste.
const DefaultMinListeners = 3

// refreshSlack is how far before the version's snapshot a reaction row may
// have been created and still mark its song as a candidate: a row's
// created_at is its transaction's start, which can precede a snapshot it
// committed after. Songs the version knows are dropped anyway, so a wide
// margin costs only a larger scan.
const refreshSlack = time.Hour

// RefreshSource finds new songs and their listeners in the system of
// record, and records refreshes (both backends).
type RefreshSource interface {
	SongsReactedSince(ctx context.Context, since time.Time) ([]setlist.SongID, error)
	SongReactions(ctx context.Context, songs []setlist.SongID) ([]setlist.Reaction, error)
	// UserReactions is a listener's whole history (bm25 weighs an entry by
	// its row's length).
	UserReactions(ctx context.Context, id setlist.UserID, limit int) ([]setlist.Reaction, error)
	// HiddenSongs are the songs taken down (available false): never
	// folded in, whatever their listeners.
	HiddenSongs(ctx context.Context) (seq int64, ids []setlist.SongID, err error)
	StartRefresh(ctx context.Context, version int64) (int64, error)
	FinishRefresh(ctx context.Context, id int64, end store.RefreshEnd) error
}

// RefreshPublisher is the key space side of a refresh.
type RefreshPublisher interface {
	Pointers(ctx context.Context) (keyspace.Pointers, error)
	Added(ctx context.Context, v keyspace.Version) ([]model.AddedSong, error)
	ApplyRefresh(ctx context.Context, v keyspace.Version, r keyspace.Refresh) (keyspace.RefreshReport, error)
}

// RefreshDeps are a refresh's collaborators.
type RefreshDeps struct {
	Source    RefreshSource
	Locker    Locker
	Artifacts artifact.Loader
	Publisher RefreshPublisher
	Logger    *slog.Logger
	Metrics   *RefreshMetrics
}

// RefreshConfig tunes a refresh.
type RefreshConfig struct {
	MinListeners int
	// WaitLock waits for a running train instead of returning LockedError.
	WaitLock bool
}

// RefreshResult says what a refresh did.
type RefreshResult struct {
	ID      int64 // the model_refreshes row (0: none was recorded)
	Version model.Version
	Status  store.RefreshStatus
	Reason  string
	// Songs are the songs folded in (new, or folded again because their
	// listener count changed); Waiting are candidates with too few
	// listeners yet.
	Songs   []setlist.SongID
	Waiting int
	Report  keyspace.RefreshReport
	Seconds float64
}

// Refresh folds the songs first played after the current version's
// snapshot into that version, without training: each song with at least
// MinListeners listeners among the version's users gets the vector
// training would give it from their user vectors (als.UserSide.FoldItem,
// the same weighting and confidence), and every user whose stored list it
// now enters (its score beats the list's last) gets the list rewritten in
// place (keyspace.Publisher.ApplyRefresh), never a listener of the song.
// Serve loads the added songs for fold-ins, similar songs and explanations.
// A song already added is folded in again only when its listener count
// changed, so a second refresh with nothing new writes nothing to Redis.
// Each refresh is recorded in the registry (model_refreshes) against the
// version. An EASE version has no item factors to fold into: the refresh
// is recorded skipped and its new songs wait for the next train.
func Refresh(ctx context.Context, cfg RefreshConfig, d RefreshDeps) (res RefreshResult, err error) {
	start := time.Now()
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MinListeners < 1 {
		cfg.MinListeners = DefaultMinListeners
	}
	// The training lock, as train and republish take it: a refresh must
	// not write lists of a version a train is about to replace, nor race a
	// second refresh. Being locked out is not a failure (no metrics, no
	// registry row; its status series says locked, which keeps the stale
	// alert quiet while a train runs): the CronJob runs again in 15 minutes.
	release, err := d.Locker.LockTraining(ctx, cfg.WaitLock, func(holder string) {
		d.Logger.Info("waiting for the training lock", "holder", holder)
	})
	if errors.Is(err, setlist.ErrConflict) {
		res.Status = refreshLocked
		d.Metrics.observe(res, nil)
		return res, &LockedError{Err: err}
	}
	if err != nil {
		return res, fmt.Errorf("take training lock: %w", err)
	}
	defer release()
	defer func() {
		res.Seconds = time.Since(start).Seconds()
		d.Metrics.observe(res, err)
	}()
	ptr, err := d.Publisher.Pointers(ctx)
	if err != nil {
		return res, err
	}
	if ptr.Current == 0 {
		return res, fmt.Errorf("refresh: no published version: %w", setlist.ErrNotFound)
	}
	v := ptr.Current
	res.Version = v
	id, err := d.Source.StartRefresh(ctx, int64(v))
	if err != nil {
		return res, err
	}
	res.ID = id
	defer func() {
		end := store.RefreshEnd{Status: res.Status, Songs: res.Songs, UsersUpdated: res.Report.Updated, Reason: res.Reason}
		if err != nil {
			end.Status, end.Reason = store.RefreshFailed, err.Error()
			res.Status = store.RefreshFailed
		}
		// The row is closed even when ctx was cancelled (SIGTERM).
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if ferr := d.Source.FinishRefresh(fctx, id, end); ferr != nil {
			err = errors.Join(err, ferr)
		}
	}()
	a, err := artifact.Load(ctx, d.Artifacts, v)
	if err != nil {
		return res, fmt.Errorf("refresh version %d: %w", v, err)
	}
	if a.Family != artifact.FamilyALS || a.Side == nil {
		res.Status, res.Reason = store.RefreshSkipped, fmt.Sprintf("a %s version has no item factors: new songs wait for the next train", a.Family)
		d.Logger.Info("refresh skipped", "version", v, "reason", res.Reason)
		return res, nil
	}
	plan, err := planRefresh(ctx, cfg, d, a)
	if err != nil {
		return res, fmt.Errorf("refresh version %d: %w", v, err)
	}
	res.Waiting = plan.waiting
	res.Status = store.RefreshDone
	if len(plan.changed) == 0 {
		d.Logger.Info("refresh: nothing new", "version", v, "waiting", plan.waiting)
		return res, nil
	}
	for _, s := range plan.changed {
		res.Songs = append(res.Songs, s.Song)
	}
	record, err := model.EncodeAdded(plan.record)
	if err != nil {
		return res, err
	}
	res.Report, err = d.Publisher.ApplyRefresh(ctx, v, keyspace.Refresh{
		Added: record,
		Users: len(a.Users),
		User:  func(i int) setlist.UserID { return a.Users[i] },
		Merge: plan.merge(a),
	})
	if err != nil {
		return res, err
	}
	d.Logger.Info("refreshed", "version", v, "songs", res.Songs, "users_updated", res.Report.Updated,
		"lists_read", res.Report.Read, "waiting", plan.waiting, "seconds", time.Since(start).Seconds())
	return res, nil
}

// refreshPlan is what a refresh adds: the songs folded in now (changed)
// with who reacted to them, and the whole added record after it.
type refreshPlan struct {
	changed []model.AddedSong
	record  []model.AddedSong
	// reacted[s] are the artifact rows of the users who reacted to the
	// changed song s in any way (never recommended it), sorted.
	reacted map[setlist.SongID][]int32
	waiting int
}

func planRefresh(ctx context.Context, cfg RefreshConfig, d RefreshDeps, a *artifact.Artifact) (*refreshPlan, error) {
	since := a.Meta.SnapshotAt.Add(-refreshSlack)
	if a.Meta.SnapshotAt.IsZero() {
		since = a.Meta.TrainedAt.Add(-refreshSlack)
	}
	recent, err := d.Source.SongsReactedSince(ctx, since)
	if err != nil {
		return nil, err
	}
	_, hidden, err := d.Source.HiddenSongs(ctx)
	if err != nil {
		return nil, err
	}
	candidates := slices.DeleteFunc(recent, func(s setlist.SongID) bool {
		_, known := a.Catalog.Index(s)
		return known || slices.Contains(hidden, s)
	})
	prev, err := d.Publisher.Added(ctx, a.Meta.Version)
	if err != nil {
		return nil, err
	}
	plan := &refreshPlan{reacted: map[setlist.SongID][]int32{}}
	if len(candidates) == 0 {
		plan.record = prev
		return plan, nil
	}
	reactions, err := d.Source.SongReactions(ctx, candidates)
	if err != nil {
		return nil, err
	}
	row := make(map[setlist.UserID]int32, len(a.Users))
	for i, u := range a.Users {
		row[u] = int32(i)
	}
	// One signal per (song, user) the version knows, as training merges
	// a user's reactions on a song.
	type key struct {
		song setlist.SongID
		user int32
	}
	signals := map[key]*model.Signal{}
	var order []key
	for _, r := range reactions {
		u, ok := row[r.User]
		if !ok {
			continue // a user newer than the version has no vector to lend
		}
		k := key{r.Song, u}
		s := signals[k]
		if s == nil {
			s = &model.Signal{}
			signals[k] = s
			order = append(order, k)
		}
		s.Add(r.Kind, float32(r.Weight))
	}
	bySong := map[setlist.SongID][]als.Listener{}
	reacted := map[setlist.SongID][]int32{}
	for _, k := range order {
		reacted[k.song] = append(reacted[k.song], k.user)
		if w, ok := signals[k].Weight(a.Meta.Scheme); ok {
			bySong[k.song] = append(bySong[k.song], als.Listener{User: k.user, Value: w})
		}
	}
	users, err := model.ALSUserSide(a.Side, a.UserFactors, len(a.Users))
	if err != nil {
		return nil, err
	}
	prevBy := map[setlist.SongID]model.AddedSong{}
	for _, s := range prev {
		prevBy[s.Song] = s
	}
	var rowLens map[int32]float64
	for _, song := range candidates {
		ls := bySong[song]
		positive := 0
		for _, l := range ls {
			if l.Value > 0 {
				positive++
			}
		}
		if positive < cfg.MinListeners {
			if positive > 0 {
				plan.waiting++
			}
			continue
		}
		if old, ok := prevBy[song]; ok && old.Listeners == len(ls) {
			continue // folded in already from the same listeners
		}
		if users.Params.Weighting == feedback.WeightBM25 {
			if rowLens == nil {
				rowLens = map[int32]float64{}
			}
			for j := range ls {
				n, err := rowLength(ctx, d.Source, a, rowLens, ls[j].User)
				if err != nil {
					return nil, err
				}
				ls[j].RowLength = n + math.Abs(float64(ls[j].Value))
			}
		}
		vec, err := users.FoldItem(ls)
		if err != nil {
			return nil, fmt.Errorf("song %d: %w", song, err)
		}
		var weight float32
		if users.Params.Weighting == feedback.WeightBM25 {
			weight = float32(feedback.IDF(len(a.Users), len(ls)))
		}
		s := model.AddedSong{Song: song, Listeners: len(ls), Weight: weight, Vector: vec}
		plan.changed = append(plan.changed, s)
		prevBy[song] = s
		slices.Sort(reacted[song])
		plan.reacted[song] = reacted[song]
	}
	for _, s := range prev {
		plan.record = append(plan.record, prevBy[s.Song])
	}
	for _, s := range plan.changed {
		if !slices.ContainsFunc(prev, func(p model.AddedSong) bool { return p.Song == s.Song }) {
			plan.record = append(plan.record, s)
		}
	}
	return plan, nil
}

// rowLength is Σ|w| of user u's row over the songs the version knows
// (bm25's row length; the new song's entry is added by the caller).
func rowLength(ctx context.Context, src RefreshSource, a *artifact.Artifact, memo map[int32]float64, u int32) (float64, error) {
	if n, ok := memo[u]; ok {
		return n, nil
	}
	rs, err := src.UserReactions(ctx, a.Users[u], 0)
	if err != nil {
		return 0, err
	}
	_, vals := a.Catalog.Row(a.Meta.Scheme, rs)
	var n float64
	for _, v := range vals {
		n += math.Abs(float64(v))
	}
	memo[u] = n
	return n, nil
}

// merge is the per-user step of a refresh: the stored list without the
// songs folded in now (their scores changed), then each of them the user
// never reacted to, scored x_u·y, kept in the top K by score. The songs the
// version withholds (Meta.Unavailable) stay where they rank and do not
// count towards K, as in the training's lists.
func (p *refreshPlan) merge(a *artifact.Artifact) func(i int, old []model.Rec) ([]model.Rec, bool) {
	k := a.Side.Factors
	depth := max(a.Meta.K, 1)
	changed := make(map[setlist.SongID]bool, len(p.changed))
	for _, s := range p.changed {
		changed[s.Song] = true
	}
	withheld := make(map[setlist.SongID]bool, len(a.Meta.Unavailable))
	for _, s := range a.Meta.Unavailable {
		withheld[s] = true
	}
	return func(i int, old []model.Rec) ([]model.Rec, bool) {
		x := a.UserFactors[i*k : (i+1)*k]
		out := make([]model.Rec, 0, len(old)+len(p.changed))
		for _, r := range old {
			if !changed[r.Song] {
				out = append(out, r)
			}
		}
		for _, s := range p.changed {
			if _, found := slices.BinarySearch(p.reacted[s.Song], int32(i)); found {
				continue
			}
			var score float32
			for t, y := range s.Vector {
				score += x[t] * y
			}
			// Enters only when it beats the list's last score (or the
			// list is short): the stored list is the top K. (Its last
			// song is never a withheld one: they rank above the K-th.)
			if len(old)-countWithheld(old, withheld) >= depth && score <= old[len(old)-1].Score {
				continue
			}
			out = append(out, model.Rec{Song: s.Song, Score: score})
		}
		slices.SortStableFunc(out, func(a, b model.Rec) int {
			switch {
			case a.Score > b.Score:
				return -1
			case a.Score < b.Score:
				return 1
			}
			return 0
		})
		// Cut after the K-th available song: a withheld song below it
		// is below the list.
		available := 0
		for i, r := range out {
			if !withheld[r.Song] {
				if available++; available == depth {
					out = out[:i+1]
					break
				}
			}
		}
		return out, !slices.Equal(out, old)
	}
}

// countWithheld is how many songs of list are withheld ones.
func countWithheld(list []model.Rec, withheld map[setlist.SongID]bool) int {
	n := 0
	for _, r := range list {
		if withheld[r.Song] {
			n++
		}
	}
	return n
}

// refreshLocked is the status label of a refresh that found the training
// lock taken (never recorded in the registry).
const refreshLocked store.RefreshStatus = "locked"

// RefreshMetrics are batch refresh's series, pushed like train's
// (Pushgateway job setlist_batch, add semantics) under names of their own,
// so a refresh's push never touches the retrain's.
type RefreshMetrics struct {
	status                                *prometheus.GaugeVec
	duration, songs, users, last, success prometheus.Gauge
}

// NewRefreshMetrics registers the refresh series on reg.
func NewRefreshMetrics(reg prometheus.Registerer) (*RefreshMetrics, error) {
	g := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
	}
	m := &RefreshMetrics{
		status: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "setlist_batch_refresh_status",
			Help: "1 for the last refresh's outcome (done, skipped, failed, locked: a train held the lock), 0 for the others"}, []string{"status"}),
		duration: g("setlist_batch_refresh_duration_seconds", "how long the last refresh took"),
		songs:    g("setlist_batch_refresh_songs_added", "songs the last refresh folded into the current version"),
		users:    g("setlist_batch_refresh_users_updated", "users whose stored list the last refresh rewrote"),
		last:     g("setlist_batch_refresh_last_run_timestamp_seconds", "Unix time the last refresh ended"),
		success:  g("setlist_batch_refresh_last_success_timestamp_seconds", "Unix time a refresh last ended without failing"),
	}
	for _, c := range []prometheus.Collector{m.status, m.duration, m.songs, m.users, m.last, m.success} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register refresh metrics: %w", err)
		}
	}
	return m, nil
}

func (m *RefreshMetrics) observe(r RefreshResult, err error) {
	if m == nil {
		return
	}
	status := r.Status
	if err != nil {
		status = store.RefreshFailed
	}
	for _, s := range []store.RefreshStatus{store.RefreshDone, store.RefreshSkipped, store.RefreshFailed, refreshLocked} {
		v := 0.0
		if s == status {
			v = 1
		}
		m.status.WithLabelValues(string(s)).Set(v)
	}
	now := float64(time.Now().UnixNano()) / 1e9
	m.last.Set(now)
	if status == refreshLocked {
		return // the last refresh's figures stay
	}
	m.duration.Set(r.Seconds)
	m.songs.Set(float64(len(r.Songs)))
	m.users.Set(float64(r.Report.Updated))
	if status != store.RefreshFailed {
		m.success.Set(now)
	}
}
