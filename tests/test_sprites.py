"""Sprite images: every input form and option pixel-exact, the tile layout, the 8192 px limit,
every error, and the integration through Experiment.log_embedding / create_embedding_image."""

import io
import warnings

import numpy as np
import pytest
from PIL import Image

from tracker_sdk import Experiment, InvalidArgumentError, open_run
from tracker_sdk import sprites
from tracker_sdk.sprites import MAX_SPRITE_SIDE, build_sprite, create_embedding_image, tile_box


def rgba_of_gray(values):
    """Expected RGBA tile for a gray uint8 image."""
    v = np.asarray(values, np.uint8)
    return np.stack([v, v, v, np.full_like(v, 255)], axis=-1)


def opaque(rgb):
    rgb = np.asarray(rgb, np.uint8)
    return np.concatenate([rgb, np.full(rgb.shape[:-1] + (1,), 255, np.uint8)], axis=-1)


def blob_files(run_dir):
    return sorted(p.name for p in (run_dir / "blobs").glob("??/*"))


# -- input forms, pixel-exact ------------------------------------------------------------
def test_flat_gray_rows_follow_comet_convention_non_square():
    images = np.arange(3 * 6, dtype=np.uint8).reshape(3, 6) * 10  # 3 images, w=3, h=2
    sprite = build_sprite(images, image_size=(3, 2))
    assert sprite.tile_size == (3, 2) and sprite.n == 3 and sprite.image_size == (3, 2)
    for i in range(3):
        np.testing.assert_array_equal(sprite.tile(i), rgba_of_gray(images[i].reshape(2, 3)))


@pytest.mark.parametrize("channels", [3, 4])
def test_flat_color_rows_interleave_channels(channels):
    rng = np.random.default_rng(channels)
    images = rng.integers(1, 255, size=(5, 2 * 4 * channels), dtype=np.uint8)  # w=4, h=2
    sprite = build_sprite(images, image_size=(4, 2))
    for i in range(5):
        expected = images[i].reshape(2, 4, channels)
        np.testing.assert_array_equal(sprite.tile(i), expected if channels == 4 else opaque(expected))


def test_float_rule_rounds_v_times_255_and_uint8_is_taken_as_is():
    floats = np.array([[[0.0, 1 / 255, 0.5, 1.0]]], np.float64)  # (1, 1, 4)
    np.testing.assert_array_equal(build_sprite(floats).tile(0), rgba_of_gray([[0, 1, 128, 255]]))
    np.testing.assert_array_equal(build_sprite(floats.astype(np.float16)).tile(0)[..., 0], [[0, 1, 128, 255]])
    ints = [[[0, 7, 200, 255]]]  # nested lists: int64, must be 0-255
    np.testing.assert_array_equal(build_sprite(ints).tile(0), rgba_of_gray([[0, 7, 200, 255]]))
    flags = np.array([[[True, False]]])
    np.testing.assert_array_equal(build_sprite(flags).tile(0), rgba_of_gray([[255, 0]]))


def test_channels_last_and_channels_first_give_the_same_tiles():
    rng = np.random.default_rng(0)
    last = rng.integers(0, 256, size=(6, 5, 7, 3), dtype=np.uint8)  # h=5, w=7
    first = np.ascontiguousarray(last.transpose(0, 3, 1, 2))
    a, b = build_sprite(last), build_sprite(first)
    assert a.tile_size == b.tile_size == (7, 5)
    np.testing.assert_array_equal(a.pixels, b.pixels)
    np.testing.assert_array_equal(a.tile(4), opaque(last[4]))
    single = build_sprite(first[:, :1])  # (n, 1, h, w)
    np.testing.assert_array_equal(single.tile(2), rgba_of_gray(last[2, ..., 0]))


