"""`tracker upload DIR --url URL`: send every run under DIR that the destination lacks, exactly once.

DIR may be a run root (``<root>/<project>/<run_id>``), one project directory or one run.
URL is any backend of the registry (``http(s)://`` server, ``s3://bucket/prefix``, another
directory). A run that cannot be read or that the destination refuses is named on stderr and
skipped; the others still upload, and the command then exits 1.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ..errors import InvalidArgumentError, RunFormatError, ServerUnavailableError, SyncError
from ..runformat import journal
from ._paths import runs_under

HELP = "upload runs (all of them under DIR) to a tracking server, an S3 bucket or another directory"


def configure(parser) -> None:
    parser.add_argument("root", nargs="?", default=None,
                        help="run root, project directory or run directory (default: TRACKER_DIR or ./tracker-runs)")
    parser.add_argument("--url", default=None,
                        help="destination: http://127.0.0.1:8470, s3://bucket/prefix?endpoint_url=..., or a directory "
                             "(default: TRACKER_URL)")
    parser.add_argument("--api-key", default=None, help="API key for writes (default: TRACKER_API_KEY)")
    parser.add_argument("--chunk-size", type=int, default=None, metavar="MB",
                        help="large blobs go up in resumable chunks (S3: parts) of this size "
                             "(default 16 for a server, 8 for S3)")
    parser.add_argument("--no-progress", action="store_true", help="do not draw a progress bar")


def upload_runs(runs, backend, *, progress=None, **uploader_options) -> dict:
    """Upload each run; return ``{"uploaded": [...], "present": [...], "failed": [(run_dir, reason)]}``."""
    from ..sync.uploader import Uploader

    result = {"uploaded": [], "present": [], "failed": []}
    update = progress.update if progress is not None else None
    for i, run_dir in enumerate(runs):
        try:
            list(journal.read_journal(run_dir / "journal"))  # a corrupt run is named before any of it is sent
            uploader = Uploader(backend, run_dir, progress=update, **uploader_options)
            uploader.sync_once(final=True)
        except ServerUnavailableError as exc:  # the server is gone: the other runs would fail the same way
            result["failed"].append((run_dir, f"{type(exc).__name__}: {exc}"))
            where = backend.url
            result["failed"].extend((r, f"not attempted: {where} stopped answering while run "
                                        f"{run_dir.parent.name}/{run_dir.name} was uploading") for r in runs[i + 1:])
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
    from .._progress import Progress
    from ..sync import default_local_root, is_local, local_path_from_uri, open_backend
    from ..sync.uploader import total_bytes

    url = args.url or os.environ.get("TRACKER_URL")
    if not url:
        raise InvalidArgumentError("--url (or TRACKER_URL) must name the destination: http(s)://host:port, "
                                   "s3://bucket/prefix or a directory; got nothing")
    root = Path(args.root) if args.root else default_local_root()
    _, runs = runs_under(root, "DIR")
    if is_local(url) and Path(local_path_from_uri(url)).resolve() == root.resolve():
        raise InvalidArgumentError(f"--url {url!r} is DIR itself; name another directory to copy the runs to")
    options = {}
    if args.api_key:
        options["api_key"] = args.api_key
    if args.chunk_size is not None:
        if is_local(url):
            raise InvalidArgumentError("--chunk-size applies to http(s):// and s3:// destinations; a directory "
                                       "copy moves whole files")
        if args.chunk_size < 1:
            raise InvalidArgumentError(f"--chunk-size must be at least 1 MB; got {args.chunk_size}")
        options["chunk_size"] = args.chunk_size << 20
    backend = open_backend(url, **options)
    if not runs:
        print(f"no runs under {root}")
        return 0
    total = sum(total_bytes(r) for r in runs)
    try:
        with Progress(total, f"upload {len(runs)} runs", unit="B", quiet=True if args.no_progress else None,
                      scale_bytes=True) as progress:
            result = upload_runs(runs, backend, progress=progress)
    finally:
        backend.close()
    print(f"{len(result['uploaded'])} runs uploaded, {len(result['present'])} already on {backend.url}, "
          f"{len(result['failed'])} failed")
    for run_dir, reason in result["failed"]:
        print(f"tracker upload: run {run_dir.parent.name}/{run_dir.name} ({run_dir}) was not uploaded: {reason}",
              file=sys.stderr)
    return 1 if result["failed"] else 0
