"""The retry policy of the sync client: an immutable value, not a loop scattered in callers.

Every request of the sync protocol is idempotent (PUT by id or hash, HEAD, GET, PATCH at
an explicit offset, POST of records keyed by seq), so every one of them may be retried.
What is retried: connection errors and the statuses in ``retry_statuses`` (5xx including 507
"disk full", 429, and tus's 460 "Checksum Mismatch" of one chunk);
``Retry-After`` (seconds or an HTTP date) replaces the computed backoff when it is longer.
Other 4xx are never retried: the server has said the request itself is wrong.
"""

from __future__ import annotations

import dataclasses
import email.utils
import random
import time
from dataclasses import dataclass

from ..errors import InvalidArgumentError

DEFAULT_RETRY_STATUSES = frozenset({429, 460, 500, 502, 503, 504, 507})


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date); None if absent or unreadable."""
    if value is None:
        return None
    value = str(value).strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry one request.

    Parameters
    ----------
    attempts : int
        Total tries of one request, the first included (1 = never retry).
    backoff : float
        Base delay in seconds; the n-th retry waits ``backoff * 2**(n-1)``, capped at
        ``max_backoff``.
    max_backoff : float
        Upper bound of one computed delay.
    jitter : float
        Fraction of the delay drawn at random (0 = fixed delays, 1 = "full jitter"), so
        many clients that failed together do not retry together.
    retry_statuses : frozenset of int
        HTTP statuses worth another try.
    respect_retry_after : bool
        Wait at least what the server's ``Retry-After`` asks, up to ``max_retry_after``.
    max_retry_after : float
        Cap on a server-requested wait (a broken server cannot park the client for hours).
    """

    attempts: int = 6
    backoff: float = 0.25
    max_backoff: float = 10.0
    jitter: float = 0.5
    retry_statuses: frozenset = DEFAULT_RETRY_STATUSES
    respect_retry_after: bool = True
    max_retry_after: float = 60.0

    def __post_init__(self):
        if not isinstance(self.attempts, int) or isinstance(self.attempts, bool) or self.attempts < 1:
            raise InvalidArgumentError(f"attempts must be an int >= 1; got {self.attempts!r}")
        for name in ("backoff", "max_backoff", "max_retry_after"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                raise InvalidArgumentError(f"{name} must be a number >= 0 seconds; got {value!r}")
        if not isinstance(self.jitter, (int, float)) or not 0 <= self.jitter <= 1:
            raise InvalidArgumentError(f"jitter must be a fraction between 0 and 1; got {self.jitter!r}")
        object.__setattr__(self, "retry_statuses", frozenset(int(s) for s in self.retry_statuses))

    def replace(self, **changes) -> "RetryPolicy":
        """A copy with some fields changed (the policy itself never changes)."""
        return dataclasses.replace(self, **changes)

    def is_retryable_status(self, status: int) -> bool:
        return status in self.retry_statuses

    def delay(self, retry: int, retry_after: str | float | None = None, *, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the first retry)."""
        if retry < 1:
            raise InvalidArgumentError(f"retry counts from 1; got {retry!r}")
        computed = min(self.max_backoff, self.backoff * (2 ** min(retry - 1, 62)))
        computed -= computed * self.jitter * (rng or random).random()
        if self.respect_retry_after and retry_after is not None:
            asked = retry_after if isinstance(retry_after, (int, float)) else parse_retry_after(retry_after)
            if asked is not None:
                return max(computed, min(float(asked), self.max_retry_after))
        return computed


#: For one request of ``tracker upload`` and of the background thread: rides out a server
#: restart of a few seconds; the background thread then keeps trying between passes.
DEFAULT_POLICY = RetryPolicy()
