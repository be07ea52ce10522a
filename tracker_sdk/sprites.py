"""Sprite images: many small images tiled row-major into one RGBA PNG, one tile per vector.

This module owns the sprite builder behind ``Experiment.create_embedding_image`` and the
``image_data=`` / ``image_*`` arguments of ``log_embedding``: turning the accepted input
forms into tiles, Comet's three options, the layout (grid and tile size, stored in the
embedding record so nobody guesses), the 8192 px limit, PNG encoding, and the offline
``image_url`` that lets later embeddings reuse a stored sprite.

Pixel values: ``uint8`` is taken as 0-255 and ``bool`` as 0/255; other integer types must
lie in 0-255. Floats follow Comet's rule, decided once over all the images of a call: when
every value lies in 0-1 they become ``round(v * 255)``; otherwise they must lie in 0-255 and
are taken as they are (rounded), which is what Comet's documented ``np.round(m, 0) * 2``
preprocess relies on. Anything else (negative, above 255, NaN) raises: nothing is clipped or
wrapped silently.
"""

from __future__ import annotations

import math
import numbers
import os
import re
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._convert import is_torch_tensor, to_numpy
from ._validation import _describe, check_color
from .errors import InvalidArgumentError
from .runformat.names import SHA256_PATTERN
from .runformat.records import EmbeddingRecord, SpriteRef

#: Largest sprite side in pixels: the TensorBoard projector's hard limit and a texture size
#: every browser's WebGL accepts.
MAX_SPRITE_SIDE = 8192
#: zlib level for the PNG, chosen by measurement (benchmarks/sprites.py, 10k digits): level 1
#: took 0.62 of the time of Pillow's default 6 for a file 1.47 times larger; 0 is 33x larger.
PNG_COMPRESS_LEVEL = 1
#: Prefix of the offline ``image_url`` returned by ``Experiment.create_embedding_image``.
URL_PREFIX = "tracker-sprite:"
_URL_RE = re.compile(rf"tracker-sprite:({SHA256_PATTERN})")
_CHANNELS = (1, 3, 4)
_CHUNK_PIXELS = 1 << 17  # pixels per processing chunk: keeps temporaries small and cache-friendly
_PARALLEL_PIXELS = 1 << 25  # from this many source pixels, strips are built on one thread per core (below,
# GIL hand-offs cost more than they save: 10k 28x28 tiles build faster serially, 100k twice as fast threaded)


@dataclass(frozen=True)
class Sprite:
    """A built sprite sheet.

    Attributes
    ----------
    pixels : numpy.ndarray of uint8, shape (rows * tile_h, cols * tile_w, 4)
        RGBA pixels; cells after the last tile are fully transparent.
    tile_size : (int, int)
        ``(width, height)`` of one tile, after any downscale.
    grid : (int, int)
        ``(cols, rows)``; tile ``i`` sits at column ``i % cols``, row ``i // cols``.
    n : int
        Number of tiles.
    image_size : (int, int)
        ``(width, height)`` of the images before any downscale.
    """

    pixels: np.ndarray
    tile_size: tuple
    grid: tuple
    n: int
    image_size: tuple

    def to_image(self):
        """The sprite as an RGBA ``PIL.Image`` (shares no memory with ``pixels``)."""
        from PIL import Image
        return Image.fromarray(self.pixels, "RGBA")

    def to_png(self, compress_level: int = PNG_COMPRESS_LEVEL) -> bytes:
        import io
        buffer = io.BytesIO()
        self.to_image().save(buffer, format="PNG", compress_level=compress_level)
        return buffer.getvalue()

    def tile(self, index: int) -> np.ndarray:
        """Tile ``index`` as an (tile_h, tile_w, 4) view."""
        x0, y0, x1, y1 = tile_box(index, self.tile_size, self.grid, self.n)
        return self.pixels[y0:y1, x0:x1]

    def record(self, sha256: str) -> SpriteRef:
        """The ``sprite`` field of an embedding record for this sprite stored as blob ``sha256``."""
        return SpriteRef(sha256=sha256, format="png", n=self.n, tile_size=list(self.tile_size), grid=list(self.grid))


