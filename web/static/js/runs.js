// The search view (/#/runs and /#/runs/{id}, issue 26 item 17), after
// Optuna's dashboard: for any run of the registry, the search behind its
// parameters as a wide sortable table of every trial, each parameter's
// importance, a slice plot per parameter (score against value) and the
// optimisation history. Everything is drawn here as SVG from
// GET /v1/runs/{id}; no chart library, no CDN.

import { h, svg, clear } from './dom.js';
import * as api from './api.js';
import { summary, history, duration, state } from './tuning.js';

const num = (v, digits = 4) => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(digits) : '—');

/** when is a date as the reader's locale writes it, or ''. */
function when(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : d.toLocaleString();
}

/** ndcgOf is a run's holdout NDCG@5, whatever its metrics call it. */
function ndcgOf(metrics) {
  if (!metrics || typeof metrics !== 'object') return undefined;
  for (const [k, v] of Object.entries(metrics)) if (/^ndcg/i.test(k) && typeof v === 'number') return v;
  return undefined;
}

/**
 * varying lists the parameters whose value differs between trials, each
 * with whether every value is a number (a numeric axis) or not (one
 * position per value).
 * @param {any[]} trials
 * @returns {{key: string, numeric: boolean}[]}
 */
export function varying(trials) {
  const values = new Map();
  // Not searched: the seed differs between the incumbent's repeats (the
  // noise margin), threads is the machine's, and iterations is the
  // trial's fidelity, a column of its own.
  const fidelity = trials.every((t) => !t.params || t.params.iterations === undefined || t.params.iterations === t.iterations);
  for (const t of trials) {
    for (const [k, v] of Object.entries(t.params || {})) {
      if (v !== null && typeof v === 'object') continue;
      if (k === 'seed' || k === 'threads' || (k === 'iterations' && fidelity)) continue;
      if (!values.has(k)) values.set(k, new Set());
      values.get(k).add(v);
    }
  }
  const out = [];
  for (const [key, set] of values) {
    if (set.size < 2) continue;
    out.push({ key, numeric: [...set].every((v) => typeof v === 'number') });
  }
  return out.sort((a, b) => a.key.localeCompare(b.key));
}

/**
 * importance is each varying parameter's share of the score's variance,
 * Optuna-style normalised to sum to 1: the share a parameter explains
 * alone (one-way ANOVA's η², numbers grouped into up to 4 quantile bins).
 * Optuna's default (fANOVA) also credits interactions; with the few dozen
 * trials of a search this simpler measure ranks the same parameters first
 * and needs no forest. Only trials of one fidelity compare: it uses the
 * rung on the first validation split with the most trials (every
 * configuration is evaluated there first). null below 3 trials.
 * @param {any[]} trials
 * @param {{key: string, numeric: boolean}[]} params
 */
export function importance(trials, params) {
  const rungs = new Map();
  for (const t of trials) {
    if ((t.split ?? 0) !== 0 || typeof t.ndcg_at_5 !== 'number') continue;
    if (!rungs.has(t.rung)) rungs.set(t.rung, []);
    rungs.get(t.rung).push(t);
  }
  let set = [];
  let rung = null;
  for (const [r, list] of rungs) {
    if (list.length > set.length) { set = list; rung = r; }
  }
  if (set.length < 3) return null;
  const mean = set.reduce((s, t) => s + t.ndcg_at_5, 0) / set.length;
  const total = set.reduce((s, t) => s + (t.ndcg_at_5 - mean) ** 2, 0);
  const rows = params.map(({ key, numeric }) => {
    const groups = new Map();
    const withValue = set.filter((t) => t.params && t.params[key] !== undefined);
    let label = (t) => String(t.params[key]);
    if (numeric) {
      const sorted = withValue.map((t) => t.params[key]).sort((a, b) => a - b);
      const bins = Math.min(4, new Set(sorted).size);
      const edges = Array.from({ length: bins - 1 }, (_, i) => sorted[Math.floor(((i + 1) * sorted.length) / bins)]);
      label = (t) => String(edges.filter((e) => t.params[key] >= e).length);
    }
    for (const t of withValue) {
      const g = label(t);
      if (!groups.has(g)) groups.set(g, []);
      groups.get(g).push(t.ndcg_at_5);
    }
    let between = 0;
    for (const ys of groups.values()) {
      const m = ys.reduce((s, y) => s + y, 0) / ys.length;
      between += ys.length * (m - mean) ** 2;
    }
    return { key, eta: total > 0 ? between / total : 0 };
  });
  const sum = rows.reduce((s, r) => s + r.eta, 0);
  for (const r of rows) r.share = sum > 0 ? r.eta / sum : 0;
  rows.sort((a, b) => b.share - a.share || a.key.localeCompare(b.key));
  return { rung, n: set.length, rows };
}

