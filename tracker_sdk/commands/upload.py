"""`tracker upload DIR --url URL`: send every run under DIR that the server lacks, exactly once.

DIR may be a run root (``<root>/<project>/<run_id>``), one project directory or one run.
A run that cannot be read or that the server refuses is named on stderr and skipped; the
others still upload, and the command then exits 1.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ..errors import InvalidArgumentError, RunFormatError, ServerUnavailableError, SyncError
from ..runformat import iter_run_dirs, journal
from ..runformat.format import RUN_JSON

HELP = "upload runs (all of them under DIR) to a tracking server"


def configure(parser) -> None:
    parser.add_argument("root", nargs="?", default=None,
                        help="run root, project directory or run directory (default: TRACKER_DIR or ./tracker-runs)")
    parser.add_argument("--url", default=None,
                        help="tracking server, e.g. http://127.0.0.1:8470 (default: TRACKER_URL)")
    parser.add_argument("--api-key", default=None, help="API key for writes (default: TRACKER_API_KEY)")
    parser.add_argument("--chunk-size", type=int, default=16, metavar="MB",
                        help="blobs above 64 MB go up in resumable chunks of this size (default 16)")
    parser.add_argument("--no-progress", action="store_true", help="do not draw a progress bar")


def find_runs(root: Path) -> list[Path]:
    """Run directories under ``root`` (itself a run, a project directory, or a root of projects)."""
    root = Path(root)
    if (root / RUN_JSON).is_file():
        return [root]
    direct = sorted(p for p in root.iterdir() if (p / RUN_JSON).is_file()) if root.is_dir() else []
    return direct + list(iter_run_dirs(root))


def upload_runs(runs, client, *, progress_bar=None, **uploader_options) -> dict:
    """Upload each run; return ``{"uploaded": [...], "present": [...], "failed": [(run_dir, reason)]}``."""
    from ..sync.uploader import Uploader

    result = {"uploaded": [], "present": [], "failed": []}
    update = progress_bar.update if progress_bar is not None else None
    for i, run_dir in enumerate(runs):
        try:
            list(journal.read_journal(run_dir / "journal"))  # a corrupt run is named before any of it is sent
            uploader = Uploader(client, run_dir, progress=update, **uploader_options)
            uploader.sync_once(final=True)
        except ServerUnavailableError as exc:  # the server is gone: the other runs would fail the same way
            result["failed"].extend((r, f"{type(exc).__name__}: {exc}") for r in runs[i:])
            break
        except (RunFormatError, SyncError, OSError) as exc:
            result["failed"].append((run_dir, f"{type(exc).__name__}: {exc}"))
            continue
        if uploader.records_sent or uploader.blobs_sent:
            result["uploaded"].append(run_dir)
        else:
            result["present"].append(run_dir)
    return result


def run(args) -> int:
    from tqdm import tqdm

    from ..sync import default_local_root
    from ..sync.http import Client
    from ..sync.uploader import total_bytes

    url = args.url or os.environ.get("TRACKER_URL")
    if not url or not url.lower().startswith(("http://", "https://")):
        raise InvalidArgumentError(f"--url must be the tracking server's http(s):// address; got {url!r}")
    if args.chunk_size < 1:
        raise InvalidArgumentError(f"--chunk-size must be at least 1 MB; got {args.chunk_size}")
    root = Path(args.root) if args.root else default_local_root()
    if not root.exists():
        raise InvalidArgumentError(f"{root} does not exist; pass the directory that holds your runs")
    runs = find_runs(root)
    if not runs:
        print(f"no runs under {root}")
        return 0
    client = Client(url, args.api_key or os.environ.get("TRACKER_API_KEY"))
    total = sum(total_bytes(r) for r in runs)
    with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=f"upload {len(runs)} runs",
              disable=True if args.no_progress else None, file=sys.stderr) as bar:
        result = upload_runs(runs, client, progress_bar=bar, chunk_size=args.chunk_size << 20)
    client.close()
    print(f"{len(result['uploaded'])} runs uploaded, {len(result['present'])} already on {url}, "
          f"{len(result['failed'])} failed")
    for run_dir, reason in result["failed"]:
        print(f"tracker upload: run {run_dir.parent.name}/{run_dir.name} ({run_dir}) was not uploaded: {reason}",
              file=sys.stderr)
    return 1 if result["failed"] else 0
