"""Everything the server checks before it trusts a request: ids, keys, origins, bodies, blobs.

Only values that match the strict patterns here ever become path components. Bodies are
parsed with size and depth limits; PNG and ``.npy`` blobs are checked by reading their
headers (never unpickling). Every response gets the hardening headers from
:class:`SecurityHeaders`.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import re
import warnings
from pathlib import Path

import msgpack
import numpy as np

from tracker_sdk.runformat import names

from .errors import ApiError, BadRequest

MAX_DEPTH = 32
MAX_PNG_SIDE = 8192
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
       "connect-src 'self'; worker-src 'self' blob:; font-src 'self'; object-src 'none'; "
       "frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
HARDENING_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
]


# -- ids -------------------------------------------------------------------------------------
def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def check_run_id(value) -> str:
    return names.check_hex_id(value, "run_id", error=BadRequest)


def check_hex_id(value, what: str) -> str:
    return names.check_hex_id(value, what, error=BadRequest)


def check_sha256(value) -> str:
    return names.check_sha256(value, "sha256", error=BadRequest)


def check_project(value) -> str:
    return names.check_project(value, "project", error=BadRequest)


# -- who may write ---------------------------------------------------------------------------
def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def allowed_hostnames(host: str, extra=()) -> frozenset[str] | None:
    """Host header names the server answers to; None means any (bound to a wildcard address)."""
    names = {h.lower() for h in extra}
    if is_loopback(host):
        return frozenset(names | {"localhost", "127.0.0.1", "::1", "[::1]"})
    if host in ("0.0.0.0", "::", "[::]") and not names:
        return None
    return frozenset(names | {host.lower(), "localhost", "127.0.0.1", "[::1]"})


def hostname_of(host_header: str) -> str:
    """``example.com:8470`` -> ``example.com``; ``[::1]:8470`` -> ``[::1]``."""
    host_header = host_header.strip().lower()
    if host_header.startswith("["):
        end = host_header.find("]")
        return host_header[: end + 1] if end > 0 else host_header
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


def check_host(headers, allowed: frozenset[str] | None) -> None:
    """Refuse a Host header that is not ours (DNS rebinding)."""
    if allowed is None:
        return
    host = headers.get("host")
    if host is None or hostname_of(host) not in allowed:
        raise ApiError(421, f"this server does not answer to Host {_short(host)}")


def check_origin(headers, allowed: frozenset[str] | None) -> None:
    """Refuse a write sent by a page from another site (browsers send Origin on cross-site writes)."""
    if headers.get("sec-fetch-site") == "cross-site":
        raise ApiError(403, "cross-site writes are refused")
    origin = headers.get("origin")
    if origin is None:
        return
    match = re.match(r"^https?://([^/]+)$", origin.strip().lower())
    if not match:
        raise ApiError(403, f"writes from Origin {_short(origin)} are refused")
    origin_host = match.group(1)
    host = (headers.get("host") or "").strip().lower()
    if origin_host == host:
        return
    if allowed is not None and hostname_of(origin_host) in allowed and hostname_of(host) in allowed \
            and origin_host.rsplit(":", 1)[-1] == host.rsplit(":", 1)[-1]:
        return
    raise ApiError(403, f"writes from Origin {_short(origin)} are refused: not this server")


def check_api_key(headers, api_key: str | None) -> None:
    if api_key is None:
        return
    auth = headers.get("authorization") or ""
    scheme, _, token = auth.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), api_key.encode()):
        raise ApiError(401, "this server needs an API key for writes: send 'Authorization: Bearer <key>'")


# -- bodies ----------------------------------------------------------------------------------
def check_depth(obj, max_depth: int = MAX_DEPTH) -> None:
    stack = [(obj, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, (list, tuple)):
            children = value
        else:
            continue
        if depth > max_depth:
            raise ApiError(400, f"body nests deeper than {max_depth} levels")
        # only containers can nest; skipping scalars keeps 100k-row metadata cheap to check
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list, tuple)))


def parse_json(body: bytes, max_depth: int = MAX_DEPTH):
    try:
        obj = json.loads(body)
    except RecursionError:
        raise ApiError(400, f"body nests deeper than {max_depth} levels") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"body is not valid JSON: {exc}") from None
    check_depth(obj, max_depth)
    return obj


def parse_msgpack(body: bytes, max_depth: int = MAX_DEPTH):
    try:
        obj = msgpack.unpackb(body, raw=False, strict_map_key=False,
                              max_bin_len=len(body), max_str_len=len(body), max_array_len=len(body),
                              max_map_len=len(body), max_ext_len=0)
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError, TypeError) as exc:
        raise ApiError(400, f"body is not valid msgpack: {type(exc).__name__}: {exc}") from None
    except RecursionError:
        raise ApiError(400, f"body nests deeper than {max_depth} levels") from None
    check_depth(obj, max_depth)
    return obj


def parse_body(body: bytes, content_type: str | None):
    """JSON or msgpack by Content-Type (msgpack when it says so, JSON otherwise)."""
    ctype = (content_type or "").split(";")[0].strip().lower()
    if ctype in ("application/msgpack", "application/x-msgpack", "application/vnd.msgpack"):
        return parse_msgpack(body)
    return parse_json(body)


# -- blobs -----------------------------------------------------------------------------------
def check_png(path: Path, *, max_side: int = MAX_PNG_SIDE) -> tuple[int, int]:
    """Return (width, height) of a well-formed PNG no larger than ``max_side`` on either side."""
    from PIL import Image

    with open(path, "rb") as fh:
        if fh.read(8) != PNG_MAGIC:
            raise ApiError(400, "sprite is not a PNG (bad magic bytes)")
        fh.seek(0)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(fh, formats=["PNG"]) as image:
                    width, height = image.size
                    if width > max_side or height > max_side:
                        raise ApiError(400, f"sprite is {width}x{height}; at most {max_side}x{max_side} is accepted")
                    image.verify()
        except ApiError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ApiError(400, f"sprite refused as a decompression bomb: {exc}") from None
        except Exception as exc:  # Pillow raises many types for broken files
            raise ApiError(400, f"sprite is not a valid PNG: {type(exc).__name__}: {exc}") from None
    return width, height


def npy_header(path: Path) -> tuple[np.dtype, tuple, bool, int]:
    """Read a ``.npy`` header without loading data: (dtype, shape, fortran_order, data offset)."""
    with open(path, "rb") as fh:
        try:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh, max_header_size=10000)
            elif version in ((2, 0), (3, 0)):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh, max_header_size=10000)
            else:
                raise ValueError(f"unsupported .npy version {version}")
        except Exception as exc:
            raise ApiError(400, f"blob is not a valid .npy file: {exc}") from None
        return dtype, tuple(shape), bool(fortran), fh.tell()


def check_npy(path: Path, *, ndim: int | None = None, shape: tuple | None = None,
              last_dim: int | None = None) -> tuple:
    """Check a float32 little-endian C-order ``.npy`` blob; never unpickle. Returns the shape."""
    dtype, got, fortran, offset = npy_header(path)
    if dtype.hasobject or dtype != np.dtype("<f4"):
        raise ApiError(400, f"arrays must be little-endian float32; blob has dtype {dtype.str!r}")
    if fortran:
        raise ApiError(400, "arrays must be stored in C order; blob is Fortran-ordered")
    if ndim is not None and len(got) != ndim:
        raise ApiError(400, f"array must be {ndim}D; blob has shape {got}")
    if shape is not None and got != tuple(shape):
        raise ApiError(400, f"array blob has shape {got} but the record says {tuple(shape)}")
    if last_dim is not None and (not got or got[-1] != last_dim):
        raise ApiError(400, f"array blob has shape {got}; its last axis must be {last_dim}")
    expected = offset + int(np.prod(got, dtype=np.int64)) * 4
    size = Path(path).stat().st_size
    if size != expected:
        raise ApiError(400, f".npy blob is {size} bytes but its header says {expected}")
    try:
        np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as exc:
        raise ApiError(400, f"blob is not a loadable .npy array: {exc}") from None
    return got


def check_metadata_blob(path: Path, n: int) -> None:
    """Metadata is msgpack ``{"n", "columns": [{"name", "type", "values"}]}`` with ``n`` rows.

    Blobs are immutable and content-addressed, so each (blob, n) pair is checked once per process.
    """
    key = (str(path), n)
    if key in _CHECKED_METADATA:
        return
    _check_metadata_bytes(Path(path).read_bytes(), n)
    if len(_CHECKED_METADATA) > 100_000:
        _CHECKED_METADATA.clear()
    _CHECKED_METADATA.add(key)


_CHECKED_METADATA: set = set()


def _check_metadata_bytes(raw: bytes, n: int) -> None:
    data = parse_msgpack(raw)
    if not isinstance(data, dict) or not isinstance(data.get("columns"), list):
        raise ApiError(400, "metadata blob must be a map with a 'columns' list")
    if data.get("n") != n:
        raise ApiError(400, f"metadata blob has n={data.get('n')!r} but the embedding has {n} rows")
    for column in data["columns"]:
        if not isinstance(column, dict) or not isinstance(column.get("name"), str) \
                or not isinstance(column.get("values"), list):
            raise ApiError(400, "each metadata column must be a map with a 'name' and a 'values' list")
        if len(column["values"]) != n:
            raise ApiError(400, f"metadata column {_short(column['name'])} has {len(column['values'])} values; "
                                f"the embedding has {n} rows")


# -- response headers ------------------------------------------------------------------------
class SecurityHeaders:
    """ASGI middleware that adds the hardening headers to every HTTP response."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                headers = list(message.get("headers", []))
                headers.extend(h for h in HARDENING_HEADERS if h[0] not in present)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def json_bytes(obj) -> bytes:
    """JSON with non-finite floats as null and bytes as text, never NaN literals."""
    try:
        return json.dumps(obj, allow_nan=False, separators=(",", ":"), default=_default).encode()
    except ValueError:
        return json.dumps(_finite(obj), allow_nan=False, separators=(",", ":"), default=_default).encode()


def _default(value):
    if isinstance(value, (bytes, bytearray)):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def _finite(value):
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


__all__ = ["ApiError", "SecurityHeaders", "check_api_key", "check_host", "check_origin", "check_png",
           "check_npy", "check_metadata_blob", "parse_body", "parse_json", "parse_msgpack", "json_bytes"]
