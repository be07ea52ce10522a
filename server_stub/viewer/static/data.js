// The view's data from the server: stored projections (raw float32) and metadata, each
// fetched once per page and cached, and the (n, 3) positions drawn for 2D or 3D.
import { api } from './api.js';

export class ViewData {
  constructor(runId) {
    this.runId = runId;
    this.coordCache = new Map(); // reduction id → Promise<{data: Float32Array (n*c), c, n}>
    this.metaCache = new Map(); // embedding id → Promise<metadata>
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

  metadata(emb) {
    if (!this.metaCache.has(emb.id)) {
      const p = api.metadata(this.runId, emb.id);
      p.catch(() => this.metaCache.delete(emb.id));
      this.metaCache.set(emb.id, p);
    }
    return this.metaCache.get(emb.id);
  }

  /**
   * The embedding's metadata with the projection's own columns (trust_point, continuity_point,
   * from the reduction's columns route) after the embedding's; `trustScores` the global scores.
   */
  viewMetadata(emb, red) {
    const key = `${emb.id}/${red ? red.id : ''}`;
    if (!this.viewCache.has(key)) {
      const own = red ? api.reductionColumns(this.runId, red.id) : Promise.resolve(null);
      const p = Promise.all([this.metadata(emb), own]).then(([meta, extra]) => {
        if (!extra || !extra.columns || !extra.columns.length) return meta;
        const names = new Set(extra.columns.map((c) => c.name));
        return { ...meta, columns: [...meta.columns.filter((c) => !names.has(c.name)), ...extra.columns], trustScores: extra.analysis };
      });
      p.catch(() => this.viewCache.delete(key));
      this.viewCache.set(key, p);
    }
    return this.viewCache.get(key);
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
