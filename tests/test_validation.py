"""check_vectors is the one vectors check: log_embedding and every reducer refuse and convert alike."""

import numpy as np
import pytest

from tracker_sdk import Experiment
from tracker_sdk._validation import check_vectors
from tracker_sdk.errors import InvalidArgumentError
from tracker_sdk.reduce import PCAReducer

BAD = [
    (np.zeros(5), r"vectors must be 2D \(n_samples, n_features\); got shape \(5,\)"),
    (np.array([[1.0, 2.0], [np.nan, 1.0]]), r"vectors must be finite; got nan at row 1, column 0"),
    (np.zeros((0, 3)), r"vectors must have at least one row; got shape \(0, 3\)"),
    (np.array([["a", "b"]]), r"vectors must hold numbers in rows of equal length"),
]


@pytest.mark.parametrize("vectors, message", BAD)
def test_reducers_and_log_embedding_refuse_the_same_input_with_the_same_message(vectors, message, runs_root):
    with pytest.raises(InvalidArgumentError, match=message):
        check_vectors(vectors)
    with pytest.raises(InvalidArgumentError, match=message):
        PCAReducer().fit(vectors)
    with Experiment(project_name="p", url=str(runs_root)) as exp:
        with pytest.raises(InvalidArgumentError, match=message):
            exp.log_embedding(vectors, None, reduce=None)


def test_reducers_flatten_rows_like_log_embedding():
    images = np.random.default_rng(0).random((30, 4, 4), dtype=np.float32)
    flat = images.reshape(30, -1)
    assert check_vectors(images).shape == (30, 16)
    np.testing.assert_allclose(PCAReducer(random_state=0).fit_transform(images),
                               PCAReducer(random_state=0).fit_transform(flat))


def test_the_argument_is_named():
    with pytest.raises(InvalidArgumentError, match=r"activations must be 2D"):
        check_vectors(np.zeros(3), "activations")
