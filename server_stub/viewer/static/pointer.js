// Pointer input on the plot: hover (once per animation frame), click (a short, still press)
// and the lasso (drawn on the overlay canvas while lasso mode is on).

/**
 * Listen on `el`; `pick(x, y)` maps css px to a point index (or -1), `lassoMode()` says
 * whether a drag draws a lasso; the callbacks get point indices and css px.
 */
export function bindPointer(el, overlay, { lassoMode, pick, onHover, onClick, onLasso }) {
  const local = (ev) => { const r = el.getBoundingClientRect(); return [ev.clientX - r.left, ev.clientY - r.top]; };
  let down = null;
  let lasso = null;
  let hoverQueued = false;
  let lastMove = null;
  el.addEventListener('pointerdown', (ev) => {
    if (ev.button !== 0) return;
    down = { xy: local(ev), t: performance.now() };
    if (lassoMode()) {
      lasso = [down.xy];
      el.setPointerCapture(ev.pointerId);
      ev.preventDefault();
    }
  });
  el.addEventListener('pointermove', (ev) => {
    const xy = local(ev);
    if (lasso) {
      const last = lasso[lasso.length - 1];
      if (Math.hypot(xy[0] - last[0], xy[1] - last[1]) >= 2) { lasso.push(xy); drawLasso(overlay, lasso); }
      return;
    }
    if (ev.buttons) { onHover(-1, xy); return; }
    lastMove = xy;
    if (!hoverQueued) {
      hoverQueued = true;
      requestAnimationFrame(() => { hoverQueued = false; if (lastMove) onHover(pick(lastMove[0], lastMove[1]), lastMove); });
    }
  });
  el.addEventListener('pointerleave', () => { lastMove = null; if (!lasso) onHover(-1, null); });
  el.addEventListener('pointerup', (ev) => {
    const xy = local(ev);
    if (lasso) {
      lasso.push(xy);
      const poly = lasso;
      lasso = null;
      drawLasso(overlay, null);
      if (poly.length >= 3) onLasso(poly, ev.shiftKey || ev.ctrlKey || ev.metaKey);
      down = null;
      return;
    }
    if (down && Math.hypot(xy[0] - down.xy[0], xy[1] - down.xy[1]) < 5 && performance.now() - down.t < 700) {
      onClick(pick(xy[0], xy[1]), xy, ev);
    }
    down = null;
  });
}

function drawLasso(overlay, poly) {
  const ctx = overlay.getContext('2d');
  ctx.clearRect(0, 0, overlay.width, overlay.height);
  if (!poly || poly.length < 2) return;
  ctx.beginPath();
  ctx.moveTo(poly[0][0], poly[0][1]);
  for (const [x, y] of poly.slice(1)) ctx.lineTo(x, y);
  ctx.closePath();
  ctx.fillStyle = 'rgba(30, 110, 230, 0.10)';
  ctx.strokeStyle = 'rgba(30, 110, 230, 0.9)';
  ctx.lineWidth = 1.5;
  ctx.setLineDash([5, 4]);
  ctx.fill();
  ctx.stroke();
}
