"""One definition of run ids, embedding ids, blob names and project names, for the SDK and the server."""

import pytest

from tracker_sdk.errors import InvalidArgumentError
from tracker_sdk.runformat import names

HEX = "0123456789abcdef" * 2
SHA = "0123456789abcdef" * 4


@pytest.mark.parametrize("value, ok", [
    (HEX, True), (HEX.upper(), False), (HEX[:-1], False), (HEX + "0", False), (HEX + "\n", False),
    ("g" * 32, False), (None, False), (123, False),
])
def test_hex_ids(value, ok):
    assert names.is_hex_id(value) is ok


@pytest.mark.parametrize("value, ok", [
    (SHA, True), (SHA[:-1], False), (SHA + "\n", False), (SHA.upper(), False), (b"0" * 64, False),
])
def test_sha256(value, ok):
    assert names.is_sha256(value) is ok


@pytest.mark.parametrize("value, ok", [
    ("proj", True), ("Proj.v2_final-1", True), ("9lives", True), ("p" * 128, True), ("p" * 129, False),
    (".hidden", False), ("-x", False), ("a/b", False), ("..", False), ("", False), ("naïve", False),
    ("proj\n", False), ("\ud800", False),
])
def test_project_names(value, ok):
    assert names.is_project(value) is ok


def test_checks_name_the_argument_and_return_the_value():
    assert names.check_hex_id(HEX, "experiment_key") == HEX
    with pytest.raises(InvalidArgumentError, match="experiment_key must be 32 lowercase hex characters; got 'xyz'"):
        names.check_hex_id("xyz", "experiment_key")
    with pytest.raises(InvalidArgumentError, match="sha256 must be 64 lowercase hex characters; got None"):
        names.check_sha256(None)
    with pytest.raises(InvalidArgumentError, match=r"project_name must start with a letter or digit .* got 'a/b'"):
        names.check_project("a/b", "project_name")


def test_the_caller_chooses_the_error_class():
    class Answer(Exception):
        pass

    with pytest.raises(Answer, match=r"run_id must be 32 lowercase hex characters; got 'xxx+\.\.\.$"):
        names.check_hex_id("x" * 200, error=Answer)  # long values are shortened in the message


@pytest.mark.parametrize("value, problem", [
    ("loss", None), ("train/acc@1 — é ✓", None), ("", None), ("x" * names.MAX_NAME_LENGTH, None),
    ("x" * (names.MAX_NAME_LENGTH + 1), "must be at most 1000 characters; got 1001"),
    ("\ud800x", "a lone surrogate '\\ud800' at character 0 cannot be encoded as UTF-8"),
    ("ab\udfff", "a lone surrogate '\\udfff' at character 2"),
    ("a\x00b", "must not contain control characters; got '\\x00' at character 1"),
    ("tab\there", "control characters"), ("del\x7f", "control characters"), ("c1\x85", "control characters"),
    (b"bytes", "must be a string; got bytes"),
])
def test_names_are_valid_text_without_control_characters(value, problem):
    assert names.name_problem(value) == problem or problem in (names.name_problem(value) or "")


@pytest.mark.parametrize("value", ["CON", "con", "Nul", "AUX.txt", "com1", "LPT9.log", "COM\u00b9", "prn "])
def test_windows_device_names_are_refused_where_they_may_become_file_names(value):
    assert names.name_problem(value) is None  # a metric may be called "con"
    assert "Windows device name" in names.name_problem(value, file_name=True)
    assert names.is_device_name(value)


def test_device_names_are_never_projects():
    assert not names.is_project("CON") and names.is_project("CONSOLE") and names.is_project("com10")
    with pytest.raises(InvalidArgumentError, match="project must not be a Windows device name, since it names a "
                                                   "directory; got 'nul'"):
        names.check_project("nul")


def test_check_name_names_the_argument():
    assert names.check_name("ok", "tag") == "ok"
    with pytest.raises(InvalidArgumentError, match=r"^metric name must not contain control characters; got '\\n' at "
                                                   r"character 1; got 'a\\nb'$"):
        names.check_name("a\nb", "metric name")
