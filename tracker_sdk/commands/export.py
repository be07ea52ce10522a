"""`tracker export tensorboard RUN_DIR OUT_DIR`: write a run's embeddings for another tool."""

from __future__ import annotations

from ._paths import one_run

HELP = "export a run's embeddings to another tool's format (tensorboard)"

FORMATS = ("tensorboard",)


def configure(parser) -> None:
    parser.add_argument("format", choices=FORMATS, help="target format")
    parser.add_argument("run_dir", help="run directory (<root>/<project>/<run_id>)")
    parser.add_argument("out_dir", help="output directory (created if missing)")
    parser.add_argument("--embedding", action="append", metavar="ID", help="embedding id or unique prefix (repeatable; default all)")


def run(args) -> int:
    from ..analysis import find_embedding
    from ..export import export_tensorboard
    from ..runformat import open_run
    run_dir = one_run(args.run_dir, f"export {args.format}", after=f" {args.out_dir}")
    ids = None
    if args.embedding:
        run_ = open_run(run_dir)
        ids = [find_embedding(run_, ref).id for ref in args.embedding]
    from .._progress import say

    say(f"tracker export: writing {len(ids) if ids else 'every'} embedding(s) of {run_dir} to {args.out_dir} ...")
    config = export_tensorboard(run_dir, args.out_dir, embeddings=ids)
    print(f"wrote {config}\nview it with: tensorboard --logdir {config.parent}  (Projector tab)")
    return 0
