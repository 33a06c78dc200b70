"""Choosing TRAINING rows: thinning to a cadence (`thin_records`), and class re-balancing
(KDE-guided oversampling, non-flare undersampling, `kde_resample`; `resample_fit_part` applies
`flare_core.config.TrainConfig.resample` to the fit part of `flare_core.training.train_all`).

`thin_records` keeps one record per region and ``step_h`` hours. At the 12-min cadence of
the SHARP series consecutive records of a region are near copies (the keywords move on
hour scales), so fitting on all of them costs five times the time of an hourly subset for
little new information; the subset is what an hourly operational forecast is scored on.

Strong flares are rare (the flare-size distribution is a power law), so a training set holds
many M-class and few X-class records, and far more non-flaring records than either. Following
the survival-model study (A&A 703, A99, 2025, Sect. 3), `kde_resample`

1. sorts records into GOES classes by the peak flux of their flare (``A``..``X``) or
   ``"N"`` (no flare: null flux, or below ``min_flux_wm2``);
2. **oversamples** every flaring class smaller than the majority flaring class up to that
   class's count, by duplicating existing records. Which records are duplicated is guided by a
   Gaussian kernel density estimate of log10 peak flux within the class: draws from the KDE
   (restricted to the class decade) are mapped to the record with the nearest flux, so the
   duplicates follow a smoothed version of the class's magnitude distribution rather than
   repeating a few records;
3. **undersamples** the non-flaring records, without replacement, to the count of the majority
   flaring class.

Only apply it to a training part, AFTER splitting (`flare_core.splits`): duplicated records
must never reach validation or test data. No values are invented; every output row is a copy
of an input row.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from .errors import ConfigError
from .goes import CLASS_DECADE_WM2

if TYPE_CHECKING:
    from .config import TrainConfig

__all__ = ["ResampleReport", "NON_FLARE", "flare_class_of", "kde_resample", "resample_fit_part",
           "thin_records"]

logger = logging.getLogger(__name__)

#: Class name of records without a (large enough) flare.
NON_FLARE = "N"


@dataclass(frozen=True)
class ResampleReport:
    """What `kde_resample` did.

    Attributes
    ----------
    indices : ndarray of int64
        Row positions in the input frame, sorted; duplicates repeat a position. The output
        frame is ``frame[indices]``.
    counts_before, counts_after : dict
        Rows per class (``"N"`` and GOES letters) before and after.
    regions_before, regions_after : dict
        Distinct ``group_col`` values per class before and after.
    target_count : int
        The majority flaring class count every class was moved towards.
    seed : int
        The seed used.
    """

    indices: np.ndarray
    counts_before: dict[str, int]
    counts_after: dict[str, int]
    regions_before: dict[str, int]
    regions_after: dict[str, int]
    target_count: int
    seed: int


def thin_records(frame: pl.DataFrame, step_h: float, *, group_col: str = "harpnum",
                 time_col: str = "t_rec") -> pl.DataFrame:
    """The first record of each region in every ``step_h``-hour bin of ``time_col``.

    Bins are aligned to the Unix epoch (``floor(t / step_h)``), so the same record is kept
    whatever else the frame holds; row order is preserved. ``step_h`` at or below the
    records' cadence keeps every record.

    Raises
    ------
    ConfigError
        If ``step_h`` is not positive or a column is missing.
    """
    if not (isinstance(step_h, int | float) and math.isfinite(step_h) and step_h > 0):
        raise ConfigError(f"step_h must be a positive number of hours, got {step_h!r}")
    for c in (group_col, time_col):
        if c not in frame.columns:
            raise ConfigError(f"frame lacks column {c!r}; it has {frame.columns}")
    step_us = int(round(step_h * 3_600e6))
    bin_ = (pl.col(time_col).dt.epoch("us") // step_us).alias("_bin")
    keep = (frame.select(pl.int_range(pl.len()).alias("_i"), pl.col(group_col),
                         pl.col(time_col), bin_)
            .sort(group_col, time_col, "_i")
            .unique([group_col, "_bin"], keep="first")["_i"].sort())
    return frame[keep.to_numpy()]


def flare_class_of(flux_wm2: pl.Expr, *, min_flux_wm2: float | None = None) -> pl.Expr:
    """Polars expression: GOES class letter of a peak flux, or ``"N"`` (null / below min).

    ``flux_wm2`` in W m^-2; the letter is the decade (``1.5e-5`` -> ``"M"``); fluxes of
    X10 and above stay ``"X"``.
    """
    expr = pl.when(flux_wm2.is_null() | flux_wm2.is_nan()).then(pl.lit(NON_FLARE))
    if min_flux_wm2 is not None:
        expr = expr.when(flux_wm2 < min_flux_wm2).then(pl.lit(NON_FLARE))
    for letter in ("X", "M", "C", "B"):
        expr = expr.when(flux_wm2 >= CLASS_DECADE_WM2[letter] * (1 - 1e-9)).then(pl.lit(letter))
    return expr.otherwise(pl.lit("A"))


def _kde_draws(
    x: np.ndarray, n: int, lo: float, hi: float, bandwidth: float | str | None, seed: int
) -> np.ndarray:
    """``n`` draws from a Gaussian KDE of ``x`` restricted to [lo, hi) by rejection."""
    from scipy.stats import gaussian_kde

    rng = np.random.default_rng(seed)
    if np.unique(x).size < 2:
        return np.full(n, x[0])  # a single magnitude: the KDE is a point mass
    try:
        kde = gaussian_kde(x, bw_method=bandwidth)
    except np.linalg.LinAlgError:  # (near-)zero spread: the empirical distribution instead
        logger.info("KDE of %d magnitudes is singular; drawing them uniformly", x.size)
        return rng.choice(x, size=n, replace=True)
    out: list[np.ndarray] = []
    have = 0
    for _ in range(100):
        z = kde.resample(max(2 * (n - have), 64), seed=rng).ravel()
        z = z[(z >= lo) & (z < hi)]
        out.append(z)
        have += z.size
        if have >= n:
            break
    else:  # pragma: no cover - needs a bandwidth far wider than the decade
        logger.warning("KDE rejection sampling stalled; clipping the remaining draws")
        out.append(np.clip(kde.resample(n - have, seed=rng).ravel(), lo, np.nextafter(hi, lo)))
    return np.concatenate(out)[:n]


def _nearest_rows(xs_sorted: np.ndarray, draws: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Positions in ``xs_sorted`` of the value nearest each draw (random among equal values)."""
    uniq = np.unique(xs_sorted)
    j = np.clip(np.searchsorted(uniq, draws), 1, max(uniq.size - 1, 1))
    if uniq.size == 1:
        v = np.full(draws.size, uniq[0])
    else:
        left, right = uniq[j - 1], uniq[j]
        v = np.where(np.abs(draws - left) <= np.abs(right - draws), left, right)
    a = np.searchsorted(xs_sorted, v, side="left")
    b = np.searchsorted(xs_sorted, v, side="right")
    return a + np.floor(rng.random(draws.size) * (b - a)).astype(np.int64)