def test_ambiguous_4d_shape_is_settled_by_argument_or_image_size():
    data = np.zeros((2, 3, 4, 4), np.uint8)  # (n, c=3, h=4, w=4) or (n, h=3, w=4, c=4)
    data[:, 0] = 255  # channels-first: red
    with pytest.raises(InvalidArgumentError, match=r"could be channels-first .* image_channels='first' or 'last'"):
        build_sprite(data)
    red = build_sprite(data, image_channels="first")
    assert red.tile_size == (4, 4)
    np.testing.assert_array_equal(red.tile(1), opaque(np.broadcast_to([255, 0, 0], (4, 4, 3))))
    assert build_sprite(data, image_size=(4, 4)).tile_size == (4, 4)
    assert build_sprite(data, image_channels="last").tile_size == (4, 3)


def test_torch_tensors_are_accepted(tmp_path):
    torch = pytest.importorskip("torch")
    tensor = torch.rand(4, 1, 3, 2, requires_grad=True)  # (n, c, h, w)
    expected = build_sprite(tensor.detach().numpy())
    np.testing.assert_array_equal(build_sprite(tensor).pixels, expected.pixels)
    np.testing.assert_array_equal(build_sprite([t for t in tensor.detach()[:, 0]]).pixels, expected.pixels)


def test_list_of_pil_images_and_of_files(tmp_path):
    rng = np.random.default_rng(1)
    arrays = [rng.integers(0, 256, size=(3, 5, 3), dtype=np.uint8) for _ in range(4)]
    pil = [Image.fromarray(a, "RGB") for a in arrays]
    paths = []
    for i, im in enumerate(pil):
        paths.append(tmp_path / f"img{i}.png")
        im.save(paths[-1])
    for data in (pil, paths, [str(p) for p in paths]):
        sprite = build_sprite(data)
        assert sprite.tile_size == (5, 3)
        for i in range(4):
            np.testing.assert_array_equal(sprite.tile(i), opaque(arrays[i]))
    gray = build_sprite([Image.fromarray(a[..., 0], "L") for a in arrays])
    np.testing.assert_array_equal(gray.tile(3), rgba_of_gray(arrays[3][..., 0]))


def test_images_of_other_sizes_keep_their_aspect_ratio_in_the_tile():
    wide = Image.new("RGB", (4, 2), (255, 0, 0))
    tall = Image.new("RGB", (2, 4), (0, 0, 255))
    small = Image.new("L", (2, 2), 9)
    sprite = build_sprite([wide, tall, small], image_size=(4, 4))
    assert sprite.tile_size == (4, 4)
    t0, t1, t2 = (sprite.tile(i) for i in range(3))
    np.testing.assert_array_equal(t0[1:3], opaque(np.broadcast_to([255, 0, 0], (2, 4, 3))))
    assert (t0[[0, 3], :, 3] == 0).all()  # letterboxed with transparent rows, not stretched
    np.testing.assert_array_equal(t1[:, 1:3], opaque(np.broadcast_to([0, 0, 255], (4, 2, 3))))
    assert (t1[:, [0, 3], 3] == 0).all()
    np.testing.assert_array_equal(t2, rgba_of_gray(np.full((4, 4), 9)))  # upscaled to fill the tile


# -- options -------------------------------------------------------------------------------
def test_preprocess_function_is_applied_to_each_image_not_the_whole_array():
    data = np.array([[[0, 10], [20, 40]], [[5, 5], [0, 50]]], np.uint8)

    def per_image(image):  # only works on a single (h, w) image, and normalises by its own max
        if image.shape != (2, 2):
            raise ValueError(f"expected one 2x2 image, got {image.shape}")
        return image / image.max()

    sprite = build_sprite(data, image_preprocess_function=per_image)
    np.testing.assert_array_equal(sprite.tile(0)[..., 0], [[0, 64], [128, 255]])
    np.testing.assert_array_equal(sprite.tile(1)[..., 0], [[26, 26], [0, 255]])
    flat = build_sprite(data.reshape(2, 4), (2, 2), lambda row: row.reshape(2, 2)[::-1])  # may reshape rows
    np.testing.assert_array_equal(flat.tile(0)[..., 0], [[20, 40], [0, 10]])


