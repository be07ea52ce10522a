"""Small file steps of a resumable upload kept in a local file (``.part`` plus its ``.length``),
shared by the run-directory store and the directory blob store. No path is followed through a link."""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path


def unlink_quietly(path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def regular_size(path: Path) -> int:
    """Size of a regular file, 0 when absent (a link or anything else counts as absent)."""
    try:
        st = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return 0
    return st.st_size if stat.S_ISREG(st.st_mode) else 0


def known_length(length_file: Path) -> int | None:
    """The Upload-Length an upload began with, or None (absent or unreadable: a new upload)."""
    try:
        fd = os.open(length_file, os.O_RDONLY | os.O_NOFOLLOW)
    except (FileNotFoundError, NotADirectoryError):
        return None
    with os.fdopen(fd, "rb") as fh:
        text = fh.read(32).decode("ascii", "replace").strip()
    return int(text) if text.isascii() and text.isdigit() else None


def write_new(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    try:
        write_all(fd, memoryview(data))
    except BaseException:
        os.close(fd)
        unlink_quietly(path)
        raise
    os.close(fd)


def write_all(fd: int, view: memoryview) -> None:
    """Write every byte, continuing after short writes."""
    view = view.cast("B")
    while view:
        view = view[os.write(fd, view):]


def cut_back(fh, offset: int) -> None:
    """Drop what a failed chunk appended past ``offset``, then close."""
    try:
        os.ftruncate(fh.fileno(), offset)
    finally:
        fh.close()
