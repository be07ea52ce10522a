"""ActivationBuffer: bounded storage for the rows collected from one layer.

Rows go into one preallocated float32 array (sized from the data set's length when it is
known, doubling otherwise); once that array would pass the memory bound, everything moves to
an anonymous temporary file and later rows are appended there, so collecting over a large data
set never holds a growing list of tensors and never needs more RAM than the bound.
"""

from __future__ import annotations

import tempfile

import numpy as np

from ..errors import InvalidArgumentError

DEFAULT_MAX_MEMORY_BYTES = 1 << 30
_MIN_ROWS = 256


class ActivationBuffer:
    """Append-only (n_samples, n_features) float32 storage with a RAM bound.

    Parameters
    ----------
    name : str
        The layer, for error messages.
    capacity : int, optional
        Expected number of rows (e.g. ``len(loader.dataset)``), preallocated at once.
    max_memory_bytes : int
        RAM the buffer may hold; past it the rows spill to a temporary file in ``spill_dir``.
    """

    def __init__(self, name: str, capacity: int | None = None, max_memory_bytes: int = DEFAULT_MAX_MEMORY_BYTES,
                 spill_dir=None):
        self.name = name
        self.capacity = capacity
        self.max_memory_bytes = int(max_memory_bytes)
        self.spill_dir = spill_dir
        self.n = 0
        self.dim: int | None = None
        self._data: np.ndarray | None = None
        self._file = None

    @property
    def spilled(self) -> bool:
        """True once the rows live in the temporary file rather than in RAM."""
        return self._file is not None

    @property
    def nbytes_in_memory(self) -> int:
        return 0 if self._data is None else self._data.nbytes

    def _fits(self, rows: int) -> bool:
        return rows * self.dim * 4 <= self.max_memory_bytes

    def append(self, rows: np.ndarray) -> None:
        rows = np.ascontiguousarray(rows, dtype=np.float32)
        if rows.ndim != 2:
            raise InvalidArgumentError(f"layer {self.name!r}: expected rows of shape (batch, n_features); got {rows.shape}")
        if self.dim is None:
            self.dim = rows.shape[1]
            wanted = max(self.capacity or 0, rows.shape[0], _MIN_ROWS if self.capacity is None else 0)
            if self._fits(wanted):
                self._data = np.empty((wanted, self.dim), dtype=np.float32)
            else:
                self._spill()
        elif rows.shape[1] != self.dim:
            raise InvalidArgumentError(
                f"layer {self.name!r} gave {rows.shape[1]} values per sample in this batch but {self.dim} before; "
                f"its output size depends on the input, so {_fixed_size_hint()}")
        if self._file is None and self.n + len(rows) > len(self._data):
            grown = max(2 * len(self._data), self.n + len(rows))
            if self._fits(grown):
                data = np.empty((grown, self.dim), dtype=np.float32)
                data[:self.n] = self._data[:self.n]
                self._data = data
            elif self._fits(self.n + len(rows)):
                data = np.empty((self.n + len(rows), self.dim), dtype=np.float32)
                data[:self.n] = self._data[:self.n]
                self._data = data
            else:
                self._spill()
        if self._file is not None:
            self._file.write(rows.tobytes())
        else:
            self._data[self.n:self.n + len(rows)] = rows
        self.n += len(rows)

    def _spill(self) -> None:
        self._file = tempfile.TemporaryFile(prefix="tracker-activations-", dir=self.spill_dir)
        if self._data is not None and self.n:
            self._file.write(self._data[:self.n].tobytes())
        self._data = None

    def array(self) -> np.ndarray:
        """The rows so far: a view of the RAM array, or a read-only memory map of the spill file."""
        if self.dim is None:
            return np.empty((0, 0), dtype=np.float32)
        if self._file is None:
            return self._data[:self.n]
        self._file.flush()
        if self.n == 0:
            return np.empty((0, self.dim), dtype=np.float32)
        return np.memmap(self._file, dtype=np.float32, mode="r", shape=(self.n, self.dim))

    def close(self) -> None:
        """Drop the rows (arrays returned earlier stay valid)."""
        if self._file is not None:
            self._file.close()
        self._file = None
        self._data = None


def _fixed_size_hint() -> str:
    from .reshape import FIXED_SIZE_HINT
    return FIXED_SIZE_HINT
