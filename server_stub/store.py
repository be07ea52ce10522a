"""Server storage on the run format: runs, verified blobs, resumable uploads, record replay.

The server's data directory is exactly the layout the SDK writes offline
(``<root>/<project>/<run_id>/``), so an offline directory is served as it is. Paths are
built only from ids and hashes that :mod:`server_stub.security` has checked. A run the
server writes has one open :class:`RunWriter` (its flock keeps a local process from writing
the same run at the same time). Partial chunked uploads live in
``<root>/.uploads/<run_id>/<sha256>.part`` and survive restarts; one whose bytes are all
there is committed (hashed and checked) by the next request that asks about it, and one
left longer than the expiry is collected (:func:`collect_garbage`, :class:`Collector`).

Nothing under the root is reached through a symbolic link: every path is checked component
by component from the root (``lstat``) and refused with 403 when one is a link. Every record
batch appended gets a line in ``<run_dir>/received.jsonl`` with the server's own receive time.
"""

from __future__ import annotations

import json
import logging
import math
import os
import stat
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tracker_sdk.analysis.neighbors import ExactKnn
from tracker_sdk.errors import InvalidRecordError, RunFormatError, RunLockedError
from tracker_sdk.runformat import (FORMAT_VERSION, RUN_JSON, RunWriter, is_run_dir, iter_project_dirs, iter_run_dirs,
                                   names, open_run)
from tracker_sdk.runformat.format import READABLE_VERSIONS
from tracker_sdk.runformat.records import (ArrayRef, AssetRecord, ColumnsRecord, EmbeddingRecord, EndRecord,
                                           MetadataRef, MetricRecord, OtherRecord, ParameterRecord, Record,
                                           ReductionRecord, SpriteRef, blob_refs, encode, from_builtins)
from tracker_sdk.runformat.files import TMP_SUFFIX, blob_path, read_json, refuse_links

from . import security
from .errors import (ApiError, BadRequest, Conflict, Forbidden, NotFound, Unprocessable, relative, unreadable_run)
from .blobstore import DirectoryBlobStore, KeyedLocks
from .index import Index, run_signature
from .security import check_hex_id, check_run_id, check_sha256
from .uploadfiles import regular_size, unlink_quietly, write_all

