// Test and measurement hooks: window.__viewer, installed only when the page was loaded with
// ?debug=1 (the browser tests and benchmarks do; production pages expose nothing).

/** Whether this page load asked for the hooks (read once: client-side navigation keeps it). */
export const DEBUG = new URLSearchParams(location.search).get('debug') === '1';

/** Install window.__viewer for `view` (the live embedding view) when DEBUG. */
export function installDebugHooks(view) {
  if (!DEBUG) return;
  const stats = view.stats;
  window.__viewer = {
    get state() { return stats.state; },
    get error() { return stats.error; },
    get firstFrameMs() { return stats.firstFrameMs; },
    get readyMs() { return stats.readyMs; },
    /** The first frame drawn coloured, and when every metadata column reached hover card and search (ms since navigation). */
    get colouredMs() { return stats.colouredMs; },
    get usableMs() { return stats.usableMs; },
    get marks() { return stats.marks; },
    get spriteLoaded() { return !!stats.spriteLoaded; },
    get spriteFrameMs() { return stats.spriteFrameMs; },
    get pointCount() { return view.scatter ? view.scatter.drawnCount : 0; },
    get n() { return view.n; },
    get dims() { return view.dims; },
    get frames() { return view.scatter ? view.scatter.frames : 0; },
    get colors() { return view.scatter && view.scatter.colors; },
    get flags() { return view.scatter && view.scatter.flags; },
    get colorBy() { return view.colouring.colorBy; },
    get legend() { const l = view.colouring.legend; return l && { kind: l.kind, items: l.items, min: l.min, max: l.max }; },
    get selection() { return view.selection.list.slice(); },
    get neighbors() { return view.selection.neighbors; },
    get embeddingId() { return view.emb && view.emb.id; },
    /** The reduction whose coordinates are on screen (set once a switch has finished). */
    get reductionId() { return view.shownRed; },
    get steps() { return (view.timeline || []).map((t) => t.emb.step); },
    get stepPos() { return view.steps.pos; },
    get filterCount() { return view.colouring.filterCount; },
    get topIndices() { return view.colouring.topIndices; },
    get spriteOn() { return !!(view.scatter && view.scatter.spriteOn); },
    get hovered() { return view.selection.hovered; },
    get trailSegments() { return view.steps.trailSegments; },
    get stepNames() { return Array.from(document.querySelectorAll('#steps .row.muted span'), (s) => s.textContent); },
    get labelRows() { return view.labels.shown.slice(); },
    get labelState() { return view.labels.state; },
    get dynamics() { return view.dynamics.record; },
    /** The heatmap's pixel [r, g, b] at the centre of CKA cell (a, b). */
    ckaPixel(a, b) {
      const cv = document.getElementById('dyn-cka'), m = view.dynamics.record.cka.length, c = cv.width / m;
      return Array.from(cv.getContext('2d').getImageData(Math.floor((b + 0.5) * c), Math.floor((a + 0.5) * c), 1, 1).data.slice(0, 3));
    },
    get hoverNeighbours() { return view.trust.last; },
    get torn() { return view.colouring.torn ? Array.from(view.colouring.torn) : null; },
    get trustScores() { return view.meta && view.meta.trustScores; },
    screenPositions() { return Array.from(view.scatter.screenPositions()); },
    get isolated() { return view.selection.isolated; },
    get camera() { return view.scatter && view.scatter.hasCamera ? view.scatter.cameraState() : null; },
    get zoom() { return view.scatter && view.scatter.hasCamera ? view.scatter.zoomLevel() : null; },
    get spritePx() { return view.spritePx; },
    get fitAll() { return view.fitAll; },
    get job() { return view.projector.job; },
    get bookmarks() { return view.bookmarks.items.map((b) => b.name); },
    get reductionIds() { return view.emb ? view.emb.reductions.map((r) => r.id) : []; },
    /** Bounding box (page px) of the rows' points as drawn now, over those on screen. */
    screenBox(rows) {
      let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
      for (const i of rows) {
        const s = this.screenOf(i);
        if (!s) continue;
        x0 = Math.min(x0, s[0]); y0 = Math.min(y0, s[1]); x1 = Math.max(x1, s[0]); y1 = Math.max(y1, s[1]);
      }
      return [x0, y0, x1, y1];
    },
    /** Zoom the camera by a factor (as the wheel would), for tests. */
    zoomBy(f) {
      const s = view.scatter.cameraState();
      if (s.length === 3) s[2] *= f; else { for (let k = 0; k < 3; k++) s[k] = s[k + 3] + (s[k] - s[k + 3]) / f; }
      view.scatter.setCameraState(s);
      return view.scatter.nextFrameDone();
    },
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
    setStep(pos) { view.steps.pause(); return view.steps.setPos(pos).then(() => view.steps.settle()); },
    selectionRecords() { return view.selection.records(); },
    /** Draw one frame now and wait for the GPU to finish it: milliseconds per frame. */
    frameMs() { return view.scatter.frameMs(); },
    /** Milliseconds to answer a hover at (x, y) page px, rebuilding the screen index first. */
    pickMs(x, y) {
      const r = view.el.plot.getBoundingClientRect();
      view.scatter.invalidateScreenIndex();
      const t = performance.now();
      const i = view.scatter.pick(x - r.left, y - r.top);
      return [performance.now() - t, i];
    },
  };
}
