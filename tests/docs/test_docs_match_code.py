"""The documentation says only what the code does: commands and options exist, the signatures
in the API table are the real ones, links lead somewhere, and the README stays short."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

from tracker_sdk import Experiment

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
BIN = Path(sys.executable).parent
README_MAX_LINES = 250


def _shown(path: Path) -> str:
    return str(path.relative_to(REPO))


@cache
def _help(*command: str) -> str:
    done = subprocess.run([str(BIN / command[0]), *command[1:], "--help"], check=False, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, f"{' '.join(command)} --help failed: {done.stderr}"
    return done.stdout


def _subcommands() -> set[str]:
    listing = _help("tracker").split("positional arguments:")[1].split("options:")[0]
    return set(re.findall(r"^\s{4}([a-z][a-z-]*)\s", listing, re.MULTILINE))


def _command_mentions(text: str):
    """(line, command words, options) for every `tracker ...` / `tracker-server ...` in code."""
    spans = []
    for number, line in enumerate(text.splitlines(), 1):
        spans += [(number, s) for s in re.findall(r"`([^`\n]+)`", line)]
    in_block = False
    for number, line in enumerate(text.splitlines(), 1):
        if re.match(r"^\s*(`{3,}|~{3,})", line):
            in_block = not in_block
            continue
        if in_block:
            spans.append((number, line))
    for number, span in spans:
        for match in re.finditer(r"(?:^|[\s\"'(\[$])(tracker(?:-server)?)((?:\s+(?:\\\||[^\s|;&#]+))*)", span):
            words = match[2].split()
            yield number, match[1], words


def _mentions():
    for path in DOCS:
        for number, program, words in _command_mentions(path.read_text(encoding="utf-8")):
            yield f"{_shown(path)}:{number}", program, words


def test_every_documented_command_and_option_exists():
    problems = []
    commands = _subcommands()
    for where, program, words in _mentions():
        if program == "tracker-server":
            command = ("tracker-server",)
        else:
            words = [w for w in words if w not in ("-v", "--verbose")]
            if not words or words[0].startswith("-"):
                continue                      # `tracker --help`, or the word in prose such as "`tracker` commands"
            if not re.fullmatch(r"[a-z][a-z-]*", words[0]):
                continue
            if words[0] not in commands:
                problems.append(f"{where}: `tracker {words[0]}` is not a command (commands: {sorted(commands)})")
                continue
            command = ("tracker", words[0])
        known = set(re.findall(r"(--[a-z][a-z0-9-]*)", _help(*command)))
        for option in [w.strip("[]()").split("=")[0] for w in words if w.strip("[]()").startswith("--")]:
            if option not in known:
                problems.append(f"{where}: `{' '.join(command)}` has no option {option}")
    assert not problems, "\n".join(sorted(set(problems)))


def _api_rows():
    text = (REPO / "docs" / "api.md").read_text(encoding="utf-8")
    for line in text.splitlines():
        cell = line.split("|")[1] if line.startswith("| `") else ""
        yield from re.findall(r"`(?:with )?([A-Za-z_]+)\(([^`]*)\)", cell)


def test_api_table_signatures_are_the_real_ones():
    """Each keyword the API table shows for an Experiment method is a parameter of that method."""
    problems, checked = [], 0
    for name, arguments in _api_rows():
        target = Experiment.__init__ if name in ("Experiment", "OfflineExperiment") else getattr(Experiment, name, None)
        if name == "OfflineExperiment":
            continue                              # documented as Experiment's arguments plus offline_directory
        if target is None:
            problems.append(f"Experiment has no method {name}")
            continue
        parameters = inspect.signature(target).parameters
        documented = [a.strip().split("=")[0].strip() for a in arguments.split(",")]
        for argument in documented:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", argument) or argument in ("self",):
                continue                          # `*`, `...`, `**comet_only`, a placeholder such as dict
            if argument in ("path_or_bytes_or_file", "dict", "collector_or_dict") and argument not in parameters:
                continue                          # a description of the first positional argument
            checked += 1
            if argument not in parameters:
                problems.append(f"{name}: documented argument {argument!r} is not a parameter {list(parameters)}")
    assert checked > 40, f"only {checked} documented arguments found; did the table's format change?"
    assert not problems, "\n".join(problems)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def test_links_lead_to_files_and_headings():
    problems = []
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        prose = re.sub(r"(?ms)^\s*(`{3,}).*?^\s*\1\s*$", "", text)
        for target in re.findall(r"\]\(([^)\s]+)\)", prose):
            if re.match(r"^[a-z]+:", target):
                continue                          # http(s) and mailto
            file_part, _, anchor = target.partition("#")
            linked = (path.parent / file_part).resolve() if file_part else path
            if not linked.exists():
                problems.append(f"{_shown(path)}: link to missing {target}")
            elif anchor and linked.suffix == ".md":
                headings = re.findall(r"^#+\s+(.+)$", linked.read_text(encoding="utf-8"), re.MULTILINE)
                if anchor not in {_slug(h) for h in headings}:
                    problems.append(f"{_shown(path)}: link to {target}, but {linked.name} has no such heading")
    assert not problems, "\n".join(problems)


def test_readme_is_short_and_shows_the_two_commands():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= README_MAX_LINES, "README.md grew past its limit: move details into docs/"
    assert re.search(r"^\$ make demo\b", text, re.MULTILINE) and re.search(r"^\$ make test\b", text, re.MULTILINE)
    for page in ("api", "sprites", "reductions", "capture", "server", "sync", "viewer", "analysis", "export",
                 "comet-migration", "run-format", "benchmarks"):
        assert (REPO / "docs" / f"{page}.md").is_file(), f"docs/{page}.md is missing"

    index = (REPO / "docs" / "README.md").read_text(encoding="utf-8")
    unlisted = [p.name for p in DOCS[1:] if p.name != "README.md" and f"]({p.name})" not in index]
    assert not unlisted, f"add a row for these pages to the index docs/README.md: {unlisted}"


@pytest.mark.parametrize("text, expected", [
    ("see `tracker reduce RUN --group g --fit-on last`",
     [("tracker", ["reduce", "RUN", "--group", "g", "--fit-on", "last"])]),
    ("run `tracker-server --root DIR` and", [("tracker-server", ["--root", "DIR"])]),
    ("```console\n$ tracker ls ./runs | head\n```", [("tracker", ["ls", "./runs"])]),
    ("the tracker_sdk package", []),
])
def test_command_mentions_are_found(text, expected):
    assert [(program, words) for _, program, words in _command_mentions(text)] == expected
