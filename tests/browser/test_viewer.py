"""The viewer in headless Chromium against a real tracker-server serving real logged runs."""

from __future__ import annotations

import csv
import io
import json
from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest
import requests

from viewer_runs import XSS_LABELS


def _exact_knn(x: np.ndarray, i: int, k: int, metric: str) -> list[int]:
    x = x.astype(np.float64)
    if metric == "cosine":
        xn = x / np.linalg.norm(x, axis=1, keepdims=True)
        d = 1.0 - xn @ xn[i]
    else:
        d = np.linalg.norm(x - x[i], axis=1)
    d[i] = np.inf
    return np.argsort(d, kind="stable")[:k].tolist()


def _colors(probe) -> np.ndarray:
    return np.array(probe.js("Array.from(window.__viewer.colors)"), dtype=np.uint8).reshape(-1, 4)[:, :3]


def _plot_pixels(probe) -> np.ndarray:
    from PIL import Image
    png = probe.page.locator("#plot").screenshot()
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)


def test_pages_list_projects_runs_and_a_run(probe, server, logged):
    run = logged["main"]
    probe.page.goto(server.url + "/?debug=1")  # the hooks stay on through client-side navigation
    probe.page.locator("#projects a", has_text="vision").click()
    probe.page.wait_for_selector("#runs")
    row = probe.page.locator("#runs tbody tr", has_text="mlp-baseline")
    assert "finished" in row.inner_text()
    assert "lr=0.01" in row.inner_text() and "optimizer=adam" in row.inner_text()
    row.locator("a").first.click()
    probe.page.wait_for_selector("#charts")
    assert probe.page.url.endswith(f"/runs/{run.run_id}")
    captions = probe.page.locator("#charts figcaption").all_inner_texts()
    assert any(c.startswith("accuracy") for c in captions) and any(c.startswith("loss") for c in captions)
    assert probe.page.locator("#charts svg polyline").count() == 2
    emb = probe.page.locator("#embeddings")
    assert "group: mlp" in emb.inner_text() and "penultimate" in emb.inner_text()
    assert emb.locator("a", has_text="step").count() == 3
    emb.locator("a", has_text="step 1").click()
    probe.wait("window.__viewer && window.__viewer.state === 'ready'")
    assert probe.js("window.__viewer.embeddingId") == run.embedding_ids[1]
    assert not probe.errors


def test_view_draws_every_point_and_colours_by_column(probe, server, logged):
    run = logged["main"]
    probe.open_view(server.view_url(run, 2, dims="2", thumbs="off"))
    assert probe.js("window.__viewer.pointCount") == 600
    assert probe.js("window.__viewer.n") == 600
    assert probe.js("window.__viewer.colorBy") == "label"
    colors = _colors(probe)
    labels = np.array(run.labels)
    # one colour per class, different colours for different classes
    per_class = {lab: {tuple(c) for c in colors[labels == lab]} for lab in set(run.labels)}
    assert all(len(v) == 1 for v in per_class.values()), per_class
    assert len({next(iter(v)) for v in per_class.values()}) == 4
    legend = probe.page.locator("#legend").inner_text()
    assert all(f"class_{c}" in legend for c in range(4))
    before_px = _plot_pixels(probe)

    probe.page.select_option("#color-select", "outlier_score")
    probe.wait("window.__viewer.colorBy === 'outlier_score'")
    probe.js("new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))")
    after = _colors(probe)
    assert (after != colors).any(axis=1).mean() > 0.9
    assert probe.js("window.__viewer.legend.kind") == "numeric"
    scores = np.array(run.columns[2]["outlier_score"])  # written by exp.analyze
    lo, hi = probe.js("[window.__viewer.legend.min, window.__viewer.legend.max]")
    assert lo == pytest.approx(scores.min()) and hi == pytest.approx(scores.max())
    # numeric scale: the highest score gets the last viridis colour (yellow), the lowest the first
    assert tuple(after[int(scores.argmax())]) == (253, 231, 37)
    assert tuple(after[int(scores.argmin())]) == (68, 1, 84)
    # and the drawn frame changed too
    after_px = _plot_pixels(probe)
    assert np.abs(after_px - before_px).sum(axis=2).astype(bool).mean() > 0.002
    assert parse_qs(urlparse(probe.wait("location.href.includes('color=outlier_score') && location.href")).query)["color"] == ["outlier_score"]
    assert not probe.errors