log = logging.getLogger("server_stub.store")
UPLOADS = ".uploads"
RECEIVED = "received.jsonl"
MAX_RUN_JSON = 64 * 1024
MAX_TEXT = 4096
DEFAULT_UPLOAD_EXPIRY_S = 24 * 3600


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
        self._upload_locks = KeyedLocks()
        self._knn_cache: OrderedDict[tuple, ExactKnn] = OrderedDict()

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
        if project is not None and is_run_dir(self.root / project / run_id):
            return self.no_links(self.root / project / run_id)
        for project_dir in iter_project_dirs(self.root):
            if is_run_dir(project_dir / run_id):
                return self.no_links(project_dir / run_id)
        return None

    def no_links(self, path: Path) -> Path:
        """``path`` when no existing component below the root is a symbolic link; else 403."""
        try:
            return refuse_links(self.root, path)
        except RunFormatError as exc:
            raise Forbidden(f"{relative(str(exc), self.root)}: this server never follows links under its root") from None

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
        for part in (RUN_JSON, "journal", "blobs"):
            self.no_links(path / part)
        try:
            run = open_run(path)
        except RunFormatError as exc:
            raise unreadable_run(exc, self.root, run_id) from None
        if len(self._run_cache) >= 256:  # runs are small once read, but not free; forget the oldest
            self._run_cache.pop(next(iter(self._run_cache)), None)
        self._run_cache[run_id] = (signature, run)
        return run

    # -- creating runs -------------------------------------------------------------------
    def put_run(self, project: str, run_id: str, info) -> dict:
        """Create the run or resume it; idempotent by run_id."""
        clean = check_run_info(project, run_id, info)
        existing = self.locate(run_id)
        if existing is not None and existing.parent.name != project:
            raise ApiError(409, f"run {run_id} already exists in project {existing.parent.name!r}")
        run_dir = self.no_links(self.root / project / run_id)
        for part in (RUN_JSON, "journal", "blobs"):
            self.no_links(run_dir / part)
        live = self._live_run(run_dir, run_id, info=clean)
        with live.lock:
            current = read_json(run_dir / RUN_JSON)
            changed = any(current.get(k) != v for k, v in clean.items())  # a resume may bring a new name or status
            if changed:
                live.writer.update_info(**clean)
        if changed or self.index.locate(run_id) is None:  # an unchanged run leaves every file as it was
            self.index.update(project, run_id, run_dir)
        return {"run_id": run_id, "project": project, "next_seq": live.writer.next_seq}

    def _live_run(self, run_dir: Path, run_id: str, info: dict | None = None) -> _LiveRun:
        with self._lock:
            live = self._live.get(run_id)
            if live is not None and not live.writer.closed:
                self._live.move_to_end(run_id)
                return live
            try:
                writer = RunWriter(run_dir, info=info)  # recovery reads the journal: corruption raises here
            except RunLockedError:
                raise Conflict(f"run {run_id} is being written by another process") from None
            except RunFormatError as exc:
                raise unreadable_run(exc, self.root, run_id) from None
            try:
                rows = {emb.id: emb.n for emb in open_run(run_dir).embeddings}
            except BaseException as exc:  # no writer (and so no lock) outlives a run it cannot serve
                writer.close()
                if isinstance(exc, RunFormatError):
                    raise unreadable_run(exc, self.root, run_id) from None
                raise
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
    def _blob(self, run_dir: Path, sha: str) -> tuple[Path, int | None]:
        """The blob's path and size (None when absent); a link anywhere on the way is refused."""
        path = self.no_links(blob_path(run_dir, check_sha256(sha)))
        try:
            st = os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            return path, None
        return path, st.st_size if stat.S_ISREG(st.st_mode) else None

    def blob_size(self, run_id: str, sha: str) -> int | None:
        return self._blob(self.run_dir(run_id), sha)[1]

    def blob_file(self, run_id: str, sha: str) -> Path:
        path, size = self._blob(self.run_dir(run_id), sha)
        if size is None:
            raise ApiError(404, f"run {run_id} has no blob {sha}")
        return path

    def put_blob(self, run_id: str, sha: str, chunks) -> dict:
        """Store a blob sent whole: ``chunks`` are written, hashed and checked against ``sha``."""
        check_sha256(sha)
        blob = self._run_blobs(run_id).put(sha, chunks)
        return {"sha256": sha, **blob}

    # -- chunked uploads -----------------------------------------------------------------
    def _run_blobs(self, run_id: str) -> DirectoryBlobStore:
        """The run's blobs as a directory blob store, the one implementation of whole and chunked
        uploads: blobs in the run, partial uploads in ``<root>/.uploads/<run_id>/``, links refused
        from the root, one lock per upload shared by every request."""
        return DirectoryBlobStore(self.run_dir(run_id), max_blob=self.max_blob, uploads=self.uploads,
                                  links_root=self.root, locks=self._upload_locks)

    def upload_state(self, run_id: str, sha: str) -> dict:
        """How far an upload got; one whose bytes are all there is committed now (after a crash of
        either side the client only has to ask)."""
        state = self._run_blobs(run_id).upload_state(run_id, sha)
        state.pop("stored_before", None)  # the run's own directory: a blob in it is the run's
        return state

    def append_upload(self, run_id: str, sha: str, offset: int, length: int, chunks, checksum: bytes | None) -> dict:
        """Append one chunk at ``offset`` (its sha256 in ``checksum``), then commit when the upload is whole."""
        state = self._run_blobs(run_id).append_upload(run_id, sha, offset, length, chunks, checksum)
        state.pop("stored_before", None)
        return state

    # -- records -------------------------------------------------------------------------
    def post_records(self, run_id: str, records) -> dict:
        """Append the records at or past next_seq, in seq order; see the API reference."""
        run_dir = self.run_dir(run_id)
        records = parse_records(records)
        for _ in range(5):
            live = self._live_run(run_dir, run_id)
            with live.lock:
                if live.writer.closed:  # closed (evicted or ended) between lookup and lock: reopen
                    continue
                appended, ended, gap_at = self._append_batch(run_dir, live, records)
                next_seq = live.writer.next_seq
                if appended:
                    _note_received(run_dir, appended)
            break
        else:
            raise Conflict(f"run {run_id} is busy; retry")
        if ended:
            self._close_writer(run_id, live)
        # the index row is not rebuilt here (that re-reads the journal on every batch): the
        # listings refresh it from the changed signature of the run's files
        if gap_at is not None:  # what came before the gap is stored; the client resends from next_seq
            raise Conflict(f"records skip from seq {next_seq - 1} to {gap_at}", next_seq=next_seq)
        return {"next_seq": next_seq}

    def _close_writer(self, run_id: str, live: _LiveRun) -> None:
        """Release an ended run's flock, so a local process may resume it; a later write reopens it."""
        with self._lock:
            if self._live.get(run_id) is live:
                del self._live[run_id]
        with live.lock:
            live.writer.close()

    def _append_batch(self, run_dir: Path, live: _LiveRun, records: list) -> tuple[list, bool, int | None]:
        """Validate and append under the run's lock; returns (appended, ended, first seq past a gap or None)."""
        writer = live.writer
        next_seq = writer.next_seq
        contiguous, gap_at = select_batch(records, next_seq)
        rows = dict(live.embedding_rows)
        refs = []
        for record in contiguous:
            refs.extend(validate_record(record, rows))
        missing = sorted({ref.sha256 for ref, _ in refs if self._blob(run_dir, ref.sha256)[1] is None})
        if missing:
            raise ApiError(409, f"{len(missing)} referenced blob(s) are not on the server; upload them first",
                           missing_blobs=missing, next_seq=next_seq)
        for ref, rows in refs:
            check_blob_content(blob_path(run_dir, ref.sha256), ref, rows)
        ended = None
        for record in contiguous:
            writer.replay(record)
            if isinstance(record, EmbeddingRecord):
                live.embedding_rows[record.id] = record.n
            elif isinstance(record, EndRecord):
                ended = record
        writer.sync()
        if ended is not None:
            writer.update_info(status=ended.status, ended=ended.t)
        return contiguous, ended is not None, gap_at

    # -- records the server itself makes (projections computed for the viewer) -------------
    def append_own(self, run_id: str, payloads: list) -> list:
        """Append records built here (no seq yet) through this server's writer of the run.

        A writer opened only for this is closed again, so a local process (``tracker reduce``,
        a resumed Experiment) can take the run afterwards; a run another process is writing
        answers 409.
        """
        run_dir = self.run_dir(run_id)
        for _ in range(5):
            with self._lock:
                had_writer = run_id in self._live and not self._live[run_id].writer.closed
            live = self._live_run(run_dir, run_id)
            with live.lock:
                if live.writer.closed:
                    continue
                records = [live.writer.append(payload, durable=True) for payload in payloads]
            break
        else:
            raise Conflict(f"run {run_id} is busy; retry")
        if not had_writer:
            self._close_writer(run_id, live)
        self.index.update(run_dir.parent.name, run_id, run_dir)
        return records

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
        """Exact k nearest rows to row ``index`` (:class:`ExactKnn`, kept for the last few embeddings)."""
        emb = self.embedding(run_id, embedding_id)
        if metric not in ("cosine", "euclidean"):
            raise ApiError(400, f"metric must be 'cosine' or 'euclidean'; got {metric!r}")
        if not 0 <= index < emb.n:
            raise ApiError(400, f"index must be in [0, {emb.n}); got {index}")
        if not 1 <= k <= 1000:
            raise ApiError(400, f"k must be between 1 and 1000; got {k}")
        if emb.n < 2:  # a single row has no neighbours
            return {"index": index, "metric": metric, "k": k, "neighbors": [], "distances": []}
        key = (run_id, embedding_id, emb.record.vectors.sha256, metric)
        with self._lock:
            knn = self._knn_cache.get(key)
            if knn is not None:
                self._knn_cache.move_to_end(key)
        if knn is None:
            knn = ExactKnn(np.array(self._vectors(emb), dtype=np.float32), metric)
            with self._lock:
                self._knn_cache[key] = knn
                while len(self._knn_cache) > 4:
                    self._knn_cache.popitem(last=False)
        order, dist = knn.query([index], min(k, emb.n - 1))
        return {"index": index, "metric": metric, "k": k, "neighbors": order[0].tolist(),
                "distances": [float(v) if math.isfinite(v) else None for v in dist[0]]}

    def _vectors(self, emb) -> np.ndarray:
        try:
            return emb.vectors
        except FileNotFoundError:
            raise NotFound(f"the vectors blob of embedding {emb.id} is not on the server") from None
        except (OSError, ValueError, RunFormatError) as exc:
            raise Unprocessable(f"the vectors of embedding {emb.id} are not readable: {type(exc).__name__}") from None


