"""`tracker analyze RUN_DIR`: neighbour-based scores stored as metadata columns of embeddings."""

from __future__ import annotations

from ..errors import InvalidArgumentError
from ._paths import one_run

HELP = "score embeddings (outliers, label disagreement, split shift) and store the scores as metadata columns"


def configure(parser) -> None:
    parser.add_argument("run_dir", help="run directory (<root>/<project>/<run_id>)")
    parser.add_argument("--k", type=int, default=10, help="neighbours per point (default 10)")
    parser.add_argument("--label-column", default="label",
                        help="metadata column for label disagreement (default: label, skipped when absent)")
    parser.add_argument("--split-column", default=None, help="metadata column to compare splits by, e.g. split")
    parser.add_argument("--metric", choices=("euclidean", "cosine"), default="euclidean")
    parser.add_argument("--outlier", choices=("knn", "lof"), default="knn",
                        help="outlier score: mean distance to the k neighbours, or local outlier factor")
    parser.add_argument("--method", choices=("auto", "exact", "approximate"), default="auto",
                        help="neighbour search (auto: exact up to about 100k x 1k, pynndescent beyond)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--embedding", action="append", metavar="ID", help="embedding id or unique prefix (repeatable)")
    which.add_argument("--all", action="store_true", help="every embedding of the run")


def run(args) -> int:
    from ..analysis import analyze
    from ..runformat import open_run
    run_ = open_run(one_run(args.run_dir, "analyze"))
    if args.embedding is None and not args.all and len(run_.embeddings) > 1:
        listing = "\n".join(f"  {e.id}  {e.title!r} group={e.group!r} step={e.step}" for e in run_.embeddings)
        raise InvalidArgumentError(f"the run has {len(run_.embeddings)} embeddings; pick with --embedding ID "
                                   f"or use --all:\n{listing}")
    results = analyze(run_, embedding=args.embedding, k=args.k, metric=args.metric,
                      label_column=args.label_column or None, split_column=args.split_column,
                      outlier=args.outlier, method=args.method)
    for result in results:
        emb = run_.embedding(result.embedding_id)
        print(f"{emb.id}  {emb.title!r} step={emb.step}  {emb.n}x{emb.dim}  {result.params['method']} "
              f"k={result.params['k']}  {result.seconds:.1f}s  columns: {', '.join(result.columns)}")
        if result.split is not None:
            for (a, b), value in result.split.pairs.items():
                print(f"  split {a} vs {b}: {value:.3f}  (0 = alike, 1 = no overlap)")
    return 0
