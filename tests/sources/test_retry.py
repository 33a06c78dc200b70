"""`flare_core.sources.retry`: one policy, retried only on transient errors."""

from __future__ import annotations

import logging

import pytest

from flare_core.errors import ConfigError, SourceError, SourceRateLimited, SourceUnavailable
from flare_core.sources.retry import NETWORK_RETRY, RetryPolicy, retry_call


def _failing(errors):
    it = iter(errors)

    def fn():
        e = next(it, None)
        if e is not None:
            raise e
        return "ok"
    return fn


def test_policy_numbers_and_validation():
    assert NETWORK_RETRY.delays_s == (10.0, 60.0, 300.0) and NETWORK_RETRY.retries == 3
    assert NETWORK_RETRY.delay_s(0, SourceRateLimited("x")) == 600.0
    assert NETWORK_RETRY.delay_s(2, SourceUnavailable("x")) == 300.0
    with pytest.raises(ConfigError, match="delays_s"):
        RetryPolicy(delays_s=(-1.0,))


def test_transient_errors_are_retried_with_the_policy_delays(caplog):
    waits: list[float] = []
    pol = RetryPolicy(delays_s=(1.0, 2.0), rate_limit_delay_s=50.0)
    with caplog.at_level(logging.WARNING):
        got = retry_call(_failing([SourceUnavailable("busy"), SourceRateLimited("STOP")]),
                         policy=pol, what="JSOC rs_list", sleep=waits.append)
    assert got == "ok" and waits == [1.0, 50.0]
    assert "backing off 50.0 s, longer than the usual 2.0 s" in caplog.text


def test_non_transient_and_exhausted():
    waits: list[float] = []
    with pytest.raises(SourceError):
        retry_call(_failing([SourceError("status 4")]), sleep=waits.append)
    assert waits == []
    with pytest.raises(SourceRateLimited, match="X failed after 2 attempts: STOP"):
        retry_call(_failing([SourceUnavailable("a"), SourceRateLimited("STOP")]),
                   policy=RetryPolicy(delays_s=(0.0,)), what="X", sleep=waits.append)
    with pytest.raises(SourceUnavailable, match="^a$"):  # no retries: the error as raised
        retry_call(_failing([SourceUnavailable("a")]), policy=RetryPolicy(delays_s=()))
