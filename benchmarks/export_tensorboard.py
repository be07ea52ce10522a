"""Benchmark: ``tracker export tensorboard`` of a 100k x 512 embedding with string labels.

Today's exporter (table look-up text, fsync of every file it writes) against the one it
replaced (one ``np.savetxt(fmt="%.9g")`` per 4096 rows, no fsync), run through the same
``export_tensorboard`` on the same logged run, interleaved with the order rotated.

    .venv/bin/python benchmarks/export_tensorboard.py            # 100k x 512
    .venv/bin/python benchmarks/export_tensorboard.py --quick    # 10k x 512
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from _harness import Bench, Candidate, Target


def savetxt_writer(path: Path, vectors: np.ndarray, rows_per_chunk: int = 4096) -> None:
    """The tensor writer before issue 14, kept here as the baseline."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="ascii", newline="\n") as fh:
        for start in range(0, vectors.shape[0], rows_per_chunk):
            np.savetxt(fh, vectors[start:start + rows_per_chunk], fmt="%.9g", delimiter="\t", newline="\n")
    os.replace(tmp, path)


def main() -> None:
    bench = Bench("export_tensorboard", __doc__)
    args = bench.parse()
    from tracker_sdk import Experiment
    from tracker_sdk.export import tensorboard

    n, d = (10_000, 512) if args.quick else (100_000, 512)
    root = Path(tempfile.mkdtemp(prefix="bench-tb-", dir=os.environ.get("BENCH_TMP")))
    try:
        exp = Experiment(project_name="bench", url=str(root / "runs"))
        exp.log_embedding(np.random.default_rng(0).standard_normal((n, d), dtype=np.float32),
                          [f"label-{i % 1000}" for i in range(n)], title="bench", reduce=None)
        exp.end()
        current = tensorboard._write_tensor_tsv

        def export(out, writer):
            tensorboard._write_tensor_tsv = writer
            try:
                tensorboard.export_tensorboard(exp.run_dir, out)
            finally:
                tensorboard._write_tensor_tsv = current

        def scratch():
            return tempfile.mkdtemp(dir=root)

        bench.compare(f"{n:,} x {d} + string labels", {
            "before: np.savetxt, no fsync": Candidate(lambda out: export(out, savetxt_writer), scratch, shutil.rmtree),
            "export_tensorboard": Candidate(lambda out: export(out, current), scratch, shutil.rmtree),
        }, baseline="before: np.savetxt, no fsync", target=Target("export_tensorboard", speedup=3), warmup=0)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    bench.save()


if __name__ == "__main__":
    main()
