// The embedding view: stored projections drawn by Scatter, colour-by, hover card, step slider
// with interpolation and trails, search/filter, neighbours, lasso + export, top-N by score,
// trustworthiness badge, and the URL as the source of the view's state.
//
// URL (query string of /view): run, emb, red (reduction id), method, dims (2|3), color,
// step, sel (selected rows as ranges "0-4.9.12-20"), q, fcol, fmin, fmax, nb (neighbour
// query row), k, metric, thumbs (auto|on|off), top (score column), topn, order.
import { api } from './api.js';
import { h, clear, fill, fmtValue, download } from './dom.js';
import { colorize, cellText, isNumeric, rgbCss } from './colors.js';
import { Scatter, FLAG_SELECTED, FLAG_NEIGHBOR, FLAG_QUERY, FLAG_DIMMED } from './scatter.js';

const MAX_TABLE_ROWS = 200;
const MAX_TRAIL_POINTS = 5000;
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

function csvCell(v) {
  let s = typeof v === 'number' ? String(v) : cellText(v); // numbers at full precision
  // a cell that a spreadsheet would run as a formula is prefixed with an apostrophe
  if (typeof v === 'string' && /^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** Rows of the k largest (or smallest) numeric values, ties by row; one pass, no full sort. */
export function topK(values, k, desc = true) {
  const better = (a, b) => (desc ? values[a] > values[b] : values[a] < values[b]) || (values[a] === values[b] && a < b);
  const top = []; // sorted best first
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (typeof v !== 'number' || Number.isNaN(v)) continue;
    if (top.length === k && !better(i, top[k - 1])) continue;
    let lo = 0, hi = top.length;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (better(top[mid], i)) lo = mid + 1; else hi = mid; }
    top.splice(lo, 0, i);
    if (top.length > k) top.pop();
  }
  return top;
}

function defaultPointSize(n) {
  if (n <= 2000) return 7;
  if (n <= 20000) return 4.5;
  if (n <= 200000) return 3;
  return 2;
}

export class EmbeddingView {
  constructor(root, run, params, { onUrl, embeddings } = {}) {
    this.embeddingsP = embeddings || null;
    this.root = root;
    this.run = run;
    this.runId = run.run_id;
    this.params = params;
    this.onUrl = onUrl || (() => {});
    this.coordCache = new Map(); // reduction id → Promise<Float32Array (n*c)>
    this.metaCache = new Map(); // embedding id → Promise<metadata>
    this.selected = null;
    this.selList = [];
    this.filterMask = null;
    this.neighbors = null;
    this.stepPos = 0;
    this.playing = false;
    this.disposed = false;
    this.debug = { state: 'loading', firstFrameMs: null, readyMs: null };
    this._exposeForTests();
  }

  dispose() {
    this.disposed = true;
    this.playing = false;
    if (this.scatter) { this.scatter._ro.disconnect(); this.scatter.renderer.dispose(); if (this.scatter.controls) this.scatter.controls.dispose(); }
    document.removeEventListener('keydown', this._onKey);
  }

