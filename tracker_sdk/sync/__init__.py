"""Backends chosen by URI: where a run's local copy lives and whether it is uploaded.

``file://`` or a bare path writes only the local run directory. Other schemes map to an
implementation imported on first use; an unknown scheme lists the registered ones.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from urllib.parse import unquote, urlparse

from ..errors import InvalidArgumentError

DEFAULT_ROOT = "./tracker-runs"


class LocalBackend:
    """Writes runs under ``root`` and uploads nothing."""

    uri_schemes = ("file", "")

    def __init__(self, root):
        self.root = Path(root).expanduser()
        self.url = None

    def start(self, run_dir: Path) -> None:
        """Nothing to do: the local run directory is the whole result."""

    def finish(self, timeout: float | None = None) -> str | None:
        """Return a summary of what is still pending (always nothing for the local backend)."""
        return None


# scheme -> "module:Class"; imported only when a URI with that scheme is used
BACKENDS: dict[str, str] = {
    "file": "tracker_sdk.sync:LocalBackend",
    "http": "tracker_sdk.sync.http:HTTPBackend",
    "https": "tracker_sdk.sync.http:HTTPBackend",
}


def local_path_from_uri(uri: str) -> Path:
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    return Path(uri)


def default_local_root() -> Path:
    """The local run root: ``TRACKER_URL`` when it is a path, else ``TRACKER_DIR``, else ./tracker-runs."""
    uri = os.environ.get("TRACKER_URL") or ""
    if urlparse(uri).scheme in ("", "file") and uri:
        return local_path_from_uri(uri)
    return Path(os.environ.get("TRACKER_DIR") or DEFAULT_ROOT)


def get_backend(uri: str | None = None, **options):
    """Return the backend for ``uri`` (``url=`` argument, else ``TRACKER_URL``, else ./tracker-runs)."""
    uri = uri if uri is not None else os.environ.get("TRACKER_URL") or DEFAULT_ROOT
    uri = str(uri)
    scheme = urlparse(uri).scheme.lower()
    if scheme in ("", "file") or (len(scheme) == 1 and os.name == "nt"):
        return LocalBackend(local_path_from_uri(uri))
    if scheme not in BACKENDS:
        known = ", ".join(sorted(set(BACKENDS) | {"a bare path"}))
        raise InvalidArgumentError(f"url has the unknown scheme {scheme!r} ({uri!r}); known: {known}")
    module_name, class_name = BACKENDS[scheme].split(":")
    backend_class = getattr(importlib.import_module(module_name), class_name)
    return backend_class(uri, **options)
