"""Scale-out server storage: runs in a SQL index (:mod:`.sqlindex`), blobs in a shared blob store.

``tracker-server --index-uri ... --blob-uri ...`` serves through :class:`SharedStore` instead of
the directory :class:`~server_stub.store.Store`; it has the same methods the app calls, the
same validation (the helpers of ``store.py``) and the same error answers. Nothing is kept on
local disk except caches (``cache_dir``: blobs fetched from S3 for reading), so any number of
replicas on one database and one bucket serve the same data:

- a records POST is one transaction that locks the run's row (``SELECT ... FOR UPDATE``;
  SQLite: ``BEGIN IMMEDIATE``), checks the batch as ``Store`` does, inserts the records and
  updates ``next_seq`` and the listing columns before it commits;
- blobs are content-addressed in the blob store (:mod:`.blobstore`) and shared across runs, but
  a run reads only the blobs linked to it in ``run_blobs``: a blob is linked when its bytes are
  sent for that run, so a HEAD or GET through another run answers 404 and a client sends the
  bytes once per run even where storage keeps one copy;
- runs are read back from their records (:meth:`Run.from_records`), cached per revision.

Projection jobs (the viewer's "compute a projection") run on a scratch run directory of the
replica that took them (:class:`SharedProjectionJobs`); bookmarks live in the database
(:class:`SharedBookmarks`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
import time
import uuid
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import sqlalchemy as sa

from tracker_sdk.runformat.reader import Run
from tracker_sdk.runformat.records import (
    ColumnsRecord,
    EmbeddingRecord,
    EndRecord,
    ParameterRecord,
    ReductionRecord,
    blob_refs,
    decode,
    encode,
    stamp,
)

from .blobstore import DEFAULT_MAX_BLOB, open_blob_store
from .bookmarks import MAX_PER_RUN
from .bookmarks import check_name as check_bookmark_name
from .bookmarks import check_state as check_bookmark_state
from .errors import (
    ApiError,
    BadRequest,
    ChecksumMismatch,
    Conflict,
    IntegrityMismatch,
    NotFound,
)
from .projections import ProjectionJobs
from .security import check_run_id, check_sha256
from .sqlindex import (
    SqlIndex,
    blob_proofs,
    bookmarks,
    embeddings,
    records,
    run_blobs,
    runs,
)
from .store import (
    Collector,
    Store,
    check_blob_content,
    check_run_info,
    parse_records,
    select_batch,
    validate_record,
)

log = logging.getLogger("server_stub.shared_store")
RUN_CACHE = 64  # runs kept built in memory (each holds its decoded records)


class SharedStore:
    """Runs in ``index_uri``, blobs in ``blob_uri``; ``cache_dir`` holds this replica's caches only."""

    def __init__(self, index_uri: str, blob_uri: str, cache_dir, *, max_blob: int = DEFAULT_MAX_BLOB):
        self.root = Path(cache_dir).resolve()  # error messages are made relative to it; nothing else lives here
        self.root.mkdir(parents=True, exist_ok=True)
        self.max_blob = max_blob
        self.index = SqlIndex(index_uri)
        try:
            self.blobs = open_blob_store(blob_uri, self.root / ".blob-cache", max_blob=max_blob)
        except BaseException:
            self.index.close()
            raise
        self.index_uri, self.blob_uri = index_uri, blob_uri
        self._lock = threading.Lock()
        self._run_cache: OrderedDict[str, tuple[int, int, Run]] = OrderedDict()
        self._knn_cache: OrderedDict = OrderedDict()
        self._checked: OrderedDict[tuple, None] = OrderedDict()  # content checks passed (they are pure)

    def close(self) -> None:
        self.blobs.close()
        self.index.close()

    def describe(self) -> str:
        """What this replica serves, for its start-up line (no password, no query string with keys)."""
        return f"index {self.index.describe()}, blobs {self.blob_uri.split('?')[0]}"

    def health(self) -> dict:
        """Both stores' health: ``{"index": {...}, "blobs": {...}}``, each with ``ok``."""
        try:
            blobs = dict(self.blobs.health())
            blobs.setdefault("ok", True)
        except Exception as exc:  # noqa: BLE001 - an unreachable store is reported, not raised
            blobs = {"ok": False, "error": f"{type(exc).__name__}: {str(exc)[:200]}"}
        return {"index": self.index.health(), "blobs": blobs}

    # -- runs ------------------------------------------------------------------------------
    def run_dir(self, run_id: str) -> str:
        """The run's project; 404 when this server has no such run (callers use it as the existence check)."""
        project = self.index.locate(check_run_id(run_id))
        if project is None:
            raise ApiError(404, f"no run {run_id}")
        return project

    def run(self, run_id: str) -> Run:
        """The run built from its records, rebuilt only when its revision changed (new records read only)."""
        check_run_id(run_id)
        with self.index.read() as conn:
            row = conn.execute(sa.select(runs.c.info, runs.c.revision, runs.c.next_seq)
                               .where(runs.c.run_id == run_id)).first()
            if row is None:
                raise ApiError(404, f"no run {run_id}")
            with self._lock:
                cached = self._run_cache.get(run_id)
            if cached is not None and cached[0] == row.revision:
                return cached[2]
            start = cached[1] if cached is not None and cached[1] <= row.next_seq else 0
            bodies = conn.execute(sa.select(records.c.body).where(records.c.run_id == run_id, records.c.seq >= start,
                                                                  records.c.seq < row.next_seq)
                                  .order_by(records.c.seq)).scalars().all()
        new = [decode(body, where=f"run {run_id} record") for body in bodies]
        old = [r for r in cached[2].records if r.seq < start] if start else []
        run = Run.from_records(json.loads(row.info), old + new, self._blob_path)
        with self._lock:
            self._run_cache[run_id] = (row.revision, row.next_seq, run)
            self._run_cache.move_to_end(run_id)
            while len(self._run_cache) > RUN_CACHE:
                self._run_cache.popitem(last=False)
        return run

    def live_next_seq(self, run_id: str) -> int:
        """The run's next seq as the database has it (0 for an unknown run)."""
        with self.index.read() as conn:
            return conn.execute(sa.select(runs.c.next_seq).where(runs.c.run_id == run_id)).scalar() or 0

    def put_run(self, project: str, run_id: str, info) -> dict:
        """Create the run or resume it; idempotent by run_id (an unchanged run.json changes no row)."""
        clean = check_run_info(project, run_id, info)
        now = time.time()
        with self.index.write() as conn:
            conn.execute(self.index.insert_ignoring_conflicts(runs, [{
                "run_id": run_id, "project": project, "info": json.dumps(clean), "name": _text(clean.get("name")),
                "status": _text(clean.get("status")) or "running", "created": _number(clean.get("created")),
                "updated": now, "ended": None, "next_seq": 0, "revision": 0, "n_embeddings": 0,
                "parameters": "{}"}]))
            row = conn.execute(sa.select(runs).where(runs.c.run_id == run_id).with_for_update()).one()
            if row.project != project:
                raise ApiError(409, f"run {run_id} already exists in project {row.project!r}")
            current = json.loads(row.info)
            if any(current.get(k) != v for k, v in clean.items()):  # a resume may bring a new name or status
                merged = {**current, **clean}
                conn.execute(runs.update().where(runs.c.run_id == run_id).values(
                    info=json.dumps(merged), name=_text(merged.get("name")), created=_number(merged.get("created")),
                    status=row.status if row.ended is not None else (_text(merged.get("status")) or "running"),
                    updated=now, revision=row.revision + 1))
        return {"run_id": run_id, "project": project, "next_seq": row.next_seq}

    # -- records ---------------------------------------------------------------------------
    def post_records(self, run_id: str, records_in) -> dict:
        """Append the records at or past next_seq, in seq order, in one transaction; see the API reference."""
        self.run_dir(run_id)
        batch = parse_records(records_in)
        with self.index.write() as conn:
            row = self._lock_run(conn, run_id)
            contiguous, gap_at = select_batch(batch, row.next_seq)
            next_seq = self._append(conn, run_id, row, contiguous)
        if gap_at is not None:  # what came before the gap is stored; the client resends from next_seq
            raise Conflict(f"records skip from seq {next_seq - 1} to {gap_at}", next_seq=next_seq)
        return {"next_seq": next_seq}

    def append_own(self, run_id: str, payloads: list, *, blob_dir=None) -> list:
        """Append records built here (no seq yet), stamped with the next seqs and the server's clock.

        ``blob_dir``: a run directory holding the blobs they reference (a projection job's scratch
        directory). Each is put into the blob store first (hashed and checked), then linked to the
        run in the transaction that appends the records: a failure stores neither links nor records
        (a blob put but never linked is garbage for ``tracker-server gc``).
        """
        sizes = self._put_own_blobs(blob_dir, payloads) if blob_dir is not None else {}
        with self.index.write() as conn:
            row = self._lock_run(conn, run_id)
            now = time.time()
            if sizes:
                conn.execute(self.index.insert_ignoring_conflicts(run_blobs, [
                    dict(run_id=run_id, sha256=sha, size=size, linked=now) for sha, size in sizes.items()]))
            stamped = [stamp(p, seq=row.next_seq + i, t=now) for i, p in enumerate(payloads)]
            self._append(conn, run_id, row, stamped)
        return stamped

    def _put_own_blobs(self, blob_dir, payloads: list) -> dict[str, int]:
        """Put the blobs ``payloads`` reference from ``blob_dir`` into the blob store; {sha256: size}."""
        from tracker_sdk.runformat import files

        sizes: dict[str, int] = {}
        for ref in (ref for payload in payloads for ref in blob_refs(payload)):
            if ref.sha256 not in sizes:
                with open(files.blob_path(blob_dir, ref.sha256), "rb") as fh:
                    size = os.fstat(fh.fileno()).st_size
                    sizes[ref.sha256] = int(self.blobs.put(ref.sha256, fh, size)["size"])
        return sizes

    def _lock_run(self, conn, run_id: str):
        row = conn.execute(sa.select(runs).where(runs.c.run_id == check_run_id(run_id)).with_for_update()).first()
        if row is None:
            raise ApiError(404, f"no run {run_id}")
        return row

    def _append(self, conn, run_id: str, row, batch: list) -> int:
        """Validate ``batch`` (contiguous from ``row.next_seq``) as Store does, insert it and update the
        run's row; returns the new next_seq. Raises before writing anything."""
        next_seq = row.next_seq
        if not batch:
            return next_seq
        wanted = {r.embedding_id for r in batch if isinstance(r, (ReductionRecord, ColumnsRecord))}
        rows = {}
        if wanted:
            rows = dict(conn.execute(sa.select(embeddings.c.embedding_id, embeddings.c.n).where(
                embeddings.c.run_id == run_id, embeddings.c.embedding_id.in_(sorted(wanted)))).all())
        refs = []
        for record in batch:
            refs.extend(validate_record(record, rows))
        shas = {ref.sha256 for ref, _ in refs}
        linked = set(conn.execute(sa.select(run_blobs.c.sha256).where(
            run_blobs.c.run_id == run_id, run_blobs.c.sha256.in_(sorted(shas)))).scalars()) if shas else set()
        missing = sorted(shas - linked)
        if missing:
            raise ApiError(409, f"{len(missing)} referenced blob(s) are not on the server; upload them first",
                           missing_blobs=missing, next_seq=next_seq)
        for ref, n in refs:
            self._check_content(ref, n)
        now = time.time()
        conn.execute(self.index.insert_ignoring_conflicts(records, [
            dict(run_id=run_id, seq=r.seq, kind=r.__struct_config__.tag, received=now, body=encode(r))
            for r in batch]))  # keyword names: the columns (record fields are named only in records.py)
        new_embeddings = [dict(run_id=run_id, embedding_id=r.id, seq=r.seq, n=r.n)
                          for r in batch if isinstance(r, EmbeddingRecord)]
        if new_embeddings:
            conn.execute(self.index.insert_ignoring_conflicts(embeddings, new_embeddings))
        values = {"next_seq": next_seq + len(batch), "revision": row.revision + 1, "updated": now,
                  "n_embeddings": row.n_embeddings + len(new_embeddings)}
        parameters = [r for r in batch if isinstance(r, ParameterRecord)]
        if parameters:
            current = json.loads(row.parameters)
            current.update({r.name: r.value for r in parameters})
            values["parameters"] = json.dumps(current, default=str)
        ended = [r for r in batch if isinstance(r, EndRecord)]
        if ended:
            info = {**json.loads(row.info), "status": ended[-1].status, "ended": ended[-1].t}
            values.update(info=json.dumps(info), status="finished", ended=ended[-1].t)
        conn.execute(runs.update().where(runs.c.run_id == run_id).values(**values))
        return values["next_seq"]

    def _check_content(self, ref, rows) -> None:
        """:func:`check_blob_content` on the blob's local copy; a pass is remembered (the check is pure)."""
        key = (ref.sha256, type(ref).__name__, tuple(getattr(ref, "shape", ()) or ()), rows)
        with self._lock:
            if key in self._checked:
                return
        check_blob_content(self._blob_path(ref.sha256), ref, rows)
        with self._lock:
            self._checked[key] = None
            while len(self._checked) > 4096:
                self._checked.popitem(last=False)

    # -- blobs -----------------------------------------------------------------------------
    def _blob_path(self, sha: str) -> Path:
        return Path(self.blobs.local_path(sha))

    def copy_blob_into(self, run_dir: Path, sha: str) -> None:
        """Make ``sha`` a blob of the local run directory ``run_dir``: a hard link to this replica's
        copy (a copy across file systems). Never linked to a run; only for reading."""
        from tracker_sdk.runformat import files

        target = files.blob_path(run_dir, sha)
        target.parent.mkdir(parents=True, exist_ok=True)
        for attempt in range(2):
            source = self._blob_path(sha)
            try:
                os.link(source, target)
                return
            except FileNotFoundError:
                if attempt:  # evicted from the cache twice between fetch and link
                    raise
            except OSError:  # another file system, or links refused there
                shutil.copyfile(source, target)
                return

    def blob_size(self, run_id: str, sha: str) -> int | None:
        """The size of a blob linked to the run, None when the run may not read it; 404 without the run."""
        check_run_id(run_id)
        check_sha256(sha)
        query = (sa.select(runs.c.run_id, run_blobs.c.size)
                 .select_from(runs.outerjoin(run_blobs, sa.and_(run_blobs.c.run_id == runs.c.run_id,
                                                                run_blobs.c.sha256 == sha)))
                 .where(runs.c.run_id == run_id))
        with self.index.read() as conn:
            row = conn.execute(query).first()
        if row is None:
            raise ApiError(404, f"no run {run_id}")
        return row.size

    def blob_file(self, run_id: str, sha: str) -> Path:
        if self.blob_size(run_id, sha) is None:
            raise ApiError(404, f"run {run_id} has no blob {sha}")
        return self._blob_path(sha)  # 404 from the blob store when it lost the blob

    def _link(self, run_id: str, sha: str, size: int) -> bool:
        """Let the run read the blob; True when this made the link."""
        with self.index.write() as conn:
            result = conn.execute(self.index.insert_ignoring_conflicts(
                run_blobs, [dict(run_id=run_id, sha256=sha, size=int(size), linked=time.time())]))
        return bool(result.rowcount)

    def put_blob(self, run_id: str, sha: str, chunks) -> dict:
        """Store a blob sent whole and link it to the run. Bytes another run stored already are only
        hashed (the client proves it has them) and linked."""
        check_sha256(sha)
        self.run_dir(run_id)
        if self.blobs.size(sha) is not None:
            size = _hash_check(chunks, sha)
        else:
            size = int(self.blobs.put(sha, chunks)["size"])
        created = self._link(run_id, sha, size)
        return dict(sha256=sha, size=size, created=created)  # Store.put_blob's answer

    def upload_state(self, run_id: str, sha: str) -> dict:
        """How far this run's upload got: the blob store's partial upload, or, for a blob stored for
        another run, how much of it this run has re-sent (:meth:`_prove`)."""
        size = self.blob_size(run_id, sha)
        if size is not None:
            return {"offset": size, "complete": True}
        stored = self.blobs.size(sha)
        if stored is not None:
            return {"offset": self._proof_offset(run_id, sha), "complete": False, "length": stored}
        return self._linked_when_complete(run_id, sha, self.blobs.upload_state(run_id, sha))

    def append_upload(self, run_id: str, sha: str, offset: int, length: int, chunks, checksum: bytes | None) -> dict:
        if length > self.max_blob:
            raise ApiError(413, f"Upload-Length {length} is above this server's limit of {self.max_blob} bytes")
        size = self.blob_size(run_id, sha)
        if size is not None:
            return {"offset": size, "complete": True}
        stored = self.blobs.size(sha)
        if stored is not None:
            return self._prove(run_id, sha, stored, offset, length, chunks, checksum)
        state = self.blobs.append_upload(run_id, sha, offset, length, chunks, checksum)
        return self._linked_when_complete(run_id, sha, state)

    def _proof_offset(self, run_id: str, sha: str) -> int:
        with self.index.read() as conn:
            return conn.execute(sa.select(blob_proofs.c.offset).where(
                blob_proofs.c.run_id == run_id, blob_proofs.c.sha256 == sha)).scalar() or 0

    def _prove(self, run_id: str, sha: str, size: int, offset: int, length: int, chunks, checksum) -> dict:
        """One chunk of a blob the store holds already (for another run): its bytes are compared with
        the stored ones instead of stored again, and the run may read the blob once all of them matched.
        The offset reached lives in ``blob_proofs``, so the client may resume through any replica."""
        if length != size:
            raise BadRequest(f"Upload-Length {length} differs from the size of blob {sha}, {size} bytes")
        current = self._proof_offset(run_id, sha)
        if offset != current:
            raise Conflict(f"Upload-Offset {offset} does not match the server's offset {current}", offset=current)
        digest, received = hashlib.sha256(), 0
        for chunk in chunks:
            if offset + received + len(chunk) > length:
                raise BadRequest(f"chunk runs past Upload-Length {length}")
            digest.update(chunk)
            if self.blobs.read_range(sha, offset + received, len(chunk)) != bytes(chunk):
                self._set_proof(run_id, sha, current, 0, done=False)
                raise IntegrityMismatch(f"the upload does not match blob {sha} at offset {offset + received}; "
                                        "the partial upload was discarded", offset=0)
            received += len(chunk)
        if checksum is not None and digest.digest() != checksum:
            raise ChecksumMismatch(f"the chunk at offset {offset} ({received} bytes) does not match its "
                                   "Upload-Checksum; it was dropped: send it again", offset=offset)
        if not self._set_proof(run_id, sha, current, offset + received, done=offset + received == length):
            raise Conflict("another request is appending to this upload", offset=self._proof_offset(run_id, sha))
        if offset + received < length:
            return {"offset": offset + received, "complete": False}
        self._link(run_id, sha, size)
        return {"offset": size, "complete": True}

    def _set_proof(self, run_id: str, sha: str, expected: int, offset: int, *, done: bool) -> bool:
        """Move the proof's offset from ``expected`` to ``offset`` (compare-and-set: False when another
        request moved it first); a finished proof is forgotten (the run_blobs row replaces it)."""
        now = time.time()
        with self.index.write() as conn:
            conn.execute(self.index.insert_ignoring_conflicts(
                blob_proofs, [dict(run_id=run_id, sha256=sha, offset=0, updated=now)]))
            where = sa.and_(blob_proofs.c.run_id == run_id, blob_proofs.c.sha256 == sha,
                            blob_proofs.c.offset == expected)
            if done:
                return bool(conn.execute(blob_proofs.delete().where(where)).rowcount)
            return bool(conn.execute(blob_proofs.update().where(where).values(offset=offset, updated=now)).rowcount)

    def _linked_when_complete(self, run_id: str, sha: str, state: dict) -> dict:
        """Link the blob to the run once the run's own bytes completed it; a blob stored meanwhile by
        another run (``stored_before``) is proven instead, from this run's proof offset."""
        if state.pop("stored_before", False):
            return {"offset": self._proof_offset(run_id, sha), "complete": False, "length": state["offset"]}
        if state.get("complete"):
            size = self.blobs.size(sha)
            if size is None:
                raise NotFound(f"blob {sha} is missing from the blob store after its upload completed; send it again")
            self._link(run_id, sha, size)
        return state

    def collect_garbage(self, max_age_s: float, *, apply: bool = True) -> list:
        """Blobs no run links to and stale partial uploads, older than ``max_age_s`` (removed when ``apply``)."""
        return self.blobs.collect_garbage(self.index.referenced_blobs(), max_age_s, apply=apply)

    # -- reads: Store's own code, which needs only run(), _lock and _knn_cache -------------------
    embedding = Store.embedding
    reduction = Store.reduction
    neighbors = Store.neighbors
    _vectors = Store._vectors


