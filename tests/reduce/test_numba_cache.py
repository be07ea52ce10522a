"""The numba workaround (tracker_sdk/reduce/_numba_cache.py) against the installed numba.

It relies on numba internals; these tests fail loudly when a numba release changes them,
instead of every second process silently compiling UMAP again.
"""

import os
import subprocess
import sys

import pytest

from tracker_sdk.reduce import _numba_cache

numba = pytest.importorskip("numba")

LIBRARY = """
import numba

@numba.njit  # no cache=True, like umap-learn's functions
def total(values):
    s = 0.0
    for v in values:
        s += v
    return s
"""

CALLER = """
import sys
import numpy as np
sys.path.insert(0, sys.argv[1])
import numba
import fakelib
from tracker_sdk.reduce import _numba_cache
switched = _numba_cache.cache_functions(packages=("fakelib",))
assert fakelib.total(np.arange(5.0)) == 10.0
print(switched, fakelib.total.stats.cache_hits and sum(fakelib.total.stats.cache_hits.values()))
"""


def test_the_numba_internals_it_uses_are_there():
    Dispatcher, NullCache = _numba_cache.internals()
    fresh = numba.njit(lambda x: x + 1)
    assert isinstance(fresh, Dispatcher), "numba.njit no longer returns numba.core.dispatcher.Dispatcher"
    assert isinstance(fresh._cache, NullCache), "an uncached dispatcher no longer has a NullCache in _cache"
    assert len(fresh.overloads) == 0, "Dispatcher.overloads is gone or not empty before the first call"


def test_a_second_process_loads_what_the_first_compiled(tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "fakelib.py").write_text(LIBRARY)
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    results = []
    for _ in range(2):
        out = subprocess.run([sys.executable, "-c", CALLER, str(tmp_path / "lib")], env=env, capture_output=True,
                             text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        results.append(out.stdout.split())
    assert results[0][0] == "1", "cache_functions switched nothing on: numba's dispatcher internals changed"
    assert list((tmp_path / "cache").rglob("*.nbi")), "numba wrote no cache index for the switched-on function"
    assert results[1] == ["1", "1"], f"the second process compiled again instead of loading the cache: {results}"


def test_a_changed_numba_is_a_warning_not_a_crash(monkeypatch, caplog):
    def changed():
        raise AttributeError("numba.core.dispatcher.Dispatcher has no enable_caching()")

    monkeypatch.setattr(_numba_cache, "internals", changed)
    monkeypatch.setattr(_numba_cache, "_warned", False)
    with caplog.at_level("WARNING", logger="tracker_sdk"):
        assert _numba_cache.cache_functions() == 0
    assert "numba's internals changed (numba.core.dispatcher.Dispatcher has no enable_caching())" in caplog.text
