"""get_reducer: parameters by keyword only, with an error that shows the keyword form."""

import pytest

from tracker_sdk.errors import InvalidArgumentError
from tracker_sdk.reduce import get_reducer


def test_positional_dict_names_the_keyword_form():
    with pytest.raises(InvalidArgumentError,
                       match=r"params: .*keyword arguments, e\.g\. get_reducer\('umap', n_neighbors=5\).*"
                             r"got 1 positional argument\(s\) after name: \{'n_neighbors': 5\}"):
        get_reducer("umap", {"n_neighbors": 5})


def test_positional_value_is_refused_before_the_name_is_resolved():
    with pytest.raises(InvalidArgumentError, match=r"keyword arguments.*got 2 positional argument\(s\) after name: 2, 0"):
        get_reducer("pca", 2, 0)


def test_keyword_form_from_the_message_works():
    assert get_reducer("umap", n_neighbors=5).get_params()["n_neighbors"] == 5
    params = {"n_neighbors": 5}
    assert get_reducer("umap", **params).get_params()["n_neighbors"] == 5
