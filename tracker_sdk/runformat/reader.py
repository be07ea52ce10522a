"""The reader API: everything else (CLI, server, exporters, viewer) reads runs through it.

``open_run(path)`` reads ``run.json`` and the journal once; vectors, coordinates and
metadata blobs are loaded lazily (vectors and coordinates memory-mapped).
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import RunFormatError
from . import files, journal
from .codecs import decode_metadata, load_npy
from .format import FORMAT_VERSION, RUN_JSON


class Reduction:
    """One stored projection of an embedding (coordinates of shape (n_samples, n_components))."""

    def __init__(self, run: "Run", record: dict):
        self.run = run
        self.record = record
        self.id = record["id"]
        self.embedding_id = record["embedding_id"]
        self.method = record["method"]
        self.n_components = int(record["n_components"])
        self.params = record.get("params", {})
        self.fitted_on = record.get("fitted_on")
        self.timeline = record.get("timeline")
        self.quality = record.get("quality", {})

    @property
    def coords(self) -> np.ndarray:
        return load_npy(self.run.blob_path(self.record["coords"]["sha256"]))

    def __repr__(self):
        return f"Reduction({self.method!r}, n_components={self.n_components}, embedding={self.embedding_id})"


class Embedding:
    """One logged embedding: vectors (n_samples, n_features), metadata columns, sprite, reductions."""

    def __init__(self, run: "Run", record: dict):
        self.run = run
        self.record = record
        self.id = record["id"]
        self.title = record["title"]
        self.group = record.get("group")
        self.step = record.get("step")
        self.n = int(record["n"])
        self.dim = int(record["dim"])
        self.sprite = record.get("sprite")
        self.reductions: list[Reduction] = []
        self.extra_columns: list[dict] = []

    @property
    def vectors(self) -> np.ndarray:
        """The float32 vectors, memory-mapped read-only."""
        return load_npy(self.run.blob_path(self.record["vectors"]["sha256"]))

    @cached_property
    def metadata(self) -> dict:
        """``{"n": rows, "columns": [{"name", "type", "values"}]}``, analysis columns appended."""
        data = decode_metadata(self.run.blob_path(self.record["metadata"]["sha256"]).read_bytes())
        columns = list(data["columns"])
        for ref in self.extra_columns:
            extra = decode_metadata(self.run.blob_path(ref["sha256"]).read_bytes())
            names = {c["name"] for c in extra["columns"]}
            columns = [c for c in columns if c["name"] not in names] + extra["columns"]
        return {"n": data["n"], "columns": columns, "header": self.record["metadata"].get("header", False)}

    @property
    def columns(self) -> dict[str, list]:
        return {c["name"]: c["values"] for c in self.metadata["columns"]}

    def sprite_path(self) -> Path | None:
        return self.run.blob_path(self.sprite["sha256"]) if self.sprite else None

    def __repr__(self):
        return f"Embedding({self.title!r}, group={self.group!r}, step={self.step}, {self.n}x{self.dim})"


class Run:
    """A run directory as read from disk."""

    def __init__(self, run_dir):
        self.path = Path(run_dir)
        run_json = self.path / RUN_JSON
        if not run_json.is_file():
            raise RunFormatError(f"{self.path} is not a run: {RUN_JSON} is missing")
        self.info = files.read_json(run_json)
        version = self.info.get("format_version")
        if version != FORMAT_VERSION:
            raise RunFormatError(f"{run_json} has format_version {version!r}; this tracker_sdk reads {FORMAT_VERSION}")
        self.records = sorted(journal.read_journal(self.path / "journal"), key=lambda r: r["seq"])
        self._index()

    @property
    def run_id(self) -> str:
        return self.info["run_id"]

    @property
    def project(self) -> str:
        return self.info.get("project", self.path.parent.name)

    @property
    def name(self) -> str | None:
        return self.info.get("name")

    @property
    def status(self) -> str:
        if any(r["kind"] == "end" for r in self.records):
            return "finished"
        return self.info.get("status", "running")

    def _index(self) -> None:
        self.parameters: dict = {}
        self.others: dict = {}
        self.metrics: list[dict] = []
        self.assets: list[dict] = []
        self.embeddings: list[Embedding] = []
        by_id: dict[str, Embedding] = {}
        for record in self.records:
            kind = record["kind"]
            if kind == "parameter":
                self.parameters[record["name"]] = record["value"]
            elif kind == "other":
                self.others[record["name"]] = record["value"]
            elif kind == "metric":
                self.metrics.append(record)
            elif kind == "asset":
                self.assets.append(record)
            elif kind == "embedding":
                emb = Embedding(self, record)
                self.embeddings.append(emb)
                by_id[emb.id] = emb
            elif kind == "reduction" and record["embedding_id"] in by_id:
                by_id[record["embedding_id"]].reductions.append(Reduction(self, record))
            elif kind == "columns" and record["embedding_id"] in by_id:
                by_id[record["embedding_id"]].extra_columns.append(record["metadata"])
        self._by_id = by_id

    def embedding(self, embedding_id: str) -> Embedding:
        try:
            return self._by_id[embedding_id]
        except KeyError:
            raise KeyError(f"run {self.run_id} has no embedding {embedding_id!r}") from None

    def metric_series(self, name: str) -> list[dict]:
        return [m for m in self.metrics if m["name"] == name]

    def blob_path(self, sha256: str) -> Path:
        return files.blob_path(self.path, sha256)

    def blob_refs(self) -> list[str]:
        """Every blob hash any record references."""
        refs = []
        for record in self.records:
            for key in ("vectors", "metadata", "sprite", "coords"):
                ref = record.get(key)
                if isinstance(ref, dict) and "sha256" in ref:
                    refs.append(ref["sha256"])
            if record["kind"] == "asset":
                refs.append(record["sha256"])
        return refs

    def verify(self) -> None:
        """Re-hash every referenced blob; raise BlobIntegrityError on the first bad one."""
        for sha in dict.fromkeys(self.blob_refs()):
            files.verify_blob(self.path, sha)

    def __repr__(self):
        return f"Run({self.project!r}/{self.run_id}, {len(self.embeddings)} embeddings)"


def open_run(path) -> Run:
    """Open a run directory (``<root>/<project>/<run_id>``) for reading."""
    return Run(path)


def iter_run_dirs(root) -> Iterator[Path]:
    """Every run directory under ``root`` (``<root>/<project>/<run_id>/run.json``), sorted."""
    root = Path(root)
    if not root.is_dir():
        return
    for project in sorted(p for p in root.iterdir() if p.is_dir()):
        for run_dir in sorted(p for p in project.iterdir() if (p / RUN_JSON).is_file()):
            yield run_dir
