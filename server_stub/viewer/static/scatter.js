// The WebGL scatter plot: one three.js point shader draws coloured discs or sprite-atlas
// thumbnails, in 2D (orthographic camera) and 3D (perspective camera) from one code path.
// Hover, click and lasso use a CPU-side grid index over the projected points.
import * as THREE from './vendor/three.bundle.min.js';

// Flag bits per point (a Uint8 attribute): kept in sync with the shader below.
export const FLAG_SELECTED = 1;
export const FLAG_NEIGHBOR = 2;
export const FLAG_QUERY = 4;
export const FLAG_DIMMED = 8;

const VERTEX = /* glsl */ `
attribute vec3 position2;
attribute vec4 aColor;
attribute float aFlags;
uniform float uMix;
uniform float uSize;
uniform float uSpriteSize;
uniform float uPixelRatio;
uniform float uAtten;
uniform float uPerspective;
uniform float uSprite;
uniform float uSelActive;
uniform vec2 uGrid;
varying vec4 vColor;
varying vec2 vTile;
varying float vFlags;
void main() {
  vec3 p = mix(position, position2, uMix);
  vec4 mv = modelViewMatrix * vec4(p, 1.0);
  gl_Position = projectionMatrix * mv;
  int f = int(aFlags + 0.5);
  bool sel = (f & 1) != 0;
  bool hl = (f & 6) != 0;
  bool dim = (f & 8) != 0;
  float s = uSprite > 0.5 ? uSpriteSize : uSize;
  if (hl) s *= 2.2; else if (sel && uSprite < 0.5) s *= 1.6;
  if (uPerspective > 0.5) s *= uAtten / max(-mv.z, 1e-3);
  gl_PointSize = max(s * uPixelRatio, 1.0);
  vColor = aColor;
  if (dim) vColor = vec4(mix(aColor.rgb, vec3(0.62), 0.75), 0.10);
  else if (uSelActive > 0.5 && !sel && !hl) vColor.a *= 0.35;
  vFlags = float(f);
  int cols = max(int(uGrid.x + 0.5), 1);
  vTile = vec2(float(gl_VertexID % cols), float(gl_VertexID / cols));
  // highlighted points are drawn in front of the rest in 2D
  if (hl && uPerspective < 0.5) gl_Position.z = -0.9 * gl_Position.w;
  else if (sel && uPerspective < 0.5) gl_Position.z = -0.5 * gl_Position.w;
}
`;

const FRAGMENT = /* glsl */ `
uniform sampler2D uAtlas;
uniform vec2 uTileUV;
uniform float uSprite;
varying vec4 vColor;
varying vec2 vTile;
varying float vFlags;
void main() {
  vec2 pc = gl_PointCoord;
  int f = int(vFlags + 0.5);
  bool hl = (f & 6) != 0;
  bool sel = (f & 1) != 0;
  if (uSprite > 0.5) {
    float b = (hl || sel) ? 0.14 : 0.08;
    if (pc.x < b || pc.x > 1.0 - b || pc.y < b || pc.y > 1.0 - b) {
      gl_FragColor = vec4(hl ? vec3(0.05) : vColor.rgb, vColor.a);
    } else {
      vec2 q = (pc - b) / (1.0 - 2.0 * b);
      vec4 t = texture2D(uAtlas, (vTile + q) * uTileUV);
      gl_FragColor = vec4(t.rgb, max(t.a, 0.0) * vColor.a);
    }
  } else {
    vec2 d = pc - 0.5;
    float r2 = dot(d, d);
    if (r2 > 0.25) discard;
    vec3 c = vColor.rgb;
    if (hl && r2 > 0.10) c = vec3(0.05);
    else if (sel && r2 > 0.14) c = vec3(0.0);
    gl_FragColor = vec4(c, vColor.a);
  }
}
`;

const CELL = 12; // px per cell of the screen-space grid index
// Above LOD_MIN points, frames drawn while the camera moves show a random subset of them
// (software GL draws a few hundred thousand points, or far fewer thumbnails, per second);
// the full set is drawn once the camera rests.
const LOD_MIN = 50000;
const LOD_DRAWN = 200000;
const LOD_DRAWN_SPRITES = 25000;
const LOD_REST_MS = 250;

