"""Benchmark: sprite building against a straightforward per-image Pillow loop.

Cases (28x28 grayscale digits made from scikit-learn's bundled ``load_digits``):
  10k  float images in 0-1 with all three Comet options (round, transparent black, background
       per label), against the Pillow loop with the same options, interleaved with the same
       repetitions; the two sheets must agree pixel for pixel
  100k uint8 images, no options (the sheet must downscale to stay within 8192 px): build time
       before PNG encoding, against the 0.5 s target

PNG encoding (level ``PNG_COMPRESS_LEVEL``) is timed on its own.

    .venv/bin/python benchmarks/sprites.py            # both cases
    .venv/bin/python benchmarks/sprites.py --quick    # 10k case only
"""

from __future__ import annotations

import warnings

import numpy as np

from _harness import Bench, Target

PALETTE = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
           (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 190)]


def digits(n: int, as_float: bool):
    """(n, 28, 28) images (float32 0-1 or uint8) and labels, from the 1797 bundled 8x8 digits."""
    from PIL import Image
    from sklearn.datasets import load_digits
    data = load_digits()
    big = np.stack([np.asarray(Image.fromarray((im * 16).astype(np.uint8)).resize((28, 28), Image.Resampling.BILINEAR))
                    for im in data.images])
    big = big.astype(np.float32) / 255 if as_float else big
    index = np.random.default_rng(0).integers(0, len(big), n)
    return big[index], data.target[index]


def options(labels):
    return dict(image_preprocess_function=lambda m: np.round(m), image_transparent_color=(0, 0, 0),
                image_background_color_function=lambda i: PALETTE[labels[i]])


def pillow_loop(images, tile, preprocess=None, transparent=None, background=None):
    """The straightforward way: one PIL image per tile, pasted into the sheet."""
    from PIL import Image
    n, h, w = images.shape
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    sheet = Image.new("RGBA", (cols * tile, rows * tile), (0, 0, 0, 0))
    for i, image in enumerate(images):
        if preprocess is not None:
            image = preprocess(image)
        if image.dtype != np.uint8:
            image = (image * 255 + 0.5).astype(np.uint8)
        rgba = np.asarray(Image.fromarray(image, "L").convert("RGBA")).copy()
        if transparent is not None:
            rgba[(rgba[..., :3] == transparent).all(axis=-1), 3] = 0
        im = Image.fromarray(rgba, "RGBA")
        if background is not None:
            im = Image.alpha_composite(Image.new("RGBA", im.size, background(i) + (255,)), im)
        if tile != w:
            im = im.resize((tile, tile), Image.Resampling.BOX)
        sheet.paste(im, ((i % cols) * tile, (i // cols) * tile))
    return sheet


def main() -> None:
    bench = Bench("sprites", __doc__)
    args = bench.parse()
    from tracker_sdk.sprites import PNG_COMPRESS_LEVEL, build_sprite
    warnings.simplefilter("ignore")  # the 100k sheet warns that it downscales

    images, labels = digits(10_000, as_float=True)
    opts = options(labels)
    sprite = build_sprite(images, **opts)
    sheet = pillow_loop(images, sprite.tile_size[0], opts["image_preprocess_function"],
                        opts["image_transparent_color"], opts["image_background_color_function"])
    bench.compare("10k 28x28 float images, three Comet options", {
        "per-image Pillow loop": lambda: pillow_loop(images, sprite.tile_size[0], opts["image_preprocess_function"],
                                                     opts["image_transparent_color"],
                                                     opts["image_background_color_function"]),
        "build_sprite": lambda: build_sprite(images, **opts),
    }, baseline="per-image Pillow loop", target=Target("build_sprite", speedup=10),
        identical_to_loop=bool((np.asarray(sheet) == sprite.pixels).all()))
    bench.compare("10k sheet PNG encoding", {f"to_png({PNG_COMPRESS_LEVEL})": sprite.to_png},
                  baseline=f"to_png({PNG_COMPRESS_LEVEL})", png_mb=round(len(sprite.to_png()) / 1e6, 2))
    if not args.quick:
        images, _ = digits(100_000, as_float=False)
        sprite = build_sprite(images)
        bench.compare("100k 28x28 uint8 images, no options, before PNG encoding",
                      {"build_sprite": lambda: build_sprite(images)}, baseline="build_sprite",
                      target=Target("build_sprite", seconds=0.5), tile=list(sprite.tile_size), grid=list(sprite.grid))
        bench.compare("100k sheet PNG encoding", {f"to_png({PNG_COMPRESS_LEVEL})": sprite.to_png},
                      baseline=f"to_png({PNG_COMPRESS_LEVEL})", png_mb=round(len(sprite.to_png()) / 1e6, 2))
    bench.save()


if __name__ == "__main__":
    main()
