"""Feedback while a person waits: a tqdm bar on a terminal, plain lines otherwise, nothing when quiet.

Every wait over a second in the SDK and the CLI goes through :class:`Progress` (or
:func:`track` for a loop), and every one-line summary through :func:`say`, so quiet mode is
one argument (``quiet=True``) or one environment variable (``TRACKER_QUIET=1``) everywhere.
Output goes to stderr, leaving stdout to the user's program.
"""

from __future__ import annotations

import os
import sys
import time

QUIET_ENV = "TRACKER_QUIET"
#: when not on a terminal, a running count is printed at most this often (seconds)
PLAIN_INTERVAL = 10.0


def is_quiet(quiet: bool | None = None) -> bool:
    """``quiet`` when given, else whether ``TRACKER_QUIET`` is set to something other than 0/false/no."""
    if quiet is not None:
        return bool(quiet)
    return os.environ.get(QUIET_ENV, "").strip().lower() not in ("", "0", "false", "no")


def on_terminal(stream=None) -> bool:
    stream = sys.stderr if stream is None else stream
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def say(line: str, *, quiet: bool | None = None, stream=None) -> None:
    """Print one line for a person (a summary, a hint), unless quiet."""
    if not is_quiet(quiet):
        print(line, file=sys.stderr if stream is None else stream, flush=True)


def _width(stream) -> int | None:
    """The terminal's width, or 80 where it reports none (a fresh pseudo-terminal says 0)."""
    try:
        columns = os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, ValueError, OSError):
        return None
    return columns or 80


class Progress:
    """A counter with a description: a tqdm bar on a terminal, else a plain line now and then.

    ``step_done(message)`` reports one finished piece of work (a job, an epoch): on a terminal
    it is written above the bar, otherwise it is printed as one plain line.
    """

    def __init__(self, total: int | None, desc: str, *, unit: str = "it", quiet: bool | None = None, stream=None,
                 scale_bytes: bool = False):
        self.total, self.desc, self.unit, self.scale_bytes = total, desc, unit, scale_bytes
        self.quiet = is_quiet(quiet)
        self.stream = sys.stderr if stream is None else stream
        self.n = 0
        self.started = self._last_line = time.monotonic()
        self._bar = None
        if not self.quiet and on_terminal(self.stream):
            from tqdm.auto import tqdm

            scale = {"unit_scale": True, "unit_divisor": 1024} if scale_bytes else {}
            self._bar = tqdm(total=total, desc=desc, unit=unit, file=self.stream, ncols=_width(self.stream), **scale)

    def update(self, n: int = 1, *, status: str | None = None) -> None:
        self.n += n
        if self._bar is not None:
            if status is not None:
                self._bar.set_postfix_str(status, refresh=False)
            self._bar.update(n)
        elif not self.quiet and time.monotonic() - self._last_line >= PLAIN_INTERVAL:
            self._plain(status)

    def set_status(self, status: str) -> None:
        """What is going on now (shown beside the bar; on a plain stream, in the next periodic line)."""
        if self._bar is not None:
            self._bar.set_postfix_str(status)
        elif not self.quiet and time.monotonic() - self._last_line >= PLAIN_INTERVAL:
            self._plain(status)

    def step_done(self, message: str) -> None:
        if self.quiet:
            return
        if self._bar is not None:
            self._bar.write(message, file=self.stream)
        else:
            print(message, file=self.stream, flush=True)
            self._last_line = time.monotonic()

    def _count(self, n) -> str:
        return f"{n / 2**20:.1f} MB" if self.scale_bytes else str(n)

    def _plain(self, status: str | None) -> None:
        of = f"/{self._count(self.total)}" if self.total is not None else ""
        unit = "" if self.scale_bytes else f" {self.unit}"
        extra = f" ({status})" if status else ""
        elapsed = time.monotonic() - self.started
        print(f"{self.desc}: {self._count(self.n)}{of}{unit} after {elapsed:.0f} s{extra}", file=self.stream,
              flush=True)
        self._last_line = time.monotonic()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> bool:
        self.close()
        return False


def track(iterable, *, total: int | None = None, desc: str, unit: str = "it", quiet: bool | None = None):
    """Iterate with progress; on a plain stream, a running count at most every 10 s and a final line."""
    if total is None:
        try:
            total = len(iterable)
        except TypeError:
            total = None
    with Progress(total, desc, unit=unit, quiet=quiet) as progress:
        for item in iterable:
            yield item
            progress.update()
        if progress._bar is None and not progress.quiet and time.monotonic() - progress.started >= 1.0:
            progress.step_done(f"{desc}: {progress.n} {unit} in {time.monotonic() - progress.started:.1f} s")
