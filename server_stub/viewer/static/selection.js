// Rows the user points at: the hover card, nearest neighbours of a clicked row (asked of the
// server, in the original vector space), the lasso and the selection with its table, the
// per-point flags drawn for all of these, and the CSV / JSON export of the selection.
import { api } from './api.js';
import { h, clear, download } from './dom.js';
import { cellText } from './colors.js';
import { FLAG_SELECTED, FLAG_NEIGHBOR, FLAG_QUERY, FLAG_DIMMED, FLAG_HIDDEN } from './scatter.js';

const MAX_TABLE_ROWS = 200;
const NEIGHBOURS_HINT = 'Click a point to find its nearest neighbours in the original vector space.';

function csvCell(v) {
  let s = typeof v === 'number' ? String(v) : cellText(v); // numbers at full precision
  // a cell that a spreadsheet would run as a formula is prefixed with an apostrophe
  if (typeof v === 'string' && /^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/**
 * Where the hover card goes (css px in the plot): never over the point (kept `gap` px clear),
 * always inside the plot, and among the places beside the point and the plot's corners the
 * one covering the fewest points (`density(x0, y0, x1, y1)` counts them), nearer first on a tie.
 */
export function cardPlace(xy, w, hgt, W, H, gap, density = () => 0) {
  const [px, py] = xy, m = 6;
  const clampX = (x) => Math.min(Math.max(m, x), Math.max(m, W - w - m));
  const clampY = (y) => Math.min(Math.max(m, y), Math.max(m, H - hgt - m));
  const spots = [
    [px + gap, py - hgt / 3], [px - gap - w, py - hgt / 3], [px + gap, py + gap], [px - gap - w, py + gap],
    [px + gap, py - gap - hgt], [px - gap - w, py - gap - hgt], [px - w / 2, py + gap], [px - w / 2, py - gap - hgt],
    [m, m], [W - w - m, m], [m, H - hgt - m], [W - w - m, H - hgt - m],
  ];
  let best = null;
  for (const [sx, sy] of spots) {
    const x = clampX(sx), y = clampY(sy);
    if (px > x - gap && px < x + w + gap && py > y - gap && py < y + hgt + gap) continue; // over the point
    const cover = density(x, y, x + w, y + hgt);
    const far = Math.hypot(x + w / 2 - px, y + hgt / 2 - py);
    const score = cover + far / 2000;
    if (!best || score < best[2]) best = [x, y, score];
  }
  if (!best) best = [clampX(px < W / 2 ? W - w - m : m), clampY(py < H / 2 ? H - hgt - m : m)];
  return [Math.round(best[0]), Math.round(best[1])];
}

export class Selection {
  constructor(view) {
    this.view = view;
    this.selected = null; // Uint8Array (n) of selected rows, or null before the first selection
    this.list = []; // the selected rows, ascending
    this.neighbors = null; // {index, ids, distances, metric, k} of the last neighbour query
    this.hovered = undefined;
    this.flags = null;
    this.isolated = false; // only the selected points are drawn (and fitted)
    this.linked = null; // the other view of a comparison (compare.js): hover and selection shared by row
    this.linkedHover = -1; // the row hovered in the linked view, marked here
  }

  // -- hover and neighbours --------------------------------------------------------------
  hover(i, xy) {
    const view = this.view, card = view.el.card;
    this.hovered = i;
    view.trust.hover(xy ? i : -1);
    if (this.linked) this.linked.showLinkedHover(xy ? i : -1);
    if (i < 0 || !xy) { card.classList.add('hidden'); return; }
    clear(card);
    if (view.sprite) {
      const { bitmap, tw, th, cols } = view.sprite;
      const scale = Math.max(1, Math.floor(128 / Math.max(tw, th)));
      const cv = h('canvas', { class: 'thumb', width: tw * scale, height: th * scale });
      const ctx = cv.getContext('2d');
      ctx.imageSmoothingEnabled = scale === 1;
      ctx.drawImage(bitmap, (i % cols) * tw, Math.floor(i / cols) * th, tw, th, 0, 0, tw * scale, th * scale);
      card.append(cv);
    }
    const rows = [h('tr', {}, h('th', { text: 'row' }), h('td', { class: 'mono', text: String(i) }))];
    for (const c of (view.colouring.columns || []).slice(0, 16)) rows.push(h('tr', {}, h('th', { text: c.name }), h('td', { text: cellText(c.values[i]) })));
    card.append(h('table', { class: 'kv' }, h('tbody', {}, rows)));
    card.classList.remove('hidden');
    const plot = view.el.plot.getBoundingClientRect();
    const [x, y] = cardPlace(xy, card.offsetWidth, card.offsetHeight, plot.width, plot.height,
      12 + (view.scatter.spriteOn ? (view.spritePx || 28) / 2 : 6), (x0, y0, x1, y1) => view.scatter.countInRect(x0, y0, x1, y1));
    card.style.left = `${x}px`;
    card.style.top = `${y}px`;
  }

  /** Ask the server for the neighbours of row i (or clear them for i < 0). */
  async click(i) {
    const view = this.view, el = view.el;
    if (i < 0 || i === undefined) { this.setNeighbors(null); return; }
    const k = Math.max(1, Math.min(200, parseInt(el.k.value, 10) || 10));
    const metric = el.metric.value;
    const emb = view.emb;
    clear(el.nbList).append(h('p', { class: 'muted', text: `Searching neighbours of #${i}…` }));
    const token = this._nbToken = (this._nbToken || 0) + 1; // only the latest query's answer is shown
    try {
      const res = await api.neighbors(view.runId, emb.id, i, k, metric);
      if (emb !== view.emb || token !== this._nbToken) return;
      this.setNeighbors({ index: i, ids: res.neighbors, distances: res.distances, metric: res.metric || metric, k });
    } catch (err) {
      if (token !== this._nbToken) return;
      clear(el.nbList).append(h('p', { class: 'error', text: `Neighbours failed: ${err.message}` }));
    }
  }

  setNeighbors(nb) {
    const view = this.view;
    const label = (i) => view.colouring.label(i);
    this.neighbors = nb;
    const list = clear(view.el.nbList);
    if (nb) {
      list.append(h('p', {}, 'Neighbours of ', h('span', { class: 'mono', text: `#${nb.index}` }), ' ', h('strong', { text: label(nb.index) }),
        h('span', { class: 'muted', text: ` (${nb.metric})` })));
      list.append(h('ol', { class: 'rows' }, nb.ids.map((j, r) => h('li', {},
        h('button', { type: 'button', class: 'row-link', onclick: () => this.click(j) },
          h('span', { class: 'mono', text: `#${j}` }), ' ', h('span', { text: label(j) }),
          h('span', { class: 'muted', text: ` ${Number(nb.distances[r]).toPrecision(4)}` }))))));
      list.append(h('button', { type: 'button', text: 'Select these', onclick: () => this.set([nb.index, ...nb.ids]) }));
    } else {
      list.append(h('p', { class: 'muted', text: NEIGHBOURS_HINT }));
    }
    this.updateFlags();
    view.url.sync();
  }

  // -- lasso and selection ---------------------------------------------------------------
  setLasso(on) {
    const { scatter, el } = this.view;
    scatter.setLassoMode(on);
    el.lasso.classList.toggle('active', scatter.lassoMode);
    el.lasso.setAttribute('aria-pressed', String(scatter.lassoMode));
  }

  lasso(poly, add) {
    const mask = this.view.colouring.filterMask;
    const accept = mask ? (i) => mask[i] === 1 : null;
    const ids = this.view.scatter.lassoIndices(poly, accept);
    this.set(add ? [...new Set([...this.list, ...ids])].sort((a, b) => a - b) : ids);
    this.setLasso(false);
  }

  /** Mark the row hovered in the linked view (-1: none). */
  showLinkedHover(i) {
    if (i === this.linkedHover) return;
    this.linkedHover = i;
    this.updateFlags();
  }

  set(ids, fromLink = false) {
    const view = this.view, n = view.n;
    this.selected = new Uint8Array(n);
    for (const i of ids) if (i >= 0 && i < n) this.selected[i] = 1;
    const list = [];
    for (let i = 0; i < n; i++) if (this.selected[i]) list.push(i);
    this.list = list;
    if (this.isolated) { this.isolated = !!list.length; this._isolateChanged(); }
    this.updateFlags();
    this.render();
    view.steps.updateTrails();
    view.url.sync();
    if (this.linked && !fromLink) this.linked.set(list, true);
  }

  /** Draw only the selected points (and fit them), or every point again. */
  setIsolate(on) {
    const view = this.view;
    if (on && !this.list.length) {
      view.status('Nothing selected to isolate: draw a lasso (L) or pick a legend entry first.', true);
      return;
    }
    if (!!on === this.isolated) return;
    this.isolated = !!on;
    view.status('');
    this.updateFlags();
    this._isolateChanged();
    view.url.sync();
  }

  _isolateChanged() {
    const view = this.view, el = view.el;
    el.isolate.textContent = this.isolated ? 'Show all (I)' : 'Isolate (I)';
    el.isolate.classList.toggle('active', this.isolated);
    el.isolate.setAttribute('aria-pressed', String(this.isolated));
    const banner = clear(el.isoBanner);
    banner.classList.toggle('hidden', !this.isolated);
    if (this.isolated) {
      banner.append(h('span', { text: `Showing ${this.list.length.toLocaleString()} of ${view.n.toLocaleString()} points ` }),
        h('button', { type: 'button', id: 'show-all', class: 'bar-button', text: 'Show all', onclick: () => this.setIsolate(false) }));
    }
    view.applyFit();
  }

  /** Selected, neighbour, query, dimmed and hidden bits per point, handed to the plot. */
  updateFlags() {
    const view = this.view, n = view.n;
    if (!view.scatter.flags) return;
    if (!this.flags || this.flags.length !== n) this.flags = new Uint8Array(n);
    const f = this.flags;
    const sel = this.selected, mask = view.colouring.filterMask;
    const iso = this.isolated && sel;
    for (let i = 0; i < n; i++) {
      f[i] = (sel && sel[i] ? FLAG_SELECTED : (iso ? FLAG_HIDDEN : 0)) | (mask && !mask[i] ? FLAG_DIMMED : 0);
    }
    if (this.neighbors) {
      for (const j of this.neighbors.ids) if (j >= 0 && j < n) f[j] |= FLAG_NEIGHBOR;
      if (this.neighbors.index < n) f[this.neighbors.index] |= FLAG_QUERY;
    }
    if (this.linkedHover >= 0 && this.linkedHover < n) f[this.linkedHover] |= FLAG_QUERY;
    view.scatter.setFlags(f, this.list.length > 0);
  }

  render() {
    const el = this.view.el;
    el.selCount.textContent = `${this.list.length.toLocaleString()} selected`;
    const box = clear(el.selTable);
    if (!this.list.length) return;
    const cols = (this.view.colouring.columns || []).slice(0, 8);
    box.append(h('table', { class: 'list compact', id: 'selection-rows' },
      h('thead', {}, h('tr', {}, h('th', { text: 'row' }), cols.map((c) => h('th', { text: c.name })))),
      h('tbody', {}, this.list.slice(0, MAX_TABLE_ROWS).map((i) => h('tr', {},
        h('td', { class: 'mono', text: String(i) }), cols.map((c) => h('td', { text: cellText(c.values[i]) })))))));
    if (this.list.length > MAX_TABLE_ROWS) box.append(h('p', { class: 'muted', text: `… and ${(this.list.length - MAX_TABLE_ROWS).toLocaleString()} more (all are exported)` }));
  }

  // -- export ----------------------------------------------------------------------------
  /** Selected rows with their metadata and projected coordinates. */
  records() {
    const view = this.view;
    const cols = view.colouring.columns || [];
    const axes = view.dims === 3 ? ['proj_x', 'proj_y', 'proj_z'] : ['proj_x', 'proj_y'];
    return this.list.map((i) => {
      const row = { row: i };
      for (const c of cols) row[c.name] = c.values[i];
      const xyz = view.scatter.positionOf(i);
      axes.forEach((a, k) => { row[a] = xyz[k]; });
      return row;
    });
  }

  export(kind) {
    const view = this.view;
    if (!this.list.length) { view.status('Nothing selected: draw a lasso (L) first.', true); return; }
    const recs = this.records();
    const base = `selection-${view.emb.id.slice(0, 8)}-${recs.length}`;
    if (kind === 'json') {
      const body = JSON.stringify({ run: view.runId, embedding: view.emb.id, step: view.emb.step, reduction: view.red.id, rows: recs }, null, 1);
      download(`${base}.json`, body, 'application/json');
    } else {
      const keys = Object.keys(recs[0]);
      const lines = [keys.map(csvCell).join(',')];
      for (const r of recs) lines.push(keys.map((k) => csvCell(r[k])).join(','));
      download(`${base}.csv`, lines.join('\r\n') + '\r\n', 'text/csv');
    }
  }
}
