"""Every performance figure in README.md and docs/*.md comes from a benchmark results file.

Figures live only inside ``<!-- bench:NAME:start/end -->`` blocks, which
``benchmarks/report.py`` generates from ``benchmarks/results/*.json``; the blocks must be up
to date, and outside them (and outside code samples) no line about speed, memory or cost
may state a number with a unit of speed (×, x, s, ms, MB/s, ...) or a percentage.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("bench_report", REPO / "benchmarks" / "report.py")
report = importlib.util.module_from_spec(spec)
spec.loader.exec_module(report)

NUMBER = r"(?<![\w.])\d[\d,]*(?:\.\d+)?"
#: a multiplier (not a dimension such as 28x28 or 100k × 512), a time, a rate, a percentage
FIGURE = re.compile(NUMBER + r"\s?(?:[×x](?!\s?\d)(?![\w])|(?:s|ms|µs|us|min)\b|(?:[KMG]i?B/s)\b|%)")
#: words that make a figure a performance claim (a timeout or a zoom factor is not one)
PERFORMANCE = re.compile(r"faster|slower|speed|throughput|latency|overhead|\bcosts?\b|takes|took|median"
                         r"|np\.save|fsync|\bRSS\b|per second|benchmark|measured|\bvs\b|against", re.I)
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
INLINE_CODE = re.compile(r"`[^`\n]*`")


def figures_outside_blocks(text: str) -> list[str]:
    """Lines, outside generated blocks and code samples, that state a performance figure."""
    text = FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), report.BLOCK.sub("", text))
    lines = [INLINE_CODE.sub("`code`", line) for line in text.splitlines()]  # sample output is not a claim
    return [f"{number}: {line.strip()[:120]}" for number, line in enumerate(lines, 1)
            if FIGURE.search(line) and PERFORMANCE.search(line)]


@pytest.mark.parametrize("line, is_figure", [
    ("log_embedding is 3.2x faster than np.save", True),
    ("it takes 0.91 s on two cores", True),
    ("the PCA runs at 25.9× the speed", True),
    ("sync reached 129% of a raw PUT's throughput", True),
    ("an empty end() takes 350 ms", True),
    ("upload throughput: 500 MB/s", True),
    ("waits when longer than 60 s; for example `took 12.2 s, 3x faster`", False),
    ("28x28 images, 100k × 512 vectors, 10k x 784", False),
    ("a 0x1F byte, 3 steps, version 2.0", False),
    ("80% of the points are train in this split", False),
    ("retries wait up to 60 s; the viewer zooms in 4×", False),
    ("```text\nupload: 47.5MB/s, faster than before\n```", False),
    ("<!-- bench:x:start -->\n3x faster\n<!-- bench:x:end -->", False),
])
def test_the_detector(line, is_figure):
    assert bool(figures_outside_blocks(line)) is is_figure


def test_generated_blocks_match_the_results_files(capsys):
    assert report.main(["--check"]) == 0, capsys.readouterr().out


@pytest.mark.parametrize("path", report.doc_files(), ids=lambda p: p.name)
def test_no_figure_outside_generated_blocks(path):
    if not path.exists():
        pytest.skip(f"{path.name} does not exist")
    found = figures_outside_blocks(path.read_text())
    assert not found, (f"{path.relative_to(REPO)} states performance figures outside the generated bench: blocks "
                       "(move them into a benchmark results file and a block, see docs/benchmarks.md):\n"
                       + "\n".join(found))
