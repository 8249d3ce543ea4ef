// The Browse view (/#/browse…, issue 26 item 18): what the search box
// cannot show until something is typed. Paginated lists of every listener
// (id order) and every song (alphabetical), a listener's history (their
// reactions, newest first), and the experiments' history with their
// readouts; an admin-scope token may start and stop an experiment here.

import { h, clear, say, songLabel, userLabel } from './dom.js';
import * as api from './api.js';

const PAGE = 25;
const pct = (v) => (typeof v === 'number' ? `${(100 * v).toFixed(1)} %` : '—');
const count = (v) => (typeof v === 'number' ? v.toLocaleString('en') : '—');

/** when is a date as the reader's locale writes it, or '—'. */
function when(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '—' : d.toLocaleString();
}

const TABS = [['', 'Listeners'], ['songs', 'Songs'], ['experiments', 'Experiments']];

/** Browse owns the #browse-view section. */
export class Browse {
  constructor(root) {
    this.root = root;
    this.seq = 0;
    // Each list's pages: the cursors that opened them ('' the first), so
    // Previous goes back without the API paging backwards.
    this.pages = { users: [''], songs: [''] };
    // The songs list's filters (GET /v1/songs?tag=&available=), kept
    // while the reader pages and switches tabs.
    this.songFilter = { tag: '', servedOnly: false };
  }

  /** show draws the sub-view named by the hash after #/browse/. */
  async show(sub) {
    const seq = ++this.seq;
    this.root.hidden = false;
    const tab = sub.startsWith('users/') ? '' : sub;
    clear(this.root);
    const body = h('div', { class: 'browse-body', 'aria-live': 'polite' });
    this.root.append(
      h('div', { class: 'view-head' }, h('h2', { id: 'browse-h', tabindex: '-1' }, 'Browse'), h('a', { href: '#/' }, 'Back to the listeners')),
      h('nav', { class: 'tabs', 'aria-label': 'What to browse' }, TABS.map(([key, label]) =>
        h('a', { href: key ? `#/browse/${key}` : '#/browse', 'aria-current': key === tab ? 'page' : null }, label))),
      body);
    this.body = body;
    const alert = h('p', { class: 'alert', role: 'alert' });
    body.append(alert);
    try {
      if (sub.startsWith('users/')) {
        let id = sub.slice('users/'.length);
        try { id = decodeURIComponent(id); } catch { /* shown as typed */ }
        await this.history(id, seq);
      } else if (sub === 'songs') {
        await this.songs(seq);
      } else if (sub === 'experiments') {
        await this.experiments(seq);
      } else {
        await this.users(seq);
      }
    } catch (err) {
      if (seq !== this.seq || api.isAbort(err) || err.status === 401) return;
      alert.textContent = err.human ? err.human('load this list') : String(err);
    }
  }

  /**
   * pager draws Previous / Next for list (users or songs): page i of the
   * cursors seen; next is the answer's next_cursor ('' at the end).
   */
  pager(list, next, redraw) {
    const pages = this.pages[list];
    const i = pages.length - 1;
    const prev = h('button', { type: 'button', class: 'btn', disabled: i === 0, 'data-page': 'prev' }, 'Previous page');
    const more = h('button', { type: 'button', class: 'btn', disabled: !next, 'data-page': 'next' }, 'Next page');
    prev.addEventListener('click', () => { pages.pop(); redraw(); });
    more.addEventListener('click', () => { pages.push(next); redraw(); });
    return h('div', { class: 'pager' }, prev, h('span', { class: 'page-no' }, `Page ${i + 1}`), more);
  }

  async users(seq) {
    const cursor = this.pages.users[this.pages.users.length - 1];
    const page = await api.listUsers({ limit: PAGE, cursor });
    if (seq !== this.seq) return;
    const users = api.pickList(page, 'users');
    const redraw = () => this.show('');
    this.body.append(
      h('h3', {}, 'Listeners'),
      users.length === 0 ? h('p', { class: 'hint' }, 'No listeners yet: import some, or join on the first page.') : h('div', { class: 'table-scroll' },
        h('table', { class: 'browse-users' },
          h('thead', {}, h('tr', {}, ['Listener', 'Id', 'Joined', ''].map((c) => h('th', { scope: 'col' }, c)))),
          h('tbody', {}, users.map((u) => h('tr', { 'data-user': u.user_id },
            h('th', { scope: 'row' }, h('a', { href: `#/users/${encodeURIComponent(u.user_id)}`, dir: 'auto' }, userLabel(u))),
            h('td', { class: 'user-id', dir: 'auto' }, u.user_id),
            h('td', {}, when(u.created_at)),
            h('td', {}, h('a', { href: `#/browse/users/${encodeURIComponent(u.user_id)}`, 'aria-label': `History of ${userLabel(u)}` }, 'History'))))))),
      this.pager('users', page.next_cursor || '', redraw));
  }

