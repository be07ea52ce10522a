// The point shaders of the scatter plot: coloured discs or sprite-atlas thumbnails, with
// per-point flag bits (selected, neighbour, query, dimmed) that the view sets.
import * as THREE from './vendor/three.bundle.min.js';

// Flag bits per point (a Uint8 attribute): kept in sync with the shader below.
export const FLAG_SELECTED = 1;
export const FLAG_NEIGHBOR = 2;
export const FLAG_QUERY = 4;
export const FLAG_DIMMED = 8;
export const FLAG_HIDDEN = 16; // not drawn, not picked (isolate selection)

export const VERTEX = /* glsl */ `
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
  if ((f & 16) != 0) { gl_Position = vec4(2.0, 2.0, 2.0, 1.0); gl_PointSize = 0.0; }
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

export const FRAGMENT = /* glsl */ `
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

/** The points' material with its uniforms at their starting values. */
export function makePointMaterial(pixelRatio) {
  return new THREE.ShaderMaterial({
    vertexShader: VERTEX,
    fragmentShader: FRAGMENT,
    transparent: true,
    depthTest: false,
    depthWrite: false,
    uniforms: {
      uMix: { value: 0 }, uSize: { value: 4 }, uSpriteSize: { value: 28 },
      uPixelRatio: { value: pixelRatio }, uAtten: { value: 1 },
      uPerspective: { value: 0 }, uSprite: { value: 0 }, uSelActive: { value: 0 },
      uGrid: { value: new THREE.Vector2(1, 1) }, uTileUV: { value: new THREE.Vector2(1, 1) },
      uAtlas: { value: null },
    },
  });
}
