"""Export a run's embeddings in the format the TensorBoard projector loads.

Layout of OUT_DIR (the projector reads it as run ``.`` with ``tensorboard --logdir OUT_DIR``)::

    projector_config.pbtxt          one ``embeddings { ... }`` block per embedding and step
    <tensor_name>/tensors.tsv       float32 values as text, one row per line
    <tensor_name>/metadata.tsv      labels and metadata columns (incl. analysis scores)
    <tensor_name>/sprite.png        square grid of thumbnails, at most 8192 px a side

Why these choices: the projector reads raw float32 only when a file is not valid UTF-8,
which some float data is, so TSV is the one safe tensor format; its metadata parser takes a
first line with a tab as a header and drops blank lines (so a blank label would drop a point
and shift every later one), and it resolves every path inside the config's directory (so
files are copied, never symlinked).
"""

from __future__ import annotations

import io
import logging
import math
import os
import re
from pathlib import Path

import numpy as np

from ..errors import InvalidArgumentError
from ..runformat import open_run
from ..runformat.files import atomic_write_bytes, fsync_dir
from ..runformat.records import SpriteRef

log = logging.getLogger("tracker_sdk")

CONFIG_NAME = "projector_config.pbtxt"
MAX_SPRITE_SIDE = 8192
BLANK_LABEL = "(blank)"
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
_ESCAPES = str.maketrans({"\t": "\\t", "\n": "\\n", "\r": "\\r"})


def export_tensorboard(run_dir, out_dir, *, embeddings=None) -> Path:
    """Write the embeddings of the run at ``run_dir`` into ``out_dir`` for the TensorBoard projector.

    Parameters
    ----------
    run_dir : path
        A run directory (``<root>/<project>/<run_id>``).
    out_dir : path
        Created if missing; an earlier export there is overwritten.
    embeddings : list of str, optional
        Embedding ids to export; default all.

    Returns
    -------
    Path of the written ``projector_config.pbtxt``. View with
    ``tensorboard --logdir OUT_DIR`` (Projector tab).
    """
    run = open_run(run_dir)
    chosen = run.embeddings if embeddings is None else [run.embedding(e) for e in embeddings]
    if not chosen:
        raise InvalidArgumentError(f"run {run.path} has no embeddings to export")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = tensor_names(chosen)
    blocks = []
    for emb, name in zip(chosen, names):
        folder = out / name
        folder.mkdir(exist_ok=True)
        _write_tensor_tsv(folder / "tensors.tsv", emb.vectors)
        entry = {"tensor_name": name, "tensor_path": f"{name}/tensors.tsv", "tensor_shape": [emb.n, emb.dim]}
        columns = emb.metadata["columns"]
        if columns:
            atomic_write_bytes(folder / "metadata.tsv", metadata_tsv(columns, emb.n).encode("utf-8"))
            entry["metadata_path"] = f"{name}/metadata.tsv"
        if emb.sprite:
            png, tile = square_sprite(emb.sprite_path(), emb.sprite)
            atomic_write_bytes(folder / "sprite.png", png)
            entry["sprite_image"] = {"image_path": f"{name}/sprite.png", "single_image_dim": list(tile)}
        blocks.append(_pbtxt_block(entry))
        log.info("tracker_sdk: exported %s (%d x %d) as %s", emb.title, emb.n, emb.dim, name)
    config = out / CONFIG_NAME
    atomic_write_bytes(config, "".join(blocks).encode("utf-8"))
    return config


def tensor_names(embeddings) -> list[str]:
    """A unique, URL-safe name per embedding: title, group and step, plus the start of its id."""
    names, seen = [], set()
    for emb in embeddings:
        parts = [_slug(emb.title) or "embedding"]
        if emb.group:
            parts.append(_slug(emb.group))
        if emb.step is not None:
            parts.append(f"step{emb.step}")
        base = "_".join(p for p in parts if p)
        name = f"{base}_{emb.id[:8]}"
        if name in seen:  # same title, group, step and id prefix: the full id settles it
            name = f"{base}_{emb.id}"
        seen.add(name)
        names.append(name)
    return names


def _slug(text) -> str:
    return _UNSAFE.sub("-", str(text or "")).strip("-")[:40]


