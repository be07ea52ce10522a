"""Background sync of a live run: what an Experiment holds when its url names a destination.

``BackgroundSync`` writes the run locally like an offline run and replays it to any
destination backend (:mod:`.protocol`: the tracking server, a directory, S3) from a daemon
thread (``SyncWorker``) that never raises into training; ``finish`` reports what is left
and the exact ``tracker upload`` command.
"""

from __future__ import annotations

import logging
import os
import shlex
import threading
from pathlib import Path

from ..errors import InvalidArgumentError, RunFormatError, ServerRejectedError, ServerUnavailableError, SyncError
from .retry import DEFAULT_POLICY, RetryPolicy
from .uploader import Uploader

log = logging.getLogger("tracker_sdk.sync")

DEFAULT_END_TIMEOUT = 30.0


def _human_bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # pragma: no cover


def upload_command(run_dir: Path, url: str, api_key: str | None) -> str:
    """The exact ``tracker upload`` command that sends a run (the key itself is never printed)."""
    command = f"tracker upload {shlex.quote(str(Path(run_dir).resolve()))} --url {shlex.quote(url)}"
    if api_key and api_key != os.environ.get("TRACKER_API_KEY"):
        command += " --api-key YOUR_API_KEY"
    return command


class BackgroundSync:
    """Writes runs under the local root and uploads each to ``destination`` from a daemon thread.

    Parameters
    ----------
    destination : Backend
        Where the run goes (from :func:`tracker_sdk.sync.open_backend`).
    root : path
        Local run root, written first.
    end_timeout : float, optional
        Seconds ``finish`` waits for the upload to catch up (``TRACKER_END_TIMEOUT``, else 30).
    poll_interval : float
        Seconds between passes over the journal while the run is live.
    retry : RetryPolicy
        Back-off between passes while the destination is unavailable.
    """

    def __init__(self, destination, root, *, end_timeout: float | None = None, poll_interval: float = 0.5,
                 retry: RetryPolicy = DEFAULT_POLICY, **uploader_options):
        self.destination = destination
        self.url = destination.url
        self.root = Path(root).expanduser()
        self.retry = retry
        if end_timeout is None:
            configured = os.environ.get("TRACKER_END_TIMEOUT") or DEFAULT_END_TIMEOUT
            try:
                end_timeout = float(configured)
            except ValueError:
                raise InvalidArgumentError(
                    f"TRACKER_END_TIMEOUT must be a number of seconds; got {configured!r}") from None
        self.end_timeout = end_timeout
        self.poll_interval = poll_interval
        self.uploader_options = uploader_options
        self.worker: SyncWorker | None = None

    def start(self, run_dir: Path) -> None:
        """Start the daemon thread that tails ``run_dir``'s journal and uploads it."""
        uploader = Uploader(self.destination, run_dir, **self.uploader_options)
        cancel = getattr(self.destination, "cancel", None) or threading.Event()
        self.worker = SyncWorker(uploader, cancel, retry=self.retry, poll_interval=self.poll_interval)
        self.worker.start()

    def finish(self, timeout: float | None = None) -> str | None:
        """Let the worker send the rest for at most ``timeout`` seconds; describe what is left, if anything."""
        if self.worker is None:
            return None
        timeout = self.end_timeout if timeout is None else float(timeout)
        worker = self.worker
        worker.close(timeout)
        if worker.done:
            return None
        uploader = worker.uploader
        try:
            records, blobs, nbytes = uploader.pending()
        except (RunFormatError, OSError) as exc:
            records, blobs, nbytes = "some", "some", 0
            log.debug("sync: could not count what is pending: %s", exc)
        reason = f"; last error: {worker.error}" if worker.error else ""
        what = f"{records} records and {blobs} blobs ({_human_bytes(nbytes)})"
        if worker.rejected is not None:
            head = f"{self.url} refused run {uploader.project}/{uploader.run_id}"
        else:
            head = f"run {uploader.project}/{uploader.run_id} is not fully on {self.url} after waiting {timeout:g}s"
        where = Path(uploader.run_dir).resolve()
        return (f"tracker_sdk: {head}: {what} still to send{reason}. They are safe in {where}; send them with:\n"
                f"    {upload_command(uploader.run_dir, self.url, getattr(self.destination, 'api_key', None))}")


class SyncWorker:
    """The daemon thread: tail, upload, wait, repeat; never raises, never blocks the caller."""

    def __init__(self, uploader, cancel: threading.Event, *, retry: RetryPolicy, poll_interval: float):
        self.uploader = uploader
        self.cancel = cancel
        self.retry = retry
        self.poll_interval = poll_interval
        self.closing = threading.Event()
        self.wake = threading.Event()
        self.done = False
        self.error: str | None = None
        self.rejected: SyncError | None = None
        self.thread = threading.Thread(target=self._loop, name=f"tracker-sync-{uploader.run_id[:8]}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _loop(self) -> None:
        try:
            self._passes()
        finally:
            self.uploader.backend.close()  # the connection belongs to this thread

    def _passes(self) -> None:
        failures = 0
        while not self.cancel.is_set():
            final = self.closing.is_set()  # set only after the writer closed: the journal is complete
            try:
                caught_up = self.uploader.sync_once(final=final)
            except ServerRejectedError as exc:
                self.rejected, self.error = exc, str(exc)
                log.error("tracker_sdk: sync stopped, %s; the run stays on disk", exc)
                return
            except RunFormatError as exc:
                self.rejected, self.error = exc, str(exc)
                log.error("tracker_sdk: sync stopped, the local run cannot be read: %s", exc)
                return
            except ServerUnavailableError as exc:
                failures += 1
                self.error = str(exc)
                if failures == 1:
                    log.warning("tracker_sdk: tracking server unavailable, will keep retrying: %s", exc)
            except Exception as exc:  # a bug must not kill sync silently nor touch training
                failures += 1
                self.error = f"{type(exc).__name__}: {exc}"
                log.log(logging.ERROR if failures == 1 else logging.DEBUG,
                        "tracker_sdk: unexpected error in the sync thread; retrying", exc_info=True)
            else:
                if failures:
                    log.info("tracker_sdk: tracking server reachable again")
                failures = 0
                self.error = None
                if final and caught_up:
                    self.done = True
                    return
            if failures:
                wait = self.retry.delay(min(failures, 30))
            else:
                wait = 0.05 if final else self.poll_interval  # final and not caught up: go again soon
            self.wake.wait(wait)
            self.wake.clear()

    def close(self, timeout: float) -> None:
        """Ask for a final pass and wait for it at most ``timeout`` seconds, then cancel."""
        self.closing.set()
        self.wake.set()
        self.thread.join(max(0.0, timeout))
        if self.thread.is_alive():
            self.cancel.set()
            self.wake.set()
            self.thread.join(0.5)
