"""`tracker ls [DIR]`: projects, runs and their embeddings as a readable table.

DIR may be a root of projects, one project or one run; a missing DIR is an error.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from ..errors import RunFormatError
from ..runformat import open_run
from ._paths import runs_under

HELP = "list projects, runs and their embeddings"


def configure(parser) -> None:
    parser.add_argument("root", nargs="?", default=None,
                        help="a root of projects, a project or a run (default: TRACKER_URL or ./tracker-runs)")


def _table(rows: list[list[str]], head: list[str]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([fmt.format(*head), fmt.format(*("-" * w for w in widths))] + [fmt.format(*map(str, r)) for r in rows])


def _short(text, width=28) -> str:
    text = "" if text is None else str(text).replace("\n", " ").replace("\t", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


def describe(root) -> str:
    root = Path(root)
    blocks = []
    _, run_dirs = runs_under(root, "DIR")
    for run_dir in run_dirs:
        try:
            run = open_run(run_dir)
        except RunFormatError as exc:
            blocks.append(f"{run_dir.parent.name}/{run_dir.name}  UNREADABLE: {exc}")
            continue
        created = run.info.get("created")
        when = dt.datetime.fromtimestamp(created).strftime("%Y-%m-%d %H:%M") if created else "?"
        head = (f"{run.project}/{run.run_id}  name={_short(run.name) or '-'}  {run.status}  created {when}  "
                f"{len(run.parameters)} params, {len(run.metrics)} metric points, {len(run.embeddings)} embeddings")
        rows = []
        for emb in run.embeddings:
            methods = ",".join(sorted({f"{r.method}{r.n_components}d" for r in emb.reductions})) or "-"
            rows.append([_short(emb.title), _short(emb.group) or "-", "-" if emb.step is None else emb.step,
                         f"{emb.n} x {emb.dim}", "yes" if emb.sprite else "no", methods])
        table = _table(rows, ["title", "group", "step", "n x d", "images", "reductions"]) if rows else "  (no embeddings)"
        blocks.append(head + "\n" + "\n".join("  " + line for line in table.splitlines()))
    return "\n\n".join(blocks) if blocks else f"no runs under {root}"


def run(args) -> int:
    from ..sync import default_local_root
    print(describe(args.root or default_local_root()))
    return 0
