"""Constants of the run format and the record kinds it knows."""

FORMAT_VERSION = 1
RUN_JSON = "run.json"
RECORD_KINDS = ("parameter", "metric", "other", "asset", "embedding", "reduction", "columns", "end")
DEFAULT_PROJECT = "default"
