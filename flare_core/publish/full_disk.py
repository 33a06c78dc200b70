"""Full-disk flare probabilities from per-region forecasts.

Assuming regions flare independently, the probability that at least one flare of a class
(or above) peaks anywhere on the disk in the window is ``1 - prod_i (1 - p_i)`` over the
regions ``i`` forecast at that issue time. Flares from outside the forecast regions (limb,
unnumbered plage) are not counted, so this is a lower bound on the true full-disk rate.

`disk_coverage` says how many regions each issue time covers (forecast, and on the disk
with fresh data), and `data_gaps` turns that into the gaps a forecaster must know about:
issue times without any forecast and issue times where regions dropped out.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import numpy as np
import polars as pl

from ..config import check_positive
from ..schema import UTC_DATETIME, with_served_at
from .forecast_store import PROBABILITY_COLUMNS

__all__ = ["combine_region_probabilities", "full_disk_probabilities", "disk_coverage",
           "data_gaps"]

logger = logging.getLogger(__name__)


def combine_region_probabilities(column: str) -> pl.Expr:
    """Aggregation ``1 - prod(1 - p)`` of one probability column (null if any region is null).

    For use inside ``group_by(...).agg(...)``; an empty group gives 0.
    """
    p = pl.col(column)
    return (
        pl.when(p.null_count() > 0)
        .then(None)
        .otherwise(1.0 - (1.0 - p).product())
        .alias(column)
    )


def full_disk_probabilities(forecasts: pl.DataFrame) -> pl.DataFrame:
    """Full-disk probabilities per issue time and model.

    Parameters
    ----------
    forecasts : pl.DataFrame
        Forecast frame (see `flare_core.publish.forecast_store`): issue_time, model,
        model_version, p_c24, p_m24, p_x24.

    Returns
    -------
    pl.DataFrame
        One row per (issue_time, model, model_version), sorted: those columns, p_c24,
        p_m24, p_x24 (each ``1 - prod(1 - p_region)``; null when any region lacks that
        probability), and n_regions (UInt32).

    Examples
    --------
    Two regions at 0.5 and 0.2 give ``1 - 0.5 * 0.8 = 0.6``.
    """
    keys = ["issue_time", "model", "model_version"]
    return (
        forecasts.group_by(keys)
        .agg(*[combine_region_probabilities(c) for c in PROBABILITY_COLUMNS],
             pl.len().alias("n_regions"))
        .sort(keys)
    )


def disk_coverage(forecasts: pl.DataFrame, records: pl.DataFrame | None = None, *,
                  freshness_h: float = 6.0) -> pl.DataFrame:
    """Regions forecast, and regions on the disk, at each issue time.

    A region is *on the disk with fresh data* at an issue time if its newest SHARP record
    served by then (``served_at <= issue_time``, `flare_core.schema.served_at_expr`) has
    ``t_rec`` in ``(issue_time - freshness_h, issue_time]``: the record
    `flare_core.forecasting` would use. A forecast region counts as on the disk too.

    Parameters
    ----------
    forecasts : pl.DataFrame
        issue_time and harpnum (pass ONE model's rows: the coverage of that model).
    records : pl.DataFrame, optional
        SHARP records: harpnum and t_rec (UTC), any range, and served_at or what
        `flare_core.schema.with_served_at` computes it from. Without them the regions on
        the disk are unknown (null counts).
    freshness_h : float, optional
        Hours a record stays fresh (default 6).

    Returns
    -------
    pl.DataFrame
        One row per issue time of ``forecasts``, sorted: issue_time, n_forecast (UInt32),
        forecast_harpnums (List(Int64), sorted), n_on_disk (UInt32, null without
        ``records``) and not_forecast (List(Int64): on the disk but not forecast; null
        without ``records``).
    """
    check_positive("freshness_h", freshness_h)
    per_time = (forecasts.group_by("issue_time")
                .agg(pl.col("harpnum").unique().sort().alias("forecast_harpnums"))
                .sort("issue_time")
                .with_columns(n_forecast=pl.col("forecast_harpnums").list.len()))
    if records is None:
        return per_time.select(
            "issue_time", "n_forecast", "forecast_harpnums",
            pl.lit(None, dtype=pl.UInt32).alias("n_on_disk"),
            pl.lit(None, dtype=pl.List(pl.Int64)).alias("not_forecast"))
    times = per_time["issue_time"]
    fresh_us = int(freshness_h * 3.6e9)
    issue_us = times.dt.epoch("us").to_numpy()
    seen: list[list[int]] = [[] for _ in range(len(times))]
    recs = (records if "served_at" in records.columns else with_served_at(records))
    recs = (recs.select("harpnum", "t_rec", "served_at").drop_nulls()
            .group_by("harpnum", "t_rec").agg(pl.col("served_at").min())
            .sort("harpnum", "t_rec")
            .with_columns(pl.col("served_at").cum_max().over("harpnum")))
    for (harpnum,), part in recs.group_by(["harpnum"], maintain_order=True):
        t = part["t_rec"].dt.epoch("us").to_numpy()
        served = part["served_at"].dt.epoch("us").to_numpy()
        newest = np.searchsorted(served, issue_us, side="right") - 1  # newest served record
        ok = newest >= 0
        fresh = np.zeros(len(issue_us), dtype=bool)
        fresh[ok] = issue_us[ok] - t[newest[ok]] < fresh_us
        for i in np.flatnonzero(fresh):
            seen[i].append(int(harpnum))
    on_disk = pl.Series("on_disk", seen, dtype=pl.List(pl.Int64))
    return per_time.with_columns(on_disk).select(
        "issue_time", "n_forecast", "forecast_harpnums",
        pl.concat_list("on_disk", "forecast_harpnums").list.unique().list.len()
        .cast(pl.UInt32).alias("n_on_disk"),
        pl.col("on_disk").list.set_difference("forecast_harpnums").list.sort()
        .alias("not_forecast"),
    ).with_columns(pl.col("n_forecast").cast(pl.UInt32))


def data_gaps(coverage: pl.DataFrame, *, cadence_h: float | None = None) -> pl.DataFrame:
    """The gaps of a published period, from `disk_coverage`.

    Three kinds, each a band ``[start, end)`` to shade on a time axis:

    ``no_forecast``
        Issue times on the regular cadence (between the first and last issue time) with no
        forecast at all: no region had fresh data. The band runs from half a cadence before
        the first missing issue time to half a cadence after the last.
    ``fewer_regions``
        An issue time forecasting fewer regions than the previous one (a region's data
        stopped or the region left the disk); a band one cadence wide.
    ``not_forecast``
        Consecutive issue times at which a region on the disk (with fresh data) was not
        forecast (needs ``records`` in `disk_coverage`).

    Parameters
    ----------
    coverage : pl.DataFrame
        As returned by `disk_coverage`.
    cadence_h : float, optional
        The issue cadence, hours (default: the median step between issue times, at least
        one minute).

    Returns
    -------
    pl.DataFrame
        start, end (Datetime UTC), kind (Utf8), n_issue_times (Int64: issue times
        affected), harpnums (List(Int64): the regions concerned; empty for no_forecast),
        detail (Utf8, a sentence for the page); sorted by start.
    """
    schema = {"start": UTC_DATETIME, "end": UTC_DATETIME, "kind": pl.Utf8,
              "n_issue_times": pl.Int64, "harpnums": pl.List(pl.Int64), "detail": pl.Utf8}
    cov = coverage.sort("issue_time")
    if cov.height < 2:
        return pl.DataFrame(schema=schema)
    times = cov["issue_time"].to_list()
    steps = np.diff([t.timestamp() for t in times])
    cadence = timedelta(hours=cadence_h) if cadence_h is not None else timedelta(
        seconds=max(float(np.median(steps)), 60.0))
    half = cadence / 2
    rows: list[dict] = []
    for a, b in zip(times, times[1:], strict=False):
        missing = round((b - a) / cadence) - 1
        if missing >= 1:
            first, last = a + cadence, b - cadence
            rows.append({"start": first - half, "end": last + half, "kind": "no_forecast",
                         "n_issue_times": missing, "harpnums": [],
                         "detail": f"no forecast issued {_fmt(first)} \u2013 {_fmt(last)} "
                                   f"({missing} issue time{'s' * (missing > 1)}): no region "
                                   "had fresh SHARP data"})
    harps = cov["forecast_harpnums"].to_list()
    for i in range(1, cov.height):
        lost = sorted(set(harps[i - 1]) - set(harps[i]))
        if len(harps[i]) < len(harps[i - 1]) and lost:
            t = times[i]
            names = ", ".join(f"HARP {h}" for h in lost)
            rows.append({"start": t - half, "end": t + half, "kind": "fewer_regions",
                         "n_issue_times": 1, "harpnums": lost,
                         "detail": f"{_fmt(t)}: {len(harps[i - 1])} \u2192 {len(harps[i])} "
                                   f"regions forecast ({names} no longer forecast)"})
    if "not_forecast" in cov.columns and cov["not_forecast"].null_count() < cov.height:
        skipped = cov["not_forecast"].to_list()
        i = 0
        while i < cov.height:
            if not skipped[i]:
                i += 1
                continue
            j = i
            while (j + 1 < cov.height and skipped[j + 1]
                   and times[j + 1] - times[j] <= cadence * 1.5):
                j += 1
            regions = sorted({h for k in range(i, j + 1) for h in skipped[k]})
            names = ", ".join(f"HARP {h}" for h in regions)
            rows.append({"start": times[i] - half, "end": times[j] + half,
                         "kind": "not_forecast", "n_issue_times": j - i + 1,
                         "harpnums": regions,
                         "detail": f"{_fmt(times[i])} \u2013 {_fmt(times[j])}: {names} had "
                                   "fresh data but no forecast"})
            i = j + 1
    return pl.DataFrame(rows, schema=schema).sort("start")


def _fmt(t: datetime) -> str:
    return f"{t:%Y-%m-%d %H:%M} UTC"