/** importanceChart draws importance's shares as horizontal bars. */
function importanceChart(imp) {
  if (!imp) return h('p', { class: 'hint' }, 'Too few trials of one fidelity to weigh the parameters (3 are needed).');
  if (imp.rows.length === 0) return h('p', { class: 'hint' }, 'Every trial used the same parameters.');
  const W = 420; const row = 26; const L = 130; const R = 50; const H = imp.rows.length * row + 8;
  const id = 'importance-title';
  return h('figure', { class: 'chart importance' },
    svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-labelledby': id, class: 'chart-svg' },
      svg('title', { id }, 'Parameter importance: share of the score variance each parameter explains'),
      imp.rows.map((r, i) => svg('g', { class: 'importance-row', 'data-param': r.key },
        svg('text', { x: L - 8, y: 4 + i * row + 17, 'text-anchor': 'end' }, r.key),
        svg('rect', { x: L, y: 4 + i * row + 4, width: Math.max(1, r.share * (W - L - R)), height: row - 8, class: 'importance-bar' }),
        svg('text', { x: L + Math.max(1, r.share * (W - L - R)) + 6, y: 4 + i * row + 17 }, `${(100 * r.share).toFixed(0)} %`)))),
    h('figcaption', {}, `From the ${imp.n} trials of rung ${imp.rung} (first split): the share of their NDCG@5 variance each parameter explains alone (η², numbers in up to 4 quantile bins), normalised to sum to 100 %.`));
}

/**
 * slice plots NDCG@5 against one parameter's value for every trial
 * (filled: full fidelity, hollow: a cheaper rung; the picked trial ringed).
 * A number spread over a decade or more gets a log axis.
 */
function slice(trials, { key, numeric }, best) {
  const W = 300; const H = 200; const L = 44; const R = 12; const T = 10; const B = 34;
  const pts = trials.filter((t) => t.params && t.params[key] !== undefined && typeof t.ndcg_at_5 === 'number');
  const ys = pts.map((t) => t.ndcg_at_5);
  let lo = Math.min(...ys); let hi = Math.max(...ys);
  const pad = Math.max((hi - lo) * 0.1, 0.005);
  lo = Math.max(0, lo - pad); hi += pad;
  const y = (v) => T + (H - T - B) * (1 - (v - lo) / (hi - lo));
  let x; let ticks;
  if (numeric) {
    const vs = pts.map((t) => t.params[key]);
    const min = Math.min(...vs); const max = Math.max(...vs);
    const log = min > 0 && max / min >= 10;
    const f = log ? Math.log10 : (v) => v;
    const a = f(min); const b = f(max) === a ? a + 1 : f(max);
    x = (v) => L + ((W - L - R) * (f(v) - a)) / (b - a);
    ticks = [min, log ? 10 ** ((a + b) / 2) : (min + max) / 2, max].map((v) => [x(v), +v.toPrecision(3)]);
  } else {
    const cats = [...new Set(pts.map((t) => String(t.params[key])))].sort();
    const step = (W - L - R) / cats.length;
    x = (v) => L + step * (cats.indexOf(String(v)) + 0.5);
    ticks = cats.map((c) => [x(c), c]);
  }
  const id = `slice-${key}-title`;
  return h('figure', { class: 'chart slice', 'data-param': key },
    svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-labelledby': id, class: 'chart-svg' },
      svg('title', { id }, `NDCG@5 against ${key} for ${pts.length} trials`),
      [lo, (lo + hi) / 2, hi].map((v) => svg('g', { class: 'tick' },
        svg('line', { x1: L, x2: W - R, y1: y(v), y2: y(v) }),
        svg('text', { x: L - 4, y: y(v) + 4, 'text-anchor': 'end' }, v.toFixed(3)))),
      ticks.map(([tx, label]) => svg('text', { x: tx, y: H - B + 16, 'text-anchor': 'middle', class: 'xlabel' }, String(label))),
      svg('text', { x: (L + W - R) / 2, y: H - 4, 'text-anchor': 'middle', class: 'axis-label' }, key),
      svg('g', { class: 'series-trials' }, pts.map((t) => svg('circle', {
        class: ['trial', t.full_fidelity ? 'trial-full' : 'trial-low', t.number === best ? 'trial-picked' : ''].join(' ').trim(),
        cx: x(t.params[key]), cy: y(t.ndcg_at_5), r: t.number === best ? 5.5 : 3.5, 'data-trial': t.number,
      }, svg('title', {}, `Trial ${t.number}: ${key} ${t.params[key]}, NDCG@5 ${num(t.ndcg_at_5)}`))))));
}

