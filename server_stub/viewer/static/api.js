// The HTTP API (/api/v1) as the viewer uses it: JSON for listings, raw float32 for arrays,
// typed binary columns for metadata (columns.js); writes carry the API key once given (apikey.js).
import { askForKey, authHeaders } from './apikey.js';
import { decodeColumns, fetchBuffer } from './columns.js';

export class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

const BASE = '/api/v1';
export const enc = encodeURIComponent;

async function check(resp) {
  if (resp.ok) return resp;
  let message = resp.statusText;
  try { message = (await resp.json()).error || message; } catch (_) { /* not JSON */ }
  throw new ApiError(resp.status, `${resp.status}: ${message}`);
}

export async function getJSON(path) {
  return (await check(await fetch(BASE + path, { headers: { Accept: 'application/json' } }))).json();
}

/** A little-endian float32 array with its X-Shape header: {data: Float32Array, shape: [n, d]}. */
export async function getF32(path) {
  const resp = await check(await fetch(BASE + path));
  const shape = (resp.headers.get('X-Shape') || '').split(',').map((s) => parseInt(s, 10));
  const buf = await resp.arrayBuffer();
  const data = new Float32Array(buf);
  if (shape.length !== 2 || shape.some((s) => !(s >= 0)) || shape[0] * shape[1] !== data.length) {
    throw new ApiError(0, `${path}: X-Shape ${resp.headers.get('X-Shape')} does not match ${data.length} floats`);
  }
  return { data, shape };
}

/**
 * A write (PUT, POST, DELETE) with a JSON body; the JSON answer, or null for 204. A 401 (the
 * server wants an API key) asks for the key and, once given, sends the write again.
 */
export async function sendJSON(method, path, body) {
  for (;;) {
    const init = { method, headers: { Accept: 'application/json', ...authHeaders() } };
    if (body !== undefined) { init.headers['Content-Type'] = 'application/json'; init.body = JSON.stringify(body); }
    const resp = await fetch(BASE + path, init);
    if (resp.status === 401 && await askForKey('This server needs an API key for changes.', !!init.headers.Authorization)) continue;
    await check(resp);
    return resp.status === 204 ? null : resp.json();
  }
}

/** Metadata columns as typed arrays (columns.js): `names` (all when empty), with `red`'s own columns. */
export async function getColumns(runId, embId, redId, names = []) {
  const q = new URLSearchParams();
  for (const name of names) q.append('name', name);
  if (redId) q.set('reduction', redId);
  const query = q.toString();
  const path = `/runs/${enc(runId)}/embeddings/${enc(embId)}/columns${query ? `?${query}` : ''}`;
  try {
    return decodeColumns(await fetchBuffer(BASE + path));
  } catch (err) {
    throw err.status !== undefined ? new ApiError(err.status, err.message) : err;
  }
}

export async function getBlob(path) {
  return (await check(await fetch(BASE + path))).blob();
}

export const api = {
  projects: () => getJSON('/projects'),
  runs: (project) => getJSON(`/projects/${enc(project)}/runs`),
  run: (id) => getJSON(`/runs/${enc(id)}`),
  metrics: (id) => getJSON(`/runs/${enc(id)}/metrics`),
  embeddings: (id) => getJSON(`/runs/${enc(id)}/embeddings`),
  metadata: (id, e) => getJSON(`/runs/${enc(id)}/embeddings/${enc(e)}/metadata`),
  columns: getColumns,
  coords: (id, r) => getF32(`/runs/${enc(id)}/reductions/${enc(r)}/coords`),
  reductionColumns: (id, r) => getJSON(`/runs/${enc(id)}/reductions/${enc(r)}/columns`),
  dynamics: (id, group) => getJSON(`/runs/${enc(id)}/dynamics?group=${enc(group)}`),
  sprite: (id, e) => getBlob(`/runs/${enc(id)}/embeddings/${enc(e)}/sprite`),
  bookmarks: (id) => getJSON(`/runs/${enc(id)}/bookmarks`),
  putBookmark: (id, name, state) => sendJSON('PUT', `/runs/${enc(id)}/bookmarks/${enc(name)}`, { state }),
  deleteBookmark: (id, name) => sendJSON('DELETE', `/runs/${enc(id)}/bookmarks/${enc(name)}`),
  startProjection: (id, body) => sendJSON('POST', `/runs/${enc(id)}/projections`, body),
  projection: (id, job) => getJSON(`/runs/${enc(id)}/projections/${enc(job)}`),
  neighbors: (id, e, index, k, metric) =>
    getJSON(`/runs/${enc(id)}/embeddings/${enc(e)}/neighbors?index=${index}&k=${k}&metric=${enc(metric)}`),
};
