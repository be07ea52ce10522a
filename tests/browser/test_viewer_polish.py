"""Viewer polish and the projector's tools, in headless Chromium against a real server.

Reset view, a frame fitted to each step (or all), the legend in natural order, top N only for
analysis scores, shortcuts whatever has focus, a hover card clear of its point, the layout
at 800x600, full labels as tooltips, Comet-style step-less timelines named by their titles,
projections computed from the page (and a failing one), text labels on points, isolating a
selection and bookmarks stored on the server. Screenshots land in test-artifacts/browser/.
"""

from __future__ import annotations

import numpy as np
import pytest
import requests
from viewer_runs import ARTIFACTS

from tracker_sdk import Experiment
from tracker_sdk.runformat import RunWriter, open_run

N = 360
CLASSES = [f"class_{c}" for c in (10, 2, 1, 11, 9)]  # natural order: 1, 2, 9, 10, 11
COUNTS = [40, 130, 60, 20, 110]  # so frequency order differs from value order


@pytest.fixture(scope="module")
def runs(tmp_path_factory, logged):
    """Two small runs logged on the session's root: steps that grow 20x, and a Comet-style timeline."""
    root = logged["root"]
    rng = np.random.default_rng(7)
    labels = [name for name, count in zip(CLASSES, COUNTS) for _ in range(count)]
    cls = np.array([CLASSES.index(x) for x in labels])
    centres = rng.normal(0, 6, (len(CLASSES), 12)).astype(np.float32)
    base = centres[cls] + rng.normal(0, 1, (N, 12)).astype(np.float32)
    images = np.zeros((N, 8, 8, 3), np.uint8)
    images[np.arange(N), :, :, cls % 3] = 220
    exp = Experiment(url=str(root), project_name="polish", experiment_name="growing steps")
    ids = []
    for step, scale in enumerate((0.05, 0.5, 1.0)):  # step 0 is a blob in the last step's frame
        ids.append(exp.log_embedding(base * scale, labels, image_data=images, title="hidden", group="mlp", step=step,
                                     metadata={"noise": rng.normal(size=N).tolist()}, reduce=None).id)
    exp.reduce_group("mlp", method="pca", n_components=2, background=False)
    exp.end()
    comet = Experiment(url=str(root), project_name="polish", experiment_name="comet style")
    comet_ids = []
    for epoch in (1, 2, 3):  # Comet's docs: one group, title "epoch-N", no step
        x = base[:150] * (0.5 + epoch / 3)
        comet_ids.append(comet.log_embedding(x, labels[:150], title=f"epoch-{epoch}", group="hidden-layer-1",
                                             reduce=None).id)
    comet.reduce_group("hidden-layer-1", method="pca", n_components=2, background=False)
    comet.end()
    return {"growing": (exp.run_id, exp.run_dir, ids, labels), "comet": (comet.run_id, comet.run_dir, comet_ids)}


def _url(server, run_id, emb, **params):
    from urllib.parse import urlencode
    return f"{server.url}/view?{urlencode({'run': run_id, 'emb': emb, 'debug': '1', **params})}"


def _rect(probe, selector):
    return probe.js(f"(() => {{ const r = document.querySelector('{selector}').getBoundingClientRect(); "
                    "return [r.left, r.top, r.right, r.bottom]; })()")


def _frame(probe):
    probe.js("new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))")


def _shot(probe, name):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    probe.page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def test_reset_view_restores_the_first_camera_and_thumbnail_size(probe, server, runs):
    run_id, _, ids, _ = runs["growing"]
    probe.open_view(_url(server, run_id, ids[2]))
    probe.wait("window.__viewer.spriteOn")
    camera, sprite_px = probe.js("[window.__viewer.camera, window.__viewer.spritePx]")
    probe.js("window.__viewer.zoomBy(3)")
    zoomed = probe.js("[window.__viewer.camera, window.__viewer.spritePx]")
    assert zoomed[0] != camera and zoomed[1] > sprite_px * 2
    probe.page.click("#reset-view")
    probe.wait(f"window.__viewer.spritePx === {sprite_px}")
    assert probe.js("window.__viewer.camera") == camera
    assert not probe.errors


