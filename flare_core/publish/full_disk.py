"""Full-disk flare probabilities from per-region forecasts.

Assuming regions flare independently, the probability that at least one flare of a class
(or above) peaks anywhere on the disk in the window is ``1 - prod_i (1 - p_i)`` over the
regions ``i`` forecast at that issue time. Flares from outside the forecast regions (limb,
unnumbered plage) are not counted, so this is a lower bound on the true full-disk rate.
"""

from __future__ import annotations

import logging

import polars as pl

from .forecast_store import PROBABILITY_COLUMNS

__all__ = ["combine_region_probabilities", "full_disk_probabilities"]

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
