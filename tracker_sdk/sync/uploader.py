"""Replays one local run directory to a tracking server, exactly once.

The journal is the queue: records are durable on disk before they are sent, so the uploader
only needs to know how far the server got. That comes from the server (``next_seq`` of
``PUT run`` and of every records POST); the local marker ``sync-state.json`` (keyed by
server URL) is written only after an acknowledgement, and only ever moves forward.

Order per batch: every blob a record names is made present on the server first (``HEAD``,
then ``PUT``, or a resumable chunked upload above ``chunk_threshold``), then the records are
posted. Each step is idempotent, so a lost acknowledgement, a retry, a killed process or a
second uploader running at the same time still leaves one copy on the server.
"""

from __future__ import annotations

import concurrent.futures
import fcntl
import logging
import os
import re
import threading
import time
from pathlib import Path

from ..errors import BlobIntegrityError, RunFormatError, ServerRejectedError, SyncError
from ..runformat import files, journal
from ..runformat.format import RUN_JSON
from .http import Client, pack_records

log = logging.getLogger("tracker_sdk.sync")

SYNC_STATE = "sync-state.json"
RUN_ID_RE = re.compile(r"^[0-9a-f]{32}$")
MIN_CHUNK = 256 << 10
MAX_BATCH_BYTES = 8 << 20  # packed records per POST, well under the server's cap on parsed bodies
BATCH_BLOB_BYTES = 32 << 20  # a batch ends once its records name this many bytes of new blobs
MARKER_INTERVAL = 1.0  # seconds between marker writes while acknowledgements stream in
_BLOB_KEYS = ("vectors", "metadata", "sprite", "coords")


