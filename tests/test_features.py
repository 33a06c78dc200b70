"""Running SHARP statistics: a plain per-window reference vs the vectorised kernel."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from flare_core.errors import ConfigError
from flare_core.features import (
    LONG_STATS,
    WINDOW_STATS,
    RunningStats,
    build_running_stats,
    drop_duplicate_records,
    feature_columns,
)
from flare_core.schema import UTC_DATETIME

T0 = datetime(2014, 1, 1, tzinfo=UTC)


# ---------------------------------------------------------------- reference implementation
def _ref_stats(times_h: list[float], values: list[float]) -> dict[str, float | None]:
    """Statistics of one window, written out plainly (the specification of the kernel)."""
    pts = [(t, v) for t, v in zip(times_h, values, strict=True)
           if v is not None and math.isfinite(v)]
    n = len(pts)
    out: dict[str, float | None] = dict.fromkeys(WINDOW_STATS)
    out["count"] = float(n)
    if n == 0:
        return out
    xs = [v for _, v in pts]
    ts = [t for t, _ in pts]
    mean = sum(xs) / n
    d = [x - mean for x in xs]
    m2 = sum(e * e for e in d)
    m3 = sum(e ** 3 for e in d)
    m4 = sum(e ** 4 for e in d)
    srt = sorted(xs)
    out.update(mean=mean, min=srt[0], max=srt[-1], first=xs[0], last=xs[-1],
               diff=xs[-1] - xs[0],
               median=(srt[(n - 1) // 2] + srt[n // 2]) / 2)
    out["rel_change"] = None if xs[0] == 0 else (xs[-1] - xs[0]) / abs(xs[0])
    if n >= 2:
        out["std"] = math.sqrt(m2 / (n - 1))
        tbar = sum(ts) / n
        sxx = sum((t - tbar) ** 2 for t in ts)
        out["slope_per_h"] = sum((t - tbar) * e for t, e in zip(ts, d, strict=True)) / sxx
    constant = not math.sqrt(m2 / n) > 1e-10 * max(abs(x) for x in xs)
    if n >= 3 and not constant:
        out["skew"] = math.sqrt(n * (n - 1)) / (n - 2) * (m3 / n) / (m2 / n) ** 1.5
    if n >= 4 and not constant:
        out["kurt"] = ((n + 1) * n * (n - 1) / ((n - 2) * (n - 3)) * m4 / m2 ** 2
                       - 3 * (n - 1) ** 2 / ((n - 2) * (n - 3)))
    return out


def _reference(sharp: pl.DataFrame, cfg: RunningStats) -> pl.DataFrame:
    """Row-by-row reference: dedupe keep-last, then each window by a plain filter."""
    keywords = list(cfg.keywords)
    rows = sharp.unique(subset=["harpnum", "t_rec"], keep="last", maintain_order=True).sort(
        ["harpnum", "t_rec"]).to_dicts()
    out = []
    for r in rows:
        t = r["t_rec"]
        rec: dict = {"harpnum": r["harpnum"], "t_rec": t}
        for window_h, long in ((cfg.window_h, False), (cfg.long_window_h, True)):
            lo = t - timedelta(hours=window_h)
            win = [w for w in rows if w["harpnum"] == r["harpnum"] and lo < w["t_rec"] <= t]
            th = [(w["t_rec"] - t).total_seconds() / 3600 for w in win]
            for k in keywords:
                s = _ref_stats(th, [w[k] for w in win])
                if long:
                    rec[f"{k}__long_slope_per_h"] = s["slope_per_h"]
                    rec[f"{k}__long_diff"] = s["diff"]
                else:
                    rec.update({f"{k}__{name}": v for name, v in s.items()})
        out.append(rec)
    return pl.DataFrame(out, schema_overrides={"t_rec": UTC_DATETIME}, infer_schema_length=None)


def _assert_frames_close(got: pl.DataFrame, want: pl.DataFrame,
                         inputs: pl.DataFrame | None = None) -> None:
    """Equal at rtol 1e-9; the absolute floor is 1e-12 of the column's largest value and,
    given the ``inputs``, of its keyword's largest input (a spread of equal values of 4e21
    is 0, or the reference's rounding of ~1e6)."""
    assert got.height == want.height
    if want.height == 0:
        return
    assert got["harpnum"].to_list() == want["harpnum"].to_list()
    assert got["t_rec"].to_list() == want["t_rec"].to_list()
    for c in feature_columns(got):
        g = got[c].to_numpy().astype(float)
        w = want[c].cast(pl.Float64).to_numpy().astype(float)
        assert np.array_equal(np.isnan(g), np.isnan(w)), c
        ok = ~np.isnan(w)
        scale = np.max(np.abs(w[ok]), initial=1.0)
        keyword = c.split("__")[0]
        if inputs is not None and keyword in inputs.columns:
            values = inputs[keyword].cast(pl.Float64).to_numpy()
            scale = max(scale, np.nanmax(np.abs(values), initial=0.0))
        np.testing.assert_allclose(g[ok], w[ok], rtol=1e-9, atol=1e-12 * scale, err_msg=c)


# ---------------------------------------------------------------- synthetic frames
@st.composite
def sharp_frames(draw):
    """Random SHARP-like frames: several regions, irregular gaps, duplicates, NaN/nulls."""
    n_regions = draw(st.integers(1, 3))
    rows = []
    for h in range(n_regions):
        n = draw(st.integers(0, 25))
        # cadence multiples of 12 min, with occasional long gaps; duplicates allowed (step 0)
        steps = draw(st.lists(st.sampled_from([0, 1, 1, 1, 2, 3, 8, 30]), min_size=n,
                              max_size=n))
        minute = 0
        for s in steps:
            minute += 12 * s
            # values on a coarse grid: exact ties happen, near-ties (rounding noise) do not
            a = draw(st.one_of(st.none(), st.just(float("nan")),
                               st.integers(-50, 50).map(lambda i: i * 0.37)))
            b = draw(st.integers(1, 40).map(lambda i: i * 1.3e21))
            rows.append({"harpnum": 100 + h, "t_rec": T0 + timedelta(minutes=minute),
                         "kw_a": a, "kw_b": b})
    order = draw(st.permutations(range(len(rows))))
    rows = [rows[i] for i in order]
    return pl.DataFrame(rows, schema={"harpnum": pl.Int64, "t_rec": UTC_DATETIME,
                                      "kw_a": pl.Float64, "kw_b": pl.Float64})


