"""Metadata columns as typed binary arrays: what the viewer loads instead of a JSON document.

A million rows of labels and numbers are tens of megabytes of JSON that the browser must parse
on its main thread; as typed arrays they are a few megabytes it views in place. One answer
holds any chosen columns of an embedding (``?name=`` repeated; all without it) and, with
``?reduction=<id>``, that projection's own columns (``trust_point``, ...) merged the way the
JSON answers are (a projection's column replaces the embedding's of the same name and goes
last) with its global scores in the header.

Layout ``tracker-columns/1``, every number little-endian::

    bytes 0..3     b"TCOL"
    bytes 4..7     uint32 H, the length of the JSON header (space-padded: buffers start 8-aligned)
    bytes 8..8+H   the header, UTF-8 JSON
    then buffers   each starting at a multiple of 8 bytes

    header  {"layout": "tracker-columns/1", "n": rows, "scores": {...} | null,
             "available": [every column name this answer could hold], "columns": [column, ...]}
    column  {"name", "type" (as stored: str, int, float, bool, mixed), "encoding", "missing", "missing_count", ...}
    buffer  {"offset": bytes from the end of the header (8 + H), "length": elements, "dtype": ...}

    encoding "plain"       "values": buffer of float64, int32, int64, uint64, or bool (one byte, 0/1)
    encoding "dictionary"  "codes": buffer (uint8, uint16 or int32) into "dictionary":
                           {"count", "offsets": buffer (int32/int64, count + 1 byte offsets),
                            "data": buffer (uint8, the values' UTF-8 text back to back)}
    encoding "json"        "codes" as above into "dictionary": {"count", "values": [cell, ...]},
                           JSON cells; a non-finite float is {"float": "NaN" | "Infinity" | "-Infinity"},
                           a map {"map": {...}}

``missing`` is a uint8 buffer (1 = the cell is missing) or null when no cell is; a missing
cell's slot holds NaN (floats) or 0 (everything else). Columns are encoded by the types their
cells actually have, whatever the blob declares: strings as a dictionary, ints, floats and
bools as plain arrays, anything else (mixed cells, ints past 64 bits) as a JSON dictionary.
Floats keep infinities (the JSON answer can only say null for them).
"""

from __future__ import annotations

import json
import math
import struct
import weakref

import numpy as np
from starlette.responses import Response

from .errors import NotFound, Unprocessable
from .security import json_bytes

LAYOUT = "tracker-columns/1"
MAGIC = b"TCOL"
MEDIA_TYPE = "application/vnd.tracker.columns"
ALIGN = 8
_INT32 = np.iinfo(np.int32)
_NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}

# encoded columns of the embeddings and projections the store holds now (they are immutable
# while held: new columns records make a new Run, hence new objects); keyed weakly, so they go
# with the store's run cache
_ENCODED: weakref.WeakKeyDictionary[object, dict] = weakref.WeakKeyDictionary()


class _Buffers:
    """The buffers of one answer, laid out back to back at 8-aligned offsets (relative until placed)."""

    def __init__(self):
        self.parts: list[np.ndarray] = []
        self.size = 0

    def add(self, array: np.ndarray) -> dict:
        array = np.ascontiguousarray(array)
        if array.dtype.byteorder == ">":
            array = array.astype(array.dtype.newbyteorder("<"))
        ref = {"offset": self.size, "length": int(array.size), "dtype": array.dtype.name}
        self.parts.append(array)
        self.size += -(-array.nbytes // ALIGN) * ALIGN
        return ref


def _codes_dtype(count: int):
    return np.uint8 if count <= 0xFF else np.uint16 if count <= 0xFFFF else np.int32


def _missing_mask(values: list, candidates: np.ndarray | None = None) -> np.ndarray:
    """uint8 mask of the None cells (only ``candidates`` rows are looked at when given)."""
    mask = np.zeros(len(values), np.uint8)
    rows = range(len(values)) if candidates is None else candidates.tolist()
    for i in rows:
        if values[i] is None:
            mask[i] = 1
    return mask


def _plain_numbers(values: list, kinds: set):
    """(values array, missing mask or None) for cells that are all ints, or all floats (None aside);
    None when ints do not fit 64 bits."""
    has_none = type(None) in kinds
    if kinds - {type(None)} == {float}:
        array = np.array(values, dtype=np.float64)  # numpy reads None as NaN
        if not has_none:
            return array, None
        return array, _missing_mask(values, np.flatnonzero(np.isnan(array)))
    cells = [0 if v is None else v for v in values] if has_none else values
    try:
        array = np.array(cells, dtype=np.int64)
    except OverflowError:
        try:
            array = np.array(cells, dtype=np.uint64)
        except OverflowError:  # below -2**63 with above 2**63 - 1: no 64-bit type holds both
            return None
    if array.size and array.dtype == np.int64 and array.min() >= _INT32.min and array.max() <= _INT32.max:
        array = array.astype(np.int32)
    return array, _missing_mask(values) if has_none else None


def _dictionary(values: list) -> tuple[list, np.ndarray, np.ndarray | None]:
    """(unique values in order of appearance, codes, missing mask or None); None is never a value."""
    uniques = [v for v in dict.fromkeys(values) if v is not None]
    index = {None: -1}
    index.update(zip(uniques, range(len(uniques))))
    codes = np.fromiter(map(index.__getitem__, values), dtype=np.int32, count=len(values))
    negative, missing = codes < 0, None
    if negative.any():
        missing = negative.view(np.uint8)
        codes[negative] = 0
    return uniques, codes.astype(_codes_dtype(len(uniques)), copy=False), missing


def _json_cell(value):
    """A cell of a mixed column as JSON can hold it (what the JSON answer shows, infinities kept)."""
    if isinstance(value, float) and not math.isfinite(value):
        return {"float": "NaN" if math.isnan(value) else "Infinity" if value > 0 else "-Infinity"}
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, (list, tuple)):
        return [_json_cell(v) for v in value]
    if isinstance(value, dict):
        return {"map": {str(k): _json_cell(v) for k, v in value.items()}}
    return value


