"""SIGKILL a logging process at random moments: the run always opens and nothing completed is lost."""

import os
import random
import signal
import subprocess
import sys
import textwrap
import time


from tracker_sdk import open_run

CHILD = textwrap.dedent("""
    import sys
    import numpy as np
    from tracker_sdk import Experiment
    exp = Experiment(project_name="crash", url=sys.argv[1])
    print("RUN", exp.run_dir, flush=True)
    rng = np.random.default_rng(int(sys.argv[2]))
    for i in range(10_000):
        exp.log_metric("loss", float(i), step=i)
        if i % 5 == 0:
            n = int(rng.integers(1, 3000))
            h = exp.log_embedding(rng.normal(size=(n, 64)), [str(j) for j in range(n)], title="t", step=i)
            print("DONE", h.id, flush=True)
""")

KILLS = 50


def test_sigkill_at_random_moments_never_loses_or_tears_an_embedding(tmp_path):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    rng = random.Random(1234)
    outcomes = []
    for attempt in range(KILLS):
        root = tmp_path / f"root{attempt}"
        child = subprocess.Popen([sys.executable, str(script), str(root), str(attempt)],
                                 stdout=subprocess.PIPE, text=True)
        first = child.stdout.readline()
        assert first.startswith("RUN "), first
        time.sleep(rng.uniform(0.0, 0.4))
        os.kill(child.pid, signal.SIGKILL)
        rest, _ = child.communicate()
        completed = [line.split()[1] for line in rest.splitlines() if line.startswith("DONE ")]
        run = open_run(first.split(maxsplit=1)[1].strip())
        visible = {e.id for e in run.embeddings}
        assert set(completed) <= visible, f"attempt {attempt}: completed embeddings missing"
        run.verify()  # every visible embedding's blobs are whole (sha256 re-hashed)
        for emb in run.embeddings:
            assert emb.vectors.shape == (emb.n, 64) and len(emb.columns["label"]) == emb.n
        seqs = [r.seq for r in run.records]
        assert seqs == list(range(len(seqs)))
        outcomes.append(len(visible))
    assert sum(1 for n in outcomes if n > 0) > KILLS // 4, "kills should land after some embeddings were logged"
