// The user view: a listener's recommended songs, each with where it came
// from (batch, fold-in or popular), "because you liked …", like and dislike
// buttons and an in-place "similar songs" list. A reaction is sent with
// fetch and the list is re-fetched and redrawn in place: the page never
// navigates. Errors appear in an role="alert" region next to the action.

import { h, clear, say, songLabel, userLabel } from './dom.js';
import * as api from './api.js';

const SOURCES = {
  batch: 'From the latest batch model, trained on everyone’s listening.',
  'fold-in': 'Computed just now from this listener’s own likes and dislikes.',
  popular: 'Popular with everyone: not enough about this listener yet.',
};

/** sourceBadge is the small label that says where a song came from. */
export function sourceBadge(source) {
  const s = SOURCES[source] ? source : 'unknown';
  return h('span', { class: `badge badge-${s}`, title: SOURCES[source] || 'Source unknown' },
    h('span', { class: 'sr-only' }, 'source: '), source || 'unknown');
}

/** NEW_DAYS is how recent a release counts as new on a song card. */
export const NEW_DAYS = 14;

/** isNew reports whether a YYYY-MM-DD release day is within NEW_DAYS of now. */
export function isNew(released, now = Date.now()) {
  if (!released) return false;
  const t = Date.parse(`${released}T00:00:00Z`);
  return !Number.isNaN(t) && t <= now && now - t <= NEW_DAYS * 86400e3;
}

/**
 * UserView owns the #user section. show(userID) loads a listener; any
 * earlier load still in flight is aborted so answers cannot arrive out of order.
 */
export class UserView {
  constructor(root, { n = 5, onModelVersion } = {}) {
    this.root = root;
    this.n = n;
    this.onModelVersion = onModelVersion || (() => {});
    this.heading = root.querySelector('#user-h');
    this.meta = root.querySelector('#user-meta');
    this.alert = root.querySelector('#user-alert');
    this.toast = root.querySelector('#user-toast');
    this.live = root.querySelector('#user-live');
    this.list = root.querySelector('#recs');
    this.userID = null;
    this.user = null;
    this.controller = null;
    this.reactions = new Map(); // song_id → "like" | "dislike", made in this session
    this.simSeq = 0;
    this.catalog = new Map(); // song_id → Promise of its catalog metadata
    this.canEdit = null; // Promise<boolean>: does this tab's token have the admin scope?
    this.filters = { tags: [], maxPerArtist: 0 };
    const form = root.querySelector('#recs-filters');
    if (form) {
      form.addEventListener('submit', (ev) => {
        ev.preventDefault();
        if (!form.reportValidity()) return;
        const raw = form.querySelector('#filter-tags').value;
        this.filters = {
          tags: raw.split(',').map((t) => t.trim().toLowerCase()).filter(Boolean),
          maxPerArtist: form.querySelector('#filter-artist').checked ? 1 : 0,
        };
        this.refresh().catch(() => {});
      });
    }
  }

  /** show loads userID's songs; user is an optional {user_id, display_name}. */
  async show(userID, user = null, { focus = false } = {}) {
    if (userID !== this.userID) {
      this.reactions = new Map();
      this.hideToast();
    }
    this.userID = userID;
    this.user = user && user.user_id === userID ? user : (this.user && this.user.user_id === userID ? this.user : null);
    this.root.hidden = false;
    this.renderHeading();
    if (focus) this.heading.focus();
    await this.refresh({ announce: false });
  }

  /** setUser names the listener shown (the profile arrived after show). */
  setUser(user) {
    if (!user || user.user_id !== this.userID) return;
    this.user = user;
    this.renderHeading();
    if (this.lastData) this.renderMeta(this.lastData);
  }

  renderHeading() {
    const name = this.user ? userLabel(this.user) : this.userID;
    this.heading.textContent = '';
    this.heading.append(h('span', { dir: 'auto', class: 'user-name' }, name));
    this.root.setAttribute('aria-label', `Songs for ${name}`);
  }