/** columns of the trials table: [header, value of a trial, is it a number]. */
function columns(params, best) {
  return [
    ['Trial', (t) => t.number, true],
    ['Rung', (t) => t.rung, true],
    ['Split', (t) => (t.split ?? 0) + 1, true],
    ['Iterations', (t) => t.iterations, true],
    ['Users', (t) => t.user_fraction, true, (v) => `${Math.round(100 * (v ?? 1))} %`],
    ...params.map(({ key, numeric }) => [key, (t) => (t.params ? t.params[key] : undefined), numeric,
      (v) => (v === undefined ? '—' : typeof v === 'number' && !Number.isInteger(v) ? +v.toPrecision(4) : String(v))]),
    ['NDCG@5', (t) => t.ndcg_at_5, true, (v) => num(v)],
    ['Best so far', (t) => t.best_so_far, true, (v) => num(v)],
    ['Seconds', (t) => t.seconds, true, (v) => num(v, 1)],
    ['Outcome', (t) => state(t, best), false],
  ];
}

/** RunView owns the #runs-view section. */
export class RunView {
  constructor(root) {
    this.root = root;
    this.seq = 0;
    this.sort = { col: 0, dir: 1 };
  }

  /** show draws run id's search, or the list of runs when id is null. */
  async show(id) {
    const seq = ++this.seq;
    this.root.hidden = false;
    this.root.setAttribute('aria-busy', 'true');
    try {
      const [detail, list] = await Promise.all([
        id === null ? Promise.resolve(null) : api.run(id),
        api.runs({ limit: 50 }).catch(() => []),
      ]);
      if (seq !== this.seq) return;
      clear(this.root);
      this.root.append(this.header(id, list));
      if (detail) this.root.append(...this.detail(detail));
      else this.root.append(this.list(list));
    } catch (err) {
      if (seq !== this.seq || err.status === 401) return;
      clear(this.root);
      this.root.append(this.header(id, []),
        h('p', { class: 'alert', role: 'alert' }, err.status === 404 ? `No run ${id} in the registry.` : (err.human ? err.human(`load run ${id}`) : String(err))));
    } finally {
      if (seq === this.seq) this.root.removeAttribute('aria-busy');
    }
  }

  header(id, list) {
    const pick = h('select', { id: 'run-pick', 'aria-label': 'Run' },
      h('option', { value: '' }, 'All runs'),
      list.map((r) => h('option', { value: String(r.id), selected: String(r.id) === String(id) },
        `Run ${r.id} · ${r.status}${r.version != null ? ` · v${r.version}` : ''}`)));
    pick.addEventListener('change', () => { location.hash = pick.value ? `#/runs/${pick.value}` : '#/runs'; });
    return h('div', { class: 'view-head' },
      h('h2', { id: 'runs-h', tabindex: '-1' }, id === null ? 'Runs and their searches' : `Run ${id}`),
      h('label', { class: 'run-pick' }, 'Open ', pick),
      h('a', { href: '#/' }, 'Back to the listeners'));
  }