  /**
   * songFilters is the songs list's form: one tag and "served only". Applying
   * it starts the list again from its first page, without leaving the view.
   */
  songFilters() {
    const f = this.songFilter;
    const tag = h('input', { id: 'browse-tag', type: 'text', inputmode: 'text', autocomplete: 'off', spellcheck: 'false',
      placeholder: 'rock', value: f.tag, pattern: '\\s*[A-Za-z0-9][A-Za-z0-9_&+.\\-]*\\s*', title: 'One tag, e.g. rock' });
    const served = h('input', { id: 'browse-served', type: 'checkbox' });
    served.checked = f.servedOnly;
    const form = h('form', { id: 'browse-song-filters', class: 'filters', 'aria-label': 'Filter the songs' },
      h('label', {}, 'Tag ', tag),
      h('label', {}, served, ' Served songs only'),
      h('button', { type: 'submit', class: 'btn btn-quiet' }, 'Apply'));
    const apply = async () => {
      if (!form.reportValidity()) return;
      this.songFilter = { tag: tag.value.trim().toLowerCase(), servedOnly: served.checked };
      this.pages.songs = [''];
      await this.show('songs');
      /** @type {HTMLElement | null} */ (this.root.querySelector('#browse-tag'))?.focus();
    };
    form.addEventListener('submit', (ev) => { ev.preventDefault(); apply(); });
    served.addEventListener('change', () => { apply(); });
    return form;
  }

  async songs(seq) {
    const cursor = this.pages.songs[this.pages.songs.length - 1];
    const { tag, servedOnly } = this.songFilter;
    const page = await api.listSongs({ limit: PAGE, cursor, tag, available: servedOnly ? true : undefined });
    if (seq !== this.seq) return;
    const songs = api.pickList(page, 'songs');
    const redraw = () => this.show('songs');
    const none = tag || servedOnly
      ? `No${servedOnly ? ' served' : ''} songs${tag ? ` tagged “${tag}”` : ''}${this.pages.songs.length > 1 ? ' on this page' : ''}.`
      : 'No songs on this page.';
    this.body.append(
      h('h3', {}, 'Songs'),
      this.songFilters(),
      songs.length === 0 ? h('p', { class: 'hint' }, none) : h('div', { class: 'table-scroll' },
        h('table', { class: 'browse-songs' },
          h('thead', {}, h('tr', {}, ['Artist', 'Track', 'Tags', 'Released', 'Served'].map((c) => h('th', { scope: 'col' }, c)))),
          h('tbody', {}, songs.map((s) => h('tr', { 'data-song-id': s.song_id, class: s.available === false ? 'hidden-song' : null },
            h('td', { class: 'wrap', dir: 'auto' }, s.artist),
            h('th', { scope: 'row', class: 'wrap', dir: 'auto' }, s.track),
            h('td', {}, (s.tags || []).join(', ') || '—'),
            h('td', {}, s.released || '—'),
            h('td', {}, s.available === false ? 'hidden' : 'yes')))))),
      this.pager('songs', page.next_cursor || '', redraw));
  }

  /** history is a listener's reactions, newest first. */
  async history(userID, seq) {
    const [user, list] = await Promise.all([api.getUser(userID).catch(() => null), api.reactions(userID, { limit: 500 })]);
    if (seq !== this.seq) return;
    const name = user ? userLabel(user) : userID;
    const words = { like: 'liked', dislike: 'disliked', play: 'played' };
    this.body.append(
      h('h3', { dir: 'auto' }, `History of ${name}`),
      h('p', {}, h('a', { href: `#/users/${encodeURIComponent(userID)}` }, `Songs for ${name}`),
        ` · ${list.length === 500 ? 'the latest 500 reactions' : `${list.length} reaction${list.length === 1 ? '' : 's'}`}, newest first`),
      list.length === 0 ? h('p', { class: 'hint' }, 'No reactions yet.') : h('div', { class: 'table-scroll' },
        h('table', { class: 'browse-history' },
          h('thead', {}, h('tr', {}, ['When', 'What', 'Song', 'Weight'].map((c) => h('th', { scope: 'col' }, c)))),
          h('tbody', {}, list.map((r) => h('tr', { 'data-kind': r.kind },
            h('td', {}, when(r.updated_at)),
            h('td', {}, words[r.kind] || r.kind),
            h('th', { scope: 'row', class: 'wrap', dir: 'auto' }, songLabel(r.song)),
            h('td', { class: 'num' }, typeof r.weight === 'number' ? String(+r.weight.toFixed(2)) : '—')))))));
  }

