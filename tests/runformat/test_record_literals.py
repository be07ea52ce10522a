"""records.py is the only place a record field is named: no other module of tracker_sdk or
server_stub uses a record field name as a string key (``x["step"]``, ``{"step": ...}``,
``.get("step")``, ``getattr(x, "step")``). Records are built and read through the structs.

A few field names are ordinary words of other formats too; they are allowed where a reason is
given below, and nowhere else.
"""

import ast
import functools
from pathlib import Path

from tracker_sdk.runformat import records

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("tracker_sdk", "server_stub")
OWNER = "tracker_sdk/runformat/records.py"

# field names that are also keys of other formats, allowed in every module
SHARED_WORDS = {
    "name": "a metadata column is {name, type, values} (codecs.py); run.json and layer summaries have a name",
    "n": "the metadata blob is {n, columns} (codecs.py)",
    "columns": "the metadata blob is {n, columns} (codecs.py)",
    "status": "run.json's status (finished, running)",
    "method": "the HTTP method of a request, and the analysis/neighbour method parameter",
    "shape": "numpy array descriptions (npy headers, activation summaries)",
    "dtype": "numpy array descriptions (npy headers, activation summaries)",
    "size": "numpy array size, and the blob upload answer {sha256, size}",
    "n_components": "a reducer constructor argument (get_reducer(**params))",
}

# (module, field name): reason
ALLOWED = {
    ("server_stub/app.py", "sha256"): "the {sha256} URL parameter, and the blob upload answer {sha256, size}",
    ("server_stub/app.py", "embedding_id"): "the {embedding_id} URL parameter",
    ("server_stub/app.py", "reduction_id"): "the {reduction_id} URL parameter",
    ("server_stub/app.py", "group"): "the ?group= query parameter of the dynamics route",
    ("server_stub/app.py", "title"): "the ?title= query parameter of the dynamics route",
    ("server_stub/app.py", "analysis"): "the reduction columns answer {n, columns, analysis}",
    ("server_stub/openapi.py", "analysis"): "the reduction columns answer {n, columns, analysis}",
    ("server_stub/store.py", "sha256"): "the blob upload answer {sha256, size}",
    ("server_stub/openapi.py", "title"): "the OpenAPI document's info.title",
    ("server_stub/openapi.py", "format"): "the JSON Schema keyword (binary bodies, dates)",
    ("server_stub/projections.py", "id"): "the compute-projection job {id, run_id, embedding_id, method, params}",
    ("server_stub/projections.py", "embedding_id"): "the compute-projection request and job {embedding_id, ...}",
    ("server_stub/projections.py", "params"): "the compute-projection request and job {method, params}",
    ("server_stub/openapi.py", "id"): "the OpenAPI schema of the compute-projection job",
    ("server_stub/openapi.py", "embedding_id"): "the OpenAPI schemas of the compute-projection request and job",
    ("server_stub/openapi.py", "params"): "the OpenAPI schemas of the compute-projection request and job",
    ("tracker_sdk/reduce/timeline.py", "id"): "timeline job items {id, step, vectors_sha, labels}, not records",
    ("tracker_sdk/reduce/timeline.py", "step"): "timeline job items {id, step, vectors_sha, labels}, not records",
    ("tracker_sdk/reduce/session.py", "title"): "getattr on an Embedding handle (a dataclass), not a record",
    ("tracker_sdk/reduce/session.py", "step"): "getattr on an Embedding handle (a dataclass), not a record",
}


def record_field_names() -> set[str]:
    names = {records.Record.__struct_config__.tag_field}
    for cls in records.RECORD_TYPES + (records.BlobRef, records.ArrayRef, records.MetadataRef, records.SpriteRef,
                                       records.FittedOn):
        names.update(cls.__struct_fields__)
    return names


def _string_keys(tree: ast.AST):
    """String constants used as a key: subscripts, dict keys, .get/.pop/.setdefault, getattr."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript):
            candidates = [node.slice]
        elif isinstance(node, ast.Dict):
            candidates = [k for k in node.keys if k is not None]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                node.func.attr in ("get", "pop", "setdefault"):
            candidates = node.args[:1]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
                node.func.id in ("getattr", "hasattr", "setattr"):
            candidates = node.args[1:2]
        else:
            continue
        for const in candidates:
            if isinstance(const, ast.Constant) and isinstance(const.value, str):
                yield const


@functools.lru_cache(maxsize=1)
def _keys_by_module() -> dict[str, list[ast.Constant]]:
    """Every module of the packages (records.py aside) with its string keys."""
    out = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            module = path.relative_to(ROOT).as_posix()
            if module != OWNER:
                out[module] = list(_string_keys(ast.parse(path.read_text(encoding="utf-8"), filename=module)))
    return out


def find_literals() -> list[str]:
    fields = record_field_names() - set(SHARED_WORDS)
    return [f"{module}:{const.lineno}: {const.value!r}" for module, keys in _keys_by_module().items()
            for const in keys if const.value in fields and (module, const.value) not in ALLOWED]


def test_no_record_field_is_named_outside_records_py():
    found = find_literals()
    assert not found, ("record fields named outside records.py (build and read records through its structs, "
                       "or add a reasoned entry to ALLOWED):\n" + "\n".join(found))


def test_the_allowlist_names_real_fields_that_are_still_used():
    fields = record_field_names()
    assert set(SHARED_WORDS) <= fields
    unused = set(SHARED_WORDS) - {c.value for keys in _keys_by_module().values() for c in keys}
    assert not unused, f"no module uses {sorted(unused)} any more: drop them from SHARED_WORDS"
    for module, name in ALLOWED:
        assert name in fields, f"{name!r} is no record field: drop it from ALLOWED"
        assert any(c.value == name for c in _keys_by_module()[module]), f"{module} no longer uses {name!r}: drop it"


def test_the_check_catches_a_hand_built_record():
    tree = ast.parse('writer.append({"name": "loss", "value": 0.5, "step": 1})\nrecord.get("sha256")')
    keys = {c.value for c in _string_keys(tree)} & (record_field_names() - set(SHARED_WORDS))
    assert keys == {"value", "step", "sha256"}
