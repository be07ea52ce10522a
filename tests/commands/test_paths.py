"""The CLI takes a run, a project or a root where that makes sense, and never lists nothing silently."""

import numpy as np
import pytest

from tracker_sdk import Experiment
from tracker_sdk.cli import main as cli


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    runs = []
    for project, name in [("alpha", "first"), ("alpha", "second"), ("beta", "third")]:
        with Experiment(project_name=project, url=str(root), experiment_name=name) as exp:
            exp.log_embedding(np.random.default_rng(0).random((20, 4)), list(range(20)), title="e", reduce=None)
            runs.append(exp.run_dir)
    return root, runs


def test_ls_of_a_run_a_project_and_a_root(root, capsys):
    root, runs = root
    assert cli(["ls", str(runs[0])]) == 0
    out = capsys.readouterr().out
    assert f"alpha/{runs[0].name}" in out and runs[1].name not in out
    assert cli(["ls", str(root / "alpha")]) == 0
    out = capsys.readouterr().out
    assert runs[0].name in out and runs[1].name in out and runs[2].name not in out
    assert cli(["ls", str(root)]) == 0
    out = capsys.readouterr().out
    assert all(run.name in out for run in runs)


def test_ls_of_a_missing_directory_fails_with_a_message(tmp_path, capsys):
    assert cli(["ls", str(tmp_path / "nowhere")]) == 2
    assert f"DIR '{tmp_path / 'nowhere'}' does not exist" in capsys.readouterr().err


def test_ls_of_a_file_says_it_is_a_file(tmp_path, capsys):
    (tmp_path / "f.txt").write_text("x")
    assert cli(["ls", str(tmp_path / "f.txt")]) == 2
    assert "is a file; expected a run, project or root directory" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["analyze"], ["export", "tensorboard"]])
def test_one_run_commands_list_the_runs_of_a_project_or_root(root, command, tmp_path, capsys):
    root, runs = root
    extra = [str(tmp_path / "out")] if command[0] == "export" else []
    assert cli([*command, str(root / "alpha"), *extra]) == 2
    err = capsys.readouterr().err
    assert "is a project directory with 2 run(s), not a run; name one of them" in err
    assert f"tracker {' '.join(command)} {runs[0]}" in err and str(runs[2]) not in err
    assert cli([*command, str(root), *extra]) == 2
    err = capsys.readouterr().err
    assert "is a root directory with 3 run(s)" in err and all(str(run) in err for run in runs)


def test_one_run_commands_refuse_a_missing_path(tmp_path, capsys):
    assert cli(["analyze", str(tmp_path / "missing")]) == 2
    assert f"run_dir '{tmp_path / 'missing'}' does not exist" in capsys.readouterr().err