  /**
   * refresh re-fetches the list. After a reaction, the server folds the user
   * in; when `until` is given the request is repeated briefly until the
   * answer differs from `until` (a signature of the old list).
   */
  async refresh({ announce = true, until = null } = {}) {
    if (this.controller) this.controller.abort();
    const controller = new AbortController();
    this.controller = controller;
    const userID = this.userID;
    this.list.setAttribute('aria-busy', 'true');
    try {
      let data;
      for (let attempt = 0; ; attempt++) {
        data = await api.recommendations(userID, { n: this.n, ...this.filters, signal: controller.signal });
        if (!until || signature(data) !== until || attempt >= 3) break;
        await sleep(250 * (attempt + 1));
        if (controller.signal.aborted) return;
      }
      if (controller.signal.aborted) return;
      const kinds = await this.reactionKinds(userID, data, controller.signal);
      if (controller.signal.aborted) return;
      this.alert.textContent = '';
      this.render(data, kinds);
      if (announce) say(this.live, `Songs updated: ${data.items.length} songs, source ${data.source || 'unknown'}.`);
      else say(this.live, `${data.items.length} songs for ${this.heading.textContent}.`);
    } catch (err) {
      if (api.isAbort(err)) return;
      if (err.status === 401) throw err; // the sign-in form explains it
      if (err.status === 404) {
        this.alert.textContent = `No listener with the id “${userID}”. Check the spelling, or register below.`;
      } else {
        this.alert.textContent = err.human ? err.human(`load the songs for ${userID}`) : String(err);
      }
      this.alert.append(' ', h('button', { type: 'button', class: 'link', onclick: () => this.refresh() }, 'Try again'));
      throw err;
    } finally {
      if (this.controller === controller) {
        this.controller = null;
        this.list.removeAttribute('aria-busy');
      }
    }
  }

  /**
   * reactionKinds maps song_id → the set of the listener's reaction kinds,
   * for the songs a "because" names, so the page says "you liked" or "you
   * played" truthfully. null when no item has a because, or the list could
   * not be read (the because then says neither).
   */
  async reactionKinds(userID, data, signal) {
    if (!data.items.some((i) => i.because)) return null;
    try {
      const list = await api.reactions(userID, { limit: 500, signal });
      const kinds = new Map();
      for (const r of list) {
        const id = r.song ? r.song.song_id : r.song_id;
        if (!kinds.has(id)) kinds.set(id, new Set());
        kinds.get(id).add(r.kind);
      }
      // Reactions made on this page are known even if the list lags.
      for (const [id, kind] of this.reactions) {
        if (!kinds.has(id)) kinds.set(id, new Set());
        kinds.get(id).add(kind);
      }
      return kinds;
    } catch (err) {
      if (api.isAbort(err)) throw err;
      return null;
    }
  }

  render(data, kinds = null) {
    this.lastSignature = signature(data);
    this.lastData = data;
    this.renderMeta(data);
    if (data.model_version != null) this.onModelVersion(data.model_version, data.arm);
    clear(this.list);
    this.list.dataset.source = data.source || '';
    if (data.items.length === 0) {
      this.list.append(h('li', { class: 'empty' }, 'No songs to recommend yet. Like a few songs to get started.'));
      return;
    }
    data.items.forEach((item, i) => this.list.append(this.songItem(item, i, data.source, kinds)));
  }

  renderMeta(data) {
    clear(this.meta);
    // Element.append would render a null child as the text "null".
    this.meta.append(...[
      sourceBadge(data.source),
      h('span', {}, data.model_version != null ? `model version ${data.model_version}` : 'no model yet'),
      data.arm && data.arm !== 'none' ? h('span', { class: 'arm', 'data-arm': data.arm }, ` (experiment: ${data.arm} arm)`) : null,
      // The id, unless the heading already is the id (no display name).
      this.heading.textContent !== this.userID ? h('span', { class: 'user-id', dir: 'auto' }, `id ${this.userID}`) : null,
    ].filter(Boolean));
  }

  /** songItem is one recommended song with its actions. */
  songItem(item, i, source, kinds = null) {
    const simID = `sim-${this.simSeq++}`;
    const alert = h('p', { class: 'alert', role: 'alert' });
    const similar = h('div', { class: 'similar', id: simID, hidden: true });
    const toggle = h('button', {
      type: 'button', class: 'btn btn-quiet', 'aria-expanded': 'false', 'aria-controls': simID,
    }, 'Similar songs');
    toggle.addEventListener('click', () => this.toggleSimilar(item, toggle, similar, alert));
    const because = item.because ? songLabel(item.because) : '';
    const li = h('li', { class: 'song', 'data-song-id': item.song_id },
      h('div', { class: 'song-main' },
        h('span', { class: 'rank', 'aria-hidden': 'true' }, String(i + 1)),
        h('div', { class: 'song-text' },
          h('span', { class: 'track', dir: 'auto' }, item.track || songLabel(item)),
          h('span', { class: 'artist', dir: 'auto' }, item.artist || ''),
          because ? h('span', { class: 'because', 'data-song-id': item.because.song_id }, becauseText(kinds && kinds.get(item.because.song_id)), h('q', { dir: 'auto' }, because)) : null),
        sourceBadge(item.source || source)),
      h('div', { class: 'actions' },
        this.reactionButtons(item, alert, { inPlace: false }),
        toggle),
      alert,
      similar);
    this.decorate(li, item, alert);
    return li;
  }

