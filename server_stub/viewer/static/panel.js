// The embedding view's DOM: the stage (plot, hover card, badge, legend, status line) and the
// side panel of controls, whose handlers call the view and its parts (steps, colouring,
// selection). Every user-supplied string goes in as text.
import { h, clear } from './dom.js';
import { Scatter } from './scatter.js';

const METHOD_NAMES = { pca: 'PCA', tsne: 't-SNE', umap: 'UMAP', pacmap: 'PaCMAP' };
const MAIN_PARAMS = { tsne: ['perplexity'], umap: ['n_neighbors'], pacmap: ['n_neighbors'] };
export const SHORTCUTS = 'Keys: L lasso · I isolate · T text labels · R reset view · P panel · Space play · Esc clear';

/** "t-SNE 2D (perplexity 30)": the method, its components and its main parameter. */
export function methodLabel(red) {
  const p = red.params || {};
  const parts = (MAIN_PARAMS[red.method] || []).filter((k) => p[k] !== null && p[k] !== undefined).map((k) => `${k.replace('_', ' ')} ${p[k]}`);
  return `${METHOD_NAMES[red.method] || red.method} ${red.n_components}D${parts.length ? ` (${parts.join(', ')})` : ''}`;
}

/** How a step is named: "step 3", or the embedding's title when it was logged without a step. */
export function stepName(emb) {
  return emb.step !== null && emb.step !== undefined ? `step ${emb.step}` : emb.title;
}

/** A select shows its chosen option's full text as a tooltip (it may be cut to the panel's width). */
export function titleFromOption(sel) {
  const o = sel.options[sel.selectedIndex];
  sel.title = o ? o.textContent : '';
}

export function defaultPointSize(n) {
  if (n <= 2000) return 7;
  if (n <= 20000) return 4.5;
  if (n <= 200000) return 3;
  return 2;
}

/**
 * The stage and an empty panel; makes the view's Scatter. The stage is a bar (panel toggle,
 * trustworthiness badge, isolate banner, reset) over the plot, with the legend in a column
 * of its own beside the plot, so it never covers points.
 */
export function buildLayout(view) {
  const el = view.el = {};
  el.panel = h('aside', { class: 'panel', id: 'panel' });
  el.stage = h('div', { class: 'stage', id: 'stage' });
  el.plot = h('div', { class: 'plot', id: 'plot', tabindex: '0' });
  el.labels = h('div', { class: 'point-labels', id: 'point-labels', 'aria-hidden': 'true' });
  el.nbLayer = h('div', { class: 'point-labels nb-layer', id: 'nb-layer', 'aria-hidden': 'true' });
  el.card = h('div', { class: 'hover-card hidden', id: 'hover-card' });
  el.badge = h('div', { class: 'badge hidden', id: 'trust-badge' });
  el.status = h('div', { class: 'status-line', id: 'status', role: 'status' });
  el.legend = h('div', { class: 'legend hidden', id: 'legend' });
  el.panelToggle = h('button', { type: 'button', id: 'panel-toggle', class: 'bar-button', title: 'Hide the side panel (P)',
    'aria-controls': 'panel', 'aria-expanded': 'true', text: '☰', onclick: () => view.togglePanel() });
  el.isoBanner = h('span', { class: 'iso-banner hidden', id: 'iso-banner' });
  el.reset = h('button', { type: 'button', id: 'reset-view', class: 'bar-button', text: 'Reset view', title: 'Back to the first camera and sizes (R)',
    onclick: () => view.resetView() });
  el.stage.append(h('div', { class: 'stage-bar' }, el.panelToggle, el.badge, el.isoBanner, h('span', { class: 'spacer' }), el.reset),
    h('div', { class: 'stage-body' }, h('div', { class: 'plot-wrap', id: 'plot-wrap' }, el.plot, el.labels, el.nbLayer, el.card, el.status), el.legend));
  el.view = h('div', { class: 'view' }, el.panel, el.stage);
  view.root.append(el.view);
  view.scatter = new Scatter(el.plot, {
    onHover: (i, xy) => view.selection.hover(i, xy),
    onClick: (i) => view.selection.click(i),
    onLasso: (poly, add) => view.selection.lasso(poly, add),
    onCameraChange: () => { view.applyPointSizes(); view.applySpriteMode(); view.url.sync(); },
    onRender: () => view.labels.update(),
  });
}

