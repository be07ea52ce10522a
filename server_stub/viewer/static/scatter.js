// The WebGL scatter plot: one three.js point shader draws coloured discs or sprite-atlas
// thumbnails, in 2D (orthographic camera) and 3D (perspective camera) from one code path.
// Hover, click and lasso use a CPU-side grid index over the projected points (ScreenIndex).
//
// Public API (the view uses nothing else): setData, fit, fitBounds, setPositions, positionOf,
// setColors, colors, setFlags, flags, setPointSize, setSpriteSize, setAtlas, setSpriteMode,
// spriteOn, setTrails, setDims, resetView, cameraState, setCameraState, zoomLevel, hasCamera,
// setLassoMode, lassoMode, pick, lassoIndices, onScreen, screenXY, countInRect, toScreen, requestRender,
// renderNow, nextFrameDone, frameMs, frames, drawnCount, invalidateScreenIndex,
// maxTextureSize, dispose; and boundsOf (a function) for fitting.
import * as THREE from './vendor/three.bundle.min.js';
import { LOD_DRAWN, LOD_DRAWN_SPRITES, LOD_MIN, LOD_REST_MS, shuffledIndex } from './lod.js';
import { FLAG_HIDDEN, makePointMaterial } from './shaders.js';
import { makeCamera, makeControls, setAspect } from './cameras.js';
import { bindPointer } from './pointer.js';
import { ScreenIndex } from './screenindex.js';

export { FLAG_SELECTED, FLAG_NEIGHBOR, FLAG_QUERY, FLAG_DIMMED, FLAG_HIDDEN } from './shaders.js';

/** {lo: [x, y, z], hi: [x, y, z]} of (n*3) positions, over the rows where keep(i) (all without it). */
export function boundsOf(p, n, keep = null) {
  const lo = [Infinity, Infinity, Infinity];
  const hi = [-Infinity, -Infinity, -Infinity];
  for (let i = 0; i < n; i++) {
    if (keep && !keep(i)) continue;
    for (let k = 0; k < 3; k++) {
      const v = p[i * 3 + k];
      if (v < lo[k]) lo[k] = v;
      if (v > hi[k]) hi[k] = v;
    }
  }
  if (!(lo[0] <= hi[0])) { lo.fill(0); hi.fill(0); }
  return { lo, hi };
}

export class Scatter {
  constructor(container, { onHover, onClick, onLasso, onCameraChange, onRender } = {}) {
    this.container = container;
    this.onHover = onHover || (() => {});
    this.onClick = onClick || (() => {});
    this.onLasso = onLasso || (() => {});
    this.onCameraChange = onCameraChange || (() => {});
    this.onRender = onRender || (() => {});
    this.renderer = new THREE.WebGLRenderer({ antialias: false, alpha: false, powerPreference: 'high-performance' });
    this.renderer.setPixelRatio(Math.min(window.devicePixelRatio || 1, 2));
    this.renderer.setClearColor(0xffffff, 1);
    this.canvas = this.renderer.domElement;
    this.canvas.classList.add('scatter-canvas');
    this.overlay = document.createElement('canvas');
    this.overlay.className = 'scatter-overlay';
    container.append(this.canvas, this.overlay);
    this.scene = new THREE.Scene();
    this.group = new THREE.Group(); // carries the normalising transform of the data
    this.scene.add(this.group);
    this.n = 0;
    this.dims = 2;
    this.mixT = 0;
    this._frames = 0;
    this._spriteOn = false;
    this._lassoMode = false;
    this._index = new ScreenIndex();
    this._projDirty = true;
    this._renderQueued = false;
    this._afterRender = [];
    this.material = makePointMaterial(this.renderer.getPixelRatio());
    this._resize();
    this._warmUp();
    this._ro = new ResizeObserver(() => this._resize());
    this._ro.observe(container);
    bindPointer(container, this.overlay, {
      lassoMode: () => this._lassoMode,
      pick: (x, y) => this.pick(x, y),
      onHover: (i, xy) => this.onHover(i, xy),
      onClick: (i, xy, ev) => this.onClick(i, xy, ev),
      onLasso: (poly, add) => this.onLasso(poly, add),
    });
  }

