"""Every record kind of the run journal, as typed structs: the one place a record field is named.

A record is a msgspec ``Struct`` tagged by ``kind``; on disk it is a msgpack map
``{"kind": ..., "seq": ..., "t": ..., <fields>}`` that the plain ``msgpack`` package reads.
Writing (Experiment, reduction jobs, analysis), reading (``open_run``), validating (the
server) and listing blob references (uploader, server, verify) all go through this module:

- build a record with its struct (``MetricRecord(name="loss", value=0.5)``); the writer
  assigns ``seq`` and ``t`` through :func:`stamp`;
- :func:`encode` / :func:`decode` are the journal's only codec; decoding validates and raises
  :class:`~tracker_sdk.errors.InvalidRecordError` naming the field;
- :func:`from_builtins` validates a record that arrived as JSON or msgpack maps (the server);
- :func:`blob_refs` lists the blobs a record names.

Adding a field is one edit here; ``docs/run-format.md`` is generated from these structs
(:func:`schema_markdown`).
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal, Union

import msgspec
from msgspec import Meta, Struct

from ..errors import InvalidArgumentError, InvalidRecordError
from .names import HEX_ID_PATTERN, SHA256_PATTERN

MAX_TEXT = 4096

HexId = Annotated[str, Meta(pattern=f"^{HEX_ID_PATTERN}$")]
Sha256 = Annotated[str, Meta(pattern=f"^{SHA256_PATTERN}$")]
Text = Annotated[str, Meta(max_length=MAX_TEXT)]
Count = Annotated[int, Meta(ge=0)]
Positive = Annotated[int, Meta(ge=1)]
Pair = Annotated[list[Positive], Meta(min_length=2, max_length=2)]
Step = Union[Count, None]


# -- blob references ---------------------------------------------------------------------------
class BlobRef(Struct, kw_only=True, frozen=True):
    """A content-addressed blob under ``blobs/ab/<sha256>``."""

    sha256: Sha256


class ArrayRef(BlobRef, kw_only=True, frozen=True):
    """A ``.npy`` blob: vectors ``(n_samples, n_features)`` or coordinates ``(n_samples, n_components)``."""

    dtype: str = "float32"
    shape: list[Count]


class MetadataRef(BlobRef, kw_only=True, frozen=True):
    """A msgpack metadata blob of typed columns; names and types repeated here for listing."""

    columns: list[str] = []
    types: list[str] = []
    header: bool = False


class SpriteRef(BlobRef, kw_only=True, frozen=True):
    """A png sprite sheet: ``n`` tiles of ``tile_size`` (width, height) in a ``grid`` (columns, rows)."""

    format: str = "png"
    n: Positive
    tile_size: Pair
    grid: Pair


class FittedOn(Struct, kw_only=True, frozen=True):
    """What a reused reducer was fitted on: one embedding, or several steps (``step="all"``)."""

    embedding_id: Union[HexId, None] = None
    step: Union[Count, Literal["all"], None] = None
    embedding_ids: list[HexId] = []


# -- records -----------------------------------------------------------------------------------
class Record(Struct, kw_only=True, frozen=True, tag_field="kind"):
    """Fields every record has: its per-run sequence number and the client's wall time."""

    seq: int = -1
    t: float = math.nan


class ParameterRecord(Record, kw_only=True, frozen=True, tag="parameter"):
    """A hyperparameter (``log_parameter``); the last value of a name wins."""

    name: Text
    value: Any = None
    step: Step = None


class MetricRecord(Record, kw_only=True, frozen=True, tag="metric"):
    """One point of a metric series (``log_metric``)."""

    name: Text
    value: Union[int, float, None] = None
    step: Step = None
    epoch: Step = None


class OtherRecord(Record, kw_only=True, frozen=True, tag="other"):
    """A free value (``log_other``, tags); the last value of a name wins."""

    name: Text
    value: Any = None


class AssetRecord(Record, kw_only=True, frozen=True, tag="asset"):
    """A stored file (``log_asset``); the record itself references its blob."""

    name: Text
    sha256: Sha256
    size: Count
    step: Step = None
    metadata: Any = None