# -- record validation -----------------------------------------------------------------------
def check_run_info(project: str, run_id: str, info) -> dict:
    """The run.json a client sent for ``project``/``run_id``, checked (400) and completed with the ids
    and the format version this server stores."""
    security.check_project(project)
    check_run_id(run_id)
    if not isinstance(info, dict):
        raise ApiError(400, "the body must be a JSON object: the run's run.json")
    if info.get("run_id", run_id) != run_id:
        raise ApiError(400, f"body run_id {info.get('run_id')!r} does not match the URL's {run_id}")
    if info.get("format_version", FORMAT_VERSION) not in READABLE_VERSIONS:  # records are re-encoded as the current
        raise ApiError(400, f"format_version {info.get('format_version')!r} is not supported; "
                            f"this server reads versions {READABLE_VERSIONS} and stores {FORMAT_VERSION}")
    for key in ("name", "workspace", "status"):
        if info.get(key) is not None and not (isinstance(info[key], str) and len(info[key]) <= MAX_TEXT):
            raise ApiError(400, f"run.json field {key!r} must be a string of at most {MAX_TEXT} characters")
        if info.get(key) is not None:
            names.check_name(info[key], f"run.json field {key!r}", max_length=MAX_TEXT, error=BadRequest)
    check_json_text(info, "run.json")
    return {**info, "run_id": run_id, "project": project, "format_version": FORMAT_VERSION}


