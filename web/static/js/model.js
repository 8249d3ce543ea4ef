// The model panel: the version being served, when it was trained (as a
// relative time), its metrics, and an inline SVG chart of precision@5 and
// NDCG@5 over the registry's recent runs. No chart library: a few <polyline>s.

import { h, svg, clear } from './dom.js';
import * as api from './api.js';
import * as auth from './auth.js';
import { tuningSection } from './tuning.js';
import { onlineSection } from './online.js';
import { experimentSection } from './experiment.js';

const rtf = new Intl.RelativeTimeFormat('en', { numeric: 'auto' });
const UNITS = [['year', 31536e6], ['month', 2592e6], ['week', 6048e5], ['day', 864e5], ['hour', 36e5], ['minute', 6e4], ['second', 1e3]];

/** relativeTime says "5 minutes ago" for a Date. */
export function relativeTime(date, now = Date.now()) {
  const diff = date.getTime() - now;
  for (const [unit, ms] of UNITS) {
    if (Math.abs(diff) >= ms || unit === 'second') return rtf.format(Math.round(diff / ms), unit);
  }
  return '';
}

/**
 * metric finds a metric in a metrics object whatever the pipeline named it:
 * "precision_at_k", "precision@5", "p@5", or nested ({"precision": {"5": …}}).
 */
export function metric(metrics, name) {
  if (!metrics || typeof metrics !== 'object') return undefined;
  const aliases = name === 'precision' ? ['precision', 'p@', 'prec'] : [name];
  let best;
  for (const [key, value] of Object.entries(metrics)) {
    const k = key.toLowerCase();
    if (!aliases.some((a) => k.startsWith(a))) continue;
    if (typeof value === 'number') {
      // Prefer the @5 / at_k figure over others (precision@10, …).
      if (best === undefined || /(@|_at_)(5|k)\b/.test(k)) best = value;
    } else if (value && typeof value === 'object') {
      const v = value['5'] ?? value.k ?? Object.values(value).find((x) => typeof x === 'number');
      if (typeof v === 'number' && best === undefined) best = v;
    }
  }
  if (best === undefined) {
    for (const value of Object.values(metrics)) {
      if (value && typeof value === 'object' && !Array.isArray(value)) {
        const v = metric(value, name);
        if (v !== undefined) return v;
      }
    }
  }
  return best;
}

/**
 * markLifecycle replaces "published" (what the registry keeps saying of every
 * version that was ever switched to) by what each is now: "current" (being
 * served), "previous" (the newest other published version: what a rollback
 * would restore) or "retired". Other statuses (rejected, rolled_back, …)
 * stay as recorded. points are sorted oldest first.
 */
export function markLifecycle(points, currentVersion) {
  let previousSeen = false;
  for (let i = points.length - 1; i >= 0; i--) {
    const r = points[i];
    if (r.status !== 'published') continue;
    if (currentVersion != null && String(r.version) === String(currentVersion)) {
      r.status = 'current';
    } else if (!previousSeen) {
      r.status = 'previous';
      previousSeen = true;
    } else {
      r.status = 'retired';
    }
  }
}

/**
 * PARAMS names the ALS parameters (/v1/model's snake_case keys) for people;
 * when() hides those that do not apply (BM25's only with bm25 weighting).
 */
const PARAMS = [
  ['lambda', 'Regularisation (λ, EASE)'],
  ['factors', 'Latent factors'],
  ['iterations', 'Training sweeps'],
  ['regularization', 'Regularisation (λ)'],
  ['alpha', 'Confidence scale (α)'],
  ['weighting', 'Confidence weighting', { raw: 'raw counts', log: 'log of counts', bm25: 'BM25' }],
  ['bm25_k1', 'BM25 saturation (k1)', null, (p) => p.weighting === 'bm25'],
  ['bm25_b', 'BM25 length normalisation (b)', null, (p) => p.weighting === 'bm25'],
  ['log_epsilon', 'Log scale (ε)', null, (p) => p.weighting === 'log'],
  ['cg_steps', 'Conjugate-gradient steps per sweep', { 0: '3 (default)' }],
  ['seed', 'Random seed'],
  ['threads', 'Threads', { 0: 'all cores' }],
];

