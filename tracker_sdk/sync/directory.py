"""The directory backend: copy runs into another run root (``file:///path`` or a bare path).

The destination is the same run format as the source (``<root>/<project>/<run_id>``), written
through the one writer (``RunWriter.replay``: exactly once per seq) and the one blob commit
(size and sha256 checked before a blob becomes visible), so a copy on a shared disk or a
mounted bucket is as safe as the original. Two uploaders of one run take turns on the run's
writer lock.
"""

from __future__ import annotations

import time
from pathlib import Path

from ..errors import MissingBlobsError, RunFormatError, RunLockedError, ServerUnavailableError
from ..runformat import RunWriter, blob_path, files, iter_run_dirs
from ..runformat import records as rec
from ..runformat.format import RUN_JSON
from ..runformat.names import check_hex_id, check_project
from ..runformat.walk import iter_project_dirs, is_run_dir

LOCK_WAIT = 30.0  # seconds to wait for another uploader of the same run


class DirectoryBackend:
    """Uploads runs into the run root ``uri`` (created on first use); ``api_key`` is ignored."""

    def __init__(self, uri, *, api_key: str | None = None):
        from . import local_path_from_uri

        self.root = Path(local_path_from_uri(str(uri))).expanduser().absolute()
        self.url = self.root.as_uri()
        self._projects: dict[str, str] = {}

    def _run_dir(self, run_id: str) -> Path:
        check_hex_id(run_id)
        project = self._projects.get(run_id)
        if project is None:
            found = [p / run_id for p in iter_project_dirs(self.root) if is_run_dir(p / run_id)]
            if not found:
                raise RunFormatError(f"{self.url} has no run {run_id}; put_run comes first")
            project = self._projects[run_id] = found[0].parent.name
        return self.root / project / run_id

    def _writer(self, run_dir: Path, info: dict | None = None) -> RunWriter:
        deadline = time.monotonic() + LOCK_WAIT
        while True:
            try:
                return RunWriter(run_dir, info, sync_interval=3600)
            except RunLockedError as exc:
                if time.monotonic() > deadline:
                    raise ServerUnavailableError(f"{run_dir} stayed locked by another writer: {exc}") from None
                time.sleep(0.05)

    def put_run(self, project: str, run_id: str, info: dict) -> int:
        check_project(project)
        check_hex_id(run_id)
        self._projects[run_id] = project
        run_dir = self.root / project / run_id
        fields = {k: v for k, v in info.items() if k != "format_version"}
        writer = self._writer(run_dir, fields)
        try:
            if files.read_json(run_dir / RUN_JSON) != {**files.read_json(run_dir / RUN_JSON), **fields}:
                writer.update_info(**fields)  # only a change rewrites it: a re-upload leaves the copy untouched
            return writer.next_seq
        finally:
            writer.close()

    def has_blob(self, run_id: str, sha256: str) -> bool:
        return blob_path(self._run_dir(run_id), sha256).is_file()

    def put_blob(self, run_id: str, sha256: str, path: Path, size: int, progress=None) -> None:
        with open(path, "rb") as source:
            files.commit_blob(self._run_dir(run_id), source, sha256=sha256, size=size)
        if progress is not None:
            progress(size)

    def append_records(self, run_id: str, records: list) -> int:
        run_dir = self._run_dir(run_id)
        missing = [sha for sha in dict.fromkeys(s for r in records for s in rec.blob_hashes(r))
                   if not blob_path(run_dir, sha).is_file()]
        if missing:
            raise MissingBlobsError(f"{self.url} lacks {len(missing)} blob(s) named by records of run {run_id}", missing)
        writer = self._writer(run_dir)
        try:
            if records and records[0].seq > writer.next_seq:
                return writer.next_seq  # a gap: the caller resends from there
            for record in records:
                writer.replay(record)
            writer.sync()
            return writer.next_seq
        finally:
            writer.close()

    def list_runs(self) -> list[tuple[str, str]]:
        return [(p.parent.name, p.name) for p in iter_run_dirs(self.root)]

    def close(self) -> None:
        """Nothing is held between calls."""