def test_each_step_fills_the_plot_and_fit_all_keeps_one_frame(probe, server, runs):
    run_id, _, ids, _ = runs["growing"]
    probe.open_view(_url(server, run_id, ids[0], thumbs="off"))
    plot = _rect(probe, "#plot")
    rows = list(range(N))

    def spread():
        x0, y0, x1, y1 = probe.js(f"window.__viewer.screenBox(Array.from({{length: {N}}}, (_, i) => i))")
        return max((x1 - x0) / (plot[2] - plot[0]), (y1 - y0) / (plot[3] - plot[1]))

    assert spread() > 0.6  # step 0 (a 20x smaller cloud) fills the plot, not a blob
    x0, y0, x1, y1 = probe.js(f"window.__viewer.screenBox({rows})")
    assert x0 >= plot[0] and y0 >= plot[1] and x1 <= plot[2] and y1 <= plot[3]
    _shot(probe, "fit_each_step_step0")
    probe.page.check("#fit-all")
    probe.wait("window.__viewer.fitAll")
    _frame(probe)
    assert spread() < 0.1  # one frame for all steps: step 0 is small in it
    probe.js("window.__viewer.setStep(2)")
    assert spread() > 0.6
    assert "fit=all" in probe.wait("location.href.includes('fit=all') && location.href")
    assert not probe.errors


def test_legend_lists_values_in_natural_order_with_counts(probe, server, runs):
    run_id, _, ids, _ = runs["growing"]
    probe.open_view(_url(server, run_id, ids[2], thumbs="off"))
    items = probe.page.locator("#legend .legend-item").all_inner_texts()
    expected = [f"class_{c} {dict(zip(CLASSES, COUNTS))[f'class_{c}']}" for c in (1, 2, 9, 10, 11)]
    assert [" ".join(t.split()) for t in items] == expected
    titles = probe.page.locator("#legend .legend-item").evaluate_all("els => els.map((e) => e.title)")
    assert titles[0].startswith("class_1: 60 points")
    assert not probe.errors


def test_top_n_shows_only_analysis_scores_and_is_hidden_without_them(probe, server, runs, logged):
    run_id, _, ids, _ = runs["growing"]
    probe.open_view(_url(server, run_id, ids[2], thumbs="off"))
    assert not probe.page.locator("#sec-top").is_visible()  # no analysis: no list of labels or noise
    main = logged["main"]
    probe.open_view(server.view_url(main, 2, dims="2", thumbs="off"))
    assert probe.page.locator("#sec-top").is_visible()
    options = probe.page.locator("#top-column option").all_inner_texts()
    assert options == ["outlier_score", "label_disagreement", "split_shift"]  # never label, cluster or noise_norm
    assert not probe.errors


def test_shortcuts_work_while_a_dropdown_has_focus_but_not_in_text_fields(probe, server, runs):
    run_id, _, ids, _ = runs["growing"]
    probe.open_view(_url(server, run_id, ids[2], thumbs="off"))
    page = probe.page
    page.focus("#color-select")
    page.keyboard.press("l")
    assert page.get_attribute("#lasso", "aria-pressed") == "true"
    assert page.input_value("#color-select") == "label"  # no type-ahead to another column
    page.keyboard.press("Escape")
    assert page.get_attribute("#lasso", "aria-pressed") == "false"
    page.locator("#legend .legend-item", has_text="class_9").click()
    probe.wait("window.__viewer.selection.length === 110")
    page.focus("#method-select")
    page.keyboard.press("i")
    probe.wait("window.__viewer.isolated")
    page.keyboard.press("Escape")
    probe.wait("window.__viewer.selection.length === 0 && !window.__viewer.isolated")
    page.focus("#search")
    page.keyboard.type("l")
    assert page.input_value("#search") == "l" and page.get_attribute("#lasso", "aria-pressed") == "false"
    page.keyboard.press("Escape")  # leaves the field; the next key is a shortcut again
    page.keyboard.press("p")
    assert not page.locator("#panel").is_visible()
    page.keyboard.press("p")
    assert page.locator("#panel").is_visible()
    assert not probe.errors


