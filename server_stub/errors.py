"""The server's error tree and the one mapping from an exception to a JSON error answer.

Handlers and the store raise; nothing returns an error object. ``answer_for`` is the only
place that turns an exception into a status and a body (``Guard`` in ``app.py`` calls it)::

    ApiError(status, message, **extra)    an answer the client can act on; extra keys join the body
    ├── BadRequest          400           malformed ids, bodies, records, query parameters
    ├── NotFound            404           no such project, run, embedding, reduction or blob
    ├── Conflict            409           seq gaps, missing blobs, a run written by another process
    ├── Forbidden           403           a symbolic link under the root (never followed)
    ├── PayloadTooLarge     413           a body or upload above the server's limits
    ├── Unprocessable       422           stored data the server cannot read (with file and offset)
    │   └── IntegrityMismatch 422         a whole blob does not hash to its name (retryable: true)
    ├── ChecksumMismatch    460           one chunk failed its Upload-Checksum (re-send that chunk)
    └── InsufficientStorage 507           the server's disk is full (retry_after, and a Retry-After header)

The package's own errors that reach a handler are mapped too: ``RunFormatError`` (and its
``CorruptJournalError``, which carries file and offset) answers 422, ``RunLockedError`` and
``RunClosedError`` 409, ``SeqGapError`` 409 with ``next_seq``, ``StorageFullError`` 507,
``InvalidArgumentError`` 400. Paths in messages are made relative to the server's root. ``headers_for`` gives the
headers an answer carries (``Retry-After`` for every answer with ``retry_after``).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from tracker_sdk.errors import (
    CorruptJournalError,
    InvalidArgumentError,
    RunClosedError,
    RunFormatError,
    RunLockedError,
    SeqGapError,
    StorageFullError,
)

RETRY_FULL_DISK_S = 60


class ApiError(Exception):
    """A 4xx answer: ``{"error": message, **extra}`` with ``status``."""

    def __init__(self, status: int, message: str, **extra):
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


class _FixedStatus(ApiError):
    """An :class:`ApiError` whose class gives the status: ``NotFound("no run ...")``."""

    STATUS = 400

    def __init__(self, message: str, **extra):
        super().__init__(self.STATUS, message, **extra)


class BadRequest(_FixedStatus):
    STATUS = 400


class NotFound(_FixedStatus):
    STATUS = 404


class Conflict(_FixedStatus):
    STATUS = 409


class Forbidden(_FixedStatus):
    STATUS = 403


class PayloadTooLarge(_FixedStatus):
    STATUS = 413


class Unprocessable(_FixedStatus):
    STATUS = 422


class IntegrityMismatch(Unprocessable):
    """Bytes that do not hash to the blob's name: corrupted in transit, so the client sends them again."""

    def __init__(self, message: str, **extra):
        super().__init__(message, retryable=True, **extra)


class ChecksumMismatch(_FixedStatus):
    """tus's 460: one chunk's ``Upload-Checksum`` failed; nothing of it was kept."""

    STATUS = 460


class InsufficientStorage(_FixedStatus):
    STATUS = 507

    def __init__(self, message: str, **extra):
        super().__init__(message, **{"retry_after": RETRY_FULL_DISK_S, **extra})


def full_disk(exc: StorageFullError) -> InsufficientStorage:
    """The 507 for a full disk (never a server path in the message)."""
    free = "unknown" if exc.free_bytes is None else f"{exc.free_bytes} bytes"
    return InsufficientStorage(f"the server's disk is full ({free} free); retry later")


def headers_for(body: dict) -> dict | None:
    """HTTP headers of an error answer: ``Retry-After`` mirrors a ``retry_after`` field."""
    if "retry_after" in body:
        return {"Retry-After": str(int(body["retry_after"]))}
    return None


def relative(text: str, root: Path | None) -> str:
    """``text`` without the server's absolute root (no server paths leave in errors)."""
    if root is None:
        return text
    return text.replace(str(root) + os.sep, "").replace(str(root), ".")


def unreadable_run(exc: RunFormatError, root: Path | None, run_id: str | None = None) -> Unprocessable:
    """The 422 for a run whose files cannot be read; a corrupt journal frame names file and offset."""
    prefix = f"run {run_id} cannot be read: " if run_id else "the run cannot be read: "
    extra = {}
    if isinstance(exc, CorruptJournalError):
        extra = {"file": relative(exc.path, root), "offset": exc.offset}
    return Unprocessable(prefix + relative(str(exc), root), **extra)


def answer_for(exc: BaseException, root: Path | None = None) -> tuple[int, dict] | None:
    """(status, JSON body) for an error a client should see, or None for a server fault (500)."""
    if isinstance(exc, RunFormatError):
        exc = unreadable_run(exc, root)
    elif isinstance(exc, RunLockedError):
        exc = Conflict("the run is being written by another process; retry once it has finished")
    elif isinstance(exc, RunClosedError):
        exc = Conflict("the run's writer closed while this request waited; retry")
    elif isinstance(exc, SeqGapError):
        exc = Conflict(relative(str(exc), root), next_seq=exc.next_seq)
    elif isinstance(exc, StorageFullError):
        exc = full_disk(exc)
    elif isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):  # a write not wrapped yet
        exc = full_disk(StorageFullError(exc.filename or "the store", None))
    elif isinstance(exc, InvalidArgumentError):
        exc = BadRequest(relative(str(exc), root))
    elif _index_unreachable(exc):
        exc = ApiError(503, "the index database cannot be reached; retry shortly", retry_after=5)
    if isinstance(exc, ApiError):
        return exc.status, {"error": exc.message, **exc.extra}
    return None


def _index_unreachable(exc: BaseException) -> bool:
    """A lost database connection (SQLAlchemy's OperationalError, or one marked as a disconnect) is
    the index being away, not a fault of this request; told by name so this module needs no SQLAlchemy."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    return "OperationalError" in names or bool(getattr(exc, "connection_invalidated", False))


class ClientGone(Exception):
    """The client disconnected while its body was being read (nothing to answer)."""
