"""benchmarks/_harness.py: interleaved, rotated rounds with the same repetitions on every side, recorded."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("bench_harness", REPO / "benchmarks" / "_harness.py")
harness = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = harness  # dataclasses look their module up
spec.loader.exec_module(harness)


def test_rounds_rotate_the_order_and_the_file_records_the_machine(tmp_path):
    calls = []
    bench = harness.Bench("unit", "A test benchmark.")
    bench.parse(["--repeat", "3", "--out", str(tmp_path / "unit.json")])
    result = bench.compare("case", {"a": lambda: calls.append("a"), "b": lambda: calls.append("b"),
                                    "c": lambda: calls.append("c")},
                           baseline="a", target=harness.Target("b", ratio=1e9))
    # one warm-up round in order, then three rounds, each starting one candidate later
    assert calls == list("abc") + list("abc") + list("bca") + list("cab")
    assert {name: len(s["times"]) for name, s in result["candidates"].items()} == {"a": 3, "b": 3, "c": 3}
    assert result["target"]["met"] is True
    bench.save()
    data = json.loads((tmp_path / "unit.json").read_text())
    assert data["format"] == harness.FORMAT and data["repeat"] == 3
    assert data["machine"]["cpu_count"] == os.cpu_count()
    assert len(data["machine"]["loadavg_before"]) == 3 and len(data["machine"]["loadavg_after"]) == 3
    assert "numpy" in data["machine"]["packages"] and data["machine"]["python"]
    assert data["cases"][0]["candidates"]["c"]["median"] == sorted(data["cases"][0]["candidates"]["c"]["times"])[1]


def test_setup_and_teardown_are_not_timed_and_a_bad_baseline_is_named(tmp_path):
    import time
    made, removed = [], []
    bench = harness.Bench("unit", "")
    bench.parse(["--repeat", "2", "--no-save"])
    slow_setup = harness.Candidate(lambda arg: made.append(arg), setup=lambda: time.sleep(0.05) or len(made),
                                   teardown=removed.append)
    result = bench.compare("case", {"x": slow_setup}, baseline="x")
    assert made == removed == [0, 1, 2]
    assert result["candidates"]["x"]["max"] < 0.05
    with pytest.raises(ValueError, match="baseline 'y' is not one of the candidates"):
        bench.compare("case", {"x": lambda: None}, baseline="y")
    assert bench.save() is None
