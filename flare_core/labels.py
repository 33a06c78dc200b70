"""Survival and binary labels: when does a region's next >=M flare peak?

For a record of region ``h`` at time ``t`` (UTC), the *next flare* is the region's first
flare of class M1.0 or above (peak flux >= 1e-5 W m^-2) with ``peak_time > t``. Every record
points at its own next flare, so a region's series is split at each >=M flare as in the
survival paper (A&A 703, A99, 2025).

Survival label ``(time_to_event_h, event)``, with ``P`` the next flare's peak:

* ``P - t <= tmax_h``: ``time_to_event_h = P - t`` (hours), ``event = 1``.
* otherwise the record is right-censored, ``event = 0``, at

  - ``censor="last_observation"`` (default): ``min(tmax_h, L - t)`` where ``L`` is the
    region's last record time: beyond ``L`` the region is no longer observed, so claiming
    ``tmax_h`` flare-free hours would overstate what is known. The last record of a region
    gets ``time_to_event_h = 0``.
  - ``censor="tmax"``: ``tmax_h`` (the paper's convention).

Binary labels (Deep Flare Net style), horizon ``H = horizon_h``: ``m_within_{H}h`` is true if
a >=M flare of the region peaks in ``(t, t + H]``, ``c_within_{H}h`` the same for >=C.
``next_flare_class`` / ``next_flare_flux_wm2`` give the class and peak flux of the next >=M
flare when ``event = 1``, null otherwise.

The flare list is assumed to cover ``(t, t + max(tmax_h, horizon_h)]``: a flare that is
missing from the list reads as "no flare".
"""

from __future__ import annotations

import logging
from typing import Literal

import polars as pl

from .config import check_positive
from .errors import ConfigError
from .history import at_least, record_keys, usable_flares

__all__ = ["CENSOR_MODES", "label_time_to_event", "label_columns", "binary_label_names"]

logger = logging.getLogger(__name__)

CENSOR_MODES: tuple[str, ...] = ("last_observation", "tmax")


def binary_label_names(horizon_h: float = 24.0) -> tuple[str, str]:
    """Names of the binary labels for a horizon: ``("m_within_24h", "c_within_24h")``."""
    return f"m_within_{horizon_h:g}h", f"c_within_{horizon_h:g}h"


def label_columns(horizon_h: float = 24.0) -> list[str]:
    """Every label column `label_time_to_event` adds, in order."""
    return ["time_to_event_h", "event", "next_flare_class", "next_flare_flux_wm2",
            *binary_label_names(horizon_h)]


def _next_peak(keys: pl.DataFrame, flares: pl.DataFrame, cols: list[str]) -> pl.DataFrame:
    """For each key row: ``cols`` of the region's first flare with peak_time > t_rec."""
    right = (flares
             # the strongest of simultaneous peaks represents that instant
             .sort("harpnum", "peak_time", "peak_flux_wm2", descending=[False, False, True])
             .unique(subset=["harpnum", "peak_time"], keep="first", maintain_order=True)
             .select("harpnum", "peak_time", *cols)
             .with_columns(next_peak=pl.col("peak_time"))
             .sort("peak_time"))
    left = keys.with_row_index("_i").sort("t_rec")
    joined = left.join_asof(right, left_on="t_rec", right_on="peak_time", by="harpnum",
                            strategy="forward", allow_exact_matches=False,
                            check_sortedness=False)
    return joined.sort("_i").select("next_peak", *cols)


def label_time_to_event(
    records: pl.DataFrame,
    flares: pl.DataFrame,
    *,
    tmax_h: float = 144.0,
    censor: Literal["last_observation", "tmax"] = "last_observation",
    horizon_h: float = 24.0,
) -> pl.DataFrame:
    """Time to the region's next >=M flare, censored, plus binary horizon labels.

    Parameters
    ----------
    records : pl.DataFrame
        At least ``harpnum`` and ``t_rec`` (Datetime UTC). The last ``t_rec`` of each
        region is its end of observation.
    flares : pl.DataFrame
        Flare-event frame with ``harpnum`` filled (`flare_core.sources.harp_noaa`).
    tmax_h : float
        Censoring horizon in hours (default 144 h = 6 days).
    censor : {"last_observation", "tmax"}
        Censoring time of records with no flare within ``tmax_h`` (module docstring).
    horizon_h : float
        Horizon in hours of the binary labels: flare peak in ``(t, t + horizon_h]``.

    Returns
    -------
    pl.DataFrame
        One row per distinct ``(harpnum, t_rec)``, sorted: ``harpnum``, ``t_rec``,
        ``time_to_event_h`` (Float64, hours, >= 0), ``event`` (Int8 0/1),
        ``next_flare_class`` (Utf8), ``next_flare_flux_wm2`` (Float64, W m^-2) and the two
        Boolean columns of `binary_label_names`.
    """
    check_positive("tmax_h", tmax_h)
    check_positive("horizon_h", horizon_h)
    if censor not in CENSOR_MODES:
        raise ConfigError(f"censor must be one of {CENSOR_MODES}, got {censor!r}")
    keys = record_keys(records)
    fl = usable_flares(flares)
    if "goes_class" not in fl.columns:
        fl = fl.with_columns(goes_class=pl.lit(None, dtype=pl.Utf8))
    nxt_m = _next_peak(keys, fl.filter(at_least("M")), ["goes_class", "peak_flux_wm2"])
    nxt_c = _next_peak(keys, fl.filter(at_least("C")), [])
    t = pl.col("t_rec")

    def hours_to(col: str) -> pl.Expr:
        return (pl.col(col) - t).dt.total_microseconds() / 3.6e9

    m_col, c_col = binary_label_names(horizon_h)
    frame = keys.with_columns(
        next_m=nxt_m["next_peak"], next_c=nxt_c["next_peak"],
        cls=nxt_m["goes_class"], flux=nxt_m["peak_flux_wm2"],
        last_obs=pl.col("t_rec").max().over("harpnum"),
    ).with_columns(
        to_m=hours_to("next_m"), to_c=hours_to("next_c"), to_end=hours_to("last_obs"),
    )
    event = pl.col("to_m").is_not_null() & (pl.col("to_m") <= tmax_h)
    censored_at = (pl.min_horizontal(pl.col("to_end"), pl.lit(tmax_h))
                   if censor == "last_observation" else pl.lit(tmax_h))
    out = frame.select(
        "harpnum", "t_rec",
        pl.when(event).then(pl.col("to_m")).otherwise(censored_at).cast(pl.Float64)
        .alias("time_to_event_h"),
        event.cast(pl.Int8).alias("event"),
        pl.when(event).then(pl.col("cls")).otherwise(None).cast(pl.Utf8)
        .alias("next_flare_class"),
        pl.when(event).then(pl.col("flux")).otherwise(None).cast(pl.Float64)
        .alias("next_flare_flux_wm2"),
        (pl.col("to_m") <= horizon_h).fill_null(False).alias(m_col),
        (pl.col("to_c") <= horizon_h).fill_null(False).alias(c_col),
    )
    logger.info("labels: %d records, %d events within %.4g h (censor=%s), %d %s",
                out.height, int(out["event"].sum() or 0), tmax_h, censor,
                int(out[m_col].sum() or 0), m_col)
    return out