def tile_box(index: int, tile_size, grid, n: int | None = None) -> tuple[int, int, int, int]:
    """Pixel box ``(x0, y0, x1, y1)`` of tile ``index`` in a row-major sprite."""
    (w, h), (cols, rows) = tile_size, grid
    limit = cols * rows if n is None else n
    if not 0 <= index < limit:
        raise IndexError(f"tile index {index} out of range for a sprite of {limit} tiles")
    x0, y0 = (index % cols) * w, (index // cols) * h
    return x0, y0, x0 + w, y0 + h


def parse_image_url(value) -> str | None:
    """The blob sha256 named by an ``image_url`` string, or None when ``value`` is not one."""
    if isinstance(value, str):
        match = _URL_RE.fullmatch(value)
        return match.group(1) if match else None
    return None


def image_url(sha256: str) -> str:
    return f"{URL_PREFIX}{sha256}"


@dataclass(frozen=True)
class StoredSprite:
    """A sprite already stored as a blob, named by an ``image_url``: reused, never rebuilt."""

    record: SpriteRef
    source: object  # pathlib.Path of the blob in the run that stored it


# image_url sha256 -> (sprite record, image size before downscale, blob path); process-wide so a
# url from one experiment also works in another experiment of the same process.
_STORED: dict = {}


def remember(record: SpriteRef, image_size, blob) -> None:
    _STORED[record.sha256] = (record, tuple(image_size), blob)


def resolve_image_url(url: str, *, n: int, image_size, run_dir, options=()) -> StoredSprite:
    """The stored sprite ``url`` names, checked against ``n`` vectors; raises before any write.

    Sprites made by ``create_embedding_image`` in this process are known; otherwise the
    embedding records of ``run_dir`` are searched (a resumed run reusing its own sprite).
    """
    from .runformat import blob_path, read_journal
    sha = parse_image_url(url)
    if any(option is not None for option in options):
        raise InvalidArgumentError(
            "image_preprocess_function, image_transparent_color and image_background_color_function cannot change "
            "a sprite given as an image_url (it is already built); pass them to create_embedding_image instead")
    size = _check_image_size(image_size)
    known = _STORED.get(sha)
    if known is None:
        journal = Path(run_dir) / "journal"
        for record in read_journal(journal) if journal.is_dir() else ():
            sprite = record.sprite if isinstance(record, EmbeddingRecord) else None
            if sprite is not None and sprite.sha256 == sha:
                known = (sprite, tuple(sprite.tile_size), blob_path(run_dir, sha))
                break
    if known is None:
        raise InvalidArgumentError(
            f"image_data {url!r} names no sprite made by create_embedding_image in this process or stored in this "
            "run; call create_embedding_image first and pass the image_url it returns")
    record, original, source = known
    if not (source.is_file() or blob_path(run_dir, sha).is_file()):
        raise InvalidArgumentError(f"image_data {url!r}: the sprite's blob {source} is no longer on disk")
    if record.n != n:
        raise InvalidArgumentError(
            f"image_data {url!r} is a sprite of {record.n} images but vectors has {n}; give one image per vector")
    if size is not None and size not in (original, tuple(record.tile_size)):
        raise InvalidArgumentError(
            f"image_size={size} does not match the sprite {url!r}, made from images of (width, height) = {original}")
    return StoredSprite(record, source)


def create_embedding_image(image_data, image_size=None, image_preprocess_function=None,
                           image_transparent_color=None, image_background_color_function=None, *,
                           image_channels=None):
    """Build a sprite and return it as an RGBA ``PIL.Image`` (nothing is stored).

    The same builder as ``Experiment.create_embedding_image``, without the storing; the
    image's ``info`` holds ``tile_size`` and ``grid``. See :func:`build_sprite`.
    """
    sprite = build_sprite(image_data, image_size, image_preprocess_function, image_transparent_color,
                          image_background_color_function, image_channels=image_channels)
    image = sprite.to_image()
    image.info.update(tile_size=sprite.tile_size, grid=sprite.grid, n=sprite.n)
    return image


def build_sprite(image_data, image_size=None, image_preprocess_function=None, image_transparent_color=None,
                 image_background_color_function=None, *, image_channels=None, n=None,
                 max_side: int = MAX_SPRITE_SIDE) -> Sprite:
    """Validate the images and tile them into a :class:`Sprite`; raises before building anything.

    Parameters
    ----------
    image_data : array-like, torch.Tensor, list of PIL images or list of image paths
        One image per vector, as flat rows ``(n, h*w)`` or ``(n, h*w*c)`` (row-major,
        channels interleaved; needs ``image_size``), ``(n, h, w)``, ``(n, h, w, c)`` or
        ``(n, c, h, w)`` with ``c`` in 1, 3, 4.
    image_size : (width, height), optional
        Required for flat rows; otherwise it must agree with the data. For lists of PIL
        images or files it is the tile size, and each image is scaled to fit it keeping its
        aspect ratio (default: the first image's size).
    image_preprocess_function : callable, optional
        Applied to each image (each element of ``image_data``, as a numpy array) before
        anything else; it must return images of one shape.
    image_transparent_color : (r, g, b), optional
        Pixels exactly equal to this colour (after conversion to 0-255) become transparent.
    image_background_color_function : callable, optional
        ``f(index) -> (r, g, b)``: fills the transparent pixels of image ``index``.
    image_channels : {"first", "last"}, optional
        Settles whether 4-D arrays are ``(n, c, h, w)`` or ``(n, h, w, c)`` when the shape
        alone cannot tell (e.g. ``(n, 3, 4, 4)``).
    n : int, optional
        Expected number of images (the number of vectors).
    max_side : int
        Largest sprite side; tiles are downscaled (with a warning) to stay within it.
    """
    size = _check_image_size(image_size)
    transparent = None if image_transparent_color is None else check_color(image_transparent_color,
                                                                           "image_transparent_color")
    for argument, fn in (("image_preprocess_function", image_preprocess_function),
                         ("image_background_color_function", image_background_color_function)):
        if fn is not None and not callable(fn):
            raise InvalidArgumentError(f"{argument} must be callable or None; got {_describe(fn)}")
    if image_channels not in (None, "first", "last"):
        raise InvalidArgumentError(f"image_channels must be 'first', 'last' or None; got {image_channels!r}")
    if isinstance(max_side, bool) or not isinstance(max_side, numbers.Integral) or max_side < 1:
        raise InvalidArgumentError(f"max_side must be a positive int; got {_describe(max_side)}")

    if _is_image_list(image_data):
        _check_count(len(image_data), n)
        images = [_image_to_array(im, i) for i, im in enumerate(image_data)]
        same_shape = len({a.shape for a in images}) == 1
        if image_preprocess_function is not None:
            images = (_preprocess_each(images, image_preprocess_function) if same_shape
                      else [_call_preprocess(image_preprocess_function, a, i) for i, a in enumerate(images)])
        first = images[0]
        if len({a.shape for a in images}) > 1 or (size is not None and first.ndim >= 2
                                                  and (first.shape[1], first.shape[0]) != size):
            tiles = _fit_images(images, size, image_preprocess_function is not None, transparent,
                                image_background_color_function)
            return _assemble(tiles, max_side, None, None)
        array = images if isinstance(images, np.ndarray) else np.stack(images)
        channels, size = "last", None
    else:
        array = _to_image_array(image_data)
        _check_count(array.shape[0], n)
        if image_preprocess_function is not None:
            array = _preprocess_each(array, image_preprocess_function)
        channels = image_channels
    tiles = _as_nhwc(array, size, channels, preprocessed=image_preprocess_function is not None)
    tiles = _check_values(tiles, "image_preprocess_function output" if image_preprocess_function else "image_data")
    background = _background_colors(image_background_color_function, tiles.shape[0])
    return _assemble(tiles, max_side, transparent, background)


# -- input forms -------------------------------------------------------------------------
def _check_image_size(image_size):
    if image_size is None:
        return None
    if is_torch_tensor(image_size) or isinstance(image_size, np.ndarray):
        image_size = to_numpy(image_size).tolist()
    if (not isinstance(image_size, (tuple, list)) or len(image_size) != 2
            or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) and v > 0 for v in image_size)):
        raise InvalidArgumentError(f"image_size must be (width, height), two positive ints; got {_describe(image_size)}")
    return int(image_size[0]), int(image_size[1])


def _check_count(count: int, n) -> None:
    if count == 0:
        raise InvalidArgumentError("image_data must hold at least one image; got none")
    if n is not None and count != n:
        raise InvalidArgumentError(f"image_data has {count} images but vectors has {n}; give one image per vector")


def _is_pil(value) -> bool:
    return type(value).__module__.startswith("PIL.") and hasattr(value, "getdata")


def _is_image_list(value) -> bool:
    return (isinstance(value, (list, tuple)) and len(value) > 0
            and (_is_pil(value[0]) or isinstance(value[0], (str, os.PathLike))))


def _to_image_array(image_data) -> np.ndarray:
    if image_data is None or isinstance(image_data, (str, bytes, dict)):
        raise InvalidArgumentError(
            "image_data must be an array of images, a list of PIL images, a list of image paths or an image_url "
            f"({URL_PREFIX}<sha256>) from create_embedding_image; got {_describe(image_data)}")
    try:
        array = to_numpy(image_data)
    except Exception as exc:
        raise InvalidArgumentError(
            f"image_data must be an array of images of one shape; got {_describe(image_data)} that numpy "
            f"cannot convert ({exc})") from None
    if array.ndim < 2 or array.ndim > 4:
        raise InvalidArgumentError(
            "image_data must be (n, h*w[*c]) flat rows, (n, h, w), (n, h, w, c) or (n, c, h, w); "
            f"got shape {array.shape}")
    return array


