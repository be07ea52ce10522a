"""What a directory given on the command line is: a run, a project of runs, or a root of projects.

Commands that work on many runs (``ls``, ``upload``) accept any of the three; commands that
work on one run accept a run and, given a project or a root, list the runs found there so
the user can pick one. A path that does not exist is an error, never an empty listing.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import InvalidArgumentError
from ..runformat import runs_in

#: runs listed in the error of a command that needs one run
LISTED = 10


def _existing_dir(path, argument: str) -> Path:
    path = Path(path).expanduser()
    if not path.exists():
        raise InvalidArgumentError(f"{argument} {str(path)!r} does not exist")
    if not path.is_dir():
        raise InvalidArgumentError(f"{argument} {str(path)!r} is a file; expected a run, project or root directory")
    return path


def runs_under(path, argument: str = "directory") -> tuple[str, list[Path]]:
    """``(kind, run directories)`` where kind is ``"run"``, ``"project"`` or ``"root"``."""
    return runs_in(_existing_dir(path, argument))


def one_run(path, command: str, argument: str = "run_dir", *, after: str = "") -> Path:
    """The run directory ``path`` names; for a project or root, an error that lists its runs.

    The listing shows each run as the command to type: ``tracker {command} {run}{after}``.
    """
    kind, runs = runs_under(path, argument)
    if kind == "run":
        return runs[0]
    if not runs:
        raise InvalidArgumentError(f"{argument} {str(path)!r} is not a run and holds no runs; "
                                   "a run directory is <root>/<project>/<run_id> and contains run.json")
    listed = "\n".join(f"    tracker {command} {run}{after}" for run in runs[:LISTED])
    more = f"\n    ... and {len(runs) - LISTED} more (see `tracker ls {path}`)" if len(runs) > LISTED else ""
    raise InvalidArgumentError(f"{argument} {str(path)!r} is a {kind} directory with {len(runs)} run(s), "
                               f"not a run; name one of them:\n{listed}{more}")