@pytest.mark.parametrize("engine", ["numba", "numpy"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=sharp_frames(), window_h=st.sampled_from([0.5, 1.0, 4.0]),
       long_h=st.sampled_from([2.0, 24.0]))
@example(frame=pl.DataFrame(  # equal values of 4e21: the kernel's spread 0, the reference's ~6e5
    {"harpnum": [100] * 3, "t_rec": [T0 + timedelta(minutes=12 * i) for i in range(3)],
     "kw_a": [None] * 3, "kw_b": [3.9e21] * 3},
    schema={"harpnum": pl.Int64, "t_rec": UTC_DATETIME, "kw_a": pl.Float64,
            "kw_b": pl.Float64}), window_h=0.5, long_h=2.0)
def test_kernel_matches_reference(engine, frame, window_h, long_h):
    cfg = RunningStats(window_h=window_h, long_window_h=long_h, keywords=("kw_a", "kw_b"))
    _assert_frames_close(build_running_stats(frame, cfg, engine=engine),
                         _reference(frame, cfg), frame)


@pytest.mark.parametrize("engine", ["numba", "numpy"])
def test_96_minute_cadence_with_gap_matches_reference(engine):
    # sun2022-like: 96-min steps, one 10-h gap; a 4-h window holds 1..3 values
    minutes = [0, 96, 192, 288, 384, 984, 1080, 1176]
    frame = pl.DataFrame({
        "harpnum": [7] * len(minutes),
        "t_rec": [T0 + timedelta(minutes=m) for m in minutes],
        "usflux": [1e21 * (1 + 0.1 * i + 0.01 * i * i) for i in range(len(minutes))],
    }, schema_overrides={"t_rec": UTC_DATETIME})
    cfg = RunningStats(keywords=("usflux",))
    got = build_running_stats(frame, cfg, engine=engine)
    _assert_frames_close(got, _reference(frame, cfg), frame)
    # the record after the gap starts a fresh window: one value, no slope
    assert got["usflux__count"].to_list() == [1, 2, 3, 3, 3, 1, 2, 3]
    assert got["usflux__slope_per_h"][5] is None
    # 4 h = 240 min: the record at 288 min sees 96, 192, 288 but not 0 (left end open)
    assert got["usflux__first"][3] == frame["usflux"][1]


def test_window_is_closed_right_open_left():
    frame = pl.DataFrame({
        "harpnum": [1, 1, 1],
        "t_rec": [T0, T0 + timedelta(hours=4), T0 + timedelta(hours=4, minutes=1)],
        "meangbz": [1.0, 2.0, 4.0],
    }, schema_overrides={"t_rec": UTC_DATETIME})
    got = build_running_stats(frame, RunningStats(keywords=("meangbz",)))
    # at T0+4h the record at T0 lies exactly window_h before: excluded
    assert got["meangbz__count"].to_list() == [1.0, 1.0, 2.0]
    assert got["meangbz__last"].to_list() == [1.0, 2.0, 4.0]
    assert got["meangbz__slope_per_h"][2] == pytest.approx(2.0 * 60)


def test_duplicates_keep_last_and_are_counted(caplog):
    frame = pl.DataFrame({
        "harpnum": [1, 1, 1, None],
        "t_rec": [T0, T0, T0 + timedelta(minutes=12), T0],
        "area": [1.0, 5.0, 7.0, 3.0],
    }, schema_overrides={"t_rec": UTC_DATETIME})
    kept, n = drop_duplicate_records(frame)
    assert n == 2
    assert kept["area"].to_list() == [5.0, 7.0]
    with caplog.at_level("WARNING", logger="flare_core.features"):
        got = build_running_stats(frame, RunningStats(keywords=("area",)))
    assert got.height == 2
    assert got["area__first"].to_list() == [5.0, 5.0]
    assert any("duplicate" in r.message for r in caplog.records)


def test_default_keywords_skip_all_null_and_column_names():
    frame = pl.DataFrame({
        "harpnum": [1, 1],
        "t_rec": [T0, T0 + timedelta(minutes=12)],
        "usflux": [1.0, 2.0],
        "meangbz": [None, None],
        "not_a_keyword": [1.0, 2.0],
    }, schema_overrides={"t_rec": UTC_DATETIME, "meangbz": pl.Float64})
    got = build_running_stats(frame)
    want = [f"usflux__{s}" for s in (*WINDOW_STATS, *LONG_STATS)]
    assert feature_columns(got) == want
    assert got.columns == ["harpnum", "t_rec", *want]
    assert all(got[c].dtype == pl.Float64 for c in want)


def test_empty_frame_and_bad_config():
    frame = pl.DataFrame(schema={"harpnum": pl.Int64, "t_rec": UTC_DATETIME, "area": pl.Float64})
    got = build_running_stats(frame, RunningStats(keywords=("area",)))
    assert got.height == 0 and "area__mean" in got.columns
    with pytest.raises(ConfigError, match="window_h"):
        RunningStats(window_h=0)
    with pytest.raises(ConfigError, match="not in the SHARP frame"):
        build_running_stats(frame, RunningStats(keywords=("usflux",)))
    assert RunningStats(keywords=["area"]).keywords == ("area",)


@pytest.mark.parametrize("engine", ["numba", "numpy"])
def test_real_sun2022_fold_matches_reference(data_dir, engine):
    files = pytest.importorskip("flare_core.sources.files")
    sharp = files.read_sun2022(data_dir / "sharp" / "sun2022_sharp_m24h_fold0.csv.gz")
    harps = sharp["harpnum"].unique().sort()[:3]
    small = sharp.filter(pl.col("harpnum").is_in(harps.implode()))
    cfg = RunningStats(keywords=("usflux", "meangbz", "r_value", "area"))
    got = build_running_stats(small, cfg, engine=engine)
    _assert_frames_close(got, _reference(small, cfg), small)
    # 96-min cadence: a 4-h window holds at most 3 records (t, t-96, t-192 min)
    assert got["usflux__count"].max() <= 3