def _image_to_array(image, index: int) -> np.ndarray:
    """One list element (PIL image or path) as an (h, w) or (h, w, c) array."""
    from PIL import Image, UnidentifiedImageError
    if isinstance(image, (str, os.PathLike)):
        try:
            with Image.open(image) as opened:
                opened.load()
                image = opened
        except (OSError, UnidentifiedImageError) as exc:
            raise InvalidArgumentError(f"image_data[{index}]: cannot read image file {str(image)!r} ({exc})") from None
    elif not _is_pil(image):
        raise InvalidArgumentError(
            f"image_data[{index}] must be a PIL image or an image path like image_data[0]; got {_describe(image)}")
    if image.mode not in ("1", "L", "RGB", "RGBA"):
        image = image.convert("RGBA")  # palette, LA, CMYK...: RGBA keeps colour and transparency
    return np.asarray(image)


def _fit_images(arrays, size, preprocessed: bool, transparent, background) -> np.ndarray:
    """Images of different sizes: colour each, then fit it into an RGBA tile of one size."""
    what = "image_preprocess_function output" if preprocessed else "image_data"
    for i, a in enumerate(arrays):
        if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in _CHANNELS):
            raise InvalidArgumentError(f"{what} image {i} must be (h, w) or (h, w, c) with c in 1, 3, 4; got shape {a.shape}")
        arrays[i] = _check_values(a[None], what, offset=i)[0]
    tile_w, tile_h = size or (arrays[0].shape[1], arrays[0].shape[0])
    colors = _background_colors(background, len(arrays))
    words = None if colors is None else colors.view(np.uint32)[:, 0]
    out = np.zeros((len(arrays), tile_h, tile_w, 4), np.uint8)
    for i, a in enumerate(arrays):
        a = a[..., None] if a.ndim == 2 else a
        bg = None if words is None else words[i:i + 1].reshape(1, 1, 1)
        rgba = _colorize(a[None], transparent, bg, np.empty((1,) + a.shape[:2], np.uint32))[0]
        _fit_into(rgba, out[i])
    return out


