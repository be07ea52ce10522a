"""The export's file rules: metadata TSV, tensor names, square sprite under the size limit."""

import io
import re

import numpy as np
import pytest
from PIL import Image

from tracker_sdk import Experiment, InvalidArgumentError
from tracker_sdk.export import export_tensorboard
from tracker_sdk.export import tensorboard as tb
from tracker_sdk.runformat import make_column
from tracker_sdk.runformat.records import SpriteRef


def test_single_column_has_no_header_and_no_blank_lines():
    text = tb.metadata_tsv([make_column("label", ["cat", "", "  ", None, "a\tb", "x\ny\r", 3])], 7)
    assert text == "cat\n(blank)\n(blank)\n(blank)\na\\tb\nx\\ny\\r\n3\n"
    assert "\t" not in text  # a tab in the first line would make the projector read a header


def test_several_columns_get_a_header_and_keep_empty_cells():
    columns = [make_column("label", ["a", " ", None, None]), make_column("score", [0.5, None, None, None]),
               make_column("note\tx", [None, None, "z", None])]
    lines = tb.metadata_tsv(columns, 4).split("\n")
    assert lines == ["label\tscore\tnote\\tx", "a\t0.5\t", "(blank)\t\t", "\t\tz", "(blank)\t\t", ""]


def test_tensor_names_are_unique_and_url_safe(runs_root):
    exp = Experiment(project_name="p", url=str(runs_root))
    x = np.eye(3, dtype=np.float32)
    for step in (0, 0, 1):
        exp.log_embedding(x, ["a", "b", "c"], title="layer 4/out: ünïcode?&", group="g h", step=step)
    exp.log_embedding(x, ["a", "b", "c"], title="")
    exp.end()
    from tracker_sdk import open_run
    names = tb.tensor_names(open_run(exp.run_dir).embeddings)
    assert len(set(names)) == 4
    assert all(re.fullmatch(r"[A-Za-z0-9_-]+", n) for n in names)
    assert names[0].startswith("layer-4-out-n-code_g-h_step0_") and names[2].startswith("layer-4-out-n-code_g-h_step1_")
    assert names[3].startswith("embedding_")


def _sheet(n, tw, th, cols, tmp_path):
    rows = -(-n // cols)
    pixels = np.zeros((rows * th, cols * tw, 4), dtype=np.uint8)
    for i in range(n):
        r, c = divmod(i, cols)
        pixels[r * th:(r + 1) * th, c * tw:(c + 1) * tw] = (i % 256, (i * 7) % 256, 255 - i % 256, 255)
    path = tmp_path / "sprite.png"
    Image.fromarray(pixels, "RGBA").save(path)
    return path, SpriteRef(sha256="0" * 64, n=n, tile_size=[tw, th], grid=[cols, rows])


def test_sprite_is_retiled_into_a_square_grid(tmp_path):
    path, record = _sheet(10, 4, 6, cols=5, tmp_path=tmp_path)  # stored 5 x 2
    png, tile = tb.square_sprite(path, record)
    image = np.asarray(Image.open(io.BytesIO(png)))
    assert tile == (4, 6) and image.shape == (4 * 6, 4 * 4, 4)  # ceil(sqrt(10)) = 4 a side
    for i in range(10):
        r, c = divmod(i, 4)
        assert tuple(image[r * 6 + 3, c * 4 + 2]) == (i, i * 7, 255 - i, 255)
    assert image[3 * 6:, 2 * 4:, 3].max() == 0  # cells after the last tile stay transparent


def test_sprite_shrinks_to_the_size_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(tb, "MAX_SPRITE_SIDE", 64)
    path, record = _sheet(30, 8, 16, cols=30, tmp_path=tmp_path)  # square: 6 a side -> 96 px high
    png, (tw, th) = tb.square_sprite(path, record)
    image = Image.open(io.BytesIO(png))
    assert (tw, th) == (5, 10) and image.size == (30, 60)
    assert max(image.size) <= 64
    pixels = np.asarray(image)
    assert tuple(pixels[4 * 10 + 5, 5 * 5 + 2]) == (29, 203, 226, 255)  # tile 29: row 4, column 5
    monkeypatch.setattr(tb, "MAX_SPRITE_SIDE", 4)
    with pytest.raises(InvalidArgumentError, match="cannot fit a 4 px sprite"):
        tb.square_sprite(path, record)


def test_export_refuses_an_empty_run(runs_root, tmp_path):
    exp = Experiment(project_name="p", url=str(runs_root))
    exp.log_metric("loss", 1.0)
    exp.end()
    with pytest.raises(InvalidArgumentError, match="has no embeddings to export"):
        export_tensorboard(exp.run_dir, tmp_path / "out")
