"""Every code block of README.md and docs/*.md runs, so no snippet in the documentation can rot.

Each fenced ```python block is written to a file outside the repository and run by the venv's
Python in a subprocess; each ```bash block runs under ``bash -euo pipefail``. One test per
block, named ``file:line``. The blocks of one document share one temporary working directory
and run in document order, so a ```bash block may use the runs that the Python blocks above
it logged (``tracker ls``, ``tracker analyze tracker-runs/<project>/*``), as a reader following
the page would; each Python block still imports what it uses. ``TRACKER_URL`` and
``TRACKER_DIR`` point at ``<tmp>/tracker-runs`` (what ``./tracker-runs`` means there), and
``TRACKER_REDUCE_KEEP_WARM=0`` keeps the blocks from leaving a warm worker behind.

Blocks that must not run (output, shell sessions, long-running servers) are fenced
```console or ```text; a fence without a language is an error, so nothing is skipped by
accident.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
RUNNERS = {"python": "python", "py": "python", "bash": "bash", "sh": "bash", "shell": "bash"}
NOT_RUN = {"console", "text", "json", "toml", "ini", "yaml", "diff", "http", "csv", "tsv"}
BLOCK_TIMEOUT_S = 120          # generous: a first run on a fresh machine compiles numba code
FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")


@dataclass(frozen=True)
class Block:
    path: Path
    line: int          # 1-based line of the opening fence
    language: str      # the fence's first word, lower case ("" when missing)
    code: str

    @property
    def id(self) -> str:
        return f"{_shown(self.path)}:{self.line}"


def _shown(path: Path) -> str:
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else path.name


def parse_blocks(path: Path) -> list[Block]:
    """The fenced blocks of one Markdown file, in order (CommonMark fences, indentation removed)."""
    blocks, lines, i = [], path.read_text(encoding="utf-8").splitlines(), 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        indent, fence = len(match["indent"]), match["fence"]
        start, body, i = i, [], i + 1
        while i < len(lines) and not re.match(rf"^ *{re.escape(fence[0])}{{{len(fence)},}}\s*$", lines[i]):
            body.append(lines[i][indent:] if lines[i][:indent].strip() == "" else lines[i])
            i += 1
        if i >= len(lines):
            raise ValueError(f"{_shown(path)}:{start + 1}: code fence is never closed")
        info = match["info"].strip().split()
        blocks.append(Block(path, start + 1, info[0].lower() if info else "", "\n".join(body) + "\n"))
        i += 1
    return blocks


ALL_BLOCKS = [block for path in DOCS for block in parse_blocks(path)]
RUNNABLE = [block for block in ALL_BLOCKS if block.language in RUNNERS]


def _environment(workdir: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKER_") and k != "PYTHONPATH"}
    runs = str(workdir / "tracker-runs")
    env.update(TRACKER_URL=runs, TRACKER_DIR=runs, TRACKER_REDUCE_KEEP_WARM="0", MPLBACKEND="Agg",
               PYTHONDONTWRITEBYTECODE="1",
               # `tracker` and `python` resolve to this environment's, as after activating the venv
               PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]))
    return env


@dataclass
class Outcome:
    returncode: int
    output: str
    seconds: float


class DocumentRunner:
    """Runs the blocks of one document in order, each at most once, in one working directory."""

    def __init__(self, path: Path, workdir: Path, scripts: Path):
        self.blocks = [b for b in RUNNABLE if b.path == path]
        self.workdir, self.scripts = workdir, scripts
        self.outcomes: dict[int, Outcome] = {}

    def run_through(self, block: Block) -> Outcome:
        for earlier in self.blocks[:self.blocks.index(block) + 1]:
            if earlier.line not in self.outcomes:
                self.outcomes[earlier.line] = self._run(earlier)
        return self.outcomes[block.line]

    def _run(self, block: Block) -> Outcome:
        if RUNNERS[block.language] == "python":
            # outside the repository and outside the working directory: nothing of the
            # checkout is importable unless it is installed
            script = self.scripts / f"block_{block.line}.py"
            script.write_text(block.code, encoding="utf-8")
            command = [sys.executable, str(script)]
        else:
            command = ["bash", "-euo", "pipefail", "-c", block.code]
        start = time.perf_counter()
        try:
            done = subprocess.run(command, check=False, cwd=self.workdir, env=_environment(self.workdir),
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True, timeout=BLOCK_TIMEOUT_S)
            return Outcome(done.returncode, done.stdout, time.perf_counter() - start)
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
            return Outcome(-1, out + f"\n[timed out after {BLOCK_TIMEOUT_S} s]", time.perf_counter() - start)


@pytest.fixture(scope="session")
def block_outcomes(request, tmp_path_factory):
    """Start every selected block, the documents two at a time (the blocks are mostly one
    process on one core each); a test waits only for the chain of its own document."""
    selected = [item.callspec.params["block"] for item in request.session.items
                if getattr(item, "callspec", None) is not None and isinstance(item.callspec.params.get("block"), Block)]
    last = {}
    for block in selected:
        last[block.path] = max(last.get(block.path, block), block, key=lambda b: b.line)
    pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="docs-blocks")
    futures = {}
    for path, block in sorted(last.items(), key=lambda item: -len([b for b in RUNNABLE if b.path == item[0]])):
        runner = DocumentRunner(path, tmp_path_factory.mktemp(f"doc-{path.stem}"),
                                tmp_path_factory.mktemp(f"scripts-{path.stem}"))
        futures[path] = (runner, pool.submit(runner.run_through, block))
    yield futures
    pool.shutdown(wait=True, cancel_futures=True)


@pytest.mark.parametrize("block", RUNNABLE, ids=[b.id for b in RUNNABLE])
def test_block_runs(block, block_outcomes):
    runner, chain = block_outcomes[block.path]
    chain.result()                          # the document's blocks up to its last selected one
    outcome = runner.outcomes[block.line]
    assert outcome.returncode == 0, (
        f"{block.id} ({block.language}) exited {outcome.returncode} after {outcome.seconds:.1f} s:\n"
        f"{block.code}\n--- output ---\n{outcome.output[-4000:]}")
    assert outcome.seconds < BLOCK_TIMEOUT_S


def test_every_block_says_what_it_is():
    """An unlabelled fence would be neither run nor clearly marked as output."""
    unknown = [f"{b.id} ({b.language or 'no language'})" for b in ALL_BLOCKS
               if b.language not in RUNNERS and b.language not in NOT_RUN]
    assert not unknown, ("label these fences python/bash (run by this test) or console/text (not run): "
                         + ", ".join(unknown))


def test_parser_finds_fences_and_their_lines(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# t\n\n```python\nprint(1)\n```\n\n- item\n\n  ```bash\n  tracker ls\n  ```\n\n```\nout\n```\n")
    blocks = parse_blocks(page)
    assert [(b.line, b.language, b.code) for b in blocks] == [
        (3, "python", "print(1)\n"), (9, "bash", "tracker ls\n"), (13, "", "out\n")]
    page.write_text("```python\nprint(1)\n")
    with pytest.raises(ValueError, match=r"page.md:1: code fence is never closed"):
        parse_blocks(page)