  /** songMeta is song id's catalog metadata, fetched once per page load. */
  songMeta(id) {
    if (!this.catalog.has(id)) {
      const p = api.song(id).catch((err) => { this.catalog.delete(id); throw err; });
      this.catalog.set(id, p);
    }
    return this.catalog.get(id);
  }

  /**
   * decorate adds a song card's tags, a "new" mark (released in the last
   * NEW_DAYS days) and, for an admin-scope token, Hide/Show. The list is
   * already on screen; the metadata arrives after it.
   */
  async decorate(li, item, alert) {
    const text = li.querySelector('.song-text');
    let song;
    try {
      song = item.tags ? item : await this.songMeta(item.song_id);
    } catch {
      return; // the card stays without tags
    }
    const tags = h('span', { class: 'song-tags' });
    if (isNew(song.released)) tags.append(h('span', { class: 'song-new', title: `Released ${song.released}` }, 'new'));
    for (const t of song.tags || []) tags.append(h('span', { class: 'tag' }, t));
    if (tags.childNodes.length) text.append(tags);
    if (!this.canEdit) this.canEdit = api.canEditCatalog();
    if (!(await this.canEdit)) return;
    let available = song.available !== false;
    const btn = h('button', { type: 'button', class: 'btn btn-quiet catalog-toggle' }, available ? 'Hide' : 'Show');
    btn.addEventListener('click', async () => {
      btn.disabled = true;
      try {
        const next = await api.setAvailable(item.song_id, !available);
        available = next.available !== false;
        this.catalog.set(item.song_id, Promise.resolve(next));
        btn.textContent = available ? 'Hide' : 'Show';
        li.classList.toggle('hidden-song', !available);
        alert.textContent = '';
        say(this.live, `${songLabel(item)} is ${available ? 'shown again' : 'hidden from every answer'}.`);
      } catch (err) {
        alert.textContent = err.human ? err.human(available ? 'hide the song' : 'show the song') : String(err);
      } finally {
        btn.disabled = false;
      }
    });
    li.classList.toggle('hidden-song', !available);
    li.querySelector('.actions').append(btn);
  }

  /**
   * reactionButtons are Like and Dislike for a song, as toggle buttons
   * (aria-pressed). inPlace: a song in a "similar" list keeps its row and
   * only flips its state; a recommended song's list is re-fetched.
   */
  reactionButtons(song, alert, { inPlace }) {
    const label = songLabel(song);
    const make = (kind, text) => h('button', {
      type: 'button', class: `btn btn-${kind}`, 'data-kind': kind,
      'aria-pressed': String(this.reactions.get(song.song_id) === kind),
      'aria-label': `${text} ${label}`,
    }, h('span', { 'aria-hidden': 'true', class: 'icon' }, kind === 'like' ? '♥' : '✕'), ` ${text}`);
    const like = make('like', 'Like');
    const dislike = make('dislike', 'Dislike');
    const group = h('span', { class: 'reactions' }, like, dislike);
    for (const btn of [like, dislike]) {
      btn.addEventListener('click', () => this.react(song, btn.dataset.kind, { group, alert, inPlace }));
    }
    return group;
  }

  async react(song, kind, { group, alert, inPlace }) {
    const userID = this.userID;
    const buttons = group.querySelectorAll('button');
    const undo = this.reactions.get(song.song_id) === kind;
    const label = songLabel(song);
    buttons.forEach((b) => { b.disabled = true; });
    alert.textContent = '';
    const before = this.lastSignature;
    try {
      if (undo) await api.unreact(userID, song.song_id, kind);
      else await api.react(userID, song.song_id, kind);
    } catch (err) {
      buttons.forEach((b) => { b.disabled = false; });
      alert.textContent = err.human ? err.human(`${undo ? 'undo' : 'save'} your ${kind} of ${label}`) : String(err);
      return;
    }
    if (userID !== this.userID) return;
    if (undo) this.reactions.delete(song.song_id);
    else this.reactions.set(song.song_id, kind);
    buttons.forEach((b) => {
      b.disabled = false;
      b.setAttribute('aria-pressed', String(this.reactions.get(song.song_id) === b.dataset.kind));
    });
    say(this.live, `${undo ? 'Removed your' : 'Saved your'} ${kind} of ${label}. Updating your songs…`);
    if (!inPlace && !undo) this.confirm(song, kind);
    if (inPlace) {
      // The similar list stays; the recommendations above still update.
      this.refresh({ until: before }).catch(() => {});
      return;
    }
    // The song's row is about to be redrawn: keep keyboard focus inside the
    // list instead of losing it to <body>.
    const index = [...this.list.children].indexOf(group.closest('li'));
    try {
      await this.refresh({ until: before });
    } catch {
      return;
    }
    const row = this.list.children[Math.max(0, Math.min(index, this.list.children.length - 1))];
    const target = row && row.querySelector('button');
    if (target) target.focus({ preventScroll: true });
    else this.heading.focus();
  }