def test_transparent_color_matches_exactly_and_background_fills_per_index():
    gray = np.array([[[0, 1], [255, 0]], [[0, 0], [7, 8]]], np.uint8)
    sprite = build_sprite(gray, image_transparent_color=(0, 0, 0))
    np.testing.assert_array_equal(sprite.tile(0)[..., 3], [[0, 255], [255, 0]])  # 1 is not 0: stays opaque
    np.testing.assert_array_equal(sprite.tile(0)[0, 1], [1, 1, 1, 255])
    np.testing.assert_array_equal(sprite.tile(0)[0, 0], [0, 0, 0, 0])
    colors = {0: (10, 20, 30), 1: (200, 100, 0)}
    filled = build_sprite(gray, None, None, (0, 0, 0), lambda i: colors[i])
    np.testing.assert_array_equal(filled.tile(0), [[[10, 20, 30, 255], [1, 1, 1, 255]],
                                                   [[255, 255, 255, 255], [10, 20, 30, 255]]])
    np.testing.assert_array_equal(filled.tile(1)[0], [[200, 100, 0, 255]] * 2)
    assert (filled.pixels[..., 3] == 255).sum() == 8  # the two empty grid cells stay transparent
    rgb = np.array([[[[10, 20, 30], [10, 20, 31]], [[11, 20, 30], [10, 20, 30]]]], np.uint8)  # (1, 2, 2, 3)
    colored = build_sprite(rgb, image_transparent_color=(10, 20, 30), image_background_color_function=lambda i: (1, 2, 3))
    np.testing.assert_array_equal(colored.tile(0), [[[1, 2, 3, 255], [10, 20, 31, 255]],
                                                    [[11, 20, 30, 255], [1, 2, 3, 255]]])
    non_gray_key = build_sprite(gray, image_transparent_color=(0, 0, 1))  # no gray pixel can match
    assert (non_gray_key.tile(0)[..., 3] == 255).all()


def test_background_fills_rgba_transparency_and_composites_partial_alpha():
    rgba = np.array([[[[100, 100, 100, 0], [200, 0, 0, 255], [200, 0, 0, 51]]]], np.uint8)  # (1, 1, 3, 4)
    plain = build_sprite(rgba, image_channels="last")
    np.testing.assert_array_equal(plain.tile(0), rgba[0])  # RGBA input is kept as given
    filled = build_sprite(rgba, image_background_color_function=lambda i: (0, 0, 255), image_channels="last")
    # 51/255 = 0.2 of red over blue: (40, 0, 204)
    np.testing.assert_array_equal(filled.tile(0), [[[0, 0, 255, 255], [200, 0, 0, 255], [40, 0, 204, 255]]])
    opaque_gray = build_sprite(np.full((1, 2, 2), 0.5), image_background_color_function=lambda i: (9, 9, 9))
    np.testing.assert_array_equal(opaque_gray.tile(0), rgba_of_gray(np.full((2, 2), 128)))


def test_comet_digits_recipe_with_all_three_options():
    rng = np.random.default_rng(3)
    images = rng.random((20, 8 * 8)).astype(np.float32)
    labels = rng.integers(0, 3, 20)
    palette = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    sprite = build_sprite(images, (8, 8), lambda m: np.round(m, 0), (0, 0, 0), lambda i: palette[labels[i]])
    for i in range(20):
        on = np.round(images[i]).reshape(8, 8) == 1
        tile = sprite.tile(i)
        assert (tile[on] == [255, 255, 255, 255]).all()
        assert (tile[~on] == list(palette[labels[i]]) + [255]).all()