def _fit_into(rgba: np.ndarray, tile: np.ndarray) -> None:
    """Scale ``rgba`` to fit ``tile`` keeping its aspect ratio, centred, transparent margins."""
    from PIL import Image
    h, w = rgba.shape[:2]
    th, tw = tile.shape[:2]
    scale = min(tw / w, th / h)
    nw, nh = max(1, min(tw, round(w * scale))), max(1, min(th, round(h * scale)))
    image = Image.fromarray(rgba, "RGBA")
    if (nw, nh) != (w, h):
        image = image.resize((nw, nh), Image.Resampling.BOX if scale < 1 else Image.Resampling.BICUBIC)
    y0, x0 = (th - nh) // 2, (tw - nw) // 2
    tile[y0:y0 + nh, x0:x0 + nw] = np.asarray(image)


def _call_preprocess(fn, image, index: int) -> np.ndarray:
    try:
        result = fn(image)
    except Exception as exc:
        raise InvalidArgumentError(
            f"image_preprocess_function raised {type(exc).__name__} on image {index} of shape "
            f"{getattr(image, 'shape', None)}: {exc}") from exc
    if type(result) is np.ndarray:
        return result
    try:
        return to_numpy(result)
    except Exception:
        raise InvalidArgumentError(
            f"image_preprocess_function must return an array; for image {index} it returned {_describe(result)}") from None


def _preprocess_each(images, fn) -> np.ndarray:
    """Apply ``fn`` image by image, as Comet documents; every result must have one shape."""
    first = _call_preprocess(fn, images[0], 0)
    shape = first.shape
    out = np.empty((len(images),) + shape, first.dtype)
    out[0] = first
    index = 0
    try:
        for index, image in enumerate(images):  # the hot loop: keep it to a call and a copy
            if index:
                result = fn(image)
                # identity of the dtype is the cheap test (numpy reuses its built-in dtypes); an equal
                # but distinct dtype only takes the slower checks below
                if type(result) is not np.ndarray or result.shape != shape or result.dtype is not out.dtype:
                    result = _checked_result(fn, result, index, shape, np.shape(image))
                    if not np.can_cast(result.dtype, out.dtype, "safe"):
                        out = out.astype(np.result_type(out.dtype, result.dtype))
                out[index] = result
    except InvalidArgumentError:
        raise
    except Exception as exc:
        raise InvalidArgumentError(
            f"image_preprocess_function raised {type(exc).__name__} on image {index} of shape "
            f"{np.shape(images[index])}: {exc}") from exc
    return out


def _checked_result(fn, result, index: int, shape, input_shape) -> np.ndarray:
    result = _call_preprocess(lambda _: result, None, index)
    if result.shape != shape:
        raise InvalidArgumentError(
            f"image_preprocess_function must return images of one shape; it returned {shape} for image 0 "
            f"but {result.shape} for image {index} (input shape {input_shape})")
    return result


def _as_nhwc(array: np.ndarray, size, channels, *, preprocessed: bool) -> np.ndarray:
    """Interpret ``array`` as (n, h, w, c) with c in 1, 3, 4 (a view where possible)."""
    what = "image_preprocess_function output" if preprocessed else "image_data"
    n, shape = array.shape[0], array.shape
    if array.ndim == 2:
        length = array.shape[1]
        if size is None:
            side = math.isqrt(length)
            hint = f", e.g. image_size=({side}, {side})" if side * side == length else ""
            raise InvalidArgumentError(
                f"image_size=(width, height) is required for flat image rows; {what} has shape {array.shape}{hint}")
        w, h = size
        for c in _CHANNELS:
            if length == w * h * c:
                return array.reshape(n, h, w, c)
        raise InvalidArgumentError(
            f"image_size={size} needs rows of {w * h} (grayscale), {w * h * 3} (RGB) or {w * h * 4} (RGBA) values; "
            f"{what} has shape {array.shape}")
    if array.ndim == 3:
        array = array[..., None]
        channels = "last"
    if array.ndim != 4:
        raise InvalidArgumentError(
            f"{what} must be (n, h*w[*c]), (n, h, w), (n, h, w, c) or (n, c, h, w); got shape {shape}")
    _, a, b, c = array.shape
    layouts = {"last": (c in _CHANNELS, (b, a)), "first": (a in _CHANNELS, (c, b))}  # value: (valid, (w, h))
    if channels is None:
        candidates = [k for k, (ok, wh) in layouts.items() if ok and (size is None or wh == size)]
        if len(candidates) != 1:
            if not any(ok for ok, _ in layouts.values()):
                raise InvalidArgumentError(
                    f"{what} of shape {shape} has no channel axis of size 1, 3 or 4: expected (n, h, w, c) "
                    "or (n, c, h, w)")
            if size is not None and not candidates:
                raise InvalidArgumentError(
                    f"image_size={size} does not match {what} of shape {shape}: expected (width, height) = "
                    + " or ".join(str(wh) for ok, wh in layouts.values() if ok))
            raise InvalidArgumentError(
                f"{what} of shape {shape} could be channels-first (n, c, h, w) or channels-last (n, h, w, c); "
                "pass image_channels='first' or 'last' to create_embedding_image")
        channels = candidates[0]
    ok, wh = layouts[channels]
    if not ok:
        axis = "second" if channels == "first" else "last"
        raise InvalidArgumentError(
            f"image_channels={channels!r} needs the {axis} axis of {what} to be 1, 3 or 4; got shape {shape}")
    if size is not None and wh != size:
        raise InvalidArgumentError(
            f"image_size={size} does not match {what} of shape {shape}, whose images are (width, height) = {wh}")
    return array.transpose(0, 2, 3, 1) if channels == "first" else array


