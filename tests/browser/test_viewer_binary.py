"""The viewer's metadata from binary columns (columns.js): the first frame is already coloured, then
hover card and search work on every column; and writes on a keyed server carry the API key the
user gives once (apikey.js)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from viewer_runs import ARTIFACTS, Server, log_run

from tracker_sdk import Experiment
from tracker_sdk.runformat import open_run

N = 20_000
LABELS = ["naïve café", "日本語", "😀 smile", "\ufeffbom first", "plain"]
KEY = "s3cret-key-for-the-viewer"


def _every_kind_of_cell(n: int) -> dict:
    big = [(-1) ** i * (2 ** 62 + i) for i in range(n)]
    return {
        "text": [None if i % 7 == 0 else LABELS[i % len(LABELS)] + "\U0001d518" * (i % 3) for i in range(n)],
        "int": [None if i % 5 == 0 else i - 20 for i in range(n)],
        "int64": big, "uint64": [2 ** 64 - 1 - i for i in range(n)],
        "float": [[1.5, math.inf, -math.inf, -0.0, None, 5e-324][i % 6] for i in range(n)],
        "bool": [None if i % 4 == 0 else i % 3 == 0 for i in range(n)],
        "mixed": [[1, 1.0, True, "1", None, 2.5, "😀", math.nan][i % 8] for i in range(n)],
    }


@pytest.fixture(scope="module")
def binary_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("binary-runs")
    run = log_run(root, project="binary", name="20k", n=N, dim=8, steps=(0,), n_components=2, metrics=False,
                  clusters=5, labels=LABELS, seed=5)
    exp = Experiment(url=str(root), project_name="binary", experiment_name="cells")
    cells = exp.log_embedding(np.zeros((64, 2), np.float32), None, metadata=_every_kind_of_cell(64), reduce=None)
    exp.end()
    run.cells = (exp.run_id, cells.id, open_run(exp.run_dir).embedding(cells.id).metadata["columns"])
    with Server(root, tmp_path_factory.mktemp("log") / "server.log") as srv:
        yield srv, run


@pytest.fixture(scope="module")
def keyed(tmp_path_factory):
    root = tmp_path_factory.mktemp("keyed-runs")
    run = log_run(root, project="keyed", name="keyed", n=300, steps=(0,), n_components=2, metrics=False, seed=9)
    server = Server(root, tmp_path_factory.mktemp("log") / "server.log")
    server.args += ["--api-key", KEY]
    with server as srv:
        yield srv, run


def _rgb(probe, i):
    return probe.js(f"Array.from(window.__viewer.colors.slice({4 * i}, {4 * i + 3}))")


def test_first_frame_coloured_then_hover_and_search_from_binary_columns(probe, binary_run):
    server, run = binary_run
    requests = []
    probe.page.on("request", lambda r: requests.append(r.url))
    probe.open_view(server.view_url(run, 0, thumbs="off"))
    api = [u.split("/api/v1", 1)[1] for u in requests if "/api/v1" in u]
    columns = [u for u in api if "/columns" in u]
    # the colour column first, with the coordinates; then the rest; never the JSON answers
    assert columns[0].endswith(f"/embeddings/{run.embedding_ids[0]}/columns?name=label&reduction={run.reduction_ids[0]}")
    assert len(columns) == 2 and "name=cluster" in columns[1] and "name=label" not in columns[1]
    assert not [u for u in api if u.endswith("/metadata") or "/reductions/" in u and u.endswith("/columns")]
    assert [w.url for w in probe.page.workers] == [server.url + "/static/fetcher.js"]  # fetched off the main thread
    stats = probe.js("({first: __viewer.firstFrameMs, coloured: __viewer.colouredMs, usable: __viewer.usableMs,"
                     " marks: __viewer.marks})")
    assert stats["coloured"] == stats["first"]  # the first frame drawn is the coloured one
    assert stats["marks"]["firstColumns"] < stats["first"] <= stats["usable"]

    # colours: every row has its label's legend colour
    legend = probe.js("window.__viewer.legend")
    assert probe.js("window.__viewer.colorBy") == "label" and legend["kind"] == "categorical"
    colour = {item["value"]: [round(c) for c in item["color"]] for item in legend["items"]}
    labels = np.array(run.labels)
    assert {item["value"]: item["count"] for item in legend["items"]} == \
        {lab: int((labels == lab).sum()) for lab in LABELS}
    rows = [0, 1, 2, 3, 4, 777, N - 1]
    for i in rows:
        assert _rgb(probe, i) == colour[run.labels[i]], i

    # the hover card shows every column of the row
    cols = run.columns[0]
    d = np.linalg.norm(run.coords[0][:200, None, :2] - run.coords[0][None, :, :2], axis=2)
    d[np.arange(200), np.arange(200)] = np.inf
    i = int(d.min(axis=1).argmax())  # the most isolated of the first 200 rows
    x, y = probe.js(f"window.__viewer.screenOf({i})")
    probe.page.mouse.move(x, y)
    probe.wait(f"window.__viewer.hovered === {i}")
    card = probe.page.locator("#hover-card").inner_text()
    assert run.labels[i] in card and cols["split"][i] in card
    assert str(cols["cluster"][i]) in card and str(round(cols["noise_norm"][i], 6))[:6] in card

    # search on a text column (non-ASCII), then a range on a float column
    probe.page.fill("#search", "😀")
    probe.wait(f"window.__viewer.filterCount === {int((labels == '😀 smile').sum())}")
    flags = np.array(probe.js("Array.from(window.__viewer.flags)"))
    assert ((flags & 8) == 0).tolist() == (labels == "😀 smile").tolist()
    probe.page.fill("#search", "")
    noise = np.array(cols["noise_norm"])
    threshold = float(np.quantile(noise, 0.75))
    probe.page.select_option("#filter-column", "noise_norm")
    probe.page.fill("#filter-min", repr(threshold))
    probe.wait(f"window.__viewer.filterCount === {int((noise >= threshold).sum())}")

    # colour by the int column: numbers from an Int32Array, same legend as the values say
    probe.page.select_option("#color-select", "cluster")
    probe.wait("window.__viewer.colorBy === 'cluster'")
    legend = probe.js("window.__viewer.legend")
    assert {item["value"]: item["count"] for item in legend["items"]} == \
        {str(c): int((np.array(cols["cluster"]) == c).sum()) for c in range(5)}
    assert not probe.errors


def test_the_page_decodes_every_kind_of_cell(probe, binary_run):
    """columns.js turns the answer into the values the JSON answer holds (infinities kept, as JS numbers)."""
    server, run = binary_run
    run_id, emb_id, stored = run.cells
    probe.page.goto(server.url + "/")
    got = probe.js("""async ([run, emb]) => {
      const { getColumns } = await import('/static/api.js');
      const answer = await getColumns(run, emb, null, []);
      const cell = (v) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : Object.is(v, -0) ? '-0' : v);
      return answer.columns.map((c) => ({ name: c.name, type: c.type, typed: !Array.isArray(c.values),
                                          values: Array.from(c.values, cell) }));
    }""", [run_id, emb_id])
    assert [c["name"] for c in got] == [c["name"] for c in stored]

    def js(v):  # a stored cell as the page holds it: JS numbers, non-finite and -0 spelled out
        if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
            return "NaN" if math.isnan(v) else "Infinity" if v > 0 else "-Infinity"
        if isinstance(v, float) and v == 0 and math.copysign(1, v) < 0:
            return "-0"
        if isinstance(v, int) and not isinstance(v, bool) and abs(v) > 2 ** 53:
            return float(v)  # a JS number holds the nearest double, as JSON.parse would
        return v

    for want, have in zip(stored, got):
        assert have["type"] == want["type"]
        expected = [js(v) for v in want["values"]]
        assert [float(v) if isinstance(v, int) and not isinstance(v, bool) and isinstance(e, float) else v
                for v, e in zip(have["values"], expected)] == expected, want["name"]
    assert {c["name"]: c["typed"] for c in got} == {"text": False, "int": False, "int64": True, "uint64": True,
                                                     "float": False, "bool": False, "mixed": False}
    assert not probe.errors


def test_json_metadata_path_still_draws_the_same_colours(probe, binary_run):
    """?debug=1&meta=json (the benchmark's baseline) reads the JSON answers: same legend, same colours."""
    server, run = binary_run
    probe.open_view(server.view_url(run, 0, thumbs="off"))
    binary = probe.js("window.__viewer.legend")
    rgb = [_rgb(probe, i) for i in (0, 5, 999)]
    probe.open_view(server.view_url(run, 0, thumbs="off", meta="json"))
    assert probe.js("window.__viewer.legend") == binary
    assert [_rgb(probe, i) for i in (0, 5, 999)] == rgb
    assert probe.js("window.__viewer.colouredMs") > probe.js("window.__viewer.firstFrameMs")
    assert not probe.errors


def test_writes_on_a_keyed_server_ask_for_the_key_once(probe, keyed):
    server, run = keyed
    page = probe.page
    probe.open_view(server.view_url(run, 0, thumbs="off"))
    page.fill("#bookmark-name", "first view")
    page.click("#bookmark-save")
    page.locator("#api-key").wait_for(state="visible")  # the write answered 401: the key is asked for
    page.fill("#api-key-input", "wrong key")
    page.click("#api-key-save")
    page.locator("#api-key-message").wait_for(state="visible")
    assert "refused" in page.locator("#api-key-message").inner_text()
    page.fill("#api-key-input", KEY)
    page.click("#api-key-save")
    probe.wait("window.__viewer.bookmarks.includes('first view')")
    assert probe.js("sessionStorage.getItem('tracker.apiKey')") == KEY
    assert page.locator("#api-key").count() == 0

    # the key stays for the tab: a reload, another bookmark and a computed projection need no question
    probe.open_view(server.view_url(run, 0, thumbs="off"))
    page.fill("#bookmark-name", "second view")
    page.click("#bookmark-save")
    probe.wait("window.__viewer.bookmarks.includes('second view')")
    page.select_option("#pj-method", "pca")
    page.click("#pj-run")
    probe.wait("window.__viewer.job && ['done', 'failed'].includes(window.__viewer.job.state)", 120)
    assert probe.js("window.__viewer.job.state") == "done", probe.js("window.__viewer.job")
    assert page.locator("#api-key").count() == 0

    # cancelling leaves the write refused, with the server's message
    probe.js("sessionStorage.clear()")
    page.fill("#bookmark-name", "third view")
    page.click("#bookmark-save")
    page.locator("#api-key").wait_for(state="visible")
    page.screenshot(path=str(ARTIFACTS / "api_key_asked.png"))
    page.click("#api-key-cancel")
    probe.wait("document.getElementById('bookmark-message').textContent.includes('401')")
    assert "third view" not in probe.js("window.__viewer.bookmarks")
    assert not [e for e in probe.errors if "401" not in e]
