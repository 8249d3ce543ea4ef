// The REST API client: one fetch wrapper that turns the API's
// {"error", "detail"} bodies into ApiError, plus one function per endpoint.
// Response shapes are read tolerantly (see pickList) so small differences in
// the server's field names do not break the page. Requests carry the API
// token when this tab holds one (auth.js); a 401 asks for one.

import * as auth from './auth.js';

// The API's shapes, generated from internal/openapi/openapi.json by
// `make types` (web/types/api.d.ts); `make lint` type-checks this file
// against them (tsc --checkJs), so an API change that breaks the page
// fails lint. Type-only: the browser never loads the .d.ts.
/** @typedef {import('../../types/api').components['schemas']} Schemas */

/** ApiError is a failed request: status 0 means the network failed. */
export class ApiError extends Error {
  constructor(status, code, detail) {
    super(detail || code || `HTTP ${status}`);
    this.name = 'ApiError';
    this.status = status;
    this.code = code || '';
    this.detail = detail || '';
  }

  /** human is a sentence for an inline alert. */
  human(action) {
    if (this.status === 0) return `Could not ${action}: the server did not answer. Check your connection and try again.`;
    const what = this.detail || this.code || 'unexpected error';
    const kind = this.status >= 500 ? 'the server had a problem' : 'the request was refused';
    return `Could not ${action}: ${kind} (HTTP ${this.status}: ${what}).`;
  }
}

/** isAbort tells a request cancelled on purpose from a real failure. */
export function isAbort(err) {
  return err && err.name === 'AbortError';
}

/**
 * send sends one API call and returns the response with its decoded JSON
 * body (null for none); a failure throws ApiError. A 304 (a conditional
 * request whose copy is current) is no failure.
 * @param {string} method
 * @param {string} path
 * @param {{body?: unknown, signal?: AbortSignal, headers?: Record<string, string>}} [opts]
 * @returns {Promise<{res: Response, data: any}>}
 */
async function send(method, path, { body, signal, headers: extra = {} } = {}) {
  let res;
  /** @type {Record<string, string>} */
  const headers = { Accept: 'application/json', ...extra };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const token = auth.token();
  if (token) headers.Authorization = `Bearer ${token}`;
  try {
    res = await fetch(path, {
      method,
      signal,
      headers,
      // A conditional request is the page's own: the HTTP cache must not
      // answer it or turn its 304 into a 200.
      cache: extra['If-None-Match'] ? 'no-store' : 'default',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    if (isAbort(err)) throw err;
    auth.answered();
    throw new ApiError(0, 'network', String(err && err.message || err));
  }
  const text = await res.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = null; }
  }
  if (res.status === 401) auth.unauthorized(token);
  else auth.answered();
  if (!res.ok && res.status !== 304) {
    const code = data && typeof data.error === 'string' ? data.error : res.statusText;
    const detail = data && typeof data.detail === 'string' ? data.detail : '';
    throw new ApiError(res.status, code, detail);
  }
  return { res, data };
}

/**
 * request sends one API call and returns its decoded JSON body (null for
 * none); a failure throws ApiError.
 * @param {string} method
 * @param {string} path
 * @param {{body?: unknown, signal?: AbortSignal}} [opts]
 * @returns {Promise<any>}
 */
async function request(method, path, opts = {}) {
  return (await send(method, path, opts)).data;
}

/** pickList returns the first array among obj[keys...], or obj itself. */
export function pickList(obj, ...keys) {
  if (Array.isArray(obj)) return obj;
  if (!obj || typeof obj !== 'object') return [];
  for (const k of keys) if (Array.isArray(obj[k])) return obj[k];
  return [];
}

const enc = encodeURIComponent;

/**
 * searchUsers lists users whose id or name matches query.
 * @param {string} query
 * @param {{limit?: number, signal?: AbortSignal}} [opts]
 * @returns {Promise<Schemas['User'][]>}
 */
export async function searchUsers(query, { limit = 10, signal } = {}) {
  /** @type {Schemas['UserPage']} */
  const data = await request('GET', `/v1/users?query=${enc(query)}&limit=${limit}`, { signal });
  return pickList(data, 'users', 'items', 'results');
}

/**
 * getUser fetches one user's profile (used for deep links).
 * @param {string} userID
 * @param {{signal?: AbortSignal}} [opts]
 * @returns {Promise<Schemas['User']>}
 */
