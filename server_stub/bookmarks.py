"""Named bookmarks of the viewer's state, one small JSON file per run.

A bookmark is a name and the embedding view's state as its URL query parameters (run,
embedding, reduction, step, colour, selection, filters, camera, ...; see
``viewer/static/urlstate.js``), so opening one is opening that URL. They live outside the
run directories, in ``<root>/.bookmarks/<run_id>.json``: the run format stays the SDK's,
and a run synced elsewhere does not carry one person's views. Names are checked, the state
is size-capped, and every write replaces the file atomically under one lock.
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

from tracker_sdk.runformat.files import atomic_write_json, read_json

from .errors import BadRequest, Conflict, NotFound, PayloadTooLarge
from .security import check_run_id, json_bytes

DIRNAME = ".bookmarks"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.\-]{0,63}$")
KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,15}$")
MAX_STATE_BYTES = 16 * 1024
MAX_PER_RUN = 100
MAX_KEYS = 64


def check_name(name) -> str:
    """A bookmark name: 1-64 letters, digits, spaces, ``_ . -``, starting with a letter or digit."""
    if not isinstance(name, str) or not NAME_RE.match(name) or name != name.strip():
        raise BadRequest(f"bookmark name must be 1-64 characters of letters, digits, spaces, '_', '.' or '-', "
                         f"starting with a letter or digit and not ending with a space; got {str(name)[:80]!r}")
    return name


def check_state(state) -> dict:
    """The view state: a map of query parameter names to string values, at most 16 KiB as JSON."""
    if not isinstance(state, dict) or not state:
        raise BadRequest(f"bookmark state must be a non-empty map of view parameters to strings; got "
                         f"{type(state).__name__}")
    if len(state) > MAX_KEYS:
        raise BadRequest(f"bookmark state has {len(state)} parameters; at most {MAX_KEYS}")
    for key, value in state.items():
        if not isinstance(key, str) or not KEY_RE.match(key):
            raise BadRequest(f"bookmark state key must be 1-16 lowercase letters, digits or '_'; got {str(key)[:40]!r}")
        if not isinstance(value, str):
            raise BadRequest(f"bookmark state value of {key!r} must be a string; got {type(value).__name__}")
    size = len(json_bytes(state))
    if size > MAX_STATE_BYTES:
        raise PayloadTooLarge(f"bookmark state is {size} bytes as JSON; the limit is {MAX_STATE_BYTES}")
    return state


class Bookmarks:
    """Bookmarks of every run under ``root``; ``store`` says whether a run exists."""

    def __init__(self, root: Path, store):
        self.dir = Path(root) / DIRNAME
        self.store = store
        self._lock = threading.Lock()

    def _path(self, run_id: str) -> Path:
        self.store.run_dir(check_run_id(run_id))  # 404 for a run this server does not have
        return self.dir / f"{run_id}.json"

    def _read(self, path: Path) -> dict:
        return read_json(path).get("bookmarks", {}) if path.is_file() else {}

    def list(self, run_id: str) -> list[dict]:
        """Every bookmark of the run, oldest first."""
        items = self._read(self._path(run_id))
        return sorted(({"name": k, **v} for k, v in items.items()), key=lambda b: (b.get("created", 0), b["name"]))

    def put(self, run_id: str, name: str, state) -> tuple[dict, bool]:
        """Create or replace; returns (the bookmark, whether it is new)."""
        check_name(name)
        check_state(state)
        path = self._path(run_id)
        with self._lock:
            items = self._read(path)
            created = name not in items
            if created and len(items) >= MAX_PER_RUN:
                raise Conflict(f"run {run_id} has {len(items)} bookmarks, the most one run keeps; delete one first")
            now = time.time()
            entry = {"state": state, "created": items.get(name, {}).get("created", now), "updated": now}
            items[name] = entry
            atomic_write_json(path, {"run_id": run_id, "bookmarks": items})
        return {"name": name, **entry}, created

    def delete(self, run_id: str, name: str) -> None:
        check_name(name)
        path = self._path(run_id)
        with self._lock:
            items = self._read(path)
            if name not in items:
                raise NotFound(f"run {run_id} has no bookmark {name!r}")
            del items[name]
            atomic_write_json(path, {"run_id": run_id, "bookmarks": items})