/** Page title, breadcrumb and the trustworthiness badge of the shown projection. */
export function updateHeader(view) {
  const e = view.emb;
  const crumb = document.getElementById('crumb-emb');
  const label = `${e.group ? `${e.group} / ` : ''}${e.title}${e.step !== null && e.step !== undefined ? ` @ step ${e.step}` : ''}`;
  if (crumb) { crumb.textContent = label; crumb.title = label; }
  document.title = `${label} · tracker`;
  const red = view.red;
  const q = red && red.quality || {};
  const b = view.el.badge;
  clear(b);
  if (red && Number.isFinite(q.trustworthiness)) {
    const t = q.trustworthiness;
    b.className = `badge ${t >= 0.9 ? 'good' : t >= 0.8 ? 'fair' : 'poor'}`;
    b.append(h('span', { text: methodLabel(red) }), ' · ',
      h('strong', { text: `trustworthiness ${t.toFixed(3)}` }));
    if (Number.isFinite(q.knn_label_agreement)) b.append(' · ', h('span', { text: `kNN label agreement ${q.knn_label_agreement.toFixed(3)}` }));
    b.title = `${b.textContent}\n\nTrustworthiness (0–1): how well the neighbourhoods seen in this projection exist in the original vectors. ` +
      'Below 0.8, clusters on screen may be artefacts of the projection.';
  } else if (red) {
    b.className = 'badge unknown';
    b.append(h('span', { text: `${methodLabel(red)} · trustworthiness not stored` }));
    b.title = b.textContent;
  }
}

function section(title, id, ...children) {
  return h('section', { class: 'ctl', id }, h('h3', { text: title }), ...children);
}