class EmbeddingRecord(Record, kw_only=True, frozen=True, tag="embedding"):
    """A logged embedding: its vectors, metadata and optional sprite blobs."""

    id: HexId
    title: Text
    group: Union[Text, None] = None
    step: Step = None
    n: Positive
    dim: Positive
    vectors: ArrayRef
    metadata: MetadataRef
    sprite: Union[SpriteRef, None] = None

    def __post_init__(self):
        if list(self.vectors.shape) != [self.n, self.dim]:
            raise InvalidArgumentError(f"vectors.shape must be [n, dim] = {[self.n, self.dim]}; "
                                       f"got {list(self.vectors.shape)}")


class ReductionRecord(Record, kw_only=True, frozen=True, tag="reduction"):
    """A projection of an embedding, stored as a coordinates blob."""

    id: HexId
    embedding_id: HexId
    method: Text
    n_components: Positive
    params: dict[str, Any] = {}
    fitted_on: Union[FittedOn, None] = None
    timeline: Union[HexId, None] = None
    coords: ArrayRef
    quality: dict[str, Any] = {}

    def __post_init__(self):
        if len(self.coords.shape) != 2 or self.coords.shape[1] != self.n_components:
            raise InvalidArgumentError(f"coords.shape must be [n_samples, n_components={self.n_components}]; "
                                       f"got {list(self.coords.shape)}")


class ColumnsRecord(Record, kw_only=True, frozen=True, tag="columns"):
    """Metadata columns added to an embedding later (analysis scores); same names replace.

    With ``reduction_id`` the columns belong to that projection of the embedding (per-point
    ``trust_point`` and ``continuity_point``, the global scores in ``analysis``) and are not
    merged into the embedding's own columns."""

    embedding_id: HexId
    reduction_id: Union[HexId, None] = None
    metadata: MetadataRef
    analysis: dict[str, Any] = {}


class PairChange(Struct, kw_only=True, frozen=True):
    """k-NN Jaccard of the shared rows between one step and the next (per point: column
    ``knn_jaccard_prev`` of the later step); ``changed_most`` are rows of the later step, lowest first."""

    mean: float
    median: float
    low: float
    changed_most: list[Count] = []


class DynamicsRecord(Record, kw_only=True, frozen=True, tag="dynamics"):
    """How a group's representation changed across its steps, in the original space.

    ``cka`` is the step x step linear CKA matrix, ``changes[s]`` the k-NN Jaccard summary of steps
    s and s + 1, ``separation`` and ``silhouette`` are step x class (None where undefined); all
    lists follow ``embedding_ids`` (step order). ``silhouette_rows`` is how many rows per step at most
    (those with a label) the silhouette was computed on: every shared row, or a seeded sample on large steps.
    When the group holds several titles (the layers of ``log_activations``), ``layer_cka[s]`` is the
    layer x layer linear CKA at step s, in the order of ``layers`` (None where a layer is missing)."""

    group: Text
    title: Union[Text, None] = None
    embedding_ids: list[HexId]
    steps: list[Step]
    k_neighbors: Positive
    label_column: Union[Text, None] = None
    id_column: Union[Text, None] = None
    n_shared: Count
    cka: list[list[Union[float, None]]]
    changes: list[PairChange] = []
    classes: list[Any] = []
    separation: list[list[Union[float, None]]] = []
    silhouette: list[list[Union[float, None]]] = []
    silhouette_rows: Union[Count, None] = None
    layers: list[Text] = []
    layer_cka: list[list[list[Union[float, None]]]] = []
    duration_s: float = 0.0


class EndRecord(Record, kw_only=True, frozen=True, tag="end"):
    """The run ended (``end()``)."""

    status: Text = "finished"


RECORD_TYPES = (ParameterRecord, MetricRecord, OtherRecord, AssetRecord, EmbeddingRecord, ReductionRecord,
                ColumnsRecord, DynamicsRecord, EndRecord)
KINDS = tuple(cls.__struct_config__.tag for cls in RECORD_TYPES)
AnyRecord = Union[RECORD_TYPES]  # type: ignore[valid-type]

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(AnyRecord)
_batch_decoder = msgspec.msgpack.Decoder(list[AnyRecord])


