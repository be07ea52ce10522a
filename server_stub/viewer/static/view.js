// The embedding view: loads an embedding's stored projection and metadata, draws them with
// Scatter, and switches embedding, reduction and dimensions. Its parts, one concern each:
//   panel.js      the DOM of the stage and the control panel
//   data.js       fetching and caching coordinates and metadata
//   steps.js      the step slider, playback with interpolation, trails
//   colouring.js  colour-by and legend, search and filter, top N by score
//   selection.js  hover card, neighbours, lasso, selection, export
//   trust.js      true and false neighbours on hover, torn regions
//   dynamics.js   the group's CKA heatmap, rows changed most, class separation sparklines
//   urlstate.js   the URL as the source of the view's state
//   labels.js     text labels on the points in view
//   projector.js  projections computed by the server on the page's request
//   bookmarks.js  named views stored on the server
//   debug.js      window.__viewer for tests, only with ?debug=1
import { api } from './api.js';
import { Bookmarks, bookmarkHref } from './bookmarks.js';
import { PointLabels } from './labels.js';
import { Projector } from './projector.js';
import { boundsOf } from './scatter.js';
import { Colouring, labelColumn } from './colouring.js';
import { ViewData, displayPositions } from './data.js';
import { installDebugHooks } from './debug.js';
import { buildControls, buildLayout, buildSteps, defaultPointSize, fillEmbeddings, fillMethods, updateHeader } from './panel.js';
import { Selection } from './selection.js';
import { Steps } from './steps.js';
import { TrustOverlay } from './trust.js';
import { DynamicsPanel } from './dynamics.js';
import { UrlState, viewHref } from './urlstate.js';

const META_AFTER_FIRST_FRAME = 200000; // above this many points, metadata waits for the first frame

export class EmbeddingView {
  constructor(root, run, params, { onUrl, embeddings } = {}) {
    this.embeddingsP = embeddings || null;
    this.root = root;
    this.run = run;
    this.runId = run.run_id;
    this.params = params;
    this.data = new ViewData(this.runId);
    this.steps = new Steps(this);
    this.colouring = new Colouring(this);
    this.selection = new Selection(this);
    this.trust = new TrustOverlay(this);
    this.dynamics = new DynamicsPanel(this);
    this.url = new UrlState(this, onUrl);
    this.labels = new PointLabels(this);
    this.projector = new Projector(this);
    this.bookmarks = new Bookmarks(this);
    this.fitAll = params.get('fit') === 'all'; // one frame for every step, else each step is fitted
    this.disposed = false;
    this.stats = { state: 'loading', firstFrameMs: null, colouredMs: null, usableMs: null, readyMs: null }; // progress and timings
    this._timers = {};
    installDebugHooks(this);
  }

  dispose() {
    this.disposed = true;
    this.steps.playing = false;
    for (const t of Object.values(this._timers)) clearTimeout(t);
    this.projector.dispose();
    if (this.scatter) this.scatter.dispose();
    window.removeEventListener('keydown', this._onKey, true);
  }

  // -- loading ---------------------------------------------------------------------------
  async start() {
    try {
      await this._start();
    } catch (err) {
      this.stats.state = 'error';
      this.stats.error = String(err && err.message || err);
      this.status(this.stats.error, true);
      throw err;
    }
  }