def record_blob_refs(record: dict) -> list[str]:
    """The blob hashes one record names (the same fields ``Run.blob_refs`` reads)."""
    refs = []
    for key in _BLOB_KEYS:
        ref = record.get(key)
        if isinstance(ref, dict) and isinstance(ref.get("sha256"), str):
            refs.append(ref["sha256"])
    if record.get("kind") == "asset" and isinstance(record.get("sha256"), str):
        refs.append(record["sha256"])
    return refs


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

    def read_new(self, *, final: bool = False) -> list[dict]:
        segments = journal.list_segments(self.journal_dir)
        names = [s.name for s in segments]
        start = names.index(self.segment) if self.segment in names else 0
        if self.segment not in names:
            self.offset = 0
        out: list[dict] = []
        for i in range(start, len(segments)):
            seg, is_last = segments[i], i == len(segments) - 1
            if seg.name != self.segment:
                self.segment, self.offset = seg.name, 0
            with open(seg, "rb") as fh:
                fh.seek(self.offset)
                data = memoryview(fh.read())
            pos = 0
            while pos < len(data):
                record, end = journal._frame_at(data, pos)
                if record is None:
                    break
                out.append(record)
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
    """Sends one run directory to the server behind ``client``; call :meth:`sync_once` repeatedly.

    Parameters
    ----------
    client : Client
    run_dir : path
        ``<root>/<project>/<run_id>``.
    batch_records : int
        Records per POST.
    chunk_threshold, chunk_size : int
        Blobs larger than ``chunk_threshold`` bytes go up in resumable chunks of ``chunk_size``.
    parallel_blobs : int
        Blobs uploaded at the same time. The next batch's blobs go up while the current
        batch's records are checked and stored, so the server's work overlaps the transfer.
    progress : callable, optional
        Called with a byte count as blobs and records are sent (or found already present).
    """

    def __init__(self, client: Client, run_dir, *, batch_records: int = 1000, chunk_threshold: int = 64 << 20,
                 chunk_size: int = 16 << 20, parallel_blobs: int = 2, progress=None):
        self.client = client
        self.run_dir = Path(run_dir)
        info = self._read_info()
        self.run_id = info.get("run_id") or self.run_dir.name
        self.project = info.get("project") or self.run_dir.parent.name
        if not isinstance(self.run_id, str) or not RUN_ID_RE.match(self.run_id):
            raise RunFormatError(f"{self.run_dir / RUN_JSON} has run_id {self.run_id!r}; expected 32 lowercase hex")
        self.batch_records = batch_records
        self.chunk_threshold = chunk_threshold
        self.chunk_size = chunk_size
        self.progress = progress or (lambda n: None)
        self.parallel_blobs = max(1, int(parallel_blobs))
        self._counter_lock = threading.Lock()
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._inflight: dict[str, concurrent.futures.Future] = {}
        self.tail = JournalTail(self.run_dir / "journal")
        self.state = SyncState(self.run_dir, client.url)
        self.pending_records: list[dict] = []
        self.present: set[str] = set()
        self.server_next_seq: int | None = None
        self._sent_info: dict | None = None
        self._marker_written = (0, 0.0)  # (next_seq, monotonic time) of the last marker write
        self.records_sent = 0
        self.blobs_sent = 0
        self.bytes_sent = 0  # blob bytes the server accepted from this uploader

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
        """Send everything the journal holds now; return True when the server has all of it.

        ``final`` means no writer is appending any more (torn tails are then ignored).
        """
        info = self._read_info() if (final or self._sent_info is None) else self._sent_info
        if self.server_next_seq is None or info != self._sent_info:
            answer = self.client.put_run(self.project, self.run_id, info)
            self._sent_info = info
            self._acknowledge(int(answer.get("next_seq", 0)))
        self.pending_records.extend(r for r in self.tail.read_new(final=final) if r["seq"] >= self.server_next_seq)
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

    def _next_batch(self, start: int) -> list[dict]:
        """Pending records from ``start``: ``batch_records`` at most, fewer once their new blobs are large."""
        batch, blob_bytes = [], 0
        for record in self.pending_records[start: start + self.batch_records]:
            batch.append(record)
            for sha in self._new_refs([record]):
                try:
                    blob_bytes += files.blob_path(self.run_dir, sha).stat().st_size
                except OSError:
                    pass  # reported by ensure_blob when its turn comes
            if blob_bytes >= BATCH_BLOB_BYTES:
                break
        return batch

    def _new_refs(self, records: list[dict]) -> list[str]:
        return [s for s in dict.fromkeys(s for r in records for s in record_blob_refs(r)) if s not in self.present]

    def _blob_future(self, sha256: str) -> concurrent.futures.Future:
        """The upload of one blob, started once (a failed one is started again)."""
        future = self._inflight.get(sha256)
        if future is None or (future.done() and (future.cancelled() or future.exception() is not None)):
            future = self._inflight[sha256] = self._pool.submit(self.ensure_blob, sha256)
        return future

    def _acknowledge(self, next_seq: int) -> None:
        if self.server_next_seq is not None and next_seq < self.server_next_seq:
            # the server lost records it once acknowledged (restored from a backup?): resend from there
            log.warning("sync: server's next_seq for run %s went back from %d to %d; resending",
                        self.run_id, self.server_next_seq, next_seq)
            self.tail.reset()
            self.pending_records = [r for r in self.tail.read_new() if r["seq"] >= next_seq]
        self.server_next_seq = next_seq
        self.pending_records = [r for r in self.pending_records if r["seq"] >= next_seq]
        self._write_marker()

    def _write_marker(self, *, force: bool = False) -> None:
        """Move the local marker to the acknowledged next_seq (at most once a second unless forced)."""
        seq, when = self._marker_written
        if self.server_next_seq is None or self.server_next_seq <= seq:
            return
        if force or time.monotonic() - when >= MARKER_INTERVAL:
            self.state.advance(self.server_next_seq)
            self._marker_written = (self.server_next_seq, time.monotonic())

    def _send_batch(self, batch: list[dict]) -> None:
        """Make the batch's blobs present, then POST it; follow the server's 409 answers."""
        body = pack_records(batch)
        if len(body) > MAX_BATCH_BYTES and len(batch) > 1:
            self._send_batch(batch[: len(batch) // 2])  # the caller's loop sends the rest
            return
        refs = list(dict.fromkeys(s for r in batch for s in record_blob_refs(r)))
        for _ in range(5):
            for future in [self._blob_future(s) for s in refs if s not in self.present]:
                future.result()  # the first failure propagates
            response = self.client.post_records(self.run_id, body)
            data = response.json()
            if response.status == 200:
                before = self.server_next_seq
                self._acknowledge(int(data["next_seq"]))
                self.records_sent += max(0, self.server_next_seq - before)
                self.progress(len(body))
                if self.server_next_seq > batch[0]["seq"]:
                    return
                raise SyncError(f"server acknowledged next_seq {self.server_next_seq} after a batch "
                                f"starting at seq {batch[0]['seq']} of run {self.run_id}")
            if "missing_blobs" in data:
                missing = [str(sha) for sha in data["missing_blobs"]]
                self.present.difference_update(missing)
                for sha in missing:
                    self._inflight.pop(sha, None)
                refs += [sha for sha in missing if sha not in refs]
            elif "next_seq" in data:
                self._acknowledge(int(data["next_seq"]))
                if self.server_next_seq != batch[0]["seq"]:
                    return  # the batch is already there, or records before it are resent first
            else:
                raise SyncError(f"server answered 409 to records of run {self.run_id}: {response.error_message()}")
        raise SyncError(f"server kept refusing the records of run {self.run_id} from seq {batch[0]['seq']}")

    # -- blobs ---------------------------------------------------------------------------
    def _count(self, nbytes: int, blobs: int = 0) -> None:
        with self._counter_lock:
            self.bytes_sent += nbytes
            self.blobs_sent += blobs

    def ensure_blob(self, sha256: str) -> None:
        """Make one blob present on the server: HEAD, then PUT or a chunked upload."""
        if sha256 in self.present:
            return
        path = files.blob_path(self.run_dir, sha256)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise BlobIntegrityError(f"run {self.run_dir} references blob {sha256}, which is missing "
                                     f"from {path.parent}") from None
        if not self.client.has_blob(self.run_id, sha256):
            if size > self.chunk_threshold:
                self._upload_chunked(sha256, path, size)
            else:
                try:
                    self.client.put_blob(self.run_id, sha256, path, size)
                    self._count(size)
                except ServerRejectedError as exc:
                    if exc.status != 413:
                        raise
                    self._upload_chunked(sha256, path, size)  # the server's body cap is below our threshold
            self._count(0, blobs=1)
        self.present.add(sha256)
        self.progress(size)

    def _upload_chunked(self, sha256: str, path: Path, size: int) -> None:
        """PATCH chunks from the server's offset until it commits the blob (resumes after any failure)."""
        offset, complete = self.client.upload_offset(self.run_id, sha256)
        stalled = 0
        with open(path, "rb") as fh:
            while not complete:
                if stalled > 200:
                    raise SyncError(f"chunked upload of blob {sha256} of run {self.run_id} made no progress")
                if offset >= size:
                    # every byte is there but another request (a second uploader) is still verifying it
                    time.sleep(min(1.0, 0.02 * (stalled + 1)))
                    stalled += 1
                    offset, complete = self.client.upload_offset(self.run_id, sha256)
                    continue
                chunk = os.pread(fh.fileno(), min(self.chunk_size, size - offset), offset)
                try:
                    new_offset, complete, accepted = self.client.patch_upload(self.run_id, sha256, offset, size, chunk)
                except ServerRejectedError as exc:
                    if exc.status != 413 or self.chunk_size <= MIN_CHUNK:
                        raise
                    self.chunk_size = max(MIN_CHUNK, self.chunk_size // 2)
                    continue
                if accepted:
                    self._count(new_offset - offset)
                else:
                    time.sleep(0.02)  # another uploader is appending to this blob right now
                stalled = 0 if new_offset > offset else stalled + 1
                offset = new_offset

    # -- reporting -----------------------------------------------------------------------
    def local_record_count(self) -> int:
        """Highest local seq + 1 (what the server's next_seq must reach)."""
        last = -1
        for record in journal.read_journal(self.run_dir / "journal"):
            last = max(last, int(record["seq"]))
        return last + 1

    def pending(self) -> tuple[int, int, int]:
        """(records, blobs, blob bytes) not acknowledged by the server, from the local marker."""
        acked = max(self.state.acknowledged(), self.server_next_seq or 0)
        records = [r for r in journal.read_journal(self.run_dir / "journal") if r["seq"] >= acked]
        blobs = {s for r in records for s in record_blob_refs(r)} - self.present
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
        refs = {sha for record in journal.read_journal(run_dir / "journal") for sha in record_blob_refs(record)}
    except (RunFormatError, OSError):
        return 0
    for sha in refs:
        try:
            total += files.blob_path(run_dir, sha).stat().st_size
        except (OSError, BlobIntegrityError):
            pass
    return total