def _json_dictionary(values: list) -> tuple[list, np.ndarray, np.ndarray | None]:
    """A dictionary of JSON cells keyed by their JSON text (1, 1.0 and True stay distinct)."""
    texts = [None if v is None else json.dumps(_json_cell(v), sort_keys=True, separators=(",", ":"))
             for v in values]
    uniques, codes, missing = _dictionary(texts)
    return [json.loads(t) for t in uniques], codes, missing


def encode_column(column: dict, buffers: _Buffers) -> dict:
    """The header entry of one stored column (``{name, type, values}``), its buffers added to ``buffers``."""
    values = column["values"]
    stored_type = column.get("type")
    out = {"name": column["name"], "type": stored_type if isinstance(stored_type, str) else None}
    kinds = set(map(type, values))
    present = kinds - {type(None)}
    plain = _plain_numbers(values, kinds) if present in ({int}, {float}) else None
    if plain is not None:
        array, missing = plain
        out.update(encoding="plain", values=buffers.add(array))
    elif present == {bool}:
        missing = _missing_mask(values) if type(None) in kinds else None
        flags = np.fromiter((v is True for v in values), np.bool_, len(values))
        out.update(encoding="plain", values=buffers.add(flags))
    elif present <= {str}:
        uniques, codes, missing = _dictionary(values)
        encoded = [s.encode("utf-8") for s in uniques]
        offsets = np.zeros(len(encoded) + 1, np.int64)
        np.cumsum([len(b) for b in encoded], out=offsets[1:])
        data = np.frombuffer(b"".join(encoded), np.uint8)
        offsets = offsets.astype(np.int32) if offsets[-1] <= _INT32.max else offsets
        out.update(encoding="dictionary", codes=buffers.add(codes),
                   dictionary={"count": len(uniques), "offsets": buffers.add(offsets), "data": buffers.add(data)})
    else:
        uniques, codes, missing = _json_dictionary(values)
        out.update(encoding="json", codes=buffers.add(codes), dictionary={"count": len(uniques), "values": uniques})
    out["missing"] = buffers.add(missing) if missing is not None else None
    out["missing_count"] = int(missing.sum()) if missing is not None else 0
    return out


def _encoded(owner, columns: list[dict]) -> dict:
    """``{name: (header entry, buffers)}`` of ``owner``'s columns, each encoded once while it is held."""
    cache = _ENCODED.get(owner)
    if cache is None:
        cache = _ENCODED[owner] = {}
    for column in columns:
        if column["name"] not in cache:
            buffers = _Buffers()
            cache[column["name"]] = (encode_column(column, buffers), buffers)
    return cache


