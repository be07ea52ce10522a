"""Atomic file writes and THE blob commit: content-addressed files ``blobs/ab/<sha256>``.

:func:`commit_blob` is the only code that makes a blob visible, in the SDK and on the
server: the bytes go to a temporary file beside the blob (never a temp directory on another
path), every byte is written (short writes are continued), hashed on a second thread while
it is written and fsynced (sha256 at ~2 GB/s is the slowest step: it overlaps the I/O, or
starts even earlier with :class:`Prehashed`), checked for size and sha256, and only then
linked into place without replacing a good blob; the directory is fsynced last. On any
failure the temporary file is removed and the error raised; a full disk raises
:class:`~tracker_sdk.errors.StorageFullError`.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import stat
import tempfile
import threading
from pathlib import Path
from typing import NamedTuple

from ..errors import BlobIntegrityError, RunFormatError, StorageFullError
from . import names

CHUNK = 8 * 1024 * 1024
THREAD_HASH_BYTES = 1 << 20  # below this a chunk is hashed inline: a thread hand-off costs more
TMP_SUFFIX = ".part"  # temporary blobs are ``.<random>.part`` beside the blobs (garbage collection finds them)
_FULL = (errno.ENOSPC, errno.EDQUOT)


class CommittedBlob(NamedTuple):
    """What :func:`commit_blob` stored: the blob's name, its size, and whether it is new."""

    sha256: str
    size: int
    created: bool


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def full_disk_raises(directory, what: str = "write"):
    """Turn ENOSPC/EDQUOT inside the block into a StorageFullError naming ``directory``."""
    try:
        yield
    except StorageFullError:
        raise
    except OSError as exc:
        if exc.errno not in _FULL:
            raise
        try:
            free = shutil.disk_usage(directory).free
        except OSError:
            free = None
        raise StorageFullError(directory, free, what) from exc


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with full_disk_raises(path.parent, f"write of {path.name}"):
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            try:
                _write_all(fd, memoryview(data).cast("B"), os.write)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
        except BaseException:
            _unlink_quietly(tmp)
            raise
        fsync_dir(path.parent)


def atomic_write_json(path: Path, obj) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def _unlink_quietly(path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def blob_path(run_dir: Path, sha256: str) -> Path:
    if not names.is_sha256(sha256):
        raise BlobIntegrityError(f"blob name must be 64 lowercase hex digits; got {sha256!r}")
    return Path(run_dir) / "blobs" / sha256[:2] / sha256


def refuse_links(base, path) -> Path:
    """``path`` when no existing component of it below ``base`` is a symbolic link; else
    RunFormatError (a run's files are never read or written through a link)."""
    base, path = Path(base), Path(path)
    current = base
    for part in path.relative_to(base).parts:
        current = current / part
        try:
            mode = os.lstat(current).st_mode
        except (FileNotFoundError, NotADirectoryError):
            break
        if stat.S_ISLNK(mode):
            raise RunFormatError(f"{current} is a symbolic link, which is never followed")
    return path


def _real_dir(path: Path) -> Path:
    """Create ``path`` if needed and refuse it when it is a symlink (blob writes stay in the run)."""
    if not os.path.lexists(path):
        path.mkdir(parents=True, exist_ok=True)
    if not stat.S_ISDIR(os.lstat(path).st_mode):
        raise RunFormatError(f"{path} must be a directory of the run, not a symlink or a file")
    return path


def _write_all(fd: int, view: memoryview, write) -> None:
    """Write every byte of ``view``, continuing after short writes."""
    while view:
        written = write(fd, view)
        if written <= 0:
            raise OSError(errno.EIO, f"write made no progress with {len(view)} bytes left")
        view = view[written:]


def _source_chunks(source):
    """Chunks from an iterable of bytes-like objects or from an open binary file."""
    if hasattr(source, "read"):
        while True:
            chunk = source.read(CHUNK)
            if not chunk:
                return
            yield chunk
    else:
        yield from source


def _publish(tmp: str, final: Path, size: int) -> bool:
    """Link the verified ``tmp`` to ``final`` without replacing a good blob; True when it is new."""
    try:
        os.link(tmp, final)
        return True
    except FileExistsError:
        pass
    except OSError as exc:  # a filesystem without hard links: check, then rename
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK):
            raise
        if not os.path.lexists(final):
            os.replace(tmp, final)
            return True
    existing = os.lstat(final)
    if stat.S_ISREG(existing.st_mode) and existing.st_size == size:
        return False
    # a truncated or foreign file under this name was never verified: the verified bytes win
    os.replace(tmp, final)
    return True


def commit_blob(run_dir, source, *, sha256: str | None = None, size: int | None = None,
                write=os.write) -> CommittedBlob:
    """Store ``source`` as the blob ``blobs/ab/<sha256>`` of ``run_dir``.

    Parameters
    ----------
    run_dir : path
        The run directory (``<root>/<project>/<run_id>``).
    source : iterable of bytes-like, an open binary file, or a :class:`Prehashed`
        The content; chunks are written and hashed one by one, so a large array is never
        copied whole.
    sha256, size : optional
        What the caller expects (the server knows both from the request); a mismatch raises
        :class:`BlobIntegrityError` and stores nothing.
    write : callable
        ``write(fd, data) -> bytes written``; ``os.write`` (tests inject short or failing writes).

    Returns
    -------
    CommittedBlob
        ``(sha256, size, created)``; ``created`` is False when a good copy was already there.
    """
    if sha256 is not None:
        names.check_sha256(sha256)
    blobs = Path(run_dir) / "blobs"
    with full_disk_raises(blobs, "blob"):
        _real_dir(blobs)
        # the hash names the final directory: write beside it when it is known, else in blobs/
        tmp_dir = _real_dir(blobs / sha256[:2]) if sha256 is not None else blobs
        return _write_verified(run_dir, source, tmp_dir, sha256, size, write)