def _hash_check(chunks, sha: str) -> int:
    """Hash a body against ``sha`` without storing it; its size (IntegrityMismatch when it differs)."""
    digest, size = hashlib.sha256(), 0
    for chunk in chunks:
        digest.update(chunk)
        size += len(chunk)
    if digest.hexdigest() != sha:
        raise IntegrityMismatch(f"the body does not match blob {sha}: it hashes to {digest.hexdigest()}; "
                                "send it again")
    return size


def _text(value):
    return value if isinstance(value, str) else None


def _number(value):
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


# -- the viewer's state on replicas ---------------------------------------------------------
class SharedBookmarks:
    """:class:`~server_stub.bookmarks.Bookmarks` in the ``bookmarks`` table, so every replica sees them."""

    def __init__(self, store: SharedStore):
        self.store = store
        self.index = store.index

    def list(self, run_id: str) -> list[dict]:
        self.store.run_dir(run_id)
        with self.index.read() as conn:
            rows = conn.execute(sa.select(bookmarks).where(bookmarks.c.run_id == run_id)
                                .order_by(bookmarks.c.created, bookmarks.c.name)).all()
        return [{"name": r.name, "state": json.loads(r.state), "created": r.created, "updated": r.updated}
                for r in rows]

    def put(self, run_id: str, name: str, state) -> tuple[dict, bool]:
        """Create or replace; returns (the bookmark, whether it is new)."""
        check_bookmark_name(name)
        check_bookmark_state(state)
        now = time.time()
        with self.index.write() as conn:
            self.store._lock_run(conn, run_id)  # one writer of a run's bookmarks at a time: the count holds
            created_at = conn.execute(sa.select(bookmarks.c.created).where(
                bookmarks.c.run_id == run_id, bookmarks.c.name == name)).scalar()
            if created_at is None:
                count = conn.execute(sa.select(sa.func.count()).select_from(bookmarks)
                                     .where(bookmarks.c.run_id == run_id)).scalar_one()
                if count >= MAX_PER_RUN:
                    raise Conflict(f"run {run_id} has {count} bookmarks, the most one run keeps; delete one first")
                conn.execute(bookmarks.insert().values(run_id=run_id, name=name, state=json.dumps(state),
                                                       created=now, updated=now))
            else:
                conn.execute(bookmarks.update().where(bookmarks.c.run_id == run_id, bookmarks.c.name == name)
                             .values(state=json.dumps(state), updated=now))
        return {"name": name, "state": state, "created": created_at or now, "updated": now}, created_at is None

    def delete(self, run_id: str, name: str) -> None:
        check_bookmark_name(name)
        self.store.run_dir(run_id)
        with self.index.write() as conn:
            result = conn.execute(bookmarks.delete().where(bookmarks.c.run_id == run_id, bookmarks.c.name == name))
        if not result.rowcount:
            raise NotFound(f"run {run_id} has no bookmark {name!r}")


