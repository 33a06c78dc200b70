"""Datetime columns of polars frames as tz-aware UTC: the frame counterpart of
`flare_core.timeutil.to_utc` (same rule: aware values converted, naive ones taken as UTC).

Examples
--------
>>> from datetime import datetime
>>> import polars as pl
>>> df = pl.DataFrame({"t": [datetime(2014, 10, 22, 13)]})           # naive: read as UTC
>>> to_utc_columns(df, ["t"], time_unit="us").schema["t"]
Datetime(time_unit='us', time_zone='UTC')
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import polars as pl

from .errors import ConfigError

__all__ = ["to_utc_columns"]


def to_utc_columns(frame: pl.DataFrame, columns: Iterable[str], *,
                   time_unit: Literal["ns", "us", "ms"] | None = None) -> pl.DataFrame:
    """``frame`` with each of ``columns`` as a tz-aware UTC ``Datetime``.

    Parameters
    ----------
    frame : polars.DataFrame
        Holds ``columns``, each a ``Datetime`` (any time zone, or none).
    columns : iterable of str
        Columns to convert. Values with a time zone are converted to UTC (the instant is
        kept); naive values are taken as UTC (the wall time is kept).
    time_unit : {"ns", "us", "ms"}, optional
        Cast to this unit as well (flareflow frames are ``Datetime("us", "UTC")``); None
        keeps each column's unit.

    Returns
    -------
    polars.DataFrame
        ``frame`` itself when nothing needs changing, else a frame with those columns
        replaced (same order and other columns).

    Raises
    ------
    ConfigError
        A column is not a ``Datetime``.
    """
    exprs = []
    for col in columns:
        dtype = frame.schema[col]
        if not isinstance(dtype, pl.Datetime):
            raise ConfigError(f"column {col!r} must be a Datetime, got {dtype}")
        if dtype.time_zone == "UTC" and time_unit in (None, dtype.time_unit):
            continue
        expr = pl.col(col)
        expr = (expr.dt.convert_time_zone("UTC") if dtype.time_zone
                else expr.dt.replace_time_zone("UTC"))
        if time_unit is not None:
            expr = expr.dt.cast_time_unit(time_unit)
        exprs.append(expr.alias(col))
    return frame.with_columns(exprs) if exprs else frame