def parse_records(records) -> list[Record]:
    """The body's ``records`` as record structs, each checked by :func:`check_record_text` (400)."""
    if not isinstance(records, list):
        raise ApiError(400, "body must be {\"records\": [record, ...]}")
    try:
        records = [from_builtins(record) for record in records]
    except InvalidRecordError as exc:
        raise ApiError(400, str(exc)) from None
    for record in records:
        check_record_text(record)
    return records


def select_batch(records: list, next_seq: int) -> tuple[list, int | None]:
    """The records a batch adds: those at or past ``next_seq`` (duplicates dropped), in seq order,
    up to the first gap; returns (them, the seq past the gap or None). A batch that starts past
    ``next_seq`` is refused (409 with ``next_seq``) before anything is stored."""
    pending, seen = [], set()
    for record in sorted(records, key=lambda r: r.seq):
        if record.seq >= next_seq and record.seq not in seen:
            seen.add(record.seq)
            pending.append(record)
    contiguous = []
    for i, record in enumerate(pending):
        if record.seq != next_seq + i:
            break
        contiguous.append(record)
    if pending and not contiguous:
        raise ApiError(409, f"records start at seq {pending[0].seq}; the run expects seq {next_seq} next",
                       next_seq=next_seq)
    return contiguous, (pending[len(contiguous)].seq if len(contiguous) < len(pending) else None)