# -- the codec ---------------------------------------------------------------------------------
def stamp(record: Record, *, seq: int, t: float) -> Record:
    """``record`` with its sequence number and wall time; raises before anything is written."""
    if not isinstance(record, RECORD_TYPES):
        raise InvalidArgumentError(f"record must be one of {', '.join(c.__name__ for c in RECORD_TYPES)}; "
                                   f"got {type(record).__name__}")
    if not isinstance(t, (int, float)) or isinstance(t, bool) or not math.isfinite(t):
        raise InvalidArgumentError(f"the record's time t must be a finite number of seconds; got {t!r}")
    return msgspec.structs.replace(record, seq=int(seq), t=float(t))


def encode(record: Record) -> bytes:
    """The msgpack body of one record (its seq and t must be set)."""
    _check_stamp(record)
    return _encoder.encode(record)


def decode(body: bytes, *, where: str = "record") -> Record:
    """Decode and validate one msgpack record; InvalidRecordError names ``where`` and the field."""
    try:
        record = _decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise InvalidRecordError(f"{where}{_seq_of(body)}: {exc}") from None
    except msgspec.DecodeError as exc:
        raise InvalidRecordError(f"{where}: not a msgpack record ({exc})") from None
    return _checked(record, where)


def decode_batch(body: bytes, *, where: str = "batch of records") -> list[Record]:
    """Decode and validate a msgpack array of records (a stored or transferred batch)."""
    try:
        batch = _batch_decoder.decode(body)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise InvalidRecordError(f"{where}: {exc}") from None
    return [_checked(record, where) for record in batch]


def encode_batch(batch: list[Record]) -> bytes:
    """A msgpack array of stamped records (what :func:`decode_batch` reads)."""
    for record in batch:
        _check_stamp(record)
    return _encoder.encode(batch)


def from_builtins(obj, *, where: str = "record") -> Record:
    """Validate a record given as plain maps and lists (a JSON or msgpack request body)."""
    try:
        record = msgspec.convert(obj, AnyRecord)
    except msgspec.ValidationError as exc:
        seq = obj.get("seq") if isinstance(obj, dict) else None
        raise InvalidRecordError(f"{where}{f' seq {seq}' if seq is not None else ''}: {exc}") from None
    return _checked(record, where)


def to_builtins(value) -> Any:
    """Plain maps and lists of a record or any struct of this module (for JSON answers)."""
    return msgspec.to_builtins(value)


def embedding_listing(record: EmbeddingRecord, columns: list[dict], reductions: list) -> dict:
    """An embedding as the server lists it: its record, its ``{name, type}`` columns (analysis
    columns merged in) and its reduction records."""
    return {**to_builtins(record), "columns": columns, "reductions": to_builtins(reductions)}


def _checked(record: Record, where: str) -> Record:
    try:
        _check_stamp(record)
    except InvalidArgumentError as exc:
        raise InvalidRecordError(f"{where} seq {record.seq}: {exc}") from None
    return record


def _check_stamp(record: Record) -> None:
    if record.seq < 0:
        raise InvalidArgumentError(f"seq must be a non-negative integer; got {record.seq} - at `$.seq`")
    if not math.isfinite(record.t):
        raise InvalidArgumentError(f"t must be a finite number of seconds; got {record.t} - at `$.t`")


def _seq_of(body: bytes) -> str:
    """`` seq N`` for an error message, when the body is at least a map with a seq."""
    try:
        raw = msgspec.msgpack.decode(body)
    except msgspec.DecodeError:
        return ""
    seq = raw.get("seq") if isinstance(raw, dict) else None
    return f" seq {seq}" if isinstance(seq, int) else ""


# -- blob references ---------------------------------------------------------------------------
def blob_refs(record: Record) -> list:
    """The blobs ``record`` names, in field order: BlobRef structs, and the AssetRecord itself.

    Every element has ``sha256``; callers dispatch on the type (ArrayRef, MetadataRef,
    SpriteRef, AssetRecord) for content checks.
    """
    refs = [record] if isinstance(record, AssetRecord) else []
    for name in record.__struct_fields__:
        value = getattr(record, name)
        if isinstance(value, BlobRef):
            refs.append(value)
    return refs


