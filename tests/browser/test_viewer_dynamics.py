"""Trust and dynamics in the viewer, in headless Chromium against a real server.

Colour by a projection's own ``trust_point`` (from the reduction's columns route), the hovered
point's true neighbours (original space) and false neighbours (near on screen, not among the
true ones), torn regions shaded, and the dynamics panel: the CKA heatmap, the rows changed
most between two steps, and per-class separation sparklines; two runs side by side, linked
by row. Screenshots land in test-artifacts/browser/.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from viewer_runs import ARTIFACTS

from tracker_sdk import Experiment
from tracker_sdk.runformat import open_run

N = 240
K = 10
STEPS = (0, 1, 2, 3)


@pytest.fixture(scope="module")
def dyn(logged):
    """A run on the session's root whose group has a shared 2-D PCA and analyze_dynamics stored."""
    rng = np.random.default_rng(11)
    cls = np.arange(N) % 4
    centres = rng.normal(0, 4, (4, 20)).astype(np.float32)
    exp = Experiment(url=str(logged["root"]), project_name="dynamics", experiment_name="trust", quiet=True)
    labels = [f"class_{c}" for c in cls]
    ids, vectors = [], []
    for s in STEPS:  # classes separate over the steps; many dimensions, so a 2-D map tears some
        x = (centres[cls] * (0.3 + 0.3 * s) + rng.normal(0, 1, (N, 20))).astype(np.float32)
        ids.append(exp.log_embedding(x, labels, title="hidden", group="mlp", step=s, reduce=None).id)
        vectors.append(x)
    exp.reduce_group("mlp", title="hidden", method="pca", fit_on="last", n_components=2, background=False)
    exp.analyze_dynamics("mlp", k=K, label_column="label")
    exp.end()
    run = open_run(exp.run_dir)
    reds = [run.embedding(e).reductions[0] for e in ids]
    return {"run_id": exp.run_id, "ids": ids, "vectors": vectors, "reds": reds, "record": run.dynamics_records[-1]}


def _url(server, dyn, step=0, **params):
    from urllib.parse import urlencode
    q = {"run": dyn["run_id"], "emb": dyn["ids"][step], "debug": "1", **params}
    return f"{server.url}/view?{urlencode(q)}"


def _shot(probe, name):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    probe.page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def test_colour_by_trust_point_of_the_shown_projection(probe, server, dyn):
    step = 3
    red = dyn["reds"][step]
    trust = np.asarray(red.columns["trust_point"])
    probe.open_view(_url(server, dyn, step, color="trust_point"))
    assert probe.js("window.__viewer.colorBy") == "trust_point"
    legend = probe.js("window.__viewer.legend")
    assert legend["kind"] == "numeric"
    assert legend["min"] == pytest.approx(trust.min()) and legend["max"] == pytest.approx(trust.max())
    assert probe.js("window.__viewer.trustScores")["trustworthiness"] == pytest.approx(red.trust_scores["trustworthiness"])
    colors = np.array(probe.js("Array.from(window.__viewer.colors)")).reshape(-1, 4)[:, :3]
    lo, hi = int(trust.argmin()), int(trust.argmax())
    assert not np.array_equal(colors[lo], colors[hi])  # the scale spans the column
    assert "trust_point" in probe.page.locator("#legend").inner_text()
    # another step shows that step's projection's own column
    probe.js("window.__viewer.setStep(0)")
    probe.wait("window.__viewer.stepPos === 0 && window.__viewer.legend && window.__viewer.legend.kind === 'numeric'")
    trust0 = np.asarray(dyn["reds"][0].columns["trust_point"])
    probe.wait(f"Math.abs(window.__viewer.legend.min - {trust0.min()}) < 1e-9")
    _shot(probe, "dynamics_trust_colour")
    assert not probe.errors


def test_hover_rings_true_and_false_neighbours_and_torn_regions_are_shaded(probe, server, dyn):
    step = 3
    vectors = dyn["vectors"][step]
    trust = np.asarray(dyn["reds"][step].columns["trust_point"])
    probe.open_view(_url(server, dyn, step, color="label", torn="1", metric="euclidean"))
    # torn: exactly the rows below the 10th percentile of trust_point, drawn darker
    cut = np.sort(trust)[int(np.floor(0.1 * N))]
    torn = np.array(probe.js("window.__viewer.torn"))
    assert torn.sum() > 0 and np.array_equal(torn == 1, trust < cut)
    colors = np.array(probe.js("Array.from(window.__viewer.colors)")).reshape(-1, 4)[:, :3].sum(1)
    labels = np.arange(N) % 4
    for c in range(4):  # within a class (one colour), torn points are darker than the others
        mask = labels == c
        if (mask & (torn == 1)).any():
            assert colors[mask & (torn == 1)].max() < colors[mask & (torn == 0)].min()
    # hover the least trusted point: its true neighbours from the original space, its false
    # neighbours the nearest on screen that are not among them
    i = int(trust.argmin())
    xy = probe.js(f"window.__viewer.screenOf({i})")
    probe.page.mouse.move(*xy)
    got = probe.wait("window.__viewer.hoverNeighbours && window.__viewer.hoverNeighbours.index === "
                     "window.__viewer.hovered && window.__viewer.hoverNeighbours")
    h = got["index"]
    d = np.linalg.norm(vectors - vectors[h], axis=1)
    d[h] = np.inf
    assert set(got["trueIds"]) == set(np.argsort(d, kind="stable")[:K].tolist())
    screen = np.array(probe.js("window.__viewer.screenPositions()")).reshape(-1, 2)
    ds = np.hypot(*(screen - screen[h]).T)
    ds[h] = np.inf
    on_screen = np.argsort(ds, kind="stable")[:K]
    assert set(got["falseIds"]) == set(on_screen.tolist()) - set(got["trueIds"])
    assert len(got["falseIds"]) > 0  # the least trusted point has some
    assert probe.page.locator("#nb-layer .nb-true").count() == K
    assert probe.page.locator("#nb-layer .nb-false").count() == len(got["falseIds"])
    _shot(probe, "dynamics_false_neighbours")
    # the toggle turns the rings off
    probe.page.locator("#false-nb-on").uncheck()
    probe.page.mouse.move(xy[0] + 1, xy[1])
    probe.wait("window.__viewer.hoverNeighbours === null")
    assert probe.page.locator("#nb-layer .nb-ring").count() == 0
    assert not probe.errors