/** FAMILIES names the model families /v1/model reports. */
const FAMILIES = { als: 'ALS (matrix factorisation)', ease: 'EASE (item-item, closed form)' };

/** paramRows lists params (and the reaction scheme) as [label, value, key]. */
export function paramRows(params, scheme) {
  const rows = [];
  const known = new Set();
  for (const [key, label, names, when] of PARAMS) {
    known.add(key);
    if (!(key in params) || (when && !when(params))) continue;
    const v = params[key];
    rows.push([label, names && String(v) in names ? names[String(v)] : fmt(v), key]);
  }
  // Anything newer than this page, under its own name rather than hidden.
  for (const [key, v] of Object.entries(params)) {
    if (!known.has(key)) rows.push([key.replaceAll('_', ' '), typeof v === 'object' && v !== null ? JSON.stringify(v) : fmt(v), key]);
  }
  if (scheme && typeof scheme === 'object') {
    if (typeof scheme.like_weight === 'number') rows.push(['A like counts as', `${fmt(scheme.like_weight)} plays`, 'like_weight']);
    if (typeof scheme.dislike_weight === 'number') rows.push(['A dislike weighs', `−${fmt(scheme.dislike_weight)}`, 'dislike_weight']);
  }
  return rows;
}

const fmt = (v) => (typeof v === 'number' ? (Number.isInteger(v) ? v.toLocaleString('en') : v.toFixed(4)) : String(v));

/**
 * POLL_MS is how often the panel asks whether a new version is served
 * (a conditional GET: a 304 while nothing changed). A test may set
 * globalThis.SETLIST_POLL_MS before the page's scripts run.
 */
const POLL_MS = Number(globalThis.SETLIST_POLL_MS) > 0 ? Number(globalThis.SETLIST_POLL_MS) : 10e3;

/** ModelPanel owns the #model section. */
export class ModelPanel {
  /**
   * @param {HTMLElement} root
   * @param {{onSwitch?: (version: unknown) => void}} [opts] onSwitch is told when the served version changed under the page
   */
  constructor(root, { onSwitch } = {}) {
    this.root = root;
    this.body = root.querySelector('#model-body');
    this.alert = root.querySelector('#model-alert');
    this.version = null;
    this.trainedAt = null;
    this.etag = '';
    this.onSwitch = onSwitch || (() => {});
    setInterval(() => this.tick(), 30e3);
  }

  async load() {
    this.root.setAttribute('aria-busy', 'true');
    try {
      // The experiment is an extra: a server without /v1/experiments (or
      // a registry error) still shows the model.
      const [got, exps] = await Promise.all([api.modelIfChanged(''), api.experiments().catch(() => null)]);
      this.experiments = exps;
      this.etag = got ? got.etag : '';
      this.alert.textContent = '';
      this.render((got && got.data) || {});
    } catch (err) {
      this.showError(err);
    } finally {
      this.root.removeAttribute('aria-busy');
    }
  }

  showError(err) {
    // A 401 is the sign-in form's to explain (auth.js), not the panel's.
    if (err.status === 401) return;
    clear(this.body);
    this.alert.textContent = err.status === 404 || err.status === 503
      ? 'No model has been published yet. Run `batch train` to train one.'
      : (err.human ? err.human('load the model') : String(err));
  }

  /**
   * watch asks every POLL_MS, while the tab is visible (and at once when it
   * becomes visible again), whether /v1/model changed; when the served
   * version did, the panel redraws and onSwitch is told, so a published
   * version shows without a click (issue 26 item 8). A change of the same
   * version's figures is left for the next load: redrawing would close
   * what the reader opened.
   */
  watch() {
    const poll = async () => {
      if (document.visibilityState === 'hidden' || this.polling || auth.needed()) return;
      this.polling = true;
      try {
        const got = await api.modelIfChanged(this.etag);
        if (!got) return;
        this.etag = got.etag;
        const data = got.data || {};
        const version = (data.current && data.current.version) ?? data.version ?? null;
        if (String(version) === String(this.version) && !this.alert.textContent) return;
        this.experiments = await api.experiments().catch(() => this.experiments);
        this.alert.textContent = '';
        this.render(data);
        this.onSwitch(version);
      } catch (err) {
        if (err.status === 401 || err.status === 0) return; // said elsewhere, or a blip: the next poll retries
        this.showError(err);
      } finally {
        this.polling = false;
      }
    };
    setInterval(poll, POLL_MS);
    document.addEventListener('visibilitychange', () => { if (document.visibilityState === 'visible') poll(); });
  }

