// The footer's "model JSON" link. A plain link cannot carry the API token
// (auth.js keeps it in sessionStorage on purpose, never in a cookie), so on a
// serve that requires tokens it would open a 401. A plain click therefore
// fetches /v1/model with the token and shows the document in the page; the
// href stays for the loopback playground, where middle-click and "copy link"
// work as for any link.

import { h, clear, say } from './dom.js';
import * as api from './api.js';

/** rawModelLink wires link to show /v1/model inside box. */
export function rawModelLink(link, box) {
  link.addEventListener('click', async (ev) => {
    if (ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
    ev.preventDefault();
    if (!box.hidden && link.getAttribute('aria-expanded') === 'true') {
      box.hidden = true;
      link.setAttribute('aria-expanded', 'false');
      return;
    }
    clear(box);
    const status = h('p', { class: 'hint', 'aria-live': 'polite' });
    box.append(status);
    box.hidden = false;
    link.setAttribute('aria-expanded', 'true');
    say(status, 'Loading /v1/model…');
    try {
      const doc = await api.model();
      clear(box);
      box.append(h('pre', { class: 'raw-json', tabindex: '0', 'aria-label': 'The /v1/model document' },
        JSON.stringify(doc, null, 2)));
    } catch (err) {
      status.classList.add('error');
      say(status, err.human ? err.human('load /v1/model') : String(err));
    }
  });
}
