"""Replays one local run directory to any destination (:mod:`.protocol`), exactly once.

The journal is the queue: records are durable on disk before they are sent, so the uploader
only needs to know how far the destination got. That comes from the destination
(``next_seq`` of ``put_run`` and of every ``append_records``); the local marker
``sync-state.json`` (keyed by destination URL) is written only after an acknowledgement,
and only ever moves forward.

Order per batch: every blob a record names is made present first (``has_blob``, then
``put_blob``, which resumes a partial upload where the destination can), then the records
are appended. Each step is idempotent, so a lost acknowledgement, a retry, a killed process
or a second uploader running at the same time still leaves one copy.
"""

from __future__ import annotations

import concurrent.futures
import fcntl
import logging
import os
import threading
import time
from pathlib import Path

from ..errors import BlobIntegrityError, MissingBlobsError, RunFormatError, SyncError
from ..runformat import files, journal
from ..runformat.names import is_hex_id
from ..runformat.records import Record, blob_hashes, encode
from ..runformat.format import RUN_JSON

log = logging.getLogger("tracker_sdk.sync")

SYNC_STATE = "sync-state.json"
MAX_BATCH_BYTES = 8 << 20  # encoded records per batch, well under the server's cap on parsed bodies
BATCH_BLOB_BYTES = 32 << 20  # a batch ends once its records name this many bytes of new blobs
MARKER_INTERVAL = 1.0  # seconds between marker writes while acknowledgements stream in


class JournalTail:
    """Reads the records appended to a journal since the previous call, segment by segment.

    A live writer may be half-way through a frame: an invalid frame at the end of the last
    segment is left for the next call. With ``final=True`` (the writer is closed) the rules
    of :func:`~tracker_sdk.runformat.journal.read_segment` apply: a torn tail is ignored and
    corruption raises CorruptJournalError with file and offset.
    """

    def __init__(self, journal_dir: Path):
        self.journal_dir = Path(journal_dir)
        self.segment: str | None = None  # name of the segment being read
        self.offset = 0

    def reset(self) -> None:
        self.segment, self.offset = None, 0

    def read_new(self, *, final: bool = False) -> list[Record]:
        segments = journal.list_segments(self.journal_dir)
        names = [s.name for s in segments]
        start = names.index(self.segment) if self.segment in names else 0
        if self.segment not in names:
            self.offset = 0
        out: list[Record] = []
        for i in range(start, len(segments)):
            seg, is_last = segments[i], i == len(segments) - 1
            if seg.name != self.segment:
                self.segment, self.offset = seg.name, 0
            with open(seg, "rb") as fh:
                fh.seek(self.offset)
                data = memoryview(fh.read())
            pos = 0
            while pos < len(data):
                body, end = journal._frame_at(data, pos)
                if body is None:
                    break
                out.append(journal.decode_frame_body(seg, self.offset + pos, body))
                pos = end
            self.offset += pos
            if pos < len(data):
                if is_last and not final:
                    break  # a frame still being written; read it next time
                if not is_last or final:
                    journal.read_segment(seg, is_last=is_last)  # raises CorruptJournalError for real corruption
                    if not is_last:  # pragma: no cover - read_segment raises before this
                        raise RunFormatError(f"{seg}: unreadable frame at offset {self.offset}")
        return out