# -- layout, tile mapping and the 8192 limit -------------------------------------------------
def numbered_tiles(n, w, h):
    """Tile i: red/green encode i, blue a position pattern (to catch flips and transposes)."""
    tiles = np.zeros((n, h, w, 3), np.uint8)
    index = np.arange(n)
    tiles[..., 0] = (index % 256)[:, None, None]
    tiles[..., 1] = (index // 256)[:, None, None]
    tiles[..., 2] = (np.arange(h)[:, None] * 16 + np.arange(w)[None, :]) % 256
    return tiles


def decode(sprite, i):
    tile = sprite.tile(i)
    red, green = tile[..., 0], tile[..., 1]
    if not ((red == red.flat[0]).all() and (green == green.flat[0]).all()):
        return None
    return int(red.flat[0]) + 256 * int(green.flat[0])


@pytest.mark.parametrize("n", [1, 2, 7, 64, 101, 300])
@pytest.mark.parametrize("w,h", [(4, 4), (3, 5), (7, 2)])
def test_tile_i_decodes_back_to_i(n, w, h):
    tiles = numbered_tiles(n, w, h)
    sprite = build_sprite(tiles, image_channels="last")
    cols, rows = sprite.grid
    assert cols * rows >= n > cols * (rows - 1)
    assert sprite.pixels.shape == (rows * h, cols * w, 4)
    png = Image.open(io.BytesIO(sprite.to_png()))
    assert png.mode == "RGBA"
    np.testing.assert_array_equal(np.asarray(png), sprite.pixels)
    for i in range(n):
        x0, y0, x1, y1 = tile_box(i, sprite.tile_size, sprite.grid)
        assert (x0, y0) == ((i % cols) * w, (i // cols) * h)  # row-major
        assert decode(sprite, i) == i
        np.testing.assert_array_equal(sprite.tile(i)[..., 2], tiles[i, ..., 2])
    assert (sprite.pixels[(rows - 1) * h:, (n - (rows - 1) * cols) * w:] == 0).all()  # empty cells transparent
    assert 0.4 < (cols * w) / (rows * h) < 2.5 or n < 4  # near-square sheet whatever the tile shape


@pytest.mark.parametrize("n,w,h", [(101, 4, 4), (50, 3, 6), (30, 9, 2)])
def test_downscaled_tiles_still_decode_and_keep_aspect(n, w, h):
    tiles = numbered_tiles(n, w, h)
    tiles[..., 2] = 77
    with pytest.warns(UserWarning, match=r"over the 20 px limit; tiles downscaled to \d+x\d+ px"):
        sprite = build_sprite(tiles, max_side=20, image_channels="last")
    tw, th = sprite.tile_size
    cols, rows = sprite.grid
    assert cols * tw <= 20 and rows * th <= 20 and tw <= w and th <= h
    assert abs(tw / th - w / h) <= max(1 / th, 1 / tw) * w / h + 1e-9 or min(tw, th) == 1
    for i in range(n):
        assert decode(sprite, i) == i  # box filtering never mixes neighbouring tiles


def test_sprite_stays_within_8192_px_with_a_warning_naming_the_new_tile_size():
    tiles = np.zeros((3, 9000, 12, 3), np.uint8)  # tall tiles: three of them cannot fit
    tiles[1] = 128
    tiles[2, :, :, 0] = 255
    with pytest.warns(UserWarning, match=r"over the 8192 px limit; tiles downscaled to 10x8192 px"):
        sprite = build_sprite(tiles)
    assert sprite.pixels.shape[0] <= MAX_SPRITE_SIDE and sprite.pixels.shape[1] <= MAX_SPRITE_SIDE
    assert sprite.tile_size == (10, 8192) and sprite.image_size == (12, 9000) and sprite.grid == (3, 1)
    np.testing.assert_array_equal(np.unique(sprite.tile(1)[..., :3]), [128])
    assert (sprite.tile(2)[..., 0] == 255).all() and (sprite.tile(2)[..., 1] == 0).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build_sprite(np.zeros((1, 8192, 8, 1), np.uint8))  # exactly at the limit: no warning


def test_too_many_images_for_the_limit_is_an_error():
    with pytest.raises(InvalidArgumentError, match=r"image_data has 26 images of 1x1 px, too many for a 5x5 px sprite"):
        build_sprite(np.zeros((26, 1, 1), np.uint8), max_side=5)


# -- errors ----------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs,message", [
    (dict(image_data=np.zeros((3, 4)), n=4), r"image_data has 3 images but vectors has 4"),
    (dict(image_data=np.zeros((3, 10)), image_size=(3, 3)),
     r"image_size=\(3, 3\) needs rows of 9 \(grayscale\), 27 \(RGB\) or 36 \(RGBA\) values; image_data has shape \(3, 10\)"),
    (dict(image_data=np.zeros((3, 16))), r"image_size=\(width, height\) is required for flat image rows.*e\.g\. image_size=\(4, 4\)"),
    (dict(image_data=np.zeros((3, 4, 5)), image_size=(4, 5)),
     r"image_size=\(4, 5\) does not match image_data of shape \(3, 4, 5\), whose images are \(width, height\) = \(5, 4\)"),
    (dict(image_data=np.zeros((3, 4, 5, 3)), image_size=(4, 4)), r"image_size=\(4, 4\) does not match image_data of shape \(3, 4, 5, 3\)"),
    (dict(image_data=np.zeros((3, 5, 5, 6))), r"shape \(3, 5, 5, 6\) has no channel axis of size 1, 3 or 4"),
    (dict(image_data=np.zeros((3, 4, 5)), image_size=(4, 5.0)), r"image_size must be \(width, height\), two positive ints; got tuple"),
    (dict(image_data=np.zeros((3, 4, 5)), image_size=(0, 5)), r"image_size must be \(width, height\)"),
    (dict(image_data=np.zeros(5)), r"image_data must be .* got shape \(5,\)"),
    (dict(image_data="nope"), r"image_data must be an array of images.*image_url \(tracker-sprite:<sha256>\)"),
    (dict(image_data=[np.zeros((2, 2)), np.zeros((3, 3))]), r"image_data must be an array of images of one shape"),
    (dict(image_data=np.array([[["a"]]])), r"image_data must hold numbers \(uint8 0-255 or floats 0-1\); got dtype <U1"),
    (dict(image_data=np.zeros((2, 2, 2)), image_channels="middle"), r"image_channels must be 'first', 'last' or None; got 'middle'"),
    (dict(image_data=np.zeros((2, 2, 2, 5)), image_channels="last"), r"image_channels='last' needs the last axis of image_data to be 1, 3 or 4"),
    (dict(image_data=np.zeros((2, 2, 2)), image_preprocess_function=3), r"image_preprocess_function must be callable or None; got int 3"),
])
def test_bad_shapes_sizes_and_types_are_named(kwargs, message):
    with pytest.raises(InvalidArgumentError, match=message):
        build_sprite(**kwargs)


def test_float_scale_follows_comets_rule():
    """Floats all within 0-1 are scaled by 255; floats beyond 1 are already on the 0-255 scale."""
    unit = np.zeros((2, 1, 2), np.float32)
    unit[0, 0, 1] = 1.0
    assert build_sprite(unit).pixels[0, 1, 0] == 255
    comet = np.round(unit, 0) * 2  # Comet's documented preprocess keeps the digits dark
    sprite = build_sprite(comet)
    assert sprite.pixels[0, 1, 0] == 2 and sprite.pixels[0, 0, 0] == 0
    assert build_sprite(np.full((1, 1, 1), 127.6, np.float64)).pixels[0, 0, 0] == 128


def test_values_out_of_range_are_never_clipped():
    data = np.zeros((4, 2, 2), np.float32)
    data[2, 1, 1] = 256.0
    with pytest.raises(InvalidArgumentError, match=r"image_data of dtype float32 must lie in 0-1 \(or 0-255\); image 2 has values in \[0.0, 256.0\]"):
        build_sprite(data)
    data[2, 1, 1] = np.nan
    with pytest.raises(InvalidArgumentError, match=r"image_data image 2 contains NaN"):
        build_sprite(data)
    ints = np.zeros((3, 2, 2), np.int32)
    ints[1, 0, 0] = 256
    with pytest.raises(InvalidArgumentError, match=r"must lie in 0-255; image 1 has values in \[0, 256\]"):
        build_sprite(ints)
    with pytest.raises(InvalidArgumentError, match=r"image_preprocess_function output of dtype float64 must lie in 0-1 \(or 0-255\); image 0"):
        build_sprite(np.zeros((2, 2, 2), np.uint8), image_preprocess_function=lambda im: im - 1.0)


@pytest.mark.parametrize("color", [(0, 0), (0, 0, 256), (0.0, 0, 0), (True, 0, 0), "red", (-1, 0, 0)])
def test_transparent_color_must_be_three_ints(color):
    with pytest.raises(InvalidArgumentError, match=r"image_transparent_color must be three ints \(r, g, b\) in 0-255"):
        build_sprite(np.zeros((2, 2, 2), np.uint8), image_transparent_color=color)


def test_background_function_that_raises_or_returns_junk_names_the_index():
    data = np.zeros((5, 2, 2), np.uint8)

    def fails_at_3(i):
        if i == 3:
            raise KeyError(i)
        return (1, 2, 3)

    with pytest.raises(InvalidArgumentError, match=r"image_background_color_function raised KeyError for index 3"):
        build_sprite(data, image_background_color_function=fails_at_3)
    with pytest.raises(InvalidArgumentError, match=r"image_background_color_function\(4\) result must be three ints .* got tuple \(1, 2, 300\)"):
        build_sprite(data, image_background_color_function=lambda i: (1, 2, 300) if i == 4 else (1, 2, 3))
    with pytest.raises(InvalidArgumentError, match=r"image_background_color_function\(0\) result must be three ints .* got str 'blue'"):
        build_sprite(data, image_background_color_function=lambda i: "blue")


def test_preprocess_function_errors_name_the_image():
    data = np.zeros((4, 3, 3), np.uint8)
    calls = []

    def crops_the_third(image):
        calls.append(image.shape)
        return image[:2] if len(calls) == 3 else image

    with pytest.raises(InvalidArgumentError, match=r"returned \(3, 3\) for image 0 but \(2, 3\) for image 2 \(input shape \(3, 3\)\)"):
        build_sprite(data, image_preprocess_function=crops_the_third)
    with pytest.raises(InvalidArgumentError, match=r"image_preprocess_function raised ZeroDivisionError on image 0 of shape \(3, 3\)"):
        build_sprite(data, image_preprocess_function=lambda im: 1 / 0)


def test_unreadable_files_and_mixed_lists_name_the_index(tmp_path):
    good = tmp_path / "a.png"
    Image.new("L", (2, 2)).save(good)
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(InvalidArgumentError, match=r"image_data\[1\]: cannot read image file .*bad\.png"):
        build_sprite([good, tmp_path / "bad.png"])
    with pytest.raises(InvalidArgumentError, match=r"image_data\[1\] must be a PIL image or an image path like image_data\[0\]; got int 5"):
        build_sprite([good, 5])


# -- Experiment integration ------------------------------------------------------------------
def test_log_embedding_builds_and_stores_the_sprite(runs_root):
    n = 30
    tiles = numbered_tiles(n, 5, 3)
    with Experiment(project_name="p", url=str(runs_root)) as exp:
        exp.log_embedding(np.random.rand(n, 4), list(range(n)), image_data=tiles.reshape(n, -1), image_size=(5, 3))
    emb, = open_run(exp.run_dir).embeddings
    assert emb.sprite.tile_size == [5, 3] and emb.sprite.grid == [5, 6] and emb.sprite.n == n
    assert emb.sprite.format == "png"
    image = Image.open(emb.sprite_path())
    assert image.mode == "RGBA" and image.size == (5 * 5, 6 * 3)
    stored = sprites.Sprite(np.asarray(image), (5, 3), (5, 6), n, (5, 3))
    assert [decode(stored, i) for i in range(n)] == list(range(n))


def test_create_embedding_image_returns_image_and_a_reusable_offline_url(runs_root, monkeypatch):
    n = 12
    images = np.random.default_rng(0).random((n, 6, 4))
    exp = Experiment(project_name="p", url=str(runs_root))
    image, url = exp.create_embedding_image(images, (4, 6), image_transparent_color=(0, 0, 0))
    assert isinstance(image, Image.Image) and image.mode == "RGBA" and image.info["tile_size"] == (4, 6)
    assert url.startswith("tracker-sprite:") and len(url) == len("tracker-sprite:") + 64
    before = blob_files(exp.run_dir)
    assert url.split(":")[1] in before

    def no_rebuild(*args, **kwargs):
        raise AssertionError("an image_url must not rebuild the sprite")

    monkeypatch.setattr(sprites, "build_sprite", no_rebuild)
    exp.log_embedding(np.random.rand(n, 3), list(range(n)), image_data=url, image_size=(4, 6), step=1)
    exp.log_embedding(np.random.rand(n, 3), list(range(n)), image_data=url, step=2)
    pngs = [p for p in (exp.run_dir / "blobs").glob("??/*") if p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"]
    assert [p.name for p in pngs] == [url.split(":")[1]]  # stored once, never again
    exp.end()
    embeddings = open_run(exp.run_dir).embeddings
    assert [e.sprite.sha256 for e in embeddings] == [url.split(":")[1]] * 2
    np.testing.assert_array_equal(np.asarray(Image.open(embeddings[0].sprite_path())), np.asarray(image))


def test_image_url_works_in_another_experiment_and_a_resumed_run(runs_root):
    images = np.zeros((4, 2, 2), np.uint8)
    first = Experiment(project_name="p", url=str(runs_root))
    _, url = first.create_embedding_image(images)
    first.log_embedding(np.random.rand(4, 2), [0, 1, 2, 3], image_data=url)
    first.end()
    with Experiment(project_name="q", url=str(runs_root)) as second:  # blob copied into the other run
        second.log_embedding(np.random.rand(4, 2), [0, 1, 2, 3], image_data=url)
    assert open_run(second.run_dir).embeddings[0].sprite_path().is_file()
    sprites._STORED.clear()  # as in a new process: the run's own journal names the sprite
    with Experiment(project_name="p", url=str(runs_root), experiment_key=first.run_id) as resumed:
        resumed.log_embedding(np.random.rand(4, 2), [0, 1, 2, 3], image_data=url, image_size=(2, 2))
    assert len({e.sprite.sha256 for e in open_run(first.run_dir).embeddings}) == 1


def test_image_url_errors_and_nothing_written_on_bad_images(runs_root):
    exp = Experiment(project_name="p", url=str(runs_root))
    _, url = exp.create_embedding_image(np.zeros((4, 3, 2), np.uint8))
    blobs = blob_files(exp.run_dir)
    records = len(open_run(exp.run_dir).records)
    vectors = np.random.rand(5, 2)
    with pytest.raises(InvalidArgumentError, match=r"is a sprite of 4 images but vectors has 5"):
        exp.log_embedding(vectors, list(range(5)), image_data=url)
    with pytest.raises(InvalidArgumentError, match=r"image_size=\(3, 3\) does not match the sprite"):
        exp.log_embedding(vectors[:4], list(range(4)), image_data=url, image_size=(3, 3))
    with pytest.raises(InvalidArgumentError, match=r"cannot change a sprite given as an image_url"):
        exp.log_embedding(vectors[:4], list(range(4)), image_data=url, image_transparent_color=(0, 0, 0))
    with pytest.raises(InvalidArgumentError, match=r"names no sprite made by create_embedding_image"):
        exp.log_embedding(vectors[:4], list(range(4)), image_data="tracker-sprite:" + "0" * 64)
    with pytest.raises(InvalidArgumentError, match=r"image_data has 4 images but vectors has 5"):
        exp.log_embedding(vectors, list(range(5)), image_data=np.zeros((4, 3, 3)))

    def fails_at_2(i):
        if i == 2:
            raise ValueError("no colour")
        return (0, 0, 0)

    with pytest.raises(InvalidArgumentError, match=r"image_background_color_function raised ValueError for index 2"):
        exp.log_embedding(vectors, list(range(5)), image_data=np.zeros((5, 3, 3)),
                          image_background_color_function=fails_at_2)
    with pytest.raises(InvalidArgumentError, match=r"apply to image_data, but image_data is None"):
        exp.log_embedding(vectors, list(range(5)), image_transparent_color=(0, 0, 0))
    assert blob_files(exp.run_dir) == blobs and len(open_run(exp.run_dir).records) == records
    exp.end()


def test_module_function_returns_pil_image_with_layout():
    image = create_embedding_image(np.ones((5, 2, 3)), image_background_color_function=lambda i: (0, 0, 0))
    assert image.mode == "RGBA" and image.size == (2 * 3, 3 * 2)
    assert image.info["grid"] == (2, 3) and image.info["tile_size"] == (3, 2) and image.info["n"] == 5
