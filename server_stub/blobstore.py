"""The server's blob stores: content-addressed blobs shared by every run, in a directory or an S3 bucket.

A blob is named by its sha256 and stored once for all runs (which run may read or name a blob
is the caller's business). Both stores answer the same calls with the same answers and errors
(:mod:`server_stub.errors`), and neither makes a blob visible before its bytes hashed to its name::

    open_blob_store(uri, cache_dir)      DIR | file://DIR | s3://bucket/prefix?endpoint_url=…&region=…
    .size(sha) / .local_path(sha) / .read_range(sha, offset, length)
    .put(sha, chunks, size=None)         a whole body, hashed while received
    .upload_state(run_id, sha)           resumable chunked uploads (tus-like PATCH chunks)
    .append_upload(run_id, sha, offset, length, chunks, checksum)
    .collect_garbage(referenced, max_age_s, apply=True) / .health() / .close()

Directory layout: ``DIR/blobs/ab/<sha256>`` (written by :func:`commit_blob`, the one blob
commit) and partial uploads ``DIR/.uploads/<run_id>/<sha256>.part`` with the ``.length`` the
upload began with. Nothing under DIR is reached through a symbolic link.

S3 layout under the prefix (the SDK's ``s3://`` backend uses the same ``blobs/`` keys)::

    blobs/ab/<sha256>                    content objects, written only after their hash matched
    uploads/<run_id>/<sha256>            the staging key: one multipart upload per chunked upload
    uploads/<run_id>/<sha256>.json       {"length", "upload_id"}: written once (If-None-Match)

Each PATCH chunk becomes one part (its Upload-Checksum checked before ``UploadPart``); parts are
at least 5 MiB except the last (``min_chunk`` in the upload state). The offset is read from
``ListParts``, so any replica resumes any upload: no local state but a cache. When every byte
is there the upload is completed at the staging key, streamed back through :func:`commit_blob`
into the local cache (hashed, size checked), copied to its content key and the staging object
deleted; a mismatch deletes the staging object and answers 422 (retryable). Reads go through a
per-replica cache of verified copies (:class:`BlobCache`, LRU, bounded), filled by parallel
ranged GETs; :meth:`S3BlobStore.read_range` reads a range without fetching the whole blob.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import stat
import tempfile
import threading
import time
from collections import OrderedDict, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from tracker_sdk.errors import (BlobIntegrityError, InvalidArgumentError, MissingDependencyError, RunFormatError,
                               StorageFullError)
from tracker_sdk.runformat.files import TMP_SUFFIX, commit_blob, full_disk_raises, refuse_links
from tracker_sdk.runformat.names import is_sha256

from .errors import (ApiError, BadRequest, ChecksumMismatch, ClientGone, Conflict, Forbidden, InsufficientStorage,
                     IntegrityMismatch, NotFound, PayloadTooLarge, Unprocessable, full_disk, relative)
from .security import check_run_id, check_sha256
from .uploadfiles import cut_back, known_length, regular_size, unlink_quietly, write_all, write_new

log = logging.getLogger("server_stub.blobstore")

MIN_PART = 5 << 20            # S3's smallest multipart part (all but the last)
MAX_PART = 5 << 30            # and its largest
MAX_PARTS = 10_000
DEFAULT_MAX_BLOB = 64 << 30
DEFAULT_CACHE_BYTES = 4 << 30
FETCH_PART = 8 << 20          # one ranged GET when a blob is fetched into the cache
PUT_MULTIPART_THRESHOLD = 64 << 20
SPOOL_IN_MEMORY = 32 << 20    # a PATCH chunk is held in memory up to this, then spilled to the cache disk
RETRY_UNAVAILABLE_S = 5
UPLOADS = ".uploads"
S3_OPTIONS = ("endpoint_url", "region", "aws_access_key_id", "aws_secret_access_key")


class BlobStore(Protocol):
    """What the server asks of a blob store (both implementations below)."""

    def size(self, sha: str) -> int | None: ...
    def local_path(self, sha: str) -> Path: ...
    def read_range(self, sha: str, offset: int, length: int) -> bytes: ...
    def put(self, sha: str, chunks, size: int | None = None) -> dict: ...
    def upload_state(self, run_id: str, sha: str) -> dict: ...
    def append_upload(self, run_id: str, sha: str, offset: int, length: int, chunks, checksum: bytes | None) -> dict: ...
    def collect_garbage(self, referenced, max_age_s: float, apply: bool = True) -> list: ...
    def health(self) -> dict: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class Garbage:
    """One thing collected: ``kind`` (blob, upload, staging, temp), where it is (relative to the
    store), its size in bytes and its age in seconds."""

    kind: str
    path: str
    size: int
    age_s: float


def open_blob_store(uri, cache_dir=None, *, max_blob: int = DEFAULT_MAX_BLOB,
                    cache_bytes: int = DEFAULT_CACHE_BYTES) -> DirectoryBlobStore | S3BlobStore:
    """The blob store at ``uri``: a directory (a path or ``file://PATH``) or ``s3://bucket/prefix``.

    Parameters
    ----------
    uri : str or path
        ``DIR``, ``file:///DIR`` or ``s3://bucket/prefix?endpoint_url=…&region=…``; S3 credentials
        come from ``aws_access_key_id`` and ``aws_secret_access_key`` in the query, else from the
        standard AWS variables and files.
    cache_dir : path
        This replica's own cache (S3 only; required there): verified copies of blobs and the
        spill files of incoming chunks. Never shared between processes.
    max_blob : int
        Largest blob accepted, in bytes (413 above).
    cache_bytes : int
        Bound of the cache; the least recently used copies go first.
    """
    text = str(uri)
    scheme = urlsplit(text).scheme.lower() if "://" in text else ""
    if scheme == "s3":
        if cache_dir is None:
            raise InvalidArgumentError(f"cache_dir is required for an s3:// blob store (a local directory for "
                                       f"this replica's cache); got None for {_without_secrets(text)}")
        bucket, prefix, options = parse_s3_uri(text)
        return S3BlobStore(bucket, prefix, cache_dir=cache_dir, max_blob=max_blob, cache_bytes=cache_bytes, **options)
    if scheme == "file":
        parts = urlsplit(text)
        if parts.netloc not in ("", "localhost"):
            raise InvalidArgumentError(f"blob uri file:// must name a local path (file:///DIR); got {text!r}")
        return DirectoryBlobStore(unquote(parts.path), max_blob=max_blob)
    if scheme:
        raise InvalidArgumentError(f"blob uri must be a directory path, file:///DIR or s3://bucket/prefix; "
                                   f"got scheme {scheme!r} in {_without_secrets(text)!r}")
    return DirectoryBlobStore(text, max_blob=max_blob)


def parse_s3_uri(uri: str) -> tuple[str, str, dict]:
    """``s3://bucket/prefix?endpoint_url=…`` -> (bucket, prefix, options); unknown options are refused."""
    parts = urlsplit(uri)
    if parts.scheme.lower() != "s3" or not parts.netloc:
        raise InvalidArgumentError(f"blob uri must look like s3://bucket/prefix; got {_without_secrets(uri)!r}")
    query = {key: values[-1] for key, values in parse_qs(parts.query, keep_blank_values=True).items()}
    unknown = sorted(set(query) - set(S3_OPTIONS))
    if unknown:
        raise InvalidArgumentError(f"s3:// blob uri options are {', '.join(S3_OPTIONS)}; got {unknown}")
    if ("aws_access_key_id" in query) != ("aws_secret_access_key" in query):
        raise InvalidArgumentError("s3:// blob uri must give both aws_access_key_id and aws_secret_access_key, "
                                   "or neither (then the AWS environment is used)")
    return parts.netloc, parts.path.strip("/"), query


def _without_secrets(uri: str) -> str:
    return uri.split("?", 1)[0]


# -- answers shared by both stores ------------------------------------------------------------
def _check_range(offset, length) -> None:
    for name, value in (("offset", offset), ("length", length)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise BadRequest(f"{name} must be a non-negative integer; got {value!r}")


def stored_before(size: int, **extra) -> dict:
    """The answer for an upload whose blob the store held before this request's bytes completed it
    (another run's upload, or a whole body): ``stored_before`` lets the scale-out store refuse to
    count it as this run's bytes (a run reads only blobs it sent)."""
    return {"offset": size, "complete": True, "stored_before": True, **extra}


def _check_upload_request(offset: int, length: int, max_blob: int) -> None:
    if length > max_blob:
        raise PayloadTooLarge(f"Upload-Length {length} is above this server's limit of {max_blob} bytes")
    if offset > length:
        raise BadRequest(f"Upload-Offset {offset} is past Upload-Length {length}")


def _length_differs(length: int, known: int) -> BadRequest:
    return BadRequest(f"Upload-Length {length} differs from {known}, given when this upload began")


def _offset_differs(offset: int, current: int) -> Conflict:
    return Conflict(f"Upload-Offset {offset} does not match the server's offset {current}", offset=current)


def _checksum_failed(offset: int, received: int) -> ChecksumMismatch:
    return ChecksumMismatch(f"the chunk at offset {offset} ({received} bytes) does not match its "
                            "Upload-Checksum; it was dropped: send it again", offset=offset)


def _integrity(exc: BlobIntegrityError, sha: str, what: str, root=None, **extra) -> IntegrityMismatch:
    return IntegrityMismatch(f"the {what} does not match blob {sha}: {relative(str(exc), root)}; send it again",
                             **extra)


class KeyedLocks:
    """One lock per key, forgotten when nobody holds or waits for it (no growth per upload)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._held: dict = {}

    @contextlib.contextmanager
    def hold(self, key, blocking: bool = True):
        """Yields True when the key's lock is held (always, when ``blocking``)."""
        with self._lock:
            entry = self._held.setdefault(key, [threading.Lock(), 0])
            entry[1] += 1
        try:
            got = entry[0].acquire(blocking)
            try:
                yield got
            finally:
                if got:
                    entry[0].release()
        finally:
            with self._lock:
                entry[1] -= 1
                if not entry[1]:
                    del self._held[key]


# -- a directory ------------------------------------------------------------------------------
class DirectoryBlobStore:
    """Blobs in ``root/blobs/ab/<sha256>``, partial uploads in ``root/.uploads/<run_id>/``.

    Chunked uploads append to a ``.part`` file (``flock``'ed, so a second process on the same
    directory cannot interleave) and any chunk size is accepted.
    """

    def __init__(self, root, *, max_blob: int = DEFAULT_MAX_BLOB, uploads=None, links_root=None, locks=None):
        """``uploads``, ``links_root`` and ``locks`` let the run-directory store keep one of these per
        run (blobs in the run, partial uploads under its own root, links refused from that root)."""
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.uploads = Path(uploads) if uploads is not None else self.root / UPLOADS
        self.links_root = Path(links_root) if links_root is not None else self.root
        self.max_blob = int(max_blob)
        self._locks = locks if locks is not None else KeyedLocks()

    def __repr__(self) -> str:
        return f"DirectoryBlobStore({str(self.root)!r})"

    def close(self) -> None:
        """Nothing is held open between calls."""

    def _no_links(self, path: Path) -> Path:
        try:
            return refuse_links(self.links_root, path)
        except RunFormatError as exc:
            raise Forbidden(f"{relative(str(exc), self.links_root)}: this server never follows links under its root") from None

    def _path(self, sha: str) -> Path:
        return self._no_links(self.root / "blobs" / check_sha256(sha)[:2] / sha)

    # -- reads ---------------------------------------------------------------------------
    def size(self, sha: str) -> int | None:
        try:
            st = os.lstat(self._path(sha))
        except (FileNotFoundError, NotADirectoryError):
            return None
        return st.st_size if stat.S_ISREG(st.st_mode) else None

    def local_path(self, sha: str) -> Path:
        if self.size(sha) is None:
            raise NotFound(f"no blob {sha} in the blob store")
        return self._path(sha)

    def read_range(self, sha: str, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes from ``offset`` (fewer at the end of the blob)."""
        _check_range(offset, length)
        path = self.local_path(sha)
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            return os.pread(fd, length, offset)
        finally:
            os.close(fd)

    # -- whole bodies --------------------------------------------------------------------
    def put(self, sha: str, chunks, size: int | None = None) -> dict:
        """Store a blob sent whole; ``chunks`` are written, hashed and checked against ``sha``."""
        check_sha256(sha)
        if size is not None and size > self.max_blob:
            raise PayloadTooLarge(f"a blob of {size} bytes is above this server's limit of {self.max_blob} bytes")
        blob = self._commit(chunks, sha, size, "body")
        return {"size": blob.size, "created": blob.created}

    def _commit(self, source, sha: str, size: int | None, what: str):
        self._path(sha)
        try:
            return commit_blob(self.root, source, sha256=sha, size=size)
        except BlobIntegrityError as exc:
            raise _integrity(exc, sha, what, self.links_root) from None
        except StorageFullError as exc:
            raise full_disk(exc) from None

    # -- chunked uploads -----------------------------------------------------------------
    def _upload_paths(self, run_id: str, sha: str) -> tuple[Path, Path]:
        base = self.uploads / check_run_id(run_id)
        part, length_file = base / f"{check_sha256(sha)}.part", base / f"{sha}.length"
        return self._no_links(part), self._no_links(length_file)

    def upload_state(self, run_id: str, sha: str) -> dict:
        """How far an upload got; one whose bytes are all there is committed now."""
        part, length_file = self._upload_paths(run_id, sha)
        size = self.size(sha)
        if size is not None:
            _drop_upload(part, length_file)
            return stored_before(size)
        state = {"offset": regular_size(part), "complete": False}
        length = known_length(length_file)
        if length is not None:
            state["length"] = length
            if state["offset"] >= length:
                with self._locks.hold((run_id, sha), blocking=False) as mine:
                    if mine:  # else the request holding it commits
                        return self._commit_part(run_id, sha, length)
        return state

    def append_upload(self, run_id: str, sha: str, offset: int, length: int, chunks, checksum: bytes | None) -> dict:
        """Append one chunk at ``offset``, then commit when the upload is whole.

        With ``checksum`` (the chunk's sha256 digest) a chunk that fails it or does not arrive
        whole is cut off again (460); without it the prefix that arrived is kept.
        """
        part, length_file = self._upload_paths(run_id, sha)
        _check_upload_request(offset, length, self.max_blob)
        with self._locks.hold((run_id, sha), blocking=False) as mine:
            if not mine:
                raise Conflict("another request is appending to this upload", offset=regular_size(part))
            size = self.size(sha)
            if size is not None:
                _drop_upload(part, length_file)
                return stored_before(size)
            fh = self._open_part(part, length_file, offset, length)
            digest, received = hashlib.sha256(), 0
            try:
                with full_disk_raises(self.uploads, "upload chunk"):
                    for chunk in chunks:
                        if offset + received + len(chunk) > length:
                            raise BadRequest(f"chunk runs past Upload-Length {length}")
                        if checksum is not None:
                            digest.update(chunk)
                        write_all(fh.fileno(), memoryview(chunk))
                        received += len(chunk)
                if checksum is not None and digest.digest() != checksum:
                    raise _checksum_failed(offset, received)
            except ClientGone:
                if checksum is not None:
                    cut_back(fh, offset)
                else:  # keep the prefix that arrived: the client resumes from the server's offset
                    self._finish_chunk(run_id, sha, fh, length)
                raise
            except StorageFullError as exc:
                cut_back(fh, offset)
                raise full_disk(exc) from None
            except BaseException:
                cut_back(fh, offset)
                raise
            return self._finish_chunk(run_id, sha, fh, length)

    def _open_part(self, part: Path, length_file: Path, offset: int, length: int):
        """The partial file opened for appending at ``offset`` (flock'ed), its length recorded."""
        try:
            with full_disk_raises(self.uploads, "upload"):
                part.parent.mkdir(parents=True, exist_ok=True)
                known = known_length(length_file)
                if known is not None and known != length:
                    raise _length_differs(length, known)
                if known is None:
                    write_new(length_file, str(length).encode())
                fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o644)
        except StorageFullError as exc:
            raise full_disk(exc) from None
        fh = os.fdopen(fd, "ab", buffering=0)
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            raise Conflict("another request is appending to this upload", offset=regular_size(part)) from None
        current = os.fstat(fh.fileno()).st_size
        if current != offset:
            fh.close()
            raise _offset_differs(offset, current)
        return fh

    def _finish_chunk(self, run_id: str, sha: str, fh, length: int) -> dict:
        try:
            try:
                with full_disk_raises(self.uploads, "upload chunk"):
                    os.fsync(fh.fileno())
            except StorageFullError as exc:
                raise full_disk(exc) from None
            offset = os.fstat(fh.fileno()).st_size
        finally:
            fh.close()
        if offset < length:
            return {"offset": offset, "complete": False}
        return self._commit_part(run_id, sha, length)

    def _commit_part(self, run_id: str, sha: str, length: int) -> dict:
        """Hash, check and commit a whole partial upload (the caller holds its lock); a part that
        does not hash to ``sha`` is discarded (422, retryable), on a full disk it stays."""
        part, length_file = self._upload_paths(run_id, sha)
        try:
            with open(part, "rb") as source:
                fcntl.flock(source.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)  # no other process appends
                if os.fstat(source.fileno()).st_size > length:
                    raise IntegrityMismatch(f"the upload of blob {sha} holds more than its Upload-Length {length}")
                self._commit(source, sha, length, "upload")
        except BlockingIOError:
            return {"offset": regular_size(part), "complete": False, "length": length}
        except FileNotFoundError:  # another process committed it a moment ago
            size = self.size(sha)
            return {"offset": 0, "complete": False} if size is None else {"offset": size, "complete": True}
        except IntegrityMismatch as exc:
            unlink_quietly(part)
            unlink_quietly(length_file)
            raise IntegrityMismatch(exc.message + "; the partial upload was discarded", offset=0) from None
        unlink_quietly(part)
        unlink_quietly(length_file)
        return {"offset": length, "complete": True}

    # -- garbage -------------------------------------------------------------------------
    def collect_garbage(self, referenced, max_age_s: float, apply: bool = True, *,
                        now: float | None = None) -> list[Garbage]:
        """Blobs not in ``referenced``, partial uploads and temporary files, all older than
        ``max_age_s``; removed when ``apply``. An upload whose data is recent keeps its length."""
        referenced = set(referenced)
        now = time.time() if now is None else now
        found = []

        def note(kind: str, path: Path, st) -> None:
            found.append(Garbage(kind, str(path.relative_to(self.root)), st.st_size, now - st.st_mtime))
            if apply:
                unlink_quietly(path)

        for directory in _real_subdirs(self.root / "blobs"):
            for entry in _files(directory):
                st = entry.stat(follow_symlinks=False)
                if now - st.st_mtime <= max_age_s:
                    continue
                if entry.name.endswith(TMP_SUFFIX):
                    note("temp", Path(entry.path), st)
                elif is_sha256(entry.name) and entry.name not in referenced:
                    note("blob", Path(entry.path), st)
        for directory in _real_subdirs(self.uploads):
            for entry in _files(directory):
                st = entry.stat(follow_symlinks=False)
                if now - st.st_mtime <= max_age_s or not entry.name.endswith((".part", ".length")):
                    continue
                path = Path(entry.path)
                part = path.with_suffix(".part")
                if path.suffix == ".length" and os.path.isfile(part) and now - os.lstat(part).st_mtime <= max_age_s:
                    continue  # the upload's data is recent: keep the length it began with
                note("upload", path, st)
            if apply:
                with contextlib.suppress(OSError):
                    os.rmdir(directory)  # only when empty
        if apply and found:
            log.info("collected %d blob store files (%d bytes) under %s", len(found), sum(g.size for g in found),
                     self.root)
        return found

    def health(self) -> dict:
        """``ok`` when the root is a writable directory; its free space."""
        answer = {"store": "directory", "ok": False}
        try:
            usage = os.statvfs(self.root)
        except OSError as exc:
            return {**answer, "error": f"the blob directory cannot be read: {exc.strerror}"}
        if not os.access(self.root, os.W_OK):
            return {**answer, "error": "the blob directory is not writable"}
        return {**answer, "ok": True, "free_bytes": usage.f_bavail * usage.f_frsize}


# -- the per-replica cache of an S3 store ------------------------------------------------------
class BlobCache:
    """Verified local copies of blobs, ``DIR/blobs/ab/<sha256>`` (written by :func:`commit_blob`).

    At most ``max_bytes`` (least recently used go first), except copies used within the last
    ``grace_s`` seconds: a path handed out a moment ago stays readable. One process per directory.
    """

    def __init__(self, directory, max_bytes: int = DEFAULT_CACHE_BYTES, *, grace_s: float = 60.0):
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 0:
            raise InvalidArgumentError(f"cache_bytes must be a non-negative number of bytes; got {max_bytes!r}")
        self.root = Path(directory).resolve()
        self.spool = self.root / "incoming"
        self.max_bytes = max_bytes
        self.grace_s = grace_s
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, list] = OrderedDict()  # sha -> [size, last used]
        self.total = self.hits = self.misses = 0
        self.spool.mkdir(parents=True, exist_ok=True)
        for leftover in _files(self.spool):  # chunks of requests that died with the last process
            unlink_quietly(leftover.path)
        found = []
        for subdir in _real_subdirs(self.root / "blobs"):
            for entry in _files(subdir):
                if is_sha256(entry.name):
                    st = entry.stat(follow_symlinks=False)
                    found.append((st.st_mtime, entry.name, st.st_size))
                elif entry.name.endswith(TMP_SUFFIX):
                    unlink_quietly(entry.path)
        for mtime, sha, size in sorted(found):
            self._entries[sha] = [size, mtime]
            self.total += size

    def path_of(self, sha: str) -> Path:
        return self.root / "blobs" / sha[:2] / sha

    def get(self, sha: str, *, count_miss: bool = True) -> Path | None:
        """The cached copy of ``sha`` (now the most recently used), or None."""
        now = time.time()
        with self._lock:
            entry = self._entries.get(sha)
            if entry is None:
                self.misses += count_miss
                return None
            entry[1] = now
            self._entries.move_to_end(sha)
            self.hits += 1
        with contextlib.suppress(OSError):  # the order survives a restart
            os.utime(self.path_of(sha), (now, now))
        return self.path_of(sha)

    def commit(self, source, sha: str, size: int | None) -> Path:
        """Store ``source`` as the copy of ``sha`` after checking hash and size (BlobIntegrityError)."""
        try:
            blob = commit_blob(self.root, source, sha256=sha, size=size)
        except StorageFullError as exc:
            raise full_disk(exc) from None
        with self._lock:
            old = self._entries.pop(sha, None)
            self.total += blob.size - (old[0] if old else 0)
            self._entries[sha] = [blob.size, time.time()]
        self._evict()
        return self.path_of(sha)

    def discard(self, sha: str) -> None:
        with self._lock:
            entry = self._entries.pop(sha, None)
            if entry is not None:
                self.total -= entry[0]
        if entry is not None:
            unlink_quietly(self.path_of(sha))

    def _evict(self) -> None:
        victims = []
        with self._lock:
            cutoff = time.time() - self.grace_s
            for sha, (size, used) in list(self._entries.items()):
                if self.total <= self.max_bytes or used > cutoff:
                    break  # oldest first: the rest are newer
                del self._entries[sha]
                self.total -= size
                victims.append(sha)
        for sha in victims:
            unlink_quietly(self.path_of(sha))

    def stats(self) -> dict:
        with self._lock:
            return {"bytes": self.total, "files": len(self._entries), "max_bytes": self.max_bytes,
                    "hits": self.hits, "misses": self.misses}

    def spool_file(self):
        """A temporary file for one incoming chunk: in memory while small, then on the cache's disk."""
        return tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY, dir=self.spool)


# -- an S3 bucket -----------------------------------------------------------------------------
class S3BlobStore:
    """Blobs in ``s3://bucket/prefix`` (layout in the module docstring), read through a :class:`BlobCache`.

    Parameters
    ----------
    bucket, prefix : str
    cache_dir : path
        This replica's cache and spill directory.
    endpoint_url, region, aws_access_key_id, aws_secret_access_key : str, optional
        Where the store is and who we are; missing credentials come from the AWS environment.
    client : botocore S3 client, optional
        Used as given; otherwise one with path-style addressing and bounded timeouts.
    workers : int
        Parallel ranged GETs per fetch, and the connection pool's size.
    """

    def __init__(self, bucket: str, prefix: str = "", *, cache_dir, endpoint_url: str | None = None,
                 region: str | None = None, aws_access_key_id: str | None = None,
                 aws_secret_access_key: str | None = None, max_blob: int = DEFAULT_MAX_BLOB,
                 cache_bytes: int = DEFAULT_CACHE_BYTES, client=None, workers: int = 8, grace_s: float = 60.0):
        try:
            import boto3
            import boto3.exceptions
            import botocore.config
            import botocore.exceptions
            from boto3.s3.transfer import TransferConfig
        except ImportError:
            raise MissingDependencyError("boto3", "scale", "an s3:// blob store") from None
        self.bucket, self.prefix = bucket, prefix.strip("/")
        self.endpoint_url = endpoint_url
        self.max_blob = int(max_blob)
        self.cache = BlobCache(cache_dir, cache_bytes, grace_s=grace_s)
        self._client_error = botocore.exceptions.ClientError
        # a transfer (upload_file) wraps what went wrong in boto3's own S3UploadFailedError
        self._boto_error = (botocore.exceptions.BotoCoreError, boto3.exceptions.Boto3Error)
        if client is None:
            config = botocore.config.Config(s3={"addressing_style": "path"}, connect_timeout=5, read_timeout=60,
                                            retries={"mode": "standard", "max_attempts": 3},
                                            max_pool_connections=2 * workers + 4,
                                            request_checksum_calculation="when_required",
                                            response_checksum_validation="when_required")
            session = boto3.session.Session(aws_access_key_id=aws_access_key_id,
                                            aws_secret_access_key=aws_secret_access_key)
            client = session.client("s3", endpoint_url=endpoint_url, region_name=region, config=config)
        self.client = client
        self._put_config = TransferConfig(multipart_threshold=PUT_MULTIPART_THRESHOLD, multipart_chunksize=16 << 20,
                                          max_concurrency=workers)
        # one CopyObject up to S3's 5 GB limit (a server-side copy), UploadPartCopy above it
        self._copy_config = TransferConfig(multipart_threshold=4 << 30, multipart_chunksize=1 << 30,
                                           max_concurrency=workers)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="blobstore-get")
        self._window = workers
        self._locks = KeyedLocks()

    def __repr__(self) -> str:
        return f"S3BlobStore('s3://{self.bucket}/{self.prefix}', endpoint_url={self.endpoint_url!r})"

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    # -- keys and requests ---------------------------------------------------------------
    def _key(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, *parts) if p)

    def content_key(self, sha: str) -> str:
        return self._key("blobs", sha[:2], sha)

    def staging_key(self, run_id: str, sha: str) -> str:
        return self._key("uploads", run_id, sha)

    def _state_key(self, run_id: str, sha: str) -> str:
        return self._key("uploads", run_id, f"{sha}.json")

    def _relative(self, key: str) -> str:
        return key[len(self.prefix) + 1:] if self.prefix else key

    def _call(self, what: str, fn, *, absent=(), **kwargs):
        """One S3 request. An error whose status or code is in ``absent`` returns None; a full
        bucket is 507; anything else the store did is 503 (retryable), never a 500."""
        try:
            return fn(**kwargs)
        except self._client_error as exc:
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            code = exc.response.get("Error", {}).get("Code", "") or str(status)
            if status in absent or code in absent:
                return None
            log.warning("blob store: %s on s3://%s/%s failed: %s %s", what, self.bucket, self.prefix, status, code)
            if code in ("QuotaExceeded", "InsufficientStorage") or status == 507:
                raise InsufficientStorage(f"the blob store is full ({code}); retry later") from None
            raise ApiError(503, f"the blob store could not {what} ({code}); retry later",
                           retry_after=RETRY_UNAVAILABLE_S) from None
        except self._boto_error as exc:
            log.warning("blob store: %s on s3://%s/%s failed: %s", what, self.bucket, self.prefix, exc)
            raise ApiError(503, f"the blob store is unreachable ({type(exc).__name__}); retry later",
                           retry_after=RETRY_UNAVAILABLE_S) from None

    def _head(self, key: str) -> dict | None:
        return self._call("read an object's size", self.client.head_object, absent=(404, "NoSuchKey"),
                          Bucket=self.bucket, Key=key)

    def _delete(self, *keys: str) -> None:
        for key in keys:
            self._call("delete an object", self.client.delete_object, absent=(404,), Bucket=self.bucket, Key=key)

    def _list(self, prefix: str):
        """Every object under ``prefix`` (paginated)."""
        token = None
        while True:
            page = self._call("list objects", self.client.list_objects_v2, Bucket=self.bucket, Prefix=prefix,
                              **({"ContinuationToken": token} if token else {}))
            yield from page.get("Contents", [])
            if not page.get("IsTruncated"):
                return
            token = page["NextContinuationToken"]

    # -- reads ---------------------------------------------------------------------------
    def size(self, sha: str) -> int | None:
        head = self._head(self.content_key(check_sha256(sha)))
        return None if head is None else int(head["ContentLength"])

    def local_path(self, sha: str) -> Path:
        """A verified local copy: from the cache, or fetched with parallel ranged GETs."""
        check_sha256(sha)
        path = self.cache.get(sha)
        if path is not None:
            return path
        with self._locks.hold(("fetch", sha)):
            path = self.cache.get(sha, count_miss=False)  # fetched by the request this one waited for
            if path is not None:
                return path
            size = self.size(sha)
            if size is None:
                raise NotFound(f"no blob {sha} in the blob store")
            try:
                return self.cache.commit(self._ranges(self.content_key(sha), size), sha, size)
            except BlobIntegrityError as exc:
                raise Unprocessable(f"blob {sha} in the blob store cannot be read back intact: "
                                    f"{relative(str(exc), self.cache.root)}") from None

    def _get_range(self, key: str, offset: int, length: int) -> bytes | None:
        answer = self._call("read a range", self.client.get_object, absent=(404, 416, "NoSuchKey", "InvalidRange"),
                            Bucket=self.bucket, Key=key, Range=f"bytes={offset}-{offset + length - 1}")
        if answer is None:
            return None
        try:
            return answer["Body"].read()
        except self._boto_error as exc:
            raise ApiError(503, f"the blob store broke off a read ({type(exc).__name__}); retry later",
                           retry_after=RETRY_UNAVAILABLE_S) from None

    def _ranges(self, key: str, size: int):
        """The object's bytes in order, ``FETCH_PART`` at a time, up to ``workers`` GETs in flight."""
        pending: deque = deque()
        offsets = iter(range(0, size, FETCH_PART))
        try:
            while True:
                while len(pending) < self._window:
                    offset = next(offsets, None)
                    if offset is None:
                        break
                    pending.append(self._pool.submit(self._get_range, key, offset, min(FETCH_PART, size - offset)))
                if not pending:
                    return
                data = pending.popleft().result()
                if data is None:
                    raise NotFound(f"blob {key.rsplit('/', 1)[-1]} left the blob store while it was read")
                yield data
        finally:
            for future in pending:
                future.cancel()

    def read_range(self, sha: str, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes from ``offset``: from the cache when the blob is there, else one ranged GET."""
        check_sha256(sha)
        _check_range(offset, length)
        path = self.cache.get(sha, count_miss=False)
        if path is not None:
            with contextlib.suppress(FileNotFoundError):  # evicted since: read from the store
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
                try:
                    return os.pread(fd, length, offset)
                finally:
                    os.close(fd)
        data = self._get_range(self.content_key(sha), offset, length) if length else None
        if data is None:  # missing, past the end, or nothing asked for
            if self.size(sha) is None:
                raise NotFound(f"no blob {sha} in the blob store")
            return b""
        return data

    # -- whole bodies --------------------------------------------------------------------
    def put(self, sha: str, chunks, size: int | None = None) -> dict:
        """Receive into the cache (hashed, checked), then upload to the content key (multipart when large)."""
        check_sha256(sha)
        if size is not None and size > self.max_blob:
            raise PayloadTooLarge(f"a blob of {size} bytes is above this server's limit of {self.max_blob} bytes")
        try:
            path = self.cache.commit(chunks, sha, size)
        except BlobIntegrityError as exc:
            raise _integrity(exc, sha, "body", self.cache.root) from None
        stored = path.stat().st_size
        if self.size(sha) is not None:
            return {"size": stored, "created": False}
        self._call("store a blob", self.client.upload_file, Filename=str(path), Bucket=self.bucket,
                   Key=self.content_key(sha), ExtraArgs={"ContentType": "application/octet-stream"},
                   Config=self._put_config)
        return {"size": stored, "created": True}

    # -- chunked uploads -----------------------------------------------------------------
    def _read_state(self, run_id: str, sha: str) -> dict | None:
        """The upload's {"length", "upload_id"}, or None (no upload begun, or an unreadable record)."""
        answer = self._call("read an upload's state", self.client.get_object, absent=(404, "NoSuchKey"),
                            Bucket=self.bucket, Key=self._state_key(run_id, sha))
        if answer is None:
            return None
        try:
            state = json.loads(answer["Body"].read())
            return {"length": int(state["length"]), "upload_id": str(state["upload_id"])}
        except (ValueError, KeyError, TypeError):
            return None

    def _parts(self, run_id: str, sha: str, state: dict) -> list[dict] | None:
        """The upload's parts 1..k without a gap (the offset is their sum), or None when the
        multipart upload is gone (completed or aborted)."""
        found, marker = {}, 0
        while True:
            page = self._call("list an upload's parts", self.client.list_parts, absent=(404, "NoSuchUpload"),
                              Bucket=self.bucket, Key=self.staging_key(run_id, sha), UploadId=state["upload_id"],
                              PartNumberMarker=marker)
            if page is None:
                return None
            for part in page.get("Parts", []):
                found[part["PartNumber"]] = {"PartNumber": part["PartNumber"], "ETag": part["ETag"],
                                             "Size": int(part["Size"])}
            if not page.get("IsTruncated"):
                break
            marker = page["NextPartNumberMarker"]
        parts = []
        while len(parts) + 1 in found:
            parts.append(found[len(parts) + 1])
        return parts

    def _begin(self, run_id: str, sha: str, length: int) -> dict:
        """Create the multipart upload; its state object is written once (If-None-Match), so two
        replicas beginning together agree on one upload and the loser aborts its own."""
        key = self.staging_key(run_id, sha)
        upload_id = self._call("begin an upload", self.client.create_multipart_upload, Bucket=self.bucket, Key=key,
                               ContentType="application/octet-stream")["UploadId"]
        body = json.dumps({"length": length, "upload_id": upload_id}).encode()
        written = self._call("record an upload's state", self.client.put_object, absent=(412, "PreconditionFailed"),
                             Bucket=self.bucket, Key=self._state_key(run_id, sha), Body=body, IfNoneMatch="*",
                             ContentType="application/json")
        if written is not None:
            return {"length": length, "upload_id": upload_id}
        self._call("abort an upload", self.client.abort_multipart_upload, absent=(404, "NoSuchUpload"),
                   Bucket=self.bucket, Key=key, UploadId=upload_id)
        state = self._read_state(run_id, sha)
        if state is None:
            raise Conflict("another request began this upload at the same moment; retry", offset=0)
        if state["length"] != length:
            raise _length_differs(length, state["length"])
        return state

    def _current(self, run_id: str, sha: str) -> tuple[dict | None, list[dict] | None, bool]:
        """(state, parts, staged): the upload as the bucket holds it; ``staged`` when it was
        completed but not yet published. A state whose upload is gone and never staged is
        stale (aborted by garbage collection) and removed."""
        state = self._read_state(run_id, sha)
        if state is None:
            return None, None, False
        parts = self._parts(run_id, sha, state)
        if parts is not None:
            return state, parts, False
        if self._head(self.staging_key(run_id, sha)) is not None:
            return state, None, True
        self._delete(self._state_key(run_id, sha))
        return None, None, False

    def _drop_upload(self, run_id: str, sha: str) -> None:
        """Abort and delete an upload of a blob stored meanwhile (by another run or a whole body);
        best effort: garbage collection removes what is left."""
        state = self._read_state(run_id, sha)
        if state is None:
            return
        try:
            self._call("abort an upload", self.client.abort_multipart_upload, absent=(404, "NoSuchUpload"),
                       Bucket=self.bucket, Key=self.staging_key(run_id, sha), UploadId=state["upload_id"])
            self._delete(self.staging_key(run_id, sha), self._state_key(run_id, sha))
        except ApiError:
            pass

    def _offset_now(self, run_id: str, sha: str) -> int:
        state, parts, staged = self._current(run_id, sha)
        return 0 if state is None else state["length"] if staged else sum(p["Size"] for p in parts)

    def upload_state(self, run_id: str, sha: str) -> dict:
        """How far an upload got (``min_chunk``: the smallest chunk but the last); one whose
        bytes are all there is completed, checked and published now."""
        check_run_id(run_id)
        size = self.size(check_sha256(sha))
        if size is not None:
            self._drop_upload(run_id, sha)
            return stored_before(size, min_chunk=MIN_PART)
        state, parts, staged = self._current(run_id, sha)
        if state is None:
            size = self.size(sha)  # published by another replica since the first look
            if size is not None:
                return stored_before(size, min_chunk=MIN_PART)
            return {"offset": 0, "complete": False, "min_chunk": MIN_PART}
        length = state["length"]
        offset = length if staged else sum(p["Size"] for p in parts)
        if offset >= length:
            with self._locks.hold((run_id, sha), blocking=False) as mine:
                if mine:  # else the request holding it publishes
                    return self._finish(run_id, sha, state, parts)
        return {"offset": offset, "complete": False, "length": length, "min_chunk": MIN_PART}

    def append_upload(self, run_id: str, sha: str, offset: int, length: int, chunks, checksum: bytes | None) -> dict:
        """Receive one chunk, check its Upload-Checksum, send it as the next part; publish when whole.

        A chunk that does not arrive whole is dropped (the offset covers whole parts only).
        """
        check_run_id(run_id)
        check_sha256(sha)
        _check_upload_request(offset, length, self.max_blob)
        with self._locks.hold((run_id, sha), blocking=False) as mine:
            if not mine:
                raise Conflict("another request is appending to this upload", offset=self._offset_now(run_id, sha))
            size = self.size(sha)
            if size is not None:
                self._drop_upload(run_id, sha)
                return stored_before(size)
            state, parts, staged = self._current(run_id, sha)
            if state is None and self.size(sha) is not None:  # published by another replica since
                return stored_before(self.size(sha))
            if state is not None and state["length"] != length:
                raise _length_differs(length, state["length"])
            if staged:
                return self._finish(run_id, sha, state, None)
            parts = parts or []
            current = sum(p["Size"] for p in parts)
            if offset != current:
                raise _offset_differs(offset, current)
            with self.cache.spool_file() as spool:
                received, md5 = self._receive(spool, chunks, offset, length, checksum)
                if not received:
                    return {"offset": current, "complete": False}
                if received < MIN_PART and offset + received < length:
                    raise BadRequest(f"a chunk of {received} bytes at offset {offset} is below this store's "
                                     f"minimum of {MIN_PART} bytes (S3 multipart parts; only the last chunk may "
                                     "be smaller); send chunks of at least min_chunk bytes", min_chunk=MIN_PART)
                if received > MAX_PART:
                    raise PayloadTooLarge(f"a chunk of {received} bytes is above S3's largest part of {MAX_PART}")
                if len(parts) >= MAX_PARTS:
                    raise BadRequest(f"this upload already has {MAX_PARTS} parts, S3's most; upload the blob "
                                     "again in larger chunks", min_chunk=-(-length // MAX_PARTS))
                if state is None:
                    state = self._begin(run_id, sha, length)
                spool.seek(0)
                answer = self._call("store a part", self.client.upload_part, absent=(404, "NoSuchUpload"),
                                    Bucket=self.bucket, Key=self.staging_key(run_id, sha), UploadId=state["upload_id"],
                                    PartNumber=len(parts) + 1, Body=spool, ContentLength=received, ContentMD5=md5)
            if answer is None:  # completed or discarded by another replica meanwhile
                size = self.size(sha)
                if size is not None:
                    return {"offset": size, "complete": True}
                raise Conflict("another request finished or discarded this upload meanwhile; resume from offset",
                               offset=self._offset_now(run_id, sha))
            parts.append({"PartNumber": len(parts) + 1, "ETag": answer["ETag"], "Size": received})
            if offset + received < length:
                return {"offset": offset + received, "complete": False}
            return self._finish(run_id, sha, state, parts)

    def _receive(self, spool, chunks, offset: int, length: int, checksum: bytes | None) -> tuple[int, str]:
        """Spool one chunk; returns (bytes, base64 MD5 for S3). 400 past the length, 460 on a bad checksum."""
        import base64

        digest, md5, received = hashlib.sha256(), hashlib.md5(), 0
        try:
            for chunk in chunks:
                if offset + received + len(chunk) > length:
                    raise BadRequest(f"chunk runs past Upload-Length {length}")
                digest.update(chunk)
                md5.update(chunk)
                spool.write(chunk)
                received += len(chunk)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise full_disk(StorageFullError(self.cache.spool, None, "upload chunk")) from None
            raise
        if checksum is not None and digest.digest() != checksum:
            raise _checksum_failed(offset, received)
        return received, base64.b64encode(md5.digest()).decode()

    def _finish(self, run_id: str, sha: str, state: dict, parts: list[dict] | None) -> dict:
        """Complete the multipart upload (unless already done), then publish the staging object."""
        key = self.staging_key(run_id, sha)
        if parts is not None:
            try:
                self._call("complete an upload", self.client.complete_multipart_upload, Bucket=self.bucket, Key=key,
                           UploadId=state["upload_id"], MultipartUpload={
                               "Parts": [{"PartNumber": p["PartNumber"], "ETag": p["ETag"]} for p in parts]})
            except ApiError:
                # another replica completed it a moment ago (Ceph answers an unknown upload with 500)
                if self._head(key) is None:
                    size = self.size(sha)
                    if size is None:
                        raise
                    return {"offset": size, "complete": True}
        return self._publish(run_id, sha, state["length"])

    def _publish(self, run_id: str, sha: str, length: int) -> dict:
        """Stream the staging object back through the cache's commit (hash and size), copy it to
        its content key, delete it. A mismatch deletes it: the client starts over (422, retryable)."""
        key, content = self.staging_key(run_id, sha), self.content_key(sha)
        state_key = self._state_key(run_id, sha)
        if self.size(sha) is None:
            obj = self._call("read an upload back", self.client.get_object, absent=(404, "NoSuchKey"),
                             Bucket=self.bucket, Key=key)
            if obj is None:  # published and cleaned by another replica meanwhile
                size = self.size(sha)
                if size is None:
                    return {"offset": 0, "complete": False, "min_chunk": MIN_PART}
                return {"offset": size, "complete": True}
            try:
                self.cache.commit(_body_chunks(obj["Body"], self._boto_error), sha, length)
            except BlobIntegrityError as exc:
                self._delete(key, state_key)
                raise _integrity(exc, sha, "upload", self.cache.root, offset=0) from None
            except _BrokenRead:
                raise ApiError(503, "the blob store broke off reading an upload back; retry later",
                               retry_after=RETRY_UNAVAILABLE_S) from None
            if self.size(sha) is None:
                self._call("publish a blob", self.client.copy, CopySource={"Bucket": self.bucket, "Key": key},
                           Bucket=self.bucket, Key=content, ExtraArgs={"ContentType": "application/octet-stream"},
                           Config=self._copy_config)
        self._delete(key, state_key)
        return {"offset": length, "complete": True}

    # -- garbage -------------------------------------------------------------------------
    def collect_garbage(self, referenced, max_age_s: float, apply: bool = True, *,
                        now: float | None = None) -> list[Garbage]:
        """Content objects not in ``referenced``, and uploads (multipart, staging, state) older than
        ``max_age_s``; removed (aborted) when ``apply``. An upload with a part younger than that is live."""
        referenced = set(referenced)
        now = time.time() if now is None else now
        found, doomed, aborts, live = [], [], [], set()

        def age(when) -> float:
            return now - when.timestamp()

        for obj in self._list(self._key("blobs") + "/"):
            sha = obj["Key"].rsplit("/", 1)[-1]
            if is_sha256(sha) and sha not in referenced and age(obj["LastModified"]) > max_age_s:
                found.append(Garbage("blob", self._relative(obj["Key"]), int(obj["Size"]), age(obj["LastModified"])))
                doomed.append(obj["Key"])
        for upload in self._multipart_uploads(self._key("uploads") + "/"):
            parts = self._call("list an upload's parts", self.client.list_parts, absent=(404, "NoSuchUpload"),
                               Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]) or {}
            idle = min([age(upload["Initiated"])] + [age(p["LastModified"]) for p in parts.get("Parts", [])])
            if idle <= max_age_s:
                live.add(upload["Key"])
                continue
            found.append(Garbage("upload", f"{self._relative(upload['Key'])}#{upload['UploadId']}",
                                 sum(int(p["Size"]) for p in parts.get("Parts", [])), idle))
            aborts.append(upload)
        for obj in self._list(self._key("uploads") + "/"):
            if obj["Key"].removesuffix(".json") in live or age(obj["LastModified"]) <= max_age_s:
                continue
            found.append(Garbage("staging", self._relative(obj["Key"]), int(obj["Size"]), age(obj["LastModified"])))
            doomed.append(obj["Key"])
        if apply:
            for upload in aborts:
                self._call("abort an upload", self.client.abort_multipart_upload, absent=(404, "NoSuchUpload"),
                           Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"])
            for start in range(0, len(doomed), 1000):
                self._call("delete objects", self.client.delete_objects, Bucket=self.bucket,
                           Delete={"Objects": [{"Key": k} for k in doomed[start:start + 1000]], "Quiet": True})
            for garbage in found:
                if garbage.kind == "blob":
                    self.cache.discard(garbage.path.rsplit("/", 1)[-1])
            if found:
                log.info("collected %d blob store objects and uploads (%d bytes) in s3://%s/%s", len(found),
                         sum(g.size for g in found), self.bucket, self.prefix)
        return found

    def _multipart_uploads(self, prefix: str):
        key_marker = upload_marker = None
        while True:
            markers = {"KeyMarker": key_marker, "UploadIdMarker": upload_marker} if key_marker else {}
            page = self._call("list uploads", self.client.list_multipart_uploads, Bucket=self.bucket, Prefix=prefix,
                              **markers)
            yield from page.get("Uploads", [])
            if not page.get("IsTruncated"):
                return
            key_marker, upload_marker = page.get("NextKeyMarker"), page.get("NextUploadIdMarker")

    def health(self) -> dict:
        """``ok`` when the bucket answers (with the round trip in ms); the cache's figures."""
        answer = {"store": "s3", "ok": False, "bucket": self.bucket, "prefix": self.prefix,
                  "endpoint_url": self.endpoint_url, "cache": self.cache.stats()}
        started = time.perf_counter()
        try:
            self._call("reach the bucket", self.client.head_bucket, Bucket=self.bucket)
        except ApiError as exc:
            return {**answer, "error": exc.message}
        return {**answer, "ok": True, "latency_ms": round((time.perf_counter() - started) * 1000, 1)}


class _BrokenRead(Exception):
    """The store broke off a streamed read."""


def _body_chunks(body, boto_error, size: int = 8 << 20):
    try:
        yield from body.iter_chunks(size)
    except boto_error:
        raise _BrokenRead() from None
    finally:
        body.close()


# -- small file helpers ------------------------------------------------------------------------
def _real_subdirs(directory: Path):
    """Subdirectories of ``directory`` (not links), sorted; nothing when it is absent or a link."""
    if not os.path.isdir(directory) or os.path.islink(directory):
        return []
    return sorted(Path(e.path) for e in os.scandir(directory) if e.is_dir(follow_symlinks=False))


def _files(directory: Path) -> list:
    try:
        return sorted((e for e in os.scandir(directory) if e.is_file(follow_symlinks=False)), key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):
        return []


def _drop_upload(part: Path, length_file: Path) -> None:
    """A partial upload of a blob stored meanwhile (by another run or a whole body) is not needed."""
    unlink_quietly(part)
    unlink_quietly(length_file)