export function getUser(userID, { signal } = {}) {
  return request('GET', `/v1/users/${enc(userID)}`, { signal });
}

/**
 * reactions lists a user's latest reactions ({song, kind, …}), newest first.
 * @param {string} userID
 * @param {{limit?: number, signal?: AbortSignal}} [opts]
 * @returns {Promise<Schemas['ReactedSong'][]>}
 */
export async function reactions(userID, { limit = 50, signal } = {}) {
  /** @type {Schemas['ReactionList']} */
  const data = await request('GET', `/v1/users/${enc(userID)}/reactions?limit=${limit}`, { signal });
  return pickList(data, 'reactions', 'items');
}

/**
 * recommendations fetches a user's top n songs; tags (any of) and
 * maxPerArtist are the request-time filters (omitted when empty).
 * @param {string} userID
 * @param {{n?: number, tags?: string[], maxPerArtist?: number, signal?: AbortSignal}} [opts]
 * @returns {Promise<Schemas['Recommendations']>}
 */
export async function recommendations(userID, { n = 5, tags = [], maxPerArtist = 0, signal } = {}) {
  let q = `n=${n}`;
  if (tags.length) q += `&tags=${enc(tags.join(','))}`;
  if (maxPerArtist > 0) q += `&max_per_artist=${maxPerArtist}`;
  /** @type {Schemas['Recommendations']} */
  const data = await request('GET', `/v1/users/${enc(userID)}/recommendations?${q}`, { signal });
  return { ...data, items: pickList(data, 'items', 'recommendations') };
}

/**
 * react records a like, dislike or play.
 * @param {string} userID
 * @param {number} songID
 * @param {Schemas['ReactionKind']} kind
 * @returns {Promise<Schemas['ReactionAnswer']>}
 */
export function react(userID, songID, kind) {
  /** @type {Schemas['NewReaction']} */
  const body = { song_id: songID, kind };
  return request('POST', `/v1/users/${enc(userID)}/reactions`, { body });
}

/**
 * unreact removes a reaction of one kind.
 * @param {string} userID
 * @param {number} songID
 * @param {Schemas['ReactionKind']} kind
 * @returns {Promise<null>}
 */
export function unreact(userID, songID, kind) {
  return request('DELETE', `/v1/users/${enc(userID)}/reactions/${enc(songID)}?kind=${enc(kind)}`);
}

/**
 * createUser registers a user with favourite songs.
 * @param {{userID: string, displayName?: string, songIDs: number[]}} user
 * @returns {Promise<Schemas['User']>}
 */
export function createUser({ userID, displayName, songIDs }) {
  /** @type {Schemas['NewUser']} */
  const body = { user_id: userID, likes: songIDs.map((id) => ({ song_id: id })) };
  if (displayName) body.display_name = displayName;
  return request('POST', '/v1/users', { body });
}

/**
 * searchSongs is the catalog typeahead.
 * @param {string} query
 * @param {{limit?: number, signal?: AbortSignal}} [opts]
 * @returns {Promise<Schemas['SongList']['songs']>}
 */
export async function searchSongs(query, { limit = 10, signal } = {}) {
  /** @type {Schemas['SongList']} */
  const data = await request('GET', `/v1/songs?query=${enc(query)}&limit=${limit}`, { signal });
  return pickList(data, 'songs', 'items', 'results');
}

/**
 * similarSongs lists songs like songID.
 * @param {number} songID
 * @param {{n?: number, signal?: AbortSignal}} [opts]
 * @returns {Promise<Schemas['Similar']['items']>}
 */
export async function similarSongs(songID, { n = 5, signal } = {}) {
  /** @type {Schemas['Similar']} */
  const data = await request('GET', `/v1/songs/${enc(songID)}/similar?n=${n}`, { signal });
  return pickList(data, 'items', 'similar', 'songs');
}

/**
 * model describes the published model and the registry's recent runs.
 * @param {{signal?: AbortSignal}} [opts]
 * @returns {Promise<Schemas['Model']>}
 */
export function model({ signal } = {}) {
  return request('GET', '/v1/model', { signal });
}

/**
 * modelIfChanged asks for /v1/model unless the copy whose ETag is etag is
 * still current: null when it is (a 304), else the document and its ETag.
 * @param {string} etag
 * @param {{signal?: AbortSignal}} [opts]
 * @returns {Promise<{data: Schemas['Model'], etag: string} | null>}
 */
