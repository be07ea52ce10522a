"""The backend protocol: the few calls the generic uploader makes on any destination of runs.

A destination (the tracking server over HTTP, another directory, an S3 bucket) implements
these; :class:`~tracker_sdk.sync.uploader.Uploader`, the background sync thread and
``tracker upload`` only ever call them. Every call is idempotent, so a retry after a lost
answer, a killed process or a second uploader of the same run stores one copy.

- ``put_run(project, run_id, info) -> next_seq``: create the run or update its ``run.json``;
  answer how many records (from seq 0, without gaps) the destination already holds.
- ``has_blob(run_id, sha256)``: whether the blob is there (blobs are content-addressed, so a
  blob present for another run may count).
- ``put_blob(run_id, sha256, path, size, progress)``: store the file's bytes under their hash,
  resuming a partial upload where the destination can; the destination (or the backend,
  before it makes the blob visible) checks size and sha256.
- ``append_records(run_id, records) -> next_seq``: store records ``records[0].seq`` onwards;
  records the destination already holds are skipped; a batch that starts past the
  destination's ``next_seq`` stores nothing and the answer says where to resume. Raises
  :class:`~tracker_sdk.errors.MissingBlobsError` when a record names a blob that is absent.
- ``close()``: release connections.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Protocol, runtime_checkable

from ..runformat.records import Record


@runtime_checkable
class Backend(Protocol):
    """A destination of runs; ``url`` names it in messages and keys the local sync marker."""

    url: str

    def put_run(self, project: str, run_id: str, info: dict) -> int: ...

    def has_blob(self, run_id: str, sha256: str) -> bool: ...

    def put_blob(self, run_id: str, sha256: str, path: Path, size: int,
                 progress: Callable[[int], None] | None = None) -> None: ...

    def append_records(self, run_id: str, records: list[Record]) -> int: ...

    def close(self) -> None: ...
