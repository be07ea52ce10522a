"""http:// and https:// URLs choose HTTPBackend; its local root and URL checks."""

import pytest

from tracker_sdk.errors import InvalidArgumentError
from tracker_sdk.sync import get_backend
from tracker_sdk.sync.http import HTTPBackend, upload_command


def test_http_and_https_pick_the_http_backend_with_the_local_root(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACKER_DIR", str(tmp_path / "runs"))
    for url in ("http://127.0.0.1:8470/", "https://tracker.example.org"):
        backend = get_backend(url, api_key="k")
        assert isinstance(backend, HTTPBackend)
        assert backend.url == url.rstrip("/") and backend.root == tmp_path / "runs" and backend.api_key == "k"
    monkeypatch.delenv("TRACKER_DIR")
    assert str(get_backend("http://127.0.0.1:8470").root) == "tracker-runs"


def test_unknown_scheme_lists_http_and_https():
    with pytest.raises(InvalidArgumentError, match=r"unknown scheme 'ftp'.*known: .*http, https"):
        get_backend("ftp://host/runs")


def test_a_url_without_a_host_is_refused_before_any_run_is_written():
    with pytest.raises(InvalidArgumentError, match="url must look like http://host:port"):
        HTTPBackend("http://")


def test_upload_command_quotes_paths_and_never_prints_the_key(tmp_path, monkeypatch):
    run_dir = tmp_path / "my runs" / "p" / ("a" * 32)
    command = upload_command(run_dir, "http://h:1", "secret")
    assert command == f"tracker upload '{run_dir}' --url http://h:1 --api-key YOUR_API_KEY"
    monkeypatch.setenv("TRACKER_API_KEY", "secret")  # the command reads it from the environment itself
    assert "--api-key" not in upload_command(run_dir, "http://h:1", "secret")
