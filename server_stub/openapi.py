"""The OpenAPI 3.1 description of ``/api/v1``, served at ``/api/v1/openapi.json``.

Written by hand next to the routes (Starlette has no schema generator); a test checks that
every route of the app appears here.
"""

from __future__ import annotations

from functools import lru_cache

from tracker_sdk.runformat import names
from tracker_sdk.runformat.records import json_schemas

HEX32 = {"type": "string", "pattern": f"^{names.HEX_ID_PATTERN}$"}
SHA256 = {"type": "string", "pattern": f"^{names.SHA256_PATTERN}$"}
PROJECT = {"type": "string", "pattern": f"^{names.PROJECT_PATTERN}$"}


def _param(name, schema, where="path", description=None, required=True):
    p = {"name": name, "in": where, "required": required, "schema": schema}
    if description:
        p["description"] = description
    return p


RUN = _param("run_id", HEX32)
EMB = _param("embedding_id", HEX32)
SHA = _param("sha256", SHA256)
PROJ = _param("project", PROJECT)
BOOKMARK = _param("name", {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9 _.\\-]{0,63}$"})
BOOKMARK_STATE = {"type": "object", "additionalProperties": {"type": "string"}, "maxProperties": 64,
                  "description": "the embedding view's URL query parameters (docs/viewer.md), at most 16 KiB as JSON"}
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
        "/api/v1/health": {"get": _op("Liveness and the runs the listings skip as unreadable", [], {"200": _json(
            "status", {"type": "object", "properties": {
                "status": {"type": "string", "enum": ["ok", "degraded"]},
                "unreadable_runs": {"type": "array", "items": {"type": "object", "properties": {
                    "run_id": {"type": "string"}, "project": {"type": "string"}, "problem": {"type": "string"}}}},
                "disk_free_bytes": {"type": ["integer", "null"]}}})})},
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
            "{name: [metric record, ...]}", {"type": "object", "additionalProperties": {
                "type": "array", "items": {"$ref": "#/components/schemas/MetricRecord"}}})})},
        "/api/v1/runs/{run_id}/embeddings": {"get": _op("The embeddings of a run with their reductions", [RUN], {
            "200": _json("embeddings", {"type": "array",
                                        "items": {"$ref": "#/components/schemas/EmbeddingListing"}})})},
        "/api/v1/runs/{run_id}/embeddings/{embedding_id}/vectors": {"get": _op(
            "Vectors (n_samples, n_features) as raw float32", [RUN, EMB], {"200": FLOAT32})},
        "/api/v1/runs/{run_id}/embeddings/{embedding_id}/metadata": {"get": _op(
            "Metadata columns (non-finite floats as null)", [RUN, EMB], {"200": _json("columns", {
                "type": "object", "properties": {"n": {"type": "integer"}, "columns": {"type": "array", "items": {
                    "type": "object", "properties": {"name": {"type": "string"}, "type": {"type": "string"},
                                                     "values": {"type": "array"}}}}}})})},
        "/api/v1/runs/{run_id}/embeddings/{embedding_id}/columns": {"get": _op(
            "Metadata columns as typed binary arrays (layout tracker-columns/1, docs/api.md): all of them, or "
            "those named; with reduction, that projection's own columns after them and its scores in the header",
            [RUN, EMB, _param("name", {"type": "array", "items": {"type": "string"}}, "query",
                              "a column to include (repeatable; default: every column)", required=False),
             _param("reduction", HEX32, "query", "a projection of this embedding whose columns to add",
                    required=False)],
            {"200": {"description": "b'TCOL', uint32 header length, JSON header, 8-aligned little-endian buffers",
                     "content": {"application/vnd.tracker.columns": {"schema": {"type": "string",
                                                                               "format": "binary"}}}}})},
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
        "/api/v1/runs/{run_id}/reductions/{reduction_id}/columns": {"get": _op(
            "A projection's own metadata columns: per-point trust_point and continuity_point (after "
            "analyze_dynamics; none before), with its global trustworthiness and continuity in analysis",
            [RUN, _param("reduction_id", HEX32)], {"200": _json("columns", {
                "type": "object", "properties": {"n": {"type": "integer"}, "columns": {"type": "array", "items": {
                    "type": "object", "properties": {"name": {"type": "string"}, "type": {"type": "string"},
                                                     "values": {"type": "array"}}}},
                    "analysis": {"type": "object"}}})})},
        "/api/v1/runs/{run_id}/dynamics": {"get": _op(
            "The run's dynamics records (analyze_dynamics: step x step CKA, k-NN Jaccard of consecutive steps, "
            "separation per step and class), oldest first; per-point knn_jaccard_prev is a metadata column",
            [RUN, _param("group", {"type": "string"}, "query", required=False),
             _param("title", {"type": "string"}, "query", required=False)],
            {"200": _json("dynamics records", {"type": "array",
                                               "items": {"$ref": "#/components/schemas/DynamicsRecord"}})})},
        "/api/v1/compare": {"get": _op(
            "Two runs' embeddings of the same inputs compared in their original spaces (tracker compare): per-point "
            "k-NN agreement (Jaccard, 1 = same neighbours) of the rows joined on the metadata column id (else row "
            "by row), linear CKA, and the classes of label whose neighbourhoods differ most; at most 100,000 rows",
            [_param("run_a", HEX32, "query"), _param("emb_a", HEX32, "query"), _param("run_b", HEX32, "query"),
             _param("emb_b", HEX32, "query"),
             _param("k", {"type": "integer", "minimum": 1, "maximum": 100, "default": 10}, "query", required=False),
             _param("id", {"type": "string"}, "query", "metadata column of sample ids joining the runs",
                    required=False),
             _param("label", {"type": "string", "default": "label"}, "query",
                    "metadata column of classes (of run_a) to rank", required=False),
             _param("metric", {"type": "string", "enum": ["euclidean", "cosine"], "default": "euclidean"}, "query",
                    required=False)],
            {"200": _json("the comparison; agreement[i] is of rows rows_a[i] of run_a and rows_b[i] of run_b", {
                "type": "object", "properties": {
                    "shared": {"type": "integer"}, "linear_cka": {"type": ["number", "null"]},
                    "mean_agreement": {"type": "number"}, "median_agreement": {"type": "number"},
                    "rows_a": {"type": "array", "items": {"type": "integer"}},
                    "rows_b": {"type": "array", "items": {"type": "integer"}},
                    "agreement": {"type": "array", "items": {"type": "number"}},
                    "differing": {"type": "array", "items": {"type": "object", "properties": {
                        "label": {}, "mean": {"type": "number"}, "count": {"type": "integer"}}}}}})})},
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
                          _param("Upload-Length", {"type": "integer", "minimum": 0}, "header"),
                          _param("Upload-Checksum", {"type": "string", "pattern": "^sha256 [A-Za-z0-9+/=]+$"},
                                 "header", "sha256 of this chunk, base64 (tus); a mismatch drops the chunk (460)",
                                 required=False)],
                         {"200": _json("state", {"$ref": "#/components/schemas/UploadState"}),
                          "409": _json("offset mismatch: {error, offset}"),
                          "422": _json("the whole upload does not hash to its name: {error, retryable: true}"),
                          "460": _json("Checksum Mismatch: the chunk was dropped; send it again"),
                          "507": _json("the disk is full: {error, retry_after}; Retry-After header")},
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
        # the viewer's own state: bookmarks of views, projections computed on the page's request
        "/api/v1/runs/{run_id}/bookmarks": {"get": _op("The run's named views, oldest first", [RUN], {"200": _json(
            "bookmarks", {"type": "array", "items": {"$ref": "#/components/schemas/Bookmark"}})})},
        "/api/v1/runs/{run_id}/bookmarks/{name}": {
            "put": _op("Save (or replace) a named view; the state is the view's URL parameters", [RUN, BOOKMARK],
                       {"201": _json("created", {"$ref": "#/components/schemas/Bookmark"}),
                        "200": _json("replaced", {"$ref": "#/components/schemas/Bookmark"}),
                        "409": _json("the run already keeps 100 bookmarks"), "413": _json("state above 16 KiB")},
                       body={"required": True, "content": {"application/json": {"schema": {
                           "type": "object", "required": ["state"], "properties": {"state": BOOKMARK_STATE}}}}},
                       write=True),
            "delete": _op("Delete a named view", [RUN, BOOKMARK], {"204": {"description": "deleted"}}, write=True)},
        "/api/v1/runs/{run_id}/projections": {
            "get": _op("Projection jobs of this run since the server started", [RUN], {"200": _json(
                "jobs", {"type": "array", "items": {"$ref": "#/components/schemas/ProjectionJob"}})}),
            "post": _op("Compute a projection in the background; its reductions are appended to the run", [RUN],
                        {"202": _json("queued", {"$ref": "#/components/schemas/ProjectionJob"})},
                        body={"required": True, "content": {"application/json": {"schema": {
                            "type": "object", "required": ["embedding_id", "method"], "properties": {
                                "embedding_id": HEX32, "method": {"type": "string", "enum": ["pca", "tsne", "umap", "pacmap"]},
                                "params": {"type": "object", "description": "n_components (2|3), random_state, metric; "
                                           "perplexity, n_iter (tsne); n_neighbors (umap, pacmap); min_dist, n_epochs "
                                           "(umap); num_iters (pacmap)"},
                                "scope": {"type": "string", "enum": ["embedding", "group"], "default": "embedding",
                                          "description": "group: every step of the embedding's group through one "
                                                         "reducer fitted on the last step (a timeline)"}}}}}},
                        write=True)},
        "/api/v1/runs/{run_id}/projections/{job_id}": {"get": _op(
            "One projection job: queued, running (elapsed, cpu_seconds), done (reduction_ids) or failed (error)",
            [RUN, _param("job_id", HEX32)], {"200": _json("job", {"$ref": "#/components/schemas/ProjectionJob"})})},
    }
    run_summary = {"type": "object", "properties": {
        "run_id": HEX32, "project": PROJECT, "name": {"type": ["string", "null"]},
        "created": {"type": ["number", "null"]}, "status": {"type": "string"},
        "parameters": {"type": "object"}, "n_embeddings": {"type": "integer"}}}
    record_schema, record_components = json_schemas("#/components/schemas/{name}")
    schemas = {
        "Error": {"type": "object", "required": ["error"], "properties": {
            "error": {"type": "string"},
            "next_seq": {"type": "integer", "description": "409: the seq the run expects next"},
            "missing_blobs": {"type": "array", "items": SHA256, "description": "409: blobs to upload first"},
            "offset": {"type": "integer", "description": "409: the upload's offset; 422: the corrupt frame's byte offset"},
            "file": {"type": "string", "description": "422: the corrupt journal segment, relative to the root"},
            "retry_after": {"type": "integer", "description": "507: seconds to wait before retrying"}}},
        "RunSummary": run_summary,
        "Run": {"type": "object", "properties": {
            **run_summary["properties"], "others": {"type": "object"}, "next_seq": {"type": "integer"},
            "metric_names": {"type": "array", "items": {"type": "string"}}}},
        "UploadState": {"type": "object", "properties": {"offset": {"type": "integer"},
                                                         "complete": {"type": "boolean"}}},
        "RecordBatch": {"type": "object", "required": ["records"], "properties": {"records": {
            "type": "array", "items": record_schema}}},
        "Bookmark": {"type": "object", "properties": {
            "name": {"type": "string"}, "state": BOOKMARK_STATE, "created": {"type": "number"}, "updated": {"type": "number"}}},
        "ProjectionJob": {"type": "object", "properties": {
            "id": HEX32, "run_id": HEX32, "embedding_id": HEX32, "method": {"type": "string"}, "params": {"type": "object"},
            "scope": {"type": "string"}, "label": {"type": "string"},
            "state": {"type": "string", "enum": ["queued", "running", "done", "failed"]},
            "error": {"type": ["string", "null"]}, "position": {"type": "integer", "description": "queued: jobs ahead"},
            "elapsed": {"type": "number"}, "cpu_seconds": {"type": "number"},
            "reduction_ids": {"type": "array", "items": HEX32}}},
        **record_components,  # every record kind, generated from tracker_sdk.runformat.records
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "tracker_sdk tracking server", "version": "1",
                 "description": "Errors are JSON {\"error\": message} with a 4xx status. Writes need "
                                "'Authorization: Bearer <key>' when the server has an API key."},
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }
