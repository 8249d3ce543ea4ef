// API tokens. A production serve answers 401 to any /v1 request without
// "Authorization: Bearer <token>" (docs/SECURITY.md). The page asks for the
// token once, on the first 401, and keeps it in sessionStorage: this tab
// only, gone when the tab closes, and never attached by the browser on its
// own the way a cookie is, so another site cannot make a visitor's browser
// write with it (the server's cross-site checks stay the whole defence, not
// weakened by an ambient credential). The strict Content-Security-Policy
// (no inline or third-party script) is what keeps other code from reading it.
// The loopback playground needs no token and never shows the form.

import { h, say } from './dom.js';

const KEY = 'setlist.api-token';

/** token is the API token this tab holds, or ''. */
export function token() {
  try { return sessionStorage.getItem(KEY) || ''; } catch { return ''; }
}

function keep(value) {
  try { sessionStorage.setItem(KEY, value); } catch { /* storage off: asked again next load */ }
}

function forget() {
  try { sessionStorage.removeItem(KEY); } catch { /* nothing kept */ }
}

let panel = null;

/**
 * The page's panels stay hidden (main[data-auth=checking], style.css) until
 * the first answer says whether this server needs a token, so a server that
 * does shows the sign-in form alone, not next to panels saying "Loading…"
 * and "HTTP 401" that then jump away (issue 26 item 10).
 */
function authState(state) {
  const main = document.querySelector('main');
  if (main && main.dataset.auth !== 'needed') main.dataset.auth = state;
}

/**
 * needed reports whether the page waits for a token: then nothing should
 * poll, since every request would be one more failed authentication (the
 * server throttles those per client, and would refuse the token typed next).
 */
export function needed() {
  return document.querySelector('main')?.dataset.auth === 'needed';
}

/** answered is called on every answer but a 401 (and on a network error, whose panels must say so): the panels show. */
export function answered() {
  authState('ok');
}
let refused = false; // a token was sent and refused since the page loaded

/**
 * unauthorized is called on a 401 to a request that carried sentToken (or
 * ''): it drops a token the server refused and shows the sign-in form at
 * the top of the page (once, however many requests failed).
 */
export function unauthorized(sentToken) {
  if (sentToken) refused = true;
  forget();
  authState('needed');
  if (!panel) panel = signInPanel();
  const status = panel.querySelector('#auth-status');
  status.classList.toggle('error', refused);
  say(status, refused
    ? 'The server refused that token. Enter a valid one.'
    : 'This server needs an API token for every request. Ask its operator for one.');
  panel.hidden = false;
  panel.querySelector('#auth-token').focus();
}

function signInPanel() {
  const input = h('input', { id: 'auth-token', name: 'token', type: 'password', required: true,
    autocomplete: 'off', spellcheck: 'false', autocapitalize: 'off', 'aria-describedby': 'auth-status' });
  const form = h('form', {
    id: 'auth-form',
    onsubmit: (ev) => {
      ev.preventDefault();
      const value = input.value.trim();
      if (!value) {
        input.setAttribute('aria-invalid', 'true');
        input.focus();
        return;
      }
      keep(value);
      // Every panel loads again, now with the token.
      location.reload();
    },
  },
  h('div', { class: 'field' }, h('label', { for: 'auth-token' }, 'API token'), input),
  h('button', { type: 'submit', class: 'btn btn-primary' }, 'Sign in'));
  const section = h('section', { class: 'panel', id: 'auth', 'aria-labelledby': 'auth-h' },
    h('h2', { id: 'auth-h' }, 'Sign in'),
    h('p', { id: 'auth-status', class: 'hint', role: 'status' }),
    h('p', { class: 'hint' }, 'The token is kept in this browser tab only, until you close it.'),
    form);
  const main = document.querySelector('main') || document.body;
  main.prepend(section);
  return section;
}