def _write_tensor_tsv(path: Path, vectors: np.ndarray, values_per_chunk: int = 1 << 12) -> None:
    """Stream the rows as text to a temporary file, fsync it, then rename (100k x 512 is ~700 MB).

    Small chunks keep every temporary of :func:`float32_text` in the CPU cache (2x faster).
    """
    tmp = path.with_name(path.name + ".tmp")
    rows_per_chunk = max(1, values_per_chunk // max(1, vectors.shape[1]))
    try:
        with open(tmp, "wb") as fh:
            for start in range(0, vectors.shape[0], rows_per_chunk):
                fh.write(float32_text(np.asarray(vectors[start:start + rows_per_chunk])))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def _lookup_tables():
    """Byte tables for :func:`float32_text` (little-endian words of ASCII)."""
    four = np.arange(10_000)
    chars = np.stack([four // 1000, four // 100 % 10, four // 10 % 10, four % 10], axis=1).astype(np.uint8) + ord("0")
    digits4 = chars.view("<u4")[:, 0].astype(np.uint64)
    zeros4 = np.zeros(10_000, np.uint8)  # trailing zero digits of the zero-padded four digits
    for k in (1, 2, 3, 4):
        zeros4[four % 10 ** k == 0] = k
    keep = np.array([(1 << (8 * (8 - t))) - 1 if t else (1 << 64) - 1 for t in range(9)], np.uint64)
    exponents = np.array([int.from_bytes(f"e{e:+03d}\t".encode(), "little") for e in range(-64, 64)], np.uint64)
    powers = 10.0 ** np.arange(-64, 64)  # float32 exponents span -45..38
    return digits4, zeros4, keep, exponents, powers


_DIGITS4, _ZEROS4, _KEEP, _EXPONENTS, _POWERS = _lookup_tables()


def float32_text(rows: np.ndarray) -> bytes:
    """Tab-separated lines of float32 values that parse back to exactly the same float32.

    Nine significant digits in scientific notation (trailing zeros dropped) always round-trip
    a float32; the characters come from table look-ups on whole arrays, several times faster
    than one ``"%.9g" %`` per value. Zero is ``0``, non-finite values ``nan``, ``inf``, ``-inf``.
    """
    rows = np.asarray(rows, dtype=np.float32)
    n, d = rows.shape
    with np.errstate(invalid="ignore"):
        x = rows.astype(np.float64).ravel()
    a = np.abs(x)
    finite = np.isfinite(a)
    zero = a == 0
    safe = np.where(finite & ~zero, a, 1.0)
    exp = np.floor(np.log10(safe)).astype(np.int64)
    mant = np.rint(safe * _POWERS[8 - exp + 64])
    for _ in range(2):  # log10 can be one off next to a power of ten
        for fix, step in ((mant >= 1e9, 1), (mant < 1e8, -1)):
            if fix.any():
                exp[fix] += step
                mant[fix] = np.rint(safe[fix] * _POWERS[8 - exp[fix] + 64])
    m = mant.astype(np.int64)
    first, rest = np.divmod(m, 100_000_000)
    middle, last = np.divmod(rest, 10_000)
    trailing = np.where(last == 0, 4 + _ZEROS4[middle], _ZEROS4[last])
    # two 8-byte words a value, [sign, digit, point, f1..f5] [f6..f8, "e", sign, two digits, separator];
    # unused bytes stay 0 and are dropped at the end
    fraction = (_DIGITS4[middle] | _DIGITS4[last] << np.uint64(32)) & _KEEP[trailing]
    out = np.empty((n * d, 2), np.uint64)
    out[:, 0] = (np.signbit(x).astype(np.uint64) * ord("-") | (first.astype(np.uint64) + ord("0")) << np.uint64(8)
                 | (trailing < 8).astype(np.uint64) * (ord(".") << 16) | fraction << np.uint64(24))
    out[:, 1] = fraction >> np.uint64(40) | _EXPONENTS[exp + 64] << np.uint64(24)
    separator = np.uint64(ord("\t") << 56)
    if zero.any():
        out[zero, 0] = np.signbit(x[zero]).astype(np.uint64) * ord("-") | ord("0") << 8
        out[zero, 1] = separator
    for i in np.flatnonzero(~finite):
        text = "nan" if np.isnan(x[i]) else "inf" if x[i] > 0 else "-inf"
        out[i] = [int.from_bytes(text.encode(), "little"), separator]
    byte_view = out.view(np.uint8).reshape(n, d, 16)
    line_ends = byte_view[:, -1]
    line_ends[line_ends == ord("\t")] = ord("\n")  # the separator after a row's last value
    return byte_view.tobytes().translate(None, b"\0")  # one C pass that drops the padding


def _cell(value) -> str:
    if value is None:
        return ""
    text = str(value).translate(_ESCAPES)
    return text if text.strip() else BLANK_LABEL


def metadata_tsv(columns: list[dict], n: int) -> str:
    """The projector's metadata file: a header row only with several columns, one line per point.

    Tabs and line breaks inside values are escaped as ``\\t``, ``\\n``, ``\\r``; a blank text
    value, and a line that would be blank (the projector drops it, shifting every later point),
    becomes ``(blank)``; a missing value (None) stays an empty cell, which the projector reads as null.
    """
    cells = [[_cell(v) for v in c["values"]] for c in columns]
    for c, col in zip(columns, cells):
        if len(col) != n:
            raise InvalidArgumentError(f"metadata column {c['name']!r} has {len(col)} rows but the embedding has {n}")
    lines = []
    if len(columns) > 1:
        lines.append("\t".join(_cell(c["name"]) or BLANK_LABEL for c in columns))
    for row in zip(*cells):
        if not "".join(row).strip():
            row = (BLANK_LABEL,) + row[1:]
        lines.append("\t".join(row))
    return "\n".join(lines) + "\n"


def square_sprite(path: Path, record: SpriteRef) -> tuple[bytes, tuple[int, int]]:
    """Re-tile a stored sprite into the projector's square grid; return (png bytes, (tile_w, tile_h)).

    The grid is ceil(sqrt(n)) tiles a side, row-major; tiles shrink (keeping their aspect)
    when the sheet would pass 8192 px a side.
    """
    from PIL import Image
    n = record.n
    (tw, th), (cols, rows) = record.tile_size, record.grid
    side = max(1, math.ceil(math.sqrt(n)))
    scale = min(1.0, MAX_SPRITE_SIDE / (side * tw), MAX_SPRITE_SIDE / (side * th))
    ntw, nth = max(1, math.floor(tw * scale)), max(1, math.floor(th * scale))
    if side * max(ntw, nth) > MAX_SPRITE_SIDE:
        raise InvalidArgumentError(f"an embedding of {n} images cannot fit a {MAX_SPRITE_SIDE} px sprite "
                                   "even at one pixel per tile")
    with Image.open(path) as image:
        image = image.convert("RGBA")
        if image.size != (cols * tw, rows * th):
            raise InvalidArgumentError(f"sprite {path} is {image.size[0]}x{image.size[1]} px but its record says "
                                       f"{cols}x{rows} tiles of {tw}x{th}")
        if (ntw, nth) != (tw, th):  # shrink the whole sheet: tiles stay aligned on the new grid
            image = image.resize((cols * ntw, rows * nth), Image.Resampling.BOX)
        sheet = np.asarray(image)
    tiles = sheet.reshape(rows, nth, cols, ntw, 4).transpose(0, 2, 1, 3, 4).reshape(rows * cols, nth, ntw, 4)[:n]
    grid = np.zeros((side * side, nth, ntw, 4), dtype=np.uint8)
    grid[:n] = tiles
    square = grid.reshape(side, side, nth, ntw, 4).transpose(0, 2, 1, 3, 4).reshape(side * nth, side * ntw, 4)
    buffer = io.BytesIO()
    Image.fromarray(square, "RGBA").save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue(), (ntw, nth)


def _pbtxt_block(entry: dict) -> str:
    """One ``embeddings`` message in protobuf text format (all our strings are URL-safe)."""
    lines = ["embeddings {", f'  tensor_name: "{entry["tensor_name"]}"', f'  tensor_path: "{entry["tensor_path"]}"']
    lines += [f"  tensor_shape: {int(s)}" for s in entry["tensor_shape"]]
    if "metadata_path" in entry:
        lines.append(f'  metadata_path: "{entry["metadata_path"]}"')
    if "sprite_image" in entry:
        lines += ["  sprite {", f'    image_path: "{entry["sprite_image"]["image_path"]}"']
        lines += [f"    single_image_dim: {int(s)}" for s in entry["sprite_image"]["single_image_dim"]]
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"
