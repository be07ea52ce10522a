"""The SQLite index of projects and runs: a cache of what the run directories say.

The journals stay the source of truth. Each row remembers the signature (sizes and mtimes of
``run.json`` and the journal segments) it was built from, so :meth:`Index.refresh` re-reads
only the runs that changed, including runs a live local process is still writing. Deleting
the file, or ``tracker-server --reindex``, rebuilds it from the journals.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
from pathlib import Path

from tracker_sdk.errors import RunFormatError
from tracker_sdk.runformat import RUN_JSON, open_run

from .security import PROJECT_RE, RUN_ID_RE

log = logging.getLogger("server_stub.index")
INDEX_FILE = ".tracker-index.sqlite3"

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    project TEXT NOT NULL,
    name TEXT,
    created REAL,
    status TEXT,
    parameters TEXT,
    n_embeddings INTEGER,
    signature TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_project ON runs(project);
"""


def run_signature(run_dir: Path) -> str | None:
    """A cheap fingerprint of a run's files (stat only); None when the run is gone."""
    parts = []
    try:
        st = os.stat(run_dir / RUN_JSON)
        parts.append(f"r{st.st_size}:{st.st_mtime_ns}")
        with os.scandir(run_dir / "journal") as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                if entry.name.endswith(".seg"):
                    st = entry.stat()
                    parts.append(f"{entry.name}:{st.st_size}:{st.st_mtime_ns}")
    except FileNotFoundError:
        if not (run_dir / RUN_JSON).is_file():
            return None
    return "|".join(parts)


def scan_run_dirs(root: Path):
    """Yield (project, run_id, run_dir) for every well-named run directory under root."""
    try:
        projects = sorted(os.scandir(root), key=lambda e: e.name)
    except FileNotFoundError:
        return
    for project in projects:
        if not PROJECT_RE.match(project.name) or not project.is_dir(follow_symlinks=False):
            continue
        try:
            runs = sorted(os.scandir(project.path), key=lambda e: e.name)
        except (FileNotFoundError, NotADirectoryError):
            continue
        for run in runs:
            if RUN_ID_RE.match(run.name) and run.is_dir(follow_symlinks=False):
                run_dir = Path(run.path)
                if (run_dir / RUN_JSON).is_file():
                    yield project.name, run.name, run_dir


class Index:
    """Rows of ``runs`` keyed by run_id; safe to use from several threads."""

    def __init__(self, root: Path, *, path: Path | None = None):
        self.root = Path(root)
        self.path = Path(path) if path else self.root / INDEX_FILE
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.executescript(SCHEMA)
        except sqlite3.Error as exc:  # a read-only root still gets served, from an in-memory index
            log.warning("index %s is not writable (%s); keeping the index in memory", self.path, exc)
            self._db = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
            self._db.executescript(SCHEMA)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def rebuild(self) -> int:
        """Forget everything and re-read every run from its journal; returns the number of runs."""
        with self._lock:
            self._db.execute("DELETE FROM runs")
        self.refresh()
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM runs").fetchone()[0]

    def refresh(self) -> None:
        """Bring the rows in line with the directories, re-reading only changed runs."""
        with self._lock:
            known = dict(self._db.execute("SELECT run_id, signature FROM runs"))
        seen = set()
        for project, run_id, run_dir in scan_run_dirs(self.root):
            seen.add(run_id)
            signature = run_signature(run_dir)
            if signature is not None and known.get(run_id) != signature:
                self.update(project, run_id, run_dir, signature)
        gone = set(known) - seen
        if gone:
            with self._lock:
                self._db.executemany("DELETE FROM runs WHERE run_id = ?", [(r,) for r in gone])

    def update(self, project: str, run_id: str, run_dir: Path, signature: str | None = None) -> None:
        """Re-read one run and store its row (the signature is taken before reading)."""
        signature = signature or run_signature(run_dir) or ""
        try:
            run = open_run(run_dir)
            row = (run_id, project, _text(run.name), _number(run.info.get("created")), run.status,
                   json.dumps(run.parameters, default=str), len(run.embeddings), signature)
        except (RunFormatError, OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("run %s is unreadable: %s", run_dir, exc)
            row = (run_id, project, None, None, "unreadable", "{}", 0, signature)
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?)", row)

    def locate(self, run_id: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT project FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return row[0] if row else None

    def projects(self) -> list[dict]:
        with self._lock:
            rows = self._db.execute(
                "SELECT project, COUNT(*), MAX(created) FROM runs GROUP BY project ORDER BY project").fetchall()
        return [{"name": p, "n_runs": n, "last_created": c} for p, n, c in rows]

    def runs(self, project: str) -> list[dict]:
        with self._lock:
            rows = self._db.execute(
                "SELECT run_id, project, name, created, status, parameters, n_embeddings FROM runs "
                "WHERE project = ? ORDER BY created DESC, run_id", (project,)).fetchall()
        return [{"run_id": r, "project": p, "name": n, "created": c, "status": s,
                 "parameters": json.loads(params or "{}"), "n_embeddings": e}
                for r, p, n, c, s, params, e in rows]


def _text(value):
    return value if isinstance(value, str) else None


def _number(value):
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
