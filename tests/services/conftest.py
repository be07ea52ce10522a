"""The fixtures of tests/services.py for this directory."""

from services import postgres_url, s3_prefix, s3_service  # noqa: F401  (tests/ is on sys.path)
