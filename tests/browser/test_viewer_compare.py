"""Two runs side by side, coloured by their per-point agreement, in headless Chromium against a real server.

Run A logs 300 digits (after a noisier step, with its dynamics); run B the same digits with classes 3 and 5 merged in the vectors and its rows
shuffled, both with a sample-id column. ``/view?a=A&b=B&title=T&id=sid`` colours both views by the
k-NN agreement the server's ``/compare`` route computes in the original spaces (lowest on classes 3
and 5, on the fixed scale 0..1), links hover and lasso selection through the sample ids, and names
the CKA and the classes that differ most above the plots. The docs' screenshot helpers
(docs_screenshot.py) find the panels they photograph. Screenshots land in test-artifacts/browser/.
"""

from __future__ import annotations

from urllib.parse import urlencode

import numpy as np
import pytest
from docs_screenshot import shoot_compare, shoot_dynamics
from sklearn.datasets import load_digits
from viewer_runs import ARTIFACTS

from tracker_sdk import Experiment
from tracker_sdk.analysis.dynamics import compare

N = 300
K = 10
FLAG_QUERY = 4
VIRIDIS = np.array([[68, 1, 84], [71, 44, 122], [59, 81, 139], [44, 113, 142], [33, 144, 141],
                    [39, 173, 129], [92, 200, 99], [170, 220, 50], [253, 231, 37]], dtype=float)


def viridis(t: np.ndarray) -> np.ndarray:
    x = np.clip(t, 0, 1) * (len(VIRIDIS) - 1)
    i = np.minimum(np.floor(x).astype(int), len(VIRIDIS) - 2)
    f = (x - i)[:, None]
    return VIRIDIS[i] + (VIRIDIS[i + 1] - VIRIDIS[i]) * f


@pytest.fixture(scope="module")
def pair(logged):
    """Runs A and B on the session's root; B's row r holds the sample order[r] of A."""
    x, y = load_digits(return_X_y=True)
    x, y = x[:N].astype(np.float32), y[:N]
    merged = x.copy()
    both = np.isin(y, [3, 5])
    for c in (3, 5):
        merged[y == c] += x[both].mean(axis=0) - x[y == c].mean(axis=0)
    order = np.random.default_rng(5).permutation(N)
    sid = np.array([f"digit-{i:04d}" for i in range(N)])
    out = {"y": y, "order": order, "sid": sid}
    noisy = x + np.random.default_rng(6).normal(0, 4.0, x.shape).astype(np.float32)
    for side, steps, rows, name in (("a", [noisy, x], np.arange(N), "cnn seed 0"),
                                    ("b", [merged], order, "<b>merged 3+5</b>")):
        exp = Experiment(url=str(logged["root"]), project_name="compare", experiment_name=name, quiet=True)
        for step, vectors in enumerate(steps):
            emb = exp.log_embedding(vectors[rows], y[rows].tolist(), title="hidden", group="cmp", step=step,
                                    reduce=None, metadata={"sid": sid[rows].tolist()})
        exp.reduce_group("cmp", method="pca", n_components=2, background=False)
        if len(steps) > 1:  # A's group also gets its dynamics (trust columns, CKA, changed most)
            exp.analyze_dynamics("cmp", k=K)
        exp.end()
        out[side], out[f"{side}_last"] = exp.run_id, emb.id
    out["want"] = compare(x, merged[order], K, y.tolist(), ids_a=sid.tolist(), ids_b=sid[order].tolist())
    return out


def _open(probe, server, pair, **extra):
    q = {"a": pair["a"], "b": pair["b"], "title": "hidden", "id": "sid", "debug": "1", **extra}
    probe.page.goto(f"{server.url}/view?{urlencode(q)}")
    probe.wait("window.__compare && window.__compare.a.state === 'ready' && window.__compare.b.state === 'ready' "
               "&& (window.__compare.answer || window.__compare.error)", 90)
    assert probe.js("window.__compare.error") is None
    probe.wait("window.__compare.a.colorBy === 'agreement' && window.__compare.b.colorBy === 'agreement'")


def _colours(probe, side):
    return np.array(probe.js(f"Array.from(window.__compare.{side}.colors)")).reshape(-1, 4)[:, :3].astype(float)


def test_both_views_coloured_by_agreement_lowest_on_the_merged_classes(probe, server, pair):
    _open(probe, server, pair)
    want, y, order = pair["want"], pair["y"], pair["order"]
    # per sample, the agreement of compare() on the raw vectors; B's row r is sample order[r]
    agree_a = want.agreement  # rows_a is 0..N-1: the samples in A's order
    assert want.rows_a.tolist() == list(range(N))
    agree_b = np.empty(N)
    agree_b[want.rows_b] = agree_a
    for side, agree, labels in (("a", agree_a, y), ("b", agree_b, y[order])):
        legend = probe.js(f"window.__compare.{side}.legend")
        assert [legend["kind"], legend["min"], legend["max"]] == ["numeric", 0, 1]
        colours = _colours(probe, side)
        assert np.abs(colours - viridis(agree)).max() < 1.01  # truncated to bytes; each point on the 0..1 scale of its agreement
        merged = np.isin(labels, [3, 5])
        brightness = colours.sum(1)  # viridis brightens monotonically from 0 to 1
        assert brightness[merged].mean() < brightness[~merged].mean() - 100
    assert probe.page.locator("#compare-summary .compare-legend").inner_text().split() == ["agreement", "0", "1"]
    stats = probe.page.locator("#compare-summary .compare-stats").inner_text()
    assert f"mean {want.agreement.mean():.3f} · linear CKA {want.cka:.3f}" in stats and "joined on sid" in stats
    top = probe.page.locator("#compare-classes strong").all_inner_texts()
    assert set(top[:2]) == {"3", "5"} and len(top) == 3
    # user strings (the run's name) arrive as text, never as markup
    assert probe.page.locator("#compare-b .compare-title").inner_text().startswith("B: <b>merged 3+5</b>")
    assert probe.page.locator("#compare-b .compare-title b").count() == 0
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    probe.page.screenshot(path=str(ARTIFACTS / "compare_agreement.png"))
    assert not probe.errors


