"""Tests for flare_core.metrics: hand-worked tables, library cross-checks, invariants."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import (
    balanced_accuracy_score,
    cohen_kappa_score,
    jaccard_score,
    precision_score,
    recall_score,
)
from sksurv.metrics import brier_score as sk_brier_score
from sksurv.metrics import concordance_index_censored

from flare_core import metrics as M
from flare_core.errors import ConfigError, DataQualityWarning


def _arrays_from_table(tp: int, fn: int, fp: int, tn: int) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.array([1] * tp + [1] * fn + [0] * fp + [0] * tn)
    y_pred = np.array([1] * tp + [0] * fn + [1] * fp + [0] * tn)
    perm = np.random.default_rng(1).permutation(len(y_true))
    return y_true[perm], y_pred[perm]


# ------------------------------------------------------------------ hand-worked table


def test_contingency_scores_hand_worked_table():
    # TP=30, FN=10, FP=20, TN=140 (N=200), worked by hand with the DeFN formulas:
    #   POD = 30/40 = 3/4, POFD = 20/160 = 1/8, TSS = 3/4 - 1/8 = 5/8
    #   FAR = 20/(30+20) = 2/5, CSI = 30/(30+20+10) = 1/2, accuracy = 170/200 = 17/20
    #   HSS = 2(30*140 - 10*20) / (40*150 + 50*160) = 8000/14000 = 4/7
    y_true, y_pred = _arrays_from_table(30, 10, 20, 140)
    assert M.contingency_table(y_true, y_pred) == (30, 10, 20, 140)
    assert M.probability_of_detection(y_true, y_pred) == pytest.approx(3 / 4)
    assert M.true_skill_statistic(y_true, y_pred) == pytest.approx(5 / 8)
    assert M.false_alarm_ratio(y_true, y_pred) == pytest.approx(2 / 5)
    assert M.critical_success_index(y_true, y_pred) == pytest.approx(1 / 2)
    assert M.accuracy(y_true, y_pred) == pytest.approx(17 / 20)
    assert M.heidke_skill_score(y_true, y_pred) == pytest.approx(4 / 7)
    s = M.skill_scores(y_true, y_pred)
    assert s == M.scores_from_table((30, 10, 20, 140))
    assert (s["tp"], s["fn"], s["fp"], s["tn"], s["n"]) == (30, 10, 20, 140, 200)
    assert s["tss"] == pytest.approx(5 / 8) and s["hss"] == pytest.approx(4 / 7)


def test_contingency_accepts_bool_and_polars():
    t = pl.Series([True, True, False, False])
    p = pl.Series([True, False, False, True])
    assert M.contingency_table(t, p) == M.ContingencyTable(1, 1, 1, 1)
    assert M.true_skill_statistic(t, p) == pytest.approx(0.0)


def test_contingency_rejects_probabilities_and_bad_shapes():
    with pytest.raises(ConfigError, match="threshold"):
        M.true_skill_statistic([1, 0, 1], [0.7, 0.2, 0.9])
    with pytest.raises(ConfigError, match="length"):
        M.true_skill_statistic([1, 0, 1], [1, 0])
    with pytest.raises(ConfigError, match="empty"):
        M.true_skill_statistic([], [])
    with pytest.raises(ConfigError):
        M.scores_from_table((0, 0, 0, 0))


@pytest.mark.parametrize(
    ("score", "y_true", "y_pred"),
    [
        ("tss", [0, 0, 0], [0, 1, 0]),  # no observed flare
        ("tss", [1, 1, 1], [0, 1, 0]),  # no observed non-flare
        ("pod", [0, 0], [1, 0]),
        ("far", [1, 0], [0, 0]),  # nothing forecast
        ("csi", [0, 0], [0, 0]),
        ("hss", [0, 0], [0, 0]),
    ],
)
def test_undefined_scores_are_nan_with_warning(score, y_true, y_pred):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        s = M.skill_scores(y_true, y_pred)
    assert math.isnan(s[score])
    msgs = [str(w.message) for w in caught if issubclass(w.category, DataQualityWarning)]
    assert any(m.startswith(score.upper()) for m in msgs)


# ------------------------------------------------------------------ invariants


binary = st.lists(st.tuples(st.booleans(), st.booleans()), min_size=2, max_size=200)


def _both_classes(pairs):
    return len({t for t, _ in pairs}) == 2


@settings(max_examples=150, deadline=None)
@given(binary.filter(_both_classes))
def test_scores_match_sklearn_and_invariants(pairs):
    t = np.array([a for a, _ in pairs])
    p = np.array([b for _, b in pairs])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        s = M.skill_scores(t, p)
    # independent definitions: TSS = 2*balanced accuracy - 1, HSS = Cohen's kappa (2x2),
    # CSI = Jaccard index, POD = recall, FAR = 1 - precision
    assert -1.0 <= s["tss"] <= 1.0
    assert s["tss"] == pytest.approx(2 * balanced_accuracy_score(t, p) - 1, abs=1e-12)
    assert s["pod"] == pytest.approx(recall_score(t, p, zero_division=0), abs=1e-12)
    assert s["accuracy"] == pytest.approx(np.mean(t == p), abs=1e-12)
    if not math.isnan(s["hss"]) and len(set(p)) == 2:
        assert s["hss"] == pytest.approx(cohen_kappa_score(t, p), abs=1e-9)
    if p.any():
        assert s["far"] == pytest.approx(1 - precision_score(t, p), abs=1e-12)
        assert s["csi"] == pytest.approx(jaccard_score(t, p), abs=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        # inverting the forecast negates TSS
        inv = M.skill_scores(t, ~p)
        # relabelling (flare <-> no flare in both) leaves TSS and HSS unchanged
        swap = M.skill_scores(~t, ~p)
    assert inv["tss"] == pytest.approx(-s["tss"], abs=1e-12)
    assert swap["tss"] == pytest.approx(s["tss"], abs=1e-12)
    if not math.isnan(s["hss"]):
        assert swap["hss"] == pytest.approx(s["hss"], abs=1e-12)


def test_constant_forecast_has_zero_tss():
    t = np.array([1, 0, 0, 1, 0])
    assert M.true_skill_statistic(t, np.ones(5, dtype=int)) == 0.0
    assert M.true_skill_statistic(t, np.zeros(5, dtype=int)) == 0.0
    assert M.heidke_skill_score(t, np.zeros(5, dtype=int)) == 0.0


# ------------------------------------------------------------------ probabilistic


def test_brier_and_bss_hand_worked():
    y = [1, 0, 0, 1]
    p = [0.8, 0.1, 0.3, 0.6]
    # BS = (0.04 + 0.01 + 0.09 + 0.16)/4 = 0.075
    assert M.brier_score(y, p) == pytest.approx(0.075)
    # climatology 0.25 from a (separate) training set: BS_ref = (0.5625*2 + 0.0625*2)/4
    clim = M.climatology([1, 0, 0, 0])
    assert clim == 0.25
    assert M.brier_skill_score(y, p, climatology=clim) == pytest.approx(1 - 0.075 / 0.3125)
    # a forecast equal to climatology has zero skill
    assert M.brier_skill_score(y, [clim] * 4, climatology=clim) == pytest.approx(0.0)


def test_brier_rejects_bad_input_and_warns_when_undefined():
    with pytest.raises(ConfigError, match="probabilities"):
        M.brier_score([1, 0], [1.2, 0.0])
    with pytest.raises(ConfigError, match="probabilities"):
        M.brier_score([1, 0], [np.nan, 0.0])
    with pytest.raises(ConfigError, match="climatology"):
        M.brier_skill_score([1, 0], [0.5, 0.5], climatology=1.5)
    with pytest.warns(DataQualityWarning, match="BSS"):
        assert math.isnan(M.brier_skill_score([0, 0], [0.1, 0.0], climatology=0.0))


def test_roc_auc_and_single_class():
    assert M.roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    with pytest.warns(DataQualityWarning, match="single class"):
        assert math.isnan(M.roc_auc([1, 1, 1], [0.1, 0.2, 0.3]))


def test_reliability_bins():
    y = [0, 0, 1, 1, 1, 0]
    p = [0.05, 0.15, 0.15, 0.95, 1.0, 0.55]
    tab = M.reliability_bins(y, p, n_bins=10)
    assert tab.height == 10
    assert tab["n"].sum() == 6
    row1 = tab.row(1, named=True)
    assert row1["n"] == 2 and row1["event_rate"] == pytest.approx(0.5)
    assert row1["mean_prob"] == pytest.approx(0.15)
    assert tab.row(9, named=True)["n"] == 2  # 1.0 falls in the last bin
    assert tab.row(3, named=True)["event_rate"] is None  # empty bin: null, not 0


# ------------------------------------------------------------------ multi-class


def test_multiclass_tss_hand_worked():
    y_true = ["N", "N", "N", "C", "C", "M"]
    y_pred = ["N", "N", "C", "C", "M", "M"]
    # N vs rest: TP=2 FN=1 FP=0 TN=3 -> 2/3 - 0 = 2/3
    # C vs rest: TP=1 FN=1 FP=1 TN=3 -> 1/2 - 1/4 = 1/4
    # M vs rest: TP=1 FN=0 FP=1 TN=4 -> 1 - 1/5 = 4/5
    # micro: TP=4 FN=2 FP=2 TN=10 -> 4/6 - 2/12 = 1/2
    out = M.multiclass_tss(y_true, y_pred, labels=["N", "C", "M"])
    assert out == pytest.approx({"N": 2 / 3, "C": 1 / 4, "M": 4 / 5, "micro": 1 / 2})
    with pytest.warns(DataQualityWarning):
        out = M.multiclass_tss(y_true, y_pred, labels=["N", "C", "M", "X"])
    assert math.isnan(out["X"])


# ------------------------------------------------------------------ survival


def _ph_data(seed: int, n: int = 300, censor_max_h: float | None = 150.0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    hazard = 0.02 * np.exp(0.8 * x)  # per hour, proportional hazards
    t_event = rng.exponential(1 / hazard)
    c = rng.uniform(0, censor_max_h, size=n) if censor_max_h else np.full(n, np.inf)
    return hazard, np.minimum(t_event, c), t_event <= c


def _pycox_eval(hazard, time_h, event, grid):
    from flare_core.models._pycox_compat import import_pycox

    import_pycox()
    from pycox.evaluation import EvalSurv

    surv = pd.DataFrame(np.exp(-np.outer(grid, hazard)), index=grid)
    return EvalSurv(surv, time_h, event.astype(int), censor_surv="km")


def test_cindex_matches_pycox_without_censoring():
    hazard, time_h, event = _ph_data(0, censor_max_h=None)
    ev = _pycox_eval(hazard, time_h, event, np.unique(time_h))
    c_ipcw = M.concordance_index_ipcw((event, time_h), (event, time_h), hazard)
    # without censoring all IPCW weights are 1: Uno's C == Antolini's C-td for PH curves
    assert c_ipcw == pytest.approx(ev.concordance_td("antolini"), abs=1e-12)


def test_cindex_cross_check_with_censoring():
    hazard, time_h, event = _ph_data(1)
    assert 0.3 < (~event).mean() < 0.6
    ev = _pycox_eval(hazard, time_h, event, np.unique(time_h))
    harrell = concordance_index_censored(event, time_h, hazard)[0]
    # Antolini's C-td of PH curves on the full time grid is Harrell's C exactly ...
    assert ev.concordance_td("antolini") == pytest.approx(harrell, abs=1e-12)
    # ... and Uno's IPCW C differs from it only by the censoring weights
    c_ipcw = M.concordance_index_ipcw((event, time_h), (event, time_h), hazard)
    assert c_ipcw == pytest.approx(harrell, abs=0.03)
    assert c_ipcw > 0.6  # the hazard ranks carry real signal


def test_brier_and_ibs_cross_check_with_pycox():
    hazard, time_h, event = _ph_data(2)
    y = M.survival_target(event, time_h)
    grid = np.linspace(np.quantile(time_h, 0.05), np.quantile(time_h, 0.9), 60)
    surv = np.exp(-np.outer(hazard, grid))  # (n, n_times)
    ev = _pycox_eval(hazard, time_h, event, grid)
    # pointwise IPCW Brier scores agree exactly (both Kaplan-Meier censoring weights)
    np.testing.assert_allclose(sk_brier_score(y, y, surv, grid)[1], ev.brier_score(grid).values)
    # the integral differs only by the rule (trapezoid vs Simpson)
    ibs = M.integrated_brier(y, y, surv, grid)
    assert ibs == pytest.approx(ev.integrated_brier_score(grid), rel=5e-3)


def test_cumulative_dynamic_auc_and_inputs():
    hazard, time_h, event = _ph_data(3)
    frame = pl.DataFrame({"event": event.astype(np.int8), "time_to_event_h": time_h})
    auc, mean_auc = M.cumulative_dynamic_auc_at(frame, frame, hazard, [10.0, 30.0, 60.0])
    assert auc.shape == (3,) and np.all((auc > 0.6) & (auc <= 1.0))
    assert min(auc) <= mean_auc <= max(auc)
    # random risk has no skill
    rnd = np.random.default_rng(0).random(len(hazard))
    auc_rnd, _ = M.cumulative_dynamic_auc_at(frame, frame, rnd, [30.0])
    assert abs(auc_rnd[0] - 0.5) < 0.1
    with pytest.raises(ConfigError, match="outside the test follow-up"):
        M.cumulative_dynamic_auc_at(frame, frame, hazard, [1e6])
    # test follow-up beyond the training follow-up: censoring weights undefined -> clear error
    short = frame.with_columns(pl.col("time_to_event_h").clip(upper_bound=20.0))
    with pytest.raises(ConfigError, match="sksurv.metrics.concordance_index_ipcw"):
        M.concordance_index_ipcw(short, frame, hazard)
    no_events = frame.with_columns(pl.lit(0, dtype=pl.Int8).alias("event"))
    with pytest.raises(ConfigError, match="no observed events"):
        M.concordance_index_ipcw(frame, no_events, hazard)
    with pytest.raises(ConfigError, match="survival probabilities"):
        M.integrated_brier(frame, frame, np.full((len(hazard), 2), 2.0), [10.0, 20.0])


# ------------------------------------------------------------------ bootstrap


def test_bootstrap_resamples_whole_regions():
    groups = np.repeat(np.arange(12), np.arange(1, 13))  # region g has g+1 records
    sizes = dict(zip(*np.unique(groups, return_counts=True), strict=True))

    def whole_regions_only(g: np.ndarray) -> float:
        vals, counts = np.unique(g, return_counts=True)
        assert all(c % sizes[v] == 0 for v, c in zip(vals, counts, strict=True))
        return float(len(g))

    res = M.bootstrap_by_region(whole_regions_only, groups, groups, n_boot=200, seed=3)
    assert res.n_valid == 200 and res.low <= res.high
    again = M.bootstrap_by_region(whole_regions_only, groups, groups, n_boot=200, seed=3)
    assert again == res


def _sun2022(path) -> pl.DataFrame:
    return pl.read_csv(path, columns=["arpnum", "label", "R_VALUE"]).drop_nulls("R_VALUE")


def test_bootstrap_tss_on_sun2022(data_dir):
    train = _sun2022(data_dir / "sharp/sun2022_sharp_m24h_fold0.csv.gz")
    test = _sun2022(data_dir / "sharp/sun2022_sharp_m24h_fold1.csv.gz")
    # threshold chosen on the training fold only
    cands = np.quantile(train["R_VALUE"].to_numpy(), np.linspace(0.5, 0.99, 50))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        best = max(cands, key=lambda c: M.true_skill_statistic(train["label"], train["R_VALUE"] > c))
    y, yhat = test["label"].to_numpy(), (test["R_VALUE"] > best).to_numpy()
    res = M.bootstrap_by_region(M.true_skill_statistic, test["arpnum"], y, yhat, n_boot=200)
    assert res.estimate == pytest.approx(M.true_skill_statistic(y, yhat))
    assert res.low < res.estimate < res.high
    assert res.estimate > 0.3  # R_VALUE alone discriminates M-flare regions
    # rows of one region are correlated: treating rows as independent understates the spread
    rows = M.bootstrap_by_region(M.true_skill_statistic, np.arange(len(y)), y, yhat, n_boot=200)
    assert (res.high - res.low) > (rows.high - rows.low)


def test_bootstrap_degenerate_resamples_counted():
    # one region holds the only event: about a third of resamples miss it
    groups = np.repeat(np.arange(3), 4)
    y = np.zeros(12, dtype=int)
    y[0] = 1
    yhat = y.copy()
    with pytest.warns(DataQualityWarning, match="undefined in"):
        res = M.bootstrap_by_region(M.true_skill_statistic, groups, y, yhat, n_boot=300)
    assert 0 < res.n_valid < 300
    y_single = np.zeros(12, dtype=int)
    with pytest.raises(ConfigError, match="too few"), warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        M.bootstrap_by_region(M.true_skill_statistic, groups, y_single, yhat, n_boot=50)
