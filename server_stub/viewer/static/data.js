// The view's data from the server: stored projections (raw float32) and metadata columns
// (typed binary columns, columns.js), each fetched once per page and cached, and the (n, 3)
// positions drawn for 2D or 3D. The colour column can come ahead of the rest (firstColumns),
// so the first frame is drawn coloured while the other columns are still on their way.
import { api } from './api.js';
import { DEBUG } from './debug.js';

/** ?debug=1&meta=json: metadata from the JSON answers, as before binary columns (the benchmark's baseline). */
const JSON_META = DEBUG && new URLSearchParams(location.search).get('meta') === 'json';

export class ViewData {
  constructor(runId) {
    this.runId = runId;
    this.coordCache = new Map(); // reduction id → Promise<{data: Float32Array (n*c), c, n}>
    this.firstCache = new Map(); // `${embedding id}/${reduction id}` → Promise<answer of the first columns>
    this.viewCache = new Map(); // `${embedding id}/${reduction id}` → Promise<metadata with the projection's columns>
  }

  coords(red) {
    if (!this.coordCache.has(red.id)) {
      const p = api.coords(this.runId, red.id).then(({ data, shape }) => ({ data, c: shape[1], n: shape[0] }));
      p.catch(() => this.coordCache.delete(red.id));
      this.coordCache.set(red.id, p);
    }
    return this.coordCache.get(red.id);
  }

  /**
   * Just the `names` columns of the view (the colour column, for the first frame): metadata
   * shaped like viewMetadata's, or null when the metadata comes as JSON. viewMetadata then
   * asks only for the columns these did not bring.
   */
  firstColumns(emb, red, names) {
    if (JSON_META || !names.length) return null;
    const key = `${emb.id}/${red ? red.id : ''}`;
    if (!this.firstCache.has(key)) this.firstCache.set(key, api.columns(this.runId, emb.id, red && red.id, names));
    return this.firstCache.get(key).then(asMetadata);
  }

  /**
   * The embedding's metadata with the projection's own columns (trust_point, continuity_point)
   * after the embedding's: {n, columns: [{name, type, values}], trustScores} (the global scores).
   */
  viewMetadata(emb, red) {
    const key = `${emb.id}/${red ? red.id : ''}`;
    if (!this.viewCache.has(key)) {
      const p = JSON_META ? this._jsonMetadata(emb, red) : this._columns(emb, red, this.firstCache.get(key));
      p.catch(() => this.viewCache.delete(key));
      this.viewCache.set(key, p);
    }
    return this.viewCache.get(key);
  }

  async _columns(emb, red, firstP) {
    const first = firstP ? await firstP.catch(() => null) : null; // a colour column it lacks: ask for all
    if (!first) return asMetadata(await api.columns(this.runId, emb.id, red && red.id));
    const have = new Map(first.columns.map((c) => [c.name, c]));
    const rest = first.available.filter((name) => !have.has(name));
    if (rest.length) for (const c of (await api.columns(this.runId, emb.id, red && red.id, rest)).columns) have.set(c.name, c);
    return asMetadata({ ...first, columns: first.available.map((name) => have.get(name)) });
  }

  async _jsonMetadata(emb, red) {
    const [meta, extra] = await Promise.all([api.metadata(this.runId, emb.id), red ? api.reductionColumns(this.runId, red.id) : null]);
    if (!extra || !extra.columns || !extra.columns.length) return meta;
    const names = new Set(extra.columns.map((c) => c.name));
    return { ...meta, columns: [...meta.columns.filter((c) => !names.has(c.name)), ...extra.columns], trustScores: extra.analysis };
  }
}

/** A columns answer as the view's metadata; trustScores only when the projection has scores. */
function asMetadata(answer) {
  const scores = answer.scores && Object.keys(answer.scores).length ? answer.scores : undefined;
  return { n: answer.n, columns: answer.columns, trustScores: scores };
}

/** (n, c) coordinates → the (n, 3) float32 positions drawn for `dims` (cached on `coords`). */
export function displayPositions(coords, dims) {
  const key = `pos${dims}`;
  if (coords[key]) return coords[key];
  const { data, c, n } = coords;
  let out;
  if (c === 3 && dims === 3) out = data;
  else {
    out = new Float32Array(n * 3);
    const take = Math.min(c, dims);
    for (let i = 0; i < n; i++) for (let k = 0; k < take; k++) out[i * 3 + k] = data[i * c + k];
  }
  coords[key] = out;
  return out;
}