  /** Compile the shader and draw one point while the data is still downloading. */
  _warmUp() {
    const g = new THREE.BufferGeometry();
    g.setAttribute('position', new THREE.BufferAttribute(new Float32Array(3), 3));
    g.setAttribute('position2', g.getAttribute('position'));
    g.setAttribute('aColor', new THREE.BufferAttribute(new Uint8Array(4), 4, true));
    g.setAttribute('aFlags', new THREE.BufferAttribute(new Uint8Array(1), 1, false));
    const p = new THREE.Points(g, this.material);
    p.frustumCulled = false;
    const scene = new THREE.Scene();
    scene.add(p);
    for (const cam of [new THREE.OrthographicCamera(-1, 1, 1, -1, -10, 10), new THREE.PerspectiveCamera(50, 1, 0.01, 100)]) {
      this.material.uniforms.uPerspective.value = cam.isPerspectiveCamera ? 1 : 0;
      this.renderer.render(scene, cam);
    }
    this.material.uniforms.uPerspective.value = 0;
    g.dispose();
  }

  // -- data ------------------------------------------------------------------------------
  /** positions: Float32Array (n*3) in data units; the view is fitted to their bounds. */
  setData(positions, n, dims) {
    this.n = n;
    this.positions = positions;
    this.positions2 = positions;
    if (this.points) { this.group.remove(this.points); this.geometry.dispose(); }
    const g = new THREE.BufferGeometry();
    this.posAttr = new THREE.BufferAttribute(positions, 3);
    this.pos2Attr = this.posAttr;
    g.setAttribute('position', this.posAttr);
    g.setAttribute('position2', this.pos2Attr);
    this._colors = new Uint8Array(n * 4).fill(255);
    for (let i = 0; i < n; i++) { this._colors[i * 4] = 70; this._colors[i * 4 + 1] = 110; this._colors[i * 4 + 2] = 190; }
    this.colorAttr = new THREE.BufferAttribute(this._colors, 4, true);
    g.setAttribute('aColor', this.colorAttr);
    this._flags = new Uint8Array(n);
    this.flagAttr = new THREE.BufferAttribute(this._flags, 1, false);
    g.setAttribute('aFlags', this.flagAttr);
    if (n > LOD_MIN) g.setIndex(new THREE.BufferAttribute(shuffledIndex(n), 1));
    g.setDrawRange(0, n);
    this.geometry = g;
    this.points = new THREE.Points(g, this.material);
    this.points.frustumCulled = false; // bounds are ours (2D data would fool three's sphere)
    this.group.add(this.points);
    this.fit();
    this.setDims(dims, true);
  }

  /** Scale and centre the drawing so that the current positions fill the view. */
  fit() {
    const { lo, hi } = boundsOf(this.positions, this.n);
    this.fitBounds(lo, hi);
  }

