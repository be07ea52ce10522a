// The scatter plot's cameras: orthographic with pan and zoom for 2D, perspective with orbit
// for 3D; both frame the data, which Scatter scales into [-1, 1].
import * as THREE from './vendor/three.bundle.min.js';

const HALF = 1.18; // half the height the 2D camera shows, in normalised data units (room for thumbnails)

const FOV = 50; // vertical field of view of a landscape 3D plot, degrees

/** Vertical fov (degrees) that keeps FOV across the narrower side of the plot. */
function fovFor(aspect) {
  if (aspect >= 1) return FOV;
  return 2 * Math.atan(Math.tan((FOV / 2) * Math.PI / 180) / aspect) * 180 / Math.PI;
}

/** Half width and half height the 2D camera shows: the data's [-1, 1] square fits either way. */
function halfExtent(aspect) {
  return aspect >= 1 ? [HALF * aspect, HALF] : [HALF, HALF / aspect];
}

export function makeCamera(dims, aspect) {
  if (dims === 3) {
    const camera = new THREE.PerspectiveCamera(fovFor(aspect), aspect, 0.01, 100);
    camera.position.set(0.9, 0.7, 2.95); // a slight tilt shows depth at once
    return camera;
  }
  const [hw, hh] = halfExtent(aspect);
  const camera = new THREE.OrthographicCamera(-hw, hw, hh, -hh, -10, 10);
  camera.position.set(0, 0, 5);
  return camera;
}

/** Orbit controls on `element`; in 2D every drag pans and the wheel zooms toward the cursor. */
export function makeControls(camera, element, dims) {
  const c = new THREE.OrbitControls(camera, element);
  c.enableDamping = false;
  c.zoomToCursor = true;
  c.screenSpacePanning = true;
  if (dims === 2) {
    c.enableRotate = false;
    c.mouseButtons = { LEFT: THREE.MOUSE.PAN, MIDDLE: THREE.MOUSE.DOLLY, RIGHT: THREE.MOUSE.PAN };
    c.touches = { ONE: THREE.TOUCH.PAN, TWO: THREE.TOUCH.DOLLY_PAN };
  }
  return c;
}

export function setAspect(camera, aspect) {
  if (camera.isPerspectiveCamera) { camera.aspect = aspect; camera.fov = fovFor(aspect); } else {
    const [hw, hh] = halfExtent(aspect);
    camera.left = -hw; camera.right = hw; camera.top = hh; camera.bottom = -hh;
  }
  camera.updateProjectionMatrix();
}
