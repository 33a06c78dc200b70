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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import numpy as np
import polars as pl

from .config import check_positive
from .errors import ConfigError
from .schema import SHARP_KEYWORDS
from .timeutil import to_utc, to_utc_columns

try:  # the compiled kernel; the numpy kernel is the fallback
    from numba import njit as _njit
except ImportError:  # pragma: no cover
    _njit = None

__all__ = [
    "RunningStats",
    "WINDOW_STATS",
    "LONG_STATS",
    "build_running_stats",
    "running_stats_table",
    "OutputBuffers",
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
    kept = records
    if records["harpnum"].null_count() or records["t_rec"].null_count():
        kept = records.filter(pl.col("harpnum").is_not_null() & pl.col("t_rec").is_not_null())
    n_null = n0 - kept.height
    # a stable sort keeps the input order among equal keys, so "last" is still the last
    # delivered; the (costlier) unique runs only when sorted neighbours share a key
    h = kept["harpnum"].to_numpy()
    t = kept["t_rec"].to_physical().to_numpy()
    dh = np.diff(h)
    if not np.all((dh > 0) | ((dh == 0) & (np.diff(t) >= 0))):
        order = np.lexsort((t, h))  # stable
        kept = kept.select(pl.all().gather(order))
        h, t = h[order], t[order]
    if np.any((h[1:] == h[:-1]) & (t[1:] == t[:-1])):
        kept = kept.unique(subset=["harpnum", "t_rec"], keep="last", maintain_order=True)
    n_dup = n0 - n_null - kept.height
    if n_null:
        logger.warning("dropped %d record(s) with a null harpnum or t_rec", n_null)
    if n_dup:
        logger.warning("dropped %d duplicate (harpnum, t_rec) record(s), kept the last", n_dup)
    return kept, n_null + n_dup


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
    """Cast ``frame[col]`` to ``Datetime("us", "UTC")``; naive values are taken as UTC
    (`flare_core.timeutil.to_utc_columns`)."""
    return to_utc_columns(frame, [col], time_unit="us")


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


# ---------------------------------------------------------------- the sliding kernel
#
# One pass per keyword over rows sorted by (region, time). Each of the two trailing
# windows is a FIFO queue of the valid values it holds: a row enters when it is reached
# and leaves when the window's start passes it (``starts`` is non-decreasing, and a new
# region starts with ``starts[i] == i``, so one pass crosses region boundaries). Sums and
# moments use the two-stack queue aggregation: the back of the queue keeps one running
# aggregate, the front keeps suffix aggregates rebuilt when it runs empty ("flip"), so a
# leaving value is never SUBTRACTED -- every update is a numerically stable merge of
# (count, mean, centred moments M2..M4, time mean, co-moments) after Pebay (2008) / Chan et
# al. (1979), O(1) amortised per record (each value is merged about three times). The
# short window also keeps its valid values sorted (a small sorted window, <= 21 values at
# 12-min cadence): median, min and max read straight from it, so no separate monotone
# deques are needed for min / max.


def _add_one(na, ma, m2a, m3a, m4a, ta, tta, txa, x, t):  # pragma: no cover - jitted
    """Merge one value ``x`` at time ``t`` (hours) into an aggregate of ``na`` values."""
    n = na + 1.0
    d = x - ma
    dn = d / n
    m4 = m4a + d * dn * dn * dn * na * (na * na - na + 1.0) + 6.0 * dn * dn * m2a \
        - 4.0 * dn * m3a
    m3 = m3a + d * dn * dn * na * (na - 1.0) - 3.0 * dn * m2a
    m2 = m2a + d * dn * na
    dt = t - ta
    return (n, ma + dn, m2, m3, m4, ta + dt / n, tta + dt * dt * na / n,
            txa + dt * d * na / n)


def _merge(na, ma, m2a, m3a, m4a, ta, tta, txa,
           nb, mb, m2b, m3b, m4b, tb, ttb, txb):  # pragma: no cover - jitted
    """Merge two aggregates (Pebay 2008, eq. 3.1-3.3; co-moments as Chan et al.)."""
    n = na + nb
    d = mb - ma
    dn = d / n
    m4 = (m4a + m4b + d * dn * dn * dn * na * nb * (na * na - na * nb + nb * nb)
          + 6.0 * dn * dn * (na * na * m2b + nb * nb * m2a) + 4.0 * dn * (na * m3b - nb * m3a))
    m3 = m3a + m3b + d * dn * dn * na * nb * (na - nb) + 3.0 * dn * (na * m2b - nb * m2a)
    m2 = m2a + m2b + d * dn * na * nb
    dt = tb - ta
    return (n, ma + nb * dn, m2, m3, m4, ta + nb * dt / n, tta + ttb + dt * dt * na * nb / n,
            txa + txb + dt * d * na * nb / n)


def _sliding_block(x, t_h, starts, long_starts, emit, a, b, cap, lcap,
                   out):  # pragma: no cover - jitted
    """Every statistic of one keyword for rows ``a:b`` (nothing before ``a`` is in a window).

    ``x`` (n,) float64, NaN = missing; ``t_h`` hours since the region's first record;
    ``emit[i]`` the output column of row i (-1: lookback row, not written); ``out`` (15, m)
    in the order of `WINDOW_STATS` + `LONG_STATS`. ``cap`` / ``lcap``: powers of two >= the
    most rows a short / long window holds.
    """
    nan = np.nan
    mask = cap - 1
    lmask = lcap - 1
    # short window: ring of (value, time) and the front's suffix aggregates
    qx = np.empty(cap)
    qt = np.empty(cap)
    fa = np.empty((8, cap))
    srt = np.empty(cap)
    # long window: ring of (value, time), suffix aggregates of (n, mean, time mean, tt, tx)
    lx = np.empty(lcap)
    lt = np.empty(lcap)
    la = np.empty((5, lcap))
    # the count-only factors of skew and kurt, per count (same operations, same bits)
    ks = np.zeros(cap + 1)
    k1 = np.zeros(cap + 1)
    k2 = np.zeros(cap + 1)
    for c in range(3, cap + 1):
        nf = float(c)
        ks[c] = np.sqrt(nf * (nf - 1.0)) / (nf - 2.0)
        if c >= 4:
            k1[c] = (nf + 1.0) * nf * (nf - 1.0) / ((nf - 2.0) * (nf - 3.0))
            k2[c] = 3.0 * (nf - 1.0) ** 2 / ((nf - 2.0) * (nf - 3.0))
    head = 0
    mid = 0
    tail = 0
    bn = 0.0
    bm = 0.0
    b2 = 0.0
    b3 = 0.0
    b4 = 0.0
    bt = 0.0
    btt = 0.0
    btx = 0.0
    lhead = 0
    lmid = 0
    ltail = 0
    lbn = 0.0
    lbm = 0.0
    lbt = 0.0
    lbtt = 0.0
    lbtx = 0.0
    lo = a
    llo = a
    for i in range(a, b):
        # ---- evict rows that left the short window
        s = starts[i]
        while lo < s:
            if x[lo] == x[lo]:
                if head == mid:  # front empty: rebuild suffix aggregates of the whole queue
                    j = (tail - 1) & mask
                    g = (1.0, qx[j], 0.0, 0.0, 0.0, qt[j], 0.0, 0.0)
                    for r in range(8):
                        fa[r, j] = g[r]
                    for p in range(tail - 2, head - 1, -1):
                        j = p & mask
                        g = _add_one(g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7],
                                     qx[j], qt[j])
                        for r in range(8):
                            fa[r, j] = g[r]
                    mid = tail
                    bn = 0.0
                    bm = 0.0
                    b2 = 0.0
                    b3 = 0.0
                    b4 = 0.0
                    bt = 0.0
                    btt = 0.0
                    btx = 0.0
                v = qx[head & mask]
                cnt = tail - head
                lo_i = 0  # leftmost position of v in the sorted window
                hi_i = cnt
                while lo_i < hi_i:
                    m = (lo_i + hi_i) >> 1
                    if srt[m] < v:
                        lo_i = m + 1
                    else:
                        hi_i = m
                for p in range(lo_i, cnt - 1):
                    srt[p] = srt[p + 1]
                head += 1
            lo += 1
        # ---- evict rows that left the long window
        s = long_starts[i]
        while llo < s:
            if x[llo] == x[llo]:
                if lhead == lmid:
                    j = (ltail - 1) & lmask
                    n_ = 1.0
                    mx = lx[j]
                    mt = lt[j]
                    tt = 0.0
                    tx = 0.0
                    la[0, j] = n_
                    la[1, j] = mx
                    la[2, j] = mt
                    la[3, j] = tt
                    la[4, j] = tx
                    for p in range(ltail - 2, lhead - 1, -1):
                        j = p & lmask
                        n1 = n_ + 1.0
                        d = lx[j] - mx
                        dt = lt[j] - mt
                        tt += dt * dt * n_ / n1
                        tx += dt * d * n_ / n1
                        mx += d / n1
                        mt += dt / n1
                        n_ = n1
                        la[0, j] = n_
                        la[1, j] = mx
                        la[2, j] = mt
                        la[3, j] = tt
                        la[4, j] = tx
                    lmid = ltail
                    lbn = 0.0
                    lbm = 0.0
                    lbt = 0.0
                    lbtt = 0.0
                    lbtx = 0.0
                lhead += 1
            llo += 1
        # ---- the row itself enters both windows
        v = x[i]
        ti = t_h[i]
        if v == v:
            cnt = tail - head
            k = cnt
            while k > 0 and srt[k - 1] > v:
                srt[k] = srt[k - 1]
                k -= 1
            srt[k] = v
            j = tail & mask
            qx[j] = v
            qt[j] = ti
            tail += 1
            bn, bm, b2, b3, b4, bt, btt, btx = _add_one(bn, bm, b2, b3, b4, bt, btt, btx,
                                                        v, ti)
            j = ltail & lmask
            lx[j] = v
            lt[j] = ti
            ltail += 1
            n1 = lbn + 1.0
            d = v - lbm
            dt = ti - lbt
            lbtt += dt * dt * lbn / n1
            lbtx += dt * d * lbn / n1
            lbm += d / n1
            lbt += dt / n1
            lbn = n1
        col = emit[i]
        if col < 0:
            continue
        # ---- short-window statistics
        cnt = tail - head
        nf = float(cnt)
        if cnt == 0:
            for r in range(12):
                out[r, col] = nan
            out[12, col] = 0.0
        else:
            if head < mid:
                j = head & mask
                if bn > 0:
                    g = _merge(fa[0, j], fa[1, j], fa[2, j], fa[3, j], fa[4, j], fa[5, j],
                               fa[6, j], fa[7, j], bn, bm, b2, b3, b4, bt, btt, btx)
                else:
                    g = (fa[0, j], fa[1, j], fa[2, j], fa[3, j], fa[4, j], fa[5, j],
                         fa[6, j], fa[7, j])
            else:
                g = (bn, bm, b2, b3, b4, bt, btt, btx)
            mean = g[1]
            m2 = g[2]
            m3 = g[3]
            m4 = g[4]
            first = qx[head & mask]
            last = qx[(tail - 1) & mask]
            vmin = srt[0]
            vmax = srt[cnt - 1]
            scale = max(abs(vmin), abs(vmax))
            constant = not (np.sqrt(m2 / nf) > 1e-10 * scale)
            res0 = mean
            res1 = np.sqrt(m2 / (nf - 1.0)) if cnt >= 2 else nan
            res8 = g[7] / g[6] if cnt >= 2 and g[6] > 0 else nan
            res9 = (last - first) / abs(first) if first != 0 else nan
            if cnt >= 3 and not constant:  # the docs' formula; v * sqrt(v) for v ** 1.5
                v2 = m2 / nf
                res10 = ks[cnt] * (m3 / nf) / (v2 * np.sqrt(v2))
            else:
                res10 = nan
            if cnt >= 4 and not constant:
                res11 = k1[cnt] * m4 / (m2 * m2) - k2[cnt]
            else:
                res11 = nan
            res4 = 0.5 * (srt[(cnt - 1) // 2] + srt[cnt // 2])
            out[0, col] = res0 if np.isfinite(res0) else nan
            out[1, col] = res1 if np.isfinite(res1) else nan
            out[2, col] = vmin
            out[3, col] = vmax
            out[4, col] = res4 if np.isfinite(res4) else nan
            out[5, col] = first
            out[6, col] = last
            d = last - first
            out[7, col] = d if np.isfinite(d) else nan
            out[8, col] = res8 if np.isfinite(res8) else nan
            out[9, col] = res9 if np.isfinite(res9) else nan
            out[10, col] = res10 if np.isfinite(res10) else nan
            out[11, col] = res11 if np.isfinite(res11) else nan
            out[12, col] = nf
        # ---- long-window statistics
        lcnt = ltail - lhead
        if lcnt == 0:
            out[13, col] = nan
            out[14, col] = nan
        else:
            if lhead < lmid:
                j = lhead & lmask
                if lbn > 0:
                    na = la[0, j]
                    n_ = na + lbn
                    dt = lbt - la[2, j]
                    tt = la[3, j] + lbtt + dt * dt * na * lbn / n_
                    tx = la[4, j] + lbtx + dt * (lbm - la[1, j]) * na * lbn / n_
                else:
                    tt = la[3, j]
                    tx = la[4, j]
            else:
                tt = lbtt
                tx = lbtx
            r13 = tx / tt if lcnt >= 2 and tt > 0 else nan
            d = lx[(ltail - 1) & lmask] - lx[lhead & lmask]
            out[13, col] = r13 if np.isfinite(r13) else nan
            out[14, col] = d if np.isfinite(d) else nan


def _validity_bits(out, bits, nulls):  # pragma: no cover - jitted
    """Arrow validity bitmaps (LSB first) of the non-NaN entries of each row of ``out``, and
    each row's NaN count in ``nulls``."""
    n = out.shape[1]
    full = n >> 3
    for r in range(out.shape[0]):
        row = out[r]
        nn = 0
        for byte in range(full):  # whole bytes: a branch-free inner loop
            base = byte << 3
            acc = 0
            for k in range(8):
                ok = row[base + k] == row[base + k]
                acc |= np.uint8(ok) << k
                nn += 1 - np.int64(ok)
            bits[r, byte] = acc
        if full < bits.shape[1]:
            acc = 0
            for k in range(n - (full << 3)):
                if row[(full << 3) + k] == row[(full << 3) + k]:
                    acc |= 1 << k
                else:
                    nn += 1
            bits[r, full] = acc
        nulls[r] = nn


if _njit is not None:
    _add_one = _njit(cache=True, nogil=True, inline="always")(_add_one)
    _merge = _njit(cache=True, nogil=True, inline="always")(_merge)
    _sliding_block = _njit(cache=True, nogil=True)(_sliding_block)
    _validity_bits = _njit(cache=True, nogil=True)(_validity_bits)


def _stats_numpy(values_t, t_us, starts, long_starts):
    """Yield (keyword index, (15, n) float64 array) from the vectorised numpy kernel."""
    win = _run_kernel(values_t, t_us, starts, _window_chunk, WINDOW_STATS)
    lng = _run_kernel(values_t, t_us, long_starts, _long_chunk, LONG_STATS)
    for k in range(values_t.shape[0]):
        yield k, np.stack([win[s][k] for s in WINDOW_STATS] + [lng[s][k] for s in LONG_STATS])


_N_STATS = len(WINDOW_STATS) + len(LONG_STATS)


class OutputBuffers:
    """Kernel output arrays reused from chunk to chunk of a stream (`running_stats_table`'s
    ``buffers``): fresh multi-megabyte arrays cost page faults (and, where transparent huge
    pages are on, compaction stalls) on every chunk.

    It cycles through ``generations`` sets of arrays: the table of a chunk is valid until
    ``generations`` more chunks have been computed with the same object. `flare_core.
    feature_stream` uses one more than its writer's threads: the tables being written are
    those of the previous chunks, never older.
    """

    def __init__(self, generations: int = 2) -> None:
        self._sets: list[list[np.ndarray]] = [[] for _ in range(generations)]
        self._turn = -1

    def take(self, count: int, m: int, dtype) -> list[np.ndarray]:
        """``count`` C-contiguous ``(15, m)`` arrays of ``dtype`` for the next chunk."""
        self._turn = (self._turn + 1) % len(self._sets)
        flat = self._sets[self._turn]
        need = _N_STATS * m
        for i in range(count):
            if i == len(flat):
                flat.append(np.empty(0, dtype))
            if flat[i].dtype != dtype or flat[i].size < need:
                flat[i] = np.empty(need + need // 8, dtype)  # slack for the next chunks
        return [flat[i][:need].reshape(_N_STATS, m) for i in range(count)]


def _pow2_at_least(width: int) -> int:
    return 1 << max(0, int(width) - 1).bit_length()


def _independent_blocks(starts: np.ndarray, long_starts: np.ndarray,
                        n_blocks: int) -> np.ndarray:
    """About ``n_blocks`` row ranges that share no window (cut where both windows start anew:
    a region boundary or a gap longer than both windows); returns the bounds."""
    n = starts.shape[0]
    idx = np.arange(n)
    free = np.flatnonzero((starts == idx) & (long_starts == idx))
    if n == 0 or free.size == 0:
        return np.array([0, n], dtype=np.int64)
    targets = (np.arange(1, n_blocks) * n) // n_blocks
    cuts = free[np.minimum(np.searchsorted(free, targets), free.size - 1)]
    return np.unique(np.concatenate([[0], cuts, [n]])).astype(np.int64)


def _hours_in_region(groups: np.ndarray, t_us: np.ndarray) -> np.ndarray:
    """Hours since the first record of each row's region (rows sorted by region, time)."""
    n = t_us.shape[0]
    if n == 0:
        return np.zeros(0)
    new = np.empty(n, dtype=bool)
    new[0] = True
    new[1:] = groups[1:] != groups[:-1]
    first = np.flatnonzero(new)
    return (t_us - np.repeat(t_us[first], np.diff(np.append(first, n)))) / _US_PER_H


def _arrow_float_column(values: np.ndarray, bits: np.ndarray | None, nulls: int | None):
    """Zero-copy Arrow array over ``values`` with NaN as null (``bits``: its validity,
    ``nulls`` its NaN count; no bitmap when there is none, which Parquet writes faster)."""
    import pyarrow as pa

    if bits is None:
        valid = ~np.isnan(values)
        bits = np.packbits(valid, bitorder="little")
        nulls = values.shape[0] - int(np.count_nonzero(valid))
    typ = pa.float32() if values.dtype == np.float32 else pa.float64()
    return pa.Array.from_buffers(typ, values.shape[0],
                                 [pa.py_buffer(bits) if nulls else None, pa.py_buffer(values)],
                                 null_count=nulls)


def running_stats_table(
    sharp: pl.DataFrame,
    config: RunningStats = RunningStats(),
    *,
    engine: Literal["auto", "numba", "numpy"] = "auto",
    float32: bool = False,
    emit_from: datetime | None = None,
    keywords: list[str] | None = None,
    buffers: OutputBuffers | None = None,
):
    """`build_running_stats` as a `pyarrow.Table`, with the options of the streaming path.

    Parameters
    ----------
    sharp, config, engine
        As `build_running_stats`.
    float32 : bool
        Store each feature as Float32 (computed in float64, rounded once at the end: a
        relative error <= 2**-24 ~ 6e-8, about 7 significant digits; counts up to 2**24
        are exact). Default Float64.
    emit_from : datetime or None
        Rows with ``t_rec < emit_from`` (UTC) are lookback only: they enter the windows of
        later rows but get no output row. Used when an archive is cut into time chunks.
    keywords : list of str or None
        The keyword columns, overriding ``config.keywords`` and the "not entirely null"
        rule, so that every chunk of a stream has the same columns.
    buffers : OutputBuffers or None
        Reuse the feature arrays of earlier calls (numba engine). The returned table is
        zero-copy over them: it is valid until ``buffers`` has served as many more calls as
        it has generations. Default: fresh arrays.

    Returns
    -------
    pyarrow.Table
        ``harpnum``, ``t_rec`` and the ``{keyword}__{stat}`` columns, as `build_running_stats`.
    """
    import pyarrow as pa

    if keywords is None:
        keywords = select_keywords(sharp, config.keywords)
    elif missing := [k for k in keywords if k not in sharp.columns]:
        raise ConfigError(f"keyword column(s) {missing} not in the SHARP frame")
    records = utc_time_column(sharp.select(["harpnum", "t_rec", *keywords]), "t_rec")
    records, _ = drop_duplicate_records(records)
    t_us = _time_us(records["t_rec"])
    groups = records["harpnum"].to_numpy()
    n = records.height
    if emit_from is None:
        emit = np.arange(n, dtype=np.int64)
        keys = records.select(["harpnum", "t_rec"])
    else:
        keep = t_us >= int(to_utc(emit_from).timestamp() * 1e6)
        emit = np.where(keep, np.cumsum(keep) - 1, -1).astype(np.int64)
        keys = records.select(["harpnum", "t_rec"]).filter(pl.Series(keep))
    m = keys.height
    if not keywords:
        logger.warning("no keyword column to summarise; returning keys only")
    starts = _window_starts(groups, t_us, round(config.window_h * _US_PER_H))
    long_starts = _window_starts(groups, t_us, round(config.long_window_h * _US_PER_H))
    use_numba = engine in ("auto", "numba") and _njit is not None
    if engine == "numba" and not use_numba:
        raise ConfigError("engine='numba' requested but numba is not importable")
    dtype = np.float32 if float32 else np.float64

    def values(k: int) -> np.ndarray:
        col = records[keywords[k]].cast(pl.Float64).to_numpy()  # nulls -> NaN
        return np.ascontiguousarray(np.where(np.isfinite(col), col, np.nan))

    if use_numba:
        import numba

        idx = np.arange(n)
        cap = _pow2_at_least(int((idx - starts).max(initial=0)) + 1)
        lcap = _pow2_at_least(int((idx - long_starts).max(initial=0)) + 1)
        t_h = _hours_in_region(groups, t_us)
        threads = max(1, numba.get_num_threads())
        # one task per keyword; with fewer keywords than threads, per independent block too
        n_blocks = 1 if len(keywords) >= threads else 2 * threads
        bounds = _independent_blocks(starts, long_starts, n_blocks).tolist()
        xs = [values(k) for k in range(len(keywords))] if n_blocks > 1 else None
        outs = ([np.empty((_N_STATS, m), dtype=dtype) for _ in keywords] if buffers is None
                else buffers.take(len(keywords), m, dtype))

        def run(task: tuple[int, int, int]) -> None:
            k, a, b = task
            x = values(k) if xs is None else xs[k]
            if b > a:
                _sliding_block(x, t_h, starts, long_starts, emit, a, b, cap, lcap, outs[k])

        def bits_of(k: int):
            bits = np.empty((_N_STATS, (m + 7) // 8), dtype=np.uint8)
            nulls = np.empty(_N_STATS, dtype=np.int64)
            _validity_bits(outs[k], bits, nulls)
            return k, outs[k], bits, nulls.tolist()

        def chunks():
            # the kernels release the GIL: a thread pool keeps every core busy, and a
            # thread delayed by other load delays only its own tasks (no barrier per keyword)
            tasks = [(k, a, b) for k in range(len(keywords))
                     for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
            with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="stats") as pool:
                list(pool.map(run, tasks))
                yield from pool.map(bits_of, range(len(keywords)))
    else:
        def chunks():
            values_t = np.array([values(k) for k in range(len(keywords))]).reshape(
                len(keywords), n)
            for k, arr in _stats_numpy(values_t, t_us, starts, long_starts):
                yield k, np.ascontiguousarray(arr[:, emit >= 0], dtype=dtype), None, None

    names = (*WINDOW_STATS, *LONG_STATS)
    columns = [c.rechunk() for c in keys.get_columns()]
    arrays = [pa.array(c.to_arrow()) for c in columns]
    fields = [c.name for c in columns]
    for k, out, bits, nulls in chunks():
        for j, s in enumerate(names):
            arrays.append(_arrow_float_column(out[j], None if bits is None else bits[j],
                                              None if nulls is None else nulls[j]))
            fields.append(f"{keywords[k]}__{s}")
    logger.info(
        "running stats: %d records (%d emitted), %d keywords, window %.3g h, long window "
        "%.3g h", n, m, len(keywords), config.window_h, config.long_window_h,
    )
    return pa.Table.from_arrays(arrays, names=fields)


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
    sorted search on (region, time). The numba kernel then slides both windows along each
    keyword in one pass, O(1) amortised per record (stable merges of moments, a small
    sorted window for the order statistics; see the kernel's comment). It releases the GIL,
    and a pool of ``numba.get_num_threads()`` threads runs one keyword per task (with fewer
    keywords than threads, independent blocks of regions per task), so a thread slowed by
    other load on the machine holds up only its own tasks. The numpy kernel gathers windows
    into right-aligned (rows x slots) matrices per chunk of rows, O(records x
    records-per-window). Memory is the output plus about one keyword's input per thread. For
    archives larger than memory, stream them with `flare_core.feature_stream`.
    """
    return pl.from_arrow(running_stats_table(sharp, config, engine=engine))
