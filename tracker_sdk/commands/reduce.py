"""`tracker reduce RUN_DIR [--group G | --title T | --embedding ID ...]`: projections for a run on disk.

``--group`` fits one reducer on the chosen step of the group and places every step with it
(a timeline); ``--title`` alone does the same for the ungrouped embeddings with that title;
``--embedding`` reduces the given embeddings, each fitted on itself (what ``end()`` prints
when it stopped before a reduction finished). With none of them, a run holding one
embedding reduces it, and a run holding several lists them with the command for each. Reduction records and
coordinate blobs are appended to the existing run; the raw vectors are untouched, so a
projection can be recomputed with another method at any time. The work goes through the
same executors as the Experiment's (``tracker_sdk.reduce.executor``): PCA in this process,
the other methods in the shared warm worker when it is free, else a private worker process.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from pathlib import Path

from ..errors import InvalidArgumentError, ReductionFailedError

log = logging.getLogger("tracker_sdk")

HELP = "compute projections of a run on disk: a timeline for a group, or single embeddings"


def configure(parser) -> None:
    parser.add_argument("run_dir", help="the run directory (<root>/<project>/<run_id>)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--group", default=None, help="the group whose steps share one projection (a timeline)")
    which.add_argument("--embedding", action="append", metavar="ID",
                       help="an embedding to reduce on its own (repeatable)")
    parser.add_argument("--title", default=None,
                        help="with --group: only embeddings with this title; alone: the ungrouped embeddings with it")
    parser.add_argument("--method", default="umap", help="pca, tsne, umap or pacmap (default: umap)")
    parser.add_argument("--fit-on", default="last",
                        help="with --group: 'last' (default), 'all', 'each' (every step its own fit) or a step number")
    parser.add_argument("--align", choices=("procrustes", "aligned_umap"), default=None,
                        help="with --fit-on each: align each step's fit onto the previous one")
    parser.add_argument("--id-column", default=None,
                        help="with --align: metadata column of sample ids to join consecutive steps on")
    parser.add_argument("--n-components", type=int, default=2, help="2 (default) or 3")
    parser.add_argument("--metric", default=None, help="euclidean or cosine")
    parser.add_argument("--random-state", type=int, default=None, help="seed for reproducible results")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="another reducer parameter (VALUE parsed as JSON when it can be), repeatable")


def _params(args) -> dict:
    params = {"n_components": args.n_components}
    if args.metric is not None:
        params["metric"] = args.metric
    if args.random_state is not None:
        params["random_state"] = args.random_state
    for item in args.param:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise InvalidArgumentError(f"--param must look like NAME=VALUE; got {item!r}")
        try:
            params[name] = json.loads(value)
        except json.JSONDecodeError:
            params[name] = value
    return params


def _executor(method: str):
    from ..reduce.executor import InlineExecutor, ProcessExecutor

    if method == "pca":
        return InlineExecutor()  # cheaper here than any process
    executor = ProcessExecutor(warm=[method])
    executor.start()
    return executor


def _run_jobs(run_dir: Path, jobs) -> list[dict]:
    """Run ``jobs`` on one executor and append their records; the run's writer lock is held throughout."""
    from ..runformat import RunWriter

    from .._progress import Progress

    writer = RunWriter(run_dir)  # takes the writer lock: refuses a run another process is writing
    executor = _executor(jobs[0].reducer.method)
    records = []
    progress = Progress(len(jobs), "tracker reduce", unit="job")
    try:
        for job in jobs:
            where = "a worker process" if executor.kind == "process" else "this process"
            progress.set_status(job.label)
            progress.step_done(f"tracker reduce: {job.label} in {where} ...")
            try:
                result = executor.submit(job).result()
            except ReductionFailedError as exc:
                raise ReductionFailedError(f"{job.label} failed: {exc}") from None
            if executor.kind == "process" and executor.uses_shared_worker:
                log.info("tracker_sdk: %s computed by the shared reduction worker (pid %d)", job.label,
                         executor.worker_pid)
            records += [writer.append(payload, durable=True) for payload in result.payloads]
            progress.update()
        return records
    finally:
        progress.close()
        executor.shutdown()
        writer.close()