def test_dynamics_panel_heatmap_changed_most_and_sparklines(probe, server, dyn):
    rec = dyn["record"]
    cka = np.array(rec.cka, dtype=float)
    m = len(STEPS)
    probe.open_view(_url(server, dyn, 0))
    assert probe.js("window.__viewer.dynamics.embedding_ids") == dyn["ids"]
    assert probe.page.locator("#sec-dynamics").is_visible()
    # the heatmap: symmetric, the diagonal (CKA 1) at the top of viridis, brighter as CKA grows
    px = np.array([[probe.js(f"window.__viewer.ckaPixel({a}, {b})") for b in range(m)] for a in range(m)], dtype=float)
    assert np.array_equal(px, px.transpose(1, 0, 2))
    for a in range(m):
        assert np.abs(px[a, a] - [253, 231, 37]).max() <= 1
    order = np.argsort(cka, axis=None)
    assert np.all(np.diff(px.sum(2).ravel()[order]) >= 0)
    assert len(set(np.round(cka, 6).ravel())) > 2 and px.sum(2).min() < px.sum(2).max()
    # changed most between steps 1 and 2, as stored; a click shows step 2 and selects the row
    probe.page.locator("#dyn-pair").select_option("1")
    rows = rec.changes[1].changed_most
    items = probe.page.locator("#dyn-changed li")
    assert [t.split()[0] for t in items.all_inner_texts()] == [f"#{r}" for r in rows]
    items.nth(0).locator("button").click()
    probe.wait(f"window.__viewer.stepPos === 2 && window.__viewer.embeddingId === {dyn['ids'][2]!r}")
    probe.wait(f"JSON.stringify(window.__viewer.selection) === '[{rows[0]}]'")
    # one sparkline per class, one vertex per step, highest where the separation is largest
    sparks = probe.page.locator("#dyn-sparks .spark-row")
    assert sparks.count() == len(rec.classes)
    sep = np.array(rec.separation, dtype=float)
    for c in range(len(rec.classes)):
        pts = sparks.nth(c).locator("polyline").get_attribute("points").split()
        ys = [float(p.split(",")[1]) for p in pts]
        assert len(ys) == m and int(np.argmin(ys)) == int(np.argmax(sep[:, c]))
    _shot(probe, "dynamics_panel")
    assert not probe.errors


@pytest.fixture(scope="module")
def other(logged, dyn):
    """A second run on the same rows (the last step's vectors, rotated and perturbed), one PCA."""
    rng = np.random.default_rng(12)
    x = dyn["vectors"][-1]
    q, _ = np.linalg.qr(rng.normal(size=(x.shape[1], x.shape[1])))
    exp = Experiment(url=str(logged["root"]), project_name="dynamics", experiment_name="other seed", quiet=True)
    exp.log_embedding((x @ q + rng.normal(0, 0.5, x.shape)).astype(np.float32), [f"class_{c}" for c in np.arange(N) % 4],
                      title="hidden", group="mlp", step=3)
    exp.end()
    return exp.run_id


def test_two_runs_side_by_side_share_hover_and_selection_by_row(probe, server, dyn, other):
    from urllib.parse import urlencode
    q = {"a": dyn["run_id"], "b": other, "title": "hidden", "color": "label", "debug": "1"}  # not agreement
    probe.page.goto(f"{server.url}/view?{urlencode(q)}")
    probe.wait("window.__compare && window.__compare.a.state === 'ready' && window.__compare.b.state === 'ready'", 60)
    assert probe.js("[window.__compare.a.embeddingId, window.__compare.b.n]") == [dyn["ids"][-1], N]
    # hovering a point of A marks the same row in B
    i = 17
    probe.page.mouse.move(*probe.js(f"window.__compare.a.screenOf({i})"))
    h = probe.wait("window.__compare.a.hovered >= 0 && window.__compare.a.hovered")
    probe.wait(f"(window.__compare.b.flags[{h}] & 4) !== 0")  # FLAG_QUERY: the ring of a queried row
    flags_b = np.array(probe.js("Array.from(window.__compare.b.flags)"))
    assert np.flatnonzero(flags_b & 4).tolist() == [h]
    # a legend entry clicked in B selects that class in both
    probe.page.locator("#compare-b .legend-item").nth(2).click()
    want = np.flatnonzero(np.arange(N) % 4 == 2).tolist()
    probe.wait(f"JSON.stringify(window.__compare.b.selection) === '{json.dumps(want, separators=(',', ':'))}'")
    assert probe.js("window.__compare.a.selection") == want
    _shot(probe, "dynamics_compare_linked")
    # a title that a run lacks is named
    q["title"] = "missing"
    probe.page.goto(f"{server.url}/view?{urlencode(q)}")
    text = probe.wait("document.querySelector('#main .error') && document.querySelector('#main .error').textContent")
    assert f"Run {dyn['run_id']} has no projected embedding titled \"missing\"" in text
    assert not probe.errors
