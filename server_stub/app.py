"""The tracking server: module-level request handlers, one route table, ``create_app`` and
the ``tracker-server`` command.

Routes live under ``/api/v1`` (``API_ROUTES``; documented in ``openapi.py`` and docs/server.md);
the viewer's single page is served for ``VIEWER_PAGES``, its assets under ``/static/``.
Handlers find the store and the body limits on ``request.app.state`` and raise every error
(``server_stub.errors``); ``Guard`` turns any exception into a JSON answer through
``errors.answer_for``. Middleware order, outermost first: hardening headers, then ``Guard``
(Host / Origin / API-key checks and the error mapping).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import errno
import logging
import os
import re
import shutil
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

import anyio.from_thread
import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from tracker_sdk.runformat.records import embedding_listing, to_builtins

from . import columns_binary, security
from .bookmarks import Bookmarks
from .bookmarks import check_name as check_bookmark_name
from .compare_route import get_compare
from .errors import (BadRequest, ClientGone, NotFound, PayloadTooLarge, Unprocessable, answer_for,
                     headers_for)
from .openapi import openapi_schema
from .projections import ProjectionJobs
from .security import check_hex_id, check_run_id, check_sha256, json_bytes
from .store import DEFAULT_UPLOAD_EXPIRY_S, Collector, Store, collect_garbage

log = logging.getLogger("server_stub")
VIEWER_DIR = Path(__file__).parent / "viewer"
DEFAULT_PORT = 8470
DEFAULT_MAX_BODY = 256 * 1024 * 1024
MAX_PARSED_BODY = 32 * 1024 * 1024
WRITE_METHODS = frozenset({"PUT", "POST", "PATCH", "DELETE"})
PLACEHOLDER = (b"<!doctype html><html><head><meta charset=utf-8><title>tracker</title></head>"
               b"<body><h1>tracker server</h1><p>The viewer is not installed; the API is at "
               b"<a href=\"/api/v1/projects\">/api/v1/projects</a>.</p></body></html>")
IMMUTABLE = "private, max-age=31536000, immutable"
# bodies streamed to disk at once (blob PUTs, chunks); more wait their turn without holding a thread,
# so small requests never queue behind a crowd of large ones
DEFAULT_CONCURRENT_BODIES = 4
_ASCII_DIGITS = re.compile(r"[0-9]{1,20}")
SCALE_OUT_INDEX, SCALE_OUT_BLOBS = "index.sqlite3", "blobs"  # under --root when only one scale-out URI is given


def json_response(obj, status: int = 200, headers: dict | None = None) -> Response:
    return Response(json_bytes(obj), status_code=status, media_type="application/json", headers=headers)


def error_response(exc: BaseException, app=None) -> Response | None:
    """The JSON answer for ``exc`` (paths relative to the app's root), or None for a server fault."""
    store = getattr(getattr(app, "state", None), "store", None)
    answer = answer_for(exc, store.root if store is not None else None)
    return None if answer is None else json_response(answer[1], answer[0], headers=headers_for(answer[1]))


class Guard:
    """ASGI middleware: Host check, write auth, and JSON errors for anything that escapes."""

    def __init__(self, app, *, api_key: str | None, allowed_hosts):
        self.app = app
        self.api_key = api_key
        self.allowed_hosts = allowed_hosts

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def tracking_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
            security.check_host(headers, self.allowed_hosts)
            if scope["method"] in WRITE_METHODS:
                security.check_origin(headers, self.allowed_hosts)
                security.check_api_key(headers, self.api_key)
            await self.app(scope, receive, tracking_send)
        except Exception as exc:  # noqa: BLE001 - the point is that nothing escapes as a traceback
            if started:
                log.warning("request %s %s failed after the response began: %r", scope["method"], scope["path"], exc)
                return
            if isinstance(exc, (ClientDisconnect, ClientGone)):
                return
            response = error_response(exc, scope.get("app"))
            if response is None:
                log.exception("unexpected error on %s %s", scope["method"], scope["path"])
                response = json_response({"error": "internal server error; the server log has the details"}, 500)
            if scope["method"] == "HEAD":
                response.body = b""
            await response(scope, receive, send)


async def _framework_error(request: Request, exc: HTTPException) -> Response:
    """Starlette's own 404 / 405 (no route, wrong method, no static file) as JSON errors."""
    message = {404: "not found", 405: "method not allowed"}.get(exc.status_code, str(exc.detail))
    return json_response({"error": message}, exc.status_code, headers=exc.headers)


def _content_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    if value is None:
        return None
    if not _ASCII_DIGITS.fullmatch(value):  # str.isdigit() also takes '²', which int() refuses
        raise BadRequest(f"Content-Length must be a non-negative integer in ASCII digits; got {value[:40]!r}")
    return int(value)


async def read_body(request: Request, cap: int) -> bytes:
    """The whole body, refusing past ``cap`` bytes with 413 before or while reading."""
    declared = _content_length(request)
    if declared is not None and declared > cap:
        raise PayloadTooLarge(f"body of {declared} bytes is above this server's limit of {cap} bytes")
    parts, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > cap:
            raise PayloadTooLarge(f"body is above this server's limit of {cap} bytes")
        parts.append(chunk)
    return b"".join(parts)


def _int_param(request: Request, name: str, default: int | None = None) -> int:
    value = request.query_params.get(name)
    if value is None:
        if default is None:
            raise BadRequest(f"query parameter {name!r} is required")
        return default
    try:
        return int(value)
    except ValueError:
        raise BadRequest(f"query parameter {name!r} must be an integer; got {value[:40]!r}") from None


def _int_header(request: Request, name: str) -> int:
    value = request.headers.get(name)
    if value is None or not _ASCII_DIGITS.fullmatch(value.strip()):
        raise BadRequest(f"header {name.title()} must be a non-negative integer in ASCII digits; "
                         f"got {value if value is None else value[:40]!r}")
    return int(value)


def _upload_checksum(request: Request) -> bytes | None:
    """The digest of tus's ``Upload-Checksum: sha256 <base64>``, or None when the header is absent."""
    value = request.headers.get("upload-checksum")
    if value is None:
        return None
    algorithm, _, encoded = value.strip().partition(" ")
    if algorithm.lower() != "sha256":
        raise BadRequest(f"Upload-Checksum must be 'sha256 <base64 digest>'; algorithm {algorithm[:20]!r} "
                         "is not supported")
    try:
        digest = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        digest = b""
    if len(digest) != 32:
        raise BadRequest(f"Upload-Checksum must carry a base64 sha256 digest (32 bytes); got {encoded[:60]!r}")
    return digest


def _npy_stream(path: Path, offset: int, size: int, chunk: int = 4 << 20):
    with open(path, "rb") as fh:
        fh.seek(offset)
        remaining = size
        while remaining > 0:
            data = fh.read(min(chunk, remaining))
            if not data:
                return
            remaining -= len(data)
            yield data


def _array_response(path: Path, what: str) -> Response:
    """Raw little-endian float32 of a stored 2-D array, shape in X-Shape, streamed from disk."""
    dtype, shape, fortran, offset = security.npy_header(path)
    if dtype != np.dtype("<f4") or fortran or len(shape) != 2:
        raise Unprocessable(f"the stored {what} are not a C-order float32 2-D array")
    size = int(shape[0]) * int(shape[1]) * 4
    if path.stat().st_size < offset + size:
        raise Unprocessable(f"the stored {what} blob is truncated")
    headers = {"X-Shape": f"{shape[0]},{shape[1]}", "X-Dtype": "float32", "Content-Length": str(size),
               "Cache-Control": IMMUTABLE}
    return StreamingResponse(_npy_stream(path, offset, size), media_type="application/octet-stream",
                             headers=headers)


@dataclass(frozen=True)
class Limits:
    """Body caps of one app: ``max_body`` for blobs and chunks, ``parsed`` for bodies parsed in memory."""

    max_body: int
    parsed: int
    concurrent_bodies: int = DEFAULT_CONCURRENT_BODIES


def _store(request: Request) -> Store:
    return request.app.state.store


def _limits(request: Request) -> Limits:
    return request.app.state.limits


async def _sync(func, *args):
    """Run blocking store work (disk, numpy) off the event loop."""
    return await run_in_threadpool(func, *args)


async def _json(func, *args) -> Response:
    """``func(*args)`` as a JSON response, computed and encoded off the event loop (a long metric
    series or listing never holds up the small requests behind it)."""
    return await run_in_threadpool(lambda: json_response(func(*args)))


def _big_bodies(request: Request) -> anyio.Semaphore:
    """The app's bound on bodies streamed to disk at once (made on the event loop's first use)."""
    state = request.app.state
    if getattr(state, "big_bodies", None) is None:
        state.big_bodies = anyio.Semaphore(state.limits.concurrent_bodies)
    return state.big_bodies


def _run_id(request: Request) -> str:
    return check_run_id(request.path_params["run_id"])


def _embedding_ids(request: Request) -> tuple[str, str]:
    return _run_id(request), check_hex_id(request.path_params["embedding_id"], "embedding_id")


def _blob_ids(request: Request) -> tuple[str, str]:
    return _run_id(request), check_sha256(request.path_params["sha256"])


# -- read side -------------------------------------------------------------------------------
async def openapi(request: Request) -> Response:
    return json_response(openapi_schema())


def _health(store: Store) -> dict:
    stores = store.health() if hasattr(store, "health") else {}  # scale-out: the index and the blob store
    if any(not check["ok"] for check in stores.values()):
        return {"status": "unavailable", **stores}
    store.index.refresh()
    unreadable = store.index.problems()
    try:
        free = shutil.disk_usage(store.root).free
    except OSError:
        free = None
    return {"status": "degraded" if unreadable else "ok", "unreadable_runs": unreadable, "disk_free_bytes": free,
            **stores}


async def health(request: Request) -> Response:
    """200 while the server serves; ``unreadable_runs`` lists runs the listings skip, with why; 503 when
    a shared store (the index database or the blob store) does not answer."""
    answer = await _sync(_health, _store(request))
    return json_response(answer, 503 if answer["status"] == "unavailable" else 200,
                         headers={"Cache-Control": "no-store"})


async def list_projects(request: Request) -> Response:
    store = _store(request)
    await _sync(store.index.refresh)
    return await _json(store.index.projects)


def _runs(store: Store, project: str) -> list[dict]:
    store.index.refresh()
    runs = store.index.runs(project)
    if not runs and not (store.root / project).is_dir():
        raise NotFound(f"no project {project!r}")
    return runs


async def list_runs(request: Request) -> Response:
    return await _json(_runs, _store(request), security.check_project(request.path_params["project"]))


def _run_summary(store: Store, run_id: str) -> dict:
    run = store.run(run_id)
    next_seq = max((run.records[-1].seq + 1) if run.records else 0, store.live_next_seq(run_id))
    return {"run_id": run.run_id, "project": run.project, "name": run.name, "created": run.info.get("created"),
            "status": run.status, "parameters": run.parameters, "others": run.others, "next_seq": next_seq,
            "metric_names": sorted({m.name for m in run.metrics}),
            "n_embeddings": len(run.embeddings)}


async def get_run(request: Request) -> Response:
    return await _json(_run_summary, _store(request), _run_id(request))


def _metrics(store: Store, run_id: str) -> dict:
    out: dict[str, list] = {}
    for m in store.run(run_id).metrics:
        out.setdefault(m.name, []).append(to_builtins(m))
    return out


async def get_metrics(request: Request) -> Response:
    return await _json(_metrics, _store(request), _run_id(request))


def _embeddings(store: Store, run_id: str) -> list[dict]:
    """Each embedding record as stored, with its column listing and its reduction records."""
    out = []
    for emb in store.run(run_id).embeddings:
        try:
            columns = emb.column_types()
        except (OSError, ValueError, KeyError, TypeError):  # a record without its column list and no readable blob
            columns = []
        out.append(embedding_listing(emb.record, columns, [r.record for r in emb.reductions]))
    return out


async def get_embeddings(request: Request) -> Response:
    return await _json(_embeddings, _store(request), _run_id(request))


def _vectors(store: Store, run_id: str, embedding_id: str) -> Response:
    emb = store.embedding(run_id, embedding_id)
    return _array_response(store.blob_file(run_id, emb.record.vectors.sha256), "vectors")


async def get_vectors(request: Request) -> Response:
    return await _sync(_vectors, _store(request), *_embedding_ids(request))


def _metadata(store: Store, run_id: str, embedding_id: str) -> Response:
    emb = store.embedding(run_id, embedding_id)
    return json_response(columns_binary.readable_columns(emb, f"metadata of embedding {embedding_id}"))


async def get_metadata(request: Request) -> Response:
    return await _sync(_metadata, _store(request), *_embedding_ids(request))


async def get_columns(request: Request) -> Response:
    """The metadata as typed binary columns (``?name=`` repeated, ``?reduction=``): columns_binary.py."""
    reduction = request.query_params.get("reduction")
    return await _sync(columns_binary.answer, _store(request), *_embedding_ids(request),
                       request.query_params.getlist("name"),
                       None if reduction is None else check_hex_id(reduction, "reduction"))


def _sprite(store: Store, run_id: str, embedding_id: str) -> Response:
    emb = store.embedding(run_id, embedding_id)
    if emb.sprite is None:
        raise NotFound(f"embedding {embedding_id} has no sprite")
    path = store.blob_file(run_id, emb.sprite.sha256)
    with open(path, "rb") as fh:
        if fh.read(8) != security.PNG_MAGIC:
            raise Unprocessable(f"the sprite of embedding {embedding_id} is not a PNG")
    return FileResponse(path, media_type="image/png", headers={"Cache-Control": IMMUTABLE})


async def get_sprite(request: Request) -> Response:
    return await _sync(_sprite, _store(request), *_embedding_ids(request))


def _coords(store: Store, run_id: str, reduction_id: str) -> Response:
    red = store.reduction(run_id, reduction_id)
    return _array_response(store.blob_file(run_id, red.record.coords.sha256), "coordinates")


async def get_coords(request: Request) -> Response:
    return await _sync(_coords, _store(request), _run_id(request),
                       check_hex_id(request.path_params["reduction_id"], "reduction_id"))


def _reduction_columns(store: Store, run_id: str, reduction_id: str) -> Response:
    """A projection's own metadata columns (per-point trust), with the scores stored beside them."""
    red = store.reduction(run_id, reduction_id)
    meta = columns_binary.readable_columns(red, f"columns of reduction {reduction_id}")
    return json_response({**meta, "analysis": red.trust_scores})


async def get_reduction_columns(request: Request) -> Response:
    return await _sync(_reduction_columns, _store(request), _run_id(request),
                       check_hex_id(request.path_params["reduction_id"], "reduction_id"))


def _dynamics(store: Store, run_id: str, group: str | None, title: str | None) -> list:
    """The run's dynamics records (of one group and title when given), oldest first."""
    return [to_builtins(r) for r in store.run(run_id).dynamics_records
            if (group is None or r.group == group) and (title is None or r.title == title)]


async def get_dynamics(request: Request) -> Response:
    query = request.query_params
    return await _json(_dynamics, _store(request), _run_id(request), query.get("group"), query.get("title"))


async def get_neighbors(request: Request) -> Response:
    run_id, embedding_id = _embedding_ids(request)
    index = _int_param(request, "index")
    k = _int_param(request, "k", 10)
    metric = request.query_params.get("metric", "cosine")
    return await _json(_store(request).neighbors, run_id, embedding_id, index, k, metric)


# -- write side ------------------------------------------------------------------------------
async def put_run(request: Request) -> Response:
    project = security.check_project(request.path_params["project"])
    run_id = _run_id(request)
    info = await _sync(security.parse_json, await read_body(request, min(_limits(request).parsed, 1 << 20)))
    return json_response(await _sync(_store(request).put_run, project, run_id, info))


async def head_blob(request: Request) -> Response:
    run_id, sha = _blob_ids(request)
    size = await _sync(_store(request).blob_size, run_id, sha)
    if size is None:
        return Response(status_code=404, headers={"Content-Length": "0"})
    return Response(status_code=200, headers={"Content-Length": str(size)})


async def get_blob(request: Request) -> Response:
    run_id, sha = _blob_ids(request)
    path = await _sync(_store(request).blob_file, run_id, sha)
    return FileResponse(path, media_type="application/octet-stream", filename=sha, headers={"Cache-Control": IMMUTABLE})


def _blocking_body(request: Request, cap: int):
    """The request body as a blocking iterator of chunks, for store code on a worker thread."""
    stream = request.stream()

    async def next_chunk():
        try:
            return await stream.__anext__()
        except StopAsyncIteration:
            return None

    total = 0
    while True:
        try:
            chunk = anyio.from_thread.run(next_chunk)
        except ClientDisconnect:
            raise ClientGone("the client went away before the whole body arrived") from None
        if chunk is None:
            return
        total += len(chunk)
        if total > cap:
            raise PayloadTooLarge(f"body is above this server's limit of {cap} bytes")
        yield chunk


async def put_blob(request: Request) -> Response:
    store, max_body = _store(request), _limits(request).max_body
    run_id, sha = _blob_ids(request)
    declared = _content_length(request)
    if declared is not None and declared > max_body:
        raise PayloadTooLarge(f"body of {declared} bytes is above this server's limit of {max_body} bytes; "
                              "send large blobs in chunks (PATCH .../uploads/{sha256})")
    size = await _sync(store.blob_size, run_id, sha)
    if size is not None:
        return json_response({"sha256": sha, "size": size, "created": False}, 200)
    async with _big_bodies(request):
        stored = await _sync(store.put_blob, run_id, sha, _blocking_body(request, max_body))
    return json_response(stored, 201 if stored["created"] else 200)


async def get_upload(request: Request) -> Response:
    return json_response(await _sync(_store(request).upload_state, *_blob_ids(request)))


async def patch_upload(request: Request) -> Response:
    """Append one chunk at ``Upload-Offset``; with ``Upload-Checksum`` a chunk that fails it is dropped (460)."""
    store, max_body = _store(request), _limits(request).max_body
    run_id, sha = _blob_ids(request)
    offset = _int_header(request, "upload-offset")
    length = _int_header(request, "upload-length")
    checksum = _upload_checksum(request)
    declared = _content_length(request)
    if declared is not None and declared > max_body:
        raise PayloadTooLarge(f"chunk of {declared} bytes is above this server's limit of {max_body} bytes")
    if declared is not None and offset + declared > length:
        raise BadRequest(f"chunk runs past Upload-Length: {offset} + {declared} > {length}")
    async with _big_bodies(request):
        result = await _sync(store.append_upload, run_id, sha, offset, length, _blocking_body(request, max_body),
                             checksum)
    return json_response(result)


async def post_records(request: Request) -> Response:
    run_id = _run_id(request)
    body = await _sync(security.parse_body, await read_body(request, _limits(request).parsed),
                       request.headers.get("content-type"))
    if not isinstance(body, dict) or "records" not in body:
        raise BadRequest("body must be a map {\"records\": [record, ...]}")
    return json_response(await _sync(_store(request).post_records, run_id, body["records"]))


# -- the viewer's own state: bookmarks and projections computed from the page -------------
def _bookmark_name(request: Request) -> str:
    return check_bookmark_name(request.path_params["name"])


async def list_bookmarks(request: Request) -> Response:
    return json_response(await _sync(request.app.state.bookmarks.list, _run_id(request)))


async def put_bookmark(request: Request) -> Response:
    run_id, name = _run_id(request), _bookmark_name(request)
    body = security.parse_json(await read_body(request, 64 * 1024))
    if not isinstance(body, dict) or "state" not in body:
        raise BadRequest("body must be a map {\"state\": {parameter: value, ...}}")
    bookmark, created = await _sync(request.app.state.bookmarks.put, run_id, name, body["state"])
    return json_response(bookmark, 201 if created else 200)


async def delete_bookmark(request: Request) -> Response:
    await _sync(request.app.state.bookmarks.delete, _run_id(request), _bookmark_name(request))
    return Response(status_code=204)


async def post_projection(request: Request) -> Response:
    run_id = _run_id(request)
    body = security.parse_json(await read_body(request, 64 * 1024))
    return json_response(await _sync(request.app.state.projections.submit, run_id, body), 202)


async def list_projections(request: Request) -> Response:
    return json_response(await _sync(request.app.state.projections.list, _run_id(request)))


async def get_projection(request: Request) -> Response:
    return json_response(request.app.state.projections.get(_run_id(request), request.path_params["job_id"]))


# -- the viewer ------------------------------------------------------------------------------
async def viewer_page(request: Request) -> Response:
    index = request.app.state.viewer_dir / "index.html"
    if index.is_file():
        return FileResponse(index, media_type="text/html; charset=utf-8", headers={"Cache-Control": "no-cache"})
    return Response(PLACEHOLDER, media_type="text/html; charset=utf-8")


# -- the route table -------------------------------------------------------------------------
API = "/api/v1"
# (method, path under /api/v1, handler); a GET route answers HEAD too unless a HEAD route comes first.
API_ROUTES = [
    ("GET", "/openapi.json", openapi),
    ("GET", "/health", health),
    ("GET", "/projects", list_projects),
    ("GET", "/projects/{project}/runs", list_runs),
    ("PUT", "/projects/{project}/runs/{run_id}", put_run),
    ("GET", "/runs/{run_id}", get_run),
    ("GET", "/runs/{run_id}/metrics", get_metrics),
    ("GET", "/runs/{run_id}/embeddings", get_embeddings),
    ("GET", "/runs/{run_id}/embeddings/{embedding_id}/vectors", get_vectors),
    ("GET", "/runs/{run_id}/embeddings/{embedding_id}/metadata", get_metadata),
    ("GET", "/runs/{run_id}/embeddings/{embedding_id}/columns", get_columns),
    ("GET", "/runs/{run_id}/embeddings/{embedding_id}/sprite", get_sprite),
    ("GET", "/runs/{run_id}/embeddings/{embedding_id}/neighbors", get_neighbors),
    ("GET", "/runs/{run_id}/reductions/{reduction_id}/coords", get_coords),
    ("GET", "/runs/{run_id}/reductions/{reduction_id}/columns", get_reduction_columns),
    ("GET", "/runs/{run_id}/dynamics", get_dynamics),
    ("GET", "/compare", get_compare),
    ("HEAD", "/runs/{run_id}/blobs/{sha256}", head_blob),
    ("GET", "/runs/{run_id}/blobs/{sha256}", get_blob),
    ("PUT", "/runs/{run_id}/blobs/{sha256}", put_blob),
    ("GET", "/runs/{run_id}/uploads/{sha256}", get_upload),
    ("PATCH", "/runs/{run_id}/uploads/{sha256}", patch_upload),
    ("POST", "/runs/{run_id}/records", post_records),
    ("GET", "/runs/{run_id}/bookmarks", list_bookmarks),
    ("PUT", "/runs/{run_id}/bookmarks/{name}", put_bookmark),
    ("DELETE", "/runs/{run_id}/bookmarks/{name}", delete_bookmark),
    ("GET", "/runs/{run_id}/projections", list_projections),
    ("POST", "/runs/{run_id}/projections", post_projection),
    ("GET", "/runs/{run_id}/projections/{job_id}", get_projection),
]
# Client-side routes of the single-page viewer; the embedding view keeps its state in the query string.
VIEWER_PAGES = ["/", "/projects/{rest:path}", "/runs/{rest:path}", "/view"]


def routes(viewer_dir: Path) -> list:
    """Starlette routes for the API table, the viewer's assets and its pages."""
    table = [Route(API + path, handler, methods=[method]) for method, path, handler in API_ROUTES]
    table.append(Route("/healthz", health, methods=["GET"]))  # the conventional probe path of orchestrators
    table.append(Mount("/static", app=StaticFiles(directory=viewer_dir / "static", check_dir=False)))
    table.extend(Route(path, viewer_page, methods=["GET"]) for path in VIEWER_PAGES)
    return table


@contextlib.asynccontextmanager
async def _lifespan(app: Starlette):
    app.state.collector.start()  # collects expired partial uploads now, then periodically
    try:
        yield
    finally:
        app.state.collector.stop()
        app.state.projections.close()
        app.state.store.close()


def create_app(root, api_key: str | None = None, max_body: int = DEFAULT_MAX_BODY, host: str = "127.0.0.1",
               *, allowed_hosts=(), viewer_dir: Path | None = None, upload_expiry: float = DEFAULT_UPLOAD_EXPIRY_S,
               concurrent_bodies: int = DEFAULT_CONCURRENT_BODIES, index_uri: str | None = None,
               blob_uri: str | None = None) -> Starlette:
    """Build the ASGI app serving the run directories under ``root``.

    With ``index_uri`` and ``blob_uri`` (both) it serves the shared stores instead
    (:mod:`server_stub.shared_store`, a stateless replica) and ``root`` holds only caches.

    Bound to a non-loopback ``host`` the server refuses to start without ``api_key``, since
    anyone who can reach it could write. Partial uploads and temporary files older than
    ``upload_expiry`` seconds are collected at start and periodically; at most
    ``concurrent_bodies`` blob bodies stream to disk at once.
    """
    if api_key is not None and not api_key:
        raise ValueError("api_key must be a non-empty string or None")
    if not security.is_loopback(host) and not api_key:
        raise ValueError(f"listening on {host!r} (not loopback) needs an API key: pass --api-key "
                         "or set TRACKER_API_KEY")
    if max_body < 1:
        raise ValueError(f"max_body must be at least 1 byte; got {max_body}")
    if not upload_expiry > 0:
        raise ValueError(f"upload_expiry must be a positive number of seconds; got {upload_expiry}")
    if concurrent_bodies < 1:
        raise ValueError(f"concurrent_bodies must be at least 1; got {concurrent_bodies}")
    viewer = Path(viewer_dir) if viewer_dir else VIEWER_DIR
    app = Starlette(routes=routes(viewer), exception_handlers={HTTPException: _framework_error}, lifespan=_lifespan)
    app.add_middleware(Guard, api_key=api_key, allowed_hosts=security.allowed_hostnames(host, allowed_hosts))
    app.add_middleware(security.SecurityHeaders)
    if (index_uri is None) != (blob_uri is None):
        raise ValueError("index_uri and blob_uri go together (scale-out storage); pass both or neither")
    app.state.limits = Limits(max_body=max_body, parsed=min(max_body, MAX_PARSED_BODY),
                              concurrent_bodies=concurrent_bodies)
    app.state.viewer_dir = viewer
    if index_uri is not None:
        try:
            from .shared_store import SharedBookmarks, SharedCollector, SharedProjectionJobs, SharedStore
        except ImportError as exc:
            raise ValueError(f"scale-out storage needs the 'scale' extra ({exc.name} is missing): "
                             "pip install 'tracker_sdk[scale]'") from None
        store = app.state.store = SharedStore(index_uri, blob_uri, root)
        app.state.collector = SharedCollector(store, upload_expiry)
        app.state.bookmarks = SharedBookmarks(store)
        app.state.projections = SharedProjectionJobs(store)
        return app
    app.state.store = Store(root)
    app.state.collector = Collector(app.state.store, upload_expiry)
    app.state.bookmarks = Bookmarks(app.state.store.root, app.state.store)
    app.state.projections = ProjectionJobs(app.state.store)
    return app


def _parse_args(argv):
    parser = argparse.ArgumentParser(prog="tracker-server", description="Serve tracker runs and the viewer.",
                                     epilog="tracker-server gc --root DIR [--older-than H] [--apply]: report (or "
                                            "remove) expired partial uploads and temporary files; "
                                            "tracker-server migrate --index-uri URI: create or upgrade the "
                                            "scale-out index's schema")
    parser.add_argument("--root", help="directory of runs (<root>/<project>/<run_id>/); with --index-uri or "
                                       "--blob-uri, the directory of this replica's caches and of the default "
                                       "for the one not given")
    _scale_out_args(parser)
    parser.add_argument("--create", action="store_true", help="create --root when it does not exist")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    parser.add_argument("--api-key", default=os.environ.get("TRACKER_API_KEY") or None,
                        help="key required for every write (default: $TRACKER_API_KEY); required off loopback")
    parser.add_argument("--reindex", action="store_true", help="rebuild the SQLite index from the journals first")
    parser.add_argument("--max-body-mb", type=float, default=DEFAULT_MAX_BODY / 2 ** 20,
                        help="largest request body in MiB (default 256); larger blobs go in chunks")
    parser.add_argument("--upload-expiry-hours", type=_positive_hours, default=DEFAULT_UPLOAD_EXPIRY_S / 3600,
                        help="partial uploads and temporary files older than this are collected (default 24)")
    parser.add_argument("--concurrent-bodies", type=int, default=DEFAULT_CONCURRENT_BODIES,
                        help=f"blob bodies streamed to disk at once (default {DEFAULT_CONCURRENT_BODIES})")
    parser.add_argument("--allowed-host", action="append", default=[],
                        help="extra Host name this server answers to (repeatable)")
    parser.add_argument("--log-level", default="warning")
    return parser.parse_args(argv)


def _scale_out_args(parser) -> None:
    parser.add_argument("--index-uri", help="scale-out index: sqlite:///PATH or postgresql+psycopg://USER@HOST/DB "
                                            f"(default with --blob-uri: sqlite:///ROOT/{SCALE_OUT_INDEX})")
    parser.add_argument("--blob-uri", help="scale-out blob store: a directory or s3://BUCKET/PREFIX?endpoint_url=URL "
                                           f"(default with --index-uri: ROOT/{SCALE_OUT_BLOBS})")


def _scale_out(args) -> tuple[str | None, str | None, str | None]:
    """(root or cache dir, index uri, blob uri) from the arguments; ValueError names what is missing."""
    if args.index_uri is None and args.blob_uri is None:
        if not args.root:
            raise ValueError("--root DIR is required (or --index-uri and --blob-uri for scale-out storage)")
        return args.root, None, None
    root = args.root
    if root is None:
        if args.index_uri is None or args.blob_uri is None:
            missing = "--index-uri" if args.index_uri is None else "--blob-uri"
            raise ValueError(f"{missing} or --root (where its default goes) is required with "
                             f"{'--blob-uri' if args.index_uri is None else '--index-uri'}")
        import tempfile

        root = tempfile.mkdtemp(prefix="tracker-server-cache-")  # caches only: nothing to keep
    index_uri = args.index_uri or f"sqlite:///{os.path.abspath(os.path.join(root, SCALE_OUT_INDEX))}"
    blob_uri = args.blob_uri or os.path.abspath(os.path.join(root, SCALE_OUT_BLOBS))
    return root, index_uri, blob_uri


def _migrate_main(argv) -> int:
    """``tracker-server migrate --index-uri URI``: bring the scale-out index to the newest schema."""
    parser = argparse.ArgumentParser(prog="tracker-server migrate",
                                     description="Create or upgrade the schema of a scale-out index database.")
    parser.add_argument("--index-uri", required=True, help="sqlite:///PATH or postgresql+psycopg://USER@HOST/DB")
    args = parser.parse_args(argv)
    try:
        from sqlalchemy.exc import SQLAlchemyError

        from .sqlindex import check_uri, make_engine, migrate
    except ImportError as exc:
        print(f"tracker-server migrate: needs the 'scale' extra ({exc.name} is missing): "
              "pip install 'tracker_sdk[scale]'", file=sys.stderr)
        return 2
    try:
        engine = make_engine(check_uri(args.index_uri))
    except ValueError as exc:
        print(f"tracker-server migrate: {exc}", file=sys.stderr)
        return 2
    try:
        before, now = migrate(engine)
    except SQLAlchemyError as exc:
        print(f"tracker-server migrate: the database did not answer as expected: {str(exc).splitlines()[0]}",
              file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    print(f"tracker-server migrate: schema revision {before or 'none'} -> {now}"
          + (" (already current)" if before == now else ""))
    return 0


def _positive_hours(value: str) -> float:
    try:
        hours = float(value)
    except ValueError:
        hours = float("nan")
    if not 0 < hours < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of hours; got {value!r}")
    return hours


def _gc_main(argv) -> int:
    """``tracker-server gc``: what the server's collector would remove; ``--apply`` removes it."""
    parser = argparse.ArgumentParser(prog="tracker-server gc",
                                     description="Report (dry run) or remove expired partial uploads and "
                                                 "temporary files under a server root.")
    parser.add_argument("--root", help="the server's directory of runs (with --index-uri/--blob-uri: as for "
                                       "the server)")
    _scale_out_args(parser)
    parser.add_argument("--older-than", type=_positive_hours, default=DEFAULT_UPLOAD_EXPIRY_S / 3600,
                        metavar="HOURS", help="age past which a partial file has expired (default 24)")
    parser.add_argument("--apply", action="store_true", help="remove them (default: only report)")
    args = parser.parse_args(argv)
    try:
        root, index_uri, blob_uri = _scale_out(args)
    except ValueError as exc:
        print(f"tracker-server gc: {exc}", file=sys.stderr)
        return 2
    if index_uri is not None:
        return _gc_shared(root, index_uri, blob_uri, args.older_than * 3600, args.apply)
    if not os.path.isdir(args.root):
        print(f"tracker-server gc: --root {args.root} is not a directory", file=sys.stderr)
        return 2
    found = collect_garbage(Path(args.root), args.older_than * 3600, apply=args.apply)
    verb = "removed" if args.apply else "would remove"
    for item in found:
        print(f"{verb} {item.path} ({item.size} bytes, {item.age_s / 3600:.1f} h old)")
    total = sum(item.size for item in found)
    print(f"tracker-server gc: {verb} {len(found)} files, {total} bytes"
          + ("" if args.apply or not found else "; run again with --apply to remove them"))
    return 0


def _gc_shared(root: str, index_uri: str, blob_uri: str, max_age_s: float, apply: bool) -> int:
    """``tracker-server gc`` on the scale-out stores: blobs no run links to and stale partial uploads."""
    from .shared_store import SharedStore

    try:
        store = SharedStore(index_uri, blob_uri, root)
    except ValueError as exc:  # SchemaError included
        print(f"tracker-server gc: {exc}", file=sys.stderr)
        return 2
    try:
        found = store.collect_garbage(max_age_s, apply=apply)
    finally:
        store.close()
    verb = "removed" if apply else "would remove"
    for item in found:
        print(f"{verb} {item.kind} {item.path} ({item.size} bytes, {item.age_s / 3600:.1f} h old)")
    print(f"tracker-server gc: {verb} {len(found)} blobs or partial uploads"
          + ("" if apply or not found else "; run again with --apply to remove them"))
    return 0


def _bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound before anything says "serving" (a busy port is one clear error)."""
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def main(argv=None) -> int:
    """``tracker-server --root DIR [--create] [--host H] [--port P] [--api-key K] [--reindex] ...``
    or ``tracker-server gc --root DIR [--older-than H] [--apply]``."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["gc"]:
        return _gc_main(argv[1:])
    if argv[:1] == ["migrate"]:
        return _migrate_main(argv[1:])
    args = _parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        root, index_uri, blob_uri = _scale_out(args)
    except ValueError as exc:
        print(f"tracker-server: {exc}", file=sys.stderr)
        return 2
    if not os.path.isdir(root):
        if os.path.lexists(root) or not args.create:
            print(f"tracker-server: --root {root} is not a directory; pass --create to create it",
                  file=sys.stderr)
            return 2
        os.makedirs(root)
    try:
        app = create_app(root, api_key=args.api_key, max_body=int(args.max_body_mb * 2 ** 20),
                         host=args.host, allowed_hosts=args.allowed_host,
                         upload_expiry=args.upload_expiry_hours * 3600, concurrent_bodies=args.concurrent_bodies,
                         index_uri=index_uri, blob_uri=blob_uri)
    except ValueError as exc:  # a SchemaError of the scale-out index is one too: it names the command to run
        print(f"tracker-server: {exc}", file=sys.stderr)
        return 2
    try:
        sock = _bind(args.host, args.port)
    except OSError as exc:
        reason = "is already in use" if exc.errno == errno.EADDRINUSE else f"cannot be bound ({exc.strerror})"
        print(f"tracker-server: port {args.port} on {args.host} {reason}; stop the other server or pass "
              "another --port", file=sys.stderr)
        app.state.store.close()
        return 1
    if args.reindex:
        count = app.state.store.index.rebuild()
        print(f"tracker-server: reindexed {count} runs under {root}", file=sys.stderr)
    import uvicorn

    served = os.path.abspath(root) if index_uri is None else app.state.store.describe()
    print(f"tracker-server: serving {served} on http://{args.host}:{args.port}", file=sys.stderr, flush=True)
    config = uvicorn.Config(app, log_level=args.log_level, server_header=False, proxy_headers=False,
                            access_log=False)
    uvicorn.Server(config).run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main())
