// Metadata columns from the binary answer (GET .../embeddings/{id}/columns, layout
// tracker-columns/1, server_stub/columns_binary.py): numbers are typed arrays viewed in place,
// strings come through their dictionary, so a million rows cost no JSON parsing at all.
//
// A decoded column is {name, type, values} like the JSON answer's (values[i] a number, string,
// boolean or null), plus `codes` and `table` for dictionary columns (values[i] === table[codes[i]]
// unless missing) and `missing` (Uint8Array, 1 = missing) when any cell is missing. Numeric
// columns without missing cells keep their typed array as `values`.

const LAYOUT = 'tracker-columns/1';
const TYPED = {
  float64: Float64Array, float32: Float32Array, int8: Int8Array, uint8: Uint8Array, int16: Int16Array,
  uint16: Uint16Array, int32: Int32Array, uint32: Uint32Array, int64: BigInt64Array, uint64: BigUint64Array,
  bool: Uint8Array,
};
const NONFINITE = { NaN: NaN, Infinity: Infinity, '-Infinity': -Infinity };
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

let worker = null, workerFailed = false, nextId = 0;
const waiting = new Map(); // request id → {url, resolve, reject}

/**
 * The bytes at `url`, fetched by a worker (fetcher.js): a response read on the main thread
 * waits while a large first frame is drawn; one read by a worker does not. Without a worker
 * (none, or it failed to start) the page fetches them itself.
 */
export function fetchBuffer(url) {
  url = new URL(url, location.href).href;
  if (typeof Worker === 'undefined' || workerFailed) return fetchHere(url);
  if (!worker) {
    worker = new Worker('/static/fetcher.js', { type: 'module' });
    worker.onmessage = (ev) => {
      const { id, buffer, status, error } = ev.data, w = waiting.get(id);
      waiting.delete(id);
      if (buffer) w.resolve(buffer); else w.reject(Object.assign(new Error(error), { status }));
    };
    worker.onerror = () => { // the worker did not start: what it was asked for is fetched here
      workerFailed = true;
      for (const w of waiting.values()) fetchHere(w.url).then(w.resolve, w.reject);
      waiting.clear();
    };
  }
  const id = nextId++;
  return new Promise((resolve, reject) => {
    waiting.set(id, { url, resolve, reject });
    worker.postMessage({ id, url });
  });
}

/** The bytes at `url`, fetched by this thread; an error answer throws with its status and message. */
export async function fetchHere(url) {
  const resp = await fetch(url);
  if (!resp.ok) {
    let message = resp.statusText;
    try { message = (await resp.json()).error || message; } catch (_) { /* not JSON */ }
    throw Object.assign(new Error(`${resp.status}: ${message}`), { status: resp.status });
  }
  return resp.arrayBuffer();
}

/** The answer's header and columns: {n, scores, available: [names], columns: [column, ...]}. */
export function decodeColumns(buffer) {
  if (!LITTLE_ENDIAN) throw new Error('binary columns need a little-endian machine');
  const head = new Uint8Array(buffer, 0, Math.min(8, buffer.byteLength));
  if (String.fromCharCode(...head.subarray(0, 4)) !== 'TCOL') throw new Error('the columns answer is not tracker-columns data');
  const size = new DataView(buffer).getUint32(4, true);
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 8, size)));
  if (header.layout !== LAYOUT) throw new Error(`columns layout ${header.layout} is not ${LAYOUT}`);
  const base = 8 + size;
  const view = (ref) => new TYPED[ref.dtype](buffer, base + ref.offset, ref.length);
  return {
    n: header.n, scores: header.scores, available: header.available || null,
    columns: header.columns.map((c) => decodeColumn(c, view, header.n)),
  };
}

function decodeColumn(spec, view, n) {
  const col = { name: spec.name, type: spec.type };
  const missing = spec.missing ? view(spec.missing) : null;
  let values;
  if (spec.encoding === 'plain') {
    const raw = view(spec.values);
    if (spec.values.dtype === 'bool') values = Array.from(raw, (x) => x === 1);
    else if (raw instanceof BigInt64Array || raw instanceof BigUint64Array) values = Float64Array.from(raw, Number);
    else values = raw;
  } else {
    const table = spec.encoding === 'dictionary' ? decodeStrings(view(spec.dictionary.offsets), view(spec.dictionary.data))
      : spec.dictionary.values.map(fromJsonCell);
    const codes = view(spec.codes);
    values = new Array(n);
    for (let i = 0; i < n; i++) values[i] = table[codes[i]];
    col.codes = codes;
    col.table = table;
  }
  if (missing) {
    if (!Array.isArray(values)) values = Array.from(values);
    for (let i = 0; i < n; i++) if (missing[i]) values[i] = null;
    col.missing = missing;
  }
  col.values = values;
  return col;
}

/**
 * The dictionary's strings: UTF-8 text back to back with byte offsets (count + 1). One
 * TextDecoder call for all of them, then slices at the UTF-16 positions of the byte offsets.
 */
function decodeStrings(offsets, data) {
  const count = offsets.length - 1, out = new Array(Math.max(0, count));
  const text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(data);
  if (text.length === data.length) { // ASCII: byte offsets are string positions
    for (let k = 0; k < count; k++) out[k] = text.slice(Number(offsets[k]), Number(offsets[k + 1]));
    return out;
  }
  let b = 0, u = 0; // byte position, and the UTF-16 position it falls on
  for (let k = 0; k < count; k++) {
    const start = u, end = Number(offsets[k + 1]);
    for (; b < end; b++) {
      const x = data[b];
      if ((x & 0xc0) !== 0x80) u += x >= 0xf0 ? 2 : 1; // a lead byte: one UTF-16 unit, two past U+FFFF
    }
    out[k] = text.slice(start, u);
  }
  return out;
}

function fromJsonCell(v) {
  if (Array.isArray(v)) return v.map(fromJsonCell);
  if (v && typeof v === 'object') {
    if ('float' in v) return NONFINITE[v.float];
    const out = {};
    for (const [k, x] of Object.entries(v.map)) out[k] = fromJsonCell(x);
    return out;
  }
  return v;
}