  async _start() {
    const p = this.params;
    this.embeddings = await (this.embeddingsP || api.embeddings(this.runId));
    let emb = this.embeddings.find((e) => e.id === p.get('emb'));
    if (!emb && p.get('emb')) throw new Error(`This run has no embedding ${p.get('emb')}`);
    emb = emb || this.embeddings.find((e) => e.reductions.length) || this.embeddings[0];
    if (!emb) throw new Error('This run has no embeddings.');
    buildLayout(this);
    this._bindKeys();
    const red = chooseReduction(emb, p.get('red'), p.get('method'));
    if (!red) {
      this.emb = emb;
      updateHeader(this);
      throw new Error(`No stored projection for "${emb.title}": the viewer never computes one. ` +
        `Log it with reduce="pca" or run \`tracker reduce\` on the run.`);
    }
    this.emb = emb;
    this.red = red;
    this._computeTimeline();
    const stepParam = p.get('step');
    if (stepParam !== null && this.timeline.length > 1) {
      const k = this.timeline.findIndex((t) => String(t.emb.step) === stepParam);
      if (k >= 0) { this.emb = this.timeline[k].emb; this.red = this.timeline[k].red; }
    }
    this.steps.pos = Math.max(0, this.timeline.findIndex((t) => t.emb.id === this.emb.id));
    this.n = this.emb.n;
    this.dims = this.red.n_components >= 3 && p.get('dims') !== '2' ? 3 : 2;
    const marks = this.stats.marks = { embeddings: performance.now() };
    this.status(`Loading ${this.n.toLocaleString()} points…`);
    const coordsP = this.data.coords(this.red);
    // the colour column comes with the coordinates, so the first frame is drawn coloured; the
    // other columns are asked for once it has arrived. Metadata as JSON (?debug=1&meta=json, the
    // benchmark's baseline) waits for the coordinates, and for large sets for the first frame:
    // producing and parsing tens of megabytes of JSON competes with a software-rendered frame
    const firstP = this.data.firstColumns(this.emb, this.red, this._firstColourNames());
    let firstFrameDone;
    const firstFrameP = new Promise((resolve) => { firstFrameDone = resolve; });
    const metaP = (firstP ? firstP.catch(() => null) : this.n > META_AFTER_FIRST_FRAME ? firstFrameP : coordsP)
      .then(() => this.data.viewMetadata(this.emb, this.red));
    metaP.catch(() => {});
    const spriteP = this.loadSprite(this.emb, coordsP);
    updateHeader(this);
    buildControls(this);
    const coords = await coordsP;
    marks.coords = performance.now();
    // the colour column (a fraction of the coordinates' bytes, usually in already) before the
    // points are handed to the plot, so that no uncoloured frame is drawn in between
    const first = firstP && await firstP.catch(() => null);
    if (this.disposed) return;
    this.scatter.setData(this._positions(coords), this.n, this.dims);
    this.applyFit(coords, coords, 0);
    this.applyPointSizes();
    marks.setData = performance.now();
    if (first) { // coloured from the first frame; hover card and search have these columns only, for now
      this.meta = first;
      this.colouring.onMetadata(true);
      marks.firstColumns = performance.now();
    }
    // when thumbnails will show from the start, the first frame already draws them
    if (this.emb.sprite && this._spritesWanted()) await spriteP;
    this.stats.firstFrameMs = await this.scatter.nextFrameDone();
    if (first) this.stats.colouredMs = this.stats.firstFrameMs;
    firstFrameDone();
    this.shownRed = this.red.id;
    this.status('');
    this.meta = await metaP;
    marks.metadata = performance.now();
    if (this.disposed) return;
    this.colouring.onMetadata(true);
    this.stats.usableMs = performance.now(); // every column in the hover card, search and filter
    if (!first) this.scatter.nextFrameDone().then((t) => { this.stats.colouredMs = t; });
    await this.dynamics.load();
    if (this.fitAll) await this.setFitAll(true);
    this.url.restore();
    marks.coloured = performance.now();
    this.stats.readyMs = await this.scatter.nextFrameDone();
    this.stats.state = 'ready';
    await spriteP;
    if (this.timeline.length > 1) setTimeout(() => this.steps.prefetch(), 50);
  }

  /** The column the first frame is coloured by: the URL's `color`, else the label column of the listing. */
  _firstColourNames() {
    const asked = this.params.get('color');
    if (asked !== null) return asked ? [asked] : [];
    const col = labelColumn(this.emb.columns || []);
    return col ? [col.name] : [];
  }

