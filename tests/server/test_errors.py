"""The one mapping from an exception to the server's JSON answer (server_stub.errors.answer_for)."""

from __future__ import annotations

from pathlib import Path

import pytest

from server_stub.errors import Conflict, NotFound, answer_for, headers_for
from tracker_sdk.errors import (CorruptJournalError, InvalidArgumentError, RunFormatError, RunLockedError,
                                SeqGapError, StorageFullError)

ROOT = Path("/srv/tracker-root")


@pytest.mark.parametrize("exc, status, body", [
    (NotFound("no run 00"), 404, {"error": "no run 00"}),
    (Conflict("records skip", next_seq=3), 409, {"error": "records skip", "next_seq": 3}),
    (CorruptJournalError(ROOT / "p" / "r" / "journal" / "00000000.seg", 96, "CRC mismatch"), 422,
     {"error": "the run cannot be read: corrupt journal record in p/r/journal/00000000.seg at byte offset 96: "
               "CRC mismatch", "file": "p/r/journal/00000000.seg", "offset": 96}),
    (RunFormatError(f"{ROOT}/p/r has no run.json"), 422, {"error": "the run cannot be read: p/r has no run.json"}),
    (RunLockedError("locked"), 409,
     {"error": "the run is being written by another process; retry once it has finished"}),
    (SeqGapError("record seq 9 leaves a gap", next_seq=4), 409,
     {"error": "record seq 9 leaves a gap", "next_seq": 4}),
    (StorageFullError(ROOT / "p", 1024), 507,
     {"error": "the server's disk is full (1024 bytes free); retry later", "retry_after": 60}),
    (InvalidArgumentError(f"k must be positive; got 0 for {ROOT}/p"), 400, {"error": "k must be positive; got 0 for p"}),
])
def test_errors_map_to_a_status_and_a_body_without_server_paths(exc, status, body):
    assert answer_for(exc, ROOT) == (status, body)


def test_a_fault_of_the_server_has_no_client_answer():
    assert answer_for(KeyError("seq"), ROOT) is None  # Guard answers 500 and logs the traceback
    assert answer_for(ZeroDivisionError(), ROOT) is None


def test_a_full_disk_answers_507_with_a_retry_after_header_even_unwrapped():
    import errno

    status, body = answer_for(OSError(errno.ENOSPC, "No space left on device"), ROOT)
    assert status == 507 and body == {"error": "the server's disk is full (unknown free); retry later",
                                      "retry_after": 60}
    assert headers_for(body) == {"Retry-After": "60"}
    assert headers_for({"error": "no run"}) is None


def test_a_lost_index_database_answers_503_to_retry_not_500():
    sqlalchemy = pytest.importorskip("sqlalchemy")
    import sqlite3

    lost = sqlalchemy.exc.OperationalError("SELECT next_seq FROM runs", {}, ConnectionError("server closed"))
    status, body = answer_for(lost, ROOT)
    assert status == 503 and body["retry_after"] == 5 and "index database" in body["error"]
    assert headers_for(body) == {"Retry-After": "5"}
    assert answer_for(sqlite3.OperationalError("database is locked"), ROOT)[0] == 503
    assert answer_for(sqlalchemy.exc.IntegrityError("INSERT", {}, ValueError()), ROOT) is None  # a bug stays a 500
