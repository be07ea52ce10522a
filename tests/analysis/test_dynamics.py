"""Known-answer tests of tracker_sdk.analysis.dynamics: trust, change across steps, alignment, run comparison."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import ortho_group
from sklearn.datasets import load_digits
from sklearn.manifold import trustworthiness as sklearn_trustworthiness
from sklearn.metrics import silhouette_samples

from tracker_sdk.analysis import dynamics
from tracker_sdk.analysis.neighbors import knn_graph
from tracker_sdk.errors import InvalidArgumentError


def _isometric(coords: np.ndarray, width: int, seed: int) -> np.ndarray:
    """``coords`` placed in ``width`` dimensions by a random rotation: every distance is kept."""
    padded = np.hstack([coords, np.zeros((coords.shape[0], width - coords.shape[1]))])
    return padded @ ortho_group.rvs(width, random_state=seed)


# --------------------------------------------------------------------------- per-point trust

def test_global_scores_equal_sklearn_trustworthiness():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((400, 20))
    y = x[:, :2] + 0.3 * rng.standard_normal((400, 2))
    scores = dynamics.trust_scores(x, y, k=7)
    assert scores.exact
    assert scores.trustworthiness == pytest.approx(sklearn_trustworthiness(x, y, n_neighbors=7), abs=1e-9)
    # continuity is trustworthiness with the two spaces swapped
    assert scores.continuity == pytest.approx(sklearn_trustworthiness(y, x, n_neighbors=7), abs=1e-9)
    assert scores.trustworthiness == pytest.approx(scores.trust_point.mean())
    assert 0.0 <= scores.trust_point.min() < scores.trust_point.max() <= 1.0
    assert 0.0 <= scores.continuity_point.min() < scores.continuity_point.max() <= 1.0
    np.testing.assert_array_equal(dynamics.point_trustworthiness(x, y, k=7), scores.trust_point)
    np.testing.assert_array_equal(dynamics.point_continuity(x, y, k=7), scores.continuity_point)


def test_blocks_of_rows_ranked_in_threads_give_the_same_scores(monkeypatch):
    rng = np.random.default_rng(20)
    x = rng.standard_normal((400, 10))
    y = x[:, :2] + 0.5 * rng.standard_normal((400, 2))
    whole = dynamics.trust_scores(x, y, k=10)
    monkeypatch.setattr(dynamics, "_BLOCK_ENTRIES", 37 * 400)  # blocks of 37 rows
    for n_jobs in (1, 3):
        blocked = dynamics.trust_scores(x, y, k=10, n_jobs=n_jobs)
        np.testing.assert_array_equal(blocked.trust_point, whole.trust_point)
        np.testing.assert_array_equal(blocked.continuity_point, whole.continuity_point)
    # float32 distances can order a near-tie at the k-th neighbour differently from sklearn's float64
    assert whole.trustworthiness == pytest.approx(sklearn_trustworthiness(x, y, n_neighbors=10), abs=1e-3)


def test_cosine_metric_ranks_by_angle():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((300, 12))
    y = rng.standard_normal((300, 2))
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    cosine = dynamics.trust_scores(x * rng.uniform(0.5, 3.0, (300, 1)), y, k=5, metric="cosine")
    assert cosine.trustworthiness == pytest.approx(sklearn_trustworthiness(unit, y, n_neighbors=5), abs=1e-9)


def test_projection_that_keeps_neighbourhoods_scores_one_everywhere():
    coords = np.random.default_rng(2).uniform(0, 10, (500, 2))
    vectors = _isometric(coords, 16, seed=3)
    scores = dynamics.trust_scores(vectors, coords, k=10)
    np.testing.assert_array_equal(scores.trust_point, 1.0)
    np.testing.assert_array_equal(scores.continuity_point, 1.0)
    assert dynamics.false_neighbors(vectors, coords, 17, k=10).size == 0


def _planted_tear(seed: int = 4):
    """Two far clusters whose 2-D pictures interleave along one strip: (vectors, coords, glued rows, cluster)."""
    rng = np.random.default_rng(seed)
    main_a = rng.uniform(0, 10, (150, 2))
    main_b = rng.uniform(0, 10, (150, 2)) + [0, 40]
    strip = np.arange(12) * 2.0
    strip_a = np.column_stack([40 + strip, rng.uniform(-0.05, 0.05, 12)])
    strip_b = np.column_stack([41 + strip, rng.uniform(-0.05, 0.05, 12)])
    coords = np.vstack([main_a, strip_a, main_b, strip_b])
    cluster = np.repeat([0, 1], 162)
    # the original space: the same picture for each cluster, the clusters 100 apart in a third axis
    # (farther than any two points of one cluster)
    vectors = np.column_stack([coords, 100.0 * cluster, np.zeros(coords.shape[0])])
    glued = np.r_[150:162, 312:324]
    return vectors, coords, glued, cluster


def test_planted_tear_flags_exactly_the_glued_points():
    vectors, coords, glued, cluster = _planted_tear()
    scores = dynamics.trust_scores(vectors, coords, k=5)
    np.testing.assert_array_equal(np.flatnonzero(scores.trust_point < 1.0), glued)
    # a glued point's invented neighbours sit in the other cluster: ranked behind all 161 of its own
    assert scores.trust_point[glued].max() < 0.8
    point = glued[3]
    invented = dynamics.false_neighbors(vectors, coords, point, k=5)
    assert invented.size > 0 and (cluster[invented] != cluster[point]).all()
    true = dynamics.true_neighbors(vectors, point, k=5)
    assert (cluster[true] == cluster[point]).all() and np.isin(true, glued).all()


def test_estimated_ranks_stay_close_to_exact():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3000, 8)).astype(np.float32)
    y = x[:, :2] + 0.5 * rng.standard_normal((3000, 2)).astype(np.float32)
    graphs = {"vector_neighbors": knn_graph(x, 10), "coord_neighbors": knn_graph(y, 10)}
    exact = dynamics.trust_scores(x, y, 10, **graphs)
    # the given graphs are reused, so only the ranks are estimated (from 2048 reference rows)
    estimate = dynamics.trust_scores(x, y, 10, method="approximate", **graphs)
    assert not estimate.exact
    assert estimate.trustworthiness == pytest.approx(exact.trustworthiness, abs=0.005)
    assert estimate.continuity == pytest.approx(exact.continuity, abs=0.005)
    assert np.corrcoef(estimate.trust_point, exact.trust_point)[0, 1] > 0.95


@pytest.mark.parametrize("call, match", [
    (lambda x, y: dynamics.trust_scores(x, y[:-1]), "coords has 59 rows but vectors has 60"),
    (lambda x, y: dynamics.trust_scores(x, y, k=30), r"k must be below n_samples / 2 = 30 for trustworthiness; got 30"),
    (lambda x, y: dynamics.trust_scores(x, y, method="fast"), "method must be one of"),
    (lambda x, y: dynamics.trust_scores(x, y, metric="manhattan"), "metric must be one of"),
    (lambda x, y: dynamics.trust_scores(x[0], y), r"vectors must be 2D \(n_samples, n_features\); got shape \(5,\)"),
    (lambda x, y: dynamics.trust_scores(x, y, vector_neighbors=np.zeros((60, 3), int)), r"vector_neighbors must be neighbour indices of shape \(60, >= 10\)"),
    (lambda x, y: dynamics.false_neighbors(x, y, 60), r"i must be a row index in \[0, 60\); got 60"),
])
def test_trust_rejects_bad_input(call, match):
    rng = np.random.default_rng(6)
    x, y = rng.standard_normal((60, 5)), rng.standard_normal((60, 2))
    with pytest.raises(InvalidArgumentError, match=match):
        call(x, y)


def test_nan_vectors_are_refused():
    x = np.ones((20, 3))
    x[4, 1] = np.nan
    with pytest.raises(InvalidArgumentError, match="vectors must be finite; 1 rows hold NaN or Inf"):
        dynamics.trust_scores(x, np.ones((20, 2)), k=3)


# --------------------------------------------------------------------------- CKA

def test_linear_cka_is_one_for_the_same_representation_and_its_rotations_and_scalings():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((300, 24)) @ rng.standard_normal((24, 24))
    assert dynamics.linear_cka(x, x) == pytest.approx(1.0, abs=1e-12)
    rotated = 3.7 * (x @ ortho_group.rvs(24, random_state=8)) + 5.0
    assert dynamics.linear_cka(x, rotated) == pytest.approx(1.0, abs=1e-12)
    # into a wider space: an isometric embedding is a rotation too
    assert dynamics.linear_cka(x, _isometric(x, 40, seed=9)) == pytest.approx(1.0, abs=1e-12)
    assert dynamics.linear_cka(x, rotated, debiased=False) == pytest.approx(1.0, abs=1e-12)
    # a non-isotropic stretch is not an alignment-preserving change
    assert dynamics.linear_cka(x, x * np.linspace(0.1, 10, 24)) < 0.99


def test_linear_cka_is_about_zero_for_independent_matrices():
    # Tolerance: over seeds the debiased value stays within about 4e-4 of 0 for 2000 x 64; we
    # allow 5e-3. The standard estimator sits near n_features / n_samples = 0.032 instead.
    for seed in range(3):
        rng = np.random.default_rng(seed)
        a, b = rng.standard_normal((2000, 64)), rng.standard_normal((2000, 64))
        assert abs(dynamics.linear_cka(a, b)) < 5e-3
        assert dynamics.linear_cka(a, b, debiased=False) == pytest.approx(64 / 2000, abs=0.005)


def test_cka_matrix_holds_every_pair():
    rng = np.random.default_rng(10)
    base = rng.standard_normal((200, 16))
    reps = [base, base + 0.5 * rng.standard_normal((200, 16)), rng.standard_normal((200, 8))]
    matrix = dynamics.cka_matrix(reps)
    assert matrix.shape == (3, 3)
    np.testing.assert_allclose(np.diag(matrix), 1.0, atol=1e-12)
    np.testing.assert_allclose(matrix, matrix.T)
    for s in range(3):
        for t in range(3):  # float32 products by default; linear_cka multiplies in float64
            assert matrix[s, t] == pytest.approx(dynamics.linear_cka(reps[s], reps[t]), abs=1e-6)
    np.testing.assert_allclose(dynamics.cka_matrix(reps, dtype=np.float64)[0], [dynamics.linear_cka(reps[0], r) for r in reps],
                               atol=1e-12)
    assert matrix[0, 1] > 0.5 > abs(matrix[0, 2])
    with pytest.raises(InvalidArgumentError, match=r"representations\[1\] has 199 rows but representations\[0\] has 200"):
        dynamics.cka_matrix([base, base[1:]])


# --------------------------------------------------------------------------- change across steps

def _planted_change(seed: int = 11):
    """8 steps of 5 clusters x 100 points drifting slightly; at step 5, 25 points of cluster 0 and 25 of 1 swap."""
    rng = np.random.default_rng(seed)
    centres = 10.0 * rng.standard_normal((5, 32))
    cluster = np.repeat(np.arange(5), 100)
    offsets = rng.standard_normal((500, 32))
    swapped = np.r_[rng.choice(100, 25, replace=False), 100 + rng.choice(100, 25, replace=False)]
    moved = cluster.copy()
    moved[swapped] = 1 - cluster[swapped]
    new_offsets = offsets.copy()
    new_offsets[swapped] = rng.standard_normal((50, 32))
    steps = []
    for s in range(8):
        where, offset = (moved, new_offsets) if s >= 5 else (cluster, offsets)
        steps.append(centres[where] + offset + 0.01 * rng.standard_normal((500, 32)))
    return steps, np.sort(swapped), cluster


def test_planted_change_is_ranked_lowest_between_steps_4_and_5_only():
    steps, swapped, cluster = _planted_change()
    result = dynamics.step_dynamics(steps, k=10, labels=cluster, quiet=True)
    assert result.jaccard.shape == (7, 500)
    np.testing.assert_array_equal(np.sort(result.changed_most(4, top=50)), swapped)
    np.testing.assert_array_equal(result.jaccard[4], dynamics.knn_jaccard(steps[4], steps[5], k=10))
    for s in (0, 1, 2, 3, 5, 6):
        # elsewhere the swapped points keep their neighbours as well as every other point
        assert result.jaccard[s][swapped].min() > result.jaccard[4][swapped].max()
        assert not np.isin(result.changed_most(s, top=50), swapped).all()
    np.testing.assert_allclose(result.cka, dynamics.cka_matrix(steps))
    assert result.classes == [0, 1, 2, 3, 4]
    assert result.separation.shape == result.silhouette.shape == (8, 5)


def test_step_dynamics_joins_steps_on_sample_ids():
    steps, _, _ = _planted_change()
    steps = steps[:3]
    rng = np.random.default_rng(12)
    ids = [np.arange(500)]
    shuffled = [steps[0]]
    kept = rng.permutation(500)
    for s, count in ((1, 480), (2, 460)):  # shuffled, and some rows missing
        order = rng.permutation(kept[:count])
        ids.append(order)
        shuffled.append(steps[s][order])
    layouts = [x[:, :2] for x in shuffled]
    joined = dynamics.step_dynamics(shuffled, k=5, ids=ids, layouts=layouts, quiet=True)
    shared = joined.rows[0]
    np.testing.assert_array_equal(shared, np.sort(kept[:460]))
    for s in (1, 2):
        np.testing.assert_array_equal(ids[s][joined.rows[s]], shared)
    direct = dynamics.step_dynamics([x[shared] for x in steps], k=5, layouts=[x[shared, :2] for x in steps], quiet=True)
    np.testing.assert_array_equal(joined.jaccard, direct.jaccard)
    np.testing.assert_allclose(joined.cka, direct.cka, atol=1e-6)
    np.testing.assert_array_equal(joined.trust[2].trust_point, direct.trust[2].trust_point)
    with pytest.raises(InvalidArgumentError, match=r"layouts\[1\] has 3 rows but steps\[1\] has 480"):
        dynamics.step_dynamics(shuffled, k=5, ids=ids, layouts=[layouts[0], layouts[1][:3], layouts[2]], quiet=True)


@pytest.mark.parametrize("options, match", [
    ({"steps": 1}, "steps must hold at least two steps to compare; got 1"),
    ({"labels": [0] * 5}, "labels has 5 rows but steps\\[0\\] has 40"),
    ({"ids": [range(40)]}, "ids has 1 entries but steps has 3"),
    ({"ids": [range(40), range(40), range(39)]}, "ids\\[2\\] has 39 rows but steps\\[2\\] has 40"),
    ({"layouts": [np.zeros((40, 2))]}, "layouts has 1 entries but steps has 3"),
    ({"k": 20}, "k must be below n_samples / 2 = 20 for trustworthiness; got 20"),
])
def test_step_dynamics_rejects_bad_input(options, match):
    steps = [np.random.default_rng(s).standard_normal((40, 4)) for s in range(options.pop("steps", 3))]
    with pytest.raises(InvalidArgumentError, match=match):
        dynamics.step_dynamics(steps, quiet=True, **options)


def test_changed_most_names_a_step_pair():
    steps = [np.random.default_rng(s).standard_normal((40, 4)) for s in range(3)]
    result = dynamics.step_dynamics(steps, k=3, quiet=True)
    assert result.changed_most(1, top=5).shape == (5,)
    with pytest.raises(InvalidArgumentError, match=r"s must be a step pair in \[0, 2\); got 2"):
        result.changed_most(2)


def test_align_rows_joins_on_ids_in_the_first_order():
    rows_a, rows_b = dynamics.align_rows(["a", "b", "c", "d"], ["d", "x", "b", "a"])
    np.testing.assert_array_equal(rows_a, [0, 1, 3])
    np.testing.assert_array_equal(rows_b, [3, 2, 0])
    with pytest.raises(InvalidArgumentError, match="ids_b must be unique to join on; 'b' is at rows 1 and 2"):
        dynamics.align_rows(["a", "b"], ["a", "b", "b"])
    with pytest.raises(InvalidArgumentError, match="ids_a and ids_b share no sample id"):
        dynamics.align_rows([1, 2], [3, 4])


def test_class_separation_measures_centroid_gap_in_units_of_spread():
    # two classes on a line: points at centre -1 and centre +1 (spread 1), centres 10 apart
    x = np.array([[-1.0], [1.0], [9.0], [11.0], [-1.0], [1.0]])
    labels = ["a", "a", "b", "b", "a", "a"]
    result = dynamics.class_separation(x, labels)
    assert result.classes == ["a", "b"]
    np.testing.assert_array_equal(result.counts, [4, 2])
    np.testing.assert_allclose(result.separation, [10.0, 10.0])
    assert result.nearest == ["b", "a"]
    expected = silhouette_samples(x, labels)
    np.testing.assert_allclose(result.silhouette, [expected[[0, 1, 4, 5]].mean(), expected[[2, 3]].mean()])
    with pytest.raises(InvalidArgumentError, match="labels must hold at least two classes to separate"):
        dynamics.class_separation(x, ["a"] * 6)
    with pytest.raises(InvalidArgumentError, match="labels has 5 rows but vectors has 6"):
        dynamics.class_separation(x, labels[:5])


def test_silhouette_is_exact_over_every_row_and_equals_sklearn():
    # 2,600 rows (more than the 2,000 once sampled), several blocks of rows, a class of one row
    rng = np.random.default_rng(30)
    labels = rng.integers(0, 6, 2600)
    labels[17] = 9
    x = 3.0 * rng.standard_normal((6, 8))[np.minimum(labels, 5)] + rng.standard_normal((2600, 8))
    expected = silhouette_samples(x, labels)
    result = dynamics.class_separation(x, labels.tolist())
    per_class = [expected[labels == c].mean() for c in result.classes]
    np.testing.assert_allclose(result.silhouette, per_class, atol=1e-5)  # float32-centred rows
    assert result.silhouette[result.classes.index(9)] == 0.0  # alone in its class, as scikit-learn
    sampled = dynamics.class_separation(x, labels.tolist(), max_samples=500)
    assert np.abs(sampled.silhouette - result.silhouette)[np.isfinite(sampled.silhouette)].max() > 1e-6
    with pytest.raises(InvalidArgumentError, match="max_samples must be an integer of at least 2 or None; got 1"):
        dynamics.class_separation(x, labels.tolist(), max_samples=1)


def test_step_dynamics_takes_graph_and_silhouette_from_the_rank_pass(monkeypatch):
    # with layouts, one pass over each step's distance rows gives the graph, the ranks and the
    # class sums: the same graph as knn_graph, the same trust as trust_scores, the same silhouette
    # as class_separation (here in blocks of 37 rows on 3 threads, as the benchmark's steps are)
    steps, _, cluster = _planted_change()
    steps = steps[3:6]
    layouts = [x[:, :2] for x in steps]
    monkeypatch.setattr(dynamics, "_BLOCK_ENTRIES", 37 * 500)
    result = dynamics.step_dynamics(steps, k=10, labels=cluster, layouts=layouts, n_jobs=3, quiet=True)
    one_rank = 2.0 / (10 * (2 * 500 - 3 * 10 - 1))  # a point's score moves this much per rank
    for s, x in enumerate(steps):
        alone = dynamics.trust_scores(x, layouts[s], k=10, n_jobs=1)
        for ours, theirs in ((result.trust[s].trust_point, alone.trust_point),
                             (result.trust[s].continuity_point, alone.continuity_point)):
            # BLAS on one thread or two rounds the last float32 digit differently: a near-tie may move one rank
            assert np.abs(ours - theirs).max() <= one_rank + 1e-12 and (ours != theirs).mean() < 0.01
        separation = dynamics.class_separation(x, cluster)
        np.testing.assert_allclose(result.silhouette[s], separation.silhouette, atol=1e-5)
        np.testing.assert_allclose(result.separation[s], separation.separation, rtol=1e-9)
    for s in range(2):
        np.testing.assert_array_equal(result.jaccard[s], dynamics.knn_jaccard(steps[s], steps[s + 1], k=10))
    np.testing.assert_array_equal(np.sort(result.changed_most(1, top=50)), _planted_change()[1])


# --------------------------------------------------------------------------- aligned fits

def test_procrustes_recovers_a_rotated_reflected_scaled_copy():
    rng = np.random.default_rng(13)
    reference = rng.standard_normal((200, 2))
    angle = 0.7
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    reflection = np.diag([1.0, -1.0])
    copy = 2.5 * reference @ rotation @ reflection + [3.0, -4.0]
    aligned, transform = dynamics.procrustes_align(reference, copy)
    np.testing.assert_allclose(aligned, reference, atol=1e-12)
    assert transform.scale == pytest.approx(1 / 2.5)
    np.testing.assert_allclose(transform.rotation, (rotation @ reflection).T, atol=1e-12)
    assert dynamics.stability(reference, aligned) == pytest.approx(0.0, abs=1e-12)


def test_procrustes_on_shared_rows_places_the_others_too():
    rng = np.random.default_rng(14)
    reference = rng.standard_normal((100, 3))
    rotation = ortho_group.rvs(3, random_state=15)
    full = rng.standard_normal((120, 3))
    full[20:] = reference @ rotation  # rows 20.. are reference rows 0..; rows 0..19 are new points
    rows = dynamics.align_rows(np.arange(100), np.r_[np.arange(1000, 1020), np.arange(100)])
    aligned, transform = dynamics.procrustes_align(reference, full, rows=rows)
    assert transform.scale == pytest.approx(1.0)
    np.testing.assert_allclose(aligned[20:], reference, atol=1e-12)
    np.testing.assert_allclose(aligned[:20], full[:20] @ rotation.T, atol=1e-12)
    with pytest.raises(InvalidArgumentError, match="layout has 2 components but reference has 3"):
        dynamics.procrustes_align(reference, full[:, :2])


def test_aligned_steps_are_stable_for_identical_steps():
    rng = np.random.default_rng(16)
    layout = rng.standard_normal((150, 2))
    steps = [layout, layout @ np.array([[0.0, 1.0], [1.0, 0.0]]), layout.copy()]
    result = dynamics.align_steps(steps)
    assert np.isnan(result.stability[0])
    np.testing.assert_allclose(result.stability[1:], 0.0, atol=1e-12)
    for aligned in result.layouts:
        np.testing.assert_allclose(aligned, layout, atol=1e-12)
    moved = dynamics.align_steps([layout, layout + [[0.5, 0.0]] * np.r_[np.ones(75), np.zeros(75)][:, None]])
    assert moved.stability[1] > 0.1


# --------------------------------------------------------------------------- run-to-run comparison

def test_compare_a_run_with_itself_agrees_everywhere():
    x, labels = load_digits(return_X_y=True)
    result = dynamics.compare(x, x.copy(), k=10, labels=labels)
    np.testing.assert_array_equal(result.agreement, 1.0)
    assert result.cka == pytest.approx(1.0, abs=1e-12)
    assert [mean for _, mean, _ in result.clusters] == [1.0] * 10


def test_compare_lists_exactly_the_merged_classes_first():
    x, labels = load_digits(return_X_y=True)
    merged = x.copy()
    both = np.isin(labels, [3, 5])
    centre = x[both].mean(axis=0)
    for c in (3, 5):  # move each class onto the pair's common centre: the two overlap
        merged[labels == c] += centre - x[labels == c].mean(axis=0)
    result = dynamics.compare(x, merged, k=10, labels=labels)
    assert {label for label, _, _ in result.clusters[:2]} == {3, 5}
    assert result.clusters[1][1] < result.clusters[2][1]
    assert result.agreement[both].mean() < result.agreement[~both].mean()
    assert 0.5 < result.cka < 1.0


def test_compare_joins_runs_on_ids():
    x, labels = load_digits(return_X_y=True)
    order = np.random.default_rng(17).permutation(len(x))
    joined = dynamics.compare(x, x[order], k=10, labels=labels, ids_a=np.arange(len(x)), ids_b=order)
    np.testing.assert_array_equal(joined.agreement, 1.0)
    np.testing.assert_array_equal(joined.rows_b, np.argsort(order))
    with pytest.raises(InvalidArgumentError, match="ids_a and ids_b must be given together"):
        dynamics.compare(x, x, ids_a=np.arange(len(x)))
    with pytest.raises(InvalidArgumentError, match="emb_b has 10 rows but emb_a has 1797; join them on a sample id"):
        dynamics.compare(x, x[:10])


def test_the_silhouette_is_exact_up_to_exact_rows_and_a_stated_sample_beyond():
    assert dynamics.silhouette_rows(dynamics.EXACT_ROWS) == dynamics.EXACT_ROWS
    assert dynamics.silhouette_rows(dynamics.EXACT_ROWS + 1) == dynamics.SILHOUETTE_BEYOND_EXACT
    assert dynamics.silhouette_rows(500, max_samples=200) == 200 and dynamics.silhouette_rows(50, max_samples=200) == 50
