// An accessible typeahead following the WAI-ARIA 1.2 combobox pattern with a
// listbox popup: the input keeps focus, aria-activedescendant points at the
// highlighted option, ArrowDown/ArrowUp move, Enter picks, Escape closes
// (a second Escape clears the input). Requests are debounced, and each new
// one aborts the previous with an AbortController, so a slow stale answer can
// never overwrite a newer one. Answers are cached per query for the session.

import { h, clear, debounce } from './dom.js';
import { isAbort } from './api.js';

let nextID = 0;

/**
 * combobox wires input (role=combobox) to listbox (role=listbox).
 *   fetch(query, signal) → Promise<item[]>   the matches for query
 *   render(item) → {label, detail?}          the option's text
 *   onPick(item)                             called when an option is chosen
 *   status                                   an aria-live element for counts and errors
 *   minLength                                characters before searching (default 1)
 *   exact(item, text) → bool                 optional: Enter pressed before the
 *                                            list for text is shown picks the
 *                                            item text names exactly (a pasted id)
 */
export function combobox({ input, listbox, status, fetch, render, onPick, exact, minLength = 1, wait = 150 }) {
  const id = `cb${nextID++}`;
  const cache = new Map();
  let items = [];
  let active = -1;
  let controller = null;
  let lastQuery = null;
  let shownQuery = null; // the query whose matches the listbox holds
  let pendingEnter = null; // text Enter was pressed on before its matches came

  input.setAttribute('role', 'combobox');
  input.setAttribute('aria-autocomplete', 'list');
  input.setAttribute('aria-expanded', 'false');
  input.setAttribute('aria-controls', listbox.id);
  input.setAttribute('autocomplete', 'off');
  listbox.setAttribute('role', 'listbox');
  listbox.hidden = true;

  function setStatus(text) {
    if (status) status.textContent = text;
  }

  function open(show) {
    listbox.hidden = !show;
    input.setAttribute('aria-expanded', String(show));
    if (!show) setActive(-1);
  }

  function setActive(i) {
    const options = listbox.querySelectorAll('[role=option]');
    options.forEach((o, j) => o.setAttribute('aria-selected', String(j === i)));
    active = i;
    if (i >= 0 && options[i]) {
      input.setAttribute('aria-activedescendant', options[i].id);
      options[i].scrollIntoView({ block: 'nearest' });
    } else {
      input.removeAttribute('aria-activedescendant');
    }
  }

  function show(query, found) {
    items = found;
    shownQuery = query;
    clear(listbox);
    found.forEach((item, i) => {
      const { label, detail } = render(item);
      listbox.appendChild(h('li', {
        role: 'option', id: `${id}-${i}`, 'aria-selected': 'false', class: 'option',
        // pointerdown (not click) so the input does not lose focus first.
        onpointerdown: (e) => { e.preventDefault(); pick(i); },
      }, h('span', { class: 'option-label', dir: 'auto' }, label),
      detail ? h('span', { class: 'option-detail', dir: 'auto' }, detail) : null));
    });
    if (pendingEnter !== null && pendingEnter === query) {
      // Enter came first (a pasted id): pick the exact match, or the only one.
      pendingEnter = null;
      const i = exact ? found.findIndex((item) => exact(item, query.trim())) : -1;
      if (i >= 0 || found.length === 1) {
        pick(Math.max(i, 0));
        return;
      }
    }
    if (found.length === 0) {
      open(false);
      setStatus(`No matches for “${query}”.`);
      return;
    }
    open(true);
    setStatus(`${found.length} match${found.length === 1 ? '' : 'es'}; use the arrow keys to choose and Enter to pick.`);
  }

  async function search(query) {
    if (query === lastQuery && !listbox.hidden) return;
    lastQuery = query;
    if (controller) controller.abort();
    if (query.trim().length < minLength) {
      controller = null;
      items = [];
      clear(listbox);
      open(false);
      setStatus('');
      return;
    }
    if (cache.has(query)) {
      show(query, cache.get(query));
      return;
    }
    controller = new AbortController();
    const mine = controller;
    input.setAttribute('aria-busy', 'true');
    try {
      const found = await fetch(query, mine.signal);
      if (mine.signal.aborted) return;
      cache.set(query, found);
      if (cache.size > 200) cache.delete(cache.keys().next().value);
      show(query, found);
    } catch (err) {
      if (isAbort(err)) return;
      lastQuery = null;
      items = [];
      clear(listbox);
      open(false);
      setStatus(err.human ? err.human('search') : `Could not search: ${err}`);
      if (status) status.classList.add('error');
      return;
    } finally {
      if (controller === mine) {
        controller = null;
        input.removeAttribute('aria-busy');
      }
    }
    if (status) status.classList.remove('error');
  }

  const later = debounce(() => search(input.value), wait);

  function pick(i) {
    const item = items[i];
    if (!item) return;
    later.cancel();
    open(false);
    setStatus('');
    onPick(item);
    // What the person typed may have been replaced by onPick; remember it so
    // that a focus/keystroke does not immediately search for it again.
    lastQuery = input.value;
  }

  input.addEventListener('input', () => {
    pendingEnter = null;
    if (status) status.classList.remove('error');
    later();
  });

  // Set when keydown handled Enter, so that its keypress (which some input
  // drivers send even after keydown's preventDefault) cannot submit a form.
  let enterHandled = false;
  input.addEventListener('keypress', (e) => {
    if (e.key === 'Enter' && enterHandled) e.preventDefault();
    enterHandled = false;
  });

  input.addEventListener('keydown', (e) => {
    const n = items.length;
    enterHandled = false;
    switch (e.key) {
      case 'ArrowDown':
        e.preventDefault();
        if (listbox.hidden) {
          if (n > 0) { open(true); setActive(0); } else { lastQuery = null; later.cancel(); search(input.value); }
        } else if (n > 0) {
          setActive((active + 1) % n);
        }
        break;
      case 'ArrowUp':
        e.preventDefault();
        if (!listbox.hidden && n > 0) setActive(active <= 0 ? n - 1 : active - 1);
        break;
      case 'Enter':
        if (exact && input.value.trim().length >= minLength && (listbox.hidden || shownQuery !== input.value)) {
          // The matches for what is in the box are not shown yet (typed
          // or pasted faster than the debounce): search now, and pick
          // when they arrive.
          e.preventDefault();
          enterHandled = true;
          pendingEnter = input.value;
          later.cancel();
          lastQuery = null;
          search(input.value);
        } else if (!listbox.hidden && active >= 0) {
          e.preventDefault(); // never submit the surrounding form
          enterHandled = true;
          pick(active);
        } else if (!listbox.hidden && n > 0) {
          e.preventDefault();
          enterHandled = true;
          pick(0);
        }
        break;
      case 'Escape':
        if (!listbox.hidden) {
          e.preventDefault();
          open(false);
        } else if (input.value) {
          e.preventDefault();
          input.value = '';
          later.cancel();
          lastQuery = '';
          setStatus('');
        }
        break;
      case 'Home':
      case 'End':
        break;
      default:
    }
  });

  input.addEventListener('blur', () => {
    // Let a pointer pick land first; pointerdown already prevented the blur
    // in that case, so closing here is only for tabbing away.
    setTimeout(() => open(false), 0);
  });

  return {
    /** close hides the popup. */
    close: () => open(false),
  };
}