  /**
   * seen is told which version (and experiment arm) the recommendations
   * came from: a challenger's version is not the current one, so it is no
   * sign the panel is stale.
   */
  seen(version, arm) {
    if (arm === 'challenger') return;
    if (this.version !== null && String(version) !== String(this.version)) this.load();
  }

  tick() {
    const time = this.body.querySelector('time[data-relative]');
    if (time && this.trainedAt) time.textContent = relativeTime(this.trainedAt);
  }

  render(data) {
    const current = data.current && typeof data.current === 'object' ? { ...data.current, ...data } : data;
    const version = current.version ?? current.model_version ?? null;
    this.version = version;
    const trained = current.trained_at || current.published_at || current.finished_at;
    this.trainedAt = trained ? new Date(trained) : null;
    const metrics = current.metrics || {};
    const params = current.params || {};
    const runs = api.pickList(data, 'runs', 'previous', 'previous_runs', 'history');

    clear(this.body);
    this.body.append(
      h('p', { class: 'model-version' },
        h('span', { class: 'big' }, version !== null ? `v${version}` : 'no version'),
        current.family ? h('span', { class: 'model-family', 'data-family': current.family }, ` ${FAMILIES[current.family] || current.family}`) : null,
        this.trainedAt && !Number.isNaN(this.trainedAt.getTime())
          ? h('span', {}, ' trained ', h('time', { datetime: this.trainedAt.toISOString(), title: this.trainedAt.toLocaleString(), 'data-relative': '' }, relativeTime(this.trainedAt)))
          : null),
      refreshLine(current.refresh) || '',
      experimentSection(this.experiments) || '',
      this.metricList(metrics),
      this.chart(runs, version, metrics),
      onlineSection(data.online, data.online_error, version),
      tuningSection(current.tuning),
      Object.keys(params).length
        ? h('details', { class: 'params' }, h('summary', {}, 'Training parameters'), this.dl(paramRows(params, current.scheme)))
        : null,
    );
  }

  metricList(metrics) {
    const shown = [
      ['Precision@5', metric(metrics, 'precision')],
      ['NDCG@5', metric(metrics, 'ndcg')],
      ['Recall@5', metric(metrics, 'recall')],
      ['MAP@5', metric(metrics, 'map')],
      ['Coverage', metric(metrics, 'coverage')],
    ].filter(([, v]) => typeof v === 'number');
    if (shown.length === 0) return h('p', { class: 'hint' }, 'No metrics recorded for this version.');
    return h('dl', { class: 'metrics' }, shown.map(([k, v]) => h('div', {}, h('dt', {}, k), h('dd', {}, fmt(v)))));
  }

  dl(rows) {
    return h('dl', { class: 'kv' }, rows.map(([label, value, key]) =>
      h('div', { 'data-param': key }, h('dt', {}, label), h('dd', {}, value))));
  }

