"""Warning SVM on the mean-lifetime track (survival paper, A&A 703, A99, 2025, Sect. 5.3).

A region's smoothed mean-lifetime track (`flare_core.models.lifetime.smooth_lifetime_track`,
causal) is cut into windows of ``window_h = 4 h`` overlapping by ``overlap_h = 1 h`` (a new
window every 3 h). A least-squares line through each window gives ``(slope, mean)``; a falling
mean lifetime signals an approaching flare. A one-vs-one SVM (`sklearn.svm.SVC`,
``decision_function_shape="ovo"``) classifies a window, issued at its last record ``t_issue``:

* ``within`` : a >=M flare peaks in ``(t_issue, t_issue + lead_h]``;
* ``after``  : the next >=M flare peaks in ``(t_issue + lead_h, t_issue + tmax_h]``;
* ``none``   : no >=M flare peaks within ``tmax_h``.

``lead_h`` (the paper's x) can be anything from 8 to 60 h; `sweep_lead_time` scores the sweep
(the paper's Fig. 12) as a table. Windows whose label is unknown (censored before ``tmax_h``
with no flare seen, so neither ``after`` nor ``none`` is certain) are dropped and counted.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import numpy as np
import polars as pl
from sklearn.base import BaseEstimator

from ..config import check_positive
from ..errors import ConfigError
from ._inputs import check_fitted, validate_params
from .persistence import ModelState, StateLayout

__all__ = [
    "WARNING_CLASSES",
    "WarningSVMConfig",
    "WarningSVM",
    "lifetime_windows",
    "warning_labels",
    "warning_tss",
    "sweep_lead_time",
]

logger = logging.getLogger(__name__)

#: Class names; the code of a class is its index.
WARNING_CLASSES: tuple[str, ...] = ("within", "after", "none")
_US_PER_H = 3_600_000_000
_FORMAT_VERSION = 1
_FEATURES = ("slope_h_per_h", "mean_h")


def lifetime_windows(track: pl.DataFrame, *, window_h: float = 4.0, overlap_h: float = 1.0,
                     value_col: str = "mean_lifetime_smooth_h", min_records: int = 2
                     ) -> pl.DataFrame:
    """Piecewise linear fits of each region's mean-lifetime track over overlapping windows.

    Parameters
    ----------
    track : pl.DataFrame
        ``harpnum``, ``t_rec`` (UTC), ``value_col`` (hours); optional ``time_to_event_h`` and
        ``event`` labels are carried over from each window's last record.
    window_h, overlap_h : float
        Window length and overlap in hours; windows start every ``window_h - overlap_h``
        hours from the region's first record and cover ``[t_start, t_start + window_h]``.
    value_col : str
        Track column (use a *causal* smoothing for forecasting).
    min_records : int
        Windows with fewer non-null records are skipped (counted in the log).

    Returns
    -------
    pl.DataFrame
        One row per window: ``harpnum``, ``t_start``, ``t_issue`` (last record in the window,
        UTC; the window uses no record after it), ``n_records``, ``slope_h_per_h`` (hours of
        mean lifetime per hour), ``mean_h`` (hours), plus ``time_to_event_h``/``event`` of the
        record at ``t_issue`` when the track has them.
    """
    check_positive("window_h", window_h)
    if not 0 <= overlap_h < window_h:
        raise ConfigError(f"overlap_h must be in [0, window_h), got {overlap_h!r}")
    need = {"harpnum", "t_rec", value_col}
    if need - set(track.columns):
        raise ConfigError(f"track lacks column(s) {sorted(need - set(track.columns))}")
    labelled = {"time_to_event_h", "event"} <= set(track.columns)
    df = track.filter(pl.col(value_col).is_not_null() & pl.col(value_col).is_not_nan())
    df = df.sort("harpnum", "t_rec")
    harp = df["harpnum"].to_numpy()
    t_us = df["t_rec"].dt.epoch("us").to_numpy()
    v = df[value_col].to_numpy().astype(np.float64)
    tte = df["time_to_event_h"].to_numpy() if labelled else None
    evt = df["event"].to_numpy() if labelled else None
    step_us = int((window_h - overlap_h) * _US_PER_H)
    win_us = int(window_h * _US_PER_H)
    rows: dict[str, list] = {k: [] for k in ("harpnum", "t_start", "t_issue", "n_records",
                                             "slope_h_per_h", "mean_h", "time_to_event_h",
                                             "event")}
    skipped = 0
    bounds = np.flatnonzero(np.diff(harp)) + 1
    for idx in np.split(np.arange(v.size), bounds):
        if idx.size == 0:
            continue
        t = t_us[idx]
        starts = np.arange(t[0], t[-1] + 1, step_us)
        lo = np.searchsorted(t, starts, side="left")
        hi = np.searchsorted(t, starts + win_us, side="right")
        for s, a, b in zip(starts, lo, hi, strict=True):
            if b - a < min_records:
                skipped += 1
                continue
            r = idx[a:b]
            th = (t_us[r] - t_us[r[0]]) / _US_PER_H
            slope, _ = np.polyfit(th, v[r], 1)
            rows["harpnum"].append(int(harp[r[0]]))
            rows["t_start"].append(int(s))
            rows["t_issue"].append(int(t_us[r[-1]]))
            rows["n_records"].append(int(b - a))
            rows["slope_h_per_h"].append(float(slope))
            rows["mean_h"].append(float(v[r].mean()))
            rows["time_to_event_h"].append(float(tte[r[-1]]) if labelled else None)
            rows["event"].append(int(evt[r[-1]]) if labelled else None)
    if skipped:
        logger.info("lifetime_windows: %d window(s) with < %d records skipped", skipped,
                    min_records)
    out = pl.DataFrame({
        "harpnum": pl.Series(rows["harpnum"], dtype=pl.Int64),
        "t_start": pl.Series(rows["t_start"], dtype=pl.Int64).cast(pl.Datetime("us", "UTC")),
        "t_issue": pl.Series(rows["t_issue"], dtype=pl.Int64).cast(pl.Datetime("us", "UTC")),
        "n_records": pl.Series(rows["n_records"], dtype=pl.Int64),
        "slope_h_per_h": pl.Series(rows["slope_h_per_h"], dtype=pl.Float64),
        "mean_h": pl.Series(rows["mean_h"], dtype=pl.Float64),
    })
    if labelled:
        out = out.with_columns(
            pl.Series("time_to_event_h", rows["time_to_event_h"], dtype=pl.Float64),
            pl.Series("event", rows["event"], dtype=pl.Int8))
    return out


def warning_labels(time_to_event_h: np.ndarray, event: np.ndarray, *, lead_h: float,
                   tmax_h: float = 144.0) -> tuple[np.ndarray, np.ndarray]:
    """Class codes (see `WARNING_CLASSES`) and a mask of windows whose class is known.

    ``event = 1`` and ``time <= lead_h``: within; ``event = 1`` and ``lead_h < time <= tmax_h``:
    after; ``event = 0`` censored at ``>= tmax_h``: none. ``event = 0`` censored earlier is
    unknown (mask False).
    """
    check_positive("lead_h", lead_h)
    check_positive("tmax_h", tmax_h)
    if lead_h >= tmax_h:
        raise ConfigError(f"lead_h={lead_h} must be below tmax_h={tmax_h}")
    t = np.asarray(time_to_event_h, dtype=np.float64)
    e = np.asarray(event).astype(bool)
    ev_in = e & (t <= tmax_h)
    codes = np.where(ev_in & (t <= lead_h), 0, np.where(ev_in, 1, 2)).astype(np.int64)
    known = ev_in | (t >= tmax_h)
    return codes, known


@dataclass(frozen=True)
class WarningSVMConfig:
    """Hyper-parameters of `WarningSVM` (lead time ``lead_h`` = the paper's x, hours)."""

    lead_h: float = 24.0
    tmax_h: float = 144.0
    c: float = 1.0
    kernel: str = "rbf"
    gamma: str | float = "scale"
    class_weight: str | None = "balanced"
    seed: int = 0
    #: Fit on at most this many windows (a class-stratified, seeded subsample; None = all).
    #: The input is two numbers per window (slope, mean), which a few thousand windows cover;
    #: an RBF SVM's prediction cost grows with its support vectors, i.e. with the training
    #: windows: 39 k NRT windows made predicting 1 M records take minutes.
    max_train: int | None = 5000

    def __post_init__(self) -> None:
        check_positive("lead_h", self.lead_h)
        if self.max_train is not None and not (isinstance(self.max_train, int)
                                               and self.max_train >= 10):
            raise ConfigError(f"max_train must be an int >= 10 or None, got {self.max_train!r}")
        check_positive("tmax_h", self.tmax_h)
        check_positive("c", self.c)
        if self.lead_h >= self.tmax_h:
            raise ConfigError(f"lead_h={self.lead_h} must be below tmax_h={self.tmax_h}")
        if self.class_weight not in (None, "balanced"):
            raise ConfigError(f"class_weight must be None or 'balanced', got {self.class_weight!r}")
        if self.kernel not in ("linear", "rbf", "poly", "sigmoid"):
            raise ConfigError(f"unknown kernel {self.kernel!r}")


def _features(windows: pl.DataFrame | np.ndarray) -> np.ndarray:
    """(n, 2) float64 ``(slope_h_per_h, mean_h)`` of `lifetime_windows` rows (or an array)."""
    if not isinstance(windows, pl.DataFrame):
        x = np.asarray(windows, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != len(_FEATURES):
            raise ConfigError(f"window features must have shape (n, 2) {_FEATURES}, got "
                              f"{x.shape}")
        return x
    missing = set(_FEATURES) - set(windows.columns)
    if missing:
        raise ConfigError(f"windows lack column(s) {sorted(missing)} (use lifetime_windows)")
    return windows.select(_FEATURES).to_numpy().astype(np.float64)


def _survival_target(windows: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(time_to_event_h, event)`` of a sksurv ``Surv`` target, or of the window columns."""
    if y is None:
        if not isinstance(windows, pl.DataFrame):
            raise ConfigError("WarningSVM.fit needs a Surv target y with array windows")
        missing = {"time_to_event_h", "event"} - set(windows.columns)
        if missing:
            raise ConfigError(f"windows lack label column(s) {sorted(missing)}; pass y")
        return windows["time_to_event_h"].to_numpy(), windows["event"].to_numpy()
    from sksurv.util import check_y_survival

    try:
        event, time_h = check_y_survival(y, allow_all_censored=True)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"y must be a sksurv Surv structured array: {e}") from e
    return time_h, event.astype(np.int64)


class WarningSVM(BaseEstimator):
    """One-vs-one SVM over ``(slope, mean)`` of mean-lifetime windows (standardised).

    A scikit-learn estimator: ``fit(X, y)`` with ``X`` the `lifetime_windows` frame (or its
    ``(slope_h_per_h, mean_h)`` as an (n, 2) array) and ``y`` a sksurv ``Surv`` target of each
    window's issue record, or None to read ``time_to_event_h``/``event`` from the frame.
    The class of a window follows from its target (`warning_labels`).
    """

    _parameter_constraints: ClassVar[dict] = {"config": [WarningSVMConfig, None]}

    def __init__(self, config: WarningSVMConfig | None = None) -> None:
        self.config = config if config is not None else WarningSVMConfig()

    def fit(self, X: pl.DataFrame | np.ndarray, y: Any = None) -> WarningSVM:  # noqa: N803
        """Fit on labelled windows; unknown-label windows are dropped (logged)."""
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
        from sklearn.svm import SVC

        validate_params(self)
        c = self.config
        time_h, event = _survival_target(X, y)
        y, known = warning_labels(time_h, event, lead_h=c.lead_h, tmax_h=c.tmax_h)
        if (~known).any():
            logger.info("WarningSVM.fit: %d window(s) with unknown class dropped", (~known).sum())
        x = _features(X)[known]
        y = y[known]
        if np.unique(y).size < 2:
            raise ConfigError("WarningSVM needs windows of at least 2 classes")
        if c.max_train is not None and y.size > c.max_train:
            from sklearn.model_selection import train_test_split

            _, counts = np.unique(y, return_counts=True)
            strat = y if counts.min() >= 2 else None
            x, _, y, _ = train_test_split(x, y, train_size=c.max_train, stratify=strat,
                                          random_state=c.seed)
            logger.info("WarningSVM.fit: %d of %d windows (max_train, stratified)", y.size,
                        int(known.sum()))
        svc = SVC(C=c.c, kernel=c.kernel, gamma=c.gamma, class_weight=c.class_weight,
                  decision_function_shape="ovo", random_state=c.seed)
        self.pipeline_ = make_pipeline(StandardScaler(), svc).fit(x, y)
        self.n_train_ = int(y.size)
        return self

    def _check_fitted(self) -> None:
        check_fitted(self, "pipeline_")

    def predict(self, X: pl.DataFrame | np.ndarray) -> np.ndarray:  # noqa: N803
        """Class codes (n,) of `WARNING_CLASSES` (those of ``pipeline_.predict``:
        `rbf_svc_predict`)."""
        self._check_fitted()
        return rbf_svc_predict(self.pipeline_, _features(X)).astype(np.int64)

    def predict_labels(self, windows: pl.DataFrame) -> np.ndarray:
        """Class names (n,) of `WARNING_CLASSES`."""
        return np.asarray(WARNING_CLASSES, dtype=object)[self.predict(windows)]

    def score(self, windows: pl.DataFrame) -> dict[str, float]:
        """TSS per class and micro-averaged on labelled windows of known class."""
        c = self.config
        y, known = warning_labels(windows["time_to_event_h"].to_numpy(),
                                  windows["event"].to_numpy(), lead_h=c.lead_h, tmax_h=c.tmax_h)
        return warning_tss(y[known], self.predict(windows.filter(pl.Series(known))))

    state_layout = StateLayout(
        meta_file="model.json", what="warning-SVM model directory",
        header={"kind": "warning_svm", "format_version": _FORMAT_VERSION},
        sklearn=("svm.skops",))

    def _get_state(self) -> ModelState:
        self._check_fitted()
        meta = {"config": asdict(self.config), "n_train": self.n_train_,
                "classes": list(WARNING_CLASSES)}
        return ModelState(meta=meta, sklearn={"svm.skops": self.pipeline_})

    @classmethod
    def _from_state(cls, state: ModelState) -> WarningSVM:
        self = cls(WarningSVMConfig(**state.meta["config"]))
        self.pipeline_ = state.sklearn["svm.skops"]
        self.n_train_ = int(state.meta["n_train"])
        return self



#: Kernel-matrix entries computed at once: a block of ``_KERNEL_CELLS // n_SV`` records (at
#: least `_KERNEL_MIN_ROWS`) x n_SV float64 is 1 MiB, so the block and its one temporary stay
#: in a 1-2 MiB L2 cache (128 rows x 3142 SVs, 3.2 MiB, measured ~2x slower per record).
_KERNEL_CELLS = 2**17
_KERNEL_MIN_ROWS = 16
#: Relative margin (to the sum of the absolute terms) within which a pairwise decision value
#: counts as a tie and the row is predicted by scikit-learn itself.
_TIE_MARGIN = 1e-9


def rbf_svc_predict(pipeline: Any, x: np.ndarray) -> np.ndarray:
    """``pipeline.predict(x)`` of a transformer(s) + RBF `sklearn.svm.SVC` pipeline, faster.

    libsvm evaluates the kernel one support vector at a time; here the kernel rows of a
    block of records are evaluated in numpy (the same squared differences, ``exp(-gamma
    d2)``) and the one-vs-one decision values ``sum_k coef_k K(x, sv_k) - rho`` of every
    class pair are matrix products, then libsvm's vote (a positive value is a vote for the
    first class of the pair; the first class with the most votes wins). The summation order
    differs from libsvm's, so a decision value may differ from libsvm's by rounding (about
    1e-15 of the sum of the absolute terms); a record any of whose decision values lies
    within `_TIE_MARGIN` of that sum from zero, or with a non-finite input, is predicted by
    ``pipeline.predict`` itself. The labels are therefore those of ``pipeline.predict``.
    Any other pipeline (another kernel, sparse support vectors, ``break_ties``) is passed
    to ``pipeline.predict``.
    """
    from sklearn.svm import SVC

    svc = pipeline[-1] if hasattr(pipeline, "steps") else pipeline
    x = np.asarray(x, dtype=np.float64)
    if (not isinstance(svc, SVC) or svc.kernel != "rbf" or getattr(svc, "_sparse", True)
            or (svc.break_ties and svc.decision_function_shape == "ovr")
            or len(svc.classes_) < 2 or x.ndim != 2 or x.shape[0] == 0):
        return pipeline.predict(x)
    z = pipeline[:-1].transform(x) if svc is not pipeline else x
    z = np.ascontiguousarray(z, dtype=np.float64)
    sv = np.asarray(svc.support_vectors_, dtype=np.float64)
    starts = np.r_[0, np.cumsum(svc.n_support_)]
    n_class = len(svc.classes_)
    pairs = [(i, j) for i in range(n_class) for j in range(i + 1, n_class)]
    # column p of w: libsvm's coefficients of pair p (class i's SVs with sv_coef[j - 1],
    # class j's with sv_coef[i]), zero for the other classes' SVs
    dual = np.asarray(svc._dual_coef_, dtype=np.float64)
    w = np.zeros((sv.shape[0], len(pairs)))
    for p, (i, j) in enumerate(pairs):
        w[starts[i]:starts[i + 1], p] = dual[j - 1, starts[i]:starts[i + 1]]
        w[starts[j]:starts[j + 1], p] = dual[i, starts[j]:starts[j + 1]]
    rho = -np.asarray(svc._intercept_, dtype=np.float64)
    w_abs = np.abs(w)
    gamma = float(svc._gamma)
    dec = np.empty((z.shape[0], len(pairs)))
    tie = ~np.isfinite(z).all(axis=1)
    block_rows = max(_KERNEL_MIN_ROWS, _KERNEL_CELLS // max(sv.shape[0], 1))
    for lo in range(0, z.shape[0], block_rows):
        block = z[lo:lo + block_rows]
        d2 = np.zeros((block.shape[0], sv.shape[0]))
        for f in range(sv.shape[1]):
            d = block[:, f, None] - sv[None, :, f]
            d *= d
            d2 += d
        d2 *= -gamma
        k = np.exp(d2, out=d2)
        dec[lo:lo + block.shape[0]] = k @ w - rho
        scale = k @ w_abs + np.abs(rho)
        tie[lo:lo + block.shape[0]] |= (np.abs(dec[lo:lo + block.shape[0]])
                                        <= _TIE_MARGIN * scale).any(axis=1)
    votes = np.zeros((z.shape[0], n_class), dtype=np.int64)
    rows = np.arange(z.shape[0])
    for p, (i, j) in enumerate(pairs):
        votes[rows, np.where(dec[:, p] > 0, i, j)] += 1
    out = np.asarray(svc.classes_)[votes.argmax(axis=1)]
    if tie.any():
        out[tie] = pipeline.predict(x[tie])
    return out


def warning_tss(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """One-vs-rest TSS per class name and micro-averaged (`flare_core.metrics.multiclass_tss`)."""
    from ..metrics import multiclass_tss

    names = np.asarray(WARNING_CLASSES, dtype=object)
    return multiclass_tss(names[np.asarray(y_true)], names[np.asarray(y_pred)],
                          labels=list(WARNING_CLASSES))


def sweep_lead_time(train_windows: pl.DataFrame, test_windows: pl.DataFrame, *,
                    leads_h: Iterable[float] = range(8, 61, 4),
                    config: WarningSVMConfig | None = None) -> pl.DataFrame:
    """TSS of the warning SVM as a function of the lead time x (the paper's Fig. 12).

    For each ``lead_h`` a fresh SVM is fitted on ``train_windows`` and scored on
    ``test_windows`` (other regions; nothing is chosen on them here).

    Returns
    -------
    pl.DataFrame
        ``lead_h``, ``tss_within``, ``tss_after``, ``tss_none``, ``tss_micro``, ``n_train``,
        ``n_test`` (windows of known class).
    """
    import dataclasses
    import warnings

    from ..errors import DataQualityWarning

    base = config if config is not None else WarningSVMConfig()
    out: dict[str, list] = {k: [] for k in ("lead_h", "tss_within", "tss_after", "tss_none",
                                            "tss_micro", "n_train", "n_test")}
    for lead in leads_h:
        cfg = dataclasses.replace(base, lead_h=float(lead))
        model = WarningSVM(cfg).fit(train_windows)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataQualityWarning)
            s = model.score(test_windows)
        _, known = warning_labels(test_windows["time_to_event_h"].to_numpy(),
                                  test_windows["event"].to_numpy(), lead_h=cfg.lead_h,
                                  tmax_h=cfg.tmax_h)
        out["lead_h"].append(float(lead))
        for k in WARNING_CLASSES:
            out[f"tss_{k}"].append(float(s[k]))
        out["tss_micro"].append(float(s["micro"]))
        out["n_train"].append(model.n_train_)
        out["n_test"].append(int(known.sum()))
    return pl.DataFrame(out)
