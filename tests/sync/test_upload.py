"""`tracker upload`: once, twice, twice at the same time, and with corrupted runs among good ones."""

import subprocess
import sys

from tracker_sdk.runformat import open_run

from synchelpers import assert_same_run, make_run

TRACKER = [sys.executable, "-m", "tracker_sdk.cli", "upload"]


def test_two_concurrent_uploads_then_a_third_store_one_copy(server, tmp_path):
    root = tmp_path / "runs"
    runs = [make_run(root, project=f"p{i % 2}", seed=i) for i in range(3)]
    argv = TRACKER + [str(root), "--url", server.url, "--no-progress"]
    both = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=120) for p in both]
    assert [p.returncode for p in both] == [0, 0], outputs
    for run_dir in runs:
        assert_same_run(run_dir, server.root)
    third = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert third.returncode == 0, third.stderr
    assert "0 runs uploaded, 3 already on" in third.stdout
    for run_dir in runs:
        assert_same_run(run_dir, server.root)


def test_corrupted_runs_are_named_and_the_others_upload(server, tmp_path):
    root = tmp_path / "runs"
    good = [make_run(root, seed=i) for i in range(2)]
    bad_journal = make_run(root, seed=10)
    segment = sorted((bad_journal / "journal").glob("*.seg"))[0]
    data = bytearray(segment.read_bytes())
    data[20] ^= 0xFF  # inside the first frame: valid frames follow, so this is corruption, not a torn tail
    segment.write_bytes(bytes(data))
    bad_blob = make_run(root, seed=11)
    emb = open_run(bad_blob).embeddings[0]
    vectors_path = emb.run.blob_path(emb.record["vectors"]["sha256"])
    vectors_path.chmod(0o644)
    blob = bytearray(vectors_path.read_bytes())
    blob[-1] ^= 0xFF
    vectors_path.write_bytes(bytes(blob))

    result = subprocess.run(TRACKER + [str(root), "--url", server.url], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "2 runs uploaded, 0 already on" in result.stdout and "2 failed" in result.stdout
    assert f"run proj/{bad_journal.name}" in result.stderr and "CorruptJournalError" in result.stderr
    assert "at byte offset 0" in result.stderr
    assert f"run proj/{bad_blob.name}" in result.stderr and "hashes to" in result.stderr
    for run_dir in good:
        assert_same_run(run_dir, server.root)
    assert not (server.root / "proj" / bad_journal.name).exists()


def test_upload_needs_a_server_url(tmp_path):
    result = subprocess.run(TRACKER + [str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "--url must be the tracking server's http(s):// address" in result.stderr