  /**
   * chart draws precision@5 and NDCG@5 for the last runs that have metrics,
   * oldest left. Lines differ by dash and marker shape as well as colour; a
   * table with the same numbers follows for screen readers and copying.
   */
  chart(runs, currentVersion, currentMetrics) {
    let points = runs
      .map((r) => ({
        version: r.version ?? r.id,
        status: r.status || '',
        p: metric(r.metrics, 'precision'),
        n: metric(r.metrics, 'ndcg'),
      }))
      .filter((r) => r.version != null && (typeof r.p === 'number' || typeof r.n === 'number'));
    if (currentVersion != null && !points.some((r) => String(r.version) === String(currentVersion))) {
      const p = metric(currentMetrics, 'precision');
      const n = metric(currentMetrics, 'ndcg');
      if (typeof p === 'number' || typeof n === 'number') points.push({ version: currentVersion, status: 'published', p, n });
    }
    points.sort((a, b) => Number(a.version) - Number(b.version));
    markLifecycle(points, currentVersion);
    points = points.slice(-12);
    if (points.length === 0) return h('p', { class: 'hint' }, 'No runs with metrics in the registry yet.');

    const W = 320; const H = 160; const L = 40; const R = 10; const T = 12; const B = 28;
    const max = Math.max(0.05, ...points.flatMap((r) => [r.p, r.n]).filter((v) => typeof v === 'number')) * 1.15;
    const x = (i) => (points.length === 1 ? L + (W - L - R) / 2 : L + (i * (W - L - R)) / (points.length - 1));
    const y = (v) => T + (H - T - B) * (1 - v / max);
    const series = [['p', 'Precision@5', 'series-p'], ['n', 'NDCG@5', 'series-n']];

    const ticks = [0, max / 2, max].map((v) => svg('g', { class: 'tick' },
      svg('line', { x1: L, x2: W - R, y1: y(v), y2: y(v) }),
      svg('text', { x: L - 4, y: y(v) + 4, 'text-anchor': 'end' }, v.toFixed(2))));
    const xlabels = points.map((r, i) => svg('text', { x: x(i), y: H - B + 16, 'text-anchor': 'middle', class: 'xlabel' }, `v${r.version}`));
    const lines = series.map(([key, label, cls]) => {
      const pts = points.map((r, i) => [i, r[key]]).filter(([, v]) => typeof v === 'number');
      return svg('g', { class: cls },
        svg('polyline', { points: pts.map(([i, v]) => `${x(i)},${y(v)}`).join(' '), fill: 'none' }),
        pts.map(([i, v]) => (key === 'p'
          ? svg('circle', { cx: x(i), cy: y(v), r: 3.5 }, svg('title', {}, `${label} v${points[i].version}: ${fmt(v)}`))
          : svg('rect', { x: x(i) - 3.5, y: y(v) - 3.5, width: 7, height: 7 }, svg('title', {}, `${label} v${points[i].version}: ${fmt(v)}`)))));
    });

    const id = 'chart-title';
    return h('figure', { class: 'chart' },
      svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-labelledby': id, class: 'chart-svg' },
        svg('title', { id }, `Precision@5 and NDCG@5 over the last ${points.length} run${points.length === 1 ? '' : 's'}`),
        ticks, xlabels, lines),
      h('figcaption', {},
        h('span', { class: 'legend legend-p' }, 'Precision@5'),
        h('span', { class: 'legend legend-n' }, 'NDCG@5')),
      h('details', { class: 'chart-table' }, h('summary', {}, 'Numbers per run'),
        h('div', { class: 'table-scroll' }, h('table', {},
          h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Version'), h('th', { scope: 'col' }, 'Status'), h('th', { scope: 'col' }, 'Precision@5'), h('th', { scope: 'col' }, 'NDCG@5'))),
          h('tbody', {}, points.map((r) => h('tr', {},
            h('th', { scope: 'row' }, `v${r.version}`), h('td', {}, r.status),
            h('td', {}, r.p === undefined ? '—' : fmt(r.p)), h('td', {}, r.n === undefined ? '—' : fmt(r.n)))))))));
  }
}

/**
 * refreshLine says when the served version last took new songs (batch
 * refresh) and what it added, or why its family cannot; null when /v1/model
 * says nothing about it.
 */
export function refreshLine(refresh) {
  if (!refresh || typeof refresh !== 'object') return null;
  if (refresh.supported === false) {
    return h('p', { class: 'model-refresh' }, `New songs wait for the next training${refresh.reason ? ` (${refresh.reason})` : ''}.`);
  }
  const last = refresh.last;
  if (!last) return h('p', { class: 'model-refresh' }, 'No refresh of this version yet.');
  const when = new Date(last.finished_at || last.started_at);
  const added = last.songs_added === 1 ? '1 new song' : `${last.songs_added || 0} new songs`;
  const users = last.users_updated === 1 ? '1 listener' : `${last.users_updated || 0} listeners`;
  return h('p', { class: 'model-refresh', 'data-status': last.status || '' },
    'Last refresh ',
    Number.isNaN(when.getTime()) ? '' : h('time', { datetime: when.toISOString(), title: when.toLocaleString() }, relativeTime(when)),
    last.status === 'failed' ? ` failed${last.reason ? `: ${last.reason}` : ''}` : `: added ${added}, updated ${users}.`);
}