def validate_record(record: Record, embedding_rows: dict[str, int]) -> list[tuple[object, int | None]]:
    """What a record's own schema cannot check: the embedding it refers to exists, and its
    arrays have that embedding's rows. Returns (blob reference, expected rows) per blob."""
    if isinstance(record, EmbeddingRecord):
        rows = embedding_rows[record.id] = record.n
    elif isinstance(record, (ReductionRecord, ColumnsRecord)):
        rows = embedding_rows.get(record.embedding_id)
        if rows is None:
            raise ApiError(400, f"record seq {record.seq}: {record.__struct_config__.tag} refers to embedding "
                                f"{record.embedding_id}, which this run does not have "
                                "(send the embedding record first)")
    else:
        rows = None
    refs = blob_refs(record)
    for ref in refs:
        if isinstance(ref, ArrayRef) and ref.shape[0] != rows:
            raise ApiError(400, f"record seq {record.seq}: an array of shape {list(ref.shape)} does not have the "
                                f"embedding's {rows} rows")
    return [(ref, rows) for ref in refs]


def check_blob_content(path: Path, ref, rows: int | None) -> None:
    """The content checks a referenced blob must pass before its record is stored."""
    if isinstance(ref, ArrayRef):
        security.check_npy(path, shape=tuple(ref.shape))
    elif isinstance(ref, MetadataRef):
        security.check_metadata_blob(path, rows)
    elif isinstance(ref, SpriteRef):
        security.check_png(path)


# -- text the server stores ------------------------------------------------------------------
_NAMED = {ParameterRecord: ("name",), MetricRecord: ("name",), OtherRecord: ("name",), AssetRecord: ("name",),
          EmbeddingRecord: ("title", "group"), EndRecord: ("status",)}


def check_record_text(record: Record) -> None:
    """The names a record carries pass :func:`names.check_name` and all its text encodes as UTF-8 (400)."""
    for field in _NAMED.get(type(record), ()):
        value = getattr(record, field)
        if value is not None:
            names.check_name(value, f"record seq {record.seq}: {field}", file_name=isinstance(record, AssetRecord),
                             error=BadRequest)
    try:
        encode(record)
    except UnicodeEncodeError as exc:
        raise BadRequest(f"record seq {record.seq} holds text that is not valid Unicode (a lone surrogate at "
                         f"character {exc.start} of {exc.object[:40]!r}); it cannot be stored as UTF-8") from None


