"""Prehashed: a blob whose sha256 is computed on a thread before and while it is written."""

import hashlib

import numpy as np
import pytest

from tracker_sdk import Experiment, InvalidArgumentError
from tracker_sdk.runformat import commit_blob, npy_bytes, npy_chunks
from tracker_sdk.runformat.files import THREAD_HASH_BYTES, Prehashed, blob_path


@pytest.mark.parametrize("rows", [10, THREAD_HASH_BYTES // 64 + 5])  # hashed inline, and on the thread
def test_a_prehashed_commit_stores_what_a_plain_commit_stores(tmp_path, rows):
    array = np.random.default_rng(0).standard_normal((rows, 16), dtype=np.float32)
    expected = hashlib.sha256(npy_bytes(array)).hexdigest()
    blob = commit_blob(tmp_path / "a", Prehashed(npy_chunks(array)))
    plain = commit_blob(tmp_path / "b", npy_chunks(array))
    assert blob.sha256 == plain.sha256 == expected and blob.size == plain.size == len(npy_bytes(array))
    assert blob_path(tmp_path / "a", expected).read_bytes() == npy_bytes(array)
    with pytest.raises(Exception, match="hashes to"):  # the expected name is still checked
        commit_blob(tmp_path / "c", Prehashed(npy_chunks(array)), sha256="0" * 64)
    assert not list((tmp_path / "c").rglob("*.part"))


def test_a_cancelled_hash_commits_nothing(tmp_path):
    for size in (10, 64 * THREAD_HASH_BYTES):  # hashed inline, and on the thread (stopped early)
        source = Prehashed([bytes(size)])
        source.cancel()
        with pytest.raises(RuntimeError, match="cancelled"):
            commit_blob(tmp_path, source)
    assert not [p for p in (tmp_path / "blobs").rglob("*") if p.is_file()]


def test_bad_labels_after_the_hash_started_leave_no_blob(tmp_path):
    exp = Experiment(project_name="p", url=str(tmp_path))
    vectors = np.ones((40_000, 16), dtype=np.float32)  # large enough to be hashed on the thread
    with pytest.raises(InvalidArgumentError, match="labels has 3 rows"):
        exp.log_embedding(vectors, ["a", "b", "c"])
    with pytest.raises(InvalidArgumentError, match="must be finite"):
        bad = vectors.copy()
        bad[123, 4] = np.nan
        exp.log_embedding(bad, ["x"] * len(bad))
    assert not [p for p in (exp.run_dir / "blobs").rglob("*") if p.is_file()]
    exp.end()