export async function modelIfChanged(etag, { signal } = {}) {
  const { res, data } = await send('GET', '/v1/model', { signal, headers: etag ? { 'If-None-Match': etag } : {} });
  if (res.status === 304) return null;
  return { data, etag: res.headers.get('ETag') || '' };
}

/**
 * runs lists the run registry, newest first.
 * @param {{limit?: number, signal?: AbortSignal}} [opts]
 * @returns {Promise<Schemas['Run'][]>}
 */
export async function runs({ limit = 20, signal } = {}) {
  /** @type {Schemas['RunList']} */
  const data = await request('GET', `/v1/runs?limit=${limit}`, { signal });
  return pickList(data, 'runs');
}

/**
 * run is one run and the search behind its parameters, with every trial.
 * @param {number} id
 * @param {{signal?: AbortSignal}} [opts]
 * @returns {Promise<Schemas['RunDetail']>}
 */
export function run(id, { signal } = {}) {
  return request('GET', `/v1/runs/${enc(id)}`, { signal });
}

/**
 * experiments is the running A/B experiment and the last ones, with readouts.
 * @param {{signal?: AbortSignal}} [opts]
 * @returns {Promise<Schemas['Experiments']>}
 */
export function experiments({ signal } = {}) {
  return request('GET', '/v1/experiments', { signal });
}

/**
 * listUsers is one page of every listener in id order (the Browse view);
 * cursor is the previous page's next_cursor ('' for the first).
 * @param {{limit?: number, cursor?: string, signal?: AbortSignal}} [opts]
 * @returns {Promise<Schemas['UserPage']>}
 */
export function listUsers({ limit = 25, cursor = '', signal } = {}) {
  return request('GET', `/v1/users?limit=${limit}${cursor ? `&cursor=${enc(cursor)}` : ''}`, { signal });
}

/**
 * listSongs is one page of the catalog in alphabetical order (the Browse
 * view); cursor is the previous page's next_cursor ('' for the first).
 * tag keeps the songs carrying it ('' every song); available keeps the
 * served songs (undefined every song, false the hidden ones).
 * @param {{limit?: number, cursor?: string, tag?: string, available?: boolean, signal?: AbortSignal}} [opts]
 * @returns {Promise<Schemas['SongList']>}
 */
export function listSongs({ limit = 25, cursor = '', tag = '', available, signal } = {}) {
  const q = new URLSearchParams({ limit: String(limit) });
  if (cursor) q.set('cursor', cursor);
  if (tag) q.set('tag', tag);
  if (typeof available === 'boolean') q.set('available', String(available));
  return request('GET', `/v1/songs?${q}`, { signal });
}

/**
 * startExperiment starts an A/B experiment of challenger against the
 * current version: admin scope.
 * @param {Schemas['NewExperiment']} body
 * @returns {Promise<Schemas['ExperimentRecord']>}
 */
export function startExperiment(body) {
  return request('POST', '/v1/admin/experiments', { body });
}

/**
 * stopExperiment ends the running experiment: admin scope.
 * @returns {Promise<Schemas['ExperimentRecord']>}
 */
export function stopExperiment() {
  return request('POST', '/v1/admin/experiments/stop');
}

/**
 * song is one song with its catalog metadata (tags, released, available).
 * @param {number} songID
 * @param {{signal?: AbortSignal}} [opts]
 * @returns {Promise<Schemas['CatalogSong']>}
 */
export function song(songID, { signal } = {}) {
  return request('GET', `/v1/songs/${enc(songID)}`, { signal });
}

/**
 * setAvailable hides (false) or shows (true) a song: admin scope.
 * @param {number} songID
 * @param {boolean} available
 * @returns {Promise<Schemas['CatalogSong']>}
 */
export function setAvailable(songID, available) {
  /** @type {Schemas['SongPatch']} */
  const body = { available };
  return request('PATCH', `/v1/songs/${enc(songID)}`, { body });
}

/**
 * canEditCatalog reports whether this tab's token has the admin scope. The
 * API does not say a token's scope; an admin token passes the scope check
 * of PATCH /v1/songs/0 and is refused for the song id (400), any other
 * token for its scope (403), so nothing is ever changed by asking.
 */
export async function canEditCatalog() {
  if (!auth.token()) return false;
  try {
    await request('PATCH', '/v1/songs/0', { body: { available: true } });
    return true;
  } catch (err) {
    return err.status === 400;
  }
}
