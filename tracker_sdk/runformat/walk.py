"""The one run-directory walker: which directories under a root are runs.

A run is ``<root>/<project>/<run_id>/run.json`` where the project and run id are valid
names (:mod:`.names`). Symlinked project or run directories and symlinked ``run.json``
files are never followed, so a link placed in a shared root cannot make a reader (the
CLI, the server's index) read files from elsewhere.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

from . import names
from .format import RUN_JSON


def _real_subdirs(path: Path) -> list[os.DirEntry]:
    """The entries of ``path`` that are directories and not symlinks, sorted by name."""
    try:
        with os.scandir(path) as entries:
            return sorted((e for e in entries if e.is_dir(follow_symlinks=False)), key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):
        return []


def is_run_dir(path) -> bool:
    """True when ``path`` is a real directory holding a real (not symlinked) ``run.json``."""
    try:
        return (stat.S_ISDIR(os.lstat(path).st_mode)
                and stat.S_ISREG(os.lstat(os.path.join(path, RUN_JSON)).st_mode))
    except (FileNotFoundError, NotADirectoryError):
        return False


def iter_project_dirs(root) -> Iterator[Path]:
    """Every project directory under ``root`` (valid name, not a symlink), sorted."""
    for entry in _real_subdirs(Path(root)):
        if names.is_project(entry.name):
            yield Path(entry.path)


def iter_project_runs(project_dir) -> Iterator[Path]:
    """Every run directory directly in one project directory, sorted by run id."""
    for entry in _real_subdirs(Path(project_dir)):
        if names.is_hex_id(entry.name) and is_run_dir(entry.path):
            yield Path(entry.path)


def iter_run_dirs(root) -> Iterator[Path]:
    """Every run directory ``<root>/<project>/<run_id>`` under a root of projects, sorted."""
    for project_dir in iter_project_dirs(root):
        yield from iter_project_runs(project_dir)


def runs_in(path) -> tuple[str, list[Path]]:
    """``(kind, run directories)`` for what a user means by ``path``: ``"run"`` when it is a
    run, ``"project"`` when it holds runs directly, else ``"root"`` (a root of projects)."""
    path = Path(path)
    if is_run_dir(path):
        return "run", [path]
    project_runs = list(iter_project_runs(path))
    if project_runs:
        return "project", project_runs
    return "root", list(iter_run_dirs(path))
