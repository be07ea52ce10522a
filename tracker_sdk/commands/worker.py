"""`tracker worker [--stop]`: the shared warm reduction workers of this user.

A worker stays up TRACKER_REDUCE_KEEP_WARM seconds (default 600) after its last client so
that the next script's UMAP/PaCMAP/t-SNE start warm; this lists them, or stops them now.
"""

from __future__ import annotations

import datetime as dt

HELP = "list the shared warm reduction workers, or stop them (--stop)"


def configure(parser) -> None:
    parser.add_argument("--stop", action="store_true",
                        help="ask every shared worker to exit (one running a job exits when it is done)")


def run(args) -> int:
    from ..reduce.shared_worker import list_workers, stop_workers, worker_dir

    workers = stop_workers() if args.stop else list_workers()
    if not workers:
        print(f"no shared reduction worker is running (sockets in {worker_dir()})")
        return 0
    for w in workers:
        started = dt.datetime.fromtimestamp(w["started"]).strftime("%Y-%m-%d %H:%M:%S")
        state = "busy" if w["busy"] else f"idle {w['idle_s']:.0f} s of {w['keep_warm_s']:g}"
        libraries = ", ".join(w["libraries"]) or "none yet"
        print(f"pid {w['pid']}  {'stopping' if args.stop else state}  started {started}  clients {w['clients_served']}  "
              f"libraries {libraries}  python {w['python']}  socket {w['socket']}")
    return 0
