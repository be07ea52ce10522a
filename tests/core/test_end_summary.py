"""end() prints one line a person reads (no logging set-up needed): what was stored, where, how to view it."""

import subprocess
import sys

import numpy as np
import pytest

from tracker_sdk import Experiment, InvalidArgumentError

SCRIPT = """
import numpy as np
from tracker_sdk import Experiment
exp = Experiment(project_name="summary", url={url!r}{quiet})
exp.log_parameters({{"lr": 0.1, "epochs": 2}})
for step in range(3):
    exp.log_metric("loss", 1.0 / (step + 1), step=step)
exp.log_embedding(np.random.default_rng(0).random((50, 6)), [i % 3 for i in range(50)])
exp.end()
"""


def _run(tmp_path, quiet="", env=None):
    code = SCRIPT.format(url=str(tmp_path / "runs"), quiet=quiet)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env=env, cwd=tmp_path)


def test_end_prints_one_summary_line_without_any_logging_set_up(tmp_path):
    result = _run(tmp_path)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if " ended: " in line]
    assert len(lines) == 1, result.stderr
    assert "tracker_sdk: run summary/" in lines[0]
    assert "1 embeddings, 1 projections, 3 metric points, 2 parameters in " in lines[0]
    assert f"view with: tracker-server --root {tmp_path / 'runs'}" in lines[0]


@pytest.mark.parametrize("quiet, env", [(", quiet=True", None), ("", {"TRACKER_QUIET": "1"})])
def test_quiet_by_argument_or_environment(tmp_path, quiet, env):
    import os

    result = _run(tmp_path, quiet, env={**os.environ, **(env or {})})
    assert result.returncode == 0 and result.stderr == "", result.stderr


def test_a_synced_run_names_its_server_and_viewer_url(tmp_path, monkeypatch, capsys):
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))
    from serverprocess import ServerProcess

    monkeypatch.setenv("TRACKER_DIR", str(tmp_path / "local"))
    with ServerProcess(tmp_path / "server") as server:
        exp = Experiment(project_name="p", url=server.url)
        exp.log_embedding(np.random.default_rng(1).random((30, 4)), list(range(30)))
        exp.end()
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"; synced to {server.url}; view: {server.url}/view?run={exp.run_id}" in line


def test_quiet_must_be_a_bool(tmp_path):
    with pytest.raises(InvalidArgumentError, match="quiet must be True, False or None"):
        Experiment(url=str(tmp_path), quiet="yes")
    assert not any(tmp_path.iterdir())
