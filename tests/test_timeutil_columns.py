"""`flare_core.timeutil.to_utc_columns`: the frame counterpart of `timeutil.to_utc`."""

from __future__ import annotations

import doctest
from datetime import UTC, datetime, timedelta, timezone

import polars as pl
import pytest

import flare_core.timeutil as timecols
from flare_core.errors import ConfigError
from flare_core.timeutil import to_utc, to_utc_columns

NAIVE = [datetime(2014, 10, 22, 13, 47, 12, 5), datetime(2016, 12, 31, 23, 59, 59)]
PLUS2 = timezone(timedelta(hours=2))


def test_examples_run():
    assert doctest.testmod(timecols).failed == 0


def test_same_rule_as_to_utc():
    df = pl.DataFrame({
        "naive": pl.Series(NAIVE, dtype=pl.Datetime("ns")),
        "aware": pl.Series([t.replace(tzinfo=PLUS2) for t in NAIVE],
                           dtype=pl.Datetime("ms", "Europe/Berlin")),
        "utc": pl.Series([t.replace(tzinfo=UTC) for t in NAIVE], dtype=pl.Datetime("us", "UTC")),
        "other": [1, 2],
    })
    out = to_utc_columns(df, ["naive", "aware", "utc"])
    assert out.columns == df.columns and out["other"].equals(df["other"])
    assert out.schema["naive"] == pl.Datetime("ns", "UTC")
    assert out.schema["aware"] == pl.Datetime("ms", "UTC")  # unit kept without time_unit
    for col in ("naive", "aware", "utc"):
        want = [to_utc(t) for t in df[col].to_list()]
        assert out[col].to_list() == want, col
    us = to_utc_columns(df, ["naive", "aware"], time_unit="us")
    assert {us.schema[c] for c in ("naive", "aware")} == {pl.Datetime("us", "UTC")}


def test_nothing_to_do_returns_the_frame_and_bad_columns_raise():
    df = pl.DataFrame({"t": pl.Series([NAIVE[0]], dtype=pl.Datetime("us", "UTC")), "x": [1]})
    assert to_utc_columns(df, ["t"], time_unit="us") is df
    assert to_utc_columns(df, []) is df
    with pytest.raises(ConfigError, match="column 'x' must be a Datetime, got Int64"):
        to_utc_columns(df, ["x"])
