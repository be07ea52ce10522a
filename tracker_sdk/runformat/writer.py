"""RunWriter: the one place that creates runs and appends records and blobs.

Every record is written to the journal with one ``write`` as soon as it is logged, so a
killed process loses nothing the kernel has seen; fsync is batched by a flusher thread (and
forced for embeddings and at close). A run has one writer at a time (``flock`` on
``journal/.lock``); reopening a run first trims a torn tail and then starts a new segment.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from pathlib import Path

from ..errors import RunLockedError
from . import files, journal
from .format import FORMAT_VERSION, RUN_JSON


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
        self.next_seq = self._recover()
        segments = journal.list_segments(self.journal_dir)
        index = int(segments[-1].name[:-4]) + 1 if segments else 0
        self._segment = journal.SegmentWriter(self.journal_dir / journal.segment_name(index))
        files.fsync_dir(self.journal_dir)
        run_json = self.run_dir / RUN_JSON
        if info is not None and not run_json.exists():
            files.atomic_write_json(run_json, {"format_version": FORMAT_VERSION, **info})
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
                last_seq = max(last_seq, max(int(r["seq"]) for r in records))
            if i == len(segments) - 1 and valid_end < seg.stat().st_size:
                with open(seg, "r+b") as fh:
                    fh.truncate(valid_end)
                    os.fsync(fh.fileno())
        return last_seq + 1

    def append(self, kind: str, payload: dict, *, timestamp: float | None = None, durable: bool = False) -> dict:
        """Append one record; ``durable`` fsyncs before returning."""
        with self._mutex:
            if self._closed:
                raise RuntimeError(f"run {self.run_dir} is closed")
            record = {"seq": self.next_seq, "t": time.time() if timestamp is None else timestamp,
                      "kind": kind, **payload}
            self._segment.append(journal.encode_frame(record))
            self.next_seq += 1
            if durable:
                self._segment.sync()
            return record

    def replay(self, record: dict, *, durable: bool = False) -> bool:
        """Append a record copied from another replica with its own seq (the server's path).

        Returns False for a seq already present (a duplicate); a gap raises ValueError.
        """
        with self._mutex:
            if self._closed:
                raise RuntimeError(f"run {self.run_dir} is closed")
            seq = int(record["seq"])
            if seq < self.next_seq:
                return False
            if seq > self.next_seq:
                raise ValueError(f"record seq {seq} leaves a gap: the run expects seq {self.next_seq} next")
            self._segment.append(journal.encode_frame(record))
            self.next_seq += 1
            if durable:
                self._segment.sync()
            return True

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
            if not self._closed:
                self._segment.sync()

    def _flush_loop(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self.sync()
            except OSError:  # disk trouble must not kill the flusher; close() syncs again
                pass

    def close(self) -> None:
        with self._mutex:
            if self._closed:
                return
            self._closed = True
            self._segment.close()
        self._stop.set()
        fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        os.close(self._lock_fd)

    @property
    def closed(self) -> bool:
        return self._closed
