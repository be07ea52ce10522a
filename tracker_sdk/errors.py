"""The exception tree of tracker_sdk.

    TrackerError
    ├── InvalidArgumentError (also ValueError)   bad input, raised before anything is written
    ├── MissingDependencyError (also ImportError) an optional extra is not installed
    ├── RunFormatError                           the on-disk run cannot be read
    │   ├── CorruptJournalError                  a journal frame failed its check (file, offset)
    │   ├── InvalidRecordError                   a record does not match its kind's schema (field named)
    │   └── BlobIntegrityError                   a blob's content does not match its sha256
    ├── RunLockedError                           another process is writing the run
    ├── RunClosedError (also RuntimeError)       a record was appended after the writer closed
    ├── SeqGapError (also InvalidArgumentError)  a replayed record skips a seq the run expects
    ├── StorageFullError (also OSError)          no space left: names the directory and free bytes
    ├── NotFittedError (also AttributeError)     a reducer was used before fit
    └── SyncError                                a destination of runs refused or failed a request
        ├── ServerRejectedError                  a 4xx that retrying cannot fix (bad key, bad request)
        ├── ServerUnavailableError               unreachable, 5xx or 429 after every retry
        └── MissingBlobsError                    records name blobs the destination does not hold
"""

from __future__ import annotations


class TrackerError(Exception):
    """Base class of every error tracker_sdk raises on purpose."""


class InvalidArgumentError(TrackerError, ValueError):
    """An argument was wrong; the message names it, what was expected and what was got."""


class MissingDependencyError(TrackerError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""

    def __init__(self, package: str, extra: str, feature: str):
        super().__init__(
            f"{feature} needs the package {package!r}, which is not installed; "
            f"install it with: pip install 'tracker_sdk[{extra}]'"
        )
        self.package = package
        self.extra = extra


class ReductionFailedError(TrackerError):
    """A reduction failed (in the worker process); the message carries the reducer's error."""


class RunFormatError(TrackerError):
    """The run directory on disk is missing pieces or is not in a format we can read."""


class InvalidRecordError(RunFormatError):
    """A record does not match the schema of its kind; the message names the field."""


class CorruptJournalError(RunFormatError):
    """A journal frame in the middle of a segment failed its length or CRC check."""

    def __init__(self, path, offset: int, reason: str):
        super().__init__(f"corrupt journal record in {path} at byte offset {offset}: {reason}")
        self.path = str(path)
        self.offset = offset


class BlobIntegrityError(RunFormatError):
    """A blob is missing or its bytes do not hash to its name."""


class RunLockedError(TrackerError):
    """Another live process holds the run's writer lock."""


class RunClosedError(TrackerError, RuntimeError):
    """A record was appended to a run whose writer is already closed."""


class SeqGapError(InvalidArgumentError):
    """A record copied from another replica skips seqs; ``next_seq`` is the one the run expects."""

    def __init__(self, message: str, next_seq: int):
        super().__init__(message)
        self.next_seq = next_seq

    def __reduce__(self):  # picklable across the reduction worker's process boundary
        return type(self), (str(self), self.next_seq)


class StorageFullError(TrackerError, OSError):
    """The disk under ``directory`` is full; nothing half-written was left behind.

    ``free_bytes`` is the space left when the write failed (None when it could not be read).
    """

    def __init__(self, directory, free_bytes: int | None, what: str = "write"):
        import errno

        free = "unknown" if free_bytes is None else f"{free_bytes} bytes"
        super().__init__(errno.ENOSPC, f"no space left on the device of {directory} for a {what} "
                                       f"({free} free); free some space and retry")
        self.directory = str(directory)
        self.free_bytes = free_bytes
        self.what = what

    def __reduce__(self):  # OSError's own reduce would pass (errno, strerror) to __init__
        return type(self), (self.directory, self.free_bytes, self.what)


class NotFittedError(TrackerError, AttributeError):
    """A reducer's transform was called before fit."""


class SyncError(TrackerError):
    """The tracking server refused a request or could not be reached."""


class ServerRejectedError(SyncError):
    """The server answered a 4xx that no retry can fix; ``status`` and the server's message."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


class ServerUnavailableError(SyncError):
    """The server could not be reached, or kept failing, through every retry of the policy."""


class MissingBlobsError(SyncError):
    """Records were refused because the destination lacks blobs they name (``missing``: sha256s)."""

    def __init__(self, message: str, missing: list[str]):
        super().__init__(message)
        self.missing = list(missing)
