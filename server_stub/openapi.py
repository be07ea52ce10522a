"""The OpenAPI 3.1 description of ``/api/v1``, served at ``/api/v1/openapi.json``.

Written by hand next to the routes (Starlette has no schema generator); a test checks that
every route of the app appears here.
"""

from __future__ import annotations

from functools import lru_cache

HEX32 = {"type": "string", "pattern": "^[0-9a-f]{32}$"}
SHA256 = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
PROJECT = {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"}


def _param(name, schema, where="path", description=None, required=True):
    p = {"name": name, "in": where, "required": required, "schema": schema}
    if description:
        p["description"] = description
    return p


RUN = _param("run_id", HEX32)
EMB = _param("embedding_id", HEX32)
SHA = _param("sha256", SHA256)
PROJ = _param("project", PROJECT)
ERR = {"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
FLOAT32 = {"description": "raw little-endian float32, row-major; shape in X-Shape",
           "headers": {"X-Shape": {"schema": {"type": "string"}, "description": "rows,cols"},
                       "X-Dtype": {"schema": {"type": "string", "const": "float32"}}},
           "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}


def _json(description, schema=None):
    return {"description": description, "content": {"application/json": {"schema": schema or {"type": "object"}}}}


def _op(summary, params, responses, *, body=None, write=False):
    op = {"summary": summary, "parameters": params, "responses": {**responses, "4XX": ERR}}
    if body:
        op["requestBody"] = body
    if write:
        op["security"] = [{"bearer": []}]
    return op


@lru_cache(maxsize=1)
def openapi_schema() -> dict:
    paths = {
        "/api/v1/projects": {"get": _op("List projects", [], {"200": _json("projects", {
            "type": "array", "items": {"type": "object", "properties": {
                "name": {"type": "string"}, "n_runs": {"type": "integer"}, "last_created": {"type": ["number", "null"]}}}})})},
        "/api/v1/projects/{project}/runs": {"get": _op("List the runs of a project", [PROJ], {"200": _json("runs", {
            "type": "array", "items": {"$ref": "#/components/schemas/RunSummary"}})})},
        "/api/v1/projects/{project}/runs/{run_id}": {"put": _op(
            "Create or resume a run (idempotent by run_id); the body is the run's run.json", [PROJ, RUN],
            {"200": _json("the run and the seq the server expects next", {"type": "object", "properties": {
                "run_id": HEX32, "project": PROJECT, "next_seq": {"type": "integer"}}})},
            body={"required": True, "content": {"application/json": {"schema": {"type": "object"}}}}, write=True)},
        "/api/v1/runs/{run_id}": {"get": _op("One run: parameters, others, metric names, next_seq", [RUN],
                                             {"200": _json("run", {"$ref": "#/components/schemas/Run"})})},
        "/api/v1/runs/{run_id}/metrics": {"get": _op("Every metric series of a run", [RUN], {"200": _json(
            "{name: [{step, epoch, value, t}]}", {"type": "object", "additionalProperties": {
                "type": "array", "items": {"type": "object", "properties": {
                    "step": {"type": ["integer", "null"]}, "epoch": {"type": ["integer", "null"]},
                    "value": {"type": ["number", "null"]}, "t": {"type": "number"}}}}})})},
        "/api/v1/runs/{run_id}/embeddings": {"get": _op("The embeddings of a run with their reductions", [RUN], {
            "200": _json("embeddings", {"type": "array", "items": {"$ref": "#/components/schemas/Embedding"}})})},
        "/api/v1/runs/{run_id}/embeddings/{embedding_id}/vectors": {"get": _op(
            "Vectors (n_samples, n_features) as raw float32", [RUN, EMB], {"200": FLOAT32})},
        "/api/v1/runs/{run_id}/embeddings/{embedding_id}/metadata": {"get": _op(
            "Metadata columns (non-finite floats as null)", [RUN, EMB], {"200": _json("columns", {
                "type": "object", "properties": {"n": {"type": "integer"}, "columns": {"type": "array", "items": {
                    "type": "object", "properties": {"name": {"type": "string"}, "type": {"type": "string"},
                                                     "values": {"type": "array"}}}}}})})},
        "/api/v1/runs/{run_id}/embeddings/{embedding_id}/sprite": {"get": _op(
            "The sprite sheet (404 when the embedding has none)", [RUN, EMB],
            {"200": {"description": "png", "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}}}})},
        "/api/v1/runs/{run_id}/embeddings/{embedding_id}/neighbors": {"get": _op(
            "Exact k nearest neighbours of one row in the original space",
            [RUN, EMB, _param("index", {"type": "integer", "minimum": 0}, "query"),
             _param("k", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 10}, "query", required=False),
             _param("metric", {"type": "string", "enum": ["cosine", "euclidean"], "default": "cosine"}, "query",
                    required=False)],
            {"200": _json("neighbours, nearest first (the row itself excluded)", {"type": "object", "properties": {
                "index": {"type": "integer"}, "metric": {"type": "string"}, "k": {"type": "integer"},
                "neighbors": {"type": "array", "items": {"type": "integer"}},
                "distances": {"type": "array", "items": {"type": ["number", "null"]}}}})})},
        "/api/v1/runs/{run_id}/reductions/{reduction_id}/coords": {"get": _op(
            "Reduced coordinates (n_samples, n_components) as raw float32", [RUN, _param("reduction_id", HEX32)],
            {"200": FLOAT32})},
        "/api/v1/runs/{run_id}/blobs/{sha256}": {
            "head": _op("Is this blob stored? (Content-Length is its size)", [RUN, SHA],
                        {"200": {"description": "present"}, "404": {"description": "absent"}}),
            "get": _op("Download a blob", [RUN, SHA], {"200": {"description": "the bytes", "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}}),
            "put": _op("Upload a whole blob; the server verifies its sha256 before it becomes visible", [RUN, SHA],
                       {"201": _json("stored"), "200": _json("already present"), "413": ERR},
                       body={"required": True, "content": {"application/octet-stream": {
                           "schema": {"type": "string", "format": "binary"}}}}, write=True)},
        "/api/v1/runs/{run_id}/uploads/{sha256}": {
            "get": _op("How much of a chunked upload the server holds", [RUN, SHA], {"200": _json(
                "state", {"$ref": "#/components/schemas/UploadState"})}),
            "patch": _op("Append one chunk at Upload-Offset; commits and verifies at Upload-Length",
                         [RUN, SHA, _param("Upload-Offset", {"type": "integer", "minimum": 0}, "header"),
                          _param("Upload-Length", {"type": "integer", "minimum": 0}, "header")],
                         {"200": _json("state", {"$ref": "#/components/schemas/UploadState"}),
                          "409": _json("offset mismatch: {error, offset}")},
                         body={"required": True, "content": {"application/offset+octet-stream": {
                             "schema": {"type": "string", "format": "binary"}}}}, write=True)},
        "/api/v1/runs/{run_id}/records": {"post": _op(
            "Append journal records in seq order; duplicates ignored", [RUN],
            {"200": _json("everything below next_seq is stored", {"type": "object", "properties": {
                "next_seq": {"type": "integer"}}}),
             "409": _json("a gap ({error, next_seq}) or missing blobs ({error, missing_blobs, next_seq})")},
            body={"required": True, "content": {
                "application/msgpack": {"schema": {"$ref": "#/components/schemas/RecordBatch"}},
                "application/json": {"schema": {"$ref": "#/components/schemas/RecordBatch"}}}}, write=True)},
        "/api/v1/openapi.json": {"get": _op("This document", [], {"200": _json("OpenAPI 3.1")})},
    }
    run_summary = {"type": "object", "properties": {
        "run_id": HEX32, "project": PROJECT, "name": {"type": ["string", "null"]},
        "created": {"type": ["number", "null"]}, "status": {"type": "string"},
        "parameters": {"type": "object"}, "n_embeddings": {"type": "integer"}}}
    schemas = {
        "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
        "RunSummary": run_summary,
        "Run": {"type": "object", "properties": {
            **run_summary["properties"], "others": {"type": "object"}, "next_seq": {"type": "integer"},
            "metric_names": {"type": "array", "items": {"type": "string"}}}},
        "Embedding": {"type": "object", "properties": {
            "id": HEX32, "title": {"type": "string"}, "group": {"type": ["string", "null"]},
            "step": {"type": ["integer", "null"]}, "n": {"type": "integer"}, "dim": {"type": "integer"},
            "columns": {"type": "array", "items": {"type": "object", "properties": {
                "name": {"type": "string"}, "type": {"type": ["string", "null"]}}}},
            "sprite": {"type": ["object", "null"], "properties": {
                "tile_size": {"type": "array", "items": {"type": "integer"}},
                "grid": {"type": "array", "items": {"type": "integer"}}, "n": {"type": "integer"}}},
            "reductions": {"type": "array", "items": {"type": "object", "properties": {
                "id": HEX32, "method": {"type": "string"}, "n_components": {"type": "integer"},
                "params": {"type": "object"}, "fitted_on": {}, "timeline": {}, "quality": {}}}}}},
        "UploadState": {"type": "object", "properties": {"offset": {"type": "integer"},
                                                         "complete": {"type": "boolean"}}},
        "RecordBatch": {"type": "object", "required": ["records"], "properties": {"records": {
            "type": "array", "items": {"type": "object", "required": ["seq", "t", "kind"], "properties": {
                "seq": {"type": "integer", "minimum": 0}, "t": {"type": "number"},
                "kind": {"type": "string", "enum": ["parameter", "metric", "other", "asset", "embedding",
                                                     "reduction", "columns", "end"]}}}}}},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "tracker_sdk tracking server", "version": "1",
                 "description": "Errors are JSON {\"error\": message} with a 4xx status. Writes need "
                                "'Authorization: Bearer <key>' when the server has an API key."},
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }
