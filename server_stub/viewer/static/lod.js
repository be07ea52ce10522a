// Level of detail for large sets: above LOD_MIN points, the vertices are drawn through a
// shuffled index, so frames drawn while the camera moves show a uniform random subset
// (software GL draws a few hundred thousand points, or far fewer thumbnails, per second);
// the full set is drawn once the camera has rested for LOD_REST_MS.

export const LOD_MIN = 50000;
export const LOD_DRAWN = 200000;
export const LOD_DRAWN_SPRITES = 25000;
export const LOD_REST_MS = 250;

/** A seeded random permutation of 0..n-1 (so any prefix is a uniform sample). */
export function shuffledIndex(n) {
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
