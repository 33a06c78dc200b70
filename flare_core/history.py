"""Flare history of each region at each record time, from a GOES flare list.

A flare belongs to a region through its ``harpnum`` (filled from the HARP<->NOAA map by
`flare_core.sources.harp_noaa.attach_harpnum`); flares with a null ``harpnum`` are
unassigned and ignored (counted at INFO). Only flares that PEAKED STRICTLY BEFORE the record
time count: a flare at ``t_rec`` itself is not yet known. That is the no-look-ahead rule.

History columns (all Float64, so they join the feature matrix; see
`flare_core.features.feature_columns`):

=========================  ==================================================================
column                     meaning
=========================  ==================================================================
history__b_count           B flares (1e-7 <= flux < 1e-6 W m^-2) peaking in (t - window_h, t)
history__b_flux_wm2        summed peak flux of those B flares (W m^-2); 0 if none
history__c_count           C flares (1e-6 <= flux < 1e-5 W m^-2) peaking in (t - window_h, t)
history__c_flux_wm2        summed peak flux of those C flares (W m^-2); 0 if none
history__hours_since_c     hours from the last >=C flare peak (before t) to t; null if none
history__hours_since_m     hours from the last >=M flare peak (before t) to t; null if none
history__m_count_24h       >=M flares peaking in (t - 24 h, t)
history__m_count_48h       >=M flares peaking in (t - 48 h, t)
history__m_count_all       >=M flares of the region peaking before t (since it was first
                           seen: every earlier flare mapped to the HARP, whatever records
                           happen to be loaded)
=========================  ==================================================================
"""

from __future__ import annotations

import logging
import warnings
from datetime import timedelta

import polars as pl

from .config import check_positive
from .errors import ConfigError, DataQualityWarning
from .features import utc_time_column
from .goes import CLASS_DECADE_WM2

__all__ = ["HISTORY_COLUMNS", "build_flare_history", "record_keys", "usable_flares",
           "at_least"]

logger = logging.getLogger(__name__)

HISTORY_COLUMNS: tuple[str, ...] = (
    "history__b_count", "history__b_flux_wm2", "history__c_count", "history__c_flux_wm2",
    "history__hours_since_c", "history__hours_since_m",
    "history__m_count_24h", "history__m_count_48h", "history__m_count_all",
)
# a class boundary, lowered by a hair so that a flux parsed from "C1.0" is always >= C
_TOL = 1 - 1e-9


def at_least(letter: str) -> pl.Expr:
    """Expression: ``peak_flux_wm2`` is at least class ``letter`` (e.g. "M" -> >= 1e-5)."""
    return pl.col("peak_flux_wm2") >= CLASS_DECADE_WM2[letter] * _TOL


def record_keys(records: pl.DataFrame) -> pl.DataFrame:
    """Distinct ``(harpnum, t_rec)`` keys of ``records`` (UTC), null keys dropped, sorted."""
    for col in ("harpnum", "t_rec"):
        if col not in records.columns:
            raise ConfigError(f"records frame lacks the key column {col!r}")
    keys = utc_time_column(records.select("harpnum", "t_rec"), "t_rec")
    n0 = keys.height
    keys = keys.drop_nulls()
    if keys.height < n0:
        logger.warning("ignored %d record(s) with a null harpnum or t_rec", n0 - keys.height)
    return keys.unique().sort(["harpnum", "t_rec"])


def usable_flares(flares: pl.DataFrame) -> pl.DataFrame:
    """Flares that can be placed: non-null ``harpnum``, ``peak_time`` and ``peak_flux_wm2``.

    Unassigned flares (null ``harpnum``) are normal (about 15 % of the NCEI list) and are
    counted at INFO; if a non-empty list has no ``harpnum`` at all a `DataQualityWarning`
    is issued, since the history and labels would then be empty.
    """
    need = ("harpnum", "peak_time", "peak_flux_wm2")
    missing = [c for c in need if c not in flares.columns]
    if missing:
        raise ConfigError(f"flare frame lacks column(s) {missing}")
    cols = [c for c in (*need, "goes_class") if c in flares.columns]
    out = utc_time_column(flares.select(cols), "peak_time")
    n0 = out.height
    if n0 and out["harpnum"].null_count() == n0:
        msg = ("no flare has a harpnum: attach them to regions first "
               "(flare_core.sources.harp_noaa.attach_harpnum)")
        logger.warning(msg)
        warnings.warn(msg, DataQualityWarning, stacklevel=3)
    out = out.drop_nulls(list(need))
    if out.height < n0:
        logger.info("ignored %d of %d flare(s) with no harpnum, peak time or flux",
                    n0 - out.height, n0)
    return out