  // -- loading ---------------------------------------------------------------------------
  async start() {
    try {
      await this._start();
    } catch (err) {
      this.debug.state = 'error';
      this.debug.error = String(err && err.message || err);
      this.status(this.debug.error, true);
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
    this._buildLayout();
    const red = this._chooseReduction(emb, p.get('red'), p.get('method'));
    if (!red) {
      this.emb = emb;
      this._updateHeader();
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
    this.stepPos = Math.max(0, this.timeline.findIndex((t) => t.emb.id === this.emb.id));
    this.n = this.emb.n;
    const nc = this.red.n_components;
    this.dims = nc >= 3 && p.get('dims') !== '2' ? 3 : 2;
    const marks = this.debug.marks = { embeddings: performance.now() };
    this.status(`Loading ${this.n.toLocaleString()} points…`);
    const coordsP = this._coords(this.red);
    // metadata is requested once the coordinates have arrived (a large JSON answer would
    // otherwise hold up the binary coordinates that the first frame needs), and for large
    // sets once the first frame is drawn: producing and parsing tens of megabytes of JSON
    // competes for the same CPU as a software-rendered first frame
    let firstFrameDone;
    const firstFrameP = new Promise((resolve) => { firstFrameDone = resolve; });
    const metaP = (this.n > 200000 ? firstFrameP : coordsP).then(() => this._metadata(this.emb));
    metaP.catch(() => {});
    const spriteP = this._loadSprite(this.emb, coordsP);
    this._updateHeader();
    this._buildControls();
    const coords = await coordsP;
    marks.coords = performance.now();
    if (this.disposed) return;
    this.scatter.setData(this._display(coords), this.n, this.dims);
    this._applyPointSizes();
    marks.setData = performance.now();
    // when thumbnails will show from the start, the first frame already draws them
    if (this.emb.sprite && this._spritesWanted()) await spriteP;
    this.debug.firstFrameMs = await this.scatter.nextFrameDone();
    firstFrameDone();
    this.shownRed = this.red.id;
    this.status('');
    this.meta = await metaP;
    marks.metadata = performance.now();
    if (this.disposed) return;
    this._onMetadata(true);
    this._restoreFromUrl();
    marks.coloured = performance.now();
    this.debug.readyMs = await this.scatter.nextFrameDone();
    this.debug.state = 'ready';
    await spriteP;
    if (this.timeline.length > 1) setTimeout(() => this._prefetchTimeline(), 50);
  }

  _chooseReduction(emb, redId, method) {
    const reds = emb.reductions || [];
    return reds.find((r) => r.id === redId) || reds.find((r) => r.method === method) ||
      reds.find((r) => r.timeline) || reds[0] || null;
  }

  _computeTimeline() {
    const r = this.red;
    if (r.timeline) {
      const entries = [];
      for (const e of this.embeddings) {
        const match = e.reductions.find((x) => x.timeline === r.timeline);
        if (match && e.n === this.emb.n) entries.push({ emb: e, red: match });
      }
      entries.sort((a, b) => (a.emb.step ?? -1) - (b.emb.step ?? -1));
      this.timeline = entries;
    } else {
      this.timeline = [{ emb: this.emb, red: r }];
    }
  }

  _coords(red) {
    if (!this.coordCache.has(red.id)) {
      const p = api.coords(this.runId, red.id).then(({ data, shape }) => ({ data, c: shape[1], n: shape[0] }));
      p.catch(() => this.coordCache.delete(red.id));
      this.coordCache.set(red.id, p);
    }
    return this.coordCache.get(red.id);
  }

  /** (n, c) coordinates → the (n, 3) float32 positions drawn for the current dims (cached). */
  _display(coords) {
    const key = `pos${this.dims}`;
    if (coords[key]) return coords[key];
    const { data, c, n } = coords;
    let out;
    if (c === 3 && this.dims === 3) out = data;
    else {
      out = new Float32Array(n * 3);
      const take = Math.min(c, this.dims);
      for (let i = 0; i < n; i++) for (let k = 0; k < take; k++) out[i * 3 + k] = data[i * c + k];
    }
    coords[key] = out;
    return out;
  }

  _metadata(emb) {
    if (!this.metaCache.has(emb.id)) {
      const p = api.metadata(this.runId, emb.id);
      p.catch(() => this.metaCache.delete(emb.id));
      this.metaCache.set(emb.id, p);
    }
    return this.metaCache.get(emb.id);
  }

  async _prefetchTimeline() {
    for (const t of this.timeline) { if (this.disposed) return; await this._coords(t.red).catch(() => {}); }
  }

  async _loadSprite(emb, dataReady = null) {
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
      this._applySpriteMode();
      this.debug.spriteLoaded = true;
      if (!this.debug.spriteFrameMs) this.debug.spriteFrameMs = await this.scatter.nextFrameDone();
    } catch (err) {
      this.status(`Sprite not loaded: ${err.message}`, true);
    }
  }

  // -- layout ----------------------------------------------------------------------------
  _buildLayout() {
    const el = this.el = {};
    el.panel = h('aside', { class: 'panel', id: 'panel' });
    el.stage = h('div', { class: 'stage', id: 'stage' });
    el.plot = h('div', { class: 'plot', id: 'plot', tabindex: '0' });
    el.card = h('div', { class: 'hover-card hidden', id: 'hover-card' });
    el.badge = h('div', { class: 'badge hidden', id: 'trust-badge' });
    el.status = h('div', { class: 'status-line', id: 'status', role: 'status' });
    el.legend = h('div', { class: 'legend', id: 'legend' });
    el.stage.append(el.plot, el.card, el.badge, el.legend, el.status);
    this.root.append(h('div', { class: 'view' }, el.panel, el.stage));
    this.scatter = new Scatter(el.plot, {
      onHover: (i, xy) => this._hover(i, xy),
      onClick: (i) => this._click(i),
      onLasso: (poly, add) => this._lasso(poly, add),
      onCameraChange: () => { this._applyPointSizes(); this._applySpriteMode(); },
    });
    this._onKey = (ev) => {
      if (ev.target && /INPUT|SELECT|TEXTAREA|BUTTON/.test(ev.target.tagName)) return;
      if (ev.key === 'l') this._setLasso(!this.scatter.lassoMode);
      else if (ev.key === 'Escape') { this._setSelection([]); this._setNeighbors(null); }
      else if (ev.key === ' ' && this.timeline && this.timeline.length > 1) { ev.preventDefault(); this._togglePlay(); }
    };
    document.addEventListener('keydown', this._onKey);
  }

  status(text, isError = false) {
    if (!this.el) return;
    this.el.status.textContent = text;
    this.el.status.classList.toggle('error', !!isError);
    this.el.status.classList.toggle('hidden', !text);
  }

  _updateHeader() {
    const e = this.emb;
    const crumb = document.getElementById('crumb-emb');
    const label = `${e.group ? `${e.group} / ` : ''}${e.title}${e.step !== null && e.step !== undefined ? ` @ step ${e.step}` : ''}`;
    if (crumb) crumb.textContent = label;
    document.title = `${label} · tracker`;
    const q = this.red && this.red.quality || {};
    const b = this.el.badge;
    clear(b);
    if (this.red && Number.isFinite(q.trustworthiness)) {
      const t = q.trustworthiness;
      b.className = `badge ${t >= 0.9 ? 'good' : t >= 0.8 ? 'fair' : 'poor'}`;
      b.append(h('span', { text: `${this.red.method} ${this.red.n_components}D` }), ' · ',
        h('strong', { text: `trustworthiness ${t.toFixed(3)}` }));
      if (Number.isFinite(q.knn_label_agreement)) b.append(' · ', h('span', { text: `kNN label agreement ${q.knn_label_agreement.toFixed(3)}` }));
      b.title = 'Trustworthiness (0–1): how well the neighbourhoods seen in this projection exist in the original vectors. ' +
        'Below 0.8, clusters on screen may be artefacts of the projection.';
    } else if (this.red) {
      b.className = 'badge unknown';
      b.append(h('span', { text: `${this.red.method} ${this.red.n_components}D · trustworthiness not stored` }));
    }
  }

  _section(title, id, ...children) {
    return h('section', { class: 'ctl', id }, h('h3', { text: title }), ...children);
  }

  _buildControls() {
    const el = this.el;
    const e = this.emb;
    // projection
    el.embSel = h('select', { id: 'emb-select', onchange: () => this._switchEmbedding(el.embSel.value) },
      this.embeddings.map((x) => h('option', { value: x.id, text: `${x.group ? x.group + ' / ' : ''}${x.title}${x.step != null ? ' @ ' + x.step : ''} (${x.n})` })));
    el.embSel.value = e.id;
    el.methodSel = h('select', { id: 'method-select', onchange: () => this._switchReduction(el.methodSel.value) });
    el.dims = h('select', { id: 'dims-select', onchange: () => this._setDims(parseInt(el.dims.value, 10)) },
      h('option', { value: '2', text: '2D' }), h('option', { value: '3', text: '3D' }));
    el.reset = h('button', { type: 'button', text: 'Reset view', onclick: () => this.scatter.resetView() });
    el.panel.append(this._section('Projection', 'sec-projection',
      h('label', {}, 'Embedding ', el.embSel), h('label', {}, 'Method ', el.methodSel),
      h('div', { class: 'row' }, el.dims, el.reset)));
    this._fillMethods();
    // steps
    el.stepBox = h('div', { id: 'steps' });
    el.panel.append(this._section('Steps', 'sec-steps', el.stepBox));
    this._buildSteps();
    // colour and points
    el.colorSel = h('select', { id: 'color-select', onchange: () => { this._setColor(el.colorSel.value); this._syncUrl(); } });
    el.size = h('input', { type: 'range', id: 'point-size', min: '1', max: '16', step: '0.5', value: String(defaultPointSize(this.n)), oninput: () => this._applyPointSizes() });
    el.thumbs = h('select', { id: 'thumbs', disabled: true, onchange: () => { this._applySpriteMode(); this._syncUrl(); } },
      h('option', { value: 'auto', text: 'thumbnails: auto' }), h('option', { value: 'on', text: 'thumbnails: on' }), h('option', { value: 'off', text: 'thumbnails: off' }));
    el.thumbs.value = ['on', 'off'].includes(this.params.get('thumbs')) ? this.params.get('thumbs') : 'auto';
    el.panel.append(this._section('Colour and points', 'sec-color', h('label', {}, 'Colour by ', el.colorSel),
      h('label', {}, 'Point size ', el.size), el.thumbs));
    // filter
    el.fcol = h('select', { id: 'filter-column', onchange: () => { this._updateRangeInputs(); this._applyFilter(); } });
    el.q = h('input', { type: 'search', id: 'search', placeholder: 'substring…', oninput: () => this._debounce('filter', () => this._applyFilter(), 150) });
    el.fmin = h('input', { type: 'number', id: 'filter-min', placeholder: 'min', step: 'any', oninput: () => this._debounce('filter', () => this._applyFilter(), 150) });
    el.fmax = h('input', { type: 'number', id: 'filter-max', placeholder: 'max', step: 'any', oninput: () => this._debounce('filter', () => this._applyFilter(), 150) });
    el.range = h('div', { class: 'row hidden', id: 'filter-range' }, el.fmin, h('span', { text: '–' }), el.fmax);
    el.fcount = h('div', { class: 'muted', id: 'filter-count' });
    el.panel.append(this._section('Search and filter', 'sec-filter', h('label', {}, 'Column ', el.fcol), el.q, el.range,
      h('div', { class: 'row' }, el.fcount,
        h('button', { type: 'button', id: 'select-matches', text: 'Select matches', onclick: () => this._selectMatches() }),
        h('button', { type: 'button', text: 'Clear', onclick: () => { el.q.value = ''; el.fmin.value = ''; el.fmax.value = ''; this._applyFilter(); } }))));
    // neighbours
    el.metric = h('select', { id: 'nb-metric', onchange: () => this.neighbors && this._click(this.neighbors.index) },
      h('option', { value: 'cosine', text: 'cosine' }), h('option', { value: 'euclidean', text: 'euclidean' }));
    el.metric.value = this.params.get('metric') === 'euclidean' ? 'euclidean' : 'cosine';
    el.k = h('input', { type: 'number', id: 'nb-k', min: '1', max: '200', value: this.params.get('k') || '10', onchange: () => this.neighbors && this._click(this.neighbors.index) });
    el.nbList = h('div', { id: 'neighbors' }, h('p', { class: 'muted', text: 'Click a point to find its nearest neighbours in the original vector space.' }));
    el.panel.append(this._section('Neighbours', 'sec-neighbors', h('div', { class: 'row' }, el.metric, h('label', {}, 'k ', el.k)), el.nbList));
    // top N by score
    el.topCol = h('select', { id: 'top-column', onchange: () => { this._renderTop(); this._syncUrl(); } });
    el.topN = h('input', { type: 'number', id: 'top-n', min: '1', max: '1000', value: this.params.get('topn') || '10', onchange: () => { this._renderTop(); this._syncUrl(); } });
    el.topOrder = h('select', { id: 'top-order', onchange: () => { this._renderTop(); this._syncUrl(); } },
      h('option', { value: 'desc', text: 'highest' }), h('option', { value: 'asc', text: 'lowest' }));
    el.topOrder.value = this.params.get('order') === 'asc' ? 'asc' : 'desc';
    el.topList = h('ol', { id: 'top-list', class: 'rows' });
    el.topBox = this._section('Top N by score', 'sec-top', h('div', { class: 'row' }, el.topCol),
      h('div', { class: 'row' }, el.topOrder, el.topN, h('button', { type: 'button', id: 'top-select', text: 'Select these', onclick: () => this._setSelection(this.topIndices || []) })), el.topList);
    el.panel.append(el.topBox);
    // selection
    el.lasso = h('button', { type: 'button', id: 'lasso', text: 'Lasso (L)', onclick: () => this._setLasso(!this.scatter.lassoMode) });
    el.selCount = h('span', { id: 'selection-count', text: '0 selected' });
    el.trails = h('input', { type: 'checkbox', id: 'trails', onchange: () => this._updateTrails() });
    el.selTable = h('div', { id: 'selection-table', class: 'table-box' });
    el.panel.append(this._section('Selection', 'sec-selection',
      h('div', { class: 'row' }, el.lasso, el.selCount),
      h('div', { class: 'row' },
        h('button', { type: 'button', id: 'export-csv', text: 'CSV', onclick: () => this._export('csv') }),
        h('button', { type: 'button', id: 'export-json', text: 'JSON', onclick: () => this._export('json') }),
        h('button', { type: 'button', id: 'clear-selection', text: 'Clear', onclick: () => this._setSelection([]) })),
      this.timeline.length > 1 ? h('label', {}, el.trails, ' trails across steps') : null,
      el.selTable));
  }

  _fillMethods() {
    const sel = this.el.methodSel;
    clear(sel);
    for (const r of this.emb.reductions) {
      const q = r.quality && Number.isFinite(r.quality.trustworthiness) ? ` (T ${r.quality.trustworthiness.toFixed(2)})` : '';
      sel.append(h('option', { value: r.id, text: `${r.method} ${r.n_components}D${r.timeline ? ' · shared over steps' : ''}${q}` }));
    }
    sel.value = this.red.id;
    this.el.dims.value = String(this.dims);
    this.el.dims.disabled = this.red.n_components < 3;
  }

  _buildSteps() {
    const box = clear(this.el.stepBox);
    if (this.timeline.length < 2) {
      box.append(h('p', { class: 'muted', text: this.red.timeline ? 'Only one step shares this reducer.' :
        'This projection was fitted on its own step; steps of a group animate when they share one reducer (reduce_group).' }));
      return;
    }
    const last = this.timeline.length - 1;
    this.el.slider = h('input', { type: 'range', id: 'step-slider', min: '0', max: String(last), step: '0.01', value: String(this.stepPos),
      oninput: () => { this._pause(); this._setStepPos(parseFloat(this.el.slider.value)); },
      onchange: () => this._settleStep() });
    this.el.play = h('button', { type: 'button', id: 'play', text: '▶ Play', onclick: () => this._togglePlay() });
    this.el.stepLabel = h('span', { id: 'step-label' });
    box.append(h('div', { class: 'row' }, this.el.play, this.el.stepLabel), this.el.slider,
      h('div', { class: 'row muted' }, h('span', { text: `step ${this.timeline[0].emb.step}` }), h('span', { text: `step ${this.timeline[last].emb.step}` })));
    this._updateStepLabel();
  }

  _updateStepLabel() {
    if (!this.el.stepLabel) return;
    const i = Math.floor(this.stepPos + 1e-6), t = this.stepPos - i;
    const a = this.timeline[i].emb.step;
    this.el.stepLabel.textContent = t > 0.005 && i + 1 < this.timeline.length ? `step ${a} → ${this.timeline[i + 1].emb.step}` : `step ${a}`;
  }

  // -- steps -----------------------------------------------------------------------------
  async _setStepPos(pos) {
    const last = this.timeline.length - 1;
    pos = Math.max(0, Math.min(last, pos));
    this.stepPos = pos;
    const i = Math.min(Math.floor(pos + 1e-6), last), j = Math.min(i + 1, last), t = j > i ? pos - i : 0;
    const token = this._stepToken = (this._stepToken || 0) + 1;
    const [a, b] = await Promise.all([this._coords(this.timeline[i].red), this._coords(this.timeline[j].red)]);
    if (token !== this._stepToken || this.disposed) return;
    this.scatter.setPositions(this._display(a), this._display(b), t < 1e-6 ? 0 : t);
    this._updateStepLabel();
    if (this.el.slider && document.activeElement !== this.el.slider) this.el.slider.value = String(pos);
    this.debug.stepPos = pos;
  }

  /** Snap to the nearest step: it becomes the current embedding (metadata, neighbours, URL). */
  async _settleStep() {
    const k = Math.round(this.stepPos);
    await this._setStepPos(k);
    if (this.el.slider) this.el.slider.value = String(k);
    const entry = this.timeline[k];
    if (entry.emb.id !== this.emb.id) {
      this.emb = entry.emb;
      this.red = entry.red;
      this.el.embSel.value = this.emb.id;
      this._fillMethods();
      this._updateHeader();
      this.shownRed = this.red.id;
      const meta = await this._metadata(this.emb);
      if (this.emb !== entry.emb) return;
      this.meta = meta;
      this._onMetadata(false);
      if (this.neighbors) this._click(this.neighbors.index);
      this._loadSprite(this.emb);
    }
    this._updateTrails();
    this._syncUrl();
  }

  _togglePlay() { if (this.playing) this._pause(); else this._play(); }

  _pause() {
    if (!this.playing) return;
    this.playing = false;
    this.el.play.textContent = '▶ Play';
    this._settleStep();
  }

  async _play() {
    const last = this.timeline.length - 1;
    if (this.stepPos >= last) await this._setStepPos(0);
    await this._prefetchTimeline();
    this.playing = true;
    this.el.play.textContent = '❚❚ Pause';
    let prev = performance.now();
    const tick = async (now) => {
      if (!this.playing || this.disposed) return;
      const dt = (now - prev) / 1000;
      prev = now;
      const pos = Math.min(last, this.stepPos + dt * 0.8); // 0.8 steps per second
      await this._setStepPos(pos);
      if (pos >= last) { this._pause(); return; }
      requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  }

  async _updateTrails() {
    const on = this.el.trails && this.el.trails.checked && this.timeline.length > 1 && this.selList.length;
    if (!on) { this.scatter.setTrails(null); return; }
    const ids = this.selList.slice(0, MAX_TRAIL_POINTS);
    const all = await Promise.all(this.timeline.map((t) => this._coords(t.red)));
    const pos = all.map((c) => this._display(c));
    const seg = new Float32Array(ids.length * (pos.length - 1) * 6);
    let o = 0;
    for (const i of ids) {
      for (let s = 0; s + 1 < pos.length; s++) {
        for (let k = 0; k < 3; k++) seg[o + k] = pos[s][i * 3 + k];
        for (let k = 0; k < 3; k++) seg[o + 3 + k] = pos[s + 1][i * 3 + k];
        o += 6;
      }
    }
    this.scatter.setTrails(seg);
    this.debug.trailSegments = seg.length / 6;
  }

  // -- switching embedding / reduction / dims ---------------------------------------------
  async _switchEmbedding(id) {
    const emb = this.embeddings.find((e) => e.id === id);
    if (!emb) return;
    const red = this._chooseReduction(emb, null, this.red && this.red.method);
    const params = new URLSearchParams({ run: this.runId, emb: emb.id });
    if (red) params.set('red', red.id);
    if (this.colorBy) params.set('color', this.colorBy);
    // a different embedding may have a different size: rebuild the view from the URL
    if (emb.n !== this.n || !red) { location.assign(`/view?${params}`); return; }
    this.emb = emb;
    this.red = red;
    await this._reloadProjection();
    this.meta = await this._metadata(emb);
    this._onMetadata(false);
    this._loadSprite(emb);
  }

  async _switchReduction(redId) {
    const red = this.emb.reductions.find((r) => r.id === redId);
    if (!red) return;
    this.red = red;
    await this._reloadProjection();
  }

  async _reloadProjection() {
    this._pause();
    this._computeTimeline();
    this.stepPos = Math.max(0, this.timeline.findIndex((t) => t.emb.id === this.emb.id));
    if (this.red.n_components < 3) this.dims = 2;
    const coords = await this._coords(this.red);
    this.scatter.setDims(this.dims);
    this.scatter.setPositions(this._display(coords), this._display(coords), 0);
    this.scatter._fitTransform(this._display(coords), this.n);
    this.scatter.resetView();
    this._fillMethods();
    this._buildSteps();
    this._updateHeader();
    this._updateTrails();
    this.shownRed = this.red.id;
    this._syncUrl();
  }

  async _setDims(d) {
    this.dims = this.red.n_components >= 3 ? d : 2;
    const coords = await this._coords(this.red);
    this.scatter.setDims(this.dims, true);
    const pos = this._display(coords);
    this.scatter.setPositions(pos, pos, 0);
    this.scatter._fitTransform(pos, this.n);
    await this._setStepPos(this.stepPos);
    this._applyPointSizes();
    this._updateTrails();
    this._syncUrl();
  }

  _applyPointSizes() {
    if (!this.scatter.camera) return;
    const z = Math.min(4, Math.sqrt(Math.max(1, this.scatter.zoomLevel())));
    const base = this.el.size ? parseFloat(this.el.size.value) : defaultPointSize(this.n);
    this.scatter.setPointSize(base * z);
    // thumbnails shrink with the number of points (fewer overlapping, far cheaper to draw)
    // and grow linearly with zoom, as the points spread apart
    const spriteBase = Math.max(8, Math.min(28, 28 * Math.sqrt(3000 / Math.max(1, this.n))));
    this.scatter.setSpriteSize(Math.min(128, spriteBase * Math.max(1, this.scatter.zoomLevel())));
  }

  _spritesWanted() {
    const mode = this.el.thumbs ? this.el.thumbs.value : 'auto';
    return mode === 'on' || (mode === 'auto' && (this.n <= 5000 || (!!this.scatter.camera && this.scatter.zoomLevel() >= 4)));
  }

  _applySpriteMode() {
    if (!this.el.thumbs || !this.sprite) return;
    const on = this._spritesWanted();
    if (on !== this.scatter.spriteOn) this.scatter.setSpriteMode(on);
    this.debug.spriteOn = this.scatter.spriteOn;
  }

  // -- metadata, colour, filter ----------------------------------------------------------
  _onMetadata(first) {
    const cols = this.meta.columns;
    this.columns = cols;
    this.labelCol = cols.find((c) => c.name.toLowerCase() === 'label') || cols.find((c) => c.type === 'str') || cols[0] || null;
    const el = this.el;
    const prevColor = first ? this.params.get('color') : this.colorBy;
    fill(el.colorSel, h('option', { value: '', text: '(none)' }), cols.map((c) => h('option', { value: c.name, text: `${c.name} (${c.type})` })));
    const colorName = cols.some((c) => c.name === prevColor) ? prevColor : (prevColor === '' ? '' : this.labelCol ? this.labelCol.name : '');
    el.colorSel.value = colorName;
    this._setColor(colorName);
    const prevF = first ? this.params.get('fcol') || '' : el.fcol.value;
    fill(el.fcol, h('option', { value: '', text: 'any column (text)' }), cols.map((c) => h('option', { value: c.name, text: c.name })));
    el.fcol.value = cols.some((c) => c.name === prevF) ? prevF : '';
    this._updateRangeInputs();
    const numeric = cols.filter((c) => c.type === 'int' || c.type === 'float');
    const prevTop = first ? this.params.get('top') : el.topCol.value;
    fill(el.topCol, numeric.map((c) => h('option', { value: c.name, text: c.name })));
    el.topBox.classList.toggle('hidden', !numeric.length);
    if (numeric.length) el.topCol.value = numeric.some((c) => c.name === prevTop) ? prevTop : this._defaultScoreColumn(numeric).name;
    this._renderTop();
    if (!first) { this._applyFilter(); this._renderSelection(); }
  }

  _defaultScoreColumn(numeric) {
    const score = numeric.find((c) => /score|outlier|disagree|split|lof/i.test(c.name));
    return score || numeric[0];
  }

  _column(name) { return this.columns && this.columns.find((c) => c.name === name) || null; }

  _setColor(name) {
    this.colorBy = name;
    const col = this._column(name);
    const colors = this.scatter.colors;
    const legend = clear(this.el.legend);
    if (!col) {
      for (let i = 0; i < this.n; i++) { colors[i * 4] = 70; colors[i * 4 + 1] = 110; colors[i * 4 + 2] = 190; }
      this.legend = null;
      legend.classList.add('hidden');
    } else {
      this.legend = colorize(col, colors);
      legend.classList.remove('hidden');
      legend.append(h('div', { class: 'legend-title', text: col.name }));
      if (this.legend.kind === 'numeric') {
        legend.append(h('div', { class: 'ramp' }), h('div', { class: 'row ramp-labels' },
          h('span', { text: fmtValue(this.legend.min) }), h('span', { text: fmtValue(this.legend.max) })));
      } else {
        for (const item of this.legend.items) {
          const sw = h('span', { class: 'swatch' });
          sw.style.background = rgbCss(item.color);
          legend.append(h('button', { type: 'button', class: 'legend-item', title: 'select these points',
            onclick: () => item.value !== null && this._selectCategory(col, item.value) },
          sw, h('span', { class: 'legend-label', text: item.value === null ? item.label : item.value === '' ? '(empty)' : item.value }),
          h('span', { class: 'muted', text: ` ${item.count}` })));
        }
      }
    }
    this.scatter.colorsChanged();
    this.debug.colorBy = name;
  }

  _selectCategory(col, value) {
    const ids = [];
    for (let i = 0; i < this.n; i++) if (cellText(col.values[i]) === value) ids.push(i);
    this._setSelection(ids);
  }

  _updateRangeInputs() {
    const col = this._column(this.el.fcol.value);
    this.el.range.classList.toggle('hidden', !(col && (col.type === 'int' || col.type === 'float')));
  }

  _applyFilter() {
    const el = this.el;
    const needle = el.q.value.trim().toLowerCase();
    const col = this._column(el.fcol.value);
    const numeric = col && (col.type === 'int' || col.type === 'float');
    const lo = numeric && el.fmin.value !== '' ? parseFloat(el.fmin.value) : -Infinity;
    const hi = numeric && el.fmax.value !== '' ? parseFloat(el.fmax.value) : Infinity;
    const ranged = numeric && (lo > -Infinity || hi < Infinity);
    if (!needle && !ranged) {
      this.filterMask = null;
      el.fcount.textContent = '';
    } else {
      const mask = new Uint8Array(this.n);
      const cols = col ? [col] : this.columns;
      let count = 0;
      for (let i = 0; i < this.n; i++) {
        let ok = true;
        if (ranged) { const v = col.values[i]; ok = typeof v === 'number' && v >= lo && v <= hi; }
        if (ok && needle) {
          ok = false;
          for (const c of cols) if (cellText(c.values[i]).toLowerCase().includes(needle)) { ok = true; break; }
        }
        if (ok) { mask[i] = 1; count++; }
      }
      this.filterMask = mask;
      el.fcount.textContent = `${count.toLocaleString()} of ${this.n.toLocaleString()} match`;
      this.debug.filterCount = count;
    }
    if (!this.filterMask) this.debug.filterCount = this.n;
    this._updateFlags();
    this._syncUrl();
  }

  _selectMatches() {
    if (!this.filterMask) return;
    const ids = [];
    for (let i = 0; i < this.n; i++) if (this.filterMask[i]) ids.push(i);
    this._setSelection(ids);
  }

  _renderTop() {
    const el = this.el;
    const col = this._column(el.topCol.value);
    clear(el.topList);
    this.topIndices = [];
    if (!col) return;
    const k = Math.max(1, Math.min(1000, parseInt(el.topN.value, 10) || 10));
    const desc = el.topOrder.value !== 'asc';
    this.topIndices = topK(col.values, k, desc);
    for (const i of this.topIndices) {
      el.topList.append(h('li', {}, h('button', { type: 'button', class: 'row-link', onclick: () => this._focusPoint(i) },
        h('span', { class: 'mono', text: `#${i}` }), ' ', h('span', { text: this._label(i) }),
        h('span', { class: 'muted', text: ` ${fmtValue(col.values[i])}` }))));
    }
    this.debug.topIndices = this.topIndices;
  }

  _label(i) { return this.labelCol ? cellText(this.labelCol.values[i]) : ''; }

  _focusPoint(i) { this._click(i); }

  // -- hover, neighbours -----------------------------------------------------------------
  _hover(i, xy) {
    const card = this.el.card;
    this.debug.hovered = i;
    if (i < 0 || !xy) { card.classList.add('hidden'); return; }
    clear(card);
    if (this.sprite) {
      const { bitmap, tw, th, cols } = this.sprite;
      const scale = Math.max(1, Math.floor(128 / Math.max(tw, th)));
      const cv = h('canvas', { class: 'thumb', width: tw * scale, height: th * scale });
      const ctx = cv.getContext('2d');
      ctx.imageSmoothingEnabled = scale === 1;
      ctx.drawImage(bitmap, (i % cols) * tw, Math.floor(i / cols) * th, tw, th, 0, 0, tw * scale, th * scale);
      card.append(cv);
    }
    const rows = [h('tr', {}, h('th', { text: 'row' }), h('td', { class: 'mono', text: String(i) }))];
    for (const c of (this.columns || []).slice(0, 16)) rows.push(h('tr', {}, h('th', { text: c.name }), h('td', { text: cellText(c.values[i]) })));
    card.append(h('table', { class: 'kv' }, h('tbody', {}, rows)));
    card.classList.remove('hidden');
    const plot = this.el.plot.getBoundingClientRect();
    const w = card.offsetWidth, hgt = card.offsetHeight;
    const x = xy[0] + 16 + w > plot.width ? xy[0] - 16 - w : xy[0] + 16;
    const y = Math.min(Math.max(4, xy[1] - hgt / 2), plot.height - hgt - 4);
    card.style.left = `${Math.max(4, x)}px`;
    card.style.top = `${Math.max(4, y)}px`;
  }

  async _click(i) {
    if (i < 0 || i === undefined) { this._setNeighbors(null); return; }
    const k = Math.max(1, Math.min(200, parseInt(this.el.k.value, 10) || 10));
    const metric = this.el.metric.value;
    const emb = this.emb;
    clear(this.el.nbList).append(h('p', { class: 'muted', text: `Searching neighbours of #${i}…` }));
    try {
      const res = await api.neighbors(this.runId, emb.id, i, k, metric);
      if (emb !== this.emb) return;
      this._setNeighbors({ index: i, ids: res.neighbors, distances: res.distances, metric: res.metric || metric, k });
    } catch (err) {
      clear(this.el.nbList).append(h('p', { class: 'error', text: `Neighbours failed: ${err.message}` }));
    }
  }

  _setNeighbors(nb) {
    this.neighbors = nb;
    this.debug.neighbors = nb;
    const list = clear(this.el.nbList);
    if (nb) {
      list.append(h('p', {}, 'Neighbours of ', h('span', { class: 'mono', text: `#${nb.index}` }), ' ', h('strong', { text: this._label(nb.index) }),
        h('span', { class: 'muted', text: ` (${nb.metric})` })));
      list.append(h('ol', { class: 'rows' }, nb.ids.map((j, r) => h('li', {},
        h('button', { type: 'button', class: 'row-link', onclick: () => this._click(j) },
          h('span', { class: 'mono', text: `#${j}` }), ' ', h('span', { text: this._label(j) }),
          h('span', { class: 'muted', text: ` ${Number(nb.distances[r]).toPrecision(4)}` }))))));
      list.append(h('button', { type: 'button', text: 'Select these', onclick: () => this._setSelection([nb.index, ...nb.ids]) }));
    } else {
      list.append(h('p', { class: 'muted', text: 'Click a point to find its nearest neighbours in the original vector space.' }));
    }
    this._updateFlags();
    this._syncUrl();
  }

  // -- selection -------------------------------------------------------------------------
  _setLasso(on) {
    this.scatter.setLassoMode(on);
    this.el.lasso.classList.toggle('active', this.scatter.lassoMode);
    this.el.lasso.setAttribute('aria-pressed', String(this.scatter.lassoMode));
  }

  _lasso(poly, add) {
    const accept = this.filterMask ? (i) => this.filterMask[i] === 1 : null;
    const ids = this.scatter.lassoIndices(poly, accept);
    this._setSelection(add ? [...new Set([...this.selList, ...ids])].sort((a, b) => a - b) : ids);
    this._setLasso(false);
  }

  _setSelection(ids) {
    this.selected = new Uint8Array(this.n);
    for (const i of ids) if (i >= 0 && i < this.n) this.selected[i] = 1;
    const list = [];
    for (let i = 0; i < this.n; i++) if (this.selected[i]) list.push(i);
    this.selList = list;
    this.debug.selection = list;
    this._updateFlags();
    this._renderSelection();
    this._updateTrails();
    this._syncUrl();
  }

  _updateFlags() {
    if (!this.scatter.flags) return;
    const f = this.scatter.flags;
    const sel = this.selected, mask = this.filterMask;
    for (let i = 0; i < this.n; i++) f[i] = (sel && sel[i] ? FLAG_SELECTED : 0) | (mask && !mask[i] ? FLAG_DIMMED : 0);
    if (this.neighbors) {
      for (const j of this.neighbors.ids) if (j >= 0 && j < this.n) f[j] |= FLAG_NEIGHBOR;
      if (this.neighbors.index < this.n) f[this.neighbors.index] |= FLAG_QUERY;
    }
    this.scatter.flagsChanged(this.selList.length > 0);
  }

  _renderSelection() {
    const el = this.el;
    el.selCount.textContent = `${this.selList.length.toLocaleString()} selected`;
    const box = clear(el.selTable);
    if (!this.selList.length) return;
    const cols = (this.columns || []).slice(0, 8);
    box.append(h('table', { class: 'list compact', id: 'selection-rows' },
      h('thead', {}, h('tr', {}, h('th', { text: 'row' }), cols.map((c) => h('th', { text: c.name })))),
      h('tbody', {}, this.selList.slice(0, MAX_TABLE_ROWS).map((i) => h('tr', {},
        h('td', { class: 'mono', text: String(i) }), cols.map((c) => h('td', { text: cellText(c.values[i]) })))))));
    if (this.selList.length > MAX_TABLE_ROWS) box.append(h('p', { class: 'muted', text: `… and ${(this.selList.length - MAX_TABLE_ROWS).toLocaleString()} more (all are exported)` }));
  }

  /** Selected rows with their metadata and projected coordinates. */
  selectionRecords() {
    const cols = this.columns || [];
    const pos = this.scatter.positions;
    const axes = this.dims === 3 ? ['proj_x', 'proj_y', 'proj_z'] : ['proj_x', 'proj_y'];
    return this.selList.map((i) => {
      const row = { row: i };
      for (const c of cols) row[c.name] = c.values[i];
      axes.forEach((a, k) => { row[a] = pos[i * 3 + k]; });
      return row;
    });
  }

  _export(kind) {
    if (!this.selList.length) { this.status('Nothing selected: draw a lasso (L) first.', true); return; }
    const recs = this.selectionRecords();
    const base = `selection-${this.emb.id.slice(0, 8)}-${recs.length}`;
    if (kind === 'json') {
      const body = JSON.stringify({ run: this.runId, embedding: this.emb.id, step: this.emb.step, reduction: this.red.id, rows: recs }, null, 1);
      download(`${base}.json`, body, 'application/json');
    } else {
      const keys = Object.keys(recs[0]);
      const lines = [keys.map(csvCell).join(',')];
      for (const r of recs) lines.push(keys.map((k) => csvCell(r[k])).join(','));
      download(`${base}.csv`, lines.join('\r\n') + '\r\n', 'text/csv');
    }
  }

  // -- URL -------------------------------------------------------------------------------
  _restoreFromUrl() {
    const p = this.params, el = this.el;
    if (p.get('q')) el.q.value = p.get('q');
    if (p.get('fmin')) el.fmin.value = p.get('fmin');
    if (p.get('fmax')) el.fmax.value = p.get('fmax');
    this._applyFilter();
    if (p.get('sel')) this._setSelection(decodeRanges(p.get('sel'), this.n));
    else this._renderSelection();
    const nb = parseInt(p.get('nb'), 10);
    if (nb >= 0 && nb < this.n) this._click(nb);
    this._urlReady = true;
    this._syncUrl();
  }

  _syncUrl() {
    if (!this._urlReady) return;
    this._debounce('url', () => {
      const el = this.el;
      const q = new URLSearchParams({ run: this.runId, emb: this.emb.id, red: this.red.id, method: this.red.method, dims: String(this.dims) });
      if (this.timeline.length > 1 && this.emb.step !== null && this.emb.step !== undefined) q.set('step', String(this.emb.step));
      q.set('color', this.colorBy || '');
      if (el.q.value) q.set('q', el.q.value);
      if (el.fcol.value) q.set('fcol', el.fcol.value);
      if (!el.range.classList.contains('hidden')) { if (el.fmin.value) q.set('fmin', el.fmin.value); if (el.fmax.value) q.set('fmax', el.fmax.value); }
      if (this.selList.length) {
        const s = encodeRanges(this.selList);
        if (s.length <= MAX_URL_SELECTION) q.set('sel', s);
      }
      if (this.neighbors) { q.set('nb', String(this.neighbors.index)); q.set('k', String(this.neighbors.k)); q.set('metric', this.neighbors.metric); }
      if (el.thumbs.value !== 'auto') q.set('thumbs', el.thumbs.value);
      if (el.topCol.value) { q.set('top', el.topCol.value); q.set('topn', el.topN.value); q.set('order', el.topOrder.value); }
      this.onUrl(`/view?${q}`);
    }, 120);
  }

  _debounce(key, fn, ms) {
    this._timers = this._timers || {};
    clearTimeout(this._timers[key]);
    this._timers[key] = setTimeout(fn, ms);
  }

  // -- state for tests and scripts -------------------------------------------------------
  _exposeForTests() {
    const view = this;
    window.__viewer = {
      get state() { return view.debug.state; },
      get error() { return view.debug.error; },
      get firstFrameMs() { return view.debug.firstFrameMs; },
      get readyMs() { return view.debug.readyMs; },
      get marks() { return view.debug.marks; },
      get pointCount() { const g = view.scatter && view.scatter.geometry; return g ? Math.min(g.drawRange.count, g.getAttribute('position').count) : 0; },
      get n() { return view.n; },
      get dims() { return view.dims; },
      get frames() { return view.scatter ? view.scatter.frames : 0; },
      get colors() { return view.scatter && view.scatter.colors; },
      get flags() { return view.scatter && view.scatter.flags; },
      get colorBy() { return view.colorBy; },
      get legend() { return view.legend && { kind: view.legend.kind, items: view.legend.items, min: view.legend.min, max: view.legend.max }; },
      get selection() { return view.selList.slice(); },
      get neighbors() { return view.neighbors; },
      get embeddingId() { return view.emb && view.emb.id; },
      /** The reduction whose coordinates are on screen (set once a switch has finished). */
      get reductionId() { return view.shownRed; },
      get steps() { return (view.timeline || []).map((t) => t.emb.step); },
      get stepPos() { return view.stepPos; },
      get filterCount() { return view.debug.filterCount; },
      get topIndices() { return view.topIndices; },
      get spriteOn() { return !!(view.scatter && view.scatter.spriteOn); },
      get spriteLoaded() { return !!view.debug.spriteLoaded; },
      get spriteFrameMs() { return view.debug.spriteFrameMs; },
      get hovered() { return view.debug.hovered; },
      get trailSegments() { return view.debug.trailSegments || 0; },
      /** Interpolated data-space position of row i. */
      position(i) { return view.scatter.positionOf(i); },
      /** Page (viewport) pixel position of row i, or of a data-space point. */
      screenOf(i) { return this.screenOfPoint(...view.scatter.positionOf(i)); },
      screenOfPoint(x, y, z = 0) {
        const s = view.scatter.toScreen(x, y, z);
        if (!s) return null;
        const r = view.el.plot.getBoundingClientRect();
        return [s[0] + r.left, s[1] + r.top];
      },
      setStep(pos) { view._pause(); return view._setStepPos(pos).then(() => view._settleStep()); },
      selectionRecords() { return view.selectionRecords(); },
      /** Draw one frame now and wait for the GPU to finish it: milliseconds per frame. */
      frameMs() {
        const t = performance.now();
        view.scatter.renderNow();
        const gl = view.scatter.renderer.getContext();
        gl.readPixels(0, 0, 1, 1, gl.RGBA, gl.UNSIGNED_BYTE, new Uint8Array(4));
        return performance.now() - t;
      },
      /** Milliseconds to answer a hover at (x, y) page px, rebuilding the screen index first. */
      pickMs(x, y) {
        const r = view.el.plot.getBoundingClientRect();
        view.scatter._projDirty = true;
        const t = performance.now();
        const i = view.scatter.pick(x - r.left, y - r.top);
        return [performance.now() - t, i];
      },
    };
  }
}
