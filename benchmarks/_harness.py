"""The one way every benchmark here times and compares: interleaved, rotated, repeated, recorded.

A comparison runs each candidate (the baseline included) ``repeat`` times in this one
process, one round at a time, with the order of the candidates rotated every round, so a
busy moment of a shared machine falls on every side alike. Each candidate gets one untimed
warm-up run first (imports, page faults, compiled code paths), then the same number of timed
runs as the baseline. The summary is min, median and max seconds per candidate and the ratio
of its median (and min) to the baseline's.

Results go to ``benchmarks/results/<name>.json`` with what it takes to judge them: core
count, load average before and after, Python and package versions, the command line and
every raw timing. ``benchmarks/report.py`` turns those files into the tables in the docs.

    bench = Bench("sprites", __doc__)
    args = bench.parse()                      # --repeat N (default 5), --quick, --out
    bench.compare("10k", {"ours": fn, "loop": fn2}, baseline="loop", target=Target("loop", speedup=10))
    bench.save()
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import json
import os
import platform
import subprocess
import shlex
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

RESULTS = Path(__file__).resolve().parent / "results"
REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as `python benchmarks/x.py` from anywhere
    sys.path.insert(0, str(REPO))

#: tag of the results files this harness writes (benchmarks/report.py reads only these)
FORMAT = "tracker-bench-results/1"
#: versions recorded in every results file (those not installed are left out)
PACKAGES = ("tracker_sdk", "numpy", "scipy", "scikit-learn", "Pillow", "msgpack", "torch", "tensorboard",
            "threadpoolctl")


@dataclass(frozen=True)
class Candidate:
    """A timed callable with untimed per-run ``setup`` (its result is ``fn``'s argument) and ``teardown``."""

    fn: Callable
    setup: Callable[[], Any] | None = None
    teardown: Callable[[Any], None] | None = None
    #: ``fn`` returns the seconds to record itself (work timed inside a child process, say)
    reports_seconds: bool = False

    def once(self) -> float:
        arg = self.setup() if self.setup is not None else None
        gc.collect()
        start = time.perf_counter()
        result = self.fn(arg) if self.setup is not None else self.fn()
        seconds = result if self.reports_seconds else time.perf_counter() - start
        if self.teardown is not None:
            self.teardown(arg if self.setup is not None else result)
        del result
        return seconds


@dataclass(frozen=True)
class Target:
    """A stated goal for ``candidate``'s median: at most ``ratio`` x the baseline's, at least
    ``speedup`` x faster than it, or at most ``seconds``."""

    candidate: str
    ratio: float | None = None
    speedup: float | None = None
    seconds: float | None = None

    def describe(self) -> str:
        if self.ratio is not None:
            return f"<= {self.ratio:g}x baseline"
        if self.speedup is not None:
            return f">= {self.speedup:g}x faster than baseline"
        return f"<= {self.seconds:g} s"

    def met(self, ratio_median: float, median_s: float) -> bool:
        if self.ratio is not None:
            return ratio_median <= self.ratio
        if self.speedup is not None:
            return ratio_median > 0 and 1 / ratio_median >= self.speedup
        return median_s <= self.seconds


def stop_process(proc, grace_s: float = 30) -> None:
    """Stop a server a benchmark started: SIGTERM, then SIGKILL after ``grace_s`` (none outlives it)."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def summarize(times: list[float]) -> dict:
    return {"min": min(times), "median": statistics.median(times), "max": max(times), "times": list(times)}


def machine() -> dict:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return {"cpu_count": os.cpu_count(), "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "platform": platform.platform(), "processor": platform.machine(), "python": platform.python_version(),
            "packages": versions}


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class Bench:
    """One benchmark script's comparisons and its results file."""

    def __init__(self, name: str, description: str):
        self.name = name
        self.parser = argparse.ArgumentParser(description=description.splitlines()[0] if description else name)
        self.parser.add_argument("--repeat", type=int, default=5, help="timed runs per candidate (default 5)")
        self.parser.add_argument("--quick", action="store_true", help="smaller sizes, for `make bench QUICK=1`")
        self.parser.add_argument("--out", type=Path, default=None,
                                 help=f"results file (default benchmarks/results/{name}.json)")
        self.parser.add_argument("--no-save", action="store_true", help="print only; leave the results file alone")
        self.args = None
        self.cases: list[dict] = []
        self.notes: dict = {}
        self.load_before = os.getloadavg()
        self.started = time.time()

    def parse(self, argv=None):
        self.args = self.parser.parse_args(argv)
        if self.args.repeat < 1:
            self.parser.error(f"--repeat must be at least 1; got {self.args.repeat}")
        return self.args

    @property
    def repeat(self) -> int:
        return self.args.repeat if self.args is not None else 5

    def compare(self, case: str, candidates: dict[str, Callable | Candidate], *, baseline: str,
                target: Target | None = None, warmup: int = 1, repeat: int | None = None, **extra) -> dict:
        """Time every candidate ``repeat`` times, interleaved and rotated; record and print the summary."""
        if baseline not in candidates:
            raise ValueError(f"baseline {baseline!r} is not one of the candidates {list(candidates)}")
        runs = {name: c if isinstance(c, Candidate) else Candidate(c) for name, c in candidates.items()}
        names = list(runs)
        repeat = repeat or self.repeat
        _progress(f"[{self.name}] {case}: {', '.join(names)}; {warmup} warm-up + {repeat} interleaved runs each")
        for _ in range(warmup):
            for name in names:
                runs[name].once()
        times = {name: [] for name in names}
        for round_ in range(repeat):
            order = names[round_ % len(names):] + names[:round_ % len(names)]
            for name in order:
                times[name].append(runs[name].once())
            _progress(f"[{self.name}] {case}: round {round_ + 1}/{repeat} " +
                      " ".join(f"{n}={times[n][-1]:.3f}s" for n in order))
        stats = {name: summarize(t) for name, t in times.items()}
        base = stats[baseline]
        ratios = {name: {"median": s["median"] / base["median"], "min": s["min"] / base["min"]}
                  for name, s in stats.items() if name != baseline}
        result = {"case": case, "baseline": baseline, "order": names, "repeat": repeat, "warmup": warmup,
                  "candidates": stats, "ratios": ratios, "extra": extra}
        if target is not None:
            r = ratios[target.candidate]["median"] if target.candidate != baseline else 1.0
            result["target"] = {"candidate": target.candidate, "ratio": target.ratio, "speedup": target.speedup,
                                "seconds": target.seconds, "describe": target.describe(),
                                "met": target.met(r, stats[target.candidate]["median"])}
        self.cases.append(result)
        self._print(result)
        return result

    def note(self, key: str, value) -> None:
        """Record a non-timing fact (a quality check, a size) next to the timings."""
        self.notes[key] = value

    @staticmethod
    def _print(result: dict) -> None:
        base = result["baseline"]
        print(f"\n{result['case']} (baseline {base}, {result['repeat']} interleaved runs each)")
        for name, s in result["candidates"].items():
            ratio = "" if name == base else (f"  ratio median {result['ratios'][name]['median']:.2f}x"
                                             f" (min {result['ratios'][name]['min']:.2f}x)")
            print(f"  {name:<28} min {s['min']:.4f}s  median {s['median']:.4f}s  max {s['max']:.4f}s{ratio}")
        if "target" in result:
            t = result["target"]
            print(f"  target {t['candidate']} {t['describe']}: {'met' if t['met'] else 'NOT met'}")
        for key, value in result["extra"].items():
            print(f"  {key}: {value}")

    def save(self) -> Path | None:
        if self.args is not None and self.args.no_save:
            return None
        path = self.args.out if self.args is not None and self.args.out else RESULTS / f"{self.name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        command = "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(sys.argv[0], REPO)] + sys.argv[1:])
        data = {"format": FORMAT, "name": self.name, "command": command, "argv": sys.argv, "started": self.started,
                "seconds": time.time() - self.started, "repeat": self.repeat,
                "quick": bool(self.args.quick) if self.args is not None else False,
                "machine": dict(machine(), loadavg_before=list(self.load_before), loadavg_after=list(os.getloadavg())),
                "cases": self.cases, "notes": self.notes}
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n")
        os.replace(tmp, path)
        print(f"\nresults written to {os.path.relpath(path, REPO)}")
        return path
