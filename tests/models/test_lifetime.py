"""Mean lifetime integral and smoothed tracks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from flare_core.errors import ConfigError
from flare_core.models.lifetime import (
    lifetime_label,
    restricted_mean_lifetime,
    smooth_lifetime_track,
)


def test_restricted_mean_lifetime_exact_step_integral():
    times = np.array([10.0, 20.0, 200.0])
    surv = np.array([[0.5, 0.25, 0.0], [1.0, 1.0, 1.0]])
    mu = restricted_mean_lifetime(times, surv, 144.0)
    # 10 h at 1, 10 h at 0.5, 124 h at 0.25 (the jump at 200 h is beyond Tmax)
    np.testing.assert_allclose(mu, [10 + 5 + 31, 144.0])
    with pytest.raises(ConfigError):
        restricted_mean_lifetime(times, surv[:, :2], 144.0)


def test_lifetime_label_says_quiet_near_the_cap():
    # a quiet region: S(144 h) = 0.93 -> its restricted mean sits at the cap, not a prediction
    assert lifetime_label(140.2, 0.93) == "no >=M flare expected within 6 d (P = 7 %)"
    assert lifetime_label(30.6, 0.05) == "restricted mean time to >=M flare: 31 h (of 144 h)"
    assert lifetime_label(50.0, 0.5, tmax_h=72.0).endswith("within 3 d (P = 50 %)")
    assert lifetime_label(None, 0.9) == "n/a" and lifetime_label(10.0, float("nan")) == "n/a"
    with pytest.raises(ConfigError):
        lifetime_label(10.0, 0.1, quiet_s_tmax=0.0)


def _track():
    t0 = datetime(2014, 1, 1, tzinfo=UTC)
    ts = [t0 + timedelta(minutes=96 * i) for i in range(40)]
    vals = np.r_[np.full(20, 100.0), np.full(20, 20.0)]
    return pl.DataFrame({"harpnum": [7] * 40 + [8] * 40, "t_rec": ts + ts,
                         "mean_lifetime_h": np.r_[vals, vals[::-1]]})


def test_causal_smoothing_uses_no_future_record():
    tr = _track()
    full = smooth_lifetime_track(tr, sigma_h=6.0)
    cut = smooth_lifetime_track(tr.filter(pl.col("t_rec") <= tr["t_rec"][25]), sigma_h=6.0)
    a = full.filter(pl.col("t_rec") <= tr["t_rec"][25]).sort("harpnum", "t_rec")
    np.testing.assert_allclose(a["mean_lifetime_smooth_h"].to_numpy(),
                               cut.sort("harpnum", "t_rec")["mean_lifetime_smooth_h"].to_numpy())
    s7 = full.filter(pl.col("harpnum") == 7)["mean_lifetime_smooth_h"].to_numpy()
    assert s7[19] == pytest.approx(100.0) and 20.0 < s7[21] < 100.0  # lags the drop


def test_symmetric_smoothing_matches_scipy_per_region():
    from scipy.ndimage import gaussian_filter1d

    out = smooth_lifetime_track(_track(), sigma_h=4.8, causal=False)
    s8 = out.filter(pl.col("harpnum") == 8)["mean_lifetime_smooth_h"].to_numpy()
    expect = gaussian_filter1d(np.r_[np.full(20, 20.0), np.full(20, 100.0)], 3.0, mode="nearest")
    np.testing.assert_allclose(s8, expect)
    with pytest.raises(ConfigError):
        smooth_lifetime_track(_track().drop("mean_lifetime_h"))


def test_causal_smoothing_cadence_from_past_records_only():
    # 40 records at 96 min, then 200 more at 12 min in the same segment: the median step of
    # the whole segment becomes 12 min, but the earlier smoothed values must not change.
    tr = _track().filter(pl.col("harpnum") == 7)
    t_last = tr["t_rec"][-1]
    later = pl.DataFrame({
        "harpnum": [7] * 200,
        "t_rec": [t_last + timedelta(minutes=12 * (i + 1)) for i in range(200)],
        "mean_lifetime_h": np.linspace(20.0, 140.0, 200),
    }).cast({"harpnum": tr["harpnum"].dtype})
    alone = smooth_lifetime_track(tr, sigma_h=6.0)["mean_lifetime_smooth_h"].to_numpy()
    both = smooth_lifetime_track(pl.concat([tr, later]), sigma_h=6.0)
    np.testing.assert_allclose(both["mean_lifetime_smooth_h"].to_numpy()[:40], alone)
    # the retrospective (symmetric) mode does use the whole segment's cadence
    sym_alone = smooth_lifetime_track(tr, sigma_h=6.0, causal=False)
    sym_both = smooth_lifetime_track(pl.concat([tr, later]), sigma_h=6.0, causal=False)
    assert not np.allclose(sym_both["mean_lifetime_smooth_h"].to_numpy()[:40],
                           sym_alone["mean_lifetime_smooth_h"].to_numpy())


def test_running_cadence_is_the_median_of_each_prefix():
    from flare_core.models.lifetime import _running_sigmas

    rng = np.random.default_rng(5)
    us = 60_000_000
    for steps in (rng.choice([12, 12, 12, 24, 6, 96], 301) * us + rng.integers(-2, 3, 301),
                  np.zeros(7, dtype=np.int64), np.array([12 * us, -us, 0, 12 * us]),
                  np.empty(0, dtype=np.int64)):
        steps = np.asarray(steps, dtype=np.int64)
        expected = [1.0]
        for i in range(1, steps.size + 1):
            cadence_h = float(np.median(steps[:i])) / 3_600_000_000
            expected.append(6.0 / cadence_h if cadence_h > 0 else 1.0)
        np.testing.assert_array_equal(_running_sigmas(steps, 6.0), expected)


def test_restricted_mean_lifetime_rows_equals_one_row_at_a_time():
    from flare_core.models.lifetime import restricted_mean_lifetime_rows

    rng = np.random.default_rng(6)
    times = np.cumsum(rng.uniform(0.1, 3.0, 97))
    surv = np.sort(rng.uniform(0, 1, (53, times.size)), axis=1)[:, ::-1]
    for tmax in (times[-1], 100.0, times[40], 0.05):
        got = restricted_mean_lifetime_rows(times, surv, tmax)
        expected = [restricted_mean_lifetime(times, surv[i], tmax)[0] for i in range(53)]
        np.testing.assert_array_equal(got, expected)
    with pytest.raises(ConfigError):
        restricted_mean_lifetime_rows(times, surv[:, :-1], 10.0)