def test_step_slider_moves_points_between_steps(probe, server, logged):
    run = logged["main"]
    probe.open_view(server.view_url(run, 0, dims="3"))
    assert probe.js("window.__viewer.steps") == [0, 1, 2]
    i = 7
    np.testing.assert_allclose(probe.js(f"window.__viewer.position({i})"), run.coords[0][i], rtol=1e-5, atol=1e-5)
    start_px = probe.js(f"window.__viewer.screenOf({i})")
    slider = probe.page.locator("#step-slider")
    # dragging to halfway (input events, no change yet): interpolated positions
    slider.evaluate("(el) => { el.value = '0.5'; el.dispatchEvent(new Event('input', {bubbles: true})); }")
    probe.wait("Math.abs(window.__viewer.stepPos - 0.5) < 1e-6")
    mid = (run.coords[0][i] + run.coords[1][i]) / 2
    np.testing.assert_allclose(probe.js(f"window.__viewer.position({i})"), mid, rtol=1e-4, atol=1e-4)
    slider.fill("2")
    probe.wait(f"window.__viewer.embeddingId === '{run.embedding_ids[2]}'")
    got = np.array(probe.js("Array.from({length: 600}, (_, i) => window.__viewer.position(i))"))
    np.testing.assert_allclose(got, run.coords[2], rtol=1e-5, atol=1e-5)
    moved = probe.js(f"window.__viewer.screenOf({i})")
    assert np.hypot(moved[0] - start_px[0], moved[1] - start_px[1]) > 3
    assert parse_qs(urlparse(probe.wait("location.href.includes('step=2') && location.href")).query)["emb"] == [run.embedding_ids[2]]
    # play runs through the steps and stops at the last one
    slider.fill("0")
    probe.wait(f"window.__viewer.embeddingId === '{run.embedding_ids[0]}'")
    probe.page.click("#play")
    probe.wait("window.__viewer.stepPos > 0 && window.__viewer.stepPos < 2", timeout=10)
    probe.wait(f"window.__viewer.embeddingId === '{run.embedding_ids[2]}'", timeout=20)
    assert not probe.errors


def _lasso(probe, poly_page_px):
    page = probe.page
    page.click("#lasso")
    page.mouse.move(*poly_page_px[0])
    page.mouse.down()
    for a, b in zip(poly_page_px, poly_page_px[1:] + poly_page_px[:1]):
        for t in np.linspace(0, 1, 8)[1:]:
            page.mouse.move(a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t)
    page.mouse.up()


def test_lasso_selects_the_points_in_a_region_and_exports_them(probe, server, logged):
    run = logged["main"]
    probe.open_view(server.view_url(run, 2, dims="2", thumbs="off"))
    xy = run.coords[2][:, :2]
    labels = np.array(run.labels)
    # a rectangle around class_1 in data space, with a margin that holds no other class
    c1 = xy[labels == "class_1"]
    lo, hi = c1.min(axis=0) - 0.5, c1.max(axis=0) + 0.5
    inside = np.all((xy >= lo) & (xy <= hi), axis=1)
    expected = np.flatnonzero(inside).tolist()
    assert set(labels[inside]) == {"class_1"} and len(expected) == 150
    corners = [(lo[0], lo[1]), (hi[0], lo[1]), (hi[0], hi[1]), (lo[0], hi[1])]
    poly = [tuple(probe.js(f"window.__viewer.screenOfPoint({x}, {y}, 0)")) for x, y in corners]
    _lasso(probe, poly)
    probe.wait("window.__viewer.selection.length > 0")
    assert probe.js("window.__viewer.selection") == expected
    assert probe.page.locator("#selection-count").inner_text().startswith("150 selected")
    assert probe.page.locator("#selection-rows tbody tr").count() == 150

    with probe.page.expect_download() as dl:
        probe.page.click("#export-csv")
    rows = list(csv.DictReader(io.StringIO(open(dl.value.path(), encoding="utf-8").read())))
    assert [int(r["row"]) for r in rows] == expected
    assert {r["label"] for r in rows} == {"class_1"}
    assert float(rows[0]["outlier_score"]) == run.columns[2]["outlier_score"][expected[0]]  # full precision
    assert float(rows[0]["proj_x"]) == pytest.approx(float(xy[expected[0], 0]), rel=1e-5)

    with probe.page.expect_download() as dl:
        probe.page.click("#export-json")
    doc = json.loads(open(dl.value.path(), encoding="utf-8").read())
    assert doc["embedding"] == run.embedding_ids[2] and doc["run"] == run.run_id
    assert [r["row"] for r in doc["rows"]] == expected
    assert doc["rows"][0]["split"] in ("train", "test")

    # the selection is in the URL and comes back on reload
    url = probe.wait("location.href.includes('sel=') && location.href")
    probe.open_view(url)
    assert probe.js("window.__viewer.selection") == expected
    assert not probe.errors