def test_hover_card_stays_clear_of_the_hovered_point_and_inside_the_plot(probe, server, runs):
    run_id, _, ids, labels = runs["growing"]
    probe.open_view(_url(server, run_id, ids[2]))
    probe.wait("window.__viewer.spriteOn")
    xy = np.array(probe.js(f"Array.from({{length: {N}}}, (_, i) => window.__viewer.screenOf(i))"))
    plot = _rect(probe, "#plot")
    # the points nearest each corner of the plot and its centre
    targets = [(plot[0], plot[1]), (plot[2], plot[1]), (plot[0], plot[3]), (plot[2], plot[3]),
               ((plot[0] + plot[2]) / 2, (plot[1] + plot[3]) / 2)]
    for tx, ty in targets:
        i = int(np.argmin(np.hypot(xy[:, 0] - tx, xy[:, 1] - ty)))
        probe.page.mouse.move(*xy[i])
        h = probe.wait("window.__viewer.hovered >= 0 && window.__viewer.hovered")
        px, py = xy[h]
        x0, y0, x1, y1 = _rect(probe, "#hover-card")
        assert not (x0 - 10 <= px <= x1 + 10 and y0 - 10 <= py <= y1 + 10), (h, (px, py), (x0, y0, x1, y1))
        assert x0 >= plot[0] and y0 >= plot[1] and x1 <= plot[2] and y1 <= plot[3]
        assert labels[h] in probe.page.locator("#hover-card").inner_text()
    _shot(probe, "hover_card_clear")
    assert not probe.errors


def test_layout_at_800x600_keeps_points_clear_of_the_legend_and_labels_whole(probe, server, runs):
    run_id, _, ids, _ = runs["growing"]
    probe.page.set_viewport_size({"width": 800, "height": 600})
    probe.open_view(_url(server, run_id, ids[2]))
    probe.wait("window.__viewer.spriteOn")
    _frame(probe)
    plot, legend = _rect(probe, "#plot"), _rect(probe, "#legend")
    assert legend[0] >= plot[2] - 1  # the legend is beside the plot, never over it
    x0, y0, x1, y1 = probe.js(f"window.__viewer.screenBox(Array.from({{length: {N}}}, (_, i) => i))")
    half = probe.js("window.__viewer.spritePx") / 2  # whole thumbnails inside the plot
    assert x0 - half >= plot[0] and y0 - half >= plot[1] and x1 + half <= plot[2] and y1 + half <= plot[3]
    assert probe.js("document.documentElement.scrollWidth <= 800 && document.documentElement.scrollHeight <= 600")
    # every label that can be cut to the panel's width carries its full text as a tooltip
    method = probe.page.locator("#method-select")
    assert method.get_attribute("title") == method.evaluate("s => s.options[s.selectedIndex].textContent")
    assert "PCA 2D" in method.get_attribute("title")
    assert probe.page.locator("#method-select option").evaluate_all("os => os.every((o) => o.title === o.textContent)")
    assert probe.page.locator("#emb-select option").evaluate_all("os => os.every((o) => o.title === o.textContent)")
    _shot(probe, "layout_800x600")
    probe.page.click("#panel-toggle")
    probe.wait(f"document.querySelector('#plot').getBoundingClientRect().width > {plot[2] - plot[0] + 200}")
    _frame(probe)
    _shot(probe, "layout_800x600_panel_collapsed")
    assert not probe.errors


def test_comet_style_timeline_is_ordered_by_logging_and_named_by_titles(probe, server, runs):
    run_id, _, ids = runs["comet"]
    probe.open_view(_url(server, run_id, ids[0], thumbs="off"))
    assert probe.js("window.__viewer.stepNames") == ["epoch-1", "epoch-3"]
    assert probe.page.locator("#step-label").inner_text() == "epoch-1"
    probe.js("window.__viewer.setStep(1)")
    assert probe.js("window.__viewer.embeddingId") == ids[1]
    assert probe.page.locator("#step-label").inner_text() == "epoch-2"
    assert "null" not in probe.page.locator("#sec-steps").inner_text()
    assert "null" not in probe.page.locator("#crumbs").inner_text()
    _shot(probe, "comet_titles")
    assert not probe.errors


def _compute(page, method, **fields):
    page.select_option("#pj-method", method)
    for name, value in fields.items():
        page.fill(f"#pj-{name}", str(value))
    page.click("#pj-run")


