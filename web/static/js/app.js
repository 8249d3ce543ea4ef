// Entry point: wires the user search, the user view, registration and the
// model panel, and routes on the URL hash so a view can be linked to without
// any server route: /#/users/{user_id} a listener, /#/runs and
// /#/runs/{id} the search view, /#/browse the lists of listeners and
// songs (serve redirects /runs/{id} here). Nothing here reloads the page.

import { userLabel } from './dom.js';
import * as api from './api.js';
import { combobox } from './combobox.js';
import { UserView } from './recs.js';
import { registerForm } from './register.js';
import { ModelPanel } from './model.js';
import { rawModelLink } from './rawjson.js';
import { RunView } from './runs.js';
import { Browse } from './browse.js';

const $ = (sel) => document.querySelector(sel);

// A version published under the page redraws the panel (model.watch) and
// the listener's songs, which came from the old one.
const model = new ModelPanel($('#model'), { onSwitch: () => { if (view.userID) view.refresh().catch(() => {}); } });
const view = new UserView($('#user'), { n: 5, onModelVersion: (v) => model.seen(v) });
const known = new Map(); // user_id → user, from searches, for headings
const runView = new RunView($('#runs-view'));
const browse = new Browse($('#browse-view'));
const main = $('main');

const userInput = $('#user-q');
combobox({
  input: userInput,
  listbox: $('#user-list'),
  status: $('#user-q-status'),
  fetch: async (q, signal) => {
    const users = await api.searchUsers(q, { limit: 10, signal });
    for (const u of users) known.set(u.user_id, u);
    return users;
  },
  render: (u) => ({ label: userLabel(u), detail: u.display_name && u.display_name !== u.user_id ? u.user_id : '' }),
  // A pasted id and an immediate Enter open that listener.
  exact: (u, text) => u.user_id === text,
  onPick: (u) => {
    // Keep what was typed visible as the chosen listener's id, and open them.
    userInput.value = u.user_id;
    openUser(u.user_id, { focus: false });
  },
});

registerForm($('#register'), {
  onCreated: (user) => {
    known.set(user.user_id, user);
    openUser(user.user_id, { focus: true });
    model.load();
  },
});

/** openUser shows a listener and records it in the hash (no navigation). */
function openUser(userID, { focus }) {
  const hash = `#/users/${encodeURIComponent(userID)}`;
  if (location.hash !== hash) history.pushState(null, '', hash);
  showFromHash({ focus });
}

/**
 * setView shows one view: "home" (the listener, registration and model
 * panels), "runs" or "browse"; the nav marks the current one.
 */
function setView(name) {
  main.dataset.view = name;
  $('#runs-view').hidden = name !== 'runs';
  $('#browse-view').hidden = name !== 'browse';
  for (const a of document.querySelectorAll('.site-nav a')) {
    if (a.getAttribute('data-view') === name) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

function showFromHash({ focus = false } = {}) {
  const run = location.hash.match(/^#\/runs(?:\/(\d+))?\/?$/);
  if (run) {
    setView('runs');
    runView.show(run[1] ? Number(run[1]) : null).then(() => $('#runs-h')?.focus({ preventScroll: false }));
    return;
  }
  const br = location.hash.match(/^#\/browse(?:\/(.*))?$/);
  if (br) {
    setView('browse');
    browse.show(br[1] || '');
    return;
  }
  setView('home');
  const m = location.hash.match(/^#\/users\/(.+)$/);
  if (!m) return;
  let userID;
  try { userID = decodeURIComponent(m[1]); } catch { userID = m[1]; }
  const user = known.get(userID) || null;
  view.show(userID, user, { focus }).catch(() => {});
  if (!user) {
    // A deep link or a typed id: fetch the profile for the heading (an
    // unknown id is explained by the songs' request).
    api.getUser(userID).then((u) => {
      if (!u || u.user_id !== userID) return;
      known.set(userID, u);
      view.setUser(u);
    }).catch(() => {});
  }
}

// Back/forward between listeners, and hand-edited hashes.
window.addEventListener('popstate', () => showFromHash());
window.addEventListener('hashchange', () => showFromHash());

rawModelLink($('#model-json-link'), $('#model-json'));
showFromHash({ focus: true });
model.load();
model.watch();
