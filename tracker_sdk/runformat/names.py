"""The one definition of every identifier the run format uses as a path component.

Run ids and embedding/reduction ids are 32 lowercase hex digits, blob names are the 64 hex
digits of a sha256, and project names are short ASCII words that are safe as a directory
name (never a Windows device name such as ``CON``). Every other name a user gives (run
name, tags, metric, parameter, other and column names, asset names, titles, groups) passes
:func:`check_name`: valid UTF-8 (no lone surrogates), no control characters, at most
``MAX_NAME_LENGTH`` characters, and no device name where it may become a file name. The SDK
and the server both validate through these functions (the server passes ``error=`` to turn
the message into a 400 answer), so the rules cannot drift apart.
"""

from __future__ import annotations

import re
import unicodedata

from ..errors import InvalidArgumentError

HEX_ID_LENGTH = 32
HEX_ID_PATTERN = r"[0-9a-f]{32}"
SHA256_PATTERN = r"[0-9a-f]{64}"
PROJECT_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}"

HEX_ID_RE = re.compile(HEX_ID_PATTERN)
SHA256_RE = re.compile(SHA256_PATTERN)
PROJECT_RE = re.compile(PROJECT_PATTERN)

HEX_ID_RULE = f"{HEX_ID_LENGTH} lowercase hex characters"
SHA256_RULE = "64 lowercase hex characters"
PROJECT_RULE = ("start with a letter or digit and contain only letters, digits, '.', '_' and '-' "
                "(at most 128 characters)")


MAX_NAME_LENGTH = 1000
_DEVICE_DIGITS = "0123456789\u00b9\u00b2\u00b3"  # Windows reserves COM\u00b9 too
WINDOWS_DEVICE_NAMES = frozenset({"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
                                 | {f"{port}{d}" for port in ("COM", "LPT") for d in _DEVICE_DIGITS})


def is_device_name(value: str) -> bool:
    """True for a name Windows reserves as a device (``CON``, ``nul.txt``, ``COM1``): never a file name."""
    return value.split(".", 1)[0].rstrip(" ").upper() in WINDOWS_DEVICE_NAMES


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored as UTF-8 text (a lone surrogate), or None."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return (f"is not valid Unicode text: a lone surrogate {value[exc.start]!r} at character {exc.start} "
                "cannot be encoded as UTF-8")
    return None


def name_problem(value, *, max_length: int = MAX_NAME_LENGTH, file_name: bool = False) -> str | None:
    """Why ``value`` is not an acceptable name, or None (see the module docstring)."""
    if not isinstance(value, str):
        return f"must be a string; got {type(value).__name__}"
    if file_name and not value:
        return "must not be empty, since it may become a file name"
    if len(value) > max_length:
        return f"must be at most {max_length} characters; got {len(value)}"
    problem = text_problem(value)
    if problem:
        return problem
    for i, char in enumerate(value):
        if unicodedata.category(char) == "Cc":
            return f"must not contain control characters; got {char!r} at character {i}"
    if file_name and is_device_name(value):
        return f"must not be a Windows device name ({value.split('.', 1)[0].upper()}), since it may become a file name"
    return None


def is_hex_id(value) -> bool:
    """True for a run, embedding or reduction id (32 lowercase hex digits)."""
    return isinstance(value, str) and HEX_ID_RE.fullmatch(value) is not None


def is_sha256(value) -> bool:
    """True for a blob name (64 lowercase hex digits)."""
    return isinstance(value, str) and SHA256_RE.fullmatch(value) is not None


def is_project(value) -> bool:
    """True for a project name that is safe as a directory name."""
    return isinstance(value, str) and PROJECT_RE.fullmatch(value) is not None and not is_device_name(value)


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def check_hex_id(value, argument: str = "run_id", *, error=InvalidArgumentError) -> str:
    """Return ``value`` when it is a 32-hex id; else raise ``error(message)`` naming ``argument``."""
    if not is_hex_id(value):
        raise error(f"{argument} must be {HEX_ID_RULE}; got {_short(value)}")
    return value


def check_sha256(value, argument: str = "sha256", *, error=InvalidArgumentError) -> str:
    """Return ``value`` when it is a sha256 hex digest; else raise ``error(message)``."""
    if not is_sha256(value):
        raise error(f"{argument} must be {SHA256_RULE}; got {_short(value)}")
    return value


def check_project(value, argument: str = "project", *, error=InvalidArgumentError) -> str:
    """Return ``value`` when it is a valid project name; else raise ``error(message)``."""
    if not is_project(value):
        if isinstance(value, str) and PROJECT_RE.fullmatch(value):
            raise error(f"{argument} must not be a Windows device name, since it names a directory; "
                        f"got {_short(value)}")
        raise error(f"{argument} must {PROJECT_RULE}, since it names a directory; got {_short(value)}")
    return value


def check_name(value, argument: str, *, max_length: int = MAX_NAME_LENGTH, file_name: bool = False,
               error=InvalidArgumentError) -> str:
    """Return ``value`` when it is an acceptable name; else raise ``error(message)`` naming ``argument``."""
    problem = name_problem(value, max_length=max_length, file_name=file_name)
    if problem:
        raise error(f"{argument} {problem}; got {_short(value)}")
    return value