def test_a_projection_computed_from_the_page_is_stored_for_everyone(probe, server, runs):
    run_id, run_dir, ids = runs["comet"]
    probe.open_view(_url(server, run_id, ids[2], thumbs="off"))
    before = set(probe.js("window.__viewer.reductionIds"))
    page = probe.page
    page.select_option("#pj-scope", "group")
    _compute(page, "tsne", perplexity=10, n_iter=250)
    states = set()
    while True:  # the page polls the job: its state is shown as it changes
        state = page.get_attribute("#pj-status", "data-state")
        states.add(state)
        if state in ("done", "failed"):
            break
        page.wait_for_timeout(100)
    assert state == "done", page.locator("#pj-status").inner_text()
    assert {"queued", "running"} & states
    probe.wait(f"window.__viewer.reductionIds.length === {len(before) + 1}")
    new = probe.wait(f"!{sorted(before)}.includes(window.__viewer.reductionId) && window.__viewer.reductionId")
    assert new not in before and "t-SNE 2D (perplexity 10)" in page.locator("#method-select").get_attribute("title")
    # stored in the run's journal, one per step, sharing one reducer
    stored = {red.id: red for emb in open_run(run_dir).embeddings for red in emb.reductions if red.method == "tsne"}
    assert new in stored and len(stored) == 3 and len({r.timeline for r in stored.values()}) == 1
    assert probe.js("window.__viewer.stepNames") == ["epoch-1", "epoch-3"]  # its timeline is the new one
    _shot(probe, "computed_tsne")
    # a fresh page lists it (it is there for everyone)
    listing = requests.get(f"{server.api}/runs/{run_id}/embeddings", timeout=10).json()
    assert any(r["id"] == new for e in listing for r in e["reductions"])
    assert not probe.errors


def test_a_failing_projection_job_shows_its_error(probe, server, runs):
    run_id, run_dir, ids, _ = runs["growing"]
    probe.open_view(_url(server, run_id, ids[1], thumbs="off"))
    writer = RunWriter(run_dir)  # another process holds the run: the server cannot append
    try:
        _compute(probe.page, "pca")
        probe.wait("['done', 'failed'].includes(document.querySelector('#pj-status').dataset.state)", timeout=60)
    finally:
        writer.close()
    status = probe.page.locator("#pj-status")
    assert status.get_attribute("data-state") == "failed"
    assert "being written by another process" in status.inner_text()
    assert not probe.page.locator("#pj-run").is_disabled()  # it can be tried again
    probe.errors.clear()  # the 409 of the job is the point, not a page error
    _shot(probe, "computed_failed")


def test_text_labels_are_drawn_for_the_points_in_view_when_few_enough(probe, server, runs):
    run_id, _, ids, labels = runs["growing"]
    probe.open_view(_url(server, run_id, ids[2], thumbs="off"))
    probe.page.keyboard.press("t")
    probe.wait("window.__viewer.labelState === 'too-many'")  # 360 points in view
    assert "More than 300" in probe.page.locator("#labels-note").inner_text()
    probe.js("window.__viewer.zoomBy(3)")
    probe.wait("window.__viewer.labelState === 'on' && window.__viewer.labelRows.length > 0")
    spans = probe.page.locator("#point-labels .point-label")
    rows = [int(r) for r in spans.evaluate_all("els => els.map((e) => e.dataset.row)")]
    texts = spans.all_inner_texts()
    assert rows and [labels[r] for r in rows] == texts
    assert spans.evaluate_all("els => els.every((e) => e.children.length === 0)")  # text, never markup
    # each label sits beside its point
    first = probe.js(f"window.__viewer.screenOf({rows[0]})")
    box = spans.first.bounding_box()
    assert abs(box["x"] - first[0]) < 12 and abs(box["y"] + box["height"] - first[1]) < 12
    _shot(probe, "text_labels")
    probe.page.select_option("#label-column", "noise")
    probe.wait("document.querySelector('#point-labels .point-label') && "
               "!isNaN(parseFloat(document.querySelector('#point-labels .point-label').textContent))")
    probe.page.keyboard.press("t")
    probe.wait("window.__viewer.labelState === 'off'")
    assert spans.count() == 0
    assert not probe.errors


