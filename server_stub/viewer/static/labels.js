// Text labels on points: the chosen column's value drawn beside each point in view, when few
// enough are (MAX_LABELS), as text nodes (textContent) in a layer over the plot. Labels that
// would overlap one already placed are skipped, so the text stays readable.
import { h, clear, fill } from './dom.js';
import { cellText } from './colors.js';
import { FLAG_DIMMED } from './scatter.js';

export const MAX_LABELS = 300;
const FONT_PX = 11;

export class PointLabels {
  constructor(view) {
    this.view = view;
    this.shown = []; // rows labelled in the last update
    this.state = 'off'; // off | on | too-many
    this._queued = false;
  }

  /** Fill the column choice (label column first) after metadata arrives. */
  onMetadata(first) {
    const view = this.view, el = view.el, cols = view.colouring.columns || [];
    const prev = first ? view.params.get('lcol') : el.labelCol.value;
    fill(el.labelCol, cols.map((c) => h('option', { value: c.name, text: c.name })));
    const fallback = view.colouring.labelCol ? view.colouring.labelCol.name : (cols[0] && cols[0].name) || '';
    el.labelCol.value = cols.some((c) => c.name === prev) ? prev : fallback;
    this.refresh();
  }

  toggle() { this.view.el.labelsOn.checked = !this.view.el.labelsOn.checked; this.refresh(); this.view.url.sync(); }

  refresh() { this.view.scatter.requestRender(); this.update(); }

  /** After each frame: place the labels of the points in view (coalesced to one per frame). */
  update() {
    if (this._queued) return;
    this._queued = true;
    requestAnimationFrame(() => { this._queued = false; this._place(); });
  }

  _place() {
    const view = this.view, el = view.el;
    if (!el || !el.labelsOn || view.disposed) return;
    const layer = el.labels;
    const col = view.colouring.column(el.labelCol.value);
    if (!el.labelsOn.checked || !col || !view.scatter.hasCamera) {
      clear(layer); this.shown = []; this.state = 'off'; el.labelNote.textContent = '';
      return;
    }
    const ids = view.scatter.onScreen(MAX_LABELS);
    if (ids === null) {
      clear(layer); this.shown = []; this.state = 'too-many';
      el.labelNote.textContent = `More than ${MAX_LABELS} points in view: zoom in, filter or isolate to see their labels.`;
      return;
    }
    const flags = view.scatter.flags;
    const boxes = [];
    const out = [];
    const frag = document.createDocumentFragment();
    for (const i of ids) {
      if (flags && flags[i] & FLAG_DIMMED) continue;
      const text = cellText(col.values[i]);
      if (!text) continue;
      const [x, y] = view.scatter.screenXY(i);
      const w = text.length * FONT_PX * 0.62 + 4, top = y - FONT_PX - 4, left = x + 5; // whole text, never cut
      if (boxes.some((b) => left < b[2] && left + w > b[0] && top < b[3] && top + FONT_PX + 2 > b[1])) continue;
      boxes.push([left, top, left + w, top + FONT_PX + 2]);
      const span = h('span', { class: 'point-label', text, 'data-row': String(i) });
      span.style.transform = `translate(${Math.round(left)}px, ${Math.round(top)}px)`;
      frag.append(span);
      out.push(i);
    }
    clear(layer).append(frag);
    this.shown = out;
    this.state = 'on';
    el.labelNote.textContent = `${out.length} of ${ids.length} points in view labelled`;
  }
}
