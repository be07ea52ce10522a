"""Scripts written against comet_ml's documented embedding API run with only the import line changed.

Each script in ``scripts/`` runs as its own process (in a fresh working directory, so the
default ``./tracker-runs`` lands there) and what it stored is read back with ``open_run``.
"""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tracker_sdk.runformat import iter_run_dirs, open_run

SCRIPTS = Path(__file__).parent / "scripts"
IMPORT = "from tracker_sdk import Experiment"


def _run_script(name, cwd):
    proc = subprocess.run([sys.executable, str(SCRIPTS / name)], cwd=cwd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = list(iter_run_dirs(Path(cwd) / "tracker-runs"))
    assert len(runs) == 1
    return open_run(runs[0])


@pytest.mark.parametrize("script", sorted(p.name for p in SCRIPTS.glob("*.py")))
def test_scripts_differ_from_comet_only_in_the_import_line(script):
    lines = (SCRIPTS / script).read_text().splitlines()
    assert lines.count(IMPORT) == 1
    assert not [line for line in lines if "tracker" in line and line != IMPORT]


def test_vectors_and_labels(tmp_path):
    run = _run_script("vectors_and_labels.py", tmp_path)
    assert run.status == "finished"  # no end() in the script: ended at exit
    [emb] = run.embeddings
    assert (emb.n, emb.dim, emb.sprite) == (4, 4, None)
    np.testing.assert_array_equal(emb.vectors, np.eye(4, dtype=np.float32))
    assert emb.columns == {"label": ["one", "two", "three", "four"]}
    assert run.project == "default"


def test_image_data_with_image_size(tmp_path):
    run = _run_script("image_data.py", tmp_path)
    [emb] = run.embeddings
    assert emb.sprite.n == 4 and emb.sprite.tile_size == [2, 2]
    sheet = np.asarray(Image.open(emb.sprite_path()).convert("RGBA"))
    cols = emb.sprite.grid[0]
    for i in range(4):  # image i is white in pixel i (row-major) and black elsewhere
        r, c = divmod(i, cols)
        tile = sheet[r * 2:(r + 1) * 2, c * 2:(c + 1) * 2, :3].max(axis=2).reshape(-1)
        assert tile.tolist() == [255 if j == i else 0 for j in range(4)]


def test_three_image_options_and_reused_image_url(tmp_path):
    run = _run_script("image_options.py", tmp_path)
    embs = run.embeddings
    assert [e.title for e in embs] == ["epoch-0", "epoch-1", "epoch-2"]
    assert {e.group for e in embs} == {"digits"}
    shas = {e.sprite.sha256 for e in embs}
    assert len(shas) == 1  # built once by create_embedding_image, reused by url
    sprite_blobs = [p for p in (run.path / "blobs").rglob("*") if p.is_file() and p.name in shas]
    assert len(sprite_blobs) == 1
    saved = Image.open(tmp_path / "sprite-from-create_embedding_image.png")
    assert saved.size == Image.open(embs[0].sprite_path()).size
    sheet = np.asarray(Image.open(embs[0].sprite_path()).convert("RGBA"))
    (tw, th), cols = embs[0].sprite.tile_size, embs[0].sprite.grid[0]
    from sklearn.datasets import load_digits
    digits = load_digits()
    palette = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255),
               (128, 128, 0), (0, 128, 128), (128, 0, 128), (255, 0, 255), (255, 255, 255)]
    for i in (0, 1, 7, 199):
        r, c = divmod(i, cols)
        tile = sheet[r * th:(r + 1) * th, c * tw:(c + 1) * tw]
        ink = np.round(digits.data[i].reshape(8, 8) / 16) > 0
        # rounded-to-1 pixels are white; the transparent black ones take the label's background colour
        assert (tile[ink][:, :3] == 255).all()
        assert (tile[~ink][:, :3] == palette[digits.target[i]]).all()
    assert embs[2].columns["label"][:5] == digits.target[:5].tolist()
    np.testing.assert_allclose(embs[2].vectors, digits.data[:200] / 16 * 3, rtol=1e-6)


def test_title_and_group_inside_an_epoch_loop(tmp_path):
    run = _run_script("epoch_groups.py", tmp_path)
    embs = run.embeddings
    assert [(e.title, e.group, e.step) for e in embs] == [(f"epoch-{i}", "hidden-layer-1", i) for i in range(4)]
    assert [m.step for m in run.metric_series("loss")] == [0, 1, 2, 3]
    assert all(e.n == 50 and e.dim == 16 for e in embs)
    assert run.name == "groups"


def test_multi_column_labels_with_a_header_row(tmp_path):
    run = _run_script("table_labels.py", tmp_path)
    [emb] = run.embeddings
    assert [c["name"] for c in emb.metadata["columns"]] == ["name", "kind", "size"]
    assert emb.header is True
    assert emb.columns["name"] == ["apple", "kale", "pear", "leek", "plum", "fig"]
    assert emb.columns["size"] == [3, 1, 2, 5, 1, 4]
    assert [c["type"] for c in emb.metadata["columns"]] == ["str", "str", "int"]


def test_documented_preprocess_function_verbatim(tmp_path):
    run = _run_script("documented_preprocess.py", tmp_path)
    [emb] = run.embeddings
    sheet = np.asarray(Image.open(emb.sprite_path()).convert("RGBA"))
    used = sheet[: emb.sprite.grid[1] * emb.sprite.tile_size[1]]
    # Ink (2 on a 0-255 scale) stays dark; the transparent zeros take the red background.
    colours = {tuple(int(v) for v in p[:3]) for p in used.reshape(-1, 4) if p[3] == 255}
    assert (255, 0, 0) in colours and all(max(c) < 16 or c == (255, 0, 0) for c in colours)
