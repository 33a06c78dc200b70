"""The survival paper's model chain as one estimator.

flare-class forest -> Cox-Time -> restricted mean lifetime -> warning SVM, in the spirit of
scikit-survival's ``Stacking``: `SurvivalChain.fit` fits each stage on what the previous stage
gives it, `SurvivalChain.predict` runs the stages in order and returns one frame.

* **Flare-class forest** (`flare_core.models.flare_class.FlareClassForest`, optional): the
  band (none / M / M5+ / X) of the next >=M flare. Cox-Time is trained on the forest's
  OUT-OF-FOLD bands (forests of other regions, `out_of_fold_bands`), never on its in-sample
  answers; at prediction time the fitted forest's band is Cox-Time's input, and its
  P(X | >=M) splits the survival >=M probability into ``p_x24_survival``.
* **Cox-Time** (`flare_core.models.cox_time.CoxTimeModel`): survival curves of the time to
  the next >=M flare, ``p_m24_survival`` = 1 - S(24 h), and the restricted mean lifetime.
* **Warning SVM** (`flare_core.models.warning.WarningSVM`, optional): for each record at
  ``t`` the region's mean-lifetime track is smoothed causally
  (`flare_core.models.lifetime.smooth_lifetime_track`), a line is fitted to the smoothed
  values in ``[t - window_h, t]``, and the SVM classifies ``(slope, mean)``; the warning is
  raised when the class is ``within`` (a >=M flare within ``lead_h`` = 24 h). The SVM is
  fitted on windows of the VALIDATION records (``X_val``), whose lifetimes come from a
  Cox-Time model that never saw them (in-sample lifetimes would be over-confident); those
  windows are kept (``train_windows_``) so evaluation can redo the paper's lead-time sweep.

Inputs: Cox-Time and the forest need finite inputs. A missing feature value is replaced by
its training mean, except ``history__hours_since_*`` (null = no such flare yet), which
becomes the largest training value (a long time ago). The binned B/C flare counts (0, 1, 2,
>=3) are categorical Cox-Time inputs, and so is the forest's band when the forest is part of
the chain.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import polars as pl
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from ..config import settings_object
from ..errors import ConfigError, ModelError
from .cox_time import CoxTimeModel
from .flare_class import FlareClassForest
from .persistence import ModelState, StateLayout
from .warning import WarningSVM

__all__ = ["SurvivalChain", "CHAIN_MEMBERS", "TRACK_DEFAULTS", "survival_target"]

logger = logging.getLogger(__name__)

#: The chain's stages by their model names (`flare_core.models.registry`), in fitting order.
CHAIN_MEMBERS: tuple[str, ...] = ("flare_class_forest", "cox_time", "warning_svm")

#: Flare-history counts given to Cox-Time as categorical inputs, binned 0, 1, 2, >=3 (as the
#: survival paper's binned B/C counts).
_COX_CATEGORICAL = ("history__b_count", "history__c_count")
_COX_COUNT_BINS = 3
#: Cox-Time durations are rounded UP to this step (hours) before fitting: the survival grid
#: has this resolution anyway, the Breslow baseline then has at most tmax_h / step jump times
#: (instead of one per event), which makes survival curves ~10x cheaper, and rounding up keeps
#: "flare within horizon_h" exactly as in the labels.
_COX_TIME_STEP_H = 1.0

#: Track settings of the warning (survival paper Sect. 5.3): causal Gaussian smoothing of the
#: mean-lifetime track (sigma, hours), the window of the (slope, mean) fit and its overlap.
TRACK_DEFAULTS: dict[str, float] = {"sigma_h": 6.0, "window_h": 4.0, "overlap_h": 1.0}


def survival_target(frame: pl.DataFrame) -> np.ndarray:
    """scikit-survival ``Surv`` array (event, time) of the labels ``event``/``time_to_event_h``."""
    from sksurv.util import Surv

    for c in ("event", "time_to_event_h"):
        if c not in frame.columns:
            raise ModelError(f"label column {c!r} not in the dataset")
    return Surv.from_arrays(event=frame["event"].cast(pl.Boolean).to_numpy(),
                            time=frame["time_to_event_h"].cast(pl.Float64).to_numpy())


class SurvivalChain(BaseEstimator):
    """Flare-class forest -> Cox-Time -> mean lifetime -> warning SVM, fitted and run as one.

    Parameters
    ----------
    features : sequence of str
        Input columns (features and flare history) of the frames given to `fit`/`predict`.
    forest, warning : bool
        Include the flare-class forest / the warning SVM (Cox-Time is always there).
    forest_params, cox_params, warning_params : mapping, optional
        Settings of `FlareClassForestConfig`, `CoxTimeConfig` and `WarningSVMConfig`
        (``warning_params`` may also hold the track settings of `TRACK_DEFAULTS`).
    tmax_h, horizon_h : float
        Follow-up of the labels and the forecast horizon (hours).
    seed : int
    device : str
        torch device of Cox-Time.

    Attributes
    ----------
    features_ : list of str
    fill_values_ : list of float
        Training imputation value per feature (shared by the forest and Cox-Time).
    forest_ : FlareClassForest or None
    cox_ : CoxTimeModel
    warning_svm_ : WarningSVM or None
    train_windows_ : pl.DataFrame or None
        The windows the SVM was fitted on.
    sigma_h_, window_h_, overlap_h_ : float
        Track settings of the warning.
    """

    def __init__(self, features: Sequence[str] = (), *, forest: bool = True,
                 warning: bool = True, forest_params: Mapping[str, Any] | None = None,
                 cox_params: Mapping[str, Any] | None = None,
                 warning_params: Mapping[str, Any] | None = None, tmax_h: float = 144.0,
                 horizon_h: float = 24.0, seed: int = 0, device: str = "cpu") -> None:
        self.features = features
        self.forest = forest
        self.warning = warning
        self.forest_params = forest_params
        self.cox_params = cox_params
        self.warning_params = warning_params
        self.tmax_h = tmax_h
        self.horizon_h = horizon_h
        self.seed = seed
        self.device = device

    # -- members ----------------------------------------------------------------------------

    @property
    def members_(self) -> tuple[str, ...]:
        """Model names of the fitted stages (`CHAIN_MEMBERS` order)."""
        check_is_fitted(self, "cox_")
        present = {"flare_class_forest": self.forest_ is not None, "cox_time": True,
                   "warning_svm": self.warning_svm_ is not None}
        return tuple(m for m in CHAIN_MEMBERS if present[m])

    @property
    def lookback_h(self) -> float:
        """Hours of a region's earlier records `predict` reads for its newest one: the
        warning's line-fit window plus the ``4 sigma_h`` reach of the causal smoothing (0
        without the warning)."""
        if getattr(self, "warning_svm_", None) is None:
            return 0.0
        return self.window_h_ + 4.0 * self.sigma_h_

    # -- inputs -----------------------------------------------------------------------------

    def matrix(self, X: pl.DataFrame) -> np.ndarray:  # noqa: N803
        """Imputed feature matrix (n, p) of ``X``."""
        check_is_fitted(self, "fill_values_")
        return X.select(
            pl.col(c).cast(pl.Float64).fill_nan(None).fill_null(v)
            for c, v in zip(self.features_, self.fill_values_, strict=True)
        ).to_numpy()

    def _categorical(self, X: pl.DataFrame, bands: np.ndarray | None) -> np.ndarray:  # noqa: N803
        cats = [
            np.minimum(X[c].cast(pl.Float64).fill_null(0.0).to_numpy(), _COX_COUNT_BINS)
            .astype(np.int64) if c in X.columns else np.zeros(X.height, np.int64)
            for c in _COX_CATEGORICAL
        ]
        if bands is not None:
            cats.append(np.asarray(bands, dtype=np.int64))
        return np.column_stack(cats)

    @staticmethod
    def _fill_values(X: pl.DataFrame, features: Sequence[str]) -> list[float]:  # noqa: N803
        out = []
        for c in features:
            col = X[c].cast(pl.Float64).fill_nan(None)
            v = col.max() if c.startswith("history__hours_since") else col.mean()
            out.append(0.0 if v is None or not math.isfinite(v) else float(v))
        return out

    def _track_settings(self) -> tuple[dict[str, float], dict[str, Any]]:
        params = dict(self.warning_params or {})
        track = {k: float(params.pop(k, v)) for k, v in TRACK_DEFAULTS.items()}
        return track, params

    # -- fit --------------------------------------------------------------------------------

    def fit(self, X: pl.DataFrame, y: np.ndarray | None = None, *,  # noqa: N803
            X_val: pl.DataFrame | None = None) -> SurvivalChain:  # noqa: N803
        """Fit every stage.

        Parameters
        ----------
        X : pl.DataFrame
            Training records: ``harpnum``, ``t_rec``, the ``features`` and, for the forest,
            ``next_flare_flux_wm2`` (the class of the next >=M flare, a label).
        y : structured array, optional
            scikit-survival ``Surv`` (event, time in hours) of ``X``; default
            `survival_target` of ``X``'s label columns.
        X_val : pl.DataFrame, optional
            Validation records (same columns, with labels): Cox-Time's early stopping and
            the warning SVM's training windows. Without it (the refit on all records)
            Cox-Time runs its configured epochs and the SVM is fitted on the lifetimes of
            the training records themselves.
        """
        from .cox_time import CoxTimeConfig, CoxTimeModel, SurvivalArrays

        y = survival_target(X) if y is None else y
        event_field, time_field = y.dtype.names
        self.features_ = list(self.features)
        if not self.features_:
            raise ConfigError("SurvivalChain needs feature columns")
        self.fill_values_ = self._fill_values(X, self.features_)
        x = self.matrix(X)
        self.forest_ = None
        train_bands = None
        if self.forest:
            train_bands = self._fit_forest(X, x, y[time_field], y[event_field])
        cfg = settings_object(CoxTimeConfig, dict(self.cox_params or {}), seed=self.seed,
                             device=self.device, tmax_h=self.tmax_h,
                             grid_step_h=_COX_TIME_STEP_H)

        def arrays(frame: pl.DataFrame, x: np.ndarray, bands: np.ndarray | None,
                   time_h: np.ndarray, event: np.ndarray) -> SurvivalArrays:
            step = _COX_TIME_STEP_H
            durations = np.ceil(np.asarray(time_h, dtype=np.float64) / step - 1e-9) * step
            return SurvivalArrays(x=x, durations_h=np.maximum(durations, 0.0),
                                  events=np.asarray(event), x_cat=self._categorical(frame, bands))

        validation = None
        if X_val is not None:
            y_val = survival_target(X_val)
            x_val = self.matrix(X_val)
            validation = arrays(X_val, x_val, self._bands_of(x_val), y_val["time"],
                                y_val["event"])
        self.cox_ = CoxTimeModel(cfg)
        # no validation (the refit): cfg.epochs epochs (the selected number), no early stopping
        self.cox_.fit(arrays(X, x, train_bands, y[time_field], y[event_field]),
                      validation=validation)
        self.warning_svm_ = None
        self.train_windows_ = None
        track, svm_params = self._track_settings()
        self.sigma_h_, self.window_h_, self.overlap_h_ = (track["sigma_h"], track["window_h"],
                                                          track["overlap_h"])
        if self.warning:
            self._fit_warning(X_val if X_val is not None else X, svm_params)
        return self

    def _fit_forest(self, X: pl.DataFrame, x: np.ndarray, time_h: np.ndarray,  # noqa: N803
                    event: np.ndarray) -> np.ndarray:
        """Fit the forest; return the OUT-OF-FOLD bands Cox-Time trains on."""
        from .flare_class import (
            FlareClassForest,
            FlareClassForestConfig,
            flare_class_band,
            out_of_fold_bands,
        )

        if "next_flare_flux_wm2" not in X.columns:
            raise ModelError("label column 'next_flare_flux_wm2' not in the dataset")
        cfg = settings_object(FlareClassForestConfig, dict(self.forest_params or {}),
                             seed=self.seed)
        bands = flare_class_band(
            X["next_flare_flux_wm2"].cast(pl.Float64).fill_null(np.nan).to_numpy(),
            np.asarray(time_h), np.asarray(event), tmax_h=self.tmax_h)
        self.forest_ = FlareClassForest(cfg).fit(x, bands)
        return out_of_fold_bands(x, bands, X["harpnum"].to_numpy(), cfg)

    def _bands_of(self, x: np.ndarray) -> np.ndarray | None:
        """The forest's band of each record (the code `predict` gives Cox-Time)."""
        if self.forest_ is None:
            return None
        return self.forest_.predict_proba(x).argmax(axis=1).astype(np.int64)

    def _fit_warning(self, frame: pl.DataFrame, svm_params: Mapping[str, Any]) -> None:
        from .warning import WarningSVM, WarningSVMConfig

        cfg = settings_object(WarningSVMConfig, svm_params, seed=self.seed, lead_h=self.horizon_h,
                             tmax_h=self.tmax_h)
        life = self._cox_outputs(frame, self.matrix(frame))[1]
        windows = self.lifetime_windows(self._track(frame, life))
        self.warning_svm_ = WarningSVM(cfg).fit(windows)
        self.train_windows_ = windows

    # -- predict ----------------------------------------------------------------------------

    def _cox_outputs(self, X: pl.DataFrame, x: np.ndarray,  # noqa: N803
                     proba: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray,
                                                               np.ndarray, np.ndarray]:
        """(p_m24, mean lifetime, grid, survival curves) of Cox-Time for ``X``."""
        from .lifetime import restricted_mean_lifetime

        bands = (self._bands_of(x) if proba is None
                 else proba.argmax(axis=1).astype(np.int64))
        x_cat = self._categorical(X, bands)
        grid, surv = self.cox_.predict_survival(x, x_cat)
        j = int(np.searchsorted(grid, self.horizon_h))
        if j < grid.size and np.isclose(grid[j], self.horizon_h):
            p24 = 1.0 - surv[:, j]
        else:
            p24 = self.cox_.predict_event_probability(x, x_cat, horizon_h=self.horizon_h)
        # durations were fitted on whole multiples of the grid step, so the curve only jumps
        # at grid points and its step integral over the grid is the exact restricted mean
        life = restricted_mean_lifetime(grid, surv, float(grid[-1]))
        return np.clip(p24, 0.0, 1.0), life, grid, surv

    @staticmethod
    def _track(X: pl.DataFrame, life: np.ndarray) -> pl.DataFrame:  # noqa: N803
        keep = [c for c in ("harpnum", "t_rec", "time_to_event_h", "event") if c in X.columns]
        return X.select(keep).with_columns(pl.Series("mean_lifetime_h", life))

    def predict(self, X: pl.DataFrame, *, rows: np.ndarray | None = None  # noqa: N803
                ) -> pl.DataFrame:
        """Every stage's output for every record of ``X`` (input order).

        ``rows``: optional boolean mask (n,) of the records whose warning is wanted; the
        warning SVM classifies only those (``warning_24h`` null, ``warning_class_code`` -1
        elsewhere). The forest and Cox-Time predict every record: the warning reads the
        lifetime track of the earlier records.

        Returns
        -------
        pl.DataFrame
            ``p_m24_survival`` (1 - S(24 h)), ``mean_lifetime_h``, ``survival_grid_h`` and
            ``survival_curve`` (lists); with the forest also ``flare_band_code``,
            ``p_x_given_m_forest`` and ``p_x24_survival``; with the warning also
            ``warning_24h`` (bool, null where the window holds < 2 records) and
            ``warning_class_code`` (-1 there).
        """
        check_is_fitted(self, "cox_")
        x = self.matrix(X)
        out: dict[str, Any] = {}
        proba = None
        if self.forest_ is not None:
            proba = self.forest_.predict_proba(x)
            out["flare_band_code"] = proba.argmax(axis=1).astype(np.int64)
            out["p_x_given_m_forest"] = proba[:, 3] / np.maximum(proba[:, 1:].sum(axis=1),
                                                                 1e-12)
        p24, life, grid, surv = self._cox_outputs(X, x, proba)
        out["p_m24_survival"] = p24
        out["mean_lifetime_h"] = life
        out["survival_grid_h"] = pl.Series("survival_grid_h", [grid.tolist()],
                                           dtype=pl.List(pl.Float64)).new_from_index(0, X.height)
        # from the 2-D array directly (700x faster than via Python lists at 10^5-10^6 records)
        out["survival_curve"] = pl.Series(
            "survival_curve", np.ascontiguousarray(surv, dtype=np.float64)).cast(
            pl.List(pl.Float64))
        if self.forest_ is not None:
            out["p_x24_survival"] = p24 * out["p_x_given_m_forest"]
        if self.warning_svm_ is not None:
            warning, codes = self.warn(self._track(X, life), rows=rows)
            out["warning_24h"] = pl.Series("warning_24h", warning).fill_nan(None).cast(
                pl.Boolean)
            out["warning_class_code"] = codes
        return pl.DataFrame([v.alias(k) if isinstance(v, pl.Series) else pl.Series(k, v)
                             for k, v in out.items()])

    # -- the warning's track ------------------------------------------------------------------

    def smooth(self, track: pl.DataFrame) -> pl.DataFrame:
        """``track`` (harpnum, t_rec, mean_lifetime_h, ...) sorted, with the causal
        ``mean_lifetime_smooth_h``."""
        from .lifetime import smooth_lifetime_track

        return smooth_lifetime_track(track, sigma_h=self.sigma_h_, causal=True)

    def lifetime_windows(self, track: pl.DataFrame) -> pl.DataFrame:
        """The SVM's own windows (`flare_core.models.warning.lifetime_windows`) of a track."""
        from .warning import lifetime_windows

        return lifetime_windows(self.smooth(track), window_h=self.window_h_,
                                overlap_h=self.overlap_h_)

    def record_windows(self, track: pl.DataFrame) -> pl.DataFrame:
        """``slope_h_per_h`` and ``mean_h`` of the window ``[t_rec - window_h, t_rec]`` of
        every record (input order); null where the window holds fewer than 2 records."""
        idx = "_row"
        sm = self.smooth(track.with_row_index(idx))
        harp = sm["harpnum"].to_numpy()
        t_h = sm["t_rec"].dt.epoch("us").to_numpy() / 3.6e9
        v = sm["mean_lifetime_smooth_h"].fill_null(np.nan).to_numpy()
        slope = np.full(v.size, np.nan)
        mean = np.full(v.size, np.nan)
        bounds = np.flatnonzero(np.diff(harp)) + 1
        for rows in np.split(np.arange(v.size), bounds):
            if rows.size == 0:
                continue
            t = t_h[rows] - t_h[rows[0]]
            y = v[rows]
            ok = np.isfinite(y)
            y = np.where(ok, y, 0.0)
            n_c, t_c, y_c, tt_c, ty_c = (
                np.concatenate([[0.0], np.cumsum(np.where(ok, a, 0.0))])
                for a in (np.ones_like(t), t, y, t * t, t * y)
            )
            lo = np.searchsorted(t, t - self.window_h_ - 1e-9, side="left")
            hi = np.arange(1, t.size + 1)
            n = n_c[hi] - n_c[lo]
            st, sy = t_c[hi] - t_c[lo], y_c[hi] - y_c[lo]
            stt, sty = tt_c[hi] - tt_c[lo], ty_c[hi] - ty_c[lo]
            with np.errstate(invalid="ignore", divide="ignore"):
                denom = n * stt - st * st
                sl = np.where((n >= 2) & (denom > 1e-12), (n * sty - st * sy) / denom, np.nan)
                mn = np.where(n >= 2, sy / n, np.nan)
            slope[rows], mean[rows] = sl, mn
        out = pl.DataFrame({idx: sm[idx], "slope_h_per_h": slope, "mean_h": mean})
        return out.sort(idx).drop(idx).with_columns(pl.all().fill_nan(None))

    def warn(self, track: pl.DataFrame, *, rows: np.ndarray | None = None
             ) -> tuple[np.ndarray, np.ndarray]:
        """(warning_24h as float 1/0/NaN, SVM class code or -1) for every record (for the
        records of the boolean mask ``rows`` only, NaN and -1 elsewhere, when given)."""
        from .warning import WARNING_CLASSES

        check_is_fitted(self, "warning_svm_")
        w = self.record_windows(track)
        ok = (w["slope_h_per_h"].is_not_null() & w["mean_h"].is_not_null()).to_numpy()
        if rows is not None:
            rows = np.asarray(rows, dtype=bool)
            if rows.shape != ok.shape:
                raise ModelError(f"rows must be a boolean mask of {ok.size} records, got "
                                 f"shape {rows.shape}")
            ok &= rows
        codes = np.full(w.height, -1, dtype=np.int64)
        if ok.any():
            codes[ok] = self.warning_svm_.predict(w.filter(pl.Series(ok)))
        warning = np.where(ok, (codes == WARNING_CLASSES.index("within")).astype(float), np.nan)
        return warning, codes

    # -- state (files: `flare_core.models.persistence.save_stages` / `load_stages`) --------

    #: One directory per stage (the layout of every MODEL_DIR since format 1):
    #: ``flare_class_forest/`` holds ``forest/`` and ``inputs.json``; ``cox_time/`` holds
    #: ``cox_time/`` and ``inputs.json``; ``warning_svm/`` holds ``svm/``, ``track.json`` and
    #: ``train_windows.parquet``.
    stage_layouts: ClassVar[dict[str, StateLayout]] = {
        "flare_class_forest": StateLayout(meta_file="inputs.json",
                                          what="flare-class forest directory",
                                          models={"forest": FlareClassForest}),
        "cox_time": StateLayout(meta_file="inputs.json", what="Cox-Time survival directory",
                                models={"cox_time": CoxTimeModel}),
        "warning_svm": StateLayout(meta_file="track.json", what="lifetime warning directory",
                                   models={"svm": WarningSVM},
                                   frames=("train_windows.parquet",)),
    }

    def _get_stage_states(self) -> dict[str, ModelState]:
        """``{stage: ModelState}`` of the fitted stages (`members_`)."""
        check_is_fitted(self, "cox_")
        inputs = {"features": self.features_, "fill_values": self.fill_values_}
        states = {"cox_time": ModelState(
            meta={**inputs, "uses_forest": self.forest_ is not None,
                  "categorical": list(_COX_CATEGORICAL), "count_bins": _COX_COUNT_BINS},
            models={"cox_time": self.cox_})}
        if self.forest_ is not None:
            states["flare_class_forest"] = ModelState(meta=inputs,
                                                      models={"forest": self.forest_})
        if self.warning_svm_ is not None:
            states["warning_svm"] = ModelState(
                meta={"sigma_h": self.sigma_h_, "window_h": self.window_h_,
                      "overlap_h": self.overlap_h_},
                models={"svm": self.warning_svm_},
                frames={"train_windows.parquet": self.train_windows_})
        return {m: states[m] for m in CHAIN_MEMBERS if m in states}

    @classmethod
    def _from_stage_states(cls, states: Mapping[str, ModelState]) -> SurvivalChain:
        """A fitted chain from `_get_stage_states` output (``cox_time`` required)."""
        if "cox_time" not in states:
            raise ModelError("a survival chain needs its cox_time directory")
        inputs = states["cox_time"].meta
        forest = states.get("flare_class_forest")
        if bool(inputs["uses_forest"]) != (forest is not None):
            raise ModelError(f"Cox-Time was trained "
                             f"{'with' if inputs['uses_forest'] else 'without'} the "
                             "flare-class forest, but the model directory "
                             f"{'lacks' if inputs['uses_forest'] else 'has'} it")
        warning = states.get("warning_svm")
        self = cls(inputs["features"], forest=forest is not None, warning=warning is not None)
        self.features_ = list(inputs["features"])
        self.fill_values_ = [float(v) for v in inputs["fill_values"]]
        self.cox_ = states["cox_time"].models["cox_time"]
        self.tmax_h = float(self.cox_.config.tmax_h)
        self.forest_ = None if forest is None else forest.models["forest"]
        track = TRACK_DEFAULTS if warning is None else warning.meta
        self.sigma_h_, self.window_h_, self.overlap_h_ = (
            float(track["sigma_h"]), float(track["window_h"]), float(track["overlap_h"]))
        self.warning_svm_ = None if warning is None else warning.models["svm"]
        self.train_windows_ = (None if warning is None
                               else warning.frames["train_windows.parquet"])
        return self
