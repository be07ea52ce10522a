"""The reader API: everything else (CLI, server, exporters, viewer) reads runs through it.

``open_run(path)`` reads ``run.json`` and the journal once; vectors, coordinates and
metadata blobs are loaded lazily (vectors and coordinates memory-mapped). Records are the
structs of :mod:`.records` (format versions 1 and 2 alike); :class:`Embedding` and
:class:`Reduction` wrap them with their blobs.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import numpy as np

from ..errors import BlobIntegrityError, RunFormatError
from . import files, journal
from .codecs import decode_metadata, load_npy
from .format import READABLE_VERSIONS, RUN_JSON
from .records import (AssetRecord, ColumnsRecord, DynamicsRecord, EmbeddingRecord, EndRecord, MetadataRef, MetricRecord,
                      OtherRecord, ParameterRecord, Record, ReductionRecord, blob_hashes)

# keys of the metadata blob (codecs.py): {"n", "columns": [{"name", "type", "values"}]}
METADATA_COLUMNS, COLUMN_NAME, COLUMN_TYPE, COLUMN_VALUES = "columns", "name", "type", "values"


def merge_columns(columns: list, extras, key) -> list:
    """Columns added later replace earlier ones of the same ``key`` (name) and go last.

    The one implementation of the extra-columns merge: used for the metadata blob's column
    maps and for the (name, type) listing that needs no blob.
    """
    merged = list(columns)
    for extra in extras:
        names = {key(c) for c in extra}
        merged = [c for c in merged if key(c) not in names] + list(extra)
    return merged


def _column_name(column: dict) -> str:
    return column[COLUMN_NAME]


class Reduction:
    """One stored projection of an embedding (coordinates of shape (n_samples, n_components))."""

    def __init__(self, run: "Run", record: ReductionRecord):
        self.run = run
        self.record = record
        #: columns records of this projection (per-point trust), in journal order
        self.column_records: list[ColumnsRecord] = []

    def __getattr__(self, name):  # every record field (id, method, params, quality, ...) without a copy here
        return getattr(self.record, name)

    @property
    def coords(self) -> np.ndarray:
        return load_npy(self.run.blob_path(self.record.coords.sha256))

    @cached_property
    def metadata(self) -> dict:
        """This projection's own columns (``trust_point``, ``continuity_point``) in the metadata blob's
        shape (``n`` and ``columns`` maps), later ones replacing earlier; no columns when not analysed."""
        extras = [decode_metadata(self.run.blob_path(r.metadata.sha256).read_bytes())[METADATA_COLUMNS]
                  for r in self.column_records]
        return {"n": int(self.record.coords.shape[0]), METADATA_COLUMNS: merge_columns([], extras, _column_name)}

    @property
    def columns(self) -> dict[str, list]:
        return {c[COLUMN_NAME]: c[COLUMN_VALUES] for c in self.metadata[METADATA_COLUMNS]}

    @property
    def trust(self) -> dict[str, np.ndarray]:
        """Per-point trust columns of this projection as float arrays, shape (n_samples,); empty if not analysed."""
        return {name: np.asarray(values, dtype=np.float64) for name, values in self.columns.items()}

    @property
    def trust_scores(self) -> dict:
        """The global scores stored with the latest trust columns (``trustworthiness``, ``continuity``, ...)."""
        return dict(self.column_records[-1].analysis) if self.column_records else {}

    def __repr__(self):
        return f"Reduction({self.method!r}, n_components={self.n_components}, embedding={self.embedding_id})"


class Embedding:
    """One logged embedding: vectors (n_samples, n_features), metadata columns, sprite, reductions."""

    def __init__(self, run: "Run", record: EmbeddingRecord):
        self.run = run
        self.record = record
        self.reductions: list[Reduction] = []
        self.extra_columns: list[MetadataRef] = []

    def __getattr__(self, name):  # every record field (id, title, group, step, n, dim, sprite, ...)
        return getattr(self.record, name)

    @property
    def vectors(self) -> np.ndarray:
        """The float32 vectors, memory-mapped read-only."""
        return load_npy(self.run.blob_path(self.record.vectors.sha256))

    @cached_property
    def metadata(self) -> dict:
        """The metadata blob (``n`` and its ``columns`` maps), analysis columns merged in."""
        data = decode_metadata(self.run.blob_path(self.record.metadata.sha256).read_bytes())
        extras = [decode_metadata(self.run.blob_path(ref.sha256).read_bytes())[METADATA_COLUMNS]
                  for ref in self.extra_columns]
        return {**data, METADATA_COLUMNS: merge_columns(data[METADATA_COLUMNS], extras, _column_name)}

    @property
    def columns(self) -> dict[str, list]:
        return {c[COLUMN_NAME]: c[COLUMN_VALUES] for c in self.metadata[METADATA_COLUMNS]}

    @property
    def header(self) -> bool:
        """Whether the labels were given with a header row."""
        return self.record.metadata.header

    def column_types(self) -> list[dict]:
        """``{"name", "type"}`` of every column, analysis columns merged in, read from the records
        (the metadata blob only for a record that does not list its columns)."""
        def listed(ref: MetadataRef) -> list[dict]:
            types = list(ref.types) + [None] * (len(ref.columns) - len(ref.types))
            return [{COLUMN_NAME: name, COLUMN_TYPE: kind} for name, kind in zip(ref.columns, types)]

        base = listed(self.record.metadata)
        if not base:  # the blob's columns, already merged by ``metadata``
            return [{COLUMN_NAME: c[COLUMN_NAME], COLUMN_TYPE: c.get(COLUMN_TYPE)}
                    for c in self.metadata[METADATA_COLUMNS]]
        return merge_columns(base, [listed(ref) for ref in self.extra_columns], _column_name)

    def sprite_path(self) -> Path | None:
        return self.run.blob_path(self.sprite.sha256) if self.sprite else None

    def __repr__(self):
        return f"Embedding({self.title!r}, group={self.group!r}, step={self.step}, {self.n}x{self.dim})"


class Run:
    """A run directory as read from disk (or, through :meth:`from_records`, from records held elsewhere)."""

    _blob_file = None  # sha256 -> local Path, for a run built by from_records

    def __init__(self, run_dir):
        self.path = Path(run_dir)
        run_json = files.refuse_links(self.path, self.path / RUN_JSON)
        for segment in journal.list_segments(files.refuse_links(self.path, self.path / "journal")):
            files.refuse_links(self.path, segment)
        if not run_json.is_file():
            raise RunFormatError(f"{self.path} is not a run: {RUN_JSON} is missing")
        self.info = files.read_json(run_json)
        version = self.info.get("format_version")
        if version not in READABLE_VERSIONS:
            raise RunFormatError(f"{run_json} has format_version {version!r}; this tracker_sdk reads "
                                 f"{' and '.join(map(str, READABLE_VERSIONS))}")
        self.records: list[Record] = sorted(journal.read_journal(self.path / "journal"), key=lambda r: r.seq)
        self._index()

    @classmethod
    def from_records(cls, info: dict, records, blob_path) -> Run:
        """A run whose records and blobs live outside a run directory (the server's shared store):
        ``info`` is its run.json, ``blob_path(sha256)`` returns a readable local file of the blob.
        The same Embedding and Reduction readers work on it; ``path`` is None."""
        run = cls.__new__(cls)
        run.path = None
        run.info = dict(info)
        run.records = sorted(records, key=lambda r: r.seq)
        run._blob_file = blob_path
        run._index()
        return run

    @property
    def run_id(self) -> str:
        return self.info["run_id"]

    @property
    def project(self) -> str:
        return self.info.get("project", self.path.parent.name if self.path is not None else None)

    @property
    def name(self) -> str | None:
        return self.info.get("name")

    @property
    def status(self) -> str:
        if any(isinstance(r, EndRecord) for r in self.records):
            return "finished"
        return self.info.get("status", "running")

    def _index(self) -> None:
        self.parameters: dict = {}
        self.others: dict = {}
        self.metrics: list[MetricRecord] = []
        self.assets: list[AssetRecord] = []
        self.embeddings: list[Embedding] = []
        self.dynamics_records: list[DynamicsRecord] = []
        by_id: dict[str, Embedding] = {}
        reductions: dict[str, Reduction] = {}
        for record in self.records:
            if isinstance(record, ParameterRecord):
                self.parameters[record.name] = record.value
            elif isinstance(record, OtherRecord):
                self.others[record.name] = record.value
            elif isinstance(record, MetricRecord):
                self.metrics.append(record)
            elif isinstance(record, AssetRecord):
                self.assets.append(record)
            elif isinstance(record, EmbeddingRecord):
                emb = Embedding(self, record)
                self.embeddings.append(emb)
                by_id[emb.id] = emb
            elif isinstance(record, ReductionRecord) and record.embedding_id in by_id:
                reduction = reductions[record.id] = Reduction(self, record)
                by_id[record.embedding_id].reductions.append(reduction)
            elif isinstance(record, ColumnsRecord) and record.reduction_id is not None:
                if record.reduction_id in reductions:  # a projection's own columns, not the embedding's
                    reductions[record.reduction_id].column_records.append(record)
            elif isinstance(record, ColumnsRecord) and record.embedding_id in by_id:
                by_id[record.embedding_id].extra_columns.append(record.metadata)
            elif isinstance(record, DynamicsRecord):
                self.dynamics_records.append(record)
        self._by_id = by_id

    def embedding(self, embedding_id: str) -> Embedding:
        try:
            return self._by_id[embedding_id]
        except KeyError:
            raise KeyError(f"run {self.run_id} has no embedding {embedding_id!r}") from None

    def dynamics(self, group: str, title: str | None = None) -> DynamicsRecord | None:
        """The latest dynamics record of ``group`` (and ``title``, when given); None when not analysed."""
        found = [r for r in self.dynamics_records if r.group == group and (title is None or r.title == title)]
        return found[-1] if found else None

    def metric_series(self, name: str) -> list[MetricRecord]:
        return [m for m in self.metrics if m.name == name]

    def blob_path(self, sha256: str) -> Path:
        """The blob's file; a symbolic link on the way (``blobs``, ``blobs/ab``, the file) raises RunFormatError."""
        if self._blob_file is not None:
            return Path(self._blob_file(sha256))
        return files.refuse_links(self.path, files.blob_path(self.path, sha256))

    def blob_refs(self) -> list[str]:
        """Every blob hash any record references."""
        return [sha for record in self.records for sha in blob_hashes(record)]

    def verify(self) -> None:
        """Re-hash every referenced blob; raise BlobIntegrityError on the first bad one."""
        for sha in dict.fromkeys(self.blob_refs()):
            if self.path is not None:
                files.verify_blob(self.path, sha)
            elif files.hash_file(self.blob_path(sha)) != sha:
                raise BlobIntegrityError(f"blob {sha} of run {self.run_id} does not hash to its name")

    def __repr__(self):
        return f"Run({self.project!r}/{self.run_id}, {len(self.embeddings)} embeddings)"


def open_run(path) -> Run:
    """Open a run directory (``<root>/<project>/<run_id>``) for reading."""
    return Run(path)
