"""URLs choose their backend through the registry: built-in schemes, registered ones, entry points."""

from importlib.metadata import EntryPoint

import pytest

from tracker_sdk.errors import InvalidArgumentError
from tracker_sdk.sync import LocalBackend, for_experiment, open_backend, register_backend
from tracker_sdk.sync import _registered as registered
from tracker_sdk.sync.background import BackgroundSync, upload_command
from tracker_sdk.sync.directory import DirectoryBackend
from tracker_sdk.sync.http import HTTPBackend
from tracker_sdk.sync.protocol import Backend


def test_http_and_https_sync_in_the_background_from_the_local_root(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACKER_DIR", str(tmp_path / "runs"))
    for url in ("http://127.0.0.1:8470/", "https://tracker.example.org"):
        synced = for_experiment(url, api_key="k")
        assert isinstance(synced, BackgroundSync) and isinstance(synced.destination, HTTPBackend)
        assert synced.url == url.rstrip("/") and synced.root == tmp_path / "runs" and synced.destination.api_key == "k"
    monkeypatch.delenv("TRACKER_DIR")
    assert str(for_experiment("http://127.0.0.1:8470").root) == "tracker-runs"


def test_paths_and_file_urls_are_offline(tmp_path):
    for url in (str(tmp_path), tmp_path.as_uri()):
        backend = for_experiment(url)
        assert isinstance(backend, LocalBackend) and backend.root == tmp_path


def test_tracker_url_chooses_when_no_url_is_given(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACKER_URL", "http://127.0.0.1:1")
    assert isinstance(for_experiment().destination, HTTPBackend)
    monkeypatch.setenv("TRACKER_URL", str(tmp_path))
    assert for_experiment().root == tmp_path


def test_unknown_scheme_lists_the_known_ones():
    with pytest.raises(InvalidArgumentError, match=r"unknown scheme 'ftp'; known: file, http, https, s3"):
        open_backend("ftp://host/runs")


def test_a_path_as_destination_is_the_directory_backend(tmp_path):
    backend = open_backend(str(tmp_path / "copy"))
    assert isinstance(backend, DirectoryBackend) and isinstance(backend, Backend)
    assert backend.url == (tmp_path / "copy").as_uri()


class MemoryBackend:
    """A third-party backend: only its factory is registered (the contract suite covers real ones)."""

    def __init__(self, uri, **options):
        self.url, self.options = uri, options


def test_register_backend_adds_a_scheme_for_experiments_and_uploads(monkeypatch):
    monkeypatch.setitem(registered, "mem", MemoryBackend)
    synced = for_experiment("mem://bucket", api_key="k")
    assert isinstance(synced.destination, MemoryBackend) and synced.destination.options == {"api_key": "k"}
    register_backend("mem", lambda uri, **options: MemoryBackend(uri, replaced=True))
    assert open_backend("mem://x").options == {"replaced": True}


def test_register_backend_checks_its_arguments():
    with pytest.raises(InvalidArgumentError, match="scheme must be a lowercase URI scheme"):
        register_backend("My Scheme", MemoryBackend)
    with pytest.raises(InvalidArgumentError, match="factory must be callable"):
        register_backend("mine", "not callable")


def test_an_entry_point_adds_a_scheme(monkeypatch):
    import tracker_sdk.sync as sync

    point = EntryPoint(name="plug", value=f"{__name__}:MemoryBackend", group=sync.ENTRY_POINT_GROUP)
    monkeypatch.setattr(sync, "_entry_points", lambda: {"plug": point})
    assert isinstance(open_backend("plug://somewhere"), MemoryBackend)
    assert "plug" in sync.known_schemes()


def test_a_url_without_a_host_is_refused_before_any_run_is_written():
    with pytest.raises(InvalidArgumentError, match="url must look like http://host:port"):
        for_experiment("http://")


def test_upload_command_quotes_paths_and_never_prints_the_key(tmp_path, monkeypatch):
    run_dir = tmp_path / "my runs" / "p" / ("a" * 32)
    command = upload_command(run_dir, "http://h:1", "secret")
    assert command == f"tracker upload '{run_dir}' --url http://h:1 --api-key YOUR_API_KEY"
    monkeypatch.setenv("TRACKER_API_KEY", "secret")  # the command reads it from the environment itself
    assert "--api-key" not in upload_command(run_dir, "http://h:1", "secret")
