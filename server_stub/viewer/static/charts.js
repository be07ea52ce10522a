// Small SVG line charts for metric curves (no library needed).
import { h } from './dom.js';

const NS = 'http://www.w3.org/2000/svg';
function s(tag, attrs = {}, text) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = String(text);
  return el;
}

function ticks(lo, hi, count = 4) {
  if (!(hi > lo)) return [lo];
  const step = Math.pow(10, Math.floor(Math.log10((hi - lo) / count)));
  const nice = [1, 2, 5, 10].map((m) => m * step).find((st) => (hi - lo) / st <= count) || step * 10;
  const out = [];
  for (let v = Math.ceil(lo / nice) * nice; v <= hi + 1e-12; v += nice) out.push(Number(v.toPrecision(12)));
  return out;
}

/** A line chart of points [{step, value}] (x is step, else index). */
export function lineChart(name, points) {
  const W = 360, H = 200, L = 48, R = 10, T = 12, B = 26;
  const pts = points.map((p, i) => [p.step ?? i, Number(p.value)]).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img' });
  const title = s('title', {}, name);
  svg.append(title);
  if (!pts.length) return h('figure', { class: 'chart-box' }, svg, h('figcaption', { text: `${name} (no finite values)` }));
  let x0 = Math.min(...pts.map((p) => p[0])), x1 = Math.max(...pts.map((p) => p[0]));
  let y0 = Math.min(...pts.map((p) => p[1])), y1 = Math.max(...pts.map((p) => p[1]));
  if (x1 === x0) { x0 -= 1; x1 += 1; }
  if (y1 === y0) { y0 -= Math.abs(y0) * 0.1 + 1; y1 += Math.abs(y1) * 0.1 + 1; }
  const X = (x) => L + (x - x0) / (x1 - x0) * (W - L - R);
  const Y = (y) => T + (1 - (y - y0) / (y1 - y0)) * (H - T - B);
  for (const v of ticks(y0, y1)) {
    svg.append(s('line', { x1: L, x2: W - R, y1: Y(v), y2: Y(v), class: 'grid' }));
    svg.append(s('text', { x: L - 4, y: Y(v) + 4, class: 'tick', 'text-anchor': 'end' }, Number(v.toPrecision(4))));
  }
  for (const v of ticks(x0, x1, 5)) {
    svg.append(s('text', { x: X(v), y: H - 8, class: 'tick', 'text-anchor': 'middle' }, Number(v.toPrecision(6))));
  }
  svg.append(s('polyline', { points: pts.map(([x, y]) => `${X(x).toFixed(1)},${Y(y).toFixed(1)}`).join(' '), class: 'line' }));
  if (pts.length <= 60) for (const [x, y] of pts) svg.append(s('circle', { cx: X(x), cy: Y(y), r: 2.2, class: 'dot' }));
  const last = pts[pts.length - 1][1];
  return h('figure', { class: 'chart-box' }, svg,
    h('figcaption', {}, h('strong', { text: name }), ` last ${Number(last.toPrecision(6))}, ${pts.length} points`));
}
