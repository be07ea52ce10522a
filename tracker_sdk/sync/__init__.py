"""Where runs go, chosen by URI: the backend registry and the local root every run is written to first.

An Experiment whose url is a bare path or ``file://`` is offline: the run directory is the
whole result. Any other scheme names a destination backend (the protocol in
:mod:`.protocol`): the run is written under the local root first, and a background thread
(:mod:`.background`) uploads it; ``tracker upload`` uses the same backends.

Built in: ``http(s)://`` (the tracking server), ``s3://bucket/prefix`` (a bucket, no server),
and ``file://`` or a path (another run root, as the destination of ``tracker upload``). More
come from :func:`register_backend` or from an entry point in the group
``tracker_sdk.backends`` (name: the scheme, value: ``module:factory``); a factory is called
as ``factory(uri, **options)`` and returns a backend. Implementations are imported on
first use; an unknown scheme lists the known ones.
"""

from __future__ import annotations

import importlib
import os
import re
from pathlib import Path
from typing import Callable
from urllib.parse import unquote, urlparse

from ..errors import InvalidArgumentError

DEFAULT_ROOT = "./tracker-runs"
ENTRY_POINT_GROUP = "tracker_sdk.backends"
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*$")

# scheme -> "module:factory"; imported only when a URI with that scheme is used
_BUILTIN: dict[str, str] = {
    "file": "tracker_sdk.sync.directory:DirectoryBackend",
    "http": "tracker_sdk.sync.http:HTTPBackend",
    "https": "tracker_sdk.sync.http:HTTPBackend",
    "s3": "tracker_sdk.sync.s3:S3Backend",
}
_registered: dict[str, Callable] = {}


class LocalBackend:
    """An offline run: written under ``root``, uploaded nowhere."""

    def __init__(self, root):
        self.root = Path(root).expanduser()
        self.url = None

    def start(self, run_dir: Path) -> None:
        """Nothing to do: the local run directory is the whole result."""

    def finish(self, timeout: float | None = None) -> str | None:
        """Return a summary of what is still pending (always nothing offline)."""
        return None


def register_backend(scheme: str, factory: Callable) -> None:
    """Make ``scheme://...`` URLs open ``factory(uri, **options)`` (replaces an earlier registration)."""
    if not isinstance(scheme, str) or not _SCHEME.match(scheme):
        raise InvalidArgumentError(f"scheme must be a lowercase URI scheme such as 'myorg+s3'; got {scheme!r}")
    if not callable(factory):
        raise InvalidArgumentError(f"factory must be callable(uri, **options); got {type(factory).__name__}")
    _registered[scheme] = factory


def _entry_points() -> dict:
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def known_schemes() -> list[str]:
    return sorted(set(_BUILTIN) | set(_registered) | set(_entry_points()))


def _factory(scheme: str) -> Callable:
    if scheme in _registered:
        return _registered[scheme]
    plugin = _entry_points().get(scheme)
    if plugin is not None:
        return plugin.load()
    if scheme in _BUILTIN:
        module_name, name = _BUILTIN[scheme].split(":")
        return getattr(importlib.import_module(module_name), name)
    raise InvalidArgumentError(f"url has the unknown scheme {scheme!r}; known: {', '.join(known_schemes())} "
                               "or a bare path")


def _scheme(uri: str) -> str:
    scheme = urlparse(uri).scheme.lower()
    return "" if len(scheme) == 1 and os.name == "nt" else scheme  # C:\\ is a drive, not a scheme


def is_local(uri) -> bool:
    """Whether ``uri`` is a path or ``file://`` (an offline run root), not a remote destination."""
    return _scheme(str(uri)) in ("", "file")


def open_backend(uri, **options):
    """The destination backend for ``uri``: registered schemes, entry points, then the built-in ones."""
    uri = str(uri)
    return _factory(_scheme(uri) or "file")(uri, **options)


def local_path_from_uri(uri: str) -> Path:
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    return Path(uri)


def default_local_root() -> Path:
    """The local run root: ``TRACKER_URL`` when it is a path, else ``TRACKER_DIR``, else ./tracker-runs."""
    uri = os.environ.get("TRACKER_URL") or ""
    if uri and is_local(uri):
        return local_path_from_uri(uri)
    return Path(os.environ.get("TRACKER_DIR") or DEFAULT_ROOT)


def for_experiment(url=None, *, api_key: str | None = None):
    """What an Experiment logs through: ``url``, else ``TRACKER_URL``, else ./tracker-runs.

    A path is offline (:class:`LocalBackend`); any other scheme writes under the local root
    and uploads in the background (:class:`~.background.BackgroundSync`).
    """
    url = str(url if url is not None else os.environ.get("TRACKER_URL") or DEFAULT_ROOT)
    if is_local(url):
        return LocalBackend(local_path_from_uri(url))
    from .background import BackgroundSync

    options = {"api_key": api_key} if api_key is not None else {}
    return BackgroundSync(open_backend(url, **options), default_local_root())