def reduce_group_dir(run_dir, group, *, title=None, method="umap", fit_on="last", align=None, id_column=None,
                     **params) -> list[dict]:
    """Compute a timeline for ``group`` of a run on disk and append its records; returns them."""
    from ..reduce import get_reducer
    from ..reduce.tasks import TimelineJob
    from ..reduce.timeline import check_align, check_fit_on, choose_fit_items, timeline_items
    from ..runformat import open_run

    run_dir = Path(run_dir).absolute()
    fit_on = check_fit_on(fit_on)
    reducer = get_reducer(method, **params)
    items = timeline_items(open_run(run_dir), group, title, id_column)
    choose_fit_items(items, fit_on)
    align = check_align(align, fit_on, reducer, items)
    job = TimelineJob(run_dir=str(run_dir), items=items, reducer=reducer, fit_on=fit_on, timeline=uuid.uuid4().hex,
                      label=f"{reducer.method} timeline of " + (f"group {group!r}" if group is not None else
                                                                  f"the ungrouped embeddings titled {title!r}"),
                      group=group, title=title, align=align, id_column=id_column)
    return _run_jobs(run_dir, [job])


def reduce_embeddings_dir(run_dir, embedding_ids, *, method="umap", **params) -> list[dict]:
    """Reduce each of ``embedding_ids`` on its own (fitted on itself) and append the records; returns them."""
    from ..reduce import get_reducer
    from ..reduce.jobs import label_values
    from ..reduce.tasks import EmbeddingJob
    from ..runformat import open_run

    run_dir = Path(run_dir).absolute()
    run = open_run(run_dir)
    get_reducer(method, **params)  # bad parameters are reported before the writer lock is taken
    jobs = []
    for embedding_id in embedding_ids:
        try:
            emb = run.embedding(embedding_id)
        except KeyError:
            known = ", ".join(e.id for e in run.embeddings) or "none"
            raise InvalidArgumentError(f"--embedding {embedding_id!r} is not an embedding of run {run.run_id}; "
                                       f"its embeddings: {known}") from None
        label = f"{method} of {emb.title!r}" + (f" step {emb.step}" if emb.step is not None else "")
        jobs.append(EmbeddingJob(run_dir=str(run_dir), embedding_id=emb.id, step=emb.step,
                                 vectors_sha=emb.record.vectors.sha256,
                                 labels=label_values(emb.metadata["columns"]), reducer=get_reducer(method, **params),
                                 label=label))
    return _run_jobs(run_dir, jobs)


def _choose(args, run) -> tuple[str | None, list[str] | None]:
    """(group, embedding ids) to reduce when the command line named neither a group nor embeddings."""
    if args.title is not None:
        return None, None  # a timeline of the ungrouped embeddings titled --title
    if len(run.embeddings) == 1:
        return None, [run.embeddings[0].id]
    if not run.embeddings:
        raise InvalidArgumentError(f"run {run.run_id} has no embeddings to reduce")
    lines = []
    for group in dict.fromkeys(e.group for e in run.embeddings if e.group is not None):
        lines.append(f"    tracker reduce {run.path} --group {group!r}   (a timeline of group {group!r})")
    for title in dict.fromkeys(e.title for e in run.embeddings if e.group is None):
        lines.append(f"    tracker reduce {run.path} --title {title!r}   (ungrouped embeddings titled {title!r})")
    raise InvalidArgumentError(f"run {run.run_id} has {len(run.embeddings)} embeddings; say which to reduce:\n"
                               + "\n".join(lines) + "\n    or --embedding ID (see `tracker ls`)")


def run(args) -> int:
    from ..reduce.jobs import describe
    from ..runformat import open_run
    from ._paths import one_run

    run_dir = one_run(args.run_dir, "reduce")
    start = time.perf_counter()
    group, embedding_ids = args.group, args.embedding
    if group is None and embedding_ids is None:
        group, embedding_ids = _choose(args, open_run(run_dir))
    if embedding_ids is not None:
        if args.title is not None and args.embedding is not None:
            raise InvalidArgumentError("--title selects embeddings by title; do not combine it with --embedding")
        records = reduce_embeddings_dir(run_dir, embedding_ids, method=args.method, **_params(args))
    else:
        records = reduce_group_dir(run_dir, group, title=args.title, method=args.method, fit_on=args.fit_on,
                                   align=args.align, id_column=args.id_column, **_params(args))
    embeddings = open_run(run_dir).embeddings
    steps = {e.id: (e.title, e.step) for e in embeddings}
    titles = {e.id: e.title for e in embeddings}
    for record in records:
        title, step = steps.get(record.embedding_id, (None, None))
        moved = record.quality.get("stability")  # fit_on each: distance moved since the previous step
        print(describe(record, title, step, titles) + (f", stability {moved:.3f}" if moved is not None else ""))
    if embedding_ids is None:
        print(f"{len(records)} reductions in timeline {records[0].timeline} ({time.perf_counter() - start:.1f} s)")
    else:
        print(f"{len(records)} reductions ({time.perf_counter() - start:.1f} s)")
    return 0
