"""Verification of survival curves by horizon: is ``1 - S(h)`` a usable P(>=M flare within h)?

A survival model gives, per record at ``t_rec`` (UTC), a curve ``S(t)`` on hours after
``t_rec``; ``1 - S(h)`` is its forecast that a >=M flare peaks in ``(t_rec, t_rec + h]``.
For each horizon ``h`` this module scores that forecast against what happened:

* ``auc``: the cumulative/dynamic AUC(h) of ``1 - S(h)`` (cases: a flare in ``(0, h]``,
  controls: flare-free beyond ``h``; censoring inverse-probability weighted with the training
  censoring distribution; `flare_core.metrics.cumulative_dynamic_auc_at`);
* ``bs``: the IPCW Brier score at ``h`` (`sksurv.metrics.brier_score`), ``bs_km`` the same
  for climatology, the Kaplan-Meier curve of the TRAINING records, and
  ``bss = 1 - bs / bs_km``;
* calibration in the large: the mean forecast ``mean_forecast`` against the Kaplan-Meier
  estimate ``observed`` of ``P(T <= h)`` on the test records;
* reliability: per forecast bin, the observed frequency among records whose status at ``h``
  is known (a flare in ``(0, h]``, or followed flare-free beyond ``h``); records censored
  before ``h`` without a flare are left out of that table only;
* ``ibs``: the integrated Brier score of the whole curve (`sksurv.metrics.
  integrated_brier_score`) over ``ibs_times_h``, against the training Kaplan-Meier curve.

Targets are ``(event, time_to_event_h)`` as `flare_core.labels.label_time_to_event` gives
them (hours after ``t_rec``, censored at ``tmax_h``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import polars as pl

from . import metrics
from .errors import ConfigError
from .models.baseline_hazard import step_values

__all__ = ["HORIZONS_H", "SurvivalVerification", "kaplan_meier_curve", "verify_survival"]

logger = logging.getLogger(__name__)

#: Horizons (hours) scored by default.
HORIZONS_H: tuple[float, ...] = (6.0, 12.0, 24.0, 48.0, 72.0)


class SurvivalVerification(NamedTuple):
    """Output of `verify_survival`.

    ``table``: one row per horizon, columns ``horizon_h``, ``n_cases`` (flares in
    ``(0, h]``), ``n_controls`` (followed flare-free beyond ``h``), ``auc``, ``bs``,
    ``bs_km``, ``bss``, ``mean_forecast``, ``climatology`` (``1 - S_KM,train(h)``) and
    ``observed`` (``1 - S_KM,test(h)``). ``reliability``: ``horizon_h`` plus the columns of
    `flare_core.metrics.reliability_bins`. ``ibs``/``ibs_km``: integrated Brier scores of
    the model and of the training Kaplan-Meier curve; ``ibss = 1 - ibs / ibs_km``.
    """

    table: pl.DataFrame
    reliability: pl.DataFrame
    ibs: float
    ibs_km: float
    ibss: float

    def summary(self) -> dict[str, float]:
        """Flat ``{"auc_6h": ..., "bss_6h": ..., "ibs": ..., "ibss": ...}`` for RESULT lines."""
        out: dict[str, float] = {}
        for row in self.table.iter_rows(named=True):
            h = f"{row['horizon_h']:g}h"
            out[f"auc_{h}"] = row["auc"]
            out[f"bss_{h}"] = row["bss"]
        out.update(ibs=self.ibs, ibs_km=self.ibs_km, ibss=self.ibss)
        return out


def kaplan_meier_curve(event: np.ndarray, time_h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Kaplan-Meier estimate ``(times_h, S)``: a right-continuous step curve, S = 1 before
    ``times_h[0]`` (`sksurv.nonparametric.kaplan_meier_estimator`)."""
    from sksurv.nonparametric import kaplan_meier_estimator

    y = metrics.survival_target(event, time_h)
    t, s = kaplan_meier_estimator(y["event"], y["time_h"])
    return np.asarray(t, dtype=np.float64), np.asarray(s, dtype=np.float64)


def _target(y: pl.DataFrame | tuple, name: str) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(y, pl.DataFrame):
        missing = {"event", "time_to_event_h"} - set(y.columns)
        if missing:
            raise ConfigError(f"{name} frame lacks columns {sorted(missing)}")
        return y["event"].to_numpy().astype(bool), y["time_to_event_h"].to_numpy().astype(float)
    e, t = y
    return np.asarray(e).astype(bool), np.asarray(t, dtype=np.float64)


def _brier(ytr: np.ndarray, yte: np.ndarray, surv: np.ndarray, times: np.ndarray) -> np.ndarray:
    from sksurv.metrics import brier_score

    try:
        return np.asarray(brier_score(ytr, yte, surv, times)[1], dtype=np.float64)
    except ValueError as e:
        raise ConfigError(f"sksurv.metrics.brier_score: {e}") from e