def _counts(classes: np.ndarray, groups: np.ndarray) -> tuple[dict[str, int], dict[str, int]]:
    rows: dict[str, int] = {}
    regions: dict[str, int] = {}
    for c in sorted(set(classes.tolist())):
        m = classes == c
        rows[c] = int(m.sum())
        regions[c] = int(np.unique(groups[m]).size)
    return rows, regions


def kde_resample(
    frame: pl.DataFrame,
    *,
    flux_col: str = "next_flare_flux_wm2",
    group_col: str = "harpnum",
    min_flux_wm2: float | None = None,
    bandwidth: float | str | None = None,
    undersample: bool = True,
    seed: int = 0,
) -> tuple[pl.DataFrame, ResampleReport]:
    """Balance flare classes of a training frame (see the module docstring for the method).

    Parameters
    ----------
    frame : polars.DataFrame
        Training records, one per row, with ``flux_col`` and ``group_col``.
    flux_col : str
        Peak flux (W m^-2) of the record's flare; null means no flare. Default: the label
        column of `flare_core.labels.label_time_to_event` (flux of the next >=M flare).
        It is a label: resampling on it is legitimate only on training data.
    group_col : str
        Region id, used for the report only.
    min_flux_wm2 : float, optional
        Records whose flux is below this count as non-flaring (e.g. ``1e-5`` for >=M).
    bandwidth : float, str or None
        ``bw_method`` of `scipy.stats.gaussian_kde` on log10 flux (None = Scott's rule).
    undersample : bool
        Undersample non-flaring records to the majority flaring count (default True).
    seed : int
        Seed of all random draws; equal seeds give equal output.

    Returns
    -------
    frame : polars.DataFrame
        ``frame[report.indices]``: input rows, some repeated, in input order.
    report : ResampleReport
        Indices and per-class row and region counts before and after (also logged).

    Raises
    ------
    ConfigError
        Missing columns, non-positive fluxes, or no flaring record at all.
    """
    for c in (flux_col, group_col):
        if c not in frame.columns:
            raise ConfigError(f"frame lacks column {c!r}; it has {frame.columns}")
    if not frame.schema[flux_col].is_numeric():
        raise ConfigError(f"{flux_col} must be numeric (W m^-2), got {frame.schema[flux_col]}")
    flux = frame[flux_col].cast(pl.Float64)
    bad = flux.is_not_null() & flux.is_not_nan() & (flux <= 0)
    if bad.any():
        i = int(bad.arg_true()[0])
        raise ConfigError(f"{flux_col} must be > 0 W m^-2 or null, got {flux[i]!r} at row {i}")
    classes = frame.select(flare_class_of(pl.col(flux_col).cast(pl.Float64),
                                          min_flux_wm2=min_flux_wm2))
    classes = classes.to_series().to_numpy().astype(str)
    groups = frame[group_col].to_numpy()
    flaring = sorted(c for c in set(classes.tolist()) if c != NON_FLARE)
    if not flaring:
        raise ConfigError(f"no flaring record in {flux_col}; nothing to balance")
    counts_before, regions_before = _counts(classes, groups)
    target = max(counts_before[c] for c in flaring)
    rng = np.random.default_rng(seed)
    log_flux = np.log10(np.where(classes == NON_FLARE, np.nan, flux.fill_null(np.nan).to_numpy()))

    picked: list[np.ndarray] = []
    for k, c in enumerate(flaring):
        rows = np.flatnonzero(classes == c)
        picked.append(rows)
        extra = target - rows.size
        if extra <= 0:
            continue
        x = log_flux[rows]
        order = np.argsort(x, kind="stable")
        lo = math.log10(CLASS_DECADE_WM2[c]) if c != "A" else -math.inf
        hi = lo + 1.0 if c not in ("X", "A") else (math.inf if c == "X" else -7.0)
        draws = _kde_draws(x, extra, lo, hi, bandwidth, seed + 1 + k)
        picked.append(rows[order[_nearest_rows(x[order], draws, rng)]])
    non = np.flatnonzero(classes == NON_FLARE)
    if undersample and non.size > target:
        non = rng.choice(non, size=target, replace=False)
    elif undersample:
        logger.info("only %d non-flaring records (< %d): all kept", non.size, target)
    picked.append(non)
    indices = np.sort(np.concatenate(picked)).astype(np.int64)

    counts_after, regions_after = _counts(classes[indices], groups[indices])
    report = ResampleReport(indices, counts_before, counts_after, regions_before, regions_after,
                            target, seed)
    logger.info("kde_resample (seed %d): rows per class %s -> %s", seed, counts_before,
                counts_after)
    return frame[indices], report


def resample_fit_part(fit_part: pl.DataFrame, config: TrainConfig) -> pl.DataFrame:
    """The fit part re-balanced as ``config.resample`` says (unchanged when it is None).

    ``"kde"``: `kde_resample` with ``config.resample_params`` and ``seed=config.seed``, so
    equal configs give equal rows. Call it on the FIT part only, after the validation split:
    the output repeats some of its records. Row order is kept (a frame sorted by
    ``(harpnum, t_rec)`` stays sorted, repeats next to their original).

    Raises
    ------
    ConfigError
        From `kde_resample` (no flaring record in the fit part, bad flux column).
    """
    if config.resample is None:
        return fit_part
    if config.resample != "kde":  # pragma: no cover - TrainConfig checks the name
        raise ConfigError(f"unknown resample {config.resample!r}")
    out, report = kde_resample(fit_part, seed=config.seed, **dict(config.resample_params))
    logger.info("fit part resampled (%s): %d -> %d records; regions per class %s -> %s",
                config.resample, fit_part.height, out.height, report.regions_before,
                report.regions_after)
    return out
