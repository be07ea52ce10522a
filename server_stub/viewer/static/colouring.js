// The metadata side of the view: colour by a column (with its legend), search and filter
// (non-matching points are dimmed), and the top N rows by a numeric score column.
import { h, clear, fill, fmtValue } from './dom.js';
import { colorize, cellText, rgbCss } from './colors.js';
import { shadeTorn, tornMask } from './trust.js';

const DEFAULT_RGB = [70, 110, 190];
const ANALYSIS_SCORES = ['outlier_score', 'label_disagreement', 'split_shift'];

/**
 * The score columns worth ranking: numeric columns that a `columns` record added to the
 * embedding (what `analyze` writes: outlier_score, label_disagreement, split_shift, or any
 * other), never the logged metadata such as labels or ids.
 */
export function scoreColumns(emb, columns) {
  const own = new Set(((emb && emb.metadata && emb.metadata.columns) || []));
  const listed = new Set(((emb && emb.columns) || []).map((c) => c.name));
  const added = (name) => (own.size ? listed.has(name) && !own.has(name) : ANALYSIS_SCORES.includes(name));
  const found = columns.filter((c) => isNumber(c) && added(c.name));
  return found.sort((a, b) => rank(a.name) - rank(b.name));
}

function rank(name) { const i = ANALYSIS_SCORES.indexOf(name); return i < 0 ? ANALYSIS_SCORES.length : i; }

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

/** The label column: "label" (any case), else the first text column, else the first; null without columns. */
export function labelColumn(cols) {
  return cols.find((c) => c.name.toLowerCase() === 'label') || cols.find((c) => c.type === 'str') || cols[0] || null;
}

function isNumber(col) { return col && (col.type === 'int' || col.type === 'float'); }

export class Colouring {
  constructor(view) {
    this.view = view;
    this.columns = null;
    this.labelCol = null;
    this.colorBy = null;
    this.legend = null;
    this.filterMask = null; // Uint8Array (n): 1 where a row matches, or null without a filter
    this.filterCount = null;
    this.topIndices = [];
    this.rgba = null;
  }

  /** New metadata (first load or another step): refill the column choices, keeping choices that still apply. */
  onMetadata(first) {
    const view = this.view, el = view.el, params = view.params;
    const cols = this.columns = view.meta.columns;
    this.labelCol = labelColumn(cols);
    const prevColor = first ? params.get('color') : this.colorBy;
    fill(el.colorSel, h('option', { value: '', text: '(none)' }), cols.map((c) => h('option', { value: c.name, text: `${c.name} (${c.type})` })));
    const colorName = cols.some((c) => c.name === prevColor) ? prevColor : (prevColor === '' ? '' : this.labelCol ? this.labelCol.name : '');
    el.colorSel.value = colorName;
    this.setColor(colorName);
    const prevF = first ? params.get('fcol') || '' : el.fcol.value;
    fill(el.fcol, h('option', { value: '', text: 'any column (text)' }), cols.map((c) => h('option', { value: c.name, text: c.name })));
    el.fcol.value = cols.some((c) => c.name === prevF) ? prevF : '';
    this.updateRangeInputs();
    const scores = scoreColumns(view.emb, cols);
    const prevTop = first ? params.get('top') : el.topCol.value;
    fill(el.topCol, scores.map((c) => h('option', { value: c.name, text: c.name })));
    el.topBox.classList.toggle('hidden', !scores.length);
    if (scores.length) el.topCol.value = scores.some((c) => c.name === prevTop) ? prevTop : scores[0].name;
    this.renderTop();
    view.labels.onMetadata(first);
    if (!first) { this.applyFilter(); view.selection.render(); }
  }

  column(name) { return this.columns && this.columns.find((c) => c.name === name) || null; }

  /** The label of row i (the "label" column, else the first text column), or ''. */
  label(i) { return this.labelCol ? cellText(this.labelCol.values[i]) : ''; }

