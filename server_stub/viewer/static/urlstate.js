// The URL as the source of the view's state. Query string of /view: run, emb, red (reduction
// id), method, dims (2|3), color, step, sel (selected rows as ranges "0-4.9.12-20"), q, fcol,
// fmin, fmax, nb (neighbour query row), k, metric, thumbs (auto|on|off), top (score column),
// topn, order, cam (the camera: "x,y,zoom" in 2D, "px,py,pz,tx,ty,tz" in 3D), fit (all: one
// frame for every step), iso (1: only the selection drawn), torn (1: torn regions shaded), fnb (0: no
// true/false neighbours on hover), labels (1: text labels), lcol
// (their column), bm (the bookmark opened); and debug=1, which keeps the test hooks (debug.js)
// across reloads. A bookmark stores exactly these parameters.
import { DEBUG } from './debug.js';

const MAX_URL_SELECTION = 12000; // characters of the encoded selection kept in the URL

export function encodeRanges(sorted) {
  const out = [];
  for (let i = 0; i < sorted.length;) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j] + 1) j++;
    out.push(j > i ? `${sorted[i]}-${sorted[j]}` : `${sorted[i]}`);
    i = j + 1;
  }
  return out.join('.');
}

export function decodeRanges(text, n) {
  const out = [];
  for (const part of (text || '').split('.')) {
    const m = part.match(/^(\d+)(?:-(\d+))?$/);
    if (!m) continue;
    const a = parseInt(m[1], 10), b = m[2] ? parseInt(m[2], 10) : a;
    for (let i = a; i <= Math.min(b, n - 1); i++) out.push(i);
  }
  return out;
}

/** `/view?...` for these parameters (URLSearchParams or an object), keeping debug=1. */
export function viewHref(params) {
  const q = new URLSearchParams(params);
  if (DEBUG) q.set('debug', '1');
  return `/view?${q}`;
}

export class UrlState {
  constructor(view, onUrl) {
    this.view = view;
    this.onUrl = onUrl || (() => {});
    this.ready = false; // the URL is written only once the state it describes is restored
  }

  /** Apply the filter, selection and neighbour query that the URL names (after metadata). */
  restore() {
    const view = this.view, p = view.params, el = view.el;
    if (p.get('q')) el.q.value = p.get('q');
    if (p.get('fmin')) el.fmin.value = p.get('fmin');
    if (p.get('fmax')) el.fmax.value = p.get('fmax');
    view.colouring.applyFilter();
    if (p.get('sel')) view.selection.set(decodeRanges(p.get('sel'), view.n));
    else view.selection.render();
    const nb = parseInt(p.get('nb'), 10);
    if (nb >= 0 && nb < view.n) view.selection.click(nb);
    if (p.get('iso') === '1') view.selection.setIsolate(true);
    if (p.get('cam')) view.scatter.setCameraState(p.get('cam').split(',').map(Number));
    if (p.get('bm')) view.status(`Bookmark "${p.get('bm')}"`);
    this.ready = true;
    this.sync();
  }

  /** Write the current state into the URL (debounced). */
  sync() {
    if (!this.ready) return;
    this.view.debounce('url', () => this.onUrl(this.href()), 120);
  }

  href() {
    const view = this.view, el = view.el, sel = view.selection, nb = sel.neighbors;
    const q = new URLSearchParams({ run: view.runId, emb: view.emb.id, red: view.red.id, method: view.red.method, dims: String(view.dims) });
    if (view.timeline.length > 1 && view.emb.step !== null && view.emb.step !== undefined) q.set('step', String(view.emb.step));
    q.set('color', view.colouring.colorBy || '');
    if (el.q.value) q.set('q', el.q.value);
    if (el.fcol.value) q.set('fcol', el.fcol.value);
    if (!el.range.classList.contains('hidden')) { if (el.fmin.value) q.set('fmin', el.fmin.value); if (el.fmax.value) q.set('fmax', el.fmax.value); }
    if (sel.list.length) {
      const s = encodeRanges(sel.list);
      if (s.length <= MAX_URL_SELECTION) q.set('sel', s);
    }
    if (nb) { q.set('nb', String(nb.index)); q.set('k', String(nb.k)); q.set('metric', nb.metric); }
    if (el.thumbs.value !== 'auto') q.set('thumbs', el.thumbs.value);
    if (el.topCol.value) { q.set('top', el.topCol.value); q.set('topn', el.topN.value); q.set('order', el.topOrder.value); }
    if (view.scatter.hasCamera) q.set('cam', view.scatter.cameraState().join(','));
    if (view.fitAll && view.timeline.length > 1) q.set('fit', 'all');
    if (sel.isolated) q.set('iso', '1');
    if (el.torn && el.torn.checked) q.set('torn', '1');
    if (el.falseNb && !el.falseNb.checked) q.set('fnb', '0');
    if (el.labelsOn.checked) { q.set('labels', '1'); if (el.labelCol.value) q.set('lcol', el.labelCol.value); }
    return viewHref(q);
  }
}
