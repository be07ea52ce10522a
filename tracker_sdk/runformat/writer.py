"""RunWriter: the one place that creates runs and appends records and blobs.

Every record is written to the journal with one ``write`` as soon as it is logged, so a
killed process loses nothing the kernel has seen; fsync is batched by a flusher thread (and
forced for embeddings and at close). A run has one writer at a time (``flock`` on
``journal/.lock``); reopening a run first trims a torn tail, and its first append starts a
new segment. A failed append (full disk, I/O error, short write) cuts the segment back to
its last whole frame before raising, so the run stays readable and appendable; a writer
that fails to open (a corrupt journal) releases its lock and files before raising.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from pathlib import Path

from ..errors import RunClosedError, RunLockedError, SeqGapError
from . import files, journal
from .format import FORMAT_VERSION, RUN_JSON
from .records import Record, stamp


class RunWriter:
    """Append-only writer of one run directory ``<root>/<project>/<run_id>``."""

    def __init__(self, run_dir: Path, info: dict | None = None, *, sync_interval: float = 1.0):
        self.run_dir = Path(run_dir)
        self.journal_dir = self.run_dir / "journal"
        self.journal_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "blobs").mkdir(exist_ok=True)
        self._lock_fd = os.open(self.journal_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise RunLockedError(f"run {self.run_dir} is being written by another process") from None
        self._mutex = threading.Lock()
        self._segment: journal.SegmentWriter | None = None  # created by the first append
        self._good_end = 0  # bytes of whole frames in the open segment
        self._closed = True  # until opened: close() then only releases the lock
        self._broken: str | None = None
        try:
            with files.full_disk_raises(self.journal_dir, "journal"):
                self.next_seq = self._recover()
                run_json = self.run_dir / RUN_JSON
                if info is not None and not run_json.exists():
                    files.atomic_write_json(run_json, {"format_version": FORMAT_VERSION, **info})
        except BaseException:
            self._release()  # a corrupt journal must not leave the run locked
            raise
        self._closed = False
        self._stop = threading.Event()
        self._flusher = threading.Thread(target=self._flush_loop, args=(sync_interval,), daemon=True,
                                         name="tracker-journal-fsync")
        self._flusher.start()

    def _recover(self) -> int:
        """Trim a torn tail of the last segment and return the next free seq."""
        segments = journal.list_segments(self.journal_dir)
        last_seq = -1
        for i, seg in enumerate(segments):
            records, valid_end = journal.read_segment(seg, is_last=i == len(segments) - 1)
            if records:
                last_seq = max(last_seq, max(r.seq for r in records))
            if i == len(segments) - 1 and valid_end < seg.stat().st_size:
                with open(seg, "r+b") as fh:
                    fh.truncate(valid_end)
                    os.fsync(fh.fileno())
        return last_seq + 1

    def append(self, record: Record, *, timestamp: float | None = None, durable: bool = False) -> Record:
        """Append one record struct, stamped with the next seq and ``timestamp`` (default: now).

        Returns the stamped record; ``durable`` fsyncs before returning.
        """
        t = time.time() if timestamp is None else timestamp
        with self._mutex:
            self._check_open()
            record = stamp(record, seq=self.next_seq, t=t)
            self._write_frame(journal.encode_frame(record), durable)
            self.next_seq += 1
            return record

    def replay(self, record: Record, *, durable: bool = False) -> bool:
        """Append a record copied from another replica with its own seq (the server's path).

        Returns False for a seq already present (a duplicate); a gap raises SeqGapError.
        """
        with self._mutex:
            self._check_open()
            seq = record.seq
            if seq < self.next_seq:
                return False
            if seq > self.next_seq:
                raise SeqGapError(f"record seq {seq} leaves a gap: the run expects seq {self.next_seq} next",
                                  self.next_seq)
            self._write_frame(journal.encode_frame(record), durable)
            self.next_seq += 1
            return True

    def _check_open(self) -> None:
        if self._broken is not None:
            raise RunClosedError(f"run {self.run_dir} stopped taking records: {self._broken}; "
                                 "reopen it (a new writer trims the partial record)")
        if self._closed:
            raise RunClosedError(f"run {self.run_dir} is closed")

    def _write_frame(self, frame: bytes, durable: bool) -> None:
        """Append one frame, or cut the segment back to its last whole frame and raise."""
        with files.full_disk_raises(self.journal_dir, "journal append"):
            if self._segment is None:
                self._segment = self._new_segment()
            try:
                self._segment.append(frame)
                if durable:
                    self._segment.sync()
            except BaseException as exc:
                self._cut_back(exc)
                raise
        self._good_end += len(frame)

    def _new_segment(self) -> journal.SegmentWriter:
        segments = journal.list_segments(self.journal_dir)
        index = int(segments[-1].name[:-4]) + 1 if segments else 0
        segment = journal.SegmentWriter(self.journal_dir / journal.segment_name(index))
        try:
            files.fsync_dir(self.journal_dir)
            self._good_end = os.fstat(segment.fd).st_size
        except BaseException:
            os.close(segment.fd)  # an empty segment file may stay: it reads as no records
            raise
        return segment

    def _cut_back(self, exc: BaseException) -> None:
        """Drop the partial frame of a failed append, so later frames follow a whole one."""
        try:
            os.ftruncate(self._segment.fd, self._good_end)
        except OSError as cut_exc:  # the partial frame stays: append nothing after it
            self._broken = f"a failed append ({exc}) could not be cut back ({cut_exc})"

    def write_blob(self, chunks) -> tuple[str, int]:
        return files.write_blob(self.run_dir, chunks)

    def update_info(self, **fields) -> dict:
        run_json = self.run_dir / RUN_JSON
        info = files.read_json(run_json) if run_json.exists() else {"format_version": FORMAT_VERSION}
        info.update(fields)
        files.atomic_write_json(run_json, info)
        return info

    def sync(self) -> None:
        with self._mutex:
            if not self._closed and self._segment is not None:
                self._segment.sync()

    def _flush_loop(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self.sync()
            except OSError:  # disk trouble must not kill the flusher; close() syncs again
                pass

    def close(self) -> None:
        """fsync and close the segment, then release the lock (released even when the fsync fails)."""
        with self._mutex:
            if self._lock_fd < 0:
                return
            self._closed = True
            try:
                if self._segment is not None:
                    self._segment.close()
            finally:
                self._release()
        self._stop.set()

    def _release(self) -> None:
        if self._segment is not None and self._segment.fd >= 0:
            os.close(self._segment.fd)
            self._segment.fd = -1
        if self._lock_fd >= 0:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = -1

    @property
    def closed(self) -> bool:
        return self._closed