def _check_values(tiles: np.ndarray, what: str, offset: int = 0) -> np.ndarray:
    """Apply the pixel-value rule to the whole array at once; name the first offending image.

    Returns the tiles on the scale the colouring expects: floats in 0-1, integers in 0-255.
    """
    dtype = tiles.dtype
    if dtype == np.uint8 or dtype == np.bool_:
        return tiles
    if np.issubdtype(dtype, np.integer):
        low, high, top = 0, 255, "0-255"
    elif np.issubdtype(dtype, np.floating):
        low, high, top = 0.0, 255.0, "0-1 (or 0-255)"
    else:
        raise InvalidArgumentError(f"{what} must hold numbers (uint8 0-255 or floats 0-1); got dtype {dtype}")
    lo, hi = tiles.min(), tiles.max()
    if lo >= low and hi <= high:  # False for NaN too
        if np.issubdtype(dtype, np.floating) and hi > 1:
            return np.rint(tiles).astype(np.uint8)  # Comet's rule: floats beyond 1 are on the 0-255 scale
        return tiles
    flat = tiles.reshape(tiles.shape[0], -1)
    bad = ~((flat >= low) & (flat <= high))
    index = int(np.argmax(bad.any(axis=1)))
    row = flat[index]
    if np.issubdtype(dtype, np.floating) and np.isnan(row).any():
        raise InvalidArgumentError(f"{what} image {index + offset} contains NaN; pixel values must be finite")
    fix = ", scale it with image_preprocess_function"
    raise InvalidArgumentError(
        f"{what} of dtype {dtype} must lie in {top}; image {index + offset} has values in "
        f"[{row.min()}, {row.max()}]{fix}. Values are never clipped")


def _background_colors(fn, n: int):
    """Call ``fn(i)`` for every image; return (n, 4) uint8 RGBA (alpha 255) or None."""
    if fn is None:
        return None
    colors = [None] * n
    for i in range(n):
        try:
            colors[i] = fn(i)
        except Exception as exc:
            raise InvalidArgumentError(
                f"image_background_color_function raised {type(exc).__name__} for index {i}: {exc}") from exc
    try:  # validate all at once; on failure find and name the first bad one
        rgb = np.array(colors)
        valid = rgb.shape == (n, 3) and rgb.dtype.kind in "iu" and rgb.min() >= 0 and rgb.max() <= 255
    except (ValueError, TypeError):
        valid = False
    if not valid:
        for i, color in enumerate(colors):
            check_color(color, f"image_background_color_function({i}) result")
        rgb = np.array(colors)
    out = np.empty((n, 4), np.uint8)
    out[:, :3] = rgb
    out[:, 3] = 255
    return out


