// How far to trust the shown projection, drawn on it: the hovered point's true neighbours
// (nearest in the original space, asked of the server) and false neighbours (among its k
// nearest on screen but not among its k true ones), ringed in a layer over the plot; and the
// torn regions (trust_point below its 10th percentile) drawn darker by the colouring.
import { api } from './api.js';
import { h, clear } from './dom.js';

export const TORN_QUANTILE = 0.1;
const TORN_SHADE = 0.3; // torn points keep this share of their colour
const HOVER_REST_MS = 120;

/** Rows whose value is below the q-quantile of the finite values (Uint8Array (n), 1 = torn). */
export function tornMask(values, q = TORN_QUANTILE) {
  const finite = values.filter((v) => typeof v === 'number' && Number.isFinite(v)).sort((a, b) => a - b);
  const mask = new Uint8Array(values.length);
  if (!finite.length) return mask;
  const cut = finite[Math.min(finite.length - 1, Math.floor(q * finite.length))];
  for (let i = 0; i < values.length; i++) if (typeof values[i] === 'number' && values[i] < cut) mask[i] = 1;
  return mask;
}

/** Darken the torn rows of rgba (n*4) in place. */
export function shadeTorn(rgba, mask) {
  for (let i = 0; i < mask.length; i++) {
    if (!mask[i]) continue;
    for (let c = 0; c < 3; c++) rgba[i * 4 + c] = Math.round(rgba[i * 4 + c] * TORN_SHADE);
  }
}

/** The k rows nearest to row i on screen (screen: Float32Array (n*2) css px), nearest first. */
export function screenNeighbours(screen, i, k) {
  const x = screen[i * 2], y = screen[i * 2 + 1], n = screen.length / 2;
  const best = []; // [d2, j], sorted ascending
  for (let j = 0; j < n; j++) {
    if (j === i) continue;
    const dx = screen[j * 2] - x, dy = screen[j * 2 + 1] - y, d2 = dx * dx + dy * dy;
    if (!Number.isFinite(d2) || (best.length === k && d2 >= best[k - 1][0])) continue;
    let lo = 0, hi = best.length;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (best[mid][0] <= d2) lo = mid + 1; else hi = mid; }
    best.splice(lo, 0, [d2, j]);
    if (best.length > k) best.pop();
  }
  return best.map((b) => b[1]);
}

export class TrustOverlay {
  constructor(view) {
    this.view = view;
    this.last = null; // {index, trueIds, falseIds} of the last hover drawn
    this._token = 0;
    this._cache = new Map(); // `${emb}/${i}/${k}/${metric}` → Promise<neighbours answer>
  }

  /** Ring row i's true and false neighbours (or clear them for i < 0). */
  async hover(i) {
    const view = this.view, layer = view.el.nbLayer;
    const token = ++this._token;
    if (i < 0 || i === undefined || !view.el.falseNb || !view.el.falseNb.checked) { clear(layer); this.last = null; return; }
    const k = Math.max(1, Math.min(200, parseInt(view.el.k.value, 10) || 10));
    const metric = view.el.metric.value;
    const key = `${view.emb.id}/${i}/${k}/${metric}`;
    if (!this._cache.has(key)) {
      // the server searches only once the pointer rests, not for every point it passes over
      await new Promise((resolve) => setTimeout(resolve, HOVER_REST_MS));
      if (token !== this._token) return;
      if (this._cache.size > 500) this._cache.clear();
      const p = api.neighbors(view.runId, view.emb.id, i, k, metric);
      p.catch(() => this._cache.delete(key));
      this._cache.set(key, p);
    }
    let res;
    try { res = await this._cache.get(key); } catch (err) { view.status(`Neighbours failed: ${err.message}`, true); return; }
    if (token !== this._token) return;
    const screen = view.scatter.screenPositions();
    const trueIds = res.neighbors;
    const isTrue = new Set(trueIds);
    const falseIds = screenNeighbours(screen, i, k).filter((j) => !isTrue.has(j));
    const ring = (j, cls) => {
      const [x, y] = view.scatter.screenXY(j);
      const el = h('span', { class: `nb-ring ${cls}` });
      el.style.transform = `translate(${x}px, ${y}px)`;
      return el;
    };
    clear(layer).append(...trueIds.map((j) => ring(j, 'nb-true')), ...falseIds.map((j) => ring(j, 'nb-false')));
    this.last = { index: i, trueIds: trueIds.slice(), falseIds };
  }
}
