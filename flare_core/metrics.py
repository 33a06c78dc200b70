"""Forecast verification: contingency skill scores, probabilistic scores, survival scores.

Every metric is a plain function of arrays (numpy, lists or polars Series) with no state.
Binary forecasts use the Deep Flare Net conventions (Nishizuka et al. 2018, ApJ 858, 113):
with TP, FN, FP, TN the counts of the 2x2 contingency table (positive = "flare"),

* POD = TP / (TP + FN)                      probability of detection (recall)
* FAR = FP / (TP + FP)                      false alarm ratio
* CSI = TP / (TP + FP + FN)                 critical success index
* TSS = TP / (TP + FN) - FP / (FP + TN)     true skill statistic, in [-1, 1]
* HSS = 2 (TP TN - FN FP) / ((TP + FN)(FN + TN) + (TP + FP)(FP + TN))   Heidke skill score
* accuracy = (TP + TN) / N

A score whose denominator is zero (e.g. TSS on a set with no flares) is returned as NaN with a
`~flare_core.errors.DataQualityWarning` naming the missing cell; it is never replaced by 0.
Malformed arguments (probabilities where labels are expected, mismatched lengths, empty input)
raise `~flare_core.errors.ConfigError`.

Survival scores wrap scikit-survival (``sksurv.metrics``). Survival targets may be given as a
scikit-survival structured array, as a polars frame with columns ``event`` (0/1) and
``time_to_event_h`` (hours after ``t_rec``; the frame `flare_core.labels.label_time_to_event`
returns), or as a tuple ``(event, time_h)``. Risk scores are "higher = flare sooner".

Confidence intervals come from `bootstrap_by_region`, which resamples whole regions (HARPs):
records of one region are strongly correlated, so resampling rows would understate the spread.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import polars as pl

from .errors import ConfigError, DataQualityWarning

__all__ = [
    "ContingencyTable",
    "validation_scores",
    "contingency_table",
    "probability_of_detection",
    "false_alarm_ratio",
    "critical_success_index",
    "true_skill_statistic",
    "best_tss_threshold",
    "heidke_skill_score",
    "accuracy",
    "skill_scores",
    "scores_from_table",
    "climatology",
    "brier_score",
    "brier_skill_score",
    "roc_auc",
    "reliability_bins",
    "survival_target",
    "cumulative_dynamic_auc_at",
    "concordance_index_ipcw",
    "integrated_brier",
    "multiclass_tss",
    "BootstrapInterval",
    "bootstrap_by_region",
]

logger = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- checks


def _as_1d(x: Any, name: str) -> np.ndarray:
    if isinstance(x, pl.Series):
        x = x.to_numpy()
    a = np.asarray(x)
    if a.ndim == 2 and 1 in a.shape:
        a = a.ravel()
    if a.ndim != 1:
        raise ConfigError(f"{name} must be 1-D, got shape {a.shape}")
    if a.size == 0:
        raise ConfigError(f"{name} is empty")
    return a


def _check_binary(x: Any, name: str) -> np.ndarray:
    """0/1 or bool array -> bool array; anything else (probabilities, NaN, 2) raises."""
    a = _as_1d(x, name)
    if a.dtype == bool:
        return a
    if a.dtype == object:
        raise ConfigError(f"{name} must be 0/1 or boolean, got dtype object")
    if np.issubdtype(a.dtype, np.number):
        bad = ~np.isin(a, (0, 1))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ConfigError(
                f"{name} must be 0/1 or boolean (threshold probabilities first), "
                f"got {a[i]!r} at index {i}"
            )
        return a.astype(bool)
    raise ConfigError(f"{name} must be 0/1 or boolean, got dtype {a.dtype}")


def _check_prob(x: Any, name: str) -> np.ndarray:
    a = _as_1d(x, name).astype(np.float64)
    bad = ~((a >= 0.0) & (a <= 1.0))  # also catches NaN
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ConfigError(f"{name} must be probabilities in [0, 1], got {a[i]!r} at index {i}")
    return a


def _check_same_length(**arrays: np.ndarray) -> None:
    lengths = {k: len(v) for k, v in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ConfigError(f"inputs differ in length: {lengths}")


def _undefined(score: str, why: str) -> float:
    warnings.warn(f"{score} is undefined ({why}); returning NaN", DataQualityWarning, stacklevel=3)
    logger.warning("%s undefined: %s", score, why)
    return math.nan


# ---------------------------------------------------------------------- contingency


class ContingencyTable(NamedTuple):
    """Counts of the 2x2 table; positive = event (flare) observed or forecast."""

    tp: int
    fn: int
    fp: int
    tn: int

    @property
    def n(self) -> int:
        """Number of forecasts."""
        return self.tp + self.fn + self.fp + self.tn


def contingency_table(y_true: Any, y_pred: Any) -> ContingencyTable:
    """Count hits, misses, false alarms and correct negatives.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Observed outcome, 0/1 or boolean (1 = a flare occurred in the forecast window).
    y_pred : array-like of shape (n_samples,)
        Binary forecast, 0/1 or boolean. Probabilities are rejected: threshold them first.

    Returns
    -------
    ContingencyTable
        ``(tp, fn, fp, tn)`` as Python ints.

    Examples
    --------
    >>> contingency_table([1, 1, 0, 0, 0], [1, 0, 1, 0, 0])
    ContingencyTable(tp=1, fn=1, fp=1, tn=2)
    """
    t = _check_binary(y_true, "y_true")
    p = _check_binary(y_pred, "y_pred")
    _check_same_length(y_true=t, y_pred=p)
    tp = int(np.count_nonzero(t & p))
    fn = int(np.count_nonzero(t & ~p))
    fp = int(np.count_nonzero(~t & p))
    tn = int(np.count_nonzero(~t & ~p))
    return ContingencyTable(tp, fn, fp, tn)


def _pod(c: ContingencyTable) -> float:
    if c.tp + c.fn == 0:
        return _undefined("POD", "no observed events (TP + FN = 0)")
    return c.tp / (c.tp + c.fn)


def _far(c: ContingencyTable) -> float:
    if c.tp + c.fp == 0:
        return _undefined("FAR", "no event forecasts (TP + FP = 0)")
    return c.fp / (c.tp + c.fp)


def _csi(c: ContingencyTable) -> float:
    if c.tp + c.fp + c.fn == 0:
        return _undefined("CSI", "no events observed or forecast (TP + FP + FN = 0)")
    return c.tp / (c.tp + c.fp + c.fn)


def _tss(c: ContingencyTable) -> float:
    if c.tp + c.fn == 0:
        return _undefined("TSS", "no observed events (TP + FN = 0)")
    if c.fp + c.tn == 0:
        return _undefined("TSS", "no observed non-events (FP + TN = 0)")
    return c.tp / (c.tp + c.fn) - c.fp / (c.fp + c.tn)


def _hss(c: ContingencyTable) -> float:
    den = (c.tp + c.fn) * (c.fn + c.tn) + (c.tp + c.fp) * (c.fp + c.tn)
    if den == 0:
        return _undefined("HSS", "denominator is 0: observations and forecasts are both constant")
    return 2.0 * (c.tp * c.tn - c.fn * c.fp) / den


def _accuracy(c: ContingencyTable) -> float:
    return (c.tp + c.tn) / c.n


def probability_of_detection(y_true: Any, y_pred: Any) -> float:
    """POD = TP / (TP + FN), the fraction of observed flares that were forecast.

    NaN with a `DataQualityWarning` when there is no observed event. See `contingency_table`
    for the inputs.
    """
    return _pod(contingency_table(y_true, y_pred))


def false_alarm_ratio(y_true: Any, y_pred: Any) -> float:
    """FAR = FP / (TP + FP), the fraction of flare forecasts that were wrong.

    NaN with a `DataQualityWarning` when nothing was forecast positive.
    """
    return _far(contingency_table(y_true, y_pred))


def critical_success_index(y_true: Any, y_pred: Any) -> float:
    """CSI = TP / (TP + FP + FN) (threat score); ignores correct negatives.

    NaN with a `DataQualityWarning` when there are only correct negatives.
    """
    return _csi(contingency_table(y_true, y_pred))


def true_skill_statistic(y_true: Any, y_pred: Any) -> float:
    """True skill statistic TSS = TP / (TP + FN) - FP / (FP + TN).

    Hit rate minus false-alarm rate (Hanssen-Kuipers discriminant), in [-1, 1]; 0 for a
    constant or random forecast, insensitive to the event rate (Bloomfield et al. 2012).

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        Observed and forecast binary outcomes (0/1 or bool). Probabilities are rejected.

    Returns
    -------
    float
        TSS; NaN with a `DataQualityWarning` if ``y_true`` has only one class.

    References
    ----------
    Nishizuka, N. et al. 2018, ApJ 858, 113, eq. for TSS in Sect. 4.

    Examples
    --------
    >>> true_skill_statistic([1, 1, 0, 0], [1, 0, 0, 0])
    0.5
    """
    return _tss(contingency_table(y_true, y_pred))


def best_tss_threshold(y_true: Any, p: Any) -> tuple[float, float]:
    """Decision threshold on a probability that maximises TSS, and that TSS.

    Call it on VALIDATION data only (a threshold picked on the test set inflates the test
    TSS). Candidates are the midpoints between distinct forecast values; with one class only
    the result is ``(0.5, nan)``. The TSS is the largest hit rate minus false-alarm rate over
    all thresholds (the Kolmogorov-Smirnov distance of the two classes' forecasts).

    Examples
    --------
    >>> best_tss_threshold([0, 0, 1, 1], [0.0, 0.5, 0.25, 1.0])
    (0.75, 0.5)
    """
    y = np.asarray(y_true).astype(bool)
    s = np.asarray(p, dtype=np.float64)
    if y.all() or not y.any():
        return 0.5, float("nan")
    order = np.argsort(-s, kind="stable")
    s_sorted, y_sorted = s[order], y[order]
    tp = np.cumsum(y_sorted)
    fp = np.cumsum(~y_sorted)
    distinct = np.r_[np.flatnonzero(np.diff(s_sorted)), s_sorted.size - 1]
    tss = tp[distinct] / y.sum() - fp[distinct] / (~y).sum()
    k = int(np.argmax(tss))
    i = distinct[k]
    lower = s_sorted[i + 1] if i + 1 < s_sorted.size else s_sorted[i] - 1e-6
    return float((s_sorted[i] + lower) / 2.0), float(tss[k])


def heidke_skill_score(y_true: Any, y_pred: Any) -> float:
    """Heidke skill score HSS = 2 (TP TN - FN FP) / ((TP+FN)(FN+TN) + (TP+FP)(FP+TN)).

    Skill relative to a random forecast with the same marginals; 1 perfect, 0 no skill.
    NaN with a `DataQualityWarning` when the denominator is zero.
    """
    return _hss(contingency_table(y_true, y_pred))


def accuracy(y_true: Any, y_pred: Any) -> float:
    """Accuracy = (TP + TN) / N. Dominated by the non-flare majority; report TSS alongside."""
    return _accuracy(contingency_table(y_true, y_pred))


def scores_from_table(table: ContingencyTable | Sequence[int]) -> dict[str, float]:
    """All contingency scores of a table ``(tp, fn, fp, tn)``.

    Returns a dict with keys ``tp, fn, fp, tn, n, pod, far, csi, tss, hss, accuracy``;
    undefined scores are NaN with a `DataQualityWarning` each.
    """
    c = ContingencyTable(*(int(v) for v in table))
    if min(c) < 0:
        raise ConfigError(f"contingency counts must be >= 0, got {tuple(c)}")
    if c.n == 0:
        raise ConfigError("contingency table is empty (all counts 0)")
    return {
        "tp": c.tp, "fn": c.fn, "fp": c.fp, "tn": c.tn, "n": c.n,
        "pod": _pod(c), "far": _far(c), "csi": _csi(c),
        "tss": _tss(c), "hss": _hss(c), "accuracy": _accuracy(c),
    }


def skill_scores(y_true: Any, y_pred: Any) -> dict[str, float]:
    """Every contingency score at once; see `scores_from_table` for the keys.

    Examples
    --------
    >>> s = skill_scores([1, 1, 0, 0, 0], [1, 0, 1, 0, 0])
    >>> round(s["tss"], 4), round(s["far"], 4)
    (0.1667, 0.5)
    """
    return scores_from_table(contingency_table(y_true, y_pred))


# ---------------------------------------------------------------------- probabilistic


def climatology(y_train: Any) -> float:
    """Event rate of a TRAINING set, the reference forecast of `brier_skill_score`.

    Never compute it on the set being scored: that leaks the test event rate.
    """
    return float(np.mean(_check_binary(y_train, "y_train")))


def brier_score(y_true: Any, y_prob: Any) -> float:
    """Brier score BS = mean((p - o)^2), 0 perfect, 1 worst.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Observed outcome, 0/1 or bool.
    y_prob : array-like of shape (n_samples,)
        Forecast probability of the event, in [0, 1].
    """
    o = _check_binary(y_true, "y_true").astype(np.float64)
    p = _check_prob(y_prob, "y_prob")
    _check_same_length(y_true=o, y_prob=p)
    return float(np.mean((p - o) ** 2))


def brier_skill_score(y_true: Any, y_prob: Any, *, climatology: float) -> float:
    """Brier skill score BSS = 1 - BS / BS_clim against a constant climatological forecast.

    Parameters
    ----------
    y_true, y_prob
        As in `brier_score`.
    climatology : float
        The event rate of the TRAINING set (see `climatology`), passed explicitly so the
        reference never uses the outcomes being scored.

    Returns
    -------
    float
        BSS in (-inf, 1]; > 0 beats climatology. NaN with a `DataQualityWarning` when the
        reference Brier score is 0 (climatology 0 or 1 and the scored outcomes agree with it).
    """
    if not (isinstance(climatology, int | float | np.floating) and 0.0 <= climatology <= 1.0):
        raise ConfigError(f"climatology must be an event rate in [0, 1], got {climatology!r}")
    bs = brier_score(y_true, y_prob)
    o = _check_binary(y_true, "y_true").astype(np.float64)
    bs_ref = float(np.mean((float(climatology) - o) ** 2))
    if bs_ref == 0.0:
        return _undefined("BSS", f"reference Brier score is 0 (climatology={climatology})")
    return 1.0 - bs / bs_ref


def roc_auc(y_true: Any, y_score: Any) -> float:
    """Area under the ROC curve (`sklearn.metrics.roc_auc_score`) of a continuous score.

    NaN with a `DataQualityWarning` when ``y_true`` has one class only (no ROC curve).
    """
    from sklearn.metrics import roc_auc_score

    t = _check_binary(y_true, "y_true")
    s = _as_1d(y_score, "y_score").astype(np.float64)
    _check_same_length(y_true=t, y_score=s)
    if not np.isfinite(s).all():
        raise ConfigError("y_score contains NaN or infinite values")
    if t.all() or not t.any():
        return _undefined("ROC AUC", "y_true has a single class")
    return float(roc_auc_score(t, s))


def reliability_bins(y_true: Any, y_prob: Any, *, n_bins: int = 10) -> pl.DataFrame:
    """Reliability-diagram table: observed event rate per forecast-probability bin.

    Bins are equal-width on [0, 1]; bin ``i`` is ``[i/n_bins, (i+1)/n_bins)``, the last bin
    also includes 1.0. Empty bins are kept (``n = 0``, nulls elsewhere) so every call returns
    ``n_bins`` rows.

    Returns
    -------
    polars.DataFrame
        Columns ``bin_lower, bin_upper`` (Float64), ``n`` (Int64), ``mean_prob`` (mean
        forecast in the bin), ``event_rate`` (observed frequency), both Float64, nullable.
    """
    if not (isinstance(n_bins, int) and n_bins >= 1):
        raise ConfigError(f"n_bins must be a positive int, got {n_bins!r}")
    o = _check_binary(y_true, "y_true").astype(np.float64)
    p = _check_prob(y_prob, "y_prob")
    _check_same_length(y_true=o, y_prob=p)
    idx = np.minimum((p * n_bins).astype(np.int64), n_bins - 1)
    n = np.bincount(idx, minlength=n_bins)
    sum_p = np.bincount(idx, weights=p, minlength=n_bins)
    sum_o = np.bincount(idx, weights=o, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.where(n > 0, sum_p / n, np.nan)
        rate = np.where(n > 0, sum_o / n, np.nan)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return pl.DataFrame(
        {
            "bin_lower": edges[:-1],
            "bin_upper": edges[1:],
            "n": n.astype(np.int64),
            "mean_prob": mean_p,
            "event_rate": rate,
        }
    ).with_columns(pl.col("mean_prob", "event_rate").fill_nan(None))


# ---------------------------------------------------------------------- survival


def survival_target(event: Any, time_h: Any) -> np.ndarray:
    """scikit-survival structured array ``(event: bool, time: float hours)``.

    Parameters
    ----------
    event : array-like of shape (n_samples,)
        1 if the flare was observed, 0 if the record is censored.
    time_h : array-like of shape (n_samples,)
        Hours from the record time ``t_rec`` (UTC) to the flare peak, or to censoring.
    """
    from sksurv.util import Surv

    e = _check_binary(event, "event")
    t = _as_1d(time_h, "time_h").astype(np.float64)
    _check_same_length(event=e, time_h=t)
    if not (np.isfinite(t).all() and (t >= 0).all()):
        i = int(np.flatnonzero(~(np.isfinite(t) & (t >= 0)))[0])
        raise ConfigError(f"time_h must be finite and >= 0 hours, got {t[i]!r} at index {i}")
    return Surv.from_arrays(event=e, time=t, name_event="event", name_time="time_h")


def _as_surv(y: Any, name: str) -> np.ndarray:
    if isinstance(y, pl.DataFrame):
        missing = {"event", "time_to_event_h"} - set(y.columns)
        if missing:
            raise ConfigError(f"{name} frame lacks columns {sorted(missing)}")
        return survival_target(y["event"], y["time_to_event_h"])
    if isinstance(y, tuple) and len(y) == 2:
        return survival_target(*y)
    a = np.asarray(y)
    if a.dtype.names is not None and len(a.dtype.names) == 2:
        return a
    raise ConfigError(
        f"{name} must be a structured (event, time) array, a polars frame with "
        f"event/time_to_event_h, or a tuple (event, time_h); got {type(y).__name__}"
    )


def _check_times(y_test: np.ndarray, times_h: Any) -> np.ndarray:
    times = np.atleast_1d(np.asarray(times_h, dtype=np.float64))
    t_name, e_name = y_test.dtype.names[1], y_test.dtype.names[0]
    t_test = y_test[t_name]
    lo, hi = float(t_test.min()), float(t_test.max())
    bad = (times < lo) | (times >= hi)
    if bad.any():
        raise ConfigError(
            f"evaluation times {times[bad].tolist()} h lie outside the test follow-up "
            f"[{lo}, {hi}) h"
        )
    if not y_test[e_name].any():
        raise ConfigError("the test set has no observed events; survival scores are undefined")
    return times


@contextmanager
def _sksurv_errors(name: str) -> Iterator[None]:
    """scikit-survival's ValueError (e.g. test times beyond the training follow-up, where the
    censoring survival is 0) -> `ConfigError` naming the metric, cause kept."""
    try:
        yield
    except ConfigError:
        raise
    except ValueError as e:
        raise ConfigError(f"sksurv.metrics.{name}: {e}") from e


def cumulative_dynamic_auc_at(
    y_train: Any, y_test: Any, risk: Any, times_h: Any
) -> tuple[np.ndarray, float]:
    """Time-dependent cumulative/dynamic AUC(t) (Uno/Lambert-Chevret, IPCW).

    At each horizon t, cases are records with a flare in (0, t] hours, controls those still
    flare-free after t; censoring is inverse-probability weighted with the Kaplan-Meier
    estimate of the TRAINING censoring distribution (`sksurv.metrics.cumulative_dynamic_auc`).

    Parameters
    ----------
    y_train, y_test
        Survival targets (see module docstring); ``y_train`` only estimates censoring.
    risk : array-like of shape (n_test,) or (n_test, n_times)
        Risk score, higher = flare sooner (e.g. 1 - S(t), or a hazard ratio). Not a
        survival probability: pass ``1 - S(t)`` instead.
    times_h : array-like of shape (n_times,)
        Horizons in hours, inside the test follow-up range.

    Returns
    -------
    auc : ndarray of shape (n_times,)
    mean_auc : float
        AUC(t) averaged with the survival-function weights of scikit-survival.
    """
    from sksurv.metrics import cumulative_dynamic_auc

    ytr, yte = _as_surv(y_train, "y_train"), _as_surv(y_test, "y_test")
    times = _check_times(yte, times_h)
    r = np.asarray(risk, dtype=np.float64)
    if r.shape[0] != len(yte):
        raise ConfigError(f"risk has {r.shape[0]} rows but y_test has {len(yte)}")
    with _sksurv_errors("cumulative_dynamic_auc"):
        auc, mean_auc = cumulative_dynamic_auc(ytr, yte, r, times)
    return np.asarray(auc, dtype=np.float64), float(mean_auc)


def concordance_index_ipcw(
    y_train: Any, y_test: Any, risk: Any, *, tau_h: float | None = None
) -> float:
    """Uno's IPCW concordance index (`sksurv.metrics.concordance_index_ipcw`).

    The fraction of comparable pairs (i flares before j's time) where i has the higher risk,
    weighted by the inverse squared Kaplan-Meier censoring survival of the TRAINING set, so it
    does not depend on the test censoring pattern (Uno et al. 2011).

    Parameters
    ----------
    y_train, y_test
        Survival targets (see module docstring).
    risk : array-like of shape (n_test,)
        Risk score, higher = flare sooner.
    tau_h : float, optional
        Truncation time in hours; pairs are only compared up to it. Default: no truncation.

    Returns
    -------
    float
        C-index in [0, 1]; 0.5 is random ordering.
    """
    from sksurv.metrics import concordance_index_ipcw as _sk_cindex_ipcw

    ytr, yte = _as_surv(y_train, "y_train"), _as_surv(y_test, "y_test")
    r = _as_1d(risk, "risk").astype(np.float64)
    _check_same_length(y_test=yte, risk=r)
    if not yte[yte.dtype.names[0]].any():
        raise ConfigError("the test set has no observed events; the C-index is undefined")
    with _sksurv_errors("concordance_index_ipcw"):
        return float(_sk_cindex_ipcw(ytr, yte, r, tau=tau_h)[0])


def integrated_brier(y_train: Any, y_test: Any, surv_prob: Any, times_h: Any) -> float:
    """Integrated Brier score of survival curves (`sksurv.metrics.integrated_brier_score`).

    The IPCW Brier score of S(t) integrated over ``times_h`` with the trapezoidal rule and
    divided by ``times_h[-1] - times_h[0]``; lower is better.

    Parameters
    ----------
    y_train, y_test
        Survival targets (see module docstring).
    surv_prob : array-like of shape (n_test, n_times)
        Predicted probability of no flare up to each time in ``times_h`` (survival, not risk).
    times_h : array-like of shape (n_times,)
        At least two increasing times in hours, inside the test follow-up range.
    """
    from sksurv.metrics import integrated_brier_score

    ytr, yte = _as_surv(y_train, "y_train"), _as_surv(y_test, "y_test")
    times = _check_times(yte, times_h)
    if times.size < 2 or np.any(np.diff(times) <= 0):
        raise ConfigError(f"times_h must be >= 2 increasing values, got {times.tolist()}")
    s = np.asarray(surv_prob, dtype=np.float64)
    if s.shape != (len(yte), times.size):
        raise ConfigError(f"surv_prob must have shape {(len(yte), times.size)}, got {s.shape}")
    if not ((s >= 0) & (s <= 1)).all():
        raise ConfigError("surv_prob must be survival probabilities in [0, 1]")
    with _sksurv_errors("integrated_brier_score"):
        return float(integrated_brier_score(ytr, yte, s, times))


# ---------------------------------------------------------------------- multi-class


def multiclass_tss(
    y_true: Any, y_pred: Any, *, labels: Sequence[Any] | None = None
) -> dict[str, float]:
    """One-vs-rest TSS per class and the micro-averaged TSS.

    For class k the table counts "k" vs "not k". The micro average pools the four counts over
    all classes before computing TSS (as in Table 3 of the survival-model study).

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        Class labels (e.g. ``"N", "C", "M", "X"``), any hashable scalar type.
    labels : sequence, optional
        Classes to report, in order; default: sorted union of observed and predicted classes.

    Returns
    -------
    dict
        ``{str(label): tss, ..., "micro": tss}``; a class absent from ``y_true`` gives NaN with
        a `DataQualityWarning`.
    """
    t = _as_1d(y_true, "y_true")
    p = _as_1d(y_pred, "y_pred")
    _check_same_length(y_true=t, y_pred=p)
    if labels is None:
        labels = sorted(set(t.tolist()) | set(p.tolist()), key=str)
    if len(labels) < 2:
        raise ConfigError(f"multiclass_tss needs >= 2 classes, got {list(labels)}")
    out: dict[str, float] = {}
    pooled = np.zeros(4, dtype=np.int64)
    for k in labels:
        c = contingency_table(t == k, p == k)
        pooled += np.asarray(c)
        out[str(k)] = _tss(c)
    if "micro" in out:
        raise ConfigError("a class is named 'micro'; rename it")
    out["micro"] = _tss(ContingencyTable(*(int(v) for v in pooled)))
    return out


# ---------------------------------------------------------------------- bootstrap


@dataclass(frozen=True)
class BootstrapInterval:
    """A metric on the full set with a percentile bootstrap interval over regions."""

    estimate: float
    low: float
    high: float
    confidence: float
    n_boot: int
    n_valid: int  # resamples where the metric was defined (finite)


def bootstrap_by_region(
    metric: Callable[..., float],
    groups: Any,
    *arrays: Any,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> BootstrapInterval:
    """Percentile bootstrap interval of ``metric(*arrays)``, resampling whole regions.

    Each resample draws as many regions as there are, with replacement, and keeps all records
    of every drawn region (a region drawn twice contributes its records twice).

    Parameters
    ----------
    metric : callable
        ``metric(*arrays) -> float``, e.g. `true_skill_statistic` or a lambda around
        `roc_auc`.
    groups : array-like of shape (n_samples,)
        Region id of each record (``harpnum``).
    *arrays : array-like of shape (n_samples, ...)
        Arrays passed to ``metric``, indexed together (y_true, y_pred, ...).
    n_boot : int
        Number of resamples.
    confidence : float
        Central interval width in (0, 1).
    seed : int
        Seed of the numpy Generator; equal seeds give equal intervals.

    Returns
    -------
    BootstrapInterval
        Resamples where the metric is undefined (NaN, e.g. no flare among the drawn regions)
        or raises `ConfigError` are left out and counted (``n_boot - n_valid``), with a
        `DataQualityWarning`; fewer than half valid raises `ConfigError`.
    """
    if not (isinstance(n_boot, int) and n_boot >= 2):
        raise ConfigError(f"n_boot must be an int >= 2, got {n_boot!r}")
    if not (0.0 < confidence < 1.0):
        raise ConfigError(f"confidence must be in (0, 1), got {confidence!r}")
    if not arrays:
        raise ConfigError("bootstrap_by_region needs at least one array for the metric")
    g = _as_1d(groups, "groups")
    arrs = [a.to_numpy() if isinstance(a, pl.Series) else np.asarray(a) for a in arrays]
    for i, a in enumerate(arrs):
        if len(a) != len(g):
            raise ConfigError(f"array {i} has {len(a)} rows but groups has {len(g)}")
    codes = np.unique(g, return_inverse=True)[1].ravel()
    order = np.argsort(codes, kind="stable")
    n_groups = int(codes.max()) + 1
    bounds = np.concatenate([[0], np.cumsum(np.bincount(codes, minlength=n_groups))])
    sizes = np.diff(bounds)
    if n_groups < 2:
        raise ConfigError("bootstrap_by_region needs at least 2 regions")

    estimate = float(metric(*arrs))
    rng = np.random.default_rng(seed)
    values = np.full(n_boot, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        for b in range(n_boot):
            pick = rng.integers(0, n_groups, size=n_groups)
            # Row positions of all drawn regions: start offsets repeated over each size.
            lens = sizes[pick]
            starts = np.repeat(bounds[pick] - np.concatenate([[0], np.cumsum(lens)[:-1]]), lens)
            idx = order[starts + np.arange(lens.sum())]
            try:
                values[b] = float(metric(*(a[idx] for a in arrs)))
            except ConfigError:
                values[b] = np.nan
    ok = np.isfinite(values)
    n_valid = int(ok.sum())
    if n_valid < n_boot:
        warnings.warn(
            f"bootstrap_by_region: metric undefined in {n_boot - n_valid} of {n_boot} "
            "resamples; they are left out of the interval",
            DataQualityWarning,
            stacklevel=2,
        )
    if n_valid < n_boot / 2:
        raise ConfigError(
            f"metric undefined in {n_boot - n_valid} of {n_boot} region resamples; "
            "too few regions with events for a bootstrap interval"
        )
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(values[ok], [alpha, 1.0 - alpha])
    logger.info(
        "bootstrap over %d regions, %d/%d valid resamples: %.4g [%.4g, %.4g]",
        n_groups, n_valid, n_boot, estimate, low, high,
    )
    return BootstrapInterval(estimate, float(low), float(high), confidence, n_boot, n_valid)


def validation_scores(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
    """``threshold``, ``n``, ``n_pos`` and, when both classes occur, TSS, HSS (at
    ``p >= threshold``) and ROC AUC: what ``model.json`` records per model."""
    out: dict[str, float] = {"threshold": threshold, "n": int(y.size), "n_pos": int(y.sum())}
    if 0 < y.sum() < y.size:
        pred = p >= threshold
        out["tss"] = true_skill_statistic(y, pred)
        out["hss"] = heidke_skill_score(y, pred)
        out["auc"] = roc_auc(y, p)
    return out
