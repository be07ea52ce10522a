"""Server storage on the run format: runs, verified blobs, resumable uploads, record replay.

The server's data directory is exactly the layout the SDK writes offline
(``<root>/<project>/<run_id>/``), so an offline directory is served as it is. Paths are
built only from ids and hashes that :mod:`server_stub.security` has checked. A run the
server writes has one open :class:`RunWriter` (its flock keeps a local process from writing
the same run at the same time). Partial chunked uploads live in
``<root>/.uploads/<run_id>/<sha256>.part`` and survive restarts.
"""

from __future__ import annotations

import fcntl
import logging
import math
import os
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

from tracker_sdk.errors import RunFormatError, RunLockedError
from tracker_sdk.runformat import FORMAT_VERSION, RECORD_KINDS, RUN_JSON, RunWriter, open_run
from tracker_sdk.runformat.files import blob_path, fsync_dir, hash_file, read_json

from . import security
from .index import Index, run_signature
from .security import ApiError, check_hex_id, check_run_id, check_sha256

log = logging.getLogger("server_stub.store")
UPLOADS = ".uploads"
MAX_RUN_JSON = 64 * 1024
MAX_TEXT = 4096


class _LiveRun:
    """A run the server is writing: its writer, a lock, and each embedding's row count."""

    def __init__(self, writer: RunWriter, embedding_rows: dict[str, int]):
        self.writer = writer
        self.embedding_rows = embedding_rows
        self.lock = threading.Lock()


class Store:
    """All access to ``root``; methods raise :class:`ApiError` for anything a client got wrong."""

    def __init__(self, root, *, max_blob: int = 64 * 1024 ** 3, max_writers: int = 128):
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.index = Index(self.root)
        self.uploads = self.root / UPLOADS
        self.max_blob = max_blob
        self.max_writers = max_writers
        self._lock = threading.Lock()
        self._live: OrderedDict[str, _LiveRun] = OrderedDict()
        self._run_cache: dict[str, tuple[str, object]] = {}
        self._upload_locks: dict[tuple[str, str], threading.Lock] = {}
        self._knn_cache: OrderedDict[tuple, tuple] = OrderedDict()

    def close(self) -> None:
        with self._lock:
            live, self._live = list(self._live.values()), OrderedDict()
        for entry in live:
            with entry.lock:
                entry.writer.close()
        self.index.close()

    # -- locating runs -------------------------------------------------------------------
    def locate(self, run_id: str) -> Path | None:
        """The directory of ``run_id`` (any project), or None."""
        check_run_id(run_id)
        project = self.index.locate(run_id)
        if project is not None and (self.root / project / run_id / RUN_JSON).is_file():
            return self.root / project / run_id
        for entry in os.scandir(self.root):
            if security.PROJECT_RE.match(entry.name) and entry.is_dir(follow_symlinks=False):
                candidate = Path(entry.path) / run_id
                if (candidate / RUN_JSON).is_file() and not candidate.is_symlink():
                    return candidate
        return None

    def run_dir(self, run_id: str) -> Path:
        path = self.locate(run_id)
        if path is None:
            raise ApiError(404, f"no run {run_id}")
        return path

    def run(self, run_id: str):
        """The run as read from disk, re-read only when its files changed."""
        path = self.run_dir(run_id)
        signature = run_signature(path)
        cached = self._run_cache.get(run_id)
        if cached is not None and cached[0] == signature:
            return cached[1]
        try:
            run = open_run(path)
        except RunFormatError as exc:
            raise ApiError(422, f"run {run_id} cannot be read: {_relative(str(exc), self.root)}") from None
        if len(self._run_cache) >= 256:  # runs are small once read, but not free; forget the oldest
            self._run_cache.pop(next(iter(self._run_cache)), None)
        self._run_cache[run_id] = (signature, run)
        return run

    # -- creating runs -------------------------------------------------------------------
    def put_run(self, project: str, run_id: str, info) -> dict:
        """Create the run or resume it; idempotent by run_id."""
        security.check_project(project)
        check_run_id(run_id)
        if not isinstance(info, dict):
            raise ApiError(400, "the body must be a JSON object: the run's run.json")
        if info.get("run_id", run_id) != run_id:
            raise ApiError(400, f"body run_id {info.get('run_id')!r} does not match the URL's {run_id}")
        if info.get("format_version", FORMAT_VERSION) != FORMAT_VERSION:
            raise ApiError(400, f"format_version {info.get('format_version')!r} is not supported; "
                                f"this server stores version {FORMAT_VERSION}")
        for key in ("name", "workspace", "status"):
            if info.get(key) is not None and not (isinstance(info[key], str) and len(info[key]) <= MAX_TEXT):
                raise ApiError(400, f"run.json field {key!r} must be a string of at most {MAX_TEXT} characters")
        existing = self.locate(run_id)
        if existing is not None and existing.parent.name != project:
            raise ApiError(409, f"run {run_id} already exists in project {existing.parent.name!r}")
        run_dir = self.root / project / run_id
        clean = {**info, "run_id": run_id, "project": project, "format_version": FORMAT_VERSION}
        live = self._live_run(run_dir, run_id, info=clean)
        with live.lock:
            current = read_json(run_dir / RUN_JSON)
            if any(current.get(k) != v for k, v in clean.items()):  # a resume may bring a new name or status
                live.writer.update_info(**clean)
        self.index.update(project, run_id, run_dir)
        return {"run_id": run_id, "project": project, "next_seq": live.writer.next_seq}

    def _live_run(self, run_dir: Path, run_id: str, info: dict | None = None) -> _LiveRun:
        with self._lock:
            live = self._live.get(run_id)
            if live is not None and not live.writer.closed:
                self._live.move_to_end(run_id)
                return live
            try:
                writer = RunWriter(run_dir, info=info)
            except RunLockedError:
                raise ApiError(409, f"run {run_id} is being written by another process") from None
            rows = {}
            try:
                for emb in open_run(run_dir).embeddings:
                    rows[emb.id] = emb.n
            except RunFormatError as exc:
                writer.close()
                raise ApiError(422, f"run {run_id} cannot be read: {_relative(str(exc), self.root)}") from None
            live = self._live[run_id] = _LiveRun(writer, rows)
            evicted = []
            while len(self._live) > self.max_writers:
                evicted.append(self._live.popitem(last=False)[1])
        for old in evicted:
            with old.lock:
                old.writer.close()
        return live

    def live_next_seq(self, run_id: str) -> int:
        """The next seq of a run this server is writing (0 when it has no writer open)."""
        live = self._live.get(run_id)
        return live.writer.next_seq if live is not None and not live.writer.closed else 0

    # -- blobs ---------------------------------------------------------------------------
    def blob_size(self, run_id: str, sha: str) -> int | None:
        check_sha256(sha)
        path = blob_path(self.run_dir(run_id), sha)
        try:
            return path.stat().st_size
        except FileNotFoundError:
            return None

    def blob_file(self, run_id: str, sha: str) -> Path:
        check_sha256(sha)
        path = blob_path(self.run_dir(run_id), sha)
        if not path.is_file():
            raise ApiError(404, f"run {run_id} has no blob {sha}")
        return path

    def new_blob_tmp(self, run_id: str):
        """An open temp file next to the run's blobs (same filesystem, so the rename is atomic)."""
        tmp_dir = self.run_dir(run_id) / "blobs" / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=tmp_dir, suffix=".part")
        return os.fdopen(fd, "wb", buffering=0), Path(name)

    def commit_blob(self, run_id: str, sha: str, tmp: Path, digest: str) -> bool:
        """Make a fully received temp file visible as blob ``sha``; True when it is new."""
        try:
            if digest != sha:
                raise ApiError(400, f"body hashes to {digest}, not to {sha}")
            final = blob_path(self.run_dir(run_id), sha)
            if final.exists():
                return False
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, final)
            fsync_dir(final.parent)
            return True
        finally:
            _unlink_quietly(tmp)

    # -- chunked uploads -----------------------------------------------------------------
    def _upload_paths(self, run_id: str, sha: str) -> tuple[Path, Path]:
        base = self.uploads / check_run_id(run_id)
        return base / f"{check_sha256(sha)}.part", base / f"{sha}.length"

    def upload_lock(self, run_id: str, sha: str) -> threading.Lock:
        with self._lock:
            return self._upload_locks.setdefault((run_id, sha), threading.Lock())

    def upload_state(self, run_id: str, sha: str) -> dict:
        size = self.blob_size(run_id, sha)
        if size is not None:
            return {"offset": size, "complete": True}
        part, length_file = self._upload_paths(run_id, sha)
        offset = part.stat().st_size if part.is_file() else 0
        state = {"offset": offset, "complete": False}
        if length_file.is_file():
            state["length"] = int(length_file.read_text() or 0)
        return state

    def open_upload(self, run_id: str, sha: str, offset: int, length: int):
        """Open the partial file for appending at ``offset``; returns the open file (flock'ed)."""
        if length > self.max_blob:
            raise ApiError(413, f"Upload-Length {length} is above this server's limit of {self.max_blob} bytes")
        if offset > length:
            raise ApiError(400, f"Upload-Offset {offset} is past Upload-Length {length}")
        part, length_file = self._upload_paths(run_id, sha)
        part.parent.mkdir(parents=True, exist_ok=True)
        if length_file.is_file():
            known = int(length_file.read_text() or -1)
            if known != length:
                raise ApiError(400, f"Upload-Length {length} differs from {known}, given when this upload began")
        else:
            length_file.write_text(str(length))
        fh = open(part, "ab", buffering=0)
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            raise ApiError(409, "another request is appending to this upload", offset=part.stat().st_size) from None
        current = os.fstat(fh.fileno()).st_size
        if current != offset:
            fh.close()
            raise ApiError(409, f"Upload-Offset {offset} does not match the server's offset {current}", offset=current)
        return fh

    def finish_upload_chunk(self, run_id: str, sha: str, fh, length: int) -> dict:
        """fsync what arrived; when the upload is whole, verify its hash and commit the blob."""
        try:
            os.fsync(fh.fileno())
            offset = os.fstat(fh.fileno()).st_size
        finally:
            fh.close()
        if offset < length:
            return {"offset": offset, "complete": False}
        part, length_file = self._upload_paths(run_id, sha)
        digest = hash_file(part)
        if digest != sha:
            _unlink_quietly(part)
            _unlink_quietly(length_file)
            raise ApiError(400, f"the uploaded bytes hash to {digest}, not to {sha}; the partial upload was discarded")
        final = blob_path(self.run_dir(run_id), sha)
        if not final.exists():
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(part, final)
            fsync_dir(final.parent)
        _unlink_quietly(part)
        _unlink_quietly(length_file)
        return {"offset": length, "complete": True}

    def truncate_upload(self, fh, offset: int) -> None:
        try:
            fh.truncate(offset)
        finally:
            fh.close()

    # -- records -------------------------------------------------------------------------
    def post_records(self, run_id: str, records) -> dict:
        """Append the records at or past next_seq, in seq order; see the API reference."""
        run_dir = self.run_dir(run_id)
        if not isinstance(records, list):
            raise ApiError(400, "body must be {\"records\": [record, ...]}")
        for record in records:
            if not isinstance(record, dict) or not _is_int(record.get("seq")) or record["seq"] < 0:
                raise ApiError(400, "every record must be a map with a non-negative integer 'seq'")
        for _ in range(5):
            live = self._live_run(run_dir, run_id)
            with live.lock:
                if live.writer.closed:  # closed (evicted or ended) between lookup and lock: reopen
                    continue
                result, contiguous, ended = self._append_batch(run_dir, live, records)
            break
        else:
            raise ApiError(409, f"run {run_id} is busy; retry")
        if ended:
            self._close_writer(run_id, live)
        if contiguous:
            self.index.update(run_dir.parent.name, run_id, run_dir)
        if isinstance(result, ApiError):
            raise result
        return result

    def _close_writer(self, run_id: str, live: _LiveRun) -> None:
        """Release an ended run's flock, so a local process may resume it; a later write reopens it."""
        with self._lock:
            if self._live.get(run_id) is live:
                del self._live[run_id]
        with live.lock:
            live.writer.close()

    def _append_batch(self, run_dir: Path, live: _LiveRun, records: list):
        """Validate and append under the run's lock; returns (result or ApiError, appended, ended)."""
        writer = live.writer
        next_seq = writer.next_seq
        pending, seen = [], set()
        for record in sorted(records, key=lambda r: r["seq"]):
            if record["seq"] >= next_seq and record["seq"] not in seen:
                seen.add(record["seq"])
                pending.append(record)
        contiguous = []
        for i, record in enumerate(pending):
            if record["seq"] != next_seq + i:
                break
            contiguous.append(record)
        if pending and not contiguous:
            raise ApiError(409, f"records start at seq {pending[0]['seq']}; the run expects seq {next_seq} next",
                           next_seq=next_seq)
        rows = dict(live.embedding_rows)
        refs = []
        for record in contiguous:
            refs.extend(validate_record(record, rows))
        missing = sorted({sha for sha, _, _ in refs if not blob_path(run_dir, sha).is_file()})
        if missing:
            raise ApiError(409, f"{len(missing)} referenced blob(s) are not on the server; upload them first",
                           missing_blobs=missing, next_seq=next_seq)
        for sha, purpose, expect in refs:
            check_blob_content(blob_path(run_dir, sha), purpose, expect)
        ended = None
        for record in contiguous:
            writer.replay(record)
            if record["kind"] == "embedding":
                live.embedding_rows[record["id"]] = int(record["n"])
            elif record["kind"] == "end":
                ended = record
        writer.sync()
        if ended is not None:
            writer.update_info(status=str(ended.get("status") or "finished"), ended=ended.get("t"))
        result = {"next_seq": writer.next_seq}
        if len(contiguous) < len(pending):
            result = ApiError(409, f"records skip from seq {writer.next_seq - 1} to "
                                   f"{pending[len(contiguous)]['seq']}", next_seq=writer.next_seq)
        return result, contiguous, ended is not None

    # -- reads ---------------------------------------------------------------------------
    def embedding(self, run_id: str, embedding_id: str):
        check_hex_id(embedding_id, "embedding_id")
        run = self.run(run_id)
        try:
            return run.embedding(embedding_id)
        except KeyError:
            raise ApiError(404, f"run {run_id} has no embedding {embedding_id}") from None

    def reduction(self, run_id: str, reduction_id: str):
        check_hex_id(reduction_id, "reduction_id")
        run = self.run(run_id)
        for emb in run.embeddings:
            for red in emb.reductions:
                if red.id == reduction_id:
                    return red
        raise ApiError(404, f"run {run_id} has no reduction {reduction_id}")

    def neighbors(self, run_id: str, embedding_id: str, index: int, k: int, metric: str) -> dict:
        """Exact k nearest rows to row ``index``; prepared vectors are cached per embedding."""
        emb = self.embedding(run_id, embedding_id)
        if metric not in ("cosine", "euclidean"):
            raise ApiError(400, f"metric must be 'cosine' or 'euclidean'; got {metric!r}")
        if not 0 <= index < emb.n:
            raise ApiError(400, f"index must be in [0, {emb.n}); got {index}")
        if not 1 <= k <= 1000:
            raise ApiError(400, f"k must be between 1 and 1000; got {k}")
        key = (run_id, embedding_id, emb.record["vectors"]["sha256"], metric)
        with self._lock:
            cached = self._knn_cache.get(key)
            if cached is not None:
                self._knn_cache.move_to_end(key)
        if cached is None:
            x = np.array(self._vectors(emb), dtype=np.float32)
            if metric == "cosine":
                x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
            sq = np.einsum("ij,ij->i", x, x)
            cached = (x, sq)
            with self._lock:
                self._knn_cache[key] = cached
                while len(self._knn_cache) > 4:
                    self._knn_cache.popitem(last=False)
        x, sq = cached
        gram = x @ x[index]
        if metric == "cosine":
            d = 1.0 - gram
        else:
            d = np.maximum(sq + sq[index] - 2.0 * gram, 0)
        d[index] = np.inf
        k_eff = min(k, emb.n - 1)
        if k_eff < 1:
            return {"index": index, "metric": metric, "k": k, "neighbors": [], "distances": []}
        part = np.argpartition(d, k_eff - 1)[:k_eff]
        order = part[np.argsort(d[part], kind="stable")]
        dist = d[order]
        if metric == "euclidean":
            dist = np.sqrt(dist)
        return {"index": index, "metric": metric, "k": k, "neighbors": order.tolist(),
                "distances": [float(v) if math.isfinite(v) else None for v in dist]}

    def _vectors(self, emb) -> np.ndarray:
        try:
            return emb.vectors
        except (OSError, ValueError, RunFormatError) as exc:
            raise ApiError(404, f"the vectors of embedding {emb.id} are not readable: {type(exc).__name__}") from None


# -- record validation -----------------------------------------------------------------------
def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _text(record: dict, key: str, *, optional: bool = False) -> None:
    value = record.get(key)
    if value is None and optional:
        return
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise ApiError(400, f"record seq {record['seq']}: {key!r} must be a string of at most {MAX_TEXT} characters")


def _int(record: dict, key: str, *, optional: bool = False, minimum: int | None = None) -> None:
    value = record.get(key)
    if value is None and optional:
        return
    if not _is_int(value) or (minimum is not None and value < minimum):
        lower = f" >= {minimum}" if minimum is not None else ""
        raise ApiError(400, f"record seq {record['seq']}: {key!r} must be an integer{lower}; got {value!r}")


def _ref(record: dict, key: str, *, optional: bool = False) -> str | None:
    ref = record.get(key)
    if ref is None and optional:
        return None
    if not isinstance(ref, dict) or not isinstance(ref.get("sha256"), str) or not security.SHA256_RE.match(ref["sha256"]):
        raise ApiError(400, f"record seq {record['seq']}: {key!r} must be a map with a 64-hex 'sha256'")
    return ref["sha256"]


def validate_record(record: dict, embedding_rows: dict[str, int]) -> list[tuple[str, str, object]]:
    """Check one record's fields; return the blobs it references as (sha, purpose, expectation)."""
    seq = record["seq"]
    kind = record.get("kind")
    if kind not in RECORD_KINDS:
        raise ApiError(400, f"record seq {seq}: kind must be one of {', '.join(RECORD_KINDS)}; got {kind!r}")
    if not _is_number(record.get("t")):
        raise ApiError(400, f"record seq {seq}: 't' must be a number (seconds since the epoch)")
    refs = []
    if kind in ("parameter", "other", "metric"):
        _text(record, "name")
    if kind == "metric":
        if record.get("value") is not None and not _is_number(record.get("value")):
            raise ApiError(400, f"record seq {seq}: a metric's 'value' must be a number")
        _int(record, "step", optional=True)
        _int(record, "epoch", optional=True)
    elif kind == "asset":
        _text(record, "name")
        sha = record.get("sha256")
        if not isinstance(sha, str) or not security.SHA256_RE.match(sha):
            raise ApiError(400, f"record seq {seq}: an asset's 'sha256' must be 64 lowercase hex characters")
        refs.append((sha, "asset", None))
    elif kind == "embedding":
        if not isinstance(record.get("id"), str) or not security.HEX_ID_RE.match(record["id"]):
            raise ApiError(400, f"record seq {seq}: an embedding's 'id' must be 32 lowercase hex characters")
        _text(record, "title")
        _text(record, "group", optional=True)
        _int(record, "step", optional=True)
        _int(record, "n", minimum=1)
        _int(record, "dim", minimum=1)
        n, dim = record["n"], record["dim"]
        refs.append((_ref(record, "vectors"), "vectors", (n, dim)))
        refs.append((_ref(record, "metadata"), "metadata", n))
        sprite = _ref(record, "sprite", optional=True)
        if sprite is not None:
            refs.append((sprite, "sprite", None))
        embedding_rows[record["id"]] = n
    elif kind == "reduction":
        for key in ("id", "embedding_id"):
            if not isinstance(record.get(key), str) or not security.HEX_ID_RE.match(record[key]):
                raise ApiError(400, f"record seq {seq}: a reduction's {key!r} must be 32 lowercase hex characters")
        _text(record, "method")
        _int(record, "n_components", minimum=1)
        if record["embedding_id"] not in embedding_rows:
            raise ApiError(400, f"record seq {seq}: reduction refers to embedding {record['embedding_id']}, "
                                "which this run does not have (send the embedding record first)")
        refs.append((_ref(record, "coords"), "coords", (embedding_rows[record["embedding_id"]], record["n_components"])))
    elif kind == "columns":
        if not isinstance(record.get("embedding_id"), str) or not security.HEX_ID_RE.match(record["embedding_id"]):
            raise ApiError(400, f"record seq {seq}: 'embedding_id' must be 32 lowercase hex characters")
        if record["embedding_id"] not in embedding_rows:
            raise ApiError(400, f"record seq {seq}: columns refer to embedding {record['embedding_id']}, "
                                "which this run does not have")
        refs.append((_ref(record, "metadata"), "metadata", embedding_rows[record["embedding_id"]]))
    return refs


def check_blob_content(path: Path, purpose: str, expect) -> None:
    """The content checks a referenced blob must pass before its record is stored."""
    if purpose == "vectors":
        security.check_npy(path, shape=expect)
    elif purpose == "coords":
        n, c = expect
        security.check_npy(path, shape=(n, c))
    elif purpose == "metadata":
        security.check_metadata_blob(path, expect)
    elif purpose == "sprite":
        security.check_png(path)


def _unlink_quietly(path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _relative(message: str, root: Path) -> str:
    """Error text without the server's absolute paths."""
    return message.replace(str(root) + os.sep, "")

