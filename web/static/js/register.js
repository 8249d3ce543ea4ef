// Registration: a user id, an optional display name and favourite songs
// picked from the catalog typeahead (shown as removable chips). On 201 the
// new listener's personalised songs are shown at once; on an error the form
// keeps everything typed and the message appears in its alert region.

import { h, say, songLabel } from './dom.js';
import * as api from './api.js';
import { combobox } from './combobox.js';

/**
 * registerForm wires the #register form. onCreated(user) is called after
 * the server created the user.
 */
export function registerForm(form, { onCreated }) {
  const idInput = form.querySelector('#reg-id');
  const nameInput = form.querySelector('#reg-name');
  const songInput = form.querySelector('#reg-song');
  const chips = form.querySelector('#reg-chips');
  const alert = form.querySelector('#reg-alert');
  const live = form.querySelector('#reg-live');
  const submit = form.querySelector('button[type=submit]');
  const picked = new Map(); // song_id → song, in the order picked

  combobox({
    input: songInput,
    listbox: form.querySelector('#reg-song-list'),
    status: form.querySelector('#reg-song-status'),
    fetch: (q, signal) => api.searchSongs(q, { limit: 8, signal }),
    // One letter matches most of the catalog: ranking all of it by
    // popularity costs ~10x a longer query (docs/BENCHMARKS.md).
    minLength: 2,
    render: (s) => ({ label: s.track || songLabel(s), detail: s.artist || '' }),
    onPick: (song) => {
      songInput.value = '';
      if (picked.has(song.song_id)) {
        say(live, `${songLabel(song)} is already picked.`);
        return;
      }
      picked.set(song.song_id, song);
      renderChips();
      say(live, `Added ${songLabel(song)}. ${picked.size} favourite song${picked.size === 1 ? '' : 's'}.`);
    },
  });

  function renderChips() {
    chips.replaceChildren(...[...picked.values()].map((song) => {
      const label = songLabel(song);
      return h('li', { class: 'chip', 'data-song-id': song.song_id },
        h('span', { class: 'chip-label', dir: 'auto' }, label),
        h('button', {
          type: 'button', class: 'chip-remove', 'aria-label': `Remove ${label}`,
          onclick: (e) => remove(song, e.currentTarget),
        }, h('span', { 'aria-hidden': 'true' }, '×')));
    }));
    chips.hidden = picked.size === 0;
  }

  function remove(song, button) {
    // Move focus to the next chip's button, else the previous, else the input.
    const li = button.closest('li');
    const next = (li.nextElementSibling || li.previousElementSibling);
    picked.delete(song.song_id);
    renderChips();
    const again = next && [...chips.children].find((c) => c.dataset.songId === next.dataset.songId);
    (again ? again.querySelector('button') : songInput).focus();
    say(live, `Removed ${songLabel(song)}.`);
  }

  function invalid(input, message) {
    input.setAttribute('aria-invalid', 'true');
    alert.textContent = message;
    input.focus();
  }

  for (const input of [idInput, nameInput]) {
    input.addEventListener('input', () => input.removeAttribute('aria-invalid'));
  }

  form.addEventListener('submit', async (e) => {
    e.preventDefault(); // never navigate: the page talks to the API itself
    alert.textContent = '';
    // The server's id rule (internal/store.UserID), mirrored: the same NFC
    // form, and the pattern and hint the page carries (a Go test checks
    // both against the rule). The server stays the authority.
    const userID = idInput.value.trim().normalize('NFC');
    const displayName = nameInput.value.trim();
    const rule = form.querySelector('#reg-id-rule').textContent;
    if (!userID) {
      invalid(idInput, `Choose a user id. ${rule}`);
      return;
    }
    if (!new RegExp(`^(?:${idInput.pattern})$`, 'v').test(userID)) {
      invalid(idInput, `“${userID}” cannot be a user id. ${rule}`);
      return;
    }
    submit.disabled = true;
    submit.setAttribute('aria-busy', 'true');
    try {
      const created = await api.createUser({ userID, displayName, songIDs: [...picked.keys()] });
      const user = { user_id: userID, display_name: displayName, ...(created && typeof created === 'object' ? created : {}) };
      say(live, `Welcome, ${displayName || userID}! Here are your songs.`);
      form.reset();
      picked.clear();
      renderChips();
      onCreated(user);
    } catch (err) {
      if (err.status === 409) {
        invalid(idInput, `The user id “${userID}” is taken. Choose another one.`);
      } else if (err.status === 400) {
        alert.textContent = err.human('register');
      } else {
        alert.textContent = err.human ? err.human('register') : String(err);
      }
    } finally {
      submit.disabled = false;
      submit.removeAttribute('aria-busy');
    }
  });

  renderChips();
}