export function buildControls(view) {
  const { el, params } = view;
  const e = view.emb;
  const filterSoon = () => view.debounce('filter', () => view.colouring.applyFilter(), 150);
  // projection
  el.embSel = h('select', { id: 'emb-select', onchange: () => view.switchEmbedding(el.embSel.value) });
  fillEmbeddings(view);
  el.methodSel = h('select', { id: 'method-select', onchange: () => view.switchReduction(el.methodSel.value) });
  el.dims = h('select', { id: 'dims-select', onchange: () => view.setDims(parseInt(el.dims.value, 10)) },
    h('option', { value: '2', text: '2D' }), h('option', { value: '3', text: '3D' }));
  el.panel.append(section('Projection', 'sec-projection',
    h('label', {}, 'Embedding ', el.embSel), h('label', {}, 'Method ', el.methodSel),
    h('div', { class: 'row' }, el.dims)));
  fillMethods(view);
  // steps
  el.stepBox = h('div', { id: 'steps' });
  el.panel.append(section('Steps', 'sec-steps', el.stepBox));
  el.dynBody = h('div', { id: 'dyn-body' });
  el.dynBox = section('Dynamics', 'sec-dynamics', el.dynBody);
  el.dynBox.classList.add('hidden');
  el.panel.append(el.dynBox);
  buildSteps(view);
  // colour and points
  el.colorSel = h('select', { id: 'color-select', onchange: () => { view.colouring.setColor(el.colorSel.value); view.url.sync(); } });
  el.size = h('input', { type: 'range', id: 'point-size', min: '1', max: '16', step: '0.5', value: String(defaultPointSize(view.n)), oninput: () => view.applyPointSizes() });
  el.thumbs = h('select', { id: 'thumbs', disabled: true, onchange: () => { view.applySpriteMode(); view.url.sync(); } },
    h('option', { value: 'auto', text: 'thumbnails: auto' }), h('option', { value: 'on', text: 'thumbnails: on' }), h('option', { value: 'off', text: 'thumbnails: off' }));
  el.thumbs.value = ['on', 'off'].includes(params.get('thumbs')) ? params.get('thumbs') : 'auto';
  el.labelsOn = h('input', { type: 'checkbox', id: 'labels-on', checked: params.get('labels') === '1',
    onchange: () => { view.labels.refresh(); view.url.sync(); } });
  el.labelCol = h('select', { id: 'label-column', title: 'the column whose values are drawn next to the points',
    onchange: () => { view.labels.refresh(); view.url.sync(); } });
  el.labelNote = h('div', { class: 'muted', id: 'labels-note' });
  el.torn = h('input', { type: 'checkbox', id: 'torn-on', checked: params.get('torn') === '1',
    onchange: () => { view.colouring.setColor(view.colouring.colorBy); view.url.sync(); } });
  el.tornBox = h('label', { class: 'inline hidden', id: 'torn-box', title: 'darken the points whose trust_point is below its 10th percentile: their screen neighbours are not their neighbours' },
    el.torn, ' shade torn regions');
  el.falseNb = h('input', { type: 'checkbox', id: 'false-nb-on', checked: params.get('fnb') !== '0',
    onchange: () => { view.trust.hover(-1); view.url.sync(); } });
  el.panel.append(section('Colour and points', 'sec-color', h('label', {}, 'Colour by ', el.colorSel),
    h('label', {}, 'Point size ', el.size), el.thumbs,
    h('div', { class: 'row' }, h('label', { class: 'inline' }, el.labelsOn, ' text labels (T)'), el.labelCol), el.labelNote,
    h('div', {}, el.tornBox),
    h('div', {}, h('label', { class: 'inline', title: 'on hover: its k nearest in the original space, and the k nearest on screen that are not among them' },
      el.falseNb, ' on hover: ', h('span', { class: 'nb-key-true', text: 'true' }), ' / ', h('span', { class: 'nb-key-false', text: 'false' }), ' neighbours'))));
  // filter
  el.fcol = h('select', { id: 'filter-column', onchange: () => { view.colouring.updateRangeInputs(); view.colouring.applyFilter(); } });
  el.q = h('input', { type: 'search', id: 'search', placeholder: 'substring…', oninput: filterSoon });
  el.fmin = h('input', { type: 'number', id: 'filter-min', placeholder: 'min', step: 'any', oninput: filterSoon });
  el.fmax = h('input', { type: 'number', id: 'filter-max', placeholder: 'max', step: 'any', oninput: filterSoon });
  el.range = h('div', { class: 'row hidden', id: 'filter-range' }, el.fmin, h('span', { text: '–' }), el.fmax);
  el.fcount = h('div', { class: 'muted', id: 'filter-count' });
  el.panel.append(section('Search and filter', 'sec-filter', h('label', {}, 'Column ', el.fcol), el.q, el.range,
    h('div', { class: 'row' }, el.fcount,
      h('button', { type: 'button', id: 'select-matches', text: 'Select matches', onclick: () => view.colouring.selectMatches() }),
      h('button', { type: 'button', text: 'Clear', onclick: () => { el.q.value = ''; el.fmin.value = ''; el.fmax.value = ''; view.colouring.applyFilter(); } }))));
  // neighbours
  const requery = () => view.selection.neighbors && view.selection.click(view.selection.neighbors.index);
  el.metric = h('select', { id: 'nb-metric', onchange: requery },
    h('option', { value: 'cosine', text: 'cosine' }), h('option', { value: 'euclidean', text: 'euclidean' }));
  el.metric.value = params.get('metric') === 'euclidean' ? 'euclidean' : 'cosine';
  el.k = h('input', { type: 'number', id: 'nb-k', min: '1', max: '200', value: params.get('k') || '10', onchange: requery });
  el.nbList = h('div', { id: 'neighbors' }, h('p', { class: 'muted', text: 'Click a point to find its nearest neighbours in the original vector space.' }));
  el.panel.append(section('Neighbours', 'sec-neighbors', h('div', { class: 'row' }, el.metric, h('label', {}, 'k ', el.k)), el.nbList));
  // top N by score
  const retop = () => { view.colouring.renderTop(); view.url.sync(); };
  el.topCol = h('select', { id: 'top-column', onchange: retop });
  el.topN = h('input', { type: 'number', id: 'top-n', min: '1', max: '1000', value: params.get('topn') || '10', onchange: retop });
  el.topOrder = h('select', { id: 'top-order', onchange: retop },
    h('option', { value: 'desc', text: 'highest' }), h('option', { value: 'asc', text: 'lowest' }));
  el.topOrder.value = params.get('order') === 'asc' ? 'asc' : 'desc';
  el.topList = h('ol', { id: 'top-list', class: 'rows' });
  el.topBox = section('Top N by score', 'sec-top', h('div', { class: 'row' }, el.topCol),
    h('div', { class: 'row' }, el.topOrder, el.topN, h('button', { type: 'button', id: 'top-select', text: 'Select these', onclick: () => view.selection.set(view.colouring.topIndices || []) })), el.topList);
  el.panel.append(el.topBox);
  // selection
  el.lasso = h('button', { type: 'button', id: 'lasso', text: 'Lasso (L)', onclick: () => view.selection.setLasso(!view.scatter.lassoMode) });
  el.selCount = h('span', { id: 'selection-count', text: '0 selected' });
  el.trails = h('input', { type: 'checkbox', id: 'trails', onchange: () => view.steps.updateTrails() });
  el.selTable = h('div', { id: 'selection-table', class: 'table-box' });
  el.isolate = h('button', { type: 'button', id: 'isolate', text: 'Isolate (I)', title: 'Show only the selected points',
    onclick: () => view.selection.setIsolate(!view.selection.isolated) });
  el.panel.append(section('Selection', 'sec-selection',
    h('div', { class: 'row' }, el.lasso, el.isolate, el.selCount),
    h('div', { class: 'row' },
      h('button', { type: 'button', id: 'export-csv', text: 'CSV', onclick: () => view.selection.export('csv') }),
      h('button', { type: 'button', id: 'export-json', text: 'JSON', onclick: () => view.selection.export('json') }),
      h('button', { type: 'button', id: 'clear-selection', text: 'Clear', onclick: () => view.selection.set([]) })),
    view.timeline.length > 1 ? h('label', {}, el.trails, ' trails across steps') : null,
    el.selTable));
  el.panel.append(view.projector.section(), view.bookmarks.section(),
    h('p', { class: 'muted shortcuts', id: 'shortcuts', text: SHORTCUTS }));
}