  /** Scale and centre the drawing so that the box lo..hi (data units) fills the view. */
  fitBounds(lo, hi) {
    const span = Math.max(hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2]) || 1;
    const s = 2 / span;
    this.group.scale.setScalar(s);
    this.group.position.set(-(lo[0] + hi[0]) / 2 * s, -(lo[1] + hi[1]) / 2 * s, -(lo[2] + hi[2]) / 2 * s);
    this.group.updateMatrixWorld(true);
    this._projDirty = true;
    this.requestRender();
  }

  /** Interpolate between two position arrays of the same length (the step slider). */
  setPositions(p1, p2, t) {
    if (p1 !== this.positions) {
      this.positions = p1;
      this.posAttr = new THREE.BufferAttribute(p1, 3);
      this.geometry.setAttribute('position', this.posAttr);
    }
    if (p2 !== this.positions2) {
      this.positions2 = p2;
      this.pos2Attr = p2 === p1 ? this.posAttr : new THREE.BufferAttribute(p2, 3);
      this.geometry.setAttribute('position2', this.pos2Attr);
    }
    this.mixT = t;
    this.material.uniforms.uMix.value = t;
    this._projDirty = true;
    this.requestRender();
  }

  /** The interpolated position of point i, in data units. */
  positionOf(i) {
    const a = this.positions, b = this.positions2, t = this.mixT;
    return [0, 1, 2].map((k) => a[i * 3 + k] + (b[i * 3 + k] - a[i * 3 + k]) * t);
  }

  /** rgba: Uint8Array (n*4), one colour per point (alpha kept from the last call). */
  setColors(rgba) {
    this._colors.set(rgba.subarray(0, this._colors.length));
    this.colorAttr.needsUpdate = true;
    this.requestRender();
  }

  /** The colours drawn now (read only: change them with setColors). */
  get colors() { return this._colors; }

  /** flags: Uint8Array (n) of FLAG_* bits; selectionActive fades the points not selected. */
  setFlags(flags, selectionActive) {
    const old = this._flags;
    for (let i = 0; i < old.length; i++) {
      if ((old[i] ^ flags[i]) & FLAG_HIDDEN) { this._projDirty = true; break; } // hidden points leave the index
    }
    this._flags.set(flags.subarray(0, this._flags.length));
    this.flagAttr.needsUpdate = true;
    this.material.uniforms.uSelActive.value = selectionActive ? 1 : 0;
    this.requestRender();
  }

  /** The flag bits drawn now (read only: change them with setFlags). */
  get flags() { return this._flags; }

  setPointSize(px) { this.material.uniforms.uSize.value = px; this.requestRender(); }
  setSpriteSize(px) { this.material.uniforms.uSpriteSize.value = px; this.requestRender(); }

  /** atlas: a canvas or ImageBitmap of the sprite; grid [cols, rows]; tileUV: one tile in uv units. */
  setAtlas(image, grid, tileUV) {
    if (this.atlas) this.atlas.dispose();
    const tex = new THREE.Texture(image);
    tex.flipY = false;
    tex.generateMipmaps = false;
    tex.minFilter = THREE.LinearFilter;
    tex.magFilter = THREE.NearestFilter;
    tex.colorSpace = THREE.NoColorSpace;
    tex.needsUpdate = true;
    this.atlas = tex;
    this.material.uniforms.uAtlas.value = tex;
    this.material.uniforms.uGrid.value.set(grid[0], grid[1]);
    this.material.uniforms.uTileUV.value.set(tileUV[0], tileUV[1]);
    this.requestRender();
  }

  setSpriteMode(on) {
    this._spriteOn = !!(on && this.atlas);
    this.material.uniforms.uSprite.value = this._spriteOn ? 1 : 0;
    this.requestRender();
  }

  /** Whether points are drawn as thumbnails now. */
  get spriteOn() { return this._spriteOn; }

  /** segments: Float32Array of xyz pairs in data units (trails of selected points), or null. */
  setTrails(segments, color = 0x333333) {
    if (this.trails) { this.group.remove(this.trails); this.trails.geometry.dispose(); this.trails = null; }
    if (segments && segments.length) {
      const g = new THREE.BufferGeometry();
      g.setAttribute('position', new THREE.BufferAttribute(segments, 3));
      this.trails = new THREE.LineSegments(g, new THREE.LineBasicMaterial({ color, transparent: true, opacity: 0.55 }));
      this.trails.frustumCulled = false;
      this.group.add(this.trails);
    }
    this.requestRender();
  }

  // -- cameras ---------------------------------------------------------------------------
  setDims(dims, reset = false) {
    if (dims === this.dims && this.controls && !reset) return;
    this.dims = dims;
    const { w, h } = this._size();
    if (this.controls) this.controls.dispose();
    this.camera = makeCamera(dims, w / h);
    const perspective = dims === 3;
    if (perspective) this.material.uniforms.uAtten.value = this.camera.position.length();
    this.material.uniforms.uPerspective.value = perspective ? 1 : 0;
    this.material.depthTest = perspective;
    this.material.depthWrite = perspective;
    this.material.needsUpdate = true;
    const c = makeControls(this.camera, this.container, dims);
    c.enabled = !this._lassoMode;
    c.addEventListener('change', () => {
      this._projDirty = true;
      this._moving();
      this.requestRender();
      this.onCameraChange();
    });
    this.controls = c;
    this._projDirty = true;
    this.requestRender();
  }

  /** While the camera moves, large sets draw a random subset; the whole set once at rest. */
  _moving() {
    if (!this.geometry || !this.geometry.index) return;
    this.geometry.setDrawRange(0, Math.min(this.n, this._spriteOn ? LOD_DRAWN_SPRITES : LOD_DRAWN));
    clearTimeout(this._restTimer);
    this._restTimer = setTimeout(() => { this.geometry.setDrawRange(0, this.n); this.requestRender(); }, LOD_REST_MS);
  }

  zoomLevel() {
    if (this.dims === 2) return this.camera.zoom;
    return 3.2 / Math.max(this.camera.position.distanceTo(this.controls.target), 1e-3);
  }

  /** The camera the plot started with (zoom, pan and rotation undone); sizes follow the zoom. */
  resetView() {
    this.setDims(this.dims, true);
    this.onCameraChange();
  }

  /** The camera as numbers (2D: x, y, zoom; 3D: position, target), in the fitted frame. */
  cameraState() {
    const c = this.camera, t = this.controls.target;
    const r = (v) => Number(v.toFixed(5));
    if (this.dims === 2) return [c.position.x, c.position.y, c.zoom].map(r);
    return [c.position.x, c.position.y, c.position.z, t.x, t.y, t.z].map(r);
  }

  /** Restore what cameraState returned (ignored when it does not fit the dimensions). */
  setCameraState(s) {
    if (!Array.isArray(s) || !s.every(Number.isFinite)) return false;
    const c = this.camera, t = this.controls.target;
    if (this.dims === 2 && s.length === 3 && s[2] > 0) {
      c.position.set(s[0], s[1], c.position.z); t.set(s[0], s[1], 0); c.zoom = s[2];
    } else if (this.dims === 3 && s.length === 6) {
      c.position.set(s[0], s[1], s[2]); t.set(s[3], s[4], s[5]);
    } else return false;
    c.updateProjectionMatrix();
    this.controls.update();
    this._projDirty = true;
    this.requestRender();
    this.onCameraChange();
    return true;
  }

  /** True once a camera exists (setData has run): zoomLevel and toScreen need one. */
  get hasCamera() { return !!this.camera; }

  _size() {
    const r = this.container.getBoundingClientRect();
    return { w: Math.max(1, Math.floor(r.width)), h: Math.max(1, Math.floor(r.height)) };
  }

  _resize() {
    const { w, h } = this._size();
    this.renderer.setSize(w, h, true);
    this.overlay.width = w;
    this.overlay.height = h;
    if (this.camera) setAspect(this.camera, w / h);
    this._projDirty = true;
    this.requestRender();
  }

  // -- drawing ---------------------------------------------------------------------------
  requestRender() {
    if (this._renderQueued) return;
    this._renderQueued = true;
    requestAnimationFrame(() => { this._renderQueued = false; this.renderNow(); });
  }

  renderNow() {
    if (!this.camera || this._disposed) return;
    this.renderer.render(this.scene, this.camera);
    this._frames++;
    this.onRender();
    const waiting = this._afterRender;
    this._afterRender = [];
    for (const fn of waiting) fn();
  }

  /** Frames drawn since the plot was made. */
  get frames() { return this._frames; }

  /** Points the last frame drew (fewer than n while a large set moves). */
  get drawnCount() {
    const g = this.geometry;
    return g ? Math.min(g.drawRange.count, g.getAttribute('position').count) : 0;
  }

  _finishGpu() {
    const gl = this.renderer.getContext();
    gl.readPixels(0, 0, 1, 1, gl.RGBA, gl.UNSIGNED_BYTE, new Uint8Array(4)); // forces completion
  }

  /** Resolve once the next frame has been drawn and the GPU has finished it. */
  nextFrameDone() {
    return new Promise((resolve) => {
      this._afterRender.push(() => { this._finishGpu(); resolve(performance.now()); });
      this.requestRender();
    });
  }

  /** Draw one frame now and wait for the GPU to finish it: milliseconds per frame. */
  frameMs() {
    const t = performance.now();
    this.renderNow();
    this._finishGpu();
    return performance.now() - t;
  }

  // -- projection and the screen-space index ---------------------------------------------
  _mvp() {
    this.camera.updateMatrixWorld();
    this.group.updateMatrixWorld();
    const m = new THREE.Matrix4();
    m.multiplyMatrices(this.camera.projectionMatrix, this.camera.matrixWorldInverse);
    m.multiply(this.group.matrixWorld);
    return m.elements;
  }

  /** Screen position (css px) of a data-space point, or null when behind the camera. */
  toScreen(x, y, z) {
    const e = this._mvp();
    const { w, h } = this._size();
    const cw = e[3] * x + e[7] * y + e[11] * z + e[15];
    if (cw <= 0) return null;
    const cx = (e[0] * x + e[4] * y + e[8] * z + e[12]) / cw;
    const cy = (e[1] * x + e[5] * y + e[9] * z + e[13]) / cw;
    return [(cx + 1) / 2 * w, (1 - cy) / 2 * h];
  }

  _ensureIndex() {
    if (!this._projDirty) return;
    const { w, h } = this._size();
    this._index.build(this.positions, this.positions2, this.mixT, this.n, this._mvp(), w, h, this._flags, FLAG_HIDDEN);
    this._projDirty = false;
  }

  /** Forget the screen positions: the next pick or lasso projects every point again. */
  invalidateScreenIndex() { this._projDirty = true; }

  /** The point under (x, y) css px within `radius` px (the front-most of the nearest), or -1. */
  pick(x, y, radius = 8) {
    if (!this.n) return -1;
    this._ensureIndex();
    return this._index.pick(x, y, radius);
  }

  /** Indices of the drawn points inside the plot, or null when more than `limit` are. */
  onScreen(limit) {
    if (!this.n) return [];
    this._ensureIndex();
    return this._index.onScreen(limit);
  }

  /** How many drawn points lie (about: whole 12 px cells) in a rectangle of the plot, css px. */
  countInRect(x0, y0, x1, y1) {
    if (!this.n) return 0;
    this._ensureIndex();
    return this._index.countIn(x0, y0, x1, y1);
  }

  /** Screen positions (css px) of every point, Float32Array (n*2), for the current camera. */
  screenPositions() {
    this._ensureIndex();
    return this._index.screen;
  }

  /** Screen position (css px) of point i as of the last onScreen / pick. */
  screenXY(i) { return [this._index.screen[i * 2], this._index.screen[i * 2 + 1]]; }

  /** Sorted indices of points whose screen position lies inside the polygon [[x, y], ...]. */
  lassoIndices(poly, accept) {
    this._ensureIndex();
    return this._index.inside(poly, accept);
  }

  // -- pointer: hover, click, lasso ------------------------------------------------------
  setLassoMode(on) {
    this._lassoMode = !!on;
    if (this.controls) this.controls.enabled = !this._lassoMode;
    this.container.classList.toggle('lasso-mode', this._lassoMode);
  }

  /** Whether a drag draws a lasso (else it pans or rotates). */
  get lassoMode() { return this._lassoMode; }

  /** GPU limits the sprite atlas must respect. */
  maxTextureSize() { return this.renderer.capabilities.maxTextureSize; }

  /** Release the GL context, listeners and buffers; the plot draws nothing afterwards. */
  dispose() {
    this._disposed = true;
    this._ro.disconnect();
    clearTimeout(this._restTimer);
    if (this.controls) this.controls.dispose();
    if (this.geometry) this.geometry.dispose();
    if (this.trails) this.trails.geometry.dispose();
    if (this.atlas) this.atlas.dispose();
    this.material.dispose();
    this.renderer.dispose();
  }
}