def test_hover_and_lasso_selection_are_linked_by_sample_id(probe, server, pair):
    _open(probe, server, pair)
    sid, order = pair["sid"], pair["order"]
    row_in_b = np.argsort(order)  # sample s sits at row row_in_b[s] of B
    for src, dst, to_dst in (("a", "b", lambda r: int(row_in_b[r])), ("b", "a", lambda r: int(order[r]))):
        for i in (7, 123):
            probe.page.mouse.move(*probe.js(f"window.__compare.{src}.screenOf({i})"))
            hovered = probe.wait(f"window.__compare.{src}.hovered >= 0 && window.__compare.{src}.hovered + 1") - 1
            target = to_dst(hovered)
            assert target != hovered  # the shuffle moved it: linked by id, not by row
            probe.wait(f"(window.__compare.{dst}.flags[{target}] & {FLAG_QUERY}) !== 0")
            flags = np.array(probe.js(f"Array.from(window.__compare.{dst}.flags)"))
            assert np.flatnonzero(flags & FLAG_QUERY).tolist() == [target]
        probe.page.mouse.move(2, 2)  # off the plots: the mark goes
        probe.wait(f"!Array.from(window.__compare.{dst}.flags).some((f) => f & {FLAG_QUERY})")
    # a lasso around the left half of A's plot (its panel opened for the Lasso button) selects the same samples in B
    probe.page.click("#compare-a #panel-toggle")
    probe.page.wait_for_timeout(500)
    x0, y0, x1, y1 = probe.js(f"window.__compare.a.screenBox([...Array({N}).keys()])")
    mid = (x0 + x1) / 2
    poly = [(x0 - 5, y0 - 5), (mid, y0 - 5), (mid, y1 + 5), (x0 - 5, y1 + 5)]
    page = probe.page
    page.click("#compare-a #lasso")
    page.mouse.move(*poly[0])
    page.mouse.down()
    for a, b in zip(poly, poly[1:] + poly[:1]):
        for t in np.linspace(0, 1, 8)[1:]:
            page.mouse.move(a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t)
    page.mouse.up()
    sel_a = probe.wait("window.__compare.a.selection.length > 0 && window.__compare.a.selection")
    assert 10 < len(sel_a) < N
    sel_b = probe.wait(f"window.__compare.b.selection.length === {len(sel_a)} && window.__compare.b.selection")
    assert sorted(sid[order][sel_b].tolist()) == sorted(sid[sel_a].tolist())
    assert sel_b == sorted(int(row_in_b[r]) for r in sel_a)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    probe.page.screenshot(path=str(ARTIFACTS / "compare_linked_selection.png"))
    assert not probe.errors


def test_a_bad_comparison_is_named_and_the_views_still_show(probe, server, pair):
    q = {"a": pair["a"], "b": pair["b"], "title": "hidden", "id": "no_such_column", "debug": "1"}
    probe.page.goto(f"{server.url}/view?{urlencode(q)}")
    error = probe.wait("window.__compare && window.__compare.error", 90)
    assert "id 'no_such_column' is not a metadata column of run_a" in error
    assert "Agreement not computed" in probe.page.locator("#compare-summary .error").inner_text()
    assert probe.js("[window.__compare.a.state, window.__compare.b.state]") == ["ready", "ready"]
    probe.errors.clear()  # the failed request is logged by the browser as a console error


def test_docs_screenshot_helpers_find_the_panels_they_photograph(probe, server, pair, tmp_path):
    """docs/dynamics.png and docs/compare.png come from these helpers (docs_screenshot.py --dynamics)."""
    from PIL import Image
    page = probe.page
    shoot_dynamics(page, server.url, pair["a"], pair["a_last"], tmp_path / "dynamics.png")
    assert page.locator("#sec-dynamics #dyn-changed li").count() == 10
    assert page.locator("#sec-dynamics #dyn-sparks .spark-row").count() == 10  # one per digit
    assert probe.js("window.__viewer.hoverNeighbours.falseIds.length") > 0
    shoot_compare(page, server.url, pair["a"], pair["b"], "hidden", tmp_path / "compare.png", id="sid", thumbs="off")
    for name in ("dynamics.png", "compare.png"):
        with Image.open(tmp_path / name) as image:
            assert image.format == "PNG" and image.size == (1280, 800)
    assert not probe.errors
