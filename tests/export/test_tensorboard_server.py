"""A real TensorBoard, started on loopback against an export, serves every embedding through its projector."""

import io
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image

from tracker_sdk import Experiment, open_run
from tracker_sdk.cli import main
from tracker_sdk.export import tensorboard as tb

PLUGIN = "/data/plugin/projector"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tensorboard_command():
    exe = Path(sys.executable).with_name("tensorboard")
    return [str(exe)] if exe.exists() else [shutil.which("tensorboard") or "tensorboard"]


@pytest.fixture
def logged_run(runs_root):
    """A run like a training script leaves: a group over steps, images, tricky labels, analysis columns."""
    rng = np.random.default_rng(0)
    exp = Experiment(project_name="tb", url=str(runs_root))
    images = rng.random((10, 6, 4))  # 10 images of 4 x 6 px: stored 4 x 3 tiles, exported 4 x 4
    labels = [f"digit\t{i}" if i != 3 else "" for i in range(10)]
    for step in range(2):
        exp.log_embedding(rng.standard_normal((10, 5)) + step, labels, image_data=images, image_size=(4, 6),
                          title="penultimate layer", group="cnn", step=step)
    table = [["label", "split"]] + [[f"w{i}\nline", "train" if i % 3 else "test"] for i in range(12)]
    exp.log_embedding(rng.standard_normal((12, 3)), table, title="penultimate layer", step=1)
    exp.analyze(k=3)
    exp.end()
    return exp.run_dir


def test_tensorboard_serves_the_export(logged_run, tmp_path):
    out = tmp_path / "tb-export"
    assert main(["export", "tensorboard", str(logged_run), str(out)]) == 0
    assert not any(p.is_symlink() for p in out.rglob("*"))
    run = open_run(logged_run)
    names = tb.tensor_names(run.embeddings)
    port = _free_port()
    log = open(tmp_path / "tensorboard.log", "wb")
    proc = subprocess.Popen(_tensorboard_command() + ["--logdir", str(out), "--host", "127.0.0.1", "--port", str(port)],
                            stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    base = f"http://127.0.0.1:{port}{PLUGIN}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                runs = requests.get(f"{base}/runs", timeout=5)
                if runs.status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("tensorboard did not start: " + (tmp_path / "tensorboard.log").read_text()[-2000:])
            time.sleep(0.5)
        assert runs.json() == ["."]
        info = requests.get(f"{base}/info", params={"run": "."}, timeout=30).json()
        served = {e["tensorName"]: e for e in info["embeddings"]}
        assert sorted(served) == sorted(names)
        for emb, name in zip(run.embeddings, names):
            entry = served[name]
            assert [int(s) for s in entry["tensorShape"]] == [emb.n, emb.dim]
            tensor = requests.get(f"{base}/tensor", params={"run": ".", "name": name}, timeout=30)
            assert tensor.status_code == 200
            values = np.frombuffer(tensor.content, dtype=np.float32).reshape(emb.n, emb.dim)
            np.testing.assert_array_equal(values, np.asarray(emb.vectors))  # TSV round-trips float32 exactly
            metadata = requests.get(f"{base}/metadata", params={"run": ".", "name": name}, timeout=30)
            lines = metadata.content.decode("utf-8").split("\n")
            assert lines[-1] == "" and all(line.strip() for line in lines[:-1])
            columns = emb.metadata["columns"]
            assert len(columns) > 1  # labels plus the analysis columns: a header row
            assert lines[0].split("\t") == [c["name"] for c in columns]
            assert len(lines) - 2 == emb.n
            assert all(len(line.split("\t")) == len(columns) for line in lines[1:-1])
            sprite = requests.get(f"{base}/sprite_image", params={"run": ".", "name": name}, timeout=30)
            if emb.sprite:
                assert [int(s) for s in entry["sprite"]["singleImageDim"]] == [4, 6]
                image = Image.open(io.BytesIO(sprite.content))
                assert image.format == "PNG" and image.size == (4 * 4, 4 * 6)  # square grid: 4 tiles a side
                stored = Image.open(emb.sprite_path()).convert("RGBA")
                tile9 = np.asarray(image.convert("RGBA"))[2 * 6:3 * 6, 1 * 4:2 * 4]  # tile 9: row 2, column 1
                np.testing.assert_array_equal(tile9, np.asarray(stored)[2 * 6:3 * 6, 1 * 4:2 * 4])  # stored 4 a row too
            else:
                assert "sprite" not in entry and sprite.status_code == 400
        first = next(n for n, e in zip(names, run.embeddings) if e.sprite)
        lines = requests.get(f"{base}/metadata", params={"run": ".", "name": first}, timeout=30).text.split("\n")
        assert lines[1].startswith("digit\\t0\t") and lines[4].startswith("(blank)\t")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
