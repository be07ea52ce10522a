// Steps of a group that share one fitted reducer: the slider position (fractional between
// steps, drawn by interpolating positions), play/pause, and the trails of selected points.
import { displayPositions } from './data.js';
import { fillMethods, updateHeader, updateStepLabel } from './panel.js';

const MAX_TRAIL_POINTS = 5000;
const STEPS_PER_SECOND = 0.8;

export class Steps {
  constructor(view) {
    this.view = view;
    this.pos = 0; // position on the timeline: step index, fractional while moving
    this.playing = false;
    this.trailSegments = 0;
    this._token = 0;
  }

  /** Draw the timeline at `pos`, interpolating between the two steps around it. */
  async setPos(pos) {
    const view = this.view;
    const timeline = view.timeline;
    const last = timeline.length - 1;
    pos = Math.max(0, Math.min(last, pos));
    this.pos = pos;
    const i = Math.min(Math.floor(pos + 1e-6), last), j = Math.min(i + 1, last), t = j > i ? pos - i : 0;
    const token = this._token = this._token + 1;
    const [a, b] = await Promise.all([view.data.coords(timeline[i].red), view.data.coords(timeline[j].red)]);
    if (token !== this._token || view.disposed) return;
    view.scatter.setPositions(displayPositions(a, view.dims), displayPositions(b, view.dims), t < 1e-6 ? 0 : t);
    view.applyFit(a, b, t < 1e-6 ? 0 : t);
    updateStepLabel(view);
    if (view.el.slider && document.activeElement !== view.el.slider) view.el.slider.value = String(pos);
  }

  /** Snap to the nearest step: it becomes the current embedding (metadata, neighbours, URL). */
  async settle() {
    const view = this.view;
    const k = Math.round(this.pos);
    await this.setPos(k);
    if (view.el.slider) view.el.slider.value = String(k);
    const entry = view.timeline[k];
    if (entry.emb.id !== view.emb.id) {
      view.emb = entry.emb;
      view.red = entry.red;
      fillMethods(view);
      updateHeader(view);
      view.shownRed = view.red.id;
      const meta = await view.data.viewMetadata(view.emb, view.red);
      if (view.emb !== entry.emb) return;
      view.meta = meta;
      view.colouring.onMetadata(false);
      view.dynamics.load();
      if (view.selection.neighbors) view.selection.click(view.selection.neighbors.index);
      view.loadSprite(view.emb);
    }
    this.updateTrails();
    view.url.sync();
  }

  toggle() { if (this.playing) this.pause(); else this.play(); }

  pause() {
    if (!this.playing) return;
    this.playing = false;
    this.view.el.play.textContent = '▶ Play';
    this.settle();
  }

  async play() {
    const view = this.view;
    const last = view.timeline.length - 1;
    if (this.pos >= last) await this.setPos(0);
    await this.prefetch();
    this.playing = true;
    view.el.play.textContent = '❚❚ Pause';
    let prev = performance.now();
    const tick = async (now) => {
      if (!this.playing || view.disposed) return;
      const dt = (now - prev) / 1000;
      prev = now;
      const pos = Math.min(last, this.pos + dt * STEPS_PER_SECOND);
      await this.setPos(pos);
      if (pos >= last) { this.pause(); return; }
      requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  }

  /** Fetch every step's coordinates (playback then never waits on the network). */
  async prefetch() {
    const view = this.view;
    for (const t of view.timeline) { if (view.disposed) return; await view.data.coords(t.red).catch(() => {}); }
  }

  /** Lines through each selected point's positions at every step (when "trails" is on). */
  async updateTrails() {
    const view = this.view;
    const sel = view.selection.list;
    const on = view.el.trails && view.el.trails.checked && view.timeline.length > 1 && sel.length;
    if (!on) { view.scatter.setTrails(null); return; }
    const ids = sel.slice(0, MAX_TRAIL_POINTS);
    const all = await Promise.all(view.timeline.map((t) => view.data.coords(t.red)));
    const pos = all.map((c) => displayPositions(c, view.dims));
    const seg = new Float32Array(ids.length * (pos.length - 1) * 6);
    let o = 0;
    for (const i of ids) {
      for (let s = 0; s + 1 < pos.length; s++) {
        for (let k = 0; k < 3; k++) seg[o + k] = pos[s][i * 3 + k];
        for (let k = 0; k < 3; k++) seg[o + 3 + k] = pos[s + 1][i * 3 + k];
        o += 6;
      }
    }
    view.scatter.setTrails(seg);
    this.trailSegments = seg.length / 6;
  }
}