  /**
   * Shortcuts, whatever has focus except a field that takes text (there Esc only leaves the
   * field): L lasso, I isolate, T text labels, R reset view, P panel, Esc clear, Space play.
   * Listened for in the capture phase, so a focused dropdown cannot swallow them.
   */
  _bindKeys() {
    this._onKey = (ev) => {
      if (ev.defaultPrevented || ev.ctrlKey || ev.metaKey || ev.altKey || !this.scatter) return;
      const t = ev.target;
      if (takesText(t)) { if (ev.key === 'Escape') t.blur(); return; }
      const key = ev.key.length === 1 ? ev.key.toLowerCase() : ev.key;
      const act = {
        l: () => this.selection.setLasso(!this.scatter.lassoMode),
        i: () => this.selection.setIsolate(!this.selection.isolated),
        t: () => this.labels.toggle(),
        r: () => this.resetView(),
        p: () => this.togglePanel(),
        Escape: () => this.escape(),
      }[key];
      if (act) {
        ev.preventDefault(); // no type-ahead in a focused dropdown
        ev.stopPropagation();
        if (t && t.tagName === 'SELECT') t.blur();
        act();
      } else if (key === ' ' && this.timeline && this.timeline.length > 1 && !(t && (/^(BUTTON|SELECT|A)$/.test(t.tagName) || t.type === 'checkbox'))) {
        ev.preventDefault();
        this.steps.toggle();
      }
    };
    window.addEventListener('keydown', this._onKey, true);
  }

  /** Esc: leave lasso mode, then clear the selection (and isolation) and the neighbours. */
  escape() {
    if (this.scatter.lassoMode) { this.selection.setLasso(false); return; }
    this.selection.set([]);
    this.selection.setNeighbors(null);
  }

  /** Back to the first camera, its point and thumbnail sizes, and the fitted frame. */
  resetView() {
    this.scatter.resetView();
    this.applyFit();
    this.url.sync();
  }

  togglePanel(open) {
    const collapsed = open === undefined ? !this.el.view.classList.contains('panel-collapsed') : !open;
    this.el.view.classList.toggle('panel-collapsed', collapsed);
    this.el.panelToggle.setAttribute('aria-expanded', String(!collapsed));
    this.el.panelToggle.title = collapsed ? 'Show the side panel (P)' : 'Hide the side panel (P)';
  }

  // -- fitting the camera's frame to the data ----------------------------------------------
  /**
   * Scale and centre the drawing for the coordinates a and b mixed by t (the slider between
   * two steps): the bounds of each step, interpolated, so every step fills the plot; with
   * "fit all steps" the bounds of every step at once; while isolated, the selected points'.
   */
  applyFit(a, b, t) {
    if (a) this._fitArgs = [a, b, t];
    if (!this._fitArgs || !this.scatter.hasCamera) return;
    [a, b, t] = this._fitArgs;
    const sel = this.selection;
    let box;
    if (sel.isolated && sel.list.length) {
      const keep = (i) => sel.selected[i] === 1;
      box = mixBounds(boundsOf(this._positions(a), a.n, keep), boundsOf(this._positions(b), b.n, keep), t);
    } else if (this.fitAll && this._allBounds && this._allBounds.dims === this.dims && this._allBounds.red === this.timeline[0].red.id) {
      box = this._allBounds;
    } else {
      box = mixBounds(this._bounds(a), this._bounds(b), t);
    }
    this.scatter.fitBounds(box.lo, box.hi);
  }

  _bounds(coords) {
    const key = `bounds${this.dims}`;
    if (!coords[key]) coords[key] = boundsOf(this._positions(coords), coords.n);
    return coords[key];
  }

  /** Fit every step at once (on) or each step on its own (off). */
  async setFitAll(on) {
    this.fitAll = !!on;
    if (this.el.fitAll) this.el.fitAll.checked = this.fitAll;
    if (this.fitAll) {
      const all = await Promise.all(this.timeline.map((e) => this.data.coords(e.red)));
      const lo = [Infinity, Infinity, Infinity], hi = [-Infinity, -Infinity, -Infinity];
      for (const c of all) {
        const b = this._bounds(c);
        for (let k = 0; k < 3; k++) { lo[k] = Math.min(lo[k], b.lo[k]); hi[k] = Math.max(hi[k], b.hi[k]); }
      }
      this._allBounds = { lo, hi, dims: this.dims, red: this.timeline[0].red.id };
    }
    this.applyFit();
    this.url.sync();
  }