def encode(n: int, parts: list[tuple[dict, _Buffers]], scores: dict | None = None,
           available: list[str] | None = None) -> bytes:
    """The whole answer: magic, header length, header, then every column's buffers, 8-aligned."""
    columns, chunks, base = [], [], 0
    for entry, buffers in parts:
        columns.append(_shifted(entry, base))
        chunks.extend(buffers.parts)
        base += buffers.size
    header = json_bytes({"layout": LAYOUT, "n": int(n), "scores": scores, "available": available, "columns": columns})
    header = header.ljust(-(-(8 + len(header)) // ALIGN) * ALIGN - 8, b" ")
    out = bytearray(MAGIC + struct.pack("<I", len(header)) + header)
    for array in chunks:
        if array.size:
            out += memoryview(array.reshape(-1)).cast("B")
        out += bytes(-len(out) % ALIGN)
    return bytes(out)


def _shifted(entry, by: int):
    """``entry`` with every buffer offset moved by ``by`` bytes."""
    if isinstance(entry, dict):
        if "offset" in entry and "dtype" in entry:
            return {**entry, "offset": entry["offset"] + by}
        return {k: _shifted(v, by) for k, v in entry.items()}
    return entry


def readable_columns(stored, what: str) -> dict:
    """``stored.metadata`` (an embedding's or a projection's columns), or 422 when its blob cannot be read."""
    try:
        return stored.metadata
    except (OSError, ValueError) as exc:
        raise Unprocessable(f"{what} is not readable: {type(exc).__name__}") from None


def answer(store, run_id: str, embedding_id: str, names: list[str], reduction_id: str | None) -> Response:
    """The binary columns answer of an embedding (and of one of its projections)."""
    emb = store.embedding(run_id, embedding_id)
    meta = readable_columns(emb, f"metadata of embedding {embedding_id}")
    sources = [(emb, meta["columns"])]
    scores = None
    if reduction_id is not None:
        red = store.reduction(run_id, reduction_id)
        if red.embedding_id != embedding_id:
            raise NotFound(f"reduction {reduction_id} is a projection of embedding {red.embedding_id}, "
                           f"not of {embedding_id}")
        sources.append((red, readable_columns(red, f"columns of reduction {reduction_id}")["columns"]))
        scores = red.trust_scores
    by_name = {}  # later sources replace earlier columns of the same name and go last
    for owner, columns in sources:
        for column in columns:
            by_name.pop(column["name"], None)
            by_name[column["name"]] = (owner, column)
    wanted = list(dict.fromkeys(names)) if names else list(by_name)
    unknown = [name for name in wanted if name not in by_name]
    if unknown:
        known = ", ".join(repr(k) for k in list(by_name)[:20]) or "none"
        raise NotFound(f"embedding {embedding_id} has no column {unknown[0]!r}; its columns: {known}")
    parts = []
    for name in wanted:
        owner, column = by_name[name]
        parts.append(_encoded(owner, [column])[name])
    return Response(encode(meta.get("n", emb.n), parts, scores, list(by_name)), media_type=MEDIA_TYPE)


def decode(body: bytes) -> dict:
    """An answer back as ``{"n", "scores", "available", "columns": [{"name", "type", "values"}]}`` with Python values
    (what the JSON answers hold, infinities kept): for API users and the tests."""
    view = memoryview(body)
    if bytes(view[:4]) != MAGIC:
        raise ValueError(f"not a {LAYOUT} answer: it starts with {bytes(view[:4])!r}, not {MAGIC!r}")
    (size,) = struct.unpack_from("<I", body, 4)
    header = json.loads(bytes(view[8:8 + size]))
    base = 8 + size

    def array(ref):
        return np.frombuffer(body, dtype=np.dtype(ref["dtype"]).newbyteorder("<"), count=ref["length"],
                             offset=base + ref["offset"])

    columns = []
    for col in header["columns"]:
        missing = array(col["missing"]).astype(bool) if col["missing"] else None
        if col["encoding"] == "plain":
            raw = array(col["values"])
            values = raw.tolist()
        else:
            d = col["dictionary"]
            if col["encoding"] == "dictionary":
                offsets, data = array(d["offsets"]).tolist(), bytes(array(d["data"]))
                table = [data[offsets[k]:offsets[k + 1]].decode("utf-8") for k in range(d["count"])]
            else:
                table = [_from_json_cell(v) for v in d["values"]]
            values = [table[c] for c in array(col["codes"]).tolist()] if table else [None] * header["n"]
        if missing is not None:
            for i in np.flatnonzero(missing).tolist():
                values[i] = None
        columns.append({"name": col["name"], "type": col["type"], "values": values})
    return {"n": header["n"], "scores": header["scores"], "available": header["available"], "columns": columns}


def _from_json_cell(value):
    if isinstance(value, dict):
        if "float" in value:
            return _NONFINITE[value["float"]]
        return {k: _from_json_cell(v) for k, v in value["map"].items()}
    if isinstance(value, list):
        return [_from_json_cell(v) for v in value]
    return value