class SyncState:
    """``<run_dir>/sync-state.json``: per server URL, the ``next_seq`` it acknowledged.

    Updates take an ``flock`` and keep the maximum, so two uploaders of one run never move
    the marker backwards.
    """

    def __init__(self, run_dir: Path, url: str):
        self.path = Path(run_dir) / SYNC_STATE
        self.lock_path = Path(run_dir) / f".{SYNC_STATE}.lock"
        self.url = url.rstrip("/")

    def _read(self) -> dict:
        try:
            data = files.read_json(self.path)
        except (FileNotFoundError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def acknowledged(self) -> int:
        entry = self._read().get("servers", {}).get(self.url, {})
        return int(entry.get("next_seq", 0))

    def advance(self, next_seq: int) -> None:
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            data = self._read()
            servers = data.setdefault("servers", {})
            entry = servers.setdefault(self.url, {})
            if int(entry.get("next_seq", -1)) >= next_seq:
                return
            entry.update(next_seq=int(next_seq), updated=time.time())
            files.atomic_write_json(self.path, data)
        finally:
            os.close(fd)


class Uploader:
    """Sends one run directory to a destination (any :class:`~.protocol.Backend`); call :meth:`sync_once` repeatedly.

    Parameters
    ----------
    backend : Backend
        Where the run goes: the tracking server, another directory, an S3 bucket.
    run_dir : path
        ``<root>/<project>/<run_id>``.
    batch_records : int
        Records per batch (fewer when their new blobs are large or the batch is big).
    parallel_blobs : int
        Blobs uploaded at the same time. The next batch's blobs go up while the current
        batch's records are checked and stored, so the destination's work overlaps the transfer.
    progress : callable, optional
        Called with a byte count as blobs and records are sent (or found already present).
    """

    def __init__(self, backend, run_dir, *, batch_records: int = 1000, parallel_blobs: int = 2, progress=None):
        self.backend = backend
        self.run_dir = Path(run_dir)
        info = self._read_info()
        self.run_id = info.get("run_id") or self.run_dir.name
        self.project = info.get("project") or self.run_dir.parent.name
        if not is_hex_id(self.run_id):
            raise RunFormatError(f"{self.run_dir / RUN_JSON} has run_id {self.run_id!r}; expected 32 lowercase hex")
        self.batch_records = batch_records
        self.progress = progress or (lambda n: None)
        self.parallel_blobs = max(1, int(parallel_blobs))
        self._counter_lock = threading.Lock()
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._inflight: dict[str, concurrent.futures.Future] = {}
        self.tail = JournalTail(self.run_dir / "journal")
        self.state = SyncState(self.run_dir, backend.url)
        self.pending_records: list[Record] = []
        self._sizes: dict[int, int] = {}  # seq -> encoded bytes, for records not acknowledged yet
        self.present: set[str] = set()
        self.server_next_seq: int | None = None
        self._sent_info: dict | None = None
        self._marker_written = (0, 0.0)  # (next_seq, monotonic time) of the last marker write
        self.records_sent = 0
        self.blobs_sent = 0
        self.bytes_sent = 0  # blob bytes the destination accepted from this uploader

    def _read_info(self) -> dict:
        try:
            info = files.read_json(self.run_dir / RUN_JSON)
        except FileNotFoundError:
            raise RunFormatError(f"{self.run_dir} is not a run: {RUN_JSON} is missing") from None
        except ValueError as exc:
            raise RunFormatError(f"{self.run_dir / RUN_JSON} is not valid JSON: {exc}") from None
        if not isinstance(info, dict):
            raise RunFormatError(f"{self.run_dir / RUN_JSON} must hold a JSON object")
        return info

    # -- one pass ------------------------------------------------------------------------
    def sync_once(self, *, final: bool = False) -> bool:
        """Send everything the journal holds now; return True when the destination has all of it.

        ``final`` means no writer is appending any more (torn tails are then ignored).
        """
        info = self._read_info() if (final or self._sent_info is None) else self._sent_info
        if self.server_next_seq is None or info != self._sent_info:
            next_seq = self.backend.put_run(self.project, self.run_id, info)
            self._sent_info = info
            self._acknowledge(int(next_seq))
        self.pending_records.extend(r for r in self.tail.read_new(final=final) if r.seq >= self.server_next_seq)
        if not self.pending_records:
            self._write_marker(force=True)
            return True
        self._pool = concurrent.futures.ThreadPoolExecutor(self.parallel_blobs, thread_name_prefix="tracker-blob")
        try:
            while self.pending_records:
                batch = self._next_batch(0)
                # the next batch's blobs start uploading while this batch's records are checked and stored
                following = self._next_batch(len(batch))
                for sha in self._new_refs(following):
                    self._blob_future(sha)
                self._send_batch(batch)
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._inflight.clear()
            self._write_marker(force=True)
        return not self.pending_records

    def _next_batch(self, start: int) -> list[Record]:
        """Pending records from ``start``: ``batch_records`` at most, fewer once they or their new blobs are large."""
        batch, blob_bytes, record_bytes = [], 0, 0
        for record in self.pending_records[start: start + self.batch_records]:
            batch.append(record)
            record_bytes += self._size(record)
            for sha in self._new_refs([record]):
                try:
                    blob_bytes += files.blob_path(self.run_dir, sha).stat().st_size
                except OSError:
                    pass  # reported by ensure_blob when its turn comes
            if blob_bytes >= BATCH_BLOB_BYTES or record_bytes >= MAX_BATCH_BYTES:
                break
        return batch

    def _size(self, record: Record) -> int:
        """Encoded bytes of a pending record, measured once (batching looks at a record twice)."""
        size = self._sizes.get(record.seq)
        if size is None:
            size = self._sizes[record.seq] = len(encode(record))
        return size

    def _new_refs(self, records: list[Record]) -> list[str]:
        return [s for s in dict.fromkeys(s for r in records for s in blob_hashes(r)) if s not in self.present]

    def _blob_future(self, sha256: str) -> concurrent.futures.Future:
        """The upload of one blob, started once (a failed one is started again)."""
        future = self._inflight.get(sha256)
        if future is None or (future.done() and (future.cancelled() or future.exception() is not None)):
            future = self._inflight[sha256] = self._pool.submit(self.ensure_blob, sha256)
        return future

    def _acknowledge(self, next_seq: int) -> None:
        if self.server_next_seq is not None and next_seq < self.server_next_seq:
            # the destination lost records it once acknowledged (restored from a backup?): resend from there
            log.warning("sync: %s's next_seq for run %s went back from %d to %d; resending",
                        self.backend.url, self.run_id, self.server_next_seq, next_seq)
            self.tail.reset()
            self.pending_records = [r for r in self.tail.read_new() if r.seq >= next_seq]
        self.server_next_seq = next_seq
        self.pending_records = [r for r in self.pending_records if r.seq >= next_seq]
        self._sizes = {seq: size for seq, size in self._sizes.items() if seq >= next_seq}
        self._write_marker()

    def _write_marker(self, *, force: bool = False) -> None:
        """Move the local marker to the acknowledged next_seq (at most once a second unless forced)."""
        seq, when = self._marker_written
        if self.server_next_seq is None or self.server_next_seq <= seq:
            return
        if force or time.monotonic() - when >= MARKER_INTERVAL:
            self.state.advance(self.server_next_seq)
            self._marker_written = (self.server_next_seq, time.monotonic())

    def _send_batch(self, batch: list[Record]) -> None:
        """Make the batch's blobs present, then store its records; follow the destination's answers."""
        refs = list(dict.fromkeys(s for r in batch for s in blob_hashes(r)))
        for _ in range(5):
            for future in [self._blob_future(s) for s in refs if s not in self.present]:
                future.result()  # the first failure propagates
            before = self.server_next_seq
            try:
                next_seq = self.backend.append_records(self.run_id, batch)
            except MissingBlobsError as exc:  # the destination lost blobs it had (or another uploader's vanished)
                self.present.difference_update(exc.missing)
                for sha in exc.missing:
                    self._inflight.pop(sha, None)
                refs += [sha for sha in exc.missing if sha not in refs]
                continue
            if before <= next_seq <= batch[0].seq:
                raise SyncError(f"{self.backend.url} acknowledged next_seq {next_seq} after a batch of run "
                                f"{self.run_id} starting at seq {batch[0].seq}")
            self._acknowledge(int(next_seq))
            self.records_sent += max(0, self.server_next_seq - before)
            self.progress(sum(self._size(r) for r in batch))
            return  # stored, already there, or a gap: the pending list now starts where the destination ends
        raise SyncError(f"{self.backend.url} kept refusing the records of run {self.run_id} from seq {batch[0].seq}")

    # -- blobs ---------------------------------------------------------------------------
    def _count(self, nbytes: int, blobs: int = 0) -> None:
        with self._counter_lock:
            self.bytes_sent += nbytes
            self.blobs_sent += blobs

    def _sent(self, nbytes: int) -> None:
        self._count(nbytes)
        self.progress(nbytes)

    def ensure_blob(self, sha256: str) -> None:
        """Make one blob present at the destination (it resumes a partial upload where it can)."""
        if sha256 in self.present:
            return
        path = files.blob_path(self.run_dir, sha256)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise BlobIntegrityError(f"run {self.run_dir} references blob {sha256}, which is missing "
                                     f"from {path.parent}") from None
        if self.backend.has_blob(self.run_id, sha256):
            self.progress(size)
        else:
            files.verify_blob(self.run_dir, sha256)  # a blob damaged on this disk is never sent under its name
            self.backend.put_blob(self.run_id, sha256, path, size, self._sent)
            self._count(0, blobs=1)
        self.present.add(sha256)

    # -- reporting -----------------------------------------------------------------------
    def local_record_count(self) -> int:
        """Highest local seq + 1 (what the destination's next_seq must reach)."""
        last = -1
        for record in journal.read_journal(self.run_dir / "journal"):
            last = max(last, int(record.seq))
        return last + 1

    def pending(self) -> tuple[int, int, int]:
        """(records, blobs, blob bytes) not acknowledged by the destination, from the local marker."""
        acked = max(self.state.acknowledged(), self.server_next_seq or 0)
        records = [r for r in journal.read_journal(self.run_dir / "journal") if r.seq >= acked]
        blobs = {s for r in records for s in blob_hashes(r)} - self.present
        nbytes = 0
        for sha in blobs:
            try:
                nbytes += files.blob_path(self.run_dir, sha).stat().st_size
            except OSError:
                pass
        return len(records), len(blobs), nbytes


def total_bytes(run_dir) -> int:
    """Bytes a full upload of ``run_dir`` moves (journal plus referenced blobs), for a progress bar."""
    run_dir = Path(run_dir)
    try:
        segments = journal.list_segments(run_dir / "journal")
        total = sum(seg.stat().st_size for seg in segments)
        refs = {sha for record in journal.read_journal(run_dir / "journal") for sha in blob_hashes(record)}
    except (RunFormatError, OSError):
        return 0
    for sha in refs:
        try:
            total += files.blob_path(run_dir, sha).stat().st_size
        except (OSError, BlobIntegrityError):
            pass
    return total