  /** experiments is every experiment with its readout; start/stop for an admin. */
  async experiments(seq) {
    const [data, admin] = await Promise.all([api.experiments(), api.canEditCatalog()]);
    if (seq !== this.seq) return;
    const list = Array.isArray(data.experiments) ? data.experiments : [];
    const status = h('p', { class: 'sr-only', 'aria-live': 'polite' });
    const alert = h('p', { class: 'alert', role: 'alert' });
    this.body.append(h('h3', {}, 'Experiments'), status, alert,
      list.length === 0 ? h('p', { class: 'hint' }, 'No experiment has run yet.') : h('div', { class: 'table-scroll' },
        h('table', { class: 'browse-experiments' },
          h('thead', {}, h('tr', {}, ['Experiment', 'Status', 'Versions', 'Share', 'Started', 'Ended', 'Users (control / challenger)', 'Rates', 'Verdict']
            .map((c) => h('th', { scope: 'col' }, c)))),
          h('tbody', {}, list.map((e) => {
            const r = e.readout;
            return h('tr', { 'data-experiment': e.id, 'data-status': e.status },
              h('th', { scope: 'row', class: 'wrap' }, e.name || `#${e.id}`),
              h('td', {}, e.status),
              h('td', {}, `v${e.challenger_version} vs v${e.control_version}`),
              h('td', {}, pct(e.share)),
              h('td', {}, when(e.started_at)),
              h('td', {}, when(e.ended_at)),
              h('td', {}, r ? `${count(r.control && r.control.units)} / ${count(r.challenger && r.challenger.units)}` : '—'),
              h('td', {}, r ? `${pct(r.control_rate)} / ${pct(r.challenger_rate)}` : '—'),
              h('td', {}, r ? r.verdict : (e.readout_error || '—')));
          })))));
    if (!admin) {
      this.body.append(h('p', { class: 'hint' }, 'An admin-scope token can start and stop experiments here (or `batch experiment start|stop`).'));
      return;
    }
    const act = async (what, fn) => {
      alert.textContent = '';
      try {
        await fn();
        say(status, `Experiment ${what}.`);
        await this.show('experiments');
      } catch (err) {
        alert.textContent = err.human ? err.human(`${what === 'started' ? 'start' : 'stop'} the experiment`) : String(err);
      }
    };
    if (data.running) {
      const stop = h('button', { type: 'button', class: 'btn', id: 'experiment-stop' }, `Stop “${data.running.name}”`);
      stop.addEventListener('click', () => { stop.disabled = true; act('stopped', () => api.stopExperiment()).finally(() => { stop.disabled = false; }); });
      this.body.append(h('p', {}, stop, ' Every listener gets the current version again.'));
      return;
    }
    const challenger = h('input', { id: 'exp-challenger', type: 'number', min: '1', step: '1', required: true, inputmode: 'numeric' });
    const share = h('input', { id: 'exp-share', type: 'number', min: '0.01', max: '0.99', step: '0.01', value: '0.1', required: true });
    const name = h('input', { id: 'exp-name', type: 'text', maxlength: '200', placeholder: 'v7 vs v6' });
    const form = h('form', { id: 'experiment-start', class: 'filters', 'aria-label': 'Start an experiment' },
      h('label', { for: 'exp-challenger' }, 'Challenger version ', challenger),
      h('label', { for: 'exp-share' }, 'Share of listeners ', share),
      h('label', { for: 'exp-name' }, 'Name ', name),
      h('button', { type: 'submit', class: 'btn btn-primary' }, 'Start'));
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      if (!form.reportValidity()) return;
      /** @type {{challenger_version: number, share: number, name?: string}} */
      const body = { challenger_version: Number(challenger.value), share: Number(share.value) };
      if (name.value.trim()) body.name = name.value.trim();
      act('started', () => api.startExperiment(body));
    });
    this.body.append(h('h4', {}, 'Start an experiment'),
      h('p', { class: 'hint' }, 'The challenger must still have its keys in Redis: the previous version, or one published and rolled back.'),
      form);
  }
}
