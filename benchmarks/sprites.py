"""Sprite building speed and memory against a straightforward per-image Pillow loop.

Cases (28x28 grayscale digits made from scikit-learn's bundled ``load_digits``):
  10k  float images in 0-1 with all three Comet options (round, transparent black, background per label)
  100k uint8 images, no options (the sheet must downscale to stay within 8192 px)

Each case runs in its own process so peak RSS is its own. Build time excludes PNG encoding,
which is timed separately; the PNG compression levels are compared on the 10k sheet.

    .venv/bin/python benchmarks/sprites.py            # everything (about a minute on 2 cores)
    .venv/bin/python benchmarks/sprites.py --quick    # 10k case only
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import warnings

import numpy as np

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


def best_of(fn, repeat, cpu=None):
    """Best wall time of ``repeat`` runs (and, into ``cpu``, the best CPU time: robust to a busy machine)."""
    times, cpus = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = fn()
        times.append(time.perf_counter() - start)
        cpus.append(time.process_time() - start_cpu)
    if cpu is not None:
        cpu.append(min(cpus))
    return min(times), result


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_case(case: str) -> dict:
    """One case in this process: build time, encode time, peak RSS, ratio to the Pillow loop."""
    from tracker_sdk.sprites import PNG_COMPRESS_LEVEL, build_sprite
    warnings.simplefilter("ignore")
    n = 10_000 if case == "10k" else 100_000
    images, labels = digits(n, as_float=case == "10k")
    opts = options(labels) if case == "10k" else {}
    rss_data = rss_mb()
    cpu = []
    build_s, sprite = best_of(lambda: build_sprite(images, **opts), 5 if case == "10k" else 1, cpu)
    rss_build = rss_mb()
    encode_s, png = best_of(lambda: sprite.to_png(), 1, cpu)
    loop_s, sheet = best_of(lambda: pillow_loop(images, sprite.tile_size[0], opts.get("image_preprocess_function"),
                                                opts.get("image_transparent_color"),
                                                opts.get("image_background_color_function")), 1, cpu)
    same = sprite.grid == tuple(int(v) for v in (np.ceil(np.sqrt(n)), np.ceil(n / np.ceil(np.sqrt(n)))))
    result = {"case": case, "n": n, "tile": list(sprite.tile_size), "grid": list(sprite.grid), "build_s": build_s,
              "build_cpu_s": cpu[0], "encode_cpu_s": cpu[1], "loop_cpu_s": cpu[2], "encode_s": encode_s, "png_mb": len(png) / 1e6, "level": PNG_COMPRESS_LEVEL, "loop_s": loop_s,
              "rss_data_mb": rss_data, "rss_peak_mb": rss_build}
    if same:  # same layout as the loop: the sheets must agree pixel for pixel
        result["identical_to_loop"] = bool((np.asarray(sheet) == sprite.pixels).all())
    if case == "10k":
        levels = {}
        for level in (0, 1, 3, 6, 9):
            seconds, data = best_of(lambda: sprite.to_png(level), 1)
            levels[level] = (seconds, len(data) / 1e6)
        result["levels"] = levels
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=["10k", "100k"], help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="only the 10k case")
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case)))
        return
    results = []
    for case in ["10k"] if args.quick else ["10k", "100k"]:
        out = subprocess.run([sys.executable, __file__, "--case", case], check=True, capture_output=True, text=True)
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print("Wall seconds, and CPU seconds in brackets (steadier when the machine is shared).\n")
    print("| case | tile | build (s) | per-image Pillow loop (s) | speed-up | PNG encode (s) | PNG (MB) | peak RSS (MB) | RSS before build (MB) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        name = "10k 28x28, all three options" if r["case"] == "10k" else "100k 28x28, no options"
        print(f"| {name} | {r['tile'][0]}x{r['tile'][1]} | {r['build_s']:.3f} ({r['build_cpu_s']:.3f}) | "
              f"{r['loop_s']:.2f} ({r['loop_cpu_s']:.2f}) | {r['loop_s'] / r['build_s']:.0f}x "
              f"({r['loop_cpu_s'] / r['build_cpu_s']:.0f}x) | {r['encode_s']:.2f} ({r['encode_cpu_s']:.2f}) | "
              f"{r['png_mb']:.1f} | {r['rss_peak_mb']:.0f} | {r['rss_data_mb']:.0f} |")
    for r in results:
        if "identical_to_loop" in r:
            print(f"\n{r['case']}: sheet identical to the Pillow loop's: {r['identical_to_loop']}")
    levels = results[0]["levels"]
    base_s, base_mb = levels["6"]
    print("\nPNG compress_level on the 10k sheet (Pillow's default is 6):\n")
    print("| level | encode (s) | size (MB) | time vs 6 | size vs 6 |")
    print("|---|---|---|---|---|")
    for level, (seconds, mb) in levels.items():
        print(f"| {level} | {seconds:.3f} | {mb:.2f} | {seconds / base_s:.2f} | {mb / base_mb:.2f} |")


if __name__ == "__main__":
    main()
