// A CPU-side grid over the points' screen positions: hover and click pick the nearest point
// and the lasso collects the points inside a polygon without a pass over every point.

const CELL = 12; // px per cell of the screen-space grid index

export class ScreenIndex {
  /**
   * Project every point (interpolated between positions a and b by t) with the 4x4 matrix
   * `mvp` (column-major, data units to clip space) onto a w x h css-pixel screen; points
   * whose `flags` have `skipBit` set (hidden by "isolate") are left out.
   */
  build(a, b, t, n, mvp, w, h, flags = null, skipBit = 0) {
    const e = mvp;
    if (!this.screen || this.screen.length !== n * 2) {
      this.screen = new Float32Array(n * 2);
      this.depth = new Float32Array(n);
    }
    const sc = this.screen, dp = this.depth;
    const cols = Math.ceil(w / CELL), rows = Math.ceil(h / CELL);
    const cellOf = new Int32Array(n);
    const counts = new Int32Array(cols * rows + 1);
    for (let i = 0; i < n; i++) {
      let x = a[i * 3], y = a[i * 3 + 1], z = a[i * 3 + 2];
      if (t !== 0) { x += (b[i * 3] - x) * t; y += (b[i * 3 + 1] - y) * t; z += (b[i * 3 + 2] - z) * t; }
      const cw = e[3] * x + e[7] * y + e[11] * z + e[15];
      const sx = ((e[0] * x + e[4] * y + e[8] * z + e[12]) / cw + 1) / 2 * w;
      const sy = (1 - (e[1] * x + e[5] * y + e[9] * z + e[13]) / cw) / 2 * h;
      sc[i * 2] = sx; sc[i * 2 + 1] = sy; dp[i] = cw;
      if (cw > 0 && sx >= 0 && sy >= 0 && sx < w && sy < h && !(flags && (flags[i] & skipBit))) {
        const c = Math.floor(sy / CELL) * cols + Math.floor(sx / CELL);
        cellOf[i] = c; counts[c + 1]++;
      } else cellOf[i] = -1;
    }
    for (let c = 0; c < cols * rows; c++) counts[c + 1] += counts[c];
    const start = counts.slice();
    const order = new Int32Array(counts[cols * rows]);
    for (let i = 0; i < n; i++) { const c = cellOf[i]; if (c >= 0) order[start[c]++] = i; }
    this.grid = { cols, rows, starts: counts, order };
  }

  /** The point under (x, y) css px within `radius` px (the front-most of the nearest), or -1. */
  pick(x, y, radius = 8) {
    const { cols, rows, starts, order } = this.grid;
    const sc = this.screen, dp = this.depth;
    let best = -1, bestD = radius * radius, bestZ = Infinity;
    const c0 = Math.max(0, Math.floor((x - radius) / CELL)), c1 = Math.min(cols - 1, Math.floor((x + radius) / CELL));
    const r0 = Math.max(0, Math.floor((y - radius) / CELL)), r1 = Math.min(rows - 1, Math.floor((y + radius) / CELL));
    for (let r = r0; r <= r1; r++) {
      for (let c = c0; c <= c1; c++) {
        const cell = r * cols + c;
        for (let j = starts[cell]; j < starts[cell + 1]; j++) {
          const i = order[j];
          const dx = sc[i * 2] - x, dy = sc[i * 2 + 1] - y, d = dx * dx + dy * dy;
          if (d < bestD - 1e-6 || (Math.abs(d - bestD) <= 1e-6 && dp[i] < bestZ)) { best = i; bestD = d; bestZ = dp[i]; }
        }
      }
    }
    return best;
  }

  /** How many indexed points lie in the grid cells that the rectangle (css px) touches. */
  countIn(x0, y0, x1, y1) {
    const { cols, rows, starts } = this.grid;
    const c0 = Math.max(0, Math.floor(x0 / CELL)), c1 = Math.min(cols - 1, Math.floor(x1 / CELL));
    const r0 = Math.max(0, Math.floor(y0 / CELL)), r1 = Math.min(rows - 1, Math.floor(y1 / CELL));
    let count = 0;
    for (let r = r0; r <= r1; r++) count += starts[r * cols + c1 + 1] - starts[r * cols + c0];
    return c1 >= c0 ? count : 0;
  }

  /** Indices of the points on screen (in grid order), or null when there are more than `limit`. */
  onScreen(limit) {
    const order = this.grid.order;
    return order.length > limit ? null : Array.from(order);
  }

  /** Sorted indices of points whose screen position lies inside the polygon [[x, y], ...]. */
  inside(poly, accept) {
    if (poly.length < 3) return [];
    let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
    for (const [x, y] of poly) { x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x); y1 = Math.max(y1, y); }
    const { cols, rows, starts, order } = this.grid;
    const sc = this.screen;
    const out = [];
    const c0 = Math.max(0, Math.floor(x0 / CELL)), c1 = Math.min(cols - 1, Math.floor(x1 / CELL));
    const r0 = Math.max(0, Math.floor(y0 / CELL)), r1 = Math.min(rows - 1, Math.floor(y1 / CELL));
    for (let r = r0; r <= r1; r++) {
      for (let c = c0; c <= c1; c++) {
        const cell = r * cols + c;
        for (let j = starts[cell]; j < starts[cell + 1]; j++) {
          const i = order[j];
          const px = sc[i * 2], py = sc[i * 2 + 1];
          if (px < x0 || px > x1 || py < y0 || py > y1) continue;
          if ((!accept || accept(i)) && insidePolygon(px, py, poly)) out.push(i);
        }
      }
    }
    return out.sort((p, q) => p - q);
  }
}

function insidePolygon(x, y, poly) {
  let inside = false;
  for (let i = 0, j = poly.length - 1; i < poly.length; j = i++) {
    const xi = poly[i][0], yi = poly[i][1], xj = poly[j][0], yj = poly[j][1];
    if ((yi > y) !== (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}
