"""RetryPolicy is a value: growth, cap, jitter bounds, Retry-After, and argument checks."""

import dataclasses
import email.utils
import random
import time

import pytest

from tracker_sdk.errors import InvalidArgumentError
from tracker_sdk.sync.retry import RetryPolicy, parse_retry_after


def test_backoff_doubles_then_caps_without_jitter():
    policy = RetryPolicy(backoff=0.5, max_backoff=3.0, jitter=0)
    assert [policy.delay(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_jitter_stays_within_its_fraction_and_varies():
    policy = RetryPolicy(backoff=1.0, max_backoff=100, jitter=0.5)
    rng = random.Random(0)
    delays = [policy.delay(3, rng=rng) for _ in range(200)]
    assert all(2.0 <= d <= 4.0 for d in delays)
    assert len({round(d, 6) for d in delays}) > 100


def test_retry_after_seconds_wins_when_longer_and_is_capped():
    policy = RetryPolicy(backoff=0.1, jitter=0, max_retry_after=5)
    assert policy.delay(1, "2") == 2.0
    assert policy.delay(1, "0") == pytest.approx(0.1)
    assert policy.delay(1, "3600") == 5
    assert RetryPolicy(backoff=0.1, jitter=0, respect_retry_after=False).delay(1, "2") == pytest.approx(0.1)


def test_retry_after_http_date_and_garbage():
    now = time.time()
    header = email.utils.formatdate(now + 30, usegmt=True)
    assert 28 <= parse_retry_after(header, now=now) <= 31
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
    assert parse_retry_after(email.utils.formatdate(now - 60, usegmt=True), now=now) == 0


def test_statuses_that_retry():
    policy = RetryPolicy()
    assert all(policy.is_retryable_status(s) for s in (429, 460, 500, 502, 503, 504, 507))  # 460: a bad chunk
    assert not any(policy.is_retryable_status(s) for s in (400, 401, 403, 404, 409, 413))
    assert RetryPolicy(retry_statuses={418}).is_retryable_status(418)


def test_policy_is_immutable_and_replace_makes_a_copy():
    policy = RetryPolicy(attempts=3)
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign"):
        policy.attempts = 5
    other = policy.replace(attempts=9)
    assert (policy.attempts, other.attempts) == (3, 9)
    assert hash(policy) != hash(other)


@pytest.mark.parametrize("kwargs, message", [
    ({"attempts": 0}, "attempts must be an int >= 1"),
    ({"backoff": -1}, "backoff must be a number >= 0"),
    ({"jitter": 2}, "jitter must be a fraction"),
])
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(InvalidArgumentError, match=message):
        RetryPolicy(**kwargs)


def test_delay_counts_retries_from_one():
    with pytest.raises(InvalidArgumentError, match="retry counts from 1"):
        RetryPolicy().delay(0)
