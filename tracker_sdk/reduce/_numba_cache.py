"""numba's on-disk cache for other libraries' functions: the one place that touches numba internals.

umap-learn, pynndescent and pacmap declare most of their numba functions without
``cache=True``, so every fresh process compiled them again (10-60 s of a UMAP fit).
``cache_functions`` turns numba's disk cache on for those that are not compiled yet, which
lets a second process load them instead (measured in ``benchmarks/reduce.py --cold``).

It relies on numba internals: ``numba.core.dispatcher.Dispatcher`` with its ``_cache``
attribute, ``overloads`` and ``enable_caching()``, and ``numba.core.caching.NullCache``.
``tests/reduce/test_numba_cache.py`` checks each of them and fails loudly when a numba
release changes them; at run time a change only logs one warning and the functions
compile as before.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

log = logging.getLogger("tracker_sdk")

#: packages whose numba functions the SDK keeps in the on-disk cache
PACKAGES = ("umap", "pynndescent", "pacmap")

_warned = False


def cache_dir() -> Path:
    """Where numba keeps compiled UMAP/PaCMAP code between processes (a user cache dir)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tracker_sdk" / "numba"


def use_cache_dir() -> None:
    """Point numba at a writable user cache before it is first imported (a no-op after)."""
    if "NUMBA_CACHE_DIR" not in os.environ:
        path = cache_dir()
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError:
            return
        os.environ["NUMBA_CACHE_DIR"] = str(path)


def internals():
    """(Dispatcher, NullCache) from numba; raises AttributeError/ImportError when numba changed them."""
    from numba.core.caching import NullCache
    from numba.core.dispatcher import Dispatcher

    if not callable(getattr(Dispatcher, "enable_caching", None)):
        raise AttributeError("numba.core.dispatcher.Dispatcher has no enable_caching()")
    return Dispatcher, NullCache


def cache_functions(packages=PACKAGES) -> int:
    """Turn numba's disk cache on for the not-yet-compiled functions of ``packages``.

    Returns how many functions were switched on; safe to call any number of times.
    """
    global _warned
    if "numba" not in sys.modules:
        return 0
    try:
        Dispatcher, NullCache = internals()
    except (ImportError, AttributeError) as exc:
        if not _warned:
            _warned = True
            log.warning("tracker_sdk: numba's internals changed (%s); UMAP/PaCMAP compile again in every new "
                        "process", exc)
        return 0
    switched = 0
    for name, module in list(sys.modules.items()):
        if module is None or name.split(".", 1)[0] not in packages:
            continue
        for value in list(vars(module).values()):
            if (isinstance(value, Dispatcher) and isinstance(getattr(value, "_cache", None), NullCache)
                    and not value.overloads):
                try:
                    value.enable_caching()
                except Exception:  # no cache locator for this function's file: it compiles as before
                    continue
                switched += 1
    return switched
