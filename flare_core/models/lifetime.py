"""Restricted mean lifetime of a survival curve and per-region smoothed lifetime tracks.

The *mean lifetime* of a record is the RESTRICTED mean time to the next >=M flare,
``mu = integral_0^Tmax S(t) dt`` in hours (survival paper, A&A 703, A99, 2025, Sect. 4),
i.e. the mean of ``min(T, Tmax)``, not of ``T``: a region that will flare soon has a short
value, a quiet one approaches the cap ``Tmax`` (144 h = 6 d). Near the cap it is not a
forecast of *when* the region flares; `lifetime_label` words it for the page ("no >=M flare
expected within 6 d" when ``S(Tmax)`` is high).
Along a region's sequence of records the mean lifetime forms a *track* that is smoothed in
time with a Gaussian kernel before its slopes feed the warning SVM (`flare_core.models.warning`).

Frames: ``harpnum`` (Int64), ``t_rec`` (Datetime UTC), ``mean_lifetime_h`` (Float64, hours).
"""

from __future__ import annotations

import bisect
import logging

import numpy as np
import polars as pl
from scipy.ndimage import gaussian_filter1d

from ..config import check_positive
from ..errors import ConfigError

__all__ = ["QUIET_S_TMAX", "lifetime_label", "restricted_mean_lifetime",
           "restricted_mean_lifetime_rows", "smooth_lifetime_track"]

logger = logging.getLogger(__name__)

_US_PER_H = 3_600_000_000

#: ``S(Tmax)`` at or above which `lifetime_label` says "no flare expected" instead of a time.
QUIET_S_TMAX = 0.5


def restricted_mean_lifetime(times_h: np.ndarray, survival: np.ndarray, tmax_h: float) -> np.ndarray:
    """Exact integral over ``[0, tmax_h]`` of right-continuous step survival curves.

    Parameters
    ----------
    times_h : ndarray of shape (m,)
        Ascending jump times in hours after the record time.
    survival : ndarray of shape (n, m)
        ``S(times_h[j] | x_i)``, the value from ``times_h[j]`` until the next jump; ``S = 1``
        before the first jump.
    tmax_h : float
        Upper limit of the integral, hours.

    Returns
    -------
    ndarray of shape (n,)
        Restricted mean lifetime in hours, in ``[0, tmax_h]`` (the mean of
        ``min(T, tmax_h)``; a quiet region sits near the cap, see `lifetime_label`).
    """
    s, dt = _step_integrand(times_h, survival, tmax_h)
    return s @ dt


def _step_integrand(times_h: np.ndarray, survival: np.ndarray, tmax_h: float
                    ) -> tuple[np.ndarray, np.ndarray]:
    """The step values ``S`` (n, k + 1; 1 before the first jump) and widths (k + 1,) of the
    integral of ``S`` over ``[0, tmax_h]``, from the jumps before ``tmax_h``."""
    check_positive("tmax_h", tmax_h)
    times_h = np.asarray(times_h, dtype=np.float64)
    survival = np.atleast_2d(np.asarray(survival, dtype=np.float64))
    if survival.shape[1] != times_h.size:
        raise ConfigError(
            f"survival has {survival.shape[1]} columns but times_h has {times_h.size} entries"
        )
    keep = times_h < tmax_h
    dt = np.diff(np.concatenate([[0.0], np.clip(times_h[keep], 0.0, None), [tmax_h]]))
    s = np.concatenate([np.ones((survival.shape[0], 1)), survival[:, keep]], axis=1)
    return s, dt


def restricted_mean_lifetime_rows(times_h: np.ndarray, survival: np.ndarray,
                                  tmax_h: float) -> np.ndarray:
    """`restricted_mean_lifetime` of each row of ``survival`` (n, m) on its own.

    The same value, bit for bit, as ``restricted_mean_lifetime(times_h, survival[i], tmax_h)``
    for every row ``i`` (one row's product with the step widths at a time, as that call
    computes it; a product of the whole matrix may sum in another order).
    """
    s, dt = _step_integrand(times_h, survival, tmax_h)
    return np.array([(s[i:i + 1].copy() @ dt)[0] for i in range(s.shape[0])],
                    dtype=np.float64)


