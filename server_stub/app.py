"""The tracking server: the Starlette app (``create_app``) and the ``tracker-server`` command.

Routes live under ``/api/v1`` (see ``openapi.py`` and the README); the viewer's
single page is served for ``/``, ``/projects/...`` and ``/runs/...``, its assets under
``/static/``. Middleware order, outermost first: hardening headers, a catch-all that turns
any failure into a JSON error, then Host / Origin / API-key checks.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import logging
import os
import sys
from pathlib import Path

import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from . import security
from .openapi import openapi_schema
from .security import ApiError, check_hex_id, check_run_id, check_sha256, json_bytes
from .store import Store

log = logging.getLogger("server_stub")
VIEWER_DIR = Path(__file__).parent / "viewer"
DEFAULT_PORT = 8470
DEFAULT_MAX_BODY = 256 * 1024 * 1024
MAX_PARSED_BODY = 32 * 1024 * 1024
WRITE_METHODS = frozenset({"PUT", "POST", "PATCH", "DELETE"})
PLACEHOLDER = (b"<!doctype html><html><head><meta charset=utf-8><title>tracker</title></head>"
               b"<body><h1>tracker server</h1><p>The viewer is not installed; the API is at "
               b"<a href=\"/api/v1/projects\">/api/v1/projects</a>.</p></body></html>")


def json_response(obj, status: int = 200, headers: dict | None = None) -> Response:
    return Response(json_bytes(obj), status_code=status, media_type="application/json", headers=headers)


def error_response(status: int, message: str, **extra) -> Response:
    return json_response({"error": message, **extra}, status)


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
            if isinstance(exc, ApiError):
                response = error_response(exc.status, exc.message, **exc.extra)
            elif isinstance(exc, ClientDisconnect):
                return
            else:
                log.exception("unexpected error on %s %s", scope["method"], scope["path"])
                response = error_response(500, "internal server error; the server log has the details")
            if scope["method"] == "HEAD":
                response.body = b""
            await response(scope, receive, send)


async def _api_error(request: Request, exc: ApiError) -> Response:
    return error_response(exc.status, exc.message, **exc.extra)


async def _http_error(request: Request, exc: HTTPException) -> Response:
    message = {404: "not found", 405: "method not allowed"}.get(exc.status_code, str(exc.detail))
    return error_response(exc.status_code, message)


def _content_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    if value is None:
        return None
    if not value.isdigit():
        raise ApiError(400, f"Content-Length must be a non-negative integer; got {value[:40]!r}")
    return int(value)


async def read_body(request: Request, cap: int) -> bytes:
    """The whole body, refusing past ``cap`` bytes with 413 before or while reading."""
    declared = _content_length(request)
    if declared is not None and declared > cap:
        raise ApiError(413, f"body of {declared} bytes is above this server's limit of {cap} bytes")
    parts, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > cap:
            raise ApiError(413, f"body is above this server's limit of {cap} bytes")
        parts.append(chunk)
    return b"".join(parts)


def _int_param(request: Request, name: str, default: int | None = None) -> int:
    value = request.query_params.get(name)
    if value is None:
        if default is None:
            raise ApiError(400, f"query parameter {name!r} is required")
        return default
    try:
        return int(value)
    except ValueError:
        raise ApiError(400, f"query parameter {name!r} must be an integer; got {value[:40]!r}") from None


def _int_header(request: Request, name: str) -> int:
    value = request.headers.get(name)
    if value is None or not value.strip().isdigit():
        raise ApiError(400, f"header {name.title()} must be a non-negative integer; got {value!r}")
    return int(value)


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
        raise ApiError(422, f"the stored {what} are not a C-order float32 2-D array")
    size = int(shape[0]) * int(shape[1]) * 4
    if path.stat().st_size < offset + size:
        raise ApiError(422, f"the stored {what} blob is truncated")
    headers = {"X-Shape": f"{shape[0]},{shape[1]}", "X-Dtype": "float32", "Content-Length": str(size),
               "Cache-Control": "private, max-age=31536000, immutable"}
    return StreamingResponse(_npy_stream(path, offset, size), media_type="application/octet-stream",
                             headers=headers)


def create_app(root, api_key: str | None = None, max_body: int = DEFAULT_MAX_BODY, host: str = "127.0.0.1",
               *, allowed_hosts=(), viewer_dir: Path | None = None) -> Starlette:
    """Build the ASGI app serving the run directories under ``root``.

    Bound to a non-loopback ``host`` the server refuses to start without ``api_key``, since
    anyone who can reach it could write.
    """
    if api_key is not None and not api_key:
        raise ValueError("api_key must be a non-empty string or None")
    if not security.is_loopback(host) and not api_key:
        raise ValueError(f"listening on {host!r} (not loopback) needs an API key: pass --api-key "
                         "or set TRACKER_API_KEY")
    if max_body < 1:
        raise ValueError(f"max_body must be at least 1 byte; got {max_body}")
    store = Store(root)
    viewer = Path(viewer_dir) if viewer_dir else VIEWER_DIR
    parsed_cap = min(max_body, MAX_PARSED_BODY)

    async def sync(func, *args):
        return await run_in_threadpool(func, *args)

    # -- read side -----------------------------------------------------------------------
    async def projects(request):
        await sync(store.index.refresh)
        return json_response(await sync(store.index.projects))

    async def project_runs(request):
        project = security.check_project(request.path_params["project"])
        await sync(store.index.refresh)
        runs = await sync(store.index.runs, project)
        if not runs and not (store.root / project).is_dir():
            raise ApiError(404, f"no project {project!r}")
        return json_response(runs)

    def _run_summary(run_id):
        run = store.run(run_id)
        next_seq = max((run.records[-1]["seq"] + 1) if run.records else 0, store.live_next_seq(run_id))
        return {"run_id": run.run_id, "project": run.project, "name": run.name, "created": run.info.get("created"),
                "status": run.status, "parameters": run.parameters, "others": run.others, "next_seq": next_seq,
                "metric_names": sorted({m["name"] for m in run.metrics}),
                "n_embeddings": len(run.embeddings)}

    async def get_run(request):
        return json_response(await sync(_run_summary, check_run_id(request.path_params["run_id"])))

    def _metrics(run_id):
        out: dict[str, list] = {}
        for m in store.run(run_id).metrics:
            out.setdefault(m["name"], []).append(
                {"step": m.get("step"), "epoch": m.get("epoch"), "value": m.get("value"), "t": m.get("t")})
        return out

    async def metrics(request):
        return json_response(await sync(_metrics, check_run_id(request.path_params["run_id"])))

    def _embeddings(run_id):
        out = []
        for emb in store.run(run_id).embeddings:
            meta = emb.record.get("metadata") or {}
            names, types = meta.get("columns") or [], meta.get("types") or []
            columns = [{"name": n, "type": types[i] if i < len(types) else None} for i, n in enumerate(names)]
            if not names:  # an older or foreign record without the column list: read the blob
                with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                    columns = [{"name": c["name"], "type": c.get("type")} for c in emb.metadata["columns"]]
            for ref in emb.extra_columns:
                for i, n in enumerate(ref.get("columns") or []):
                    columns = [c for c in columns if c["name"] != n]
                    extra_types = ref.get("types") or []
                    columns.append({"name": n, "type": extra_types[i] if i < len(extra_types) else None})
            sprite = None
            if emb.sprite:
                sprite = {k: v for k, v in emb.sprite.items() if k != "sha256"}
                sprite.setdefault("n", emb.n)
            out.append({
                "id": emb.id, "title": emb.title, "group": emb.group, "step": emb.step, "n": emb.n, "dim": emb.dim,
                "columns": columns, "sprite": sprite,
                "reductions": [{"id": r.id, "method": r.method, "n_components": r.n_components, "params": r.params,
                                "fitted_on": r.fitted_on, "timeline": r.timeline, "quality": r.quality}
                               for r in emb.reductions]})
        return out

    async def embeddings(request):
        return json_response(await sync(_embeddings, check_run_id(request.path_params["run_id"])))

    def _ids(request):
        return (check_run_id(request.path_params["run_id"]),
                check_hex_id(request.path_params["embedding_id"], "embedding_id"))

    def _vectors(run_id, embedding_id):
        emb = store.embedding(run_id, embedding_id)
        return _array_response(store.blob_file(run_id, emb.record["vectors"]["sha256"]), "vectors")

    async def vectors(request):
        return await sync(_vectors, *_ids(request))

    def _metadata(run_id, embedding_id):
        emb = store.embedding(run_id, embedding_id)
        try:
            meta = emb.metadata
        except (OSError, ValueError) as exc:
            raise ApiError(422, f"metadata of embedding {embedding_id} is not readable: {type(exc).__name__}") from None
        return json_response({"n": meta["n"], "columns": meta["columns"]})

    async def metadata(request):
        return await sync(_metadata, *_ids(request))

    def _sprite(run_id, embedding_id):
        emb = store.embedding(run_id, embedding_id)
        if not emb.sprite or not isinstance(emb.sprite.get("sha256"), str):
            raise ApiError(404, f"embedding {embedding_id} has no sprite")
        path = store.blob_file(run_id, check_sha256(emb.sprite["sha256"]))
        with open(path, "rb") as fh:
            if fh.read(8) != security.PNG_MAGIC:
                raise ApiError(422, f"the sprite of embedding {embedding_id} is not a PNG")
        return FileResponse(path, media_type="image/png",
                            headers={"Cache-Control": "private, max-age=31536000, immutable"})

    async def sprite(request):
        return await sync(_sprite, *_ids(request))

    def _coords(run_id, reduction_id):
        red = store.reduction(run_id, reduction_id)
        return _array_response(store.blob_file(run_id, check_sha256(red.record["coords"]["sha256"])), "coordinates")

    async def coords(request):
        return await sync(_coords, check_run_id(request.path_params["run_id"]),
                          check_hex_id(request.path_params["reduction_id"], "reduction_id"))

    async def neighbors(request):
        run_id, embedding_id = _ids(request)
        index = _int_param(request, "index")
        k = _int_param(request, "k", 10)
        metric = request.query_params.get("metric", "cosine")
        return json_response(await sync(store.neighbors, run_id, embedding_id, index, k, metric))

    async def openapi(request):
        return json_response(openapi_schema())

    # -- write side ----------------------------------------------------------------------
    async def put_run(request):
        project = security.check_project(request.path_params["project"])
        run_id = check_run_id(request.path_params["run_id"])
        info = security.parse_json(await read_body(request, min(parsed_cap, 1 << 20)))
        return json_response(await sync(store.put_run, project, run_id, info))

    def _blob_ids(request):
        return check_run_id(request.path_params["run_id"]), check_sha256(request.path_params["sha256"])

    async def head_blob(request):
        run_id, sha = _blob_ids(request)
        size = await sync(store.blob_size, run_id, sha)
        if size is None:
            return Response(status_code=404, headers={"Content-Length": "0"})
        return Response(status_code=200, headers={"Content-Length": str(size)})

    async def get_blob(request):
        run_id, sha = _blob_ids(request)
        path = await sync(store.blob_file, run_id, sha)
        return FileResponse(path, media_type="application/octet-stream", filename=sha,
                            headers={"Cache-Control": "private, max-age=31536000, immutable"})

    async def put_blob(request):
        run_id, sha = _blob_ids(request)
        declared = _content_length(request)
        if declared is not None and declared > max_body:
            raise ApiError(413, f"body of {declared} bytes is above this server's limit of {max_body} bytes; "
                                "send large blobs in chunks (PATCH .../uploads/{sha256})")
        size = await sync(store.blob_size, run_id, sha)
        if size is not None:
            return json_response({"sha256": sha, "size": size, "created": False}, 200)
        fh, tmp = await sync(store.new_blob_tmp, run_id)
        digest, total = hashlib.sha256(), 0
        try:
            async for chunk in request.stream():
                total += len(chunk)
                if total > max_body:
                    raise ApiError(413, f"body is above this server's limit of {max_body} bytes")
                digest.update(chunk)
                fh.write(chunk)
            fh.close()
            created = await sync(store.commit_blob, run_id, sha, tmp, digest.hexdigest())
        except BaseException:
            fh.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return json_response({"sha256": sha, "size": total, "created": created}, 201 if created else 200)

    async def get_upload(request):
        run_id, sha = _blob_ids(request)
        return json_response(await sync(store.upload_state, run_id, sha))

    async def patch_upload(request):
        run_id, sha = _blob_ids(request)
        offset = _int_header(request, "upload-offset")
        length = _int_header(request, "upload-length")
        declared = _content_length(request)
        if declared is not None and declared > max_body:
            raise ApiError(413, f"chunk of {declared} bytes is above this server's limit of {max_body} bytes")
        if declared is not None and offset + declared > length:
            raise ApiError(400, f"chunk runs past Upload-Length: {offset} + {declared} > {length}")
        state = await sync(store.upload_state, run_id, sha)
        if state["complete"]:
            return json_response({"offset": state["offset"], "complete": True})
        lock = store.upload_lock(run_id, sha)
        if not lock.acquire(blocking=False):
            raise ApiError(409, "another request is appending to this upload", offset=state["offset"])
        result = None
        try:
            fh = await sync(store.open_upload, run_id, sha, offset, length)
            received = 0
            try:
                async for chunk in request.stream():
                    received += len(chunk)
                    if received > max_body or offset + received > length:
                        await sync(store.truncate_upload, fh, offset)
                        fh = None
                        if received > max_body:
                            raise ApiError(413, f"chunk is above this server's limit of {max_body} bytes")
                        raise ApiError(400, f"chunk runs past Upload-Length {length}")
                    fh.write(chunk)
            except ClientDisconnect:
                pass  # keep the prefix that arrived: the client resumes from the server's offset
            finally:
                if fh is not None:
                    result = await sync(store.finish_upload_chunk, run_id, sha, fh, length)
        finally:
            lock.release()
        return json_response(result)

    async def post_records(request):
        run_id = check_run_id(request.path_params["run_id"])
        body = security.parse_body(await read_body(request, parsed_cap), request.headers.get("content-type"))
        if not isinstance(body, dict) or "records" not in body:
            raise ApiError(400, "body must be a map {\"records\": [record, ...]}")
        return json_response(await sync(store.post_records, run_id, body["records"]))

    # -- the viewer ----------------------------------------------------------------------
    async def viewer_page(request):
        index = viewer / "index.html"
        if index.is_file():
            return FileResponse(index, media_type="text/html; charset=utf-8", headers={"Cache-Control": "no-cache"})
        return Response(PLACEHOLDER, media_type="text/html; charset=utf-8")

    api = "/api/v1"
    routes = [
        Route(f"{api}/openapi.json", openapi, methods=["GET"]),
        Route(f"{api}/projects", projects, methods=["GET"]),
        Route(f"{api}/projects/{{project}}/runs", project_runs, methods=["GET"]),
        Route(f"{api}/projects/{{project}}/runs/{{run_id}}", put_run, methods=["PUT"]),
        Route(f"{api}/runs/{{run_id}}", get_run, methods=["GET"]),
        Route(f"{api}/runs/{{run_id}}/metrics", metrics, methods=["GET"]),
        Route(f"{api}/runs/{{run_id}}/embeddings", embeddings, methods=["GET"]),
        Route(f"{api}/runs/{{run_id}}/embeddings/{{embedding_id}}/vectors", vectors, methods=["GET"]),
        Route(f"{api}/runs/{{run_id}}/embeddings/{{embedding_id}}/metadata", metadata, methods=["GET"]),
        Route(f"{api}/runs/{{run_id}}/embeddings/{{embedding_id}}/sprite", sprite, methods=["GET"]),
        Route(f"{api}/runs/{{run_id}}/embeddings/{{embedding_id}}/neighbors", neighbors, methods=["GET"]),
        Route(f"{api}/runs/{{run_id}}/reductions/{{reduction_id}}/coords", coords, methods=["GET"]),
        Route(f"{api}/runs/{{run_id}}/blobs/{{sha256}}", head_blob, methods=["HEAD"]),
        Route(f"{api}/runs/{{run_id}}/blobs/{{sha256}}", get_blob, methods=["GET"]),
        Route(f"{api}/runs/{{run_id}}/blobs/{{sha256}}", put_blob, methods=["PUT"]),
        Route(f"{api}/runs/{{run_id}}/uploads/{{sha256}}", get_upload, methods=["GET"]),
        Route(f"{api}/runs/{{run_id}}/uploads/{{sha256}}", patch_upload, methods=["PATCH"]),
        Route(f"{api}/runs/{{run_id}}/records", post_records, methods=["POST"]),
        Mount("/static", app=StaticFiles(directory=viewer / "static", check_dir=False)),
        Route("/", viewer_page, methods=["GET"]),
        Route("/projects/{rest:path}", viewer_page, methods=["GET"]),
        Route("/runs/{rest:path}", viewer_page, methods=["GET"]),
        # the embedding view keeps its state in the query string: /view?run=..&emb=.. (viewer, issue 7)
        Route("/view", viewer_page, methods=["GET"]),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app):
        try:
            yield
        finally:
            store.close()

    app = Starlette(routes=routes, exception_handlers={ApiError: _api_error, HTTPException: _http_error},
                    lifespan=lifespan)
    app.add_middleware(Guard, api_key=api_key, allowed_hosts=security.allowed_hostnames(host, allowed_hosts))
    app.add_middleware(security.SecurityHeaders)
    app.state.store = store
    return app


def _parse_args(argv):
    parser = argparse.ArgumentParser(prog="tracker-server", description="Serve tracker runs and the viewer.")
    parser.add_argument("--root", required=True, help="directory of runs (<root>/<project>/<run_id>/)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    parser.add_argument("--api-key", default=os.environ.get("TRACKER_API_KEY") or None,
                        help="key required for every write (default: $TRACKER_API_KEY); required off loopback")
    parser.add_argument("--reindex", action="store_true", help="rebuild the SQLite index from the journals first")
    parser.add_argument("--max-body-mb", type=float, default=DEFAULT_MAX_BODY / 2 ** 20,
                        help="largest request body in MiB (default 256); larger blobs go in chunks")
    parser.add_argument("--allowed-host", action="append", default=[],
                        help="extra Host name this server answers to (repeatable)")
    parser.add_argument("--log-level", default="warning")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    """``tracker-server --root DIR [--host H] [--port P] [--api-key K] [--reindex] [--max-body-mb N]``."""
    args = _parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        app = create_app(args.root, api_key=args.api_key, max_body=int(args.max_body_mb * 2 ** 20),
                         host=args.host, allowed_hosts=args.allowed_host)
    except ValueError as exc:
        print(f"tracker-server: {exc}", file=sys.stderr)
        return 2
    if args.reindex:
        count = app.state.store.index.rebuild()
        print(f"tracker-server: reindexed {count} runs under {args.root}", file=sys.stderr)
    import uvicorn

    print(f"tracker-server: serving {os.path.abspath(args.root)} on http://{args.host}:{args.port}", file=sys.stderr,
          flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, server_header=False,
                proxy_headers=False, access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