def test_click_asks_the_server_for_true_nearest_neighbours(probe, server, logged):
    run = logged["main"]
    probe.open_view(server.view_url(run, 2, dims="2", thumbs="off"))
    xy = run.coords[2][:, :2]
    # an isolated point on screen, so the click cannot land on another one
    d = np.linalg.norm(xy[:, None, :] - xy[None, :, :], axis=2)
    np.fill_diagonal(d, np.inf)
    i = int(d.min(axis=1).argmax())
    x, y = probe.js(f"window.__viewer.screenOf({i})")
    probe.page.mouse.move(x, y)
    probe.wait(f"window.__viewer.hovered === {i}")
    card = probe.page.locator("#hover-card")
    assert card.is_visible() and run.labels[i] in card.inner_text()
    probe.page.mouse.click(x, y)
    probe.wait(f"window.__viewer.neighbors && window.__viewer.neighbors.index === {i}")
    nb = probe.js("window.__viewer.neighbors")
    assert nb["metric"] == "cosine"
    assert nb["ids"] == _exact_knn(run.vectors[2], i, 10, "cosine")
    flags = probe.js("Array.from(window.__viewer.flags)")
    assert flags[i] & 4 and all(flags[j] & 2 for j in nb["ids"])

    probe.page.select_option("#nb-metric", "euclidean")
    probe.page.fill("#nb-k", "25")
    probe.page.locator("#nb-k").dispatch_event("change")
    probe.wait("window.__viewer.neighbors.metric === 'euclidean' && window.__viewer.neighbors.ids.length === 25")
    assert probe.js("window.__viewer.neighbors.ids") == _exact_knn(run.vectors[2], i, 25, "euclidean")
    assert probe.page.locator("#neighbors li").count() == 25
    assert not probe.errors


def test_search_filter_and_top_n_by_score(probe, server, logged):
    run = logged["main"]
    probe.open_view(server.view_url(run, 2, dims="2", thumbs="off"))
    labels = np.array(run.labels)
    probe.page.fill("#search", "CLASS_2")
    probe.wait("window.__viewer.filterCount === 150")
    flags = np.array(probe.js("Array.from(window.__viewer.flags)"))
    assert ((flags & 8) == 0).tolist() == (labels == "class_2").tolist()
    probe.page.click("#select-matches")
    probe.wait("window.__viewer.selection.length === 150")
    assert probe.js("window.__viewer.selection") == np.flatnonzero(labels == "class_2").tolist()

    # numeric range on an analysis score column (exp.analyze wrote it)
    scores = np.array(run.columns[2]["outlier_score"])
    threshold = float(np.quantile(scores, 0.8))
    probe.page.fill("#search", "")
    probe.page.select_option("#filter-column", "outlier_score")
    probe.page.fill("#filter-min", repr(threshold))
    expected = int((scores >= threshold).sum())
    assert 0 < expected < 600
    probe.wait(f"window.__viewer.filterCount === {expected}")

    # top N by score: the highest outlier scores, and the button selects them
    assert probe.page.locator("#top-column").input_value() == "outlier_score"
    probe.page.fill("#top-n", "7")
    probe.page.locator("#top-n").dispatch_event("change")
    top = np.argsort(-scores, kind="stable")[:7].tolist()
    probe.wait("window.__viewer.topIndices.length === 7")
    assert probe.js("window.__viewer.topIndices") == top
    assert probe.page.locator("#top-list li").count() == 7
    probe.page.click("#top-select")
    probe.wait("window.__viewer.selection.length === 7")
    assert probe.js("window.__viewer.selection") == sorted(top)
    probe.page.select_option("#top-order", "asc")
    probe.wait(f"window.__viewer.topIndices[0] === {int(scores.argmin())}")
    # every analysis column can be ranked
    options = probe.page.locator("#top-column option").all_inner_texts()
    assert {"outlier_score", "label_disagreement", "split_shift"} <= set(options)
    assert not probe.errors


