// The view's data from the server: stored projections (raw float32) and metadata, each
// fetched once per page and cached, and the (n, 3) positions drawn for 2D or 3D.
import { api } from './api.js';

export class ViewData {
  constructor(runId) {
    this.runId = runId;
    this.coordCache = new Map(); // reduction id → Promise<{data: Float32Array (n*c), c, n}>
    this.metaCache = new Map(); // embedding id → Promise<metadata>
  }

  coords(red) {
    if (!this.coordCache.has(red.id)) {
      const p = api.coords(this.runId, red.id).then(({ data, shape }) => ({ data, c: shape[1], n: shape[0] }));
      p.catch(() => this.coordCache.delete(red.id));
      this.coordCache.set(red.id, p);
    }
    return this.coordCache.get(red.id);
  }

  metadata(emb) {
    if (!this.metaCache.has(emb.id)) {
      const p = api.metadata(this.runId, emb.id);
      p.catch(() => this.metaCache.delete(emb.id));
      this.metaCache.set(emb.id, p);
    }
    return this.metaCache.get(emb.id);
  }
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
