// Small DOM helpers. Every piece of server text goes through textContent
// (via h's string children or attributes), never innerHTML, so names holding
// "<script>", RTL marks or emoji are shown exactly as typed and never run.

/**
 * h creates an element. props sets attributes (class, aria-*, data-*, …);
 * keys starting with "on" add event listeners; `hidden` and other booleans
 * are set when true. Children may be strings (inserted as text nodes),
 * nodes, or null/false (skipped); arrays are flattened.
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (value === true) {
      el.setAttribute(key, '');
    } else {
      el.setAttribute(key, String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

/** svg creates an SVG element (same rules as h, in the SVG namespace). */
export function svg(tag, props = {}, ...children) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

/** clear removes every child of el. */
export function clear(el) {
  el.replaceChildren();
}

/** say puts text in a live region so screen readers announce it. */
export function say(region, text) {
  region.textContent = '';
  // A fresh text node in a new task is announced even when the text repeats.
  requestAnimationFrame(() => { region.textContent = text; });
}

/** debounce delays fn until wait ms passed without another call. */
export function debounce(fn, wait) {
  let timer;
  const debounced = (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), wait);
  };
  debounced.cancel = () => clearTimeout(timer);
  return debounced;
}

/** songLabel is "Track — Artist" for a song object, or the text given. */
export function songLabel(song) {
  if (!song) return '';
  if (typeof song === 'string') return song;
  const track = song.track ?? song.title ?? '';
  const artist = song.artist ?? '';
  if (track && artist) return `${track} — ${artist}`;
  return track || artist || (song.song_id !== undefined ? `song ${song.song_id}` : '');
}

/** userLabel is the display name, falling back to the user id. */
export function userLabel(user) {
  return (user && (user.display_name || user.user_id)) || '';
}