def lifetime_label(mean_h: float | None, s_tmax: float | None, *, tmax_h: float = 144.0,
                   quiet_s_tmax: float = QUIET_S_TMAX) -> str:
    """Plain-words label of a restricted mean lifetime for the forecast page.

    Parameters
    ----------
    mean_h : float or None
        Restricted mean lifetime ``integral_0^tmax_h S(t) dt``, hours.
    s_tmax : float or None
        ``S(tmax_h)``: probability of no >=M flare within ``tmax_h`` hours.
    tmax_h : float
        The restriction (cap) of the mean, hours.
    quiet_s_tmax : float
        From this ``S(tmax_h)`` on the region is more likely than not to stay quiet for the
        whole window, and the label says so instead of quoting a time near the cap.

    Returns
    -------
    str
        ``"no >=M flare expected within 6 d (P = 12 %)"`` when ``s_tmax >= quiet_s_tmax``,
        else ``"restricted mean time to >=M flare: 31 h (of 144 h)"``; ``"n/a"`` when either
        value is missing or not finite.

    Examples
    --------
    >>> lifetime_label(140.2, 0.93)
    'no >=M flare expected within 6 d (P = 7 %)'
    >>> lifetime_label(30.6, 0.05)
    'restricted mean time to >=M flare: 31 h (of 144 h)'
    """
    check_positive("tmax_h", tmax_h)
    if not 0.0 < quiet_s_tmax <= 1.0:
        raise ConfigError(f"quiet_s_tmax must be in (0, 1], got {quiet_s_tmax!r}")
    if mean_h is None or s_tmax is None or not (np.isfinite(mean_h) and np.isfinite(s_tmax)):
        return "n/a"
    if s_tmax >= quiet_s_tmax:
        window = f"{tmax_h / 24:g} d" if tmax_h % 24 == 0 else f"{tmax_h:g} h"
        return f"no >=M flare expected within {window} (P = {100 * (1 - s_tmax):.0f} %)"
    return f"restricted mean time to >=M flare: {mean_h:.0f} h (of {tmax_h:g} h)"


def _segments(t_us: np.ndarray, max_gap_h: float) -> np.ndarray:
    gaps = np.diff(t_us) > max_gap_h * _US_PER_H
    return np.concatenate([[0], np.cumsum(gaps)])


def _causal_gaussian(x: np.ndarray, sigma: float) -> np.ndarray:
    """One-sided (past-only) Gaussian smoothing; the start is padded with the first value."""
    k = max(1, int(np.ceil(4.0 * sigma)))
    w = np.exp(-0.5 * (np.arange(k + 1) / sigma) ** 2)
    w /= w.sum()
    padded = np.concatenate([np.full(k, x[0]), x])
    return np.convolve(padded, w, mode="valid")  # out[i] = sum_l w[l] * x[i - l]


def _sigma_records(steps_us: np.ndarray, sigma_h: float) -> float:
    """``sigma_h`` in records at the median cadence of ``steps_us`` (1 if none is positive)."""
    cadence_h = float(np.median(steps_us)) / _US_PER_H if steps_us.size else 0.0
    return sigma_h / cadence_h if cadence_h > 0 else 1.0


def _running_sigmas(steps_us: np.ndarray, sigma_h: float) -> np.ndarray:
    """``[1, _sigma_records(steps_us[:1]), ..., _sigma_records(steps_us[:n])]``, one prefix
    median after the other (a sorted insertion each, instead of a median of every prefix);
    the medians are np.median's (the middle value, or the mean of the two middle ones)."""
    out = np.empty(steps_us.size + 1)
    out[0] = 1.0
    ordered: list[int] = []
    for i, step in enumerate(steps_us.tolist(), start=1):
        bisect.insort(ordered, step)
        half = i // 2
        median = (float(ordered[half]) if i % 2 else
                  (float(ordered[half - 1]) + float(ordered[half])) / 2.0)
        cadence_h = median / _US_PER_H
        out[i] = sigma_h / cadence_h if cadence_h > 0 else 1.0
    return out


