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
from ..runformat.files import atomic_write_bytes

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
            entry["sprite"] = {"image_path": f"{name}/sprite.png", "single_image_dim": list(tile)}
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


def _write_tensor_tsv(path: Path, vectors: np.ndarray, rows_per_chunk: int = 4096) -> None:
    """Stream the rows to a temporary file, then rename: 100k x 512 as text is hundreds of MB."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="ascii", newline="\n") as fh:
        for start in range(0, vectors.shape[0], rows_per_chunk):
            # %.9g round-trips every float32 exactly.
            np.savetxt(fh, vectors[start:start + rows_per_chunk], fmt="%.9g", delimiter="\t", newline="\n")
    os.replace(tmp, path)


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


def square_sprite(path: Path, record: dict) -> tuple[bytes, tuple[int, int]]:
    """Re-tile a stored sprite into the projector's square grid; return (png bytes, (tile_w, tile_h)).

    The grid is ceil(sqrt(n)) tiles a side, row-major; tiles shrink (keeping their aspect)
    when the sheet would pass 8192 px a side.
    """
    from PIL import Image
    n = int(record["n"])
    (tw, th), (cols, rows) = record["tile_size"], record["grid"]
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
    if "sprite" in entry:
        lines += ["  sprite {", f'    image_path: "{entry["sprite"]["image_path"]}"']
        lines += [f"    single_image_dim: {int(s)}" for s in entry["sprite"]["single_image_dim"]]
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"
