"""Row blocks of a possibly memory-mapped array, without letting the mapping stay resident.

A stored blob opened with ``np.load(mmap_mode="r")`` costs nothing until it is read; once read,
every touched page counts in the process's resident memory until it is unmapped. Walking it in
row blocks and dropping each block's pages afterwards (``MADV_DONTNEED``: the file is only
read, so the pages come back from the page cache if touched again) keeps the reduction's
extra memory at one block, not one array.
"""

from __future__ import annotations

import mmap

import numpy as np

#: rows per block (4096 rows of 512 float32 features: 8 MiB)
BLOCK_ROWS = 4096


def is_mapped(X) -> bool:
    """Whether X is backed by a file mapping whose pages this module can release."""
    return isinstance(X, np.memmap) and getattr(X, "_mmap", None) is not None and hasattr(mmap, "MADV_DONTNEED")


def release(X) -> None:
    """Drop the resident pages of X's file mapping (no-op for an in-memory array)."""
    if is_mapped(X):
        X._mmap.madvise(mmap.MADV_DONTNEED)


def row_blocks(X, rows: int = BLOCK_ROWS):
    """Yield (start, X[start:start + rows]) in order, releasing each block's pages after use."""
    for start in range(0, len(X), rows):
        yield start, X[start:start + rows]
        release(X)


def take_rows(X, index: np.ndarray, rows: int = 256) -> np.ndarray:
    """``np.asarray(X[index])`` for sorted row indices, gathered a chunk at a time so a mapped X
    never holds more than one chunk's pages."""
    out = np.empty((len(index),) + X.shape[1:], dtype=X.dtype)
    for start in range(0, len(index), rows):
        out[start:start + rows] = X[index[start:start + rows]]
        release(X)
    return out
