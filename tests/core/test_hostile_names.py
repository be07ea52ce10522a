"""Every name the SDK accepts goes through one validation, and a bad one raises
InvalidArgumentError naming the argument before anything is written."""

from __future__ import annotations

import numpy as np
import pytest

from tracker_sdk import Experiment
from tracker_sdk.errors import InvalidArgumentError
from tracker_sdk.runformat import open_run


def _files(run_dir):
    return sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob("*") if p.is_file())


@pytest.mark.parametrize("call, message", [
    (lambda e: e.set_name("\ud800x"), "name is not valid Unicode text: a lone surrogate"),
    (lambda e: e.log_metric("lo\ud800ss", 1.0), "name is not valid Unicode text"),
    (lambda e: e.log_metric("a\x1bb", 1.0), "name must not contain control characters; got '\\\\x1b'"),
    (lambda e: e.log_parameter("p\x00", 1), "name must not contain control characters"),
    (lambda e: e.log_other("k\ud801", "v"), "key is not valid Unicode text"),
    (lambda e: e.add_tag("t\n"), "tag must not contain control characters"),
    (lambda e: e.log_asset(b"x", "CON"), "file_name must not be a Windows device name"),
    (lambda e: e.log_embedding(np.eye(3), ["a", "b", "c"], title="t\ud800", reduce=None), "title is not valid"),
    (lambda e: e.log_embedding(np.eye(3), ["a", "b", "c"], group="g" * 1001, reduce=None),
     "group must be at most 1000 characters; got 1001"),
    (lambda e: e.log_embedding(np.eye(3), ["a", "b\udc80", "c"], reduce=None),
     "labels/metadata column 'label' row 1 is not valid Unicode text"),
    (lambda e: e.log_embedding(np.eye(2), [["h\x00", "x"], ["a", 1], ["b", 2]], reduce=None),
     "labels/metadata column name must not contain control characters"),
    (lambda e: e.log_embedding(np.eye(2), ["a", "b"], metadata={"m": ["ok", "\ud800"]}, reduce=None),
     "labels/metadata column 'm' row 1"),
])
def test_bad_names_raise_before_anything_is_written(tmp_path, call, message):
    exp = Experiment(project_name="p", url=str(tmp_path / "runs"))
    before = _files(exp.run_dir)
    with pytest.raises(InvalidArgumentError, match=message.replace("(", r"\(")):
        call(exp)
    assert _files(exp.run_dir) == before  # no orphan blob, no record
    exp.end()
    assert open_run(exp.run_dir).name != "\ud800x"


def test_device_names_are_refused_as_projects(tmp_path):
    with pytest.raises(InvalidArgumentError, match="project_name must not be a Windows device name"):
        Experiment(project_name="CON", url=str(tmp_path / "runs"))
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_values_with_lone_surrogates_are_refused_naming_where_before_anything_is_written(tmp_path):
    import os

    from tracker_sdk import Experiment
    from tracker_sdk.runformat import open_run

    exp = Experiment(project_name="p", url=str(tmp_path))
    with pytest.raises(InvalidArgumentError, match=r"parameter 'opt'\['name'\] is not valid Unicode text: a lone surrogate"):
        exp.log_parameter("opt", {"name": "adam\ud800"})
    with pytest.raises(InvalidArgumentError, match=r"other 'notes'\[1\] is not valid Unicode text"):
        exp.log_other("notes", ["ok", "\udcff"])
    with pytest.raises(InvalidArgumentError, match=r"metadata\['who'\] is not valid Unicode text"):
        exp.log_asset(b"data", file_name="a.bin", metadata={"who": "x\ud800"})
    exp.end()
    run = open_run(exp.run_dir)
    assert [type(r).__name__ for r in run.records] == ["EndRecord"]
    blobs = [p for p in (exp.run_dir / "blobs").rglob("*") if p.is_file()]
    assert blobs == [], os.listdir(exp.run_dir / "blobs")