def test_isolate_shows_only_the_selection_and_show_all_brings_the_rest_back(probe, server, runs):
    run_id, _, ids, labels = runs["growing"]
    probe.open_view(_url(server, run_id, ids[2], thumbs="off"))
    chosen = [i for i, x in enumerate(labels) if x == "class_11"]
    probe.page.locator("#legend .legend-item", has_text="class_11").click()
    probe.wait(f"window.__viewer.selection.length === {len(chosen)}")
    probe.page.click("#isolate")
    probe.wait("window.__viewer.isolated")
    flags = np.array(probe.js("Array.from(window.__viewer.flags)"))
    hidden = np.flatnonzero(flags & 16).tolist()
    assert hidden == sorted(set(range(N)) - set(chosen))
    assert probe.page.locator("#iso-banner").inner_text().startswith(f"Showing {len(chosen)} of {N} points")
    # the isolated points fill the plot, and a hidden point cannot be hovered
    plot = _rect(probe, "#plot")
    x0, y0, x1, y1 = probe.js(f"window.__viewer.screenBox({chosen})")
    assert max((x1 - x0) / (plot[2] - plot[0]), (y1 - y0) / (plot[3] - plot[1])) > 0.6
    _shot(probe, "isolated")
    probe.js("window.__viewer.zoomBy(0.25)")  # zoomed out, the hidden clusters' places are on screen
    xy = np.array(probe.js(f"Array.from({{length: {N}}}, (_, i) => window.__viewer.screenOf(i))"))
    inside = (xy[:, 0] > plot[0] + 5) & (xy[:, 0] < plot[2] - 5) & (xy[:, 1] > plot[1] + 5) & (xy[:, 1] < plot[3] - 5)
    far = [j for j in hidden if inside[j] and np.hypot(*(xy[chosen] - xy[j]).T).min() > 25]
    assert far
    probe.page.mouse.move(*xy[far[0]])
    probe.page.wait_for_timeout(150)
    assert probe.js("window.__viewer.hovered") == -1
    probe.page.click("#show-all")
    probe.wait("!window.__viewer.isolated")
    assert not (np.array(probe.js("Array.from(window.__viewer.flags)")) & 16).any()
    assert probe.js("window.__viewer.selection") == chosen  # the selection itself is kept
    assert not probe.errors


def test_bookmarks_are_saved_listed_on_the_run_page_and_restore_the_view(probe, server, runs):
    run_id, _, ids, labels = runs["growing"]
    page = probe.page
    probe.open_view(_url(server, run_id, ids[1], thumbs="off"))
    page.select_option("#color-select", "noise")
    page.locator("#search").fill("class_2")
    probe.wait("window.__viewer.filterCount === 130")
    page.click("#select-matches")
    probe.wait("window.__viewer.selection.length === 130")
    probe.js("window.__viewer.zoomBy(1.7)")
    camera = probe.js("window.__viewer.camera")
    page.fill("#bookmark-name", "bad/name")
    page.click("#bookmark-save")
    assert "A name is" in page.locator("#bookmark-message").inner_text()
    probe.wait("location.href.includes('cam=')")
    page.fill("#bookmark-name", "class 2 at step 1")
    page.click("#bookmark-save")
    probe.wait("window.__viewer.bookmarks.includes('class 2 at step 1')")
    assert page.locator("#bookmark-list a").all_inner_texts() == ["class 2 at step 1"]
    page.goto(f"{server.url}/runs/{run_id}?debug=1")
    page.wait_for_selector("#bookmarks a")
    _shot(probe, "bookmarks_run_page")
    page.locator("#bookmarks a", has_text="class 2 at step 1").click()
    probe.wait("window.__viewer && window.__viewer.state === 'ready'")
    probe.wait("window.__viewer.selection.length === 130")
    assert probe.js("[window.__viewer.embeddingId, window.__viewer.colorBy, window.__viewer.filterCount]") == \
        [ids[1], "noise", 130]
    np.testing.assert_allclose(probe.js("window.__viewer.camera"), camera, atol=1e-4)
    assert probe.js("window.__viewer.selection") == [i for i, x in enumerate(labels) if x == "class_2"]
    assert not probe.errors