# -- building ----------------------------------------------------------------------------
def _layout(n: int, w: int, h: int, max_side: int) -> tuple[int, int, int, int]:
    """(cols, rows, tile_w, tile_h): a near-square sprite, tiles shrunk to fit ``max_side``."""
    cols = min(n, max(1, math.ceil(math.sqrt(n * h / w))))
    rows = math.ceil(n / cols)
    if cols * w <= max_side and rows * h <= max_side:
        return cols, rows, w, h
    scale = min(max_side / (cols * w), max_side / (rows * h))
    tw, th = max(1, math.floor(w * scale)), max(1, math.floor(h * scale))
    if cols * tw > max_side or rows * th > max_side:  # a thin side hit 1 px: re-flow the grid
        per_col, per_row = max_side // th, max_side // tw
        if per_col * per_row < n:
            raise InvalidArgumentError(
                f"image_data has {n} images of {w}x{h} px, too many for a {max_side}x{max_side} px sprite even "
                "at one pixel per tile side; log fewer images per embedding")
        cols = math.ceil(n / per_col)
        rows = math.ceil(n / cols)
    return cols, rows, tw, th


def _assemble(tiles: np.ndarray, max_side: int, transparent, background) -> Sprite:
    """Colour and place (n, h, w, c) tiles row-major, a strip of grid rows at a time.

    Each strip is built directly in sprite order (so no per-tile copies), downscaled as a
    whole when needed, and copied into the sheet.
    """
    n, h, w, c = tiles.shape
    cols, rows, tw, th = _layout(n, w, h, max_side)
    if (tw, th) != (w, h):
        warnings.warn(
            f"a sprite of {n} images of {w}x{h} px in a {cols}x{rows} grid would be {cols * w}x{rows * h} px, over "
            f"the {max_side} px limit; tiles downscaled to {tw}x{th} px", UserWarning, stacklevel=3)
    pixels = np.zeros((rows * th, cols * tw, 4), np.uint8)
    words = None if background is None else background.view(np.uint32)[:, 0]
    rows_per_chunk = max(1, _CHUNK_PIXELS // (cols * h * w))

    def strip(r0: int) -> None:
        i0, i1 = r0 * cols, min(n, (r0 + rows_per_chunk) * cols)
        full, rest = divmod(i1 - i0, cols)
        for start, rr, m in ((i0, full, cols), (i0 + full * cols, 1, rest)):
            if rr == 0 or m == 0:
                continue
            stop = start + rr * m
            src = tiles[start:stop].reshape(rr, m, h, w, c).transpose(0, 2, 1, 3, 4)  # (rr, h, m, w, c)
            bg = None if words is None else words[start:stop].reshape(rr, 1, m, 1)
            y0 = (start // cols) * th
            if (tw, th) == (w, h):  # write straight into the sheet
                out = pixels[y0:y0 + rr * h, :m * w].view(np.uint32).reshape(rr, h, m, w)
                _colorize(src, transparent, bg, out)
            elif c == 1 and transparent is None:  # opaque gray: shrink one channel, then expand
                gray = np.ascontiguousarray(_to_u8(src)).reshape(rr * h, m * w, 1)
                small = _shrink(gray, m * tw, rr * th, opaque=True)
                _gray_words(small, pixels[y0:y0 + rr * th, :m * tw].view(np.uint32)[..., 0])
            else:
                rgba = _colorize(src, transparent, bg, np.empty((rr, h, m, w), np.uint32))
                pixels[y0:y0 + rr * th, :m * tw] = _shrink(rgba.reshape(rr * h, m * w, 4), m * tw, rr * th,
                                                           opaque=c != 4 and (transparent is None or bg is not None))

    starts = range(0, rows, rows_per_chunk)
    workers = min(len(starts), os.cpu_count() or 1, 8) if n * h * w >= _PARALLEL_PIXELS else 1
    if workers > 1:  # strips are disjoint; numpy and Pillow's resize release the GIL
        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(workers, thread_name_prefix="tracker-sprite") as pool:
            for future in [pool.submit(strip, r0) for r0 in starts]:
                future.result()
    else:
        for r0 in starts:
            strip(r0)
    return Sprite(pixels, (tw, th), (cols, rows), n, (w, h))


def _shrink(strip: np.ndarray, width: int, height: int, *, opaque: bool) -> np.ndarray:
    """Box-filter a strip of whole tiles; tile edges map onto pixel edges, so tiles never bleed.

    Pillow averages RGBA premultiplied by alpha; opaque pixels need no premultiplying, so they
    are resized as "RGBa" directly, which skips two conversions.
    """
    from PIL import Image
    if strip.shape[-1] == 1:
        return np.asarray(Image.fromarray(strip[..., 0], "L").resize((width, height), Image.Resampling.BOX))
    if opaque or bool((strip[..., 3] == 255).all()):
        image = Image.frombuffer("RGBa", (strip.shape[1], strip.shape[0]), strip, "raw", "RGBa", 0, 1)
        return np.asarray(image.resize((width, height), Image.Resampling.BOX))
    return np.asarray(Image.fromarray(strip, "RGBA").resize((width, height), Image.Resampling.BOX))


_GRAY_LUT = np.empty((256, 4), np.uint8)
_GRAY_LUT[:, :3] = np.arange(256, dtype=np.uint8)[:, None]
_GRAY_LUT[:, 3] = 255


def _gray_words(gray: np.ndarray, out: np.ndarray) -> None:
    """uint8 gray -> opaque RGBA pixel words: one multiply on little-endian machines."""
    if sys.byteorder == "little":
        np.multiply(gray, np.uint32(0x010101), out=out, dtype=np.uint32)
        out |= np.uint32(0xFF000000)
    else:
        np.take(_GRAY_LUT.view(np.uint32)[:, 0], gray, out=out, mode="clip")


def _word(rgba) -> np.uint32:
    """Four bytes as one uint32 pixel word, in the machine's byte order like the pixel views."""
    return np.array(rgba, np.uint8).view(np.uint32)[0]


def _to_u8(src: np.ndarray) -> np.ndarray:
    if src.dtype == np.uint8:
        return src
    if src.dtype == np.bool_:
        return src.astype(np.uint8) * np.uint8(255)
    if np.issubdtype(src.dtype, np.integer):
        return src.astype(np.uint8)
    scaled = np.multiply(src, 255, dtype=np.float32)
    scaled += np.float32(0.5)
    return scaled.astype(np.uint8)


def _colorize(src: np.ndarray, transparent, background, out: np.ndarray) -> np.ndarray:
    """Write images ``src`` (..., c) as RGBA into ``out`` (uint32 words, ``src.shape[:-1]``).

    Returns ``out`` viewed as (..., 4) uint8. Each option is one or two vector passes over the
    pixel words. The transparent colour becomes (0, 0, 0, 0); ``background`` holds each
    pixel's image's background word, shaped to broadcast against ``out``, and fills alpha-0
    pixels.
    """
    pixels = _to_u8(src)
    c = pixels.shape[-1]
    clear = None
    if c == 1:
        words = out
        _gray_words(pixels[..., 0], words)
        if transparent is not None and transparent[0] == transparent[1] == transparent[2]:
            clear = pixels[..., 0] == transparent[0]
            words *= ~clear
        rgba = words[..., None].view(np.uint8)
    else:
        words = out
        rgba = words[..., None].view(np.uint8)
        rgba[..., :c] = pixels
        if c == 3:
            rgba[..., 3] = 255
        if transparent is not None:
            clear = (words & _word((255, 255, 255, 0))) == _word(transparent + (0,))
            words *= ~clear
        if c == 4 and background is not None:
            alpha = rgba[..., 3]
            partial = (alpha > 0) & (alpha < 255)
            if partial.any():  # composite half-transparent pixels over their background
                bg = np.broadcast_to(np.ascontiguousarray(background)[..., None].view(np.uint8), rgba.shape)[partial]
                a = alpha[partial].astype(np.float32)[:, None] / 255
                mixed = np.rint(rgba[partial] * a + bg * (1 - a))
                mixed[:, 3] = 255
                rgba[partial] = mixed.astype(np.uint8)
            clear = alpha == 0
            words *= ~clear
    if background is not None and clear is not None:
        words |= clear * background
    return rgba