  // -- projections computed on the page's request, bookmarks -----------------------------
  /** A projection job finished: list it, and show it when it belongs to this embedding. */
  async adoptComputed(reductionIds) {
    this.embeddings = await api.embeddings(this.runId);
    const emb = this.embeddings.find((e) => e.id === this.emb.id);
    if (!emb || this.disposed) return;
    this.emb = emb;
    for (const t of this.timeline) t.emb = this.embeddings.find((e) => e.id === t.emb.id) || t.emb;
    fillEmbeddings(this);
    const red = emb.reductions.find((r) => reductionIds.includes(r.id));
    if (red) await this.switchReduction(red.id);
    else fillMethods(this);
  }

  openBookmark(bookmark) { location.assign(bookmarkHref(bookmark)); }

  /** The steps that share the shown reduction's reducer (one entry when it has none). */
  _computeTimeline() {
    const r = this.red;
    if (r.timeline) {
      const entries = [];
      for (const e of this.embeddings) {
        const match = e.reductions.find((x) => x.timeline === r.timeline);
        if (match && e.n === this.emb.n) entries.push({ emb: e, red: match });
      }
      this.timeline = entries.sort(timelineOrder);
    } else {
      this.timeline = [{ emb: this.emb, red: r }];
    }
  }

  _positions(coords) { return displayPositions(coords, this.dims); }

  async loadSprite(emb, dataReady = null) {
    if (!emb.sprite || (this.sprite && this.sprite.sha256 && this.sprite.sha256 === emb.sprite.sha256)) return;
    try {
      const blob = await api.sprite(this.runId, emb.id);
      const bitmap = await createImageBitmap(blob);
      if (dataReady) await dataReady; // the atlas is applied to the drawn points
      if (this.disposed || this.emb.sprite !== emb.sprite && this.emb.id !== emb.id) return;
      const [tw, th] = emb.sprite.tile_size;
      const [cols, rows] = emb.sprite.grid;
      const max = this.scatter.maxTextureSize();
      let image = bitmap;
      if (bitmap.width > max || bitmap.height > max) {
        // larger than a texture may be: draw it scaled down; tile uv coordinates are unchanged
        const f = max / Math.max(bitmap.width, bitmap.height);
        const canvas = document.createElement('canvas');
        canvas.width = Math.max(1, Math.floor(bitmap.width * f));
        canvas.height = Math.max(1, Math.floor(bitmap.height * f));
        canvas.getContext('2d').drawImage(bitmap, 0, 0, canvas.width, canvas.height);
        image = canvas;
      }
      this.sprite = { bitmap, tw, th, cols, rows, sha256: emb.sprite.sha256 };
      this.scatter.setAtlas(image, [cols, rows], [tw / bitmap.width, th / bitmap.height]);
      this.el.thumbs.disabled = false;
      this.applySpriteMode();
      this.stats.spriteLoaded = true;
      if (!this.stats.spriteFrameMs) this.stats.spriteFrameMs = await this.scatter.nextFrameDone();
    } catch (err) {
      this.status(`Sprite not loaded: ${err.message}`, true);
    }
  }

  status(text, isError = false) {
    if (!this.el) return;
    this.el.status.textContent = text;
    this.el.status.classList.toggle('error', !!isError);
    this.el.status.classList.toggle('hidden', !text);
  }

  debounce(key, fn, ms) {
    clearTimeout(this._timers[key]);
    this._timers[key] = setTimeout(fn, ms);
  }

  // -- switching embedding / reduction / dims ---------------------------------------------
  async switchEmbedding(id) {
    const emb = this.embeddings.find((e) => e.id === id);
    if (!emb) return;
    const red = chooseReduction(emb, null, this.red && this.red.method);
    const params = new URLSearchParams({ run: this.runId, emb: emb.id });
    if (red) params.set('red', red.id);
    if (this.colouring.colorBy) params.set('color', this.colouring.colorBy);
    // a different embedding may have a different size: rebuild the view from the URL
    if (emb.n !== this.n || !red) { location.assign(viewHref(params)); return; }
    this.emb = emb;
    this.red = red;
    await this._reloadProjection();
    this.meta = await this.data.viewMetadata(emb, red);
    this.colouring.onMetadata(false);
    this.dynamics.load();
    this.loadSprite(emb);
  }