def check_json_text(obj, what: str) -> None:
    """Every string of a JSON body encodes as UTF-8 (JSON escapes can spell lone surrogates)."""
    try:
        json.dumps(obj, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise BadRequest(f"{what} holds text that is not valid Unicode (a lone surrogate in "
                         f"{exc.object[max(0, exc.start - 20): exc.start + 1]!r}); it cannot be stored as UTF-8") from None


def _note_received(run_dir: Path, appended: list) -> None:
    """One line per appended batch with the server's own clock (the records keep the client's)."""
    line = json.dumps({"received": time.time(), "first_seq": appended[0].seq, "last_seq": appended[-1].seq,
                       "n": len(appended)}) + "\n"
    try:
        fd = os.open(run_dir / RECEIVED, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o644)
        try:
            write_all(fd, memoryview(line.encode()))
        finally:
            os.close(fd)
    except OSError as exc:  # the records are durable already; the receive log is a diagnostic
        log.warning("could not note the receive time of seqs %d-%d in %s: %s", appended[0].seq,
                    appended[-1].seq, run_dir, exc)


# -- small file helpers ----------------------------------------------------------------------
# -- garbage collection ----------------------------------------------------------------------
@dataclass(frozen=True)
class Garbage:
    """One expired partial file: where it is (relative to the root), its size and age."""

    path: str
    size: int
    age_s: float


def _expired_files(root: Path, max_age_s: float, now: float):
    """Partial uploads (``.uploads/<run>/*.part|*.length``), temporary blobs (``blobs/.*.part``
    and any ``*.part`` one level down, e.g. ``blobs/ab/.x.part`` or the older ``blobs/tmp/x.part``:
    a blob's name is its hash, never ``*.part``) and atomic-write leftovers (``.*.tmp`` in run
    directories) older than ``max_age_s``; links are never followed."""
    def old_files(directory: Path, match):
        try:
            entries = list(os.scandir(directory))
        except (FileNotFoundError, NotADirectoryError):
            return
        for entry in entries:
            if entry.is_file(follow_symlinks=False) and match(entry.name):
                st = entry.stat(follow_symlinks=False)
                if now - st.st_mtime > max_age_s:
                    yield Path(entry.path), st

    uploads = root / UPLOADS
    if os.path.isdir(uploads) and not os.path.islink(uploads):
        for entry in sorted(os.scandir(uploads), key=lambda e: e.name):
            if entry.is_dir(follow_symlinks=False):
                yield from old_files(Path(entry.path), lambda n: n.endswith((".part", ".length")))
    for run_dir in iter_run_dirs(root):
        yield from old_files(run_dir, lambda n: n.startswith(".") and n.endswith(".tmp"))
        blobs = run_dir / "blobs"
        if os.path.isdir(blobs) and not os.path.islink(blobs):
            yield from old_files(blobs, lambda n: n.startswith(".") and n.endswith(TMP_SUFFIX))
            for entry in sorted(os.scandir(blobs), key=lambda e: e.name):
                if entry.is_dir(follow_symlinks=False):
                    yield from old_files(Path(entry.path), lambda n: n.endswith(TMP_SUFFIX))


def collect_garbage(root: Path, max_age_s: float, *, apply: bool = True, now: float | None = None) -> list[Garbage]:
    """Expired partial files under ``root``; removed when ``apply`` (else only reported).

    A partial upload is removed with its ``.length`` companion only when both expired, so a
    live upload (its part written within ``max_age_s``) is never touched.
    """
    root = Path(root).resolve()
    now = time.time() if now is None else now
    found = []
    for path, st in _expired_files(root, max_age_s, now):
        if path.suffix == ".length" and regular_size(path.with_suffix(".part")) and \
                now - os.lstat(path.with_suffix(".part")).st_mtime <= max_age_s:
            continue  # the upload's data is recent: keep the length it began with
        found.append(Garbage(str(path.relative_to(root)), st.st_size, now - st.st_mtime))
        if apply:
            unlink_quietly(path)
    if apply and found:
        log.info("collected %d expired partial files (%d bytes) under %s", len(found),
                 sum(g.size for g in found), root)
    return found


class Collector:
    """Collects expired partial files at server start and every ``interval`` seconds, on a daemon thread."""

    def __init__(self, store: Store, max_age_s: float = DEFAULT_UPLOAD_EXPIRY_S, interval: float | None = None):
        self.store = store
        self.max_age_s = float(max_age_s)
        self.interval = interval if interval is not None else min(3600.0, max(1.0, self.max_age_s / 4))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="tracker-server-gc", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while True:
            self.collect_once()
            if self._stop.wait(self.interval):
                return

    def collect_once(self) -> None:
        try:
            collect_garbage(self.store.root, self.max_age_s)
        except OSError as exc:  # a failed pass is retried at the next interval
            log.warning("garbage collection under %s failed: %s", self.store.root, exc)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
