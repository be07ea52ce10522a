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
    vectors_path = emb.run.blob_path(emb.record.vectors.sha256)
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


def test_upload_needs_a_destination_and_refuses_copying_a_root_onto_itself(tmp_path):
    result = subprocess.run(TRACKER + [str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "--url (or TRACKER_URL) must name the destination" in result.stderr
    result = subprocess.run(TRACKER + [str(tmp_path), "--url", tmp_path.as_uri()], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2 and "is DIR itself" in result.stderr
    result = subprocess.run(TRACKER + [str(tmp_path), "--url", str(tmp_path / "b"), "--chunk-size", "8"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "--chunk-size applies to http(s):// and s3://" in result.stderr


def test_upload_to_another_directory_copies_runs_once(tmp_path):
    root = tmp_path / "runs"
    runs = [make_run(root, project=f"p{i}", seed=i, metrics=5) for i in range(2)]
    argv = TRACKER + [str(root), "--url", str(tmp_path / "copy"), "--no-progress"]
    first = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0 and "2 runs uploaded, 0 already on file://" in first.stdout, first.stderr
    again = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert "0 runs uploaded, 2 already on" in again.stdout
    for run_dir in runs:
        assert_same_run(run_dir, tmp_path / "copy")


def test_with_the_server_down_each_run_is_named_with_its_own_reason(tmp_path):
    from synchelpers import free_port

    root = tmp_path / "runs"
    runs = [make_run(root, project="p", seed=i, embeddings=0, metrics=1) for i in range(3)]
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    result = subprocess.run(TRACKER + [str(root), "--url", url, "--no-progress"], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 1 and "3 failed" in result.stdout
    lines = {run.name: [line for line in result.stderr.splitlines() if f"run p/{run.name} (" in line] for run in runs}
    assert all(len(found) == 1 for found in lines.values()), result.stderr
    first, *others = [lines[run.name][0] for run in sorted(runs)]
    assert "ServerUnavailableError" in first
    for line in others:
        assert "not attempted" in line and "ServerUnavailableError" not in line
        assert f"stopped answering while run p/{sorted(runs)[0].name} was uploading" in line