def _cumulative(flares: pl.DataFrame) -> pl.DataFrame:
    """Per region, cumulative count and flux up to and including each distinct peak time."""
    return (
        flares.group_by("harpnum", "peak_time")
        .agg(n=pl.len().cast(pl.Float64), flux=pl.col("peak_flux_wm2").sum())
        .sort("harpnum", "peak_time")
        .with_columns(
            cum_n=pl.col("n").cum_sum().over("harpnum"),
            cum_flux=pl.col("flux").cum_sum().over("harpnum"),
        )
        .select("harpnum", "peak_time", "cum_n", "cum_flux")
        .sort("peak_time")
    )


def _asof(keys: pl.DataFrame, cum: pl.DataFrame, query: pl.Expr, *, strict: bool,
          cols: list[str]) -> pl.DataFrame:
    """For each key row, ``cols`` of the region's last entry with peak < (or <=) query."""
    left = keys.with_row_index("_i").with_columns(query.alias("_q")).sort("_q")
    joined = left.join_asof(
        cum, left_on="_q", right_on="peak_time", by="harpnum", strategy="backward",
        allow_exact_matches=not strict, check_sortedness=False,
    )
    return joined.sort("_i").select(cols)


def build_flare_history(
    records: pl.DataFrame, flares: pl.DataFrame, *, window_h: float = 4.0
) -> pl.DataFrame:
    """Flare history of each region at each of its record times.

    Parameters
    ----------
    records : pl.DataFrame
        At least ``harpnum`` (Int64) and ``t_rec`` (Datetime UTC), e.g. a SHARP frame.
    flares : pl.DataFrame
        Flare-event frame (`flare_core.schema.FLARE_SCHEMA`) with ``harpnum`` filled.
    window_h : float
        Window in hours of the B/C counts and fluxes: peaks in ``(t - window_h, t)``.

    Returns
    -------
    pl.DataFrame
        One row per distinct ``(harpnum, t_rec)``, sorted: ``harpnum``, ``t_rec`` and the
        `HISTORY_COLUMNS` (see the module docstring). Uses only flares with
        ``peak_time < t_rec``.
    """
    check_positive("window_h", window_h)
    keys = record_keys(records)
    fl = usable_flares(flares)
    b = _cumulative(fl.filter(at_least("B") & ~at_least("C")))
    c = _cumulative(fl.filter(at_least("C") & ~at_least("M")))
    m = _cumulative(fl.filter(at_least("M")))
    ge_c = fl.filter(at_least("C")).select("harpnum", "peak_time").unique().sort("peak_time")
    t = pl.col("t_rec")
    win = timedelta(hours=window_h)

    def count(cum: pl.DataFrame, query: pl.Expr, strict: bool) -> pl.DataFrame:
        return _asof(keys, cum, query, strict=strict, cols=["cum_n", "cum_flux"]).fill_null(0.0)

    b_now, b_then = count(b, t, True), count(b, t - win, False)
    c_now, c_then = count(c, t, True), count(c, t - win, False)
    m_now = count(m, t, True)
    m_24 = count(m, t - timedelta(hours=24), False)
    m_48 = count(m, t - timedelta(hours=48), False)

    def hours_since(cum: pl.DataFrame) -> pl.Series:
        last = _asof(keys, cum.with_columns(last_peak=pl.col("peak_time")), t, strict=True,
                     cols=["last_peak"])["last_peak"]
        return (keys["t_rec"] - last).dt.total_microseconds() / 3.6e9

    b_count = b_now["cum_n"] - b_then["cum_n"]
    c_count = c_now["cum_n"] - c_then["cum_n"]
    out = keys.with_columns(
        pl.Series("history__b_count", b_count),
        # cumulative-sum differences leave rounding residue where nothing is in the window
        pl.Series("history__b_flux_wm2", b_now["cum_flux"] - b_then["cum_flux"]),
        pl.Series("history__c_count", c_count),
        pl.Series("history__c_flux_wm2", c_now["cum_flux"] - c_then["cum_flux"]),
        pl.Series("history__hours_since_c", hours_since(ge_c)).cast(pl.Float64),
        pl.Series("history__hours_since_m", hours_since(m)).cast(pl.Float64),
        pl.Series("history__m_count_24h", m_now["cum_n"] - m_24["cum_n"]),
        pl.Series("history__m_count_48h", m_now["cum_n"] - m_48["cum_n"]),
        pl.Series("history__m_count_all", m_now["cum_n"]),
    ).with_columns(
        pl.when(pl.col("history__b_count") > 0).then(pl.col("history__b_flux_wm2"))
        .otherwise(0.0).alias("history__b_flux_wm2"),
        pl.when(pl.col("history__c_count") > 0).then(pl.col("history__c_flux_wm2"))
        .otherwise(0.0).alias("history__c_flux_wm2"),
    )
    logger.info("flare history: %d records, %d placed flares, window %.3g h",
                out.height, fl.height, window_h)
    return out
