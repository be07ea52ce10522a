"""``GET /api/v1/compare``: two runs' per-point k-NN agreement, joined on a sample id, from a real server."""

import numpy as np
import pytest
import requests
from sklearn.datasets import load_digits

from tracker_sdk import Experiment
from tracker_sdk.analysis.dynamics import compare

N = 300


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Run A: digits; run B: the same digits with classes 3 and 5 merged, rows shuffled, joined on sid."""
    root = tmp_path_factory.mktemp("compare-runs")
    x, y = load_digits(return_X_y=True)
    x, y = x[:N].astype(np.float32), y[:N]
    merged = x.copy()
    both = np.isin(y, [3, 5])
    for c in (3, 5):
        merged[y == c] += x[both].mean(axis=0) - x[y == c].mean(axis=0)
    order = np.random.default_rng(3).permutation(N)
    sid = np.array([f"digit-{i:04d}" for i in range(N)])
    out = {"root": root, "x": x, "y": y, "merged": merged, "order": order, "sid": sid}
    for name, vectors, rows in (("a", x, np.arange(N)), ("b", merged, order)):
        with Experiment(project_name="compare", url=str(root), quiet=True) as exp:
            emb = exp.log_embedding(vectors[rows], y[rows].tolist(), title="hidden", reduce=None,
                                    metadata={"sid": sid[rows].tolist()})
            short = exp.log_embedding(vectors[:50], y[:50].tolist(), title="short", reduce=None)
        out[name] = (exp.run_id, emb.id, short.id)
    return out


def test_agreement_joined_on_ids_matches_compare_and_lists_the_merged_classes(runs, start_server):
    server = start_server(runs["root"])
    (run_a, emb_a, _), (run_b, emb_b, _) = runs["a"], runs["b"]
    query = {"run_a": run_a, "emb_a": emb_a, "run_b": run_b, "emb_b": emb_b, "id": "sid", "k": "10"}
    r = requests.get(f"{server.api}/compare", params=query, timeout=120)
    assert r.status_code == 200, r.text
    got = r.json()
    order = runs["order"]
    want = compare(runs["x"], runs["merged"][order], 10, runs["y"].tolist(), ids_a=runs["sid"].tolist(),
                   ids_b=runs["sid"][order].tolist())
    assert got["shared"] == N and got["join"] == "sid" and got["labels_from"] == "label"
    assert got["rows_a"] == list(range(N))
    assert np.array_equal(order[got["rows_b"]], got["rows_a"])  # row rows_b[i] of B is the sample rows_a[i] of A
    np.testing.assert_allclose(got["agreement"], want.agreement, atol=1e-6)
    assert got["linear_cka"] == pytest.approx(want.cka, abs=1e-6)
    assert {c["label"] for c in got["differing"][:2]} == {3, 5}
    assert got["differing"][0]["mean"] < got["differing"][2]["mean"]
    again = requests.get(f"{server.api}/compare", params=query, timeout=60)
    assert again.content == r.content  # the cached answer
    # row by row, B's shuffled rows are other samples: agreement collapses everywhere
    by_row = requests.get(f"{server.api}/compare", params={**query, "id": ""}, timeout=60).json()
    assert by_row["join"] is None and by_row["mean_agreement"] < 0.2 < got["mean_agreement"]
    # a run compared with itself agrees everywhere
    same = requests.get(f"{server.api}/compare", params={**query, "run_b": run_a, "emb_b": emb_a}, timeout=60).json()
    assert same["agreement"] == [1.0] * N and same["linear_cka"] == pytest.approx(1.0)


@pytest.mark.parametrize("change, status, message", [
    ({"run_a": None}, 400, "query parameter 'run_a' is required"),
    ({"emb_b": "xyz"}, 400, "emb_b"),
    ({"k": "0"}, 400, "'k' must be an integer from 1 to 100; got '0'"),
    ({"k": "ten"}, 400, "'k' must be an integer from 1 to 100; got 'ten'"),
    ({"metric": "manhattan"}, 400, "'metric' must be one of ['euclidean', 'cosine']; got 'manhattan'"),
    ({"id": "sample"}, 400, "id 'sample' is not a metadata column of run_a"),
    ({"label": "class"}, 400, "label 'class' is not a metadata column of run_a"),
    ({"id": None, "emb_b": "short"}, 400, "both need the same rows: run_a's embedding has 300, run_b's has 50"),
    ({"emb_b": "0" * 32}, 404, "has no embedding"),
])
def test_bad_requests_are_named(runs, start_server, change, status, message):
    server = start_server(runs["root"])
    (run_a, emb_a, _), (run_b, emb_b, short_b) = runs["a"], runs["b"]
    query = {"run_a": run_a, "emb_a": emb_a, "run_b": run_b, "emb_b": emb_b, "id": "sid"}
    for key, value in change.items():
        if value is None:
            query.pop(key)
        else:
            query[key] = short_b if value == "short" else value
    r = requests.get(f"{server.api}/compare", params=query, timeout=60)
    assert r.status_code == status, r.text
    assert message in r.json()["error"]