  setColor(name) {
    const view = this.view, n = view.n;
    this.colorBy = name;
    const col = this.column(name);
    if (!this.rgba || this.rgba.length !== n * 4) { this.rgba = new Uint8Array(n * 4).fill(255); this._coloured = null; }
    const rgba = this.rgba;
    const legend = clear(view.el.legend);
    // the column the colours already hold (the first frame's, now joined by the other columns), unshaded: kept
    const kept = col && col === this._coloured && !this.torn;
    this._coloured = col;
    if (!col) {
      for (let i = 0; i < n; i++) { rgba[i * 4] = DEFAULT_RGB[0]; rgba[i * 4 + 1] = DEFAULT_RGB[1]; rgba[i * 4 + 2] = DEFAULT_RGB[2]; }
      this.legend = null;
      legend.classList.add('hidden');
    } else {
      if (!kept) this.legend = colorize(col, rgba);
      legend.classList.remove('hidden');
      legend.append(h('div', { class: 'legend-title', text: col.name }));
      if (this.legend.kind === 'numeric') {
        legend.append(h('div', { class: 'ramp' }), h('div', { class: 'row ramp-labels' },
          h('span', { text: fmtValue(this.legend.min) }), h('span', { text: fmtValue(this.legend.max) })));
      } else {
        for (const item of this.legend.items) {
          const sw = h('span', { class: 'swatch' });
          sw.style.background = rgbCss(item.color);
          const text = item.value === null ? item.label : item.value === '' ? '(empty)' : item.value;
          legend.append(h('button', { type: 'button', class: 'legend-item', title: `${text}: ${item.count} points (click selects them)`,
            onclick: () => item.value !== null && this.selectCategory(col, item.value) },
          sw, h('span', { class: 'legend-label', text }),
          h('span', { class: 'muted', text: ` ${item.count}` })));
        }
      }
    }
    const trust = this.column('trust_point');
    view.el.tornBox.classList.toggle('hidden', !trust);
    this.torn = trust && view.el.torn.checked ? tornMask(trust.values) : null;
    if (this.torn) shadeTorn(rgba, this.torn);
    view.scatter.setColors(rgba);
  }

  selectCategory(col, value) {
    const ids = [];
    for (let i = 0; i < this.view.n; i++) if (cellText(col.values[i]) === value) ids.push(i);
    this.view.selection.set(ids);
  }

  updateRangeInputs() {
    const el = this.view.el;
    el.range.classList.toggle('hidden', !isNumber(this.column(el.fcol.value)));
  }

  /** Recompute the filter mask from the search box and the min/max inputs. */
  applyFilter() {
    const view = this.view, el = view.el, n = view.n;
    const needle = el.q.value.trim().toLowerCase();
    const col = this.column(el.fcol.value);
    const numeric = isNumber(col);
    const lo = numeric && el.fmin.value !== '' ? parseFloat(el.fmin.value) : -Infinity;
    const hi = numeric && el.fmax.value !== '' ? parseFloat(el.fmax.value) : Infinity;
    const ranged = numeric && (lo > -Infinity || hi < Infinity);
    if (!needle && !ranged) {
      this.filterMask = null;
      this.filterCount = n;
      el.fcount.textContent = '';
    } else {
      const mask = new Uint8Array(n);
      const cols = col ? [col] : this.columns;
      let count = 0;
      for (let i = 0; i < n; i++) {
        let ok = true;
        if (ranged) { const v = col.values[i]; ok = typeof v === 'number' && v >= lo && v <= hi; }
        if (ok && needle) {
          ok = false;
          for (const c of cols) if (cellText(c.values[i]).toLowerCase().includes(needle)) { ok = true; break; }
        }
        if (ok) { mask[i] = 1; count++; }
      }
      this.filterMask = mask;
      this.filterCount = count;
      el.fcount.textContent = `${count.toLocaleString()} of ${n.toLocaleString()} match`;
    }
    view.selection.updateFlags();
    view.url.sync();
  }

  selectMatches() {
    if (!this.filterMask) return;
    const ids = [];
    for (let i = 0; i < this.view.n; i++) if (this.filterMask[i]) ids.push(i);
    this.view.selection.set(ids);
  }

  renderTop() {
    const view = this.view, el = view.el;
    const col = this.column(el.topCol.value);
    clear(el.topList);
    this.topIndices = [];
    if (!col) return;
    const k = Math.max(1, Math.min(1000, parseInt(el.topN.value, 10) || 10));
    this.topIndices = topK(col.values, k, el.topOrder.value !== 'asc');
    for (const i of this.topIndices) {
      el.topList.append(h('li', {}, h('button', { type: 'button', class: 'row-link', onclick: () => view.selection.click(i) },
        h('span', { class: 'mono', text: `#${i}` }), ' ', h('span', { text: this.label(i) }),
        h('span', { class: 'muted', text: ` ${fmtValue(col.values[i])}` }))));
    }
  }
}