  /** list is the registry's latest runs, each linked to its view. */
  list(runs) {
    if (runs.length === 0) return h('p', { class: 'hint' }, 'No runs in the registry yet: `batch train` records one.');
    return h('div', { class: 'table-scroll' }, h('table', { class: 'runs-table' },
      h('thead', {}, h('tr', {}, ['Run', 'Status', 'Version', 'Started', 'Took', 'NDCG@5', 'Notes'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, runs.map((r) => {
        const took = r.finished_at ? (Date.parse(r.finished_at) - Date.parse(r.started_at)) / 1e3 : undefined;
        return h('tr', { 'data-run': r.id },
          h('th', { scope: 'row' }, h('a', { href: `#/runs/${r.id}` }, `Run ${r.id}`)),
          h('td', {}, r.status), h('td', {}, r.version != null ? `v${r.version}` : '—'),
          h('td', {}, when(r.started_at)), h('td', {}, duration(took)),
          h('td', {}, num(ndcgOf(r.metrics))), h('td', { class: 'notes' }, r.notes || ''));
      }))));
  }

  /** detail is a run's facts and the search behind it. */
  detail({ run, tuning }) {
    const took = run.finished_at ? (Date.parse(run.finished_at) - Date.parse(run.started_at)) / 1e3 : undefined;
    const facts = h('p', { class: 'run-facts' },
      `${run.status}${run.version != null ? `, version ${run.version}` : ''}; started ${when(run.started_at)}`,
      took !== undefined ? `, took ${duration(took)}` : '',
      ndcgOf(run.metrics) !== undefined ? `; holdout NDCG@5 ${num(ndcgOf(run.metrics))}` : '',
      run.notes ? ` — ${run.notes}` : '');
    if (!tuning) {
      return [facts, h('p', { class: 'hint', id: 'run-no-search' }, 'No search chose this run’s parameters: it trained with the ones given or last recorded. `batch tune` runs a search (beside the playground: `go run ./batch --store embedded tune --budget 2m`).')];
    }
    const trials = Array.isArray(tuning.trials) ? tuning.trials : [];
    const params = varying(trials);
    const out = [facts,
      tuning.run !== run.id ? h('p', {}, `Its parameters came from the search of `, h('a', { href: `#/runs/${tuning.run}` }, `run ${tuning.run}`), '.') : null,
      h('p', { class: 'tuning-summary' }, summary(tuning)),
      tuning.trials_error ? h('p', { class: 'alert', role: 'alert' }, tuning.trials_error) : null];
    if (trials.length === 0) return out.filter(Boolean);
    const best = tuning.best_trial;
    return out.filter(Boolean).concat([
      h('div', { class: 'run-charts' },
        h('section', { 'aria-labelledby': 'history-h' }, h('h3', { id: 'history-h' }, 'Optimisation history'),
          history(trials, best, { W: 460, H: 230, id: 'run-history-title' })),
        h('section', { 'aria-labelledby': 'importance-h' }, h('h3', { id: 'importance-h' }, 'Parameter importance'),
          importanceChart(importance(trials, params)))),
      h('section', { 'aria-labelledby': 'slices-h' }, h('h3', { id: 'slices-h' }, 'Slices: NDCG@5 against each parameter'),
        params.length ? h('div', { class: 'slices' }, params.map((p) => slice(trials, p, best))) : h('p', { class: 'hint' }, 'Every trial used the same parameters.')),
      h('section', { 'aria-labelledby': 'trials-h' }, h('h3', { id: 'trials-h' }, `Trials (${trials.length})`),
        this.table(trials, params, best)),
    ]);
  }

  /** table is every trial, sortable by any column (a button in each header). */
  table(trials, params, best) {
    const cols = columns(params, best);
    const box = h('div', { class: 'table-scroll' });
    const draw = () => {
      const { col, dir } = this.sort;
      const get = cols[col][1];
      const rows = [...trials].sort((a, b) => {
        const va = get(a); const vb = get(b);
        if (va === vb) return a.number - b.number;
        if (va === undefined || va === null || va === '') return 1;
        if (vb === undefined || vb === null || vb === '') return -1;
        return (typeof va === 'number' && typeof vb === 'number' ? va - vb : String(va).localeCompare(String(vb))) * dir;
      });
      clear(box);
      box.append(h('table', { class: 'trials' },
        h('thead', {}, h('tr', {}, cols.map(([name, , numeric], i) => h('th', {
          scope: 'col', class: numeric ? 'num' : null,
          'aria-sort': i === col ? (dir > 0 ? 'ascending' : 'descending') : null,
        }, h('button', { type: 'button', class: 'sort', 'data-col': i, onclick: () => {
          this.sort = { col: i, dir: i === col ? -dir : (numeric && name !== 'Trial' ? -1 : 1) };
          draw();
          box.querySelector(`button[data-col="${i}"]`)?.focus();
        } }, name))))),
        h('tbody', {}, rows.map((t) => h('tr', { class: t.number === best ? 'picked' : null, 'data-trial': t.number },
          cols.map(([, get2, numeric, show], i) => {
            const v = get2(t);
            const text = show ? show(v) : (v === undefined || v === null ? '—' : String(v));
            return i === 0 ? h('th', { scope: 'row' }, text) : h('td', { class: numeric ? 'num' : null }, text);
          }))))));
    };
    draw();
    return box;
  }
}
