// What listeners did with what they were shown (/v1/model's "online"): per
// model version, the users shown, likes and dislikes of shown songs per
// user shown, and the mean reciprocal rank of liked shown songs, next to
// the offline metrics; per source and arm under a disclosure.

import { h } from './dom.js';

const num = (v, digits = 3) => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(digits) : '—');
const int = (v) => (typeof v === 'number' && Number.isFinite(v) ? String(v) : '—');

function rows(list, current, withSource) {
  return list.map((o) => h('tr', { class: String(o.model_version) === String(current) ? 'online-current' : null, 'data-version': String(o.model_version) },
    h('td', {}, `v${o.model_version}`),
    withSource ? h('td', {}, o.source || '—') : null,
    withSource ? h('td', {}, o.arm || '—') : null,
    h('td', { class: 'num' }, int(o.users)),
    h('td', { class: 'num online-positive' }, num(o.positive_rate)),
    h('td', { class: 'num online-negative' }, num(o.negative_rate)),
    h('td', { class: 'num' }, num(o.mrr))));
}

function table(list, current, withSource, caption) {
  return h('div', { class: 'table-scroll' }, h('table', { class: withSource ? 'online-sources' : 'online-versions' },
    h('caption', { class: 'sr-only' }, caption),
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col' }, 'Version'),
      withSource ? h('th', { scope: 'col' }, 'Source') : null,
      withSource ? h('th', { scope: 'col' }, 'Arm') : null,
      h('th', { scope: 'col', title: 'distinct users answered, per day, summed over the days' }, 'Users shown'),
      h('th', { scope: 'col', title: 'likes of shown songs per user shown' }, 'Likes / user'),
      h('th', { scope: 'col', title: 'dislikes of shown songs per user shown' }, 'Dislikes / user'),
      h('th', { scope: 'col', title: 'mean reciprocal rank of the liked shown songs' }, 'MRR'))),
    h('tbody', {}, rows(list, current, withSource))));
}

/** onlineSection renders /v1/model's online object, or a hint without it. */
export function onlineSection(online, error, current) {
  const head = h('h3', { id: 'online-h' }, 'Listeners (online)');
  if (!online || typeof online !== 'object') {
    return h('section', { class: 'online', 'aria-labelledby': 'online-h' }, head,
      h('p', { class: 'hint' }, error || 'No online metrics.'));
  }
  const versions = Array.isArray(online.versions) ? online.versions : [];
  const sources = Array.isArray(online.sources) ? online.sources : [];
  if (versions.length === 0) {
    return h('section', { class: 'online', 'aria-labelledby': 'online-h' }, head,
      h('p', { class: 'hint' }, `No answers recorded since ${online.since || 'the last days'}: likes and dislikes of shown songs appear here as listeners react.`));
  }
  return h('section', { class: 'online', 'aria-labelledby': 'online-h' }, head,
    h('p', { class: 'online-summary' }, `Since ${online.since} (UTC): likes and dislikes of songs a listener was shown, per user shown.`),
    table(versions, current, false, 'Online metrics per model version'),
    sources.length
      ? h('details', { class: 'online-breakdown' }, h('summary', {}, 'Per source and arm'), table(sources, current, true, 'Online metrics per version, source and arm'))
      : null);
}