def test_sprites_hover_card_badge_and_trails(probe, server, logged):
    run = logged["main"]
    probe.open_view(server.view_url(run, 0, dims="3"))
    probe.wait("window.__viewer.spriteLoaded && window.__viewer.spriteOn")  # 600 points: thumbnails by default
    badge = probe.page.locator("#trust-badge").inner_text()
    assert f"trustworthiness {run.quality[0]['trustworthiness']:.3f}" in badge and "PCA 3D" in badge
    i = 11
    x, y = probe.js(f"window.__viewer.screenOf({i})")
    probe.page.mouse.move(x, y)
    probe.wait("window.__viewer.hovered >= 0")
    h = probe.js("window.__viewer.hovered")
    thumb = probe.page.locator("#hover-card canvas.thumb")
    assert thumb.count() == 1 and thumb.evaluate("c => [c.width, c.height]") == [128, 128]
    assert f"{h}" in probe.page.locator("#hover-card").inner_text()
    # trails across the three steps for a selection
    probe.js("document.querySelector('#top-select').click()")
    probe.wait("window.__viewer.selection.length === 10")
    probe.page.check("#trails")
    probe.wait("window.__viewer.trailSegments === 20")
    probe.page.select_option("#thumbs", "off")
    probe.wait("!window.__viewer.spriteOn")
    assert not probe.errors


def test_without_debug_the_page_works_and_exposes_no_test_hooks(probe, server, logged):
    run = logged["main"]
    page = probe.page
    page.goto(f"{server.url}/view?run={run.run_id}&emb={run.embedding_ids[2]}&dims=2&thumbs=off")
    page.wait_for_selector("#legend .legend-item")  # metadata arrived and coloured the points
    url = probe.wait("location.href.includes('color=label') && location.href")  # the view wrote its state
    assert "debug" not in parse_qs(urlparse(url).query)
    assert probe.js("typeof window.__viewer") == "undefined"
    pixels = _plot_pixels(probe)
    assert (pixels.sum(axis=2) < 600).mean() > 0.001  # coloured points, not a blank white plot
    assert not probe.errors


def test_user_strings_render_as_text_and_nothing_executes(probe, server, logged):
    run = logged["xss"]
    page = probe.page
    resp = page.goto(server.url + "/?debug=1")
    csp = resp.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    page.locator("#projects a", has_text="xss").click()
    page.wait_for_selector("#runs")
    assert XSS_LABELS[0] in page.locator("#runs").inner_text()
    page.locator("#runs a", has_text=XSS_LABELS[0]).click()
    page.wait_for_selector("#embeddings")
    assert XSS_LABELS[0] in page.locator("h1").inner_text()
    assert f"group: {XSS_LABELS[2]}" in page.locator("#embeddings").inner_text()
    assert XSS_LABELS[1] in page.locator("#embeddings").inner_text()
    probe.open_view(server.view_url(run, 0, dims="2"))
    legend = page.locator("#legend").inner_text()
    for label in XSS_LABELS:
        assert label in legend
    i = run.labels.index(XSS_LABELS[0])
    x, y = probe.js(f"window.__viewer.screenOf({i})")
    page.mouse.move(x, y)
    probe.wait("window.__viewer.hovered >= 0")
    card = page.locator("#hover-card").inner_text()
    assert run.labels[probe.js("window.__viewer.hovered")] in card
    assert XSS_LABELS[1] in page.locator("#crumbs").inner_text()
    page.mouse.click(x, y)
    probe.wait("window.__viewer.neighbors !== null && window.__viewer.neighbors !== undefined")
    page.wait_for_timeout(300)
    assert probe.js("window.__xss") is None
    assert page.locator("img[src='x'], script:not([src]), svg[onload]").count() == 0
    assert not probe.dialogs
    assert not probe.errors


