"""The contract every backend keeps, as one suite that each backend's tests inherit (fsspec-style).

A backend's test module subclasses :class:`BackendContract` and provides one fixture,
``destination``, with three methods: ``backend()`` (a fresh backend object on the shared
destination, as a second process would make it), ``read_back(project, run_id)`` (the stored
run as a :class:`~tracker_sdk.runformat.reader.Run`) and ``snapshot()`` (a comparable picture of
everything stored, to prove a re-upload changes nothing). Every test runs the real generic
uploader against the real destination.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

from tracker_sdk.errors import BlobIntegrityError, MissingBlobsError
from tracker_sdk.runformat import open_run
from tracker_sdk.runformat import records as rec
from tracker_sdk.sync.protocol import Backend
from tracker_sdk.sync.uploader import Uploader

from synchelpers import make_run

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIG_ROWS = 40_000  # 40k x 100 float32 = 16 MB of vectors: several parts of 5 MiB


def upload(backend, run_dir, **options) -> Uploader:
    uploader = Uploader(backend, run_dir, **options)
    assert uploader.sync_once(final=True)
    return uploader


def assert_same(local_dir, stored) -> None:
    local = open_run(local_dir)
    assert stored.records == local.records
    assert [r.seq for r in stored.records] == list(range(len(local.records)))
    for sha in set(local.blob_refs()):
        assert stored.blob_path(sha).read_bytes() == local.blob_path(sha).read_bytes()
    stored.verify()


def big_run(root, seed=0):
    rng = np.random.default_rng(seed)
    from tracker_sdk import OfflineExperiment

    exp = OfflineExperiment(project_name="big", offline_directory=str(root))
    exp.log_metric("loss", 1.0)
    exp.log_embedding(rng.standard_normal((BIG_ROWS, 100)).astype(np.float32), None,
                      metadata={"i": list(range(BIG_ROWS))}, title="big", reduce=None)
    exp.end()
    return exp.run_dir


class BackendContract:
    """Inherit, and provide the ``destination`` fixture (see the module docstring)."""

    def test_the_backend_declares_the_protocol(self, destination):
        assert isinstance(destination.backend(), Backend)

    def test_an_uploaded_run_reads_back_byte_identical(self, destination, tmp_path):
        run_dir = make_run(tmp_path / "local", project="alpha", seed=1)
        uploader = upload(destination.backend(), run_dir)
        assert uploader.records_sent == len(open_run(run_dir).records) and uploader.blobs_sent > 0
        assert_same(run_dir, destination.read_back("alpha", run_dir.name))

    def test_a_second_upload_sends_and_changes_nothing(self, destination, tmp_path):
        run_dir = make_run(tmp_path / "local", seed=2)
        upload(destination.backend(), run_dir)
        before = destination.snapshot()
        again = upload(destination.backend(), run_dir)
        assert (again.records_sent, again.blobs_sent, again.bytes_sent) == (0, 0, 0)
        assert destination.snapshot() == before
        assert_same(run_dir, destination.read_back("proj", run_dir.name))

    def test_an_upload_killed_mid_blob_resumes_and_stores_one_copy(self, destination, tmp_path):
        run_dir = big_run(tmp_path / "local")
        # a child process uploads and dies (os._exit, no clean-up) once 6 MB of blob bytes are sent
        script = textwrap.dedent(f"""
            import os, sys
            sys.path[:0] = [{os.path.join(REPO, 'tests')!r}, {os.path.join(REPO, 'tests', 'sync')!r}]
            from {type(self).__module__.rpartition('.')[2]} import make_destination
            from tracker_sdk.sync.uploader import Uploader
            sent = [0]
            def progress(n):
                sent[0] += n
                if sent[0] >= 6_000_000:
                    os._exit(9)
            backend = make_destination({destination.spec!r}).backend()
            Uploader(backend, {str(run_dir)!r}, progress=progress).sync_once(final=True)
            sys.exit(3)
        """)
        child = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                               env={**os.environ, "PYTHONPATH": REPO})
        assert child.returncode == 9, child.stderr[-3000:]
        resumed = upload(destination.backend(), run_dir)
        total = sum(open_run(run_dir).blob_path(s).stat().st_size for s in set(open_run(run_dir).blob_refs()))
        if destination.resumable:
            assert resumed.bytes_sent < total - 4_000_000, (resumed.bytes_sent, total)  # parts sent before the kill stay
        assert_same(run_dir, destination.read_back("big", run_dir.name))

    def test_two_uploaders_of_one_run_at_once_store_it_once(self, destination, tmp_path):
        run_dir = make_run(tmp_path / "local", seed=3, metrics=300, embeddings=3)
        errors = []

        def one():
            try:
                upload(destination.backend(), run_dir, batch_records=40)
            except Exception as exc:  # reported below, with the other thread's outcome
                errors.append(exc)

        threads = [threading.Thread(target=one) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert not errors, errors
        assert_same(run_dir, destination.read_back("proj", run_dir.name))

    def test_a_corrupted_local_blob_is_refused_and_never_stored(self, destination, tmp_path):
        run_dir = make_run(tmp_path / "local", seed=4, embeddings=1)
        run = open_run(run_dir)
        sha = run.embeddings[0].record.vectors.sha256
        path = run.blob_path(sha)
        path.chmod(0o644)
        data = bytearray(path.read_bytes())
        data[-1] ^= 0xFF
        path.write_bytes(bytes(data))
        backend = destination.backend()
        with pytest.raises(BlobIntegrityError, match=sha):
            Uploader(backend, run_dir).sync_once(final=True)
        assert not destination.backend().has_blob(run_dir.name, sha)
        stored = destination.read_back("proj", run_dir.name)
        assert all(sha not in rec.blob_hashes(r) for r in stored.records)

    def test_records_naming_an_absent_blob_are_refused(self, destination, tmp_path):
        run_dir = make_run(tmp_path / "local", seed=5, embeddings=1)
        run = open_run(run_dir)
        backend = destination.backend()
        assert backend.put_run(run.project, run.run_id, run.info) == 0
        first = next(r for r in run.records if rec.blob_hashes(r))  # the asset record, before any embedding
        before = [r for r in run.records if r.seq < first.seq]
        assert backend.append_records(run.run_id, before) == first.seq
        with pytest.raises(MissingBlobsError, match="lacks") as caught:
            backend.append_records(run.run_id, [first])
        assert set(caught.value.missing) == set(rec.blob_hashes(first))
        assert [r.seq for r in destination.read_back("proj", run.run_id).records] == [r.seq for r in before]

    def test_a_batch_past_the_stored_end_stores_nothing_and_says_where_to_resume(self, destination, tmp_path):
        run_dir = make_run(tmp_path / "local", seed=6, embeddings=0)
        run = open_run(run_dir)
        backend = destination.backend()
        backend.put_run(run.project, run.run_id, run.info)
        assert backend.append_records(run.run_id, run.records[:3]) == 3
        assert backend.append_records(run.run_id, run.records[5:8]) == 3
        assert backend.append_records(run.run_id, run.records[1:6]) == 6  # overlap: the first two are skipped
        assert [r.seq for r in destination.read_back("proj", run.run_id).records] == list(range(6))

    def test_listing_names_every_uploaded_run(self, destination, tmp_path):
        runs = [make_run(tmp_path / "local", project=p, seed=i, embeddings=0, metrics=2)
                for i, p in enumerate(["one", "two"])]
        for run_dir in runs:
            upload(destination.backend(), run_dir)
        listed = set(destination.backend().list_runs())
        assert {("one", runs[0].name), ("two", runs[1].name)} <= listed
