"""`tracker worker [status|stop]`: the shared warm reduction workers of this user.

A worker stays up TRACKER_REDUCE_KEEP_WARM seconds (default 60) after its last client so
that the next script's UMAP/PaCMAP/t-SNE start warm; ``status`` (the default) lists them,
``stop`` stops them now (one running a job exits when the job is done).
"""

from __future__ import annotations

import datetime as dt

HELP = "list the shared warm reduction workers (status, the default) or stop them (stop)"


def configure(parser) -> None:
    parser.add_argument("action", nargs="?", choices=("status", "stop"), default="status",
                        help="status (default): list them; stop: ask every one to exit")
    parser.add_argument("--stop", action="store_true", help="the same as `tracker worker stop`")


def run(args) -> int:
    from ..reduce.shared_worker import KEEP_WARM_ENV, keep_warm_seconds, list_workers, stop_workers, worker_dir

    stop = args.stop or args.action == "stop"
    workers = stop_workers() if stop else list_workers()
    if not workers:
        print(f"no shared reduction worker is running (sockets in {worker_dir()}; {KEEP_WARM_ENV}="
              f"{keep_warm_seconds():g} s{', off' if keep_warm_seconds() == 0 else ''})")
        return 0
    for w in workers:
        if w.get("unreachable"):
            print(f"pid {w['pid']}  {'stopping' if stop else 'not answering'}  lock {w['lock']}")
            continue
        started = dt.datetime.fromtimestamp(w["started"]).strftime("%Y-%m-%d %H:%M:%S")
        state = "busy" if w["busy"] else f"idle {w['idle_s']:.0f} s of {w['keep_warm_s']:g}"
        libraries = ", ".join(w["libraries"]) or "none yet"
        print(f"pid {w['pid']}  {'stopping' if stop else state}  started {started}  clients {w['clients_served']}  "
              f"libraries {libraries}  python {w['python']}  socket {w['socket']}")
    return 0
