"""Atomic file writes and content-addressed blobs (``blobs/ab/<sha256>``).

A blob is written to a temporary name in its final directory, fsynced and renamed, so a
reader sees either the whole blob or nothing. Existing blobs are never rewritten.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from pathlib import Path

from ..errors import BlobIntegrityError

SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
CHUNK = 8 * 1024 * 1024


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
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
    if not SHA256_RE.match(sha256 or ""):
        raise BlobIntegrityError(f"blob name must be 64 lowercase hex digits; got {sha256!r}")
    return Path(run_dir) / "blobs" / sha256[:2] / sha256


def write_blob(run_dir: Path, chunks) -> tuple[str, int]:
    """Stream ``chunks`` (bytes-like) into a blob; return (sha256, size).

    Hashing and writing happen chunk by chunk, so a large array is never copied whole.
    """
    tmp_dir = Path(run_dir) / "blobs" / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=tmp_dir, suffix=".part")
    digest = hashlib.sha256()
    size = 0
    try:
        with os.fdopen(fd, "wb", buffering=0) as fh:
            # hashlib releases the GIL: hash each chunk on a thread while it is being written
            pending = None
            for chunk in chunks:
                view = memoryview(chunk).cast("B")
                for start in range(0, len(view), CHUNK):
                    part = view[start : start + CHUNK]
                    if pending is not None:
                        pending.result()
                    pending = _hasher().submit(digest.update, part)
                    fh.write(part)
                    size += len(part)
            if pending is not None:
                pending.result()
            os.fsync(fh.fileno())
        sha = digest.hexdigest()
        final = blob_path(run_dir, sha)
        if final.exists():
            _unlink_quietly(tmp)
        else:
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, final)
            fsync_dir(final.parent)
        return sha, size
    except BaseException:
        _unlink_quietly(tmp)
        raise


_HASHER = None


def _hasher():
    global _HASHER
    if _HASHER is None:
        from concurrent.futures import ThreadPoolExecutor
        _HASHER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tracker-blob-hash")
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
