"""`tracker compare RUN_A RUN_B --title T`: do two runs see the same inputs alike (neighbourhoods, CKA, classes)?"""

from __future__ import annotations

import numpy as np

from ..errors import InvalidArgumentError
from ._paths import one_run

HELP = "compare two runs' embeddings of the same inputs: per-point k-NN agreement, linear CKA, classes that differ"


def configure(parser) -> None:
    parser.add_argument("run_a", help="run directory of the first run")
    parser.add_argument("run_b", help="run directory of the second run")
    parser.add_argument("--title", required=True, help="embedding title to compare (logged in both runs)")
    parser.add_argument("--step", type=int, default=None, help="step to compare (default: the last step of each run)")
    parser.add_argument("--id-column", default=None, help="metadata column of sample ids joining the runs")
    parser.add_argument("--label-column", default="label",
                        help="metadata column of classes to rank (default: label, skipped when absent)")
    parser.add_argument("--k", type=int, default=10, help="neighbours per point (default 10)")
    parser.add_argument("--metric", choices=("euclidean", "cosine"), default="euclidean")
    parser.add_argument("--top", type=int, default=5, help="classes listed (default 5)")


def pick_embedding(run, title: str, step: int | None, argument: str):
    """The embedding titled ``title`` at ``step`` (default: its last step) of ``run``."""
    found = [e for e in run.embeddings if e.title == title]
    if not found:
        titles = sorted({e.title for e in run.embeddings})
        raise InvalidArgumentError(f"{argument} {run.path} has no embedding titled {title!r}; its titles are {titles}")
    if step is not None:
        at = [e for e in found if e.step == step]
        if not at:
            raise InvalidArgumentError(f"{argument} {run.path} has {title!r} at steps "
                                       f"{sorted({e.step for e in found}, key=lambda s: -1 if s is None else s)}, "
                                       f"not at step {step}")
        return at[-1]
    return max(enumerate(found), key=lambda item: (-1 if item[1].step is None else item[1].step, item[0]))[1]


def _column(emb, name: str, argument: str):
    columns = emb.columns
    if name not in columns:
        raise InvalidArgumentError(f"{argument} {name!r} is not a metadata column of embedding {emb.id}; "
                                   f"its columns are {list(columns)}")
    return columns[name]


def run(args) -> int:
    from ..analysis.dynamics import compare
    from ..runformat import open_run
    run_a = open_run(one_run(args.run_a, "compare", "run_a", after=f" RUN_B --title {args.title}"))
    run_b = open_run(one_run(args.run_b, "compare", "run_b", after=f" --title {args.title}"))
    emb_a = pick_embedding(run_a, args.title, args.step, "run_a")
    emb_b = pick_embedding(run_b, args.title, args.step, "run_b")
    ids_a = ids_b = None
    if args.id_column is not None:
        ids_a, ids_b = _column(emb_a, args.id_column, "--id-column"), _column(emb_b, args.id_column, "--id-column")
    labels = None
    if args.label_column:
        if args.label_column in emb_a.columns:
            labels = emb_a.columns[args.label_column]
        elif args.label_column != "label":
            _column(emb_a, args.label_column, "--label-column")
    result = compare(np.asarray(emb_a.vectors), np.asarray(emb_b.vectors), args.k, labels, ids_a=ids_a, ids_b=ids_b,
                     metric=args.metric)
    agreement = result.agreement
    print(f"compared {args.title!r}: step {emb_a.step} of {run_a.run_id} with step {emb_b.step} of {run_b.run_id}, "
          f"{agreement.size} shared points, k={args.k}")
    print(f"k-NN agreement: mean {agreement.mean():.3f}, median {np.median(agreement):.3f}, "
          f"{(agreement == 1).mean():.1%} of points with the same neighbours")
    print(f"linear CKA: {result.cka:.3f}")
    if result.clusters:
        print(f"classes whose neighbourhoods differ most ({args.label_column!r}, mean agreement, points):")
        for label, mean, count in result.clusters[:args.top]:
            print(f"  {str(label):>10}  {mean:.3f}  {count}")
    return 0
