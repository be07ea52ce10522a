"""`tracker reduce RUN_DIR --group G --method umap --fit-on last`: one projection for a group.

Fits one reducer on the chosen step of the group and places every step with it, appending
reduction records (and coordinate blobs) to an existing run; the raw vectors are untouched,
so a group can be recomputed with another method at any time.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from ..errors import InvalidArgumentError, ReductionFailedError

log = logging.getLogger("tracker_sdk")

HELP = "fit one reducer on a step of a group and project every step of it (a timeline)"


def configure(parser) -> None:
    parser.add_argument("run_dir", help="the run directory (<root>/<project>/<run_id>)")
    parser.add_argument("--group", required=True, help="the group whose steps share the projection")
    parser.add_argument("--title", default=None, help="only embeddings with this title")
    parser.add_argument("--method", default="umap", help="pca, tsne, umap or pacmap (default: umap)")
    parser.add_argument("--fit-on", default="last", help="'last' (default), 'all', or a step number")
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


def reduce_group_dir(run_dir, group, *, title=None, method="umap", fit_on="last", **params) -> list[dict]:
    """Compute a timeline for ``group`` of a run on disk and append its records; returns them."""
    from ..reduce import get_reducer
    from ..reduce.timeline import check_fit_on, choose_fit_items, reduce_timeline, timeline_items
    from ..runformat import RunWriter, files, load_npy, open_run

    run_dir = Path(run_dir)
    fit_on = check_fit_on(fit_on)
    reducer = get_reducer(method, **params)
    items = timeline_items(open_run(run_dir), group, title)
    choose_fit_items(items, fit_on)
    writer = RunWriter(run_dir)  # takes the writer lock: refuses a run another process is writing
    try:
        payloads = _in_shared_worker(run_dir, items, reducer, fit_on)
        if payloads is None:
            payloads = reduce_timeline(run_dir, items, lambda it: load_npy(files.blob_path(run_dir, it["vectors_sha"])),
                                       reducer, fit_on)
        return [writer.append("reduction", payload, durable=True) for payload in payloads]
    finally:
        writer.close()


def _in_shared_worker(run_dir: Path, items, reducer, fit_on) -> list[dict] | None:
    """The timeline's payloads from the shared warm worker (a second `tracker reduce` starts warm);
    None when PCA (cheaper here) or when no shared worker can serve, to compute them in this process."""
    from ..reduce.shared_worker import attach
    from ..reduce.worker import new_token

    if reducer.method == "pca":
        return None
    worker = attach(warm=[reducer.method])
    if worker is None:
        return None
    try:
        result = worker.call({"kind": "timeline", "run_dir": str(run_dir.absolute()), "items": items,
                              "reducer": reducer, "fit_on": fit_on, "timeline": new_token()})
    finally:
        worker.close()
    if not result.get("ok"):
        raise ReductionFailedError(f"{reducer.method} timeline failed: {result.get('error')}")
    log.info("tracker_sdk: %s timeline computed by the shared reduction worker (pid %d)", reducer.method, worker.pid)
    return result["payloads"]


def run(args) -> int:
    from ..reduce.jobs import describe
    from ..runformat import open_run

    start = time.perf_counter()
    records = reduce_group_dir(args.run_dir, args.group, title=args.title, method=args.method, fit_on=args.fit_on,
                               **_params(args))
    steps = {e.id: (e.title, e.step) for e in open_run(args.run_dir).embeddings}
    for record in records:
        title, step = steps.get(record["embedding_id"], (None, None))
        print(describe(record, title, step))
    print(f"{len(records)} reductions in timeline {records[0]['timeline']} ({time.perf_counter() - start:.1f} s)")
    return 0