def blob_hashes(record: Record) -> list[str]:
    """The sha256 of every blob ``record`` names."""
    return [ref.sha256 for ref in blob_refs(record)]


def metadata_ref(sha256: str, columns: list[dict], *, header: bool = False) -> MetadataRef:
    """The reference to a metadata blob holding ``columns`` (maps from ``codecs.make_column``)."""
    return MetadataRef(sha256=sha256, columns=[c["name"] for c in columns], types=[c["type"] for c in columns],
                       header=header)


# -- documentation -----------------------------------------------------------------------------
def json_schemas(ref_template: str = "#/components/schemas/{name}") -> tuple[dict, dict]:
    """(schema of one record, named component schemas) in JSON Schema, for the OpenAPI document.

    On the wire ``seq`` and ``t`` are required (the writer sets them before a record leaves it).
    """
    (record_schema,), components = msgspec.json.schema_components([AnyRecord], ref_template=ref_template)
    for cls in RECORD_TYPES:
        component = components[cls.__name__]
        for name in Record.__struct_fields__:
            component["properties"][name].pop("default", None)
        component["required"] = sorted(set(component.get("required", [])) | set(Record.__struct_fields__))
    components["EmbeddingListing"] = {
        "allOf": [{"$ref": ref_template.format(name=EmbeddingRecord.__name__)}, {
            "type": "object", "description": "An embedding as the server lists it (:func:`embedding_listing`).",
            "properties": {
                "columns": {"type": "array", "items": {"type": "object", "properties": {
                    "name": {"type": "string"}, "type": {"type": ["string", "null"]}}}},
                "reductions": {"type": "array", "items": {"$ref": ref_template.format(name=ReductionRecord.__name__)}},
            }}]}
    return record_schema, components


def schema_markdown() -> str:
    """The record kinds and their fields as markdown (``docs/run-format.md`` embeds it)."""
    import msgspec.inspect as mi

    def type_text(t) -> str:
        if isinstance(t, mi.UnionType):
            return " or ".join(type_text(x) for x in t.types)
        if isinstance(t, mi.ListType):
            return f"list of {type_text(t.item_type)}"
        if isinstance(t, mi.DictType):
            return f"map of {type_text(t.key_type)} to {type_text(t.value_type)}"
        if isinstance(t, mi.LiteralType):
            return " or ".join(repr(v) for v in t.values)
        if isinstance(t, mi.StructType):
            return f"`{t.cls.__name__}`"
        name = type(t).__name__.removesuffix("Type").lower()
        limits = [f"{label} {value}" for label, value in (("min", getattr(t, "ge", None)),
                                                          ("max length", getattr(t, "max_length", None)))
                  if value is not None]
        if getattr(t, "pattern", None):
            limits.append(f"pattern `{t.pattern}`")
        return name.replace("none", "nil") + (f" ({', '.join(limits)})" if limits else "")

    def table(cls) -> list[str]:
        info = mi.type_info(cls)
        rows = ["| field | type | default |", "|---|---|---|"]
        for f in info.fields:
            if f.name in Record.__struct_fields__:
                default = "set by the writer"
            else:
                default = "required" if f.required else repr(f.default if f.default is not mi.NODEFAULT
                                                             else f.default_factory())
            rows.append(f"| `{f.encode_name}` | {type_text(f.type)} | {default} |")
        return rows

    lines = ["Every record is a msgpack map whose first key is `kind`; `seq` (per-run sequence number)",
             "and `t` (the client's wall time in seconds, finite) are set by the writer.", ""]
    for cls in RECORD_TYPES:
        lines += [f"### `{cls.__struct_config__.tag}` ({cls.__name__})", "", cls.__doc__.strip(), ""]
        lines += table(cls) + [""]
    lines += ["### Nested structs", ""]
    for cls in (BlobRef, ArrayRef, MetadataRef, SpriteRef, FittedOn, PairChange):
        lines += [f"#### `{cls.__name__}`", "", cls.__doc__.strip(), ""] + table(cls) + [""]
    return "\n".join(lines).rstrip() + "\n"
