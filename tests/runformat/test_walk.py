"""The one run walker: only well-named, real run directories, never through a symlink."""

import json

import pytest

from tracker_sdk.runformat import is_run_dir, iter_project_dirs, iter_run_dirs, runs_in

A, B, C = "a" * 32, "b" * 32, "c" * 32


def _run(path):
    (path / "journal").mkdir(parents=True)
    (path / "run.json").write_text(json.dumps({"run_id": path.name}))
    return path


@pytest.fixture
def root(tmp_path):
    root = tmp_path / "root"
    runs = [_run(root / "alpha" / B), _run(root / "alpha" / A), _run(root / "beta" / C)]
    _run(root / "alpha" / "not-a-run-id")  # a directory the SDK never makes
    _run(root / "bad name!" / A)  # a project name that is not a valid directory name
    (root / "alpha" / ("d" * 32)).mkdir()  # no run.json
    (root / "notes.txt").write_text("a file among the projects")
    outside = _run(tmp_path / "outside" / "p" / ("e" * 32))
    (root / "linked").symlink_to(outside.parent)  # a symlinked project
    (root / "beta" / ("f" * 32)).symlink_to(outside)  # a symlinked run
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text("{}")
    (root / "beta" / ("9" * 32)).mkdir()
    (root / "beta" / ("9" * 32) / "run.json").symlink_to(elsewhere)  # a symlinked run.json
    return root, sorted(runs)


def test_iter_run_dirs_yields_only_real_well_named_runs_sorted(root):
    root, runs = root
    assert list(iter_run_dirs(root)) == runs
    assert [p.name for p in iter_project_dirs(root)] == ["alpha", "beta"]


def test_a_missing_root_has_no_runs(tmp_path):
    assert list(iter_run_dirs(tmp_path / "missing")) == []
    assert runs_in(tmp_path / "missing") == ("root", [])


def test_runs_in_tells_a_run_a_project_and_a_root_apart(root):
    root, runs = root
    assert runs_in(runs[0]) == ("run", [runs[0]])
    assert runs_in(root / "alpha") == ("project", [root / "alpha" / A, root / "alpha" / B])
    assert runs_in(root) == ("root", runs)


def test_is_run_dir_refuses_symlinks(root):
    root, runs = root
    assert is_run_dir(runs[0])
    assert not is_run_dir(root / "beta" / ("f" * 32))
    assert not is_run_dir(root / "beta" / ("9" * 32))