  async switchReduction(redId) {
    const red = this.emb.reductions.find((r) => r.id === redId);
    if (!red) return;
    this.red = red;
    await this._reloadProjection();
    const meta = await this.data.viewMetadata(this.emb, red); // trust columns are the projection's own
    if (this.red !== red) return;
    this.meta = meta;
    this.colouring.onMetadata(false);
  }

  async _reloadProjection() {
    this.steps.pause();
    this._computeTimeline();
    this.steps.pos = Math.max(0, this.timeline.findIndex((t) => t.emb.id === this.emb.id));
    if (this.red.n_components < 3) this.dims = 2;
    const coords = await this.data.coords(this.red);
    this.scatter.setDims(this.dims);
    this.scatter.setPositions(this._positions(coords), this._positions(coords), 0);
    this._allBounds = null;
    this.scatter.resetView();
    if (this.fitAll) await this.setFitAll(true);
    this.applyFit(coords, coords, 0);
    fillMethods(this);
    buildSteps(this);
    updateHeader(this);
    this.steps.updateTrails();
    this.shownRed = this.red.id;
    this.url.sync();
  }

  async setDims(d) {
    this.dims = this.red.n_components >= 3 ? d : 2;
    const coords = await this.data.coords(this.red);
    this.scatter.setDims(this.dims, true);
    const pos = this._positions(coords);
    this.scatter.setPositions(pos, pos, 0);
    this.applyFit(coords, coords, 0);
    if (this.fitAll) await this.setFitAll(true);
    await this.steps.setPos(this.steps.pos);
    this.applyPointSizes();
    this.steps.updateTrails();
    this.url.sync();
  }

  // -- point and thumbnail sizes ---------------------------------------------------------
  applyPointSizes() {
    const scatter = this.scatter;
    if (!scatter.hasCamera) return;
    const z = Math.min(4, Math.sqrt(Math.max(1, scatter.zoomLevel())));
    const base = this.el.size ? parseFloat(this.el.size.value) : defaultPointSize(this.n);
    scatter.setPointSize(base * z);
    // thumbnails shrink with the number of points (fewer overlapping, far cheaper to draw)
    // and grow linearly with zoom, as the points spread apart
    const spriteBase = Math.max(8, Math.min(28, 28 * Math.sqrt(3000 / Math.max(1, this.n))));
    this.spritePx = Math.min(128, spriteBase * Math.max(1, scatter.zoomLevel()));
    scatter.setSpriteSize(this.spritePx);
  }

  _spritesWanted() {
    const mode = this.el.thumbs ? this.el.thumbs.value : 'auto';
    return mode === 'on' || (mode === 'auto' && (this.n <= 5000 || (this.scatter.hasCamera && this.scatter.zoomLevel() >= 4)));
  }

  applySpriteMode() {
    if (!this.el.thumbs || !this.sprite) return;
    const on = this._spritesWanted();
    if (on !== this.scatter.spriteOn) this.scatter.setSpriteMode(on);
  }
}

/** Steps in step order; embeddings logged without a step (Comet's titles) in logging order, after them. */
function timelineOrder(a, b) {
  const sa = a.emb.step, sb = b.emb.step;
  const na = sa === null || sa === undefined, nb = sb === null || sb === undefined;
  if (na !== nb) return na ? 1 : -1;
  if (!na && sa !== sb) return sa - sb;
  return (a.emb.seq ?? 0) - (b.emb.seq ?? 0);
}

function mixBounds(a, b, t) {
  if (!t) return a;
  const mix = (p, q) => p.map((v, k) => v + (q[k] - v) * t);
  return { lo: mix(a.lo, b.lo), hi: mix(a.hi, b.hi) };
}

/** A focused element that takes typed text (where letters must not act as shortcuts). */
function takesText(el) {
  if (!el || !el.tagName) return false;
  if (el.isContentEditable || el.tagName === 'TEXTAREA') return true;
  return el.tagName === 'INPUT' && /^(text|search|number|email|url|password|tel|)$/.test(el.type || '');
}

function chooseReduction(emb, redId, method) {
  const reds = emb.reductions || [];
  return reds.find((r) => r.id === redId) || reds.find((r) => r.method === method) ||
    reds.find((r) => r.timeline) || reds[0] || null;
}