export class Scatter {
  constructor(container, { onHover, onClick, onLasso, onCameraChange } = {}) {
    this.container = container;
    this.onHover = onHover || (() => {});
    this.onClick = onClick || (() => {});
    this.onLasso = onLasso || (() => {});
    this.onCameraChange = onCameraChange || (() => {});
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
    this.frames = 0;
    this.spriteOn = false;
    this.lassoMode = false;
    this._projDirty = true;
    this._renderQueued = false;
    this._afterRender = [];
    this.material = new THREE.ShaderMaterial({
      vertexShader: VERTEX,
      fragmentShader: FRAGMENT,
      transparent: true,
      depthTest: false,
      depthWrite: false,
      uniforms: {
        uMix: { value: 0 }, uSize: { value: 4 }, uSpriteSize: { value: 28 },
        uPixelRatio: { value: this.renderer.getPixelRatio() }, uAtten: { value: 1 },
        uPerspective: { value: 0 }, uSprite: { value: 0 }, uSelActive: { value: 0 },
        uGrid: { value: new THREE.Vector2(1, 1) }, uTileUV: { value: new THREE.Vector2(1, 1) },
        uAtlas: { value: null },
      },
    });
    this._resize();
    this._warmUp();
    this._ro = new ResizeObserver(() => this._resize());
    this._ro.observe(container);
    this._bindPointer();
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
    this.colors = new Uint8Array(n * 4).fill(255);
    for (let i = 0; i < n; i++) { this.colors[i * 4] = 70; this.colors[i * 4 + 1] = 110; this.colors[i * 4 + 2] = 190; }
    this.colorAttr = new THREE.BufferAttribute(this.colors, 4, true);
    g.setAttribute('aColor', this.colorAttr);
    this.flags = new Uint8Array(n);
    this.flagAttr = new THREE.BufferAttribute(this.flags, 1, false);
    g.setAttribute('aFlags', this.flagAttr);
    if (n > LOD_MIN) g.setIndex(new THREE.BufferAttribute(shuffledIndex(n), 1));
    g.setDrawRange(0, n);
    this.geometry = g;
    this.points = new THREE.Points(g, this.material);
    this.points.frustumCulled = false; // bounds are ours (2D data would fool three's sphere)
    this.group.add(this.points);
    this._fitTransform(positions, n);
    this.setDims(dims, true);
  }

  _fitTransform(p, n) {
    const lo = [Infinity, Infinity, Infinity];
    const hi = [-Infinity, -Infinity, -Infinity];
    for (let i = 0; i < n; i++) {
      for (let k = 0; k < 3; k++) {
        const v = p[i * 3 + k];
        if (v < lo[k]) lo[k] = v;
        if (v > hi[k]) hi[k] = v;
      }
    }
    if (!(n > 0)) { lo.fill(0); hi.fill(0); }
    const span = Math.max(hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2]) || 1;
    const s = 2 / span;
    this.group.scale.setScalar(s);
    this.group.position.set(-(lo[0] + hi[0]) / 2 * s, -(lo[1] + hi[1]) / 2 * s, -(lo[2] + hi[2]) / 2 * s);
    this.group.updateMatrixWorld(true);
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

  colorsChanged() { this.colorAttr.needsUpdate = true; this.requestRender(); }

