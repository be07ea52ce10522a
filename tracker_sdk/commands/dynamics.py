"""`tracker dynamics RUN --group G`: how a group's representation changed across steps (computed once, then read)."""

from __future__ import annotations

from ._paths import one_run

HELP = "measure how a group's embeddings changed across steps (CKA, k-NN overlap, class separation) and print it"


def configure(parser) -> None:
    parser.add_argument("run_dir", help="run directory (<root>/<project>/<run_id>)")
    parser.add_argument("--group", required=True, help="the group logged with log_embedding(..., group=, step=)")
    parser.add_argument("--title", default=None, help="only embeddings with this title (when the group holds several)")
    parser.add_argument("--k", type=int, default=10, help="neighbours per point (default 10)")
    parser.add_argument("--label-column", default="label",
                        help="metadata column of classes for separation (default: label, skipped when absent)")
    parser.add_argument("--id-column", default=None, help="metadata column of sample ids joining the steps")
    parser.add_argument("--metric", choices=("euclidean", "cosine"), default="euclidean")
    parser.add_argument("--recompute", action="store_true", help="compute again even when stored with these settings")
    parser.add_argument("--top", type=int, default=10, help="points listed per pair of steps (default 10)")


def run(args) -> int:
    from ..analysis.dynamics_store import analyze_dynamics, summary
    from ..runformat import open_run
    path = one_run(args.run_dir, "dynamics", after=f" --group {args.group}")
    run_ = open_run(path)
    label_column = args.label_column or None
    record = None if args.recompute else run_.dynamics(args.group, args.title)
    if record is not None and (record.k_neighbors != args.k or record.id_column != args.id_column
                               or (label_column not in (None, "label") and record.label_column != label_column)):
        record = None  # stored with other settings
    if record is None:
        analyze_dynamics(run_, args.group, title=args.title, k=args.k, label_column=label_column,
                         id_column=args.id_column, metric=args.metric)
        run_ = open_run(path)
        record = run_.dynamics(args.group, args.title)
    print(summary(run_, record, top=args.top))
    return 0
