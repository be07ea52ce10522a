// The group's dynamics record (`analyze_dynamics`, measured in the original space) in the side
// panel: the step x step linear CKA heatmap, the rows whose k-NN sets changed most between a
// step and the next (a click shows the later step and selects the row), and per class a
// sparkline of its centroid separation over the steps.
import { api } from './api.js';
import { h, clear, fmtValue } from './dom.js';
import { viridis, rgbCss } from './colors.js';

const CELL_MAX = 24; // px per heatmap cell at most
const HEAT_SIZE = 168; // px, the heatmap's side at most
const MAX_CLASSES = 20;
const SPARK_W = 110, SPARK_H = 20;

/** The record for `emb`: the latest one of its group and title that lists it, else null. */
export function recordFor(records, emb) {
  for (let r = records.length - 1; r >= 0; r--) if (records[r].embedding_ids.includes(emb.id)) return records[r];
  return null;
}

/** Colour of a CKA value: viridis over [0, 1] (CKA's own range), so runs and groups compare. */
export function ckaColor(v) { return v === null || v === undefined ? [225, 225, 225] : viridis(v); }

export class DynamicsPanel {
  constructor(view) {
    this.view = view;
    this.record = null;
    this.pair = 0; // changes[pair]: steps pair and pair + 1
  }

  /** Fetch the shown group's record and fill the panel (hidden when the group has none). */
  async load() {
    const view = this.view, emb = view.emb;
    if (!emb.group) { this.render(null); return; }
    const key = emb.group; // a record without a title covers every title of its group: recordFor picks by id
    if (this._key !== key) {
      this._key = key;
      this._records = api.dynamics(view.runId, emb.group);
      this._records.catch(() => { this._key = null; });
    }
    let records;
    try { records = await this._records; } catch (err) { view.status(`Dynamics not loaded: ${err.message}`, true); return; }
    if (view.emb !== emb) return;
    const rec = recordFor(records, emb);
    if (rec !== this.record) {
      const k = rec ? rec.embedding_ids.indexOf(emb.id) : 0;
      this.pair = Math.max(0, Math.min(k - 1, rec ? rec.changes.length - 1 : 0)); // the change into this step
      this.render(rec);
    }
  }

  render(rec) {
    const el = this.view.el;
    this.record = rec;
    el.dynBox.classList.toggle('hidden', !rec);
    clear(el.dynBody);
    if (!rec) return;
    el.dynBody.append(h('div', { class: 'muted', text: `k = ${rec.k_neighbors}, ${rec.n_shared.toLocaleString()} shared rows, original space` }));
    el.dynBody.append(h('h4', { text: 'Linear CKA, step × step' }), this._heatmap(rec));
    if (rec.changes.length) {
      this.pairSel = h('select', { id: 'dyn-pair', onchange: () => { this.pair = parseInt(this.pairSel.value, 10); this._renderChanges(); } },
        rec.changes.map((c, s) => h('option', { value: String(s), text: `step ${stepName(rec, s)} → ${stepName(rec, s + 1)} (mean Jaccard ${c.mean.toFixed(3)})` })));
      this.pairSel.value = String(this.pair);
      this.changeList = h('ol', { class: 'rows', id: 'dyn-changed' });
      el.dynBody.append(h('h4', { text: 'Changed most (k-NN Jaccard, lowest first)' }), this.pairSel, this.changeList);
      this._renderChanges();
    }
    if (rec.classes.length && rec.separation.length) el.dynBody.append(h('h4', { text: 'Class separation over steps' }), this._sparklines(rec));
  }

  _heatmap(rec) {
    const m = rec.cka.length;
    const cell = Math.max(2, Math.min(CELL_MAX, Math.floor(HEAT_SIZE / Math.max(1, m))));
    const cv = h('canvas', { id: 'dyn-cka', width: cell * m, height: cell * m, class: 'dyn-cka' });
    const ctx = cv.getContext('2d');
    for (let a = 0; a < m; a++) {
      for (let b = 0; b < m; b++) {
        ctx.fillStyle = rgbCss(ckaColor(rec.cka[a][b]));
        ctx.fillRect(b * cell, a * cell, cell, cell);
      }
    }
    cv.title = rec.cka.map((row, a) => `step ${stepName(rec, a)}: ${row.map((v) => (v === null ? '–' : v.toFixed(3))).join(' ')}`).join('\n');
    const ramp = h('div', { class: 'row ramp-labels' }, h('span', { text: '0' }), h('span', { text: 'CKA' }), h('span', { text: '1' }));
    return h('div', { class: 'dyn-heat' }, cv, h('div', { class: 'ramp' }), ramp);
  }

  _renderChanges() {
    const view = this.view, rec = this.record;
    const change = rec.changes[this.pair];
    clear(this.changeList);
    for (const row of change.changed_most) {
      this.changeList.append(h('li', {}, h('button', { type: 'button', class: 'row-link', onclick: () => this.show(this.pair, row) },
        h('span', { class: 'mono', text: `#${row}` }), ' ', h('span', { text: view.colouring.label(row) }))));
    }
  }

  /** Show step pair + 1 (when it is on the slider) and select `row`, asking for its neighbours. */
  async show(pair, row) {
    const view = this.view;
    const target = this.record.embedding_ids[pair + 1];
    const k = view.timeline.findIndex((t) => t.emb.id === target);
    if (k >= 0 && view.timeline[k].emb.id !== view.emb.id) {
      view.steps.pause();
      await view.steps.setPos(k);
      await view.steps.settle();
    }
    view.selection.set([row]);
    view.selection.click(row);
  }

  _sparklines(rec) {
    const NS = 'http://www.w3.org/2000/svg';
    const rows = [];
    rec.classes.slice(0, MAX_CLASSES).forEach((cls, c) => {
      const values = rec.separation.map((row) => row[c]);
      const finite = values.filter((v) => v !== null && Number.isFinite(v));
      const lo = Math.min(...finite), hi = Math.max(...finite);
      const svg = document.createElementNS(NS, 'svg');
      svg.setAttribute('viewBox', `0 0 ${SPARK_W} ${SPARK_H}`);
      svg.setAttribute('width', SPARK_W);
      svg.setAttribute('height', SPARK_H);
      svg.setAttribute('class', 'spark');
      const pts = [];
      values.forEach((v, s) => {
        if (v === null || !Number.isFinite(v)) return;
        const x = values.length > 1 ? 2 + (s / (values.length - 1)) * (SPARK_W - 4) : SPARK_W / 2;
        const y = hi > lo ? SPARK_H - 2 - ((v - lo) / (hi - lo)) * (SPARK_H - 4) : SPARK_H / 2;
        pts.push(`${x.toFixed(1)},${y.toFixed(1)}`);
      });
      const line = document.createElementNS(NS, 'polyline');
      line.setAttribute('points', pts.join(' '));
      svg.append(line);
      const last = finite.length ? values[values.length - 1] : null;
      rows.push(h('div', { class: 'spark-row', title: `${cls}: ${values.map((v) => (v === null ? '–' : fmtValue(v))).join(', ')}` },
        h('span', { class: 'spark-label', text: String(cls) }), svg, h('span', { class: 'muted mono', text: last === null ? '–' : fmtValue(last) })));
    });
    if (rec.classes.length > MAX_CLASSES) rows.push(h('div', { class: 'muted', text: `and ${rec.classes.length - MAX_CLASSES} more classes` }));
    return h('div', { id: 'dyn-sparks' }, rows);
  }
}

function stepName(rec, s) { const v = rec.steps[s]; return v === null || v === undefined ? String(s) : String(v); }