def _causal_smooth(x: np.ndarray, t_us: np.ndarray, sigma_h: float) -> np.ndarray:
    """`_causal_gaussian` whose width at record ``i`` uses the cadence of records ``<= i`` only.

    The kernel width in records is ``sigma_h`` over the median step between the segment's
    records up to and including ``i`` (the first record, having no step, is its own value),
    so records after ``i`` change neither the values nor the kernel used at ``i``.
    """
    sigmas = _running_sigmas(np.diff(t_us), sigma_h)
    out = np.empty_like(x)
    for sigma in np.unique(sigmas):
        use = sigmas == sigma
        out[use] = _causal_gaussian(x, float(sigma))[use]
    return out


def smooth_lifetime_track(
    track: pl.DataFrame,
    *,
    sigma_h: float = 6.0,
    causal: bool = True,
    max_gap_h: float = 12.0,
    value_col: str = "mean_lifetime_h",
    out_col: str = "mean_lifetime_smooth_h",
) -> pl.DataFrame:
    """Gaussian-smooth each region's mean-lifetime track in time.

    Parameters
    ----------
    track : pl.DataFrame
        ``harpnum``, ``t_rec`` (Datetime UTC) and ``value_col`` (hours); other columns are kept.
    sigma_h : float
        Standard deviation of the kernel in hours. It is converted to records with the
        median cadence (96 min for sun2022), as the kernels work in samples: in causal mode
        the median step between the segment's records up to the smoothed one (no later
        record), otherwise over the whole segment.
    causal : bool
        True (default, for anything used as a forecast input): a half-Gaussian over the current
        and *earlier* records only, so the smoothed value at ``t`` uses no record after ``t``.
        False: the symmetric `scipy.ndimage.gaussian_filter1d` (``mode="nearest"``) of the
        paper's retrospective figures; it looks ahead and must not feed a forecast.
    max_gap_h : float
        A gap between consecutive records longer than this starts a new segment; segments are
        smoothed separately so a data gap is not bridged.
    value_col, out_col : str
        Input and output column names.

    Returns
    -------
    pl.DataFrame
        ``track`` sorted by ``harpnum, t_rec`` with ``out_col`` added (Float64, hours). Null
        input values stay null and are skipped by the smoothing (counted in the log).
    """
    check_positive("sigma_h", sigma_h)
    check_positive("max_gap_h", max_gap_h)
    missing = {"harpnum", "t_rec", value_col} - set(track.columns)
    if missing:
        raise ConfigError(f"lifetime track lacks column(s) {sorted(missing)}")
    df = track.sort("harpnum", "t_rec")
    harp = df["harpnum"].to_numpy()
    t_us = df["t_rec"].dt.epoch("us").to_numpy()
    vals = df[value_col].cast(pl.Float64).fill_null(np.nan).to_numpy()
    out = np.full(vals.size, np.nan)
    ok_all = np.isfinite(vals)
    if (~ok_all).any():
        logger.info("smooth_lifetime_track: %d null/NaN value(s) skipped", int((~ok_all).sum()))
    bounds = np.flatnonzero(np.diff(harp)) + 1
    for rows in np.split(np.arange(vals.size), bounds):
        rows = rows[ok_all[rows]]
        if rows.size == 0:
            continue
        seg = _segments(t_us[rows], max_gap_h)
        for s in np.unique(seg):
            r = rows[seg == s]
            x = vals[r]
            if r.size == 1:
                out[r] = x
                continue
            if causal:
                out[r] = _causal_smooth(x, t_us[r], sigma_h)
            else:
                out[r] = gaussian_filter1d(x, _sigma_records(np.diff(t_us[r]), sigma_h),
                                           mode="nearest")
    return df.with_columns(pl.Series(out_col, out, dtype=pl.Float64).fill_nan(None))