  /**
   * confirm says that a reaction was saved, since the song then leaves the
   * list (reacted songs are never recommended back), with an Undo.
   */
  confirm(song, kind) {
    if (!this.toast) return;
    const label = songLabel(song);
    const userID = this.userID;
    const what = kind === 'like' ? 'Liked' : 'Disliked';
    const undo = h('button', { type: 'button', class: 'link', 'data-action': 'undo' }, 'Undo');
    undo.addEventListener('click', async () => {
      undo.disabled = true;
      try {
        await api.unreact(userID, song.song_id, kind);
      } catch (err) {
        undo.disabled = false;
        this.alert.textContent = err.human ? err.human(`undo your ${kind} of ${label}`) : String(err);
        return;
      }
      if (userID !== this.userID) return;
      this.reactions.delete(song.song_id);
      this.toast.textContent = '';
      this.toast.append(h('span', {}, `Undone: your ${kind} of `, h('q', { dir: 'auto' }, label), ' is removed.'));
      const before = this.lastSignature;
      this.refresh({ until: before }).catch(() => {});
    });
    const close = h('button', { type: 'button', class: 'link', 'aria-label': 'Dismiss' }, 'Dismiss');
    close.addEventListener('click', () => this.hideToast());
    this.toast.textContent = '';
    this.toast.append(
      h('span', {}, `${what} `, h('q', { dir: 'auto' }, label),
        kind === 'like' ? ': saved, and your songs are updated from it.' : ': it will not be recommended again.'),
      ' ', undo, ' ', close);
    this.toast.hidden = false;
  }

  hideToast() {
    if (!this.toast) return;
    this.toast.hidden = true;
    this.toast.textContent = '';
  }

  async toggleSimilar(song, toggle, box, alert) {
    const open = toggle.getAttribute('aria-expanded') === 'true';
    if (open) {
      toggle.setAttribute('aria-expanded', 'false');
      box.hidden = true;
      return;
    }
    toggle.setAttribute('aria-expanded', 'true');
    box.hidden = false;
    if (box.dataset.loaded) return;
    clear(box);
    box.append(h('p', { class: 'hint' }, 'Loading similar songs…'));
    alert.textContent = '';
    try {
      const items = await api.similarSongs(song.song_id, { n: 5 });
      clear(box);
      if (items.length === 0) {
        box.append(h('p', { class: 'hint' }, 'No similar songs found.'));
      } else {
        box.append(h('h3', { class: 'similar-h' }, `Similar to ${songLabel(song)}`),
          h('ul', { class: 'similar-list' }, items.map((s) => {
            const rowAlert = h('p', { class: 'alert', role: 'alert' });
            return h('li', { class: 'similar-song', 'data-song-id': s.song_id },
              h('span', { class: 'song-text' },
                h('span', { class: 'track', dir: 'auto' }, s.track || songLabel(s)),
                h('span', { class: 'artist', dir: 'auto' }, s.artist || '')),
              this.reactionButtons(s, rowAlert, { inPlace: true }),
              rowAlert);
          })));
      }
      box.dataset.loaded = '1';
    } catch (err) {
      clear(box);
      toggle.setAttribute('aria-expanded', 'false');
      box.hidden = true;
      alert.textContent = err.human ? err.human(`load songs similar to ${songLabel(song)}`) : String(err);
    }
  }
}

/**
 * becauseText says how the listener reacted to the song behind a
 * recommendation: a like outweighs plays; unknown says neither.
 */
export function becauseText(kinds) {
  if (kinds && kinds.has('like')) return 'Because you liked ';
  if (kinds && kinds.has('play')) return 'Because you played ';
  return 'Because of your interest in ';
}

/** signature identifies a list's content, to notice when it changed. */
function signature(data) {
  return `${data.source}|${data.model_version}|${data.items.map((i) => i.song_id).join(',')}`;
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
