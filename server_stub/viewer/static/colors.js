// Colour by a metadata column: a categorical palette with a legend, or a numeric scale.

// 20 distinguishable colours (Tableau 10 + lighter companions), then "other" in grey.
export const PALETTE = [
  [31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40], [148, 103, 189],
  [140, 86, 75], [227, 119, 194], [127, 127, 127], [188, 189, 34], [23, 190, 207],
  [174, 199, 232], [255, 187, 120], [152, 223, 138], [255, 152, 150], [197, 176, 213],
  [196, 156, 148], [247, 182, 210], [219, 219, 141], [158, 218, 229], [57, 59, 121],
];
export const OTHER = [190, 190, 190];
export const MISSING = [225, 225, 225];

// viridis, 9 stops, linearly interpolated
const VIRIDIS = [
  [68, 1, 84], [71, 44, 122], [59, 81, 139], [44, 113, 142], [33, 144, 141],
  [39, 173, 129], [92, 200, 99], [170, 220, 50], [253, 231, 37],
];

export function viridis(t) {
  if (!(t >= 0)) t = 0;
  if (t > 1) t = 1;
  const x = t * (VIRIDIS.length - 1), i = Math.min(Math.floor(x), VIRIDIS.length - 2), f = x - i;
  const a = VIRIDIS[i], b = VIRIDIS[i + 1];
  return [a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f, a[2] + (b[2] - a[2]) * f];
}

/** The text of a cell as shown and searched (null → ""). */
export function cellText(v) {
  if (v === null || v === undefined) return '';
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : String(Math.round(v * 1e6) / 1e6);
  return String(v);
}

/** Is this column drawn with a numeric colour scale (else categorical)? */
export function isNumeric(column) {
  if (column.type === 'float') return true;
  if (column.type !== 'int') return false;
  const seen = new Set();
  for (const v of column.values) { if (v !== null) { seen.add(v); if (seen.size > 30) return true; } }
  return false;
}

/**
 * Fill `out` (Uint8Array n*4, alpha untouched) with the colours of `column` (numeric on
 * `column.domain` [lo, hi] when it has one, else on its own min..max).
 * Returns the legend: {kind: 'categorical', items: [{value, color, count}]} or
 * {kind: 'numeric', min, max}.
 */
export function colorize(column, out) {
  const values = column.values, n = values.length;
  if (isNumeric(column)) {
    let lo = Infinity, hi = -Infinity;
    if (column.domain) [lo, hi] = column.domain; // a fixed scale (agreement: 0..1), comparable across views
    else for (let i = 0; i < n; i++) { const v = values[i]; if (typeof v === 'number' && Number.isFinite(v)) { if (v < lo) lo = v; if (v > hi) hi = v; } }
    const span = hi - lo || 1;
    for (let i = 0; i < n; i++) {
      const v = values[i];
      const c = typeof v === 'number' && Number.isFinite(v) ? viridis((v - lo) / span) : MISSING;
      out[i * 4] = c[0]; out[i * 4 + 1] = c[1]; out[i * 4 + 2] = c[2];
    }
    return { kind: 'numeric', min: lo, max: hi };
  }
  // each row's category as a slot: a dictionary column's code (columns.js: no text per row),
  // else the first row with its text; slots of the same text share a colour and a count
  let texts, slotOf;
  if (column.codes && column.table) {
    const codes = column.codes, miss = column.missing, none = column.table.length;
    texts = [...column.table.map(cellText), ''];
    slotOf = miss ? (i) => (miss[i] ? none : codes[i]) : (i) => codes[i];
  } else {
    const slots = new Map(), rows = new Int32Array(n);
    texts = [];
    for (let i = 0; i < n; i++) {
      const k = cellText(values[i]);
      let s = slots.get(k);
      if (s === undefined) { s = texts.length; slots.set(k, s); texts.push(k); }
      rows[i] = s;
    }
    slotOf = (i) => rows[i];
  }
  const perSlot = new Float64Array(texts.length);
  for (let i = 0; i < n; i++) perSlot[slotOf(i)]++;
  const counts = new Map();
  texts.forEach((k, s) => { if (perSlot[s]) counts.set(k, (counts.get(k) || 0) + perSlot[s]); });
  // the most frequent values get the palette (in natural order of their values, so a legend
  // of classes reads 0, 1, 2 in palette order); the rest share "other"
  const frequent = [...counts.entries()].sort((a, b) => b[1] - a[1] || naturalCompare(a[0], b[0]));
  const coloured = frequent.slice(0, PALETTE.length).sort((a, b) => naturalCompare(a[0], b[0]));
  const colorOf = new Map();
  coloured.forEach(([k], r) => colorOf.set(k, PALETTE[r]));
  const slotColour = texts.map((k) => (k === '' ? MISSING : colorOf.get(k) || OTHER));
  for (let i = 0; i < n; i++) {
    const c = slotColour[slotOf(i)];
    out[i * 4] = c[0]; out[i * 4 + 1] = c[1]; out[i * 4 + 2] = c[2];
  }
  const items = coloured.map(([value, count]) => ({ value, count, color: value === '' ? MISSING : colorOf.get(value) }));
  const rest = frequent.slice(PALETTE.length);
  if (rest.length) items.push({ value: null, label: `${rest.length} other values`, count: rest.reduce((s, e) => s + e[1], 0), color: OTHER });
  return { kind: 'categorical', items };
}

const COLLATOR = new Intl.Collator(undefined, { numeric: true, sensitivity: 'base' });

/**
 * Natural order of category values: numbers numerically (before text), text with its digit
 * runs compared as numbers ("class_2" < "class_10"), case-insensitively; '' (missing) last.
 */
export function naturalCompare(a, b) {
  if (a === b) return 0;
  if (a === '') return 1;
  if (b === '') return -1;
  const x = Number(a), y = Number(b);
  const nx = a.trim() !== '' && Number.isFinite(x), ny = b.trim() !== '' && Number.isFinite(y);
  if (nx && ny) return x - y || (a < b ? -1 : 1);
  if (nx !== ny) return nx ? -1 : 1;
  return COLLATOR.compare(a, b) || (a < b ? -1 : 1);
}

export function rgbCss(c) { return `rgb(${Math.round(c[0])}, ${Math.round(c[1])}, ${Math.round(c[2])})`; }