class SharedProjectionJobs(ProjectionJobs):
    """:class:`~server_stub.projections.ProjectionJobs` on shared storage. A job runs on a scratch
    run directory under this replica's cache dir holding only the vectors it reads; its coordinate
    blobs then go to the blob store and its records to the index (:meth:`SharedStore.append_own`),
    and the scratch directory is removed either way. Job states live in this replica's memory."""

    UNKNOWN_JOB = ("jobs live in the memory of the replica that took them: poll that replica; "
                   "once done, the projection is in the run's embeddings on every replica")
    SCRATCH = ".projection-jobs"

    def __init__(self, store: SharedStore):
        super().__init__(store)
        self.scratch = store.root / self.SCRATCH
        shutil.rmtree(self.scratch, ignore_errors=True)  # left by a replica that died mid-job (one per cache dir)

    @contextmanager
    def _workspace(self, entry: dict, job):
        from tracker_sdk.reduce.tasks import EmbeddingJob

        run_dir = self.scratch / uuid.uuid4().hex
        try:
            run_dir.mkdir(parents=True)
            shas = [job.vectors_sha] if isinstance(job, EmbeddingJob) else [item["vectors_sha"] for item in job.items]
            for sha in dict.fromkeys(shas):
                self.store.copy_blob_into(run_dir, sha)
            yield replace(job, run_dir=str(run_dir))
        finally:
            shutil.rmtree(run_dir, ignore_errors=True)

    def _store(self, entry: dict, job, result) -> list:
        return self.store.append_own(entry["run_id"], result.payloads, blob_dir=job.run_dir)


class SharedCollector(Collector):
    """:class:`~server_stub.store.Collector` on the shared stores: unreferenced blobs and stale partial uploads."""

    def collect_once(self) -> None:
        try:
            self.store.collect_garbage(self.max_age_s)
        except Exception as exc:  # noqa: BLE001 - a store that is down is retried at the next interval
            log.warning("garbage collection of the shared stores failed: %s", exc)