def verify_survival(
    y_train: pl.DataFrame | tuple,
    y_test: pl.DataFrame | tuple,
    grid_h: np.ndarray,
    survival: np.ndarray,
    *,
    horizons_h: Sequence[float] = HORIZONS_H,
    ibs_times_h: Sequence[float] | None = None,
    n_bins: int = 10,
) -> SurvivalVerification:
    """Score survival curves by horizon against the training Kaplan-Meier climatology.

    Parameters
    ----------
    y_train : pl.DataFrame or (event, time_h)
        Training targets: ``event`` (0/1) and ``time_to_event_h`` (hours). They give the
        climatology (Kaplan-Meier) and the censoring weights.
    y_test : pl.DataFrame or (event, time_h)
        Targets of the scored records, shape (n,).
    grid_h : ndarray of shape (g,)
        Ascending hours after ``t_rec`` of the curve values (``grid_h[0] = 0`` usually).
    survival : ndarray of shape (n, g)
        ``S(grid_h[j])`` per test record, a right-continuous step curve (1 before grid_h[0]).
    horizons_h : sequence of float
        Horizons in hours, inside the test follow-up (``< max time_to_event_h``).
    ibs_times_h : sequence of float, optional
        Times (hours, ascending) of the integrated Brier score; default every hour from 1 h
        to 120 h, cut below the test follow-up.
    n_bins : int
        Equal-width forecast bins of the reliability table.

    Returns
    -------
    SurvivalVerification

    Notes
    -----
    Takes survival probabilities, not risk scores. Any dataset with survival labels works
    (sun2022 folds, an NRT validation year); training and test records should come from
    disjoint regions.
    """
    e_tr, t_tr = _target(y_train, "y_train")
    e_te, t_te = _target(y_test, "y_test")
    grid = np.asarray(grid_h, dtype=np.float64)
    surv = np.atleast_2d(np.asarray(survival, dtype=np.float64))
    if surv.shape != (t_te.size, grid.size):
        raise ConfigError(f"survival must have shape {(t_te.size, grid.size)}, got {surv.shape}")
    horizons = np.asarray(horizons_h, dtype=np.float64)
    ytr, yte = metrics.survival_target(e_tr, t_tr), metrics.survival_target(e_te, t_te)
    hi = float(t_te.max())
    if ibs_times_h is None:
        ibs_times = np.arange(1.0, 121.0)
        ibs_times = ibs_times[ibs_times < hi]
    else:
        ibs_times = np.asarray(ibs_times_h, dtype=np.float64)

    km_t, km_s = kaplan_meier_curve(e_tr, t_tr)
    te_t, te_s = kaplan_meier_curve(e_te, t_te)
    s_h = step_values(grid, surv, horizons, before=1.0)
    km_h = step_values(km_t, km_s[None, :], horizons, before=1.0)[0]
    obs_h = step_values(te_t, te_s[None, :], horizons, before=1.0)[0]

    auc, _ = metrics.cumulative_dynamic_auc_at(ytr, yte, 1.0 - s_h, horizons)
    bs = _brier(ytr, yte, s_h, horizons)
    bs_km = _brier(ytr, yte, np.broadcast_to(km_h, s_h.shape), horizons)
    rows, rel = [], []
    for j, h in enumerate(horizons):
        case = e_te & (t_te <= h)
        control = t_te > h
        rows.append({
            "horizon_h": float(h), "n_cases": int(case.sum()), "n_controls": int(control.sum()),
            "auc": float(auc[j]), "bs": float(bs[j]), "bs_km": float(bs_km[j]),
            "bss": float(1.0 - bs[j] / bs_km[j]) if bs_km[j] > 0 else float("nan"),
            "mean_forecast": float(np.mean(1.0 - s_h[:, j])),
            "climatology": float(1.0 - km_h[j]), "observed": float(1.0 - obs_h[j]),
        })
        known = case | control
        rel.append(metrics.reliability_bins(case[known], np.clip(1.0 - s_h[known, j], 0, 1),
                                            n_bins=n_bins)
                   .with_columns(pl.lit(float(h)).alias("horizon_h")))
    s_ibs = step_values(grid, surv, ibs_times, before=1.0)
    km_ibs = np.broadcast_to(step_values(km_t, km_s[None, :], ibs_times, before=1.0)[0],
                             s_ibs.shape)
    ibs = metrics.integrated_brier(ytr, yte, np.clip(s_ibs, 0.0, 1.0), ibs_times)
    ibs_km = metrics.integrated_brier(ytr, yte, km_ibs, ibs_times)
    table = pl.DataFrame(rows)
    reliability = pl.concat(rel).select("horizon_h", pl.exclude("horizon_h"))
    logger.info("survival verification: %d test records, IBS %.4f vs KM %.4f", t_te.size,
                ibs, ibs_km)
    return SurvivalVerification(table, reliability, ibs, ibs_km,
                                1.0 - ibs / ibs_km if ibs_km > 0 else float("nan"))
