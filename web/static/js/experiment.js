// The running A/B experiment between model versions (/v1/experiments): which
// version the challenger arm gets, for what share of users, and the readout
// per arm with the sequential test's verdict. Read only: experiments are
// started and ended with `batch experiment`.
import { h } from './dom.js';

const pct = (v) => (typeof v === 'number' ? `${(100 * v).toFixed(1)} %` : '—');
const count = (v) => (typeof v === 'number' ? v.toLocaleString('en') : '—');

/** experimentSection renders /v1/experiments' running experiment, or nothing. */
export function experimentSection(data) {
  const e = data && data.running;
  if (!e || typeof e !== 'object') return null;
  const r = e.readout;
  const arm = (name, c, rate, ci) => h('tr', { 'data-arm': name },
    h('th', { scope: 'row' }, name),
    h('td', {}, count(c && c.units)),
    h('td', {}, count(c && c.converted)),
    h('td', {}, pct(rate)),
    h('td', {}, ci ? `${pct(ci.low)} – ${pct(ci.high)}` : '—'));
  return h('section', { class: 'experiment', 'aria-label': 'Running experiment' },
    h('h3', {}, `Experiment: ${e.name || `#${e.id}`}`),
    h('p', {},
      `v${e.challenger_version} (challenger) for ${pct(e.share)} of users, against the current version (control). `,
      e.serving === false ? h('strong', {}, 'Not yet routed by this server.') : null),
    r
      ? h('div', { class: 'table-scroll' }, h('table', { class: 'experiment-readout' },
        h('thead', {}, h('tr', {},
          h('th', { scope: 'col' }, 'Arm'), h('th', { scope: 'col' }, 'Users'), h('th', { scope: 'col' }, 'Liked a song'),
          h('th', { scope: 'col' }, 'Rate'), h('th', { scope: 'col' }, '95 % interval'))),
        h('tbody', {},
          arm('control', r.control, r.control_rate, r.control_ci),
          arm('challenger', r.challenger, r.challenger_rate, r.challenger_ci))))
      : h('p', { class: 'hint' }, e.readout_error || 'No readout yet.'),
    r ? h('p', { class: 'experiment-verdict', 'data-verdict': r.verdict },
      `Verdict: ${r.verdict} (always-valid p = ${typeof r.p_value === 'number' ? r.p_value.toFixed(3) : '—'}; `,
      `about ${count(r.planned_units)} users planned).`) : null);
}
