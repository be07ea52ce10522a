"""The SQLite index of projects and runs: a cache of what the run directories say.

The journals stay the source of truth. Each row remembers the signature (sizes and mtimes of
``run.json`` and the journal segments) it was built from, so :meth:`Index.refresh` re-reads
only the runs that changed, including runs a live local process is still writing. Deleting
the file, or ``tracker-server --reindex``, rebuilds it from the journals.

A run that cannot be read or indexed (a corrupt journal, text SQLite cannot store) never
breaks the listing of the others: it is listed with status ``unreadable``, its reason is kept
in the ``problem`` column for ``/api/v1/health``, and it is logged once per change of its
files. The index is a cache: a write it cannot make (a full disk) is logged, never raised.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
from pathlib import Path

from tracker_sdk.errors import RunFormatError
from tracker_sdk.runformat import RUN_JSON, iter_run_dirs, open_run

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
    signature TEXT NOT NULL,
    problem TEXT
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


class Index:
    """Rows of ``runs`` keyed by run_id; safe to use from several threads."""

    def __init__(self, root: Path, *, path: Path | None = None):
        self.root = Path(root)
        self.path = Path(path) if path else self.root / INDEX_FILE
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.executescript(SCHEMA)
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(runs)")}
            if "problem" not in columns:  # an index written before the column existed
                self._db.execute("ALTER TABLE runs ADD COLUMN problem TEXT")
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
        for run_dir in iter_run_dirs(self.root):
            project, run_id = run_dir.parent.name, run_dir.name
            seen.add(run_id)
            signature = run_signature(run_dir)
            if signature is not None and known.get(run_id) != signature:
                self.update(project, run_id, run_dir, signature)
        gone = set(known) - seen
        if gone:
            try:
                with self._lock:
                    self._db.executemany("DELETE FROM runs WHERE run_id = ?", [(r,) for r in gone])
            except sqlite3.Error as exc:
                log.warning("the index could not forget %d removed runs: %s", len(gone), exc)

    def update(self, project: str, run_id: str, run_dir: Path, signature: str | None = None) -> None:
        """Re-read one run and store its row (the signature is taken before reading)."""
        signature = signature or run_signature(run_dir) or ""
        problem = None
        try:
            run = open_run(run_dir)
            row = (run_id, project, _text(run.name), _number(run.info.get("created")), run.status,
                   json.dumps(run.parameters, default=str), len(run.embeddings), signature, None)
        except (RunFormatError, OSError, ValueError, KeyError, TypeError) as exc:
            problem = f"{type(exc).__name__}: {exc}".replace(str(self.root) + os.sep, "")
        if problem is None:
            try:
                self._write(row)
                return
            except (UnicodeEncodeError, OverflowError) as exc:  # e.g. a lone surrogate in the run's name
                problem = f"cannot be indexed: {type(exc).__name__}: {exc}"
        log.warning("run %s is skipped by the listings, it is unreadable: %s", run_dir, problem)
        try:
            self._write((run_id, project, None, None, "unreadable", "{}", 0, signature, problem[:2000]))
        except UnicodeEncodeError:
            self._write((run_id, project, None, None, "unreadable", "{}", 0, signature,
                         problem.encode("utf-8", "backslashreplace").decode()[:2000]))

    def _write(self, row: tuple) -> None:
        try:
            with self._lock:
                self._db.execute("INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
        except sqlite3.Error as exc:  # the journals stay the truth; the next refresh tries again
            log.warning("the index could not store run %s: %s", row[0], exc)

    def problems(self) -> list[dict]:
        """Runs the listings show as unreadable, with the reason."""
        with self._lock:
            rows = self._db.execute("SELECT run_id, project, problem FROM runs WHERE status = 'unreadable' "
                                    "ORDER BY project, run_id").fetchall()
        return [{"run_id": r, "project": p, "problem": why or "unreadable"} for r, p, why in rows]

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