def test_api_sends_arrays_as_binary_float32(server, logged):
    run = logged["main"]
    r = requests.get(f"{server.url}/api/v1/runs/{run.run_id}/reductions/{run.reduction_ids[0]}/coords", timeout=10)
    assert r.headers["X-Shape"] == "600,3" and not r.headers["content-type"].startswith("application/json")
    np.testing.assert_array_equal(np.frombuffer(r.content, "<f4").reshape(600, 3), run.coords[0])


def test_unknown_embedding_and_one_without_projection_say_so(probe, server, logged):
    run = logged["main"]
    probe.page.goto(f"{server.url}/view?run={run.run_id}&emb={'0' * 32}&debug=1")
    probe.wait("window.__viewer && window.__viewer.state === 'error'")
    assert "has no embedding" in probe.page.locator("#main .error").inner_text()
    probe.page.goto(f"{server.url}/runs/{run.run_id}?debug=1")
    probe.page.wait_for_selector("#embeddings")
    row = probe.page.locator("#embeddings tr", has_text="none stored")
    assert row.count() == 1
    row.locator("a").click()
    probe.wait("window.__viewer && window.__viewer.state === 'error'")
    assert probe.page.url.endswith(f"emb={run.raw_embedding_id}")
    message = probe.page.locator("#main .error").inner_text()
    assert "No stored projection" in message and "never computes one" in message
    assert probe.js("window.__viewer.pointCount") == 0


def test_method_choice_legend_selection_and_url_round_trip(probe, server, logged):
    run = logged["main"]
    probe.open_view(server.view_url(run, 1, dims="3", thumbs="off"))
    assert probe.js("window.__viewer.dims") == 3
    options = probe.page.locator("#method-select option").all_inner_texts()
    # log_embedding's own per-step PCA, and the two reduce_group reducers shared by the steps
    assert len(options) == 3 and sum("shared over steps" in o for o in options) == 2
    assert probe.js("window.__viewer.reductionId") == run.reduction_ids[1]  # a shared one is the default
    from tracker_sdk.runformat import open_run
    emb = open_run(run.run_dir).embedding(run.embedding_ids[1])
    red2 = next(r for r in emb.reductions if r.n_components == 2 and r.timeline)
    probe.page.select_option("#method-select", red2.id)
    probe.wait(f"window.__viewer.reductionId === '{red2.id}'")
    assert probe.js("window.__viewer.dims") == 2
    assert probe.page.locator("#dims-select").is_disabled()
    assert probe.js("window.__viewer.steps") == [0, 1, 2]  # the 2D reducer is shared by the steps too
    got = np.array(probe.js("Array.from({length: 600}, (_, i) => window.__viewer.position(i))"))
    np.testing.assert_allclose(got[:, :2], np.asarray(red2.coords), rtol=1e-5, atol=1e-5)
    assert (got[:, 2] == 0).all()
    # a legend entry selects its category
    probe.page.select_option("#color-select", "split")
    probe.page.locator("#legend .legend-item", has_text="test").click()
    expected = [i for i in range(600) if i % 5 == 0]
    probe.wait("window.__viewer.selection.length === 120")
    assert probe.js("window.__viewer.selection") == expected
    url = probe.wait("location.href.includes('sel=') && location.href.includes('color=split') && location.href")
    q = parse_qs(urlparse(url).query)
    assert q["red"] == [red2.id] and q["step"] == ["1"] and q["emb"] == [run.embedding_ids[1]]
    # a fresh page on that URL shows the same view
    probe.open_view(url)
    assert probe.js("[window.__viewer.reductionId, window.__viewer.colorBy, window.__viewer.embeddingId, window.__viewer.dims]") == \
        [red2.id, "split", run.embedding_ids[1], 2]
    assert probe.js("window.__viewer.selection") == expected
    assert probe.page.locator("#color-select").input_value() == "split"
    assert not probe.errors