  flagsChanged(selectionActive) {
    this.flagAttr.needsUpdate = true;
    this.material.uniforms.uSelActive.value = selectionActive ? 1 : 0;
    this.requestRender();
  }

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
    this.spriteOn = !!(on && this.atlas);
    this.material.uniforms.uSprite.value = this.spriteOn ? 1 : 0;
    this.requestRender();
  }

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
    if (dims === 3) {
      this.camera = new THREE.PerspectiveCamera(50, w / h, 0.01, 100);
      this.camera.position.set(0.9, 0.7, 2.95); // a slight tilt shows depth at once
      this.material.uniforms.uAtten.value = this.camera.position.length();
      this.material.uniforms.uPerspective.value = 1;
      this.material.depthTest = true;
      this.material.depthWrite = true;
    } else {
      const half = 1.1;
      this.camera = new THREE.OrthographicCamera(-half * w / h, half * w / h, half, -half, -10, 10);
      this.camera.position.set(0, 0, 5);
      this.material.uniforms.uPerspective.value = 0;
      this.material.depthTest = false;
      this.material.depthWrite = false;
    }
    this.material.needsUpdate = true;
    const c = new THREE.OrbitControls(this.camera, this.container);
    c.enableDamping = false;
    c.zoomToCursor = true;
    c.screenSpacePanning = true;
    if (dims === 2) {
      c.enableRotate = false;
      c.mouseButtons = { LEFT: THREE.MOUSE.PAN, MIDDLE: THREE.MOUSE.DOLLY, RIGHT: THREE.MOUSE.PAN };
      c.touches = { ONE: THREE.TOUCH.PAN, TWO: THREE.TOUCH.DOLLY_PAN };
    }
    c.enabled = !this.lassoMode;
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
    this.geometry.setDrawRange(0, Math.min(this.n, this.spriteOn ? LOD_DRAWN_SPRITES : LOD_DRAWN));
    clearTimeout(this._restTimer);
    this._restTimer = setTimeout(() => { this.geometry.setDrawRange(0, this.n); this.requestRender(); }, LOD_REST_MS);
  }

  zoomLevel() {
    if (this.dims === 2) return this.camera.zoom;
    return 3.2 / Math.max(this.camera.position.distanceTo(this.controls.target), 1e-3);
  }

  resetView() { this.setDims(this.dims, true); }

  _size() {
    const r = this.container.getBoundingClientRect();
    return { w: Math.max(1, Math.floor(r.width)), h: Math.max(1, Math.floor(r.height)) };
  }

  _resize() {
    const { w, h } = this._size();
    this.renderer.setSize(w, h, true);
    this.overlay.width = w;
    this.overlay.height = h;
    if (this.camera) {
      if (this.camera.isPerspectiveCamera) this.camera.aspect = w / h;
      else { const half = 1.1; this.camera.left = -half * w / h; this.camera.right = half * w / h; }
      this.camera.updateProjectionMatrix();
    }
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
    if (!this.camera) return;
    this.renderer.render(this.scene, this.camera);
    this.frames++;
    const waiting = this._afterRender;
    this._afterRender = [];
    for (const fn of waiting) fn();
  }

  /** Resolve once the next frame has been drawn and the GPU has finished it. */
  nextFrameDone() {
    return new Promise((resolve) => {
      this._afterRender.push(() => {
        const gl = this.renderer.getContext();
        gl.readPixels(0, 0, 1, 1, gl.RGBA, gl.UNSIGNED_BYTE, new Uint8Array(4)); // forces completion
        resolve(performance.now());
      });
      this.requestRender();
    });
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
    if (!this._projDirty && this._screen) return;
    const n = this.n;
    const e = this._mvp();
    const { w, h } = this._size();
    if (!this._screen || this._screen.length !== n * 2) {
      this._screen = new Float32Array(n * 2);
      this._depth = new Float32Array(n);
    }
    const sc = this._screen, dp = this._depth, a = this.positions, b = this.positions2, t = this.mixT;
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
      if (cw > 0 && sx >= 0 && sy >= 0 && sx < w && sy < h) {
        const c = Math.floor(sy / CELL) * cols + Math.floor(sx / CELL);
        cellOf[i] = c; counts[c + 1]++;
      } else cellOf[i] = -1;
    }
    for (let c = 0; c < cols * rows; c++) counts[c + 1] += counts[c];
    const start = counts.slice();
    const order = new Int32Array(counts[cols * rows]);
    for (let i = 0; i < n; i++) { const c = cellOf[i]; if (c >= 0) order[start[c]++] = i; }
    this._grid = { cols, rows, starts: counts, order };
    this._projDirty = false;
  }

  /** The point under (x, y) css px within `radius` px (the front-most of the nearest), or -1. */
  pick(x, y, radius = 8) {
    if (!this.n) return -1;
    this._ensureIndex();
    const { cols, rows, starts, order } = this._grid;
    const sc = this._screen, dp = this._depth;
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

  /** Indices of points whose screen position lies inside the polygon [[x, y], ...]. */
  lassoIndices(poly, accept) {
    this._ensureIndex();
    if (poly.length < 3) return [];
    let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
    for (const [x, y] of poly) { x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x); y1 = Math.max(y1, y); }
    const { cols, rows, starts, order } = this._grid;
    const sc = this._screen;
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

  // -- pointer: hover, click, lasso ------------------------------------------------------
  setLassoMode(on) {
    this.lassoMode = !!on;
    if (this.controls) this.controls.enabled = !this.lassoMode;
    this.container.classList.toggle('lasso-mode', this.lassoMode);
  }

  _local(ev) {
    const r = this.container.getBoundingClientRect();
    return [ev.clientX - r.left, ev.clientY - r.top];
  }

  _bindPointer() {
    const el = this.container;
    let down = null;
    let lasso = null;
    let hoverQueued = false;
    let lastMove = null;
    el.addEventListener('pointerdown', (ev) => {
      if (ev.button !== 0) return;
      down = { xy: this._local(ev), t: performance.now() };
      if (this.lassoMode) {
        lasso = [down.xy];
        el.setPointerCapture(ev.pointerId);
        ev.preventDefault();
      }
    });
    el.addEventListener('pointermove', (ev) => {
      const xy = this._local(ev);
      if (lasso) {
        const last = lasso[lasso.length - 1];
        if (Math.hypot(xy[0] - last[0], xy[1] - last[1]) >= 2) { lasso.push(xy); this._drawLasso(lasso); }
        return;
      }
      if (ev.buttons) { this.onHover(-1, xy); return; }
      lastMove = xy;
      if (!hoverQueued) {
        hoverQueued = true;
        requestAnimationFrame(() => { hoverQueued = false; if (lastMove) this.onHover(this.pick(lastMove[0], lastMove[1]), lastMove); });
      }
    });
    el.addEventListener('pointerleave', () => { lastMove = null; if (!lasso) this.onHover(-1, null); });
    el.addEventListener('pointerup', (ev) => {
      const xy = this._local(ev);
      if (lasso) {
        lasso.push(xy);
        const poly = lasso;
        lasso = null;
        this._drawLasso(null);
        if (poly.length >= 3) this.onLasso(poly, ev.shiftKey || ev.ctrlKey || ev.metaKey);
        down = null;
        return;
      }
      if (down && Math.hypot(xy[0] - down.xy[0], xy[1] - down.xy[1]) < 5 && performance.now() - down.t < 700) {
        this.onClick(this.pick(xy[0], xy[1]), xy, ev);
      }
      down = null;
    });
  }

  _drawLasso(poly) {
    const ctx = this.overlay.getContext('2d');
    ctx.clearRect(0, 0, this.overlay.width, this.overlay.height);
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

  /** GPU limits the sprite atlas must respect. */
  maxTextureSize() { return this.renderer.capabilities.maxTextureSize; }
}

/** A seeded random permutation of 0..n-1 (so any prefix is a uniform sample). */
function shuffledIndex(n) {
  const idx = new Uint32Array(n);
  for (let i = 0; i < n; i++) idx[i] = i;
  let seed = 0x9e3779b9;
  for (let i = n - 1; i > 0; i--) {
    seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5;
    const j = (seed >>> 0) % (i + 1);
    const t = idx[i]; idx[i] = idx[j]; idx[j] = t;
  }
  return idx;
}

function insidePolygon(x, y, poly) {
  let inside = false;
  for (let i = 0, j = poly.length - 1; i < poly.length; j = i++) {
    const xi = poly[i][0], yi = poly[i][1], xj = poly[j][0], yj = poly[j][1];
    if ((yi > y) !== (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}
