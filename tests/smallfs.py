"""A real, small filesystem for disk-full tests: a tmpfs mounted by the test (root only).

Used as ``with small_filesystem(path, size) as mount: ...``; the test is skipped, with the
reason, where mounting is impossible (not root, or a container without CAP_SYS_ADMIN).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

import pytest


def fill(directory: Path) -> Path:
    """Write a filler file until the filesystem is full; returns it (delete it to free space)."""
    filler = Path(directory) / "filler"
    with open(filler, "wb", buffering=0) as fh:
        block = b"\0" * 65536
        while True:
            try:
                fh.write(block)
            except OSError:
                break
        for size in (4096, 512, 1):  # the last partial blocks too
            with contextlib.suppress(OSError):
                while True:
                    fh.write(b"\0" * size)
    return filler


@contextlib.contextmanager
def small_filesystem(path: Path, size: str = "2m"):
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (CI runs as root)")
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)
