"""Running summary statistics of SHARP keywords over a trailing time window.

Each record of each region (grouped by ``harpnum``, ordered by ``t_rec``) gets, for every
SHARP keyword, statistics of that region's values in the trailing window
``(t_rec - window_h, t_rec]`` (closed right: the record itself is included, nothing later
is), as in Table 1 of the survival paper (A&A 703, A99, 2025) after Hostetter et al.
(2019), plus long-trend features over ``(t_rec - long_window_h, t_rec]``.

Windows are defined by TIME, not by row count, so gaps in a series and cadences other than
12 minutes (the 96-minute sun2022 files) are handled without resampling: a window simply
holds fewer values, which the ``count`` statistic reports.

Conventions
-----------
* A value is *valid* if it is non-null and finite; null, NaN and +-inf are missing.
* ``(harpnum, t_rec)`` duplicates are removed before anything else, keeping the LAST row in
  input order (a later delivery of the same record supersedes the earlier one); the number
  dropped is logged at WARNING and returned by `drop_duplicate_records`.
* Rows with a null ``harpnum`` or ``t_rec`` cannot be placed in a series: they are dropped,
  counted and logged.
* Every feature column is Float64 (counts included) so that the selected columns convert
  straight to a float matrix; an undefined statistic is null, never NaN, and so is a
  non-finite result (overflow, e.g. ``rel_change`` of a subnormal first value).

Feature columns are named ``{keyword}__{stat}``:

=====================  ==========================================================  =========
stat                   meaning                                                     needs n
=====================  ==========================================================  =========
mean                   mean of the valid values                                    1
std                    sample standard deviation (ddof = 1)                        2
min, max, median       order statistics                                            1
first, last            earliest / latest valid value in the window                 1
diff                   last - first                                                1
slope_per_h            least-squares slope against time (keyword unit per hour)    2
rel_change             (last - first) / abs(first); null if first == 0             1
skew                   bias-corrected sample skewness (as pandas ``skew``)          3
kurt                   bias-corrected excess kurtosis (as pandas ``kurt``)          4
count                  number of valid values in the window                        0
long_slope_per_h       ``slope_per_h`` over the long window                         2
long_diff              ``diff`` over the long window                                1
=====================  ==========================================================  =========

``skew`` and ``kurt`` are also null when the window is numerically constant (standard
deviation <= 1e-10 times the largest absolute value), where they are undefined and any
computed value would be rounding noise.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl

from .config import check_positive
from .errors import ConfigError
from .schema import SHARP_KEYWORDS, UTC_DATETIME

try:  # the compiled kernel; the numpy kernel is the fallback
    from numba import njit as _njit
    from numba import prange
except ImportError:  # pragma: no cover
    _njit = None
    prange = range

__all__ = [
    "RunningStats",
    "WINDOW_STATS",
    "LONG_STATS",
    "build_running_stats",
    "feature_columns",
    "drop_duplicate_records",
    "select_keywords",
    "utc_time_column",
]

logger = logging.getLogger(__name__)

#: Statistics over the trailing ``window_h`` window, in output order.
WINDOW_STATS: tuple[str, ...] = (
    "mean", "std", "min", "max", "median", "first", "last", "diff",
    "slope_per_h", "rel_change", "skew", "kurt", "count",
)
#: Long-trend statistics over the trailing ``long_window_h`` window.
LONG_STATS: tuple[str, ...] = ("long_slope_per_h", "long_diff")

_US_PER_H = 3_600_000_000
_CONSTANT_RTOL = 1e-10
# Elements (keywords x rows x window slots) gathered per chunk: bounds the temporaries.
_CHUNK_ELEMENTS = 2_000_000


@dataclass(frozen=True)
class RunningStats:
    """Settings of the running SHARP statistics.

    Parameters
    ----------
    window_h : float
        Length of the trailing window in hours; the window of a record at ``t`` is
        ``(t - window_h, t]``.
    long_window_h : float
        Length of the long-trend window in hours (``long_slope_per_h``, ``long_diff``).
    keywords : tuple of str or None
        Keyword columns to summarise. ``None`` means every SHARP keyword of
        `flare_core.schema.SHARP_KEYWORDS` present in the frame and not entirely null.
    """

    window_h: float = 4.0
    long_window_h: float = 24.0
    keywords: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        check_positive("window_h", self.window_h)
        check_positive("long_window_h", self.long_window_h)
        if self.keywords is not None:
            if isinstance(self.keywords, str) or not all(
                isinstance(k, str) for k in self.keywords
            ):
                raise ConfigError(f"keywords must be a sequence of names, got {self.keywords!r}")
            if len(self.keywords) == 0:
                raise ConfigError("keywords must not be empty (use None for all keywords)")
            # normalise lists to a hashable tuple; no other side effect
            object.__setattr__(self, "keywords", tuple(self.keywords))


def feature_columns(frame: pl.DataFrame) -> list[str]:
    """Names of the model-input columns of ``frame``: every column named ``a__b``.

    That covers the running statistics (``{keyword}__{stat}``) and the flare-history
    columns (``history__*``, see `flare_core.history`), never the keys or the labels.
    """
    return [c for c in frame.columns if "__" in c]


def drop_duplicate_records(records: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """Drop rows with a null key and ``(harpnum, t_rec)`` duplicates (keeping the last).

    Returns
    -------
    frame : pl.DataFrame
        The remaining rows, sorted by ``(harpnum, t_rec)``.
    n_dropped : int
        Number of rows removed (null keys plus duplicates); logged at WARNING when > 0.
    """
    for col in ("harpnum", "t_rec"):
        if col not in records.columns:
            raise ConfigError(f"records frame lacks the key column {col!r}")
    n0 = records.height
    kept = records.filter(pl.col("harpnum").is_not_null() & pl.col("t_rec").is_not_null())
    n_null = n0 - kept.height
    kept = kept.unique(subset=["harpnum", "t_rec"], keep="last", maintain_order=True)
    n_dup = n0 - n_null - kept.height
    if n_null:
        logger.warning("dropped %d record(s) with a null harpnum or t_rec", n_null)
    if n_dup:
        logger.warning("dropped %d duplicate (harpnum, t_rec) record(s), kept the last", n_dup)
    return kept.sort(["harpnum", "t_rec"]), n_null + n_dup


def select_keywords(sharp: pl.DataFrame, keywords: tuple[str, ...] | None = None) -> list[str]:
    """The keyword columns to summarise (see `RunningStats.keywords`)."""
    if keywords is None:
        return [
            k for k in SHARP_KEYWORDS
            if k in sharp.columns and sharp.height > 0 and sharp[k].null_count() < sharp.height
        ]
    missing = [k for k in keywords if k not in sharp.columns]
    if missing:
        raise ConfigError(f"keyword column(s) {missing} not in the SHARP frame")
    return list(keywords)


def utc_time_column(frame: pl.DataFrame, col: str) -> pl.DataFrame:
    """Cast ``frame[col]`` to ``Datetime("us", "UTC")``; naive values are taken as UTC."""
    dtype = frame.schema[col]
    if dtype == UTC_DATETIME:
        return frame
    if not isinstance(dtype, pl.Datetime):
        raise ConfigError(f"column {col!r} must be a Datetime, got {dtype}")
    expr = pl.col(col)
    expr = expr.dt.convert_time_zone("UTC") if dtype.time_zone else expr.dt.replace_time_zone(
        "UTC")
    return frame.with_columns(expr.dt.cast_time_unit("us").alias(col))


def _time_us(t: pl.Series) -> np.ndarray:
    return t.dt.epoch("us").to_numpy().astype(np.int64)


def _window_starts(groups: np.ndarray, t_us: np.ndarray, window_us: int) -> np.ndarray:
    """Index of the first row of each row's window; rows sorted by (group, time).

    Row ``j`` is in the window of row ``i`` iff same group and ``t_i - window < t_j <= t_i``.
    """
    n = len(t_us)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    # dense group rank; groups are contiguous because rows are sorted by group
    new_group = np.empty(n, dtype=bool)
    new_group[0] = True
    new_group[1:] = groups[1:] != groups[:-1]
    rank = np.cumsum(new_group) - 1
    first_row = np.flatnonzero(new_group)
    offset = t_us - t_us[first_row][rank]  # time since the group's first record, >= 0
    stride = int(offset.max()) + window_us + 1
    if (int(rank[-1]) + 1) * stride < 2**62:
        key = rank.astype(np.int64) * stride + offset
        return np.searchsorted(key, key - window_us, side="right").astype(np.int64)
    # astronomically long series: per-group search (exact, a little slower)
    starts = np.empty(n, dtype=np.int64)
    bounds = np.append(first_row, n)
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        seg = t_us[a:b]
        starts[a:b] = a + np.searchsorted(seg, seg - window_us, side="right")
    return starts


def _gather(values_t: np.ndarray, t_us: np.ndarray, rows: np.ndarray, starts: np.ndarray):
    """Right-aligned window matrices for ``rows``.

    Returns ``x`` (K, c, W) with NaN outside the window or where invalid, ``valid`` mask,
    ``tt`` (c, W) hours relative to each row's own time (NaN outside the window).
    """
    width = int((rows - starts).max()) + 1
    idx = rows[:, None] - (width - 1) + np.arange(width)[None, :]
    inside = idx >= starts[:, None]
    idx = np.where(inside, idx, rows[:, None])
    x = values_t[:, idx]  # (K, c, W)
    x[:, ~inside] = np.nan
    valid = ~np.isnan(x)
    tt = (t_us[idx] - t_us[rows][:, None]) / _US_PER_H
    return x, valid, tt


def _first_last(x: np.ndarray, valid: np.ndarray, cnt: np.ndarray):
    width = x.shape[-1]
    fi = np.argmax(valid, axis=-1)
    li = width - 1 - np.argmax(valid[..., ::-1], axis=-1)
    first = np.take_along_axis(x, fi[..., None], axis=-1)[..., 0]
    last = np.take_along_axis(x, li[..., None], axis=-1)[..., 0]
    none = cnt == 0
    first[none] = np.nan
    last[none] = np.nan
    return first, last


def _slope(xc: np.ndarray, valid: np.ndarray, tt: np.ndarray, cnt: np.ndarray) -> np.ndarray:
    """Least-squares slope per hour; ``xc`` already centred and zero where invalid."""
    with np.errstate(invalid="ignore", divide="ignore"):
        tv = np.where(valid, tt[None, :, :], 0.0)
        tbar = tv.sum(axis=-1) / cnt
        dt = np.where(valid, tt[None, :, :] - tbar[..., None], 0.0)
        sxy = (dt * xc).sum(axis=-1)
        sxx = (dt * dt).sum(axis=-1)
        slope = sxy / sxx
    slope[(cnt < 2) | ~(sxx > 0)] = np.nan
    return slope


def _window_chunk(x: np.ndarray, valid: np.ndarray, tt: np.ndarray) -> dict[str, np.ndarray]:
    """All `WINDOW_STATS` for one chunk; arrays (K, c)."""
    cnt = valid.sum(axis=-1)
    n = cnt.astype(np.float64)
    with np.errstate(all="ignore"):
        xz = np.where(valid, x, 0.0)
        mean = xz.sum(axis=-1) / n
        d = np.where(valid, x - mean[..., None], 0.0)
        d2 = d * d
        m2 = d2.sum(axis=-1)
        m3 = (d2 * d).sum(axis=-1)
        m4 = (d2 * d2).sum(axis=-1)
        std = np.sqrt(m2 / (n - 1))
        srt = np.sort(x, axis=-1)  # NaN sorts last
        lo = np.clip((cnt - 1) // 2, 0, None)[..., None]
        hi = np.clip(cnt // 2, 0, srt.shape[-1] - 1)[..., None]
        median = 0.5 * (np.take_along_axis(srt, lo, -1)[..., 0]
                        + np.take_along_axis(srt, hi, -1)[..., 0])
        vmin = srt[..., 0]
        vmax = np.take_along_axis(srt, np.clip(cnt - 1, 0, None)[..., None], -1)[..., 0]
        first, last = _first_last(x, valid, cnt)
        diff = last - first
        rel = diff / np.abs(first)
        # pandas' bias-corrected skewness and excess kurtosis
        skew = np.sqrt(n * (n - 1)) / (n - 2) * (m3 / n) / (m2 / n) ** 1.5
        kurt = ((n + 1) * n * (n - 1) / ((n - 2) * (n - 3)) * m4 / (m2 * m2)
                - 3 * (n - 1) ** 2 / ((n - 2) * (n - 3)))
        scale = np.where(valid, np.abs(x), 0.0).max(axis=-1)
        constant = ~(np.sqrt(m2 / n) > _CONSTANT_RTOL * scale)
    slope = _slope(d, valid, tt, cnt)
    empty = cnt == 0
    for a in (mean, median, vmin, vmax):
        a[empty] = np.nan
    std[cnt < 2] = np.nan
    rel[first == 0] = np.nan
    skew[(cnt < 3) | constant] = np.nan
    kurt[(cnt < 4) | constant] = np.nan
    return {
        "mean": mean, "std": std, "min": vmin, "max": vmax, "median": median,
        "first": first, "last": last, "diff": diff, "slope_per_h": slope,
        "rel_change": rel, "skew": skew, "kurt": kurt, "count": n,
    }


def _long_chunk(x: np.ndarray, valid: np.ndarray, tt: np.ndarray) -> dict[str, np.ndarray]:
    """`LONG_STATS` for one chunk; arrays (K, c)."""
    cnt = valid.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(valid, x, 0.0).sum(axis=-1) / cnt
        d = np.where(valid, x - mean[..., None], 0.0)
    first, last = _first_last(x, valid, cnt)
    return {"long_slope_per_h": _slope(d, valid, tt, cnt), "long_diff": last - first}


def _run_kernel(values_t, t_us, starts, kernel, names) -> dict[str, np.ndarray]:
    n_kw, n = values_t.shape
    out = {s: np.empty((n_kw, n), dtype=np.float64) for s in names}
    if n == 0:
        return out
    width_max = int((np.arange(n) - starts).max()) + 1
    step = max(1, _CHUNK_ELEMENTS // (n_kw * width_max))
    for a in range(0, n, step):
        rows = np.arange(a, min(a + step, n))
        x, valid, tt = _gather(values_t, t_us, rows, starts[rows])
        with np.errstate(all="ignore"):
            for s, arr in kernel(x, valid, tt).items():
                arr[~np.isfinite(arr)] = np.nan  # e.g. rel_change of a subnormal first value
                out[s][:, rows] = arr
    return out


def _rolling_one_keyword(x, t_us, starts, long_starts, width, out):  # pragma: no cover - jitted
    """Compiled kernel (numba): every statistic of one keyword, written into ``out``.

    ``x`` (n,) with NaN for missing; ``out`` (len(WINDOW_STATS) + len(LONG_STATS), n) in
    the order of those tuples. Two passes per window (mean, then centred sums), in time
    order, exactly as the specification in the module docstring.
    """
    n = x.shape[0]
    nan = np.nan
    n_chunks = min(n, 512)
    for c in prange(n_chunks):
        buf = np.empty(width)
        for i in range(c * n // n_chunks, (c + 1) * n // n_chunks):
            ti = t_us[i]
            cnt = 0
            sx = 0.0
            st = 0.0
            first = nan
            last = nan
            scale = 0.0
            for j in range(starts[i], i + 1):
                v = x[j]
                if v != v:
                    continue
                if cnt == 0:
                    first = v
                last = v
                k = cnt  # insertion sort into buf[:cnt] for min / max / median
                while k > 0 and buf[k - 1] > v:
                    buf[k] = buf[k - 1]
                    k -= 1
                buf[k] = v
                cnt += 1
                sx += v
                st += (t_us[j] - ti) / 3.6e9
                if abs(v) > scale:
                    scale = abs(v)
            nf = float(cnt)
            mean = sx / nf if cnt > 0 else nan
            tbar = st / nf if cnt > 0 else nan
            m2 = 0.0
            m3 = 0.0
            m4 = 0.0
            sxy = 0.0
            sxx = 0.0
            for j in range(starts[i], i + 1):
                v = x[j]
                if v != v:
                    continue
                d = v - mean
                d2 = d * d
                m2 += d2
                m3 += d2 * d
                m4 += d2 * d2
                dt = (t_us[j] - ti) / 3.6e9 - tbar
                sxy += dt * d
                sxx += dt * dt
            constant = not (np.sqrt(m2 / nf) > 1e-10 * scale) if cnt > 0 else True
            res = out[:, i]
            res[0] = mean
            res[1] = np.sqrt(m2 / (nf - 1.0)) if cnt >= 2 else nan
            res[2] = buf[0] if cnt > 0 else nan
            res[3] = buf[cnt - 1] if cnt > 0 else nan
            res[4] = 0.5 * (buf[(cnt - 1) // 2] + buf[cnt // 2]) if cnt > 0 else nan
            res[5] = first
            res[6] = last
            res[7] = last - first
            res[8] = sxy / sxx if cnt >= 2 and sxx > 0 else nan
            res[9] = (last - first) / abs(first) if first != 0 else nan
            if cnt >= 3 and not constant:
                res[10] = (np.sqrt(nf * (nf - 1)) / (nf - 2) * (m3 / nf)
                           / (m2 / nf) ** 1.5)
            else:
                res[10] = nan
            if cnt >= 4 and not constant:
                res[11] = ((nf + 1) * nf * (nf - 1) / ((nf - 2) * (nf - 3)) * m4 / (m2 * m2)
                           - 3 * (nf - 1) ** 2 / ((nf - 2) * (nf - 3)))
            else:
                res[11] = nan
            res[12] = nf
            # long-trend window, one pass: slope of (x - x_first) on hours, last - first
            cnt = 0
            first = nan
            last = nan
            st = 0.0
            sy = 0.0
            sty = 0.0
            stt = 0.0
            for j in range(long_starts[i], i + 1):
                v = x[j]
                if v != v:
                    continue
                if cnt == 0:
                    first = v
                last = v
                cnt += 1
                tt = (t_us[j] - ti) / 3.6e9
                y = v - first  # shifted: sums stay at the scale of the change, not the value
                st += tt
                sy += y
                sty += tt * y
                stt += tt * tt
            nf = float(cnt)
            if cnt > 0:
                sxy = sty - st * sy / nf
                sxx = stt - st * st / nf
            res[13] = sxy / sxx if cnt >= 2 and sxx > 0 else nan
            res[14] = last - first
            for k in range(15):
                if not np.isfinite(res[k]):
                    res[k] = nan


_JITTED: dict[str, object] = {}


def _numba_kernel():
    """The compiled kernel (compiled once, cached on disk), or None without numba."""
    if "kernel" not in _JITTED:
        if _njit is None:  # pragma: no cover - numba ships with pycox in this project
            logger.info("numba not available; running statistics use the numpy kernel")
            _JITTED["kernel"] = None
        else:
            _JITTED["kernel"] = _njit(cache=True, nogil=True)(
                _rolling_one_keyword)
    return _JITTED["kernel"]


def _stats_numba(kernel, values, t_us, starts, long_starts):
    """Yield (keyword index, (15, n) array) from the compiled kernel.

    ``values(k)`` returns keyword k as a float array with NaN for missing: one keyword is
    materialised at a time.
    """
    n = t_us.shape[0]
    idx = np.arange(n)
    width = int(max((idx - starts).max(initial=0), (idx - long_starts).max(initial=0))) + 1
    k = 0
    while (x := values(k)) is not None:
        out = np.empty((len(WINDOW_STATS) + len(LONG_STATS), n))
        if n:
            kernel(x, t_us, starts, long_starts, width, out)
        yield k, out
        k += 1


def _stats_numpy(values_t, t_us, starts, long_starts):
    """Same as `_stats_numba`, from the vectorised numpy kernel (no compiler needed)."""
    win = _run_kernel(values_t, t_us, starts, _window_chunk, WINDOW_STATS)
    lng = _run_kernel(values_t, t_us, long_starts, _long_chunk, LONG_STATS)
    for k in range(values_t.shape[0]):
        yield k, np.stack([win[s][k] for s in WINDOW_STATS] + [lng[s][k] for s in LONG_STATS])



def build_running_stats(
    sharp: pl.DataFrame,
    config: RunningStats = RunningStats(),
    *,
    engine: Literal["auto", "numba", "numpy"] = "auto",
) -> pl.DataFrame:
    """Running statistics of each SHARP keyword over a trailing time window.

    Parameters
    ----------
    sharp : pl.DataFrame
        SHARP keyword frame (`flare_core.schema`): ``harpnum`` (Int64), ``t_rec``
        (Datetime UTC) and the keyword columns; any row order.
    config : RunningStats
        Window lengths (hours) and keyword selection.
    engine : {"auto", "numba", "numpy"}
        Computation kernel: a compiled per-window loop (numba, the default when
        importable) or the vectorised numpy kernel. Both give the same values (tested).

    Returns
    -------
    pl.DataFrame
        One row per distinct ``(harpnum, t_rec)``, sorted by them: ``harpnum``, ``t_rec``,
        then ``{keyword}__{stat}`` Float64 columns for each keyword and each stat of
        `WINDOW_STATS` (window ``(t_rec - window_h, t_rec]``) and `LONG_STATS` (window
        ``(t_rec - long_window_h, t_rec]``). Only records of the same region at or before
        ``t_rec`` enter a row: no look-ahead.

    Notes
    -----
    Duplicate and null-key policy: see `drop_duplicate_records`. Each window is found by a
    sorted search on (region, time); the statistics are then computed per window in two
    passes (numba), or by gathering windows into right-aligned (rows x slots) matrices per
    chunk of rows (numpy). Cost is O(records x keywords x records-per-window); memory is the
    output plus one keyword's statistics.
    """
    keywords = select_keywords(sharp, config.keywords)
    records = utc_time_column(sharp.select(["harpnum", "t_rec", *keywords]), "t_rec")
    records, _ = drop_duplicate_records(records)
    t_us = _time_us(records["t_rec"])
    groups = records["harpnum"].to_numpy()

    def values(k: int) -> np.ndarray | None:
        if k >= len(keywords):
            return None
        col = records[keywords[k]].cast(pl.Float64).to_numpy()  # nulls -> NaN
        return np.where(np.isfinite(col), col, np.nan)

    if not keywords:
        logger.warning("no keyword column to summarise; returning keys only")
    starts = _window_starts(groups, t_us, round(config.window_h * _US_PER_H))
    long_starts = _window_starts(groups, t_us, round(config.long_window_h * _US_PER_H))
    kernel = _numba_kernel() if engine in ("auto", "numba") else None
    if engine == "numba" and kernel is None:
        raise ConfigError("engine='numba' requested but numba is not importable")
    if kernel is not None:
        chunks = _stats_numba(kernel, values, t_us, starts, long_starts)
    else:
        values_t = np.array([values(k) for k in range(len(keywords))]).reshape(
            len(keywords), records.height)
        chunks = _stats_numpy(values_t, t_us, starts, long_starts)
    names = (*WINDOW_STATS, *LONG_STATS)
    series: list[pl.Series] = []
    for k, arr in chunks:  # one keyword at a time: bounds the peak memory
        series.extend(pl.Series(f"{keywords[k]}__{s}", arr[j], nan_to_null=True)
                      for j, s in enumerate(names))
        del arr
    logger.info(
        "running stats: %d records, %d keywords, window %.3g h, long window %.3g h",
        records.height, len(keywords), config.window_h, config.long_window_h,
    )
    return pl.DataFrame([records["harpnum"], records["t_rec"], *series])