/** The embedding list (every embedding of the run), the current one chosen. */
export function fillEmbeddings(view) {
  const sel = view.el.embSel;
  clear(sel);
  for (const x of view.embeddings) {
    const text = `${x.group ? x.group + ' / ' : ''}${x.title}${x.step != null ? ' @ ' + x.step : ''} (${x.n})`;
    sel.append(h('option', { value: x.id, text, title: text }));
  }
  sel.value = view.emb.id;
  titleFromOption(sel);
}

/** The method list of the current embedding, with the shown reduction chosen. */
export function fillMethods(view) {
  const sel = view.el.methodSel;
  clear(sel);
  for (const r of view.emb.reductions) {
    const q = r.quality && Number.isFinite(r.quality.trustworthiness) ? ` · T ${r.quality.trustworthiness.toFixed(2)}` : '';
    const text = `${methodLabel(r)}${r.timeline ? ' · shared over steps' : ''}${q}`;
    sel.append(h('option', { value: r.id, text, title: text }));
  }
  sel.value = view.red.id;
  titleFromOption(sel);
  if (view.el.embSel) { view.el.embSel.value = view.emb.id; titleFromOption(view.el.embSel); }
  view.el.dims.value = String(view.dims);
  view.el.dims.disabled = view.red.n_components < 3;
}

/** The step slider and play button, or a note on why the steps do not animate. */
export function buildSteps(view) {
  const { el, timeline, steps } = view;
  const box = clear(el.stepBox);
  el.slider = null;
  el.stepLabel = null;
  el.fitAll = null;
  if (timeline.length < 2) {
    box.append(h('p', { class: 'muted', text: view.red.timeline ? 'Only one step shares this reducer.' :
      'This projection was fitted on its own step; steps of a group animate when they share one reducer (reduce_group).' }));
    return;
  }
  const last = timeline.length - 1;
  el.slider = h('input', { type: 'range', id: 'step-slider', min: '0', max: String(last), step: '0.01', value: String(steps.pos),
    oninput: () => { steps.pause(); steps.setPos(parseFloat(el.slider.value)); },
    onchange: () => steps.settle() });
  el.play = h('button', { type: 'button', id: 'play', text: '▶ Play', onclick: () => steps.toggle() });
  el.stepLabel = h('span', { id: 'step-label' });
  el.fitAll = h('input', { type: 'checkbox', id: 'fit-all', checked: view.fitAll,
    onchange: () => view.setFitAll(el.fitAll.checked) });
  const first = stepName(timeline[0].emb), lastName = stepName(timeline[last].emb);
  box.append(h('div', { class: 'row' }, el.play, el.stepLabel), el.slider,
    h('div', { class: 'row muted' }, h('span', { class: 'ellipsis', text: first, title: first }), h('span', { class: 'ellipsis', text: lastName, title: lastName })),
    h('label', { title: 'Off: the camera fits each step. On: one frame that holds every step.' }, el.fitAll, ' fit all steps at once'));
  updateStepLabel(view);
}

export function updateStepLabel(view) {
  const { el, timeline } = view;
  if (!el.stepLabel) return;
  const pos = view.steps.pos;
  const i = Math.floor(pos + 1e-6), t = pos - i;
  const a = stepName(timeline[i].emb);
  el.stepLabel.textContent = t > 0.005 && i + 1 < timeline.length ? `${a} → ${stepName(timeline[i + 1].emb)}` : a;
  el.stepLabel.title = el.stepLabel.textContent;
}
