"""One retry policy for the network sources (JSOC, HEK), without Prefect.

The network clients make **one attempt** per call and raise `SourceUnavailable` for a
transient failure (connection error, time-out, HTTP 5xx, an empty or truncated body, JSOC
``status 6``), its subclass `SourceRateLimited` for JSOC's ``STOP - Use of JSOC from your
IP address is overworking our system`` reply, and `SourceError` for a refusal that would
fail the same way again (JSOC ``status 4`` command failure). Retrying is the caller's job:

* the CLI path wraps each call in `retry_call` with a `RetryPolicy`;
* the Prefect tasks (`tasks.ingest`) put the same numbers (`NETWORK_RETRY`) on the task
  decorator (``retries``, ``retry_delay_seconds``, ``retry_condition_fn``).

A rate-limited attempt waits ``rate_limit_delay_s`` (default 10 min) instead of the
scheduled delay, and `log_rate_limit_backoff` logs a WARNING saying so.

Example
-------
>>> policy = RetryPolicy(delays_s=(0.0, 0.0), rate_limit_delay_s=0.0)
>>> retry_call(lambda: 42, policy=policy, what="JSOC rs_list")
42
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from ..errors import ConfigError, SourceRateLimited, SourceUnavailable

__all__ = ["RetryPolicy", "NETWORK_RETRY", "retry_call", "log_rate_limit_backoff",
           "doubling_delays_s"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """Waits between attempts of a network call, seconds.

    Parameters
    ----------
    delays_s
        Wait before retry i (``len(delays_s)`` retries, so ``len + 1`` attempts).
    rate_limit_delay_s
        Wait after a `SourceRateLimited` failure instead of ``delays_s[i]`` (JSOC asks
        clients that overwork it to slow down; 10 min by default). Never shorter than the
        scheduled delay.
    """

    delays_s: tuple[float, ...] = (10.0, 60.0, 300.0)
    rate_limit_delay_s: float = 600.0

    def __post_init__(self) -> None:
        if any(not isinstance(d, int | float) or d < 0 for d in self.delays_s):
            raise ConfigError(f"delays_s must be seconds >= 0, got {self.delays_s!r}")
        if not isinstance(self.rate_limit_delay_s, int | float) or self.rate_limit_delay_s < 0:
            raise ConfigError(
                f"rate_limit_delay_s must be seconds >= 0, got {self.rate_limit_delay_s!r}")

    @property
    def retries(self) -> int:
        """Number of retries (attempts - 1)."""
        return len(self.delays_s)

    def delay_s(self, retry: int, error: BaseException) -> float:
        """Seconds to wait before retry ``retry`` (0-based) after ``error``."""
        scheduled = self.delays_s[retry]
        if isinstance(error, SourceRateLimited):
            return max(scheduled, self.rate_limit_delay_s)
        return scheduled


#: The policy of every network source: 10 s, 1 min, 5 min; 10 min after a rate limit.
NETWORK_RETRY = RetryPolicy()


def doubling_delays_s(retries: int, first_s: float) -> tuple[float, ...]:
    """``retries`` delays starting at ``first_s`` and doubling: (2, 4, 8) for (3, 2.0)."""
    return tuple(first_s * 2 ** i for i in range(retries))


def log_rate_limit_backoff(what: str, wait_s: float, usual_s: float) -> None:
    """The WARNING of a rate-limited attempt (shared by the CLI and Prefect paths)."""
    logger.warning("%s: JSOC rate limit (STOP reply); backing off %.1f s, longer than the "
                   "usual %.1f s", what, wait_s, usual_s)


def retry_call(fn: Callable[[], T], *, policy: RetryPolicy = NETWORK_RETRY, what: str = "call",
               sleep: Callable[[float], None] = time.sleep) -> T:
    """Call ``fn()``; on `SourceUnavailable` wait and call again, as ``policy`` says.

    Parameters
    ----------
    fn
        One attempt; raises `SourceUnavailable` (retried) or anything else (not retried).
    policy
        Delays between attempts; a `SourceRateLimited` failure waits
        ``policy.rate_limit_delay_s`` instead.
    what
        Names the call in log lines and the final error.
    sleep
        Waits the given seconds (`time.sleep`).

    Returns
    -------
    Whatever ``fn`` returns.

    Raises
    ------
    SourceUnavailable
        The last failure (same class, e.g. `SourceRateLimited`), its message prefixed
        ``"<what> failed after N attempts"``, when every attempt failed transiently.
    """
    for retry in range(policy.retries + 1):
        try:
            return fn()
        except SourceUnavailable as e:
            if retry == policy.retries:
                if policy.retries == 0:
                    raise
                raise type(e)(f"{what} failed after {retry + 1} attempts: {e}") from e
            wait = policy.delay_s(retry, e)
            if isinstance(e, SourceRateLimited):
                log_rate_limit_backoff(what, wait, policy.delays_s[retry])
            else:
                logger.warning("%s failed (%s); retry %d/%d in %.1f s", what, e, retry + 1,
                               policy.retries, wait)
            sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover
