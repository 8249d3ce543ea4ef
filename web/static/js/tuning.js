// The search behind the served parameters (/v1/model's "tuning"): a
// sentence saying what it found and why it stopped, Optuna's
// optimisation-history plot as inline SVG (each trial's validation NDCG@5 in
// evaluation order, and the best full-fidelity score so far as a step line),
// and the same numbers in a table.

import { h, svg } from './dom.js';

const num = (v, digits = 4) => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(digits) : '—');

/** duration says "9 min 58 s" for seconds. */
export function duration(seconds) {
  if (typeof seconds !== 'number' || !Number.isFinite(seconds)) return '—';
  if (seconds < 60) return `${seconds < 10 ? seconds.toFixed(1) : Math.round(seconds)} s`;
  const m = Math.floor(seconds / 60);
  const s = Math.round(seconds - 60 * m);
  if (m < 60) return s ? `${m} min ${s} s` : `${m} min`;
  const hours = Math.floor(m / 60);
  return m % 60 ? `${hours} h ${m % 60} min` : `${hours} h`;
}

const STOPS = {
  budget: 'its time budget was spent',
  trials: 'it reached its trial cap',
  cancelled: 'it was cancelled',
};

/** state is a trial's outcome in a word. */
export function state(t, best) {
  const words = [];
  if (t.incumbent) words.push('incumbent');
  if (t.pruned) words.push('pruned');
  if (t.promoted) words.push('promoted');
  if (t.number === best) words.push('picked');
  return words.join(', ');
}

/** summary says in one or two sentences what the search did. */
export function summary(tu) {
  const n = tu.trial_count ?? (tu.trials || []).length;
  const budget = tu.budget_seconds > 0
    ? `${duration(tu.used_seconds)} of a ${duration(tu.budget_seconds)} budget (${Math.round((100 * tu.used_seconds) / tu.budget_seconds)} %)`
    : `${duration(tu.used_seconds)}, no time budget`;
  const stop = STOPS[tu.stop_reason] || tu.stop_reason || 'unknown reason';
  const pick = tu.kept_incumbent
    ? `It kept the parameters already in use (trial ${tu.best_trial}, NDCG@5 ${num(tu.incumbent_score)}): no challenger beat them by more than the noise margin ${num(tu.noise_margin)}.`
    : `Trial ${tu.best_trial} won with validation NDCG@5 ${num(tu.best_score)} against ${num(tu.incumbent_score)} for the parameters in use before (noise margin ${num(tu.noise_margin)}).`;
  return `Run ${tu.run} tried ${n} configuration${n === 1 ? '' : 's'}${tu.pruned_count ? ` (${tu.pruned_count} pruned early)` : ''} in ${budget}; it stopped because ${stop}. ${pick}`;
}

/** tuningSection renders /v1/model's tuning object, or a hint without one. */
export function tuningSection(tu) {
  if (!tu || typeof tu !== 'object') {
    return h('section', { class: 'tuning', 'aria-labelledby': 'tuning-h' },
      h('h3', { id: 'tuning-h' }, 'Parameter search'),
      h('p', { class: 'hint' }, 'No search chose these parameters. `batch tune` runs one (the weekly CronJob does).'));
  }
  const trials = Array.isArray(tu.trials) ? tu.trials : [];
  return h('section', { class: 'tuning', 'aria-labelledby': 'tuning-h' },
    h('h3', { id: 'tuning-h' }, 'Parameter search'),
    h('p', { class: 'tuning-summary' }, summary(tu)),
    tu.trials_error ? h('p', { class: 'hint error' }, tu.trials_error) : null,
    trials.length ? history(trials, tu.best_trial) : null,
    h('p', { class: 'tuning-more' }, h('a', { href: `#/runs/${encodeURIComponent(tu.run)}`, class: 'run-link' },
      `Open the search (run ${tu.run}): every trial, parameter importance and slices`)));
}

/**
 * history draws each trial's NDCG@5 by evaluation order (filled: full
 * fidelity, hollow: a cheaper rung) and the best full-fidelity score so far
 * as a step line; the picked trial is ringed.
 */
export function history(trials, best, { W = 320, H = 170, id = 'tuning-chart-title' } = {}) {
  const L = 40; const R = 10; const T = 12; const B = 28;
  const scores = trials.flatMap((t) => [t.ndcg_at_5, t.best_so_far]).filter((v) => typeof v === 'number');
  let lo = Math.min(...scores); let hi = Math.max(...scores);
  const pad = Math.max((hi - lo) * 0.1, 0.005);
  lo = Math.max(0, lo - pad); hi += pad;
  const x = (i) => (trials.length === 1 ? L + (W - L - R) / 2 : L + (i * (W - L - R)) / (trials.length - 1));
  const y = (v) => T + (H - T - B) * (1 - (v - lo) / (hi - lo));

  const ticks = [lo, (lo + hi) / 2, hi].map((v) => svg('g', { class: 'tick' },
    svg('line', { x1: L, x2: W - R, y1: y(v), y2: y(v) }),
    svg('text', { x: L - 4, y: y(v) + 4, 'text-anchor': 'end' }, v.toFixed(3))));
  const step = Math.max(1, Math.ceil(trials.length / 8));
  const last = trials.length - 1;
  const xlabels = trials.map((t, i) => ((i % step === 0 && last - i >= step / 2) || i === last
    ? svg('text', { x: x(i), y: H - B + 16, 'text-anchor': 'middle', class: 'xlabel' }, String(t.number))
    : null));

  // Best so far: a step line, flat until a trial improves on it.
  const steps = [];
  let prev;
  trials.forEach((t, i) => {
    if (typeof t.best_so_far !== 'number') return;
    if (prev !== undefined) steps.push(`${x(i)},${y(prev)}`);
    steps.push(`${x(i)},${y(t.best_so_far)}`);
    prev = t.best_so_far;
  });
  const bestLine = svg('g', { class: 'series-best' }, svg('polyline', { points: steps.join(' '), fill: 'none' }));

  const dots = trials.map((t, i) => {
    if (typeof t.ndcg_at_5 !== 'number') return null;
    const pct = Math.round(100 * (t.user_fraction ?? 1));
    const label = `Trial ${t.number} (rung ${t.rung}, ${t.iterations} iterations, ${pct} % of users${t.split ? `, split ${t.split + 1}` : ''}): NDCG@5 ${num(t.ndcg_at_5)}${state(t, best) ? ` — ${state(t, best)}` : ''}`;
    const cls = ['trial', t.full_fidelity ? 'trial-full' : 'trial-low', t.number === best ? 'trial-picked' : ''].join(' ').trim();
    return svg('circle', { class: cls, cx: x(i), cy: y(t.ndcg_at_5), r: t.number === best ? 5.5 : (t.full_fidelity ? 3.5 : 3), 'data-trial': t.number },
      svg('title', {}, label));
  });

  return h('figure', { class: 'chart tuning-chart' },
    svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-labelledby': id, class: 'chart-svg' },
      svg('title', { id }, `Validation NDCG@5 of ${trials.length} trials in evaluation order, with the best so far`),
      ticks, xlabels, bestLine, svg('g', { class: 'series-trials' }, dots)),
    h('figcaption', {},
      h('span', { class: 'legend legend-trial' }, 'NDCG@5 per trial (hollow: cheaper rung)'),
      h('span', { class: 'legend legend-best' }, 'best so far')));
}
