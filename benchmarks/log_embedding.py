"""Benchmark: log_embedding + end() until durable, against np.save + fsync of the same vectors.

Both sides write into the same scratch directory (``BENCH_TMP``, default the system temp
dir), interleaved in this one process with the order rotated each round; ``reduce=None``,
so what is timed is making the vectors and their labels durable (string labels, one per
row). ``--default-reduce`` adds a candidate with log_embedding's default 3-D PCA.

    .venv/bin/python benchmarks/log_embedding.py             # 10k x 128, 100k x 512, 1M x 128
    .venv/bin/python benchmarks/log_embedding.py --quick     # 10k x 128, 100k x 128
"""

from __future__ import annotations

import os
import shutil
import tempfile

import numpy as np

from _harness import Bench, Candidate, Target

#: (n, d, target ratio to np.save + fsync) from issue 14
CASES = [(10_000, 128, 3.0), (100_000, 512, 1.3), (1_000_000, 128, 1.5)]
QUICK = [(10_000, 128, 3.0), (100_000, 128, None)]


def main() -> None:
    bench = Bench("log_embedding", __doc__)
    bench.parser.add_argument("--default-reduce", action="store_true",
                              help="also time log_embedding with its default projection (3-D PCA)")
    bench.parser.add_argument("--sizes", nargs="*", help="NxD cases instead of the defaults, e.g. 100000x512")
    args = bench.parse()
    from tracker_sdk import Experiment

    cases = [tuple(map(int, s.split("x"))) + (None,) for s in args.sizes] if args.sizes else QUICK if args.quick else CASES
    root = tempfile.mkdtemp(prefix="bench-log-", dir=os.environ.get("BENCH_TMP"))
    try:
        for n, d, target in cases:
            vectors = np.random.default_rng(0).standard_normal((n, d), dtype=np.float32)
            labels = [f"label-{i % 1000}" for i in range(n)]

            def scratch():
                return tempfile.mkdtemp(dir=root)

            def np_save(tmp):
                with open(os.path.join(tmp, "x.npy"), "wb") as fh:
                    np.save(fh, vectors)
                    fh.flush()
                    os.fsync(fh.fileno())

            def log(tmp, reduce=None):
                exp = Experiment(project_name="bench", url=os.path.join(tmp, "runs"))
                exp.log_embedding(vectors, labels, title="bench", **({} if reduce == "default" else {"reduce": None}))
                exp.end()

            candidates = {
                "np.save+fsync": Candidate(np_save, scratch, shutil.rmtree),
                "log_embedding": Candidate(log, scratch, shutil.rmtree),
            }
            if args.default_reduce:
                candidates["log_embedding default PCA"] = Candidate(lambda tmp: log(tmp, "default"), scratch,
                                                                    shutil.rmtree)
            bench.compare(f"{n:,} x {d} + {n:,} string labels", candidates, baseline="np.save+fsync",
                          target=Target("log_embedding", ratio=target) if target else None,
                          n=n, d=d, array_mb=round(vectors.nbytes / 2**20, 1))

    finally:
        shutil.rmtree(root, ignore_errors=True)
    bench.save()


if __name__ == "__main__":
    main()