def _write_verified(run_dir, source, tmp_dir: Path, sha256, size, write) -> CommittedBlob:
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=tmp_dir, prefix=".", suffix=TMP_SUFFIX)
        try:
            if isinstance(source, Prehashed):
                written = 0
                for view in source.chunks:
                    written += _write_parts(fd, view, write)
                os.fsync(fd)
                actual = source.hexdigest()  # the hash ran while the bytes were written and synced
            else:
                actual, written = _write_hashing(fd, source, write)
            on_disk = os.fstat(fd).st_size
        finally:
            os.close(fd)
        if on_disk != written:
            raise BlobIntegrityError(f"blob {actual} holds {on_disk} bytes on disk but {written} were written")
        if size is not None and written != size:
            raise BlobIntegrityError(f"blob {sha256 or actual} is {written} bytes, not the {size} expected")
        if sha256 is not None and actual != sha256:
            raise BlobIntegrityError(f"the content hashes to {actual}, not to {sha256}")
        final = blob_path(run_dir, actual)
        _real_dir(final.parent)
        created = _publish(tmp, final, written)
        fsync_dir(final.parent)
        return CommittedBlob(actual, written, created)
    finally:
        if tmp is not None:
            _unlink_quietly(tmp)


def _write_parts(fd: int, view: memoryview, write) -> int:
    """Write ``view`` in CHUNK-sized parts (a bounded system call each); returns its length."""
    for start in range(0, len(view), CHUNK):
        _write_all(fd, view[start: start + CHUNK], write)
    return len(view)


def _write_hashing(fd: int, source, write) -> tuple[str, int]:
    """Write and fsync every chunk of ``source``; return (sha256, bytes written).

    A large chunk is hashed whole on a thread while it is written (hashlib and os.write both
    release the GIL), and the last one's hash also overlaps the fsync. Each chunk's hash is
    finished before the next chunk is hashed, so the digest sees the chunks in order.
    """
    digest, written, pending = hashlib.sha256(), 0, None
    for chunk in _source_chunks(source):
        view = memoryview(chunk).cast("B")
        if pending is not None:
            pending.result()
            pending = None
        if len(view) >= THREAD_HASH_BYTES:
            pending = _hasher().submit(digest.update, view)
        else:
            digest.update(view)
        written += _write_parts(fd, view, write)
    try:
        os.fsync(fd)
    finally:
        if pending is not None:
            pending.result()
    return digest.hexdigest(), written


class Prehashed:
    """Bytes-like chunks whose sha256 is being computed on a thread since this was made.

    ``log_embedding`` wraps its vectors in one before it checks its other arguments, so the
    hash (the slowest step of a commit) overlaps those checks, the write and the fsync;
    ``commit_blob`` then writes the same memory without hashing it again. The chunks must not
    change until the commit returns; ``cancel`` stops the hash when nothing will be committed.
    """

    def __init__(self, chunks):
        self.chunks = [memoryview(c).cast("B") for c in chunks]
        self.size = sum(map(len, self.chunks))
        self._cancelled = False
        if self.size >= THREAD_HASH_BYTES:
            self._future = _hasher().submit(self._hash)
        else:  # a thread hand-off costs more than hashing a small blob here
            self._digest = self._hash()
            self._future = None

    def _hash(self) -> str | None:
        digest = hashlib.sha256()
        for chunk in self.chunks:
            for start in range(0, len(chunk), CHUNK):
                if self._cancelled:
                    return None
                digest.update(chunk[start: start + CHUNK])
        return digest.hexdigest()

    def hexdigest(self) -> str:
        digest = self._future.result() if self._future is not None else self._digest
        if self._cancelled or digest is None:
            raise RuntimeError("this Prehashed source was cancelled")
        return digest

    def cancel(self) -> None:
        self._cancelled = True


def write_blob(run_dir: Path, chunks) -> tuple[str, int]:
    """Stream ``chunks`` (bytes-like) into a blob; return (sha256, size)."""
    blob = commit_blob(run_dir, chunks)
    return blob.sha256, blob.size


_HASHER = None
_HASHER_LOCK = threading.Lock()


def _hasher():
    global _HASHER
    with _HASHER_LOCK:
        if _HASHER is None:
            from concurrent.futures import ThreadPoolExecutor
            # one thread per core: the server commits several uploads at once
            _HASHER = ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1),
                                         thread_name_prefix="tracker-blob-hash")
        return _HASHER


def hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while True:
            chunk = fh.read(CHUNK)
            if not chunk:
                return digest.hexdigest()
            digest.update(chunk)


def verify_blob(run_dir: Path, sha256: str) -> Path:
    path = blob_path(run_dir, sha256)
    if not path.is_file():
        raise BlobIntegrityError(f"blob {sha256} is missing from {path.parent}")
    actual = hash_file(path)
    if actual != sha256:
        raise BlobIntegrityError(f"blob {path} hashes to {actual}, not to its name")
    return path


def read_json(path: Path):
    with open(path, "rb") as fh:
        return json.loads(fh.read())
