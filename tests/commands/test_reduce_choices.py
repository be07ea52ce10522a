"""`tracker reduce` never dead-ends: one embedding, ungrouped titles, Comet-style steps named by title."""

import numpy as np
import pytest

from tracker_sdk import Experiment
from tracker_sdk.cli import main as cli
from tracker_sdk.runformat import open_run


def _vectors(seed, n=60, d=6):
    return np.random.default_rng(seed).random((n, d))


def test_a_run_with_one_ungrouped_embedding_reduces_it_with_no_other_argument(tmp_path, capsys):
    with Experiment(project_name="p", url=str(tmp_path)) as exp:
        exp.log_embedding(_vectors(0), [i % 3 for i in range(60)], reduce=None)
    assert cli(["reduce", str(exp.run_dir), "--method", "pca"]) == 0
    assert "pca 2d of 'Embedding'" in capsys.readouterr().out
    (emb,) = open_run(exp.run_dir).embeddings
    assert [r.method for r in emb.reductions] == ["pca"]


def test_several_embeddings_are_listed_with_the_command_for_each(tmp_path, capsys):
    with Experiment(project_name="p", url=str(tmp_path)) as exp:
        exp.log_embedding(_vectors(0), list(range(60)), title="alone", reduce=None)
        for step in range(2):
            exp.log_embedding(_vectors(step), list(range(60)), title="layer", group="g", step=step, reduce=None)
    assert cli(["reduce", str(exp.run_dir)]) == 2
    err = capsys.readouterr().err
    assert "has 3 embeddings; say which to reduce" in err
    assert f"tracker reduce {exp.run_dir} --group 'g'" in err and "--title 'alone'" in err


def test_title_alone_makes_a_timeline_of_ungrouped_embeddings(tmp_path, capsys):
    with Experiment(project_name="p", url=str(tmp_path)) as exp:
        for step in range(3):
            exp.log_embedding(_vectors(step), list(range(60)), title="penultimate", step=step, reduce=None)
    assert cli(["reduce", str(exp.run_dir), "--title", "penultimate", "--method", "pca"]) == 0
    out = capsys.readouterr().out
    assert "3 reductions in timeline" in out and "(fitted on step 2)" in out
    assert cli(["reduce", str(exp.run_dir), "--title", "nope", "--method", "pca"]) == 2
    assert "no ungrouped embeddings titled 'nope'; ungrouped titles: ['penultimate']" in capsys.readouterr().err


def test_comet_style_steps_are_ordered_by_logging_and_named_by_title(tmp_path, capsys):
    with Experiment(project_name="p", url=str(tmp_path)) as exp:
        for epoch in (2, 0, 1):  # logged out of title order: logging order is the timeline's order
            exp.log_embedding(_vectors(epoch), list(range(60)), title=f"epoch-{epoch}", group="hidden-layer-1",
                              reduce=None)
    assert cli(["reduce", str(exp.run_dir), "--group", "hidden-layer-1", "--method", "pca"]) == 0
    out = capsys.readouterr().out
    assert "step None" not in out and "(fitted on 'epoch-1')" in out  # the last one logged
    lines = [line for line in out.splitlines() if line.startswith("pca 2d of")]
    assert [line.split("'")[1] for line in lines] == ["epoch-2", "epoch-0", "epoch-1"]


@pytest.mark.parametrize("argv, message", [
    (["--title", "x", "--embedding", "abc"], "do not combine it with --embedding"),
])
def test_conflicting_choices_are_refused(tmp_path, capsys, argv, message):
    with Experiment(project_name="p", url=str(tmp_path)) as exp:
        exp.log_embedding(_vectors(0), list(range(60)), reduce=None)
    assert cli(["reduce", str(exp.run_dir), *argv]) == 2
    assert message in capsys.readouterr().err
