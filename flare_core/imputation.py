"""Fill gaps in SHARP keyword columns, counting every value that is filled.

Two ways, both causal with respect to time or fitted on training data only:

* `impute_forward` -- carry the last observed value of the SAME region forward in time, only
  across short gaps (``limit_records`` consecutive missing records and/or ``limit_h`` hours
  since the observation). It never looks ahead: a value at ``t_rec`` comes from a record with
  an earlier ``t_rec`` of the same HARP.
* `ModelImputer` -- scikit-learn ``KNNImputer`` or ``IterativeImputer`` on standardised
  keywords, with the fit/transform API: `fit` on the training frame only, `transform` any
  frame. It uses the other keywords of the same record (same ``t_rec``), not other times.

Both return an `ImputationReport` (filled and still-missing counts per column); NaN is treated
as missing and comes back as null when it is not filled.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import polars as pl

from .errors import ConfigError, DataQualityWarning, ModelError
from .schema import SHARP_KEYWORDS

__all__ = ["ImputationReport", "impute_forward", "ModelImputer"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImputationReport:
    """Per-column counts of filled values and of values still missing afterwards."""

    imputed: dict[str, int] = field(default_factory=dict)
    still_missing: dict[str, int] = field(default_factory=dict)

    @property
    def total_imputed(self) -> int:
        """Number of values filled, over all columns."""
        return sum(self.imputed.values())

    @property
    def total_missing(self) -> int:
        """Number of values still missing, over all columns."""
        return sum(self.still_missing.values())


def _default_columns(frame: pl.DataFrame, columns: Sequence[str] | None) -> list[str]:
    if columns is None:
        cols = [c for c in SHARP_KEYWORDS if c in frame.columns]
        if not cols:
            raise ConfigError("no SHARP keyword columns in the frame; pass columns= explicitly")
        return cols
    cols = list(columns)
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise ConfigError(f"columns {missing} are not in the frame")
    bad = [c for c in cols if not frame.schema[c].is_numeric()]
    if bad:
        raise ConfigError(f"columns {bad} are not numeric")
    return cols


def _nan_to_null(frame: pl.DataFrame, cols: list[str]) -> pl.DataFrame:
    floats = [c for c in cols if frame.schema[c].is_float()]
    return frame.with_columns(pl.col(floats).fill_nan(None)) if floats else frame


def impute_forward(
    frame: pl.DataFrame,
    columns: Sequence[str] | None = None,
    *,
    limit_records: int | None = None,
    limit_h: float | None = None,
    group_col: str = "harpnum",
    time_col: str = "t_rec",
) -> tuple[pl.DataFrame, ImputationReport]:
    """Forward-fill missing keyword values within each region, across short gaps only.

    A missing value (null or NaN) of region h at time t is replaced by the last observed value
    of the same column and region at an earlier record when BOTH given limits hold: it is at
    most ``limit_records`` records back (i.e. at most that many consecutive missing records),
    and at most ``limit_h`` hours before t. Values before a region's first observation stay
    missing; nothing is taken from later records or other regions.

    Parameters
    ----------
    frame : polars.DataFrame
        One row per (region, record) with ``group_col``, ``time_col`` (Datetime, UTC) and the
        columns to fill. Row order is kept.
    columns : sequence of str, optional
        Numeric columns to fill. Default: the SHARP keyword columns present (never label or
        feature columns, which must be computed after imputation).
    limit_records : int, optional
        Most consecutive missing records to bridge (>= 1).
    limit_h : float, optional
        Most hours between the observed value and the filled record (> 0).
    group_col, time_col : str
        Region id and record time columns.

    Returns
    -------
    frame : polars.DataFrame
        Same rows and columns; filled values in place, unfilled NaN turned into null.
    report : ImputationReport
        Per-column counts of filled and still-missing values (also logged at INFO).

    Raises
    ------
    ConfigError
        If neither limit is given (unbounded filling would carry a value across days), a
        limit is not positive, or a column is absent.
    """
    if limit_records is None and limit_h is None:
        raise ConfigError("give limit_records and/or limit_h; unbounded forward fill is unsafe")
    if limit_records is not None and not (isinstance(limit_records, int) and limit_records >= 1):
        raise ConfigError(f"limit_records must be an int >= 1, got {limit_records!r}")
    if limit_h is not None and not (isinstance(limit_h, int | float) and limit_h > 0):
        raise ConfigError(f"limit_h must be > 0 hours, got {limit_h!r}")
    for c in (group_col, time_col):
        if c not in frame.columns:
            raise ConfigError(f"frame lacks column {c!r}")
    cols = _default_columns(frame, columns)
    work = _nan_to_null(frame, cols).with_row_index("_row").sort([group_col, time_col, "_row"])
    pos = pl.int_range(pl.len()).over(group_col)
    work = work.with_columns(pos.alias("_pos"))
    exprs, flags = [], []
    for c in cols:
        seen = pl.col(c).is_not_null()
        last = pl.col(c).forward_fill().over(group_col)
        ok = pl.col(c).is_null() & last.is_not_null()
        if limit_records is not None:
            last_pos = pl.when(seen).then(pl.col("_pos")).forward_fill().over(group_col)
            ok = ok & ((pl.col("_pos") - last_pos) <= limit_records)
        if limit_h is not None:
            last_t = pl.when(seen).then(pl.col(time_col)).forward_fill().over(group_col)
            gap_h = (pl.col(time_col) - last_t).dt.total_microseconds() / 3.6e9
            ok = ok & (gap_h <= limit_h)
        exprs.append(pl.when(ok).then(last).otherwise(pl.col(c)).alias(c))
        flags.append(ok.alias(f"_filled_{c}"))
    work = work.with_columns(flags).with_columns(exprs).sort("_row")
    imputed = {c: int(work[f"_filled_{c}"].sum()) for c in cols}
    still = {c: int(work[c].null_count()) for c in cols}
    out = work.select(frame.columns)
    report = ImputationReport(imputed, still)
    logger.info(
        "forward fill (limit %s records, %s h): %d values filled, %d still missing over %d columns",
        limit_records, limit_h, report.total_imputed, report.total_missing, len(cols),
    )
    return out, report


class ModelImputer:
    """Model-based imputation of keyword columns, fitted on training data only.

    Keywords are standardised with the training mean and standard deviation (SHARP keywords
    span 20 orders of magnitude), imputed with scikit-learn's ``KNNImputer`` (nan-Euclidean
    nearest records) or ``IterativeImputer`` (round-robin Bayesian ridge regression), and
    mapped back to their units. Observed values are returned unchanged; only missing cells
    are written.

    Parameters
    ----------
    method : {"knn", "iterative"}
        Which scikit-learn imputer.
    columns : sequence of str, optional
        Columns to impute. Default: the SHARP keyword columns present in the training frame.
        A column with no observed value in training cannot be modelled: it is left missing
        and a `DataQualityWarning` names it.
    n_neighbors : int
        Neighbours of ``KNNImputer``.
    max_iter : int
        Rounds of ``IterativeImputer``.
    seed : int
        ``random_state`` of ``IterativeImputer``.

    Attributes
    ----------
    columns_ : list of str
        Columns the model imputes.
    skipped_columns_ : list of str
        Requested columns with no observed training value.
    mean_, scale_ : ndarray
        Training standardisation of ``columns_``.
    imputer_ : sklearn imputer
        The fitted scikit-learn estimator (on standardised values).
    """

    def __init__(
        self,
        method: Literal["knn", "iterative"] = "knn",
        columns: Sequence[str] | None = None,
        *,
        n_neighbors: int = 5,
        max_iter: int = 10,
        seed: int = 0,
    ) -> None:
        self.method = method
        self.columns = columns
        self.n_neighbors = n_neighbors
        self.max_iter = max_iter
        self.seed = seed

    def _check_params(self) -> None:
        if self.method not in ("knn", "iterative"):
            raise ConfigError(f"method must be 'knn' or 'iterative', got {self.method!r}")
        if not (isinstance(self.n_neighbors, int) and self.n_neighbors >= 1):
            raise ConfigError(f"n_neighbors must be an int >= 1, got {self.n_neighbors!r}")
        if not (isinstance(self.max_iter, int) and self.max_iter >= 1):
            raise ConfigError(f"max_iter must be an int >= 1, got {self.max_iter!r}")

    def _matrix(self, frame: pl.DataFrame, cols: list[str]) -> np.ndarray:
        return (
            _nan_to_null(frame, cols)
            .select(pl.col(cols).cast(pl.Float64))
            .to_numpy()
            .astype(np.float64)
        )

    def fit(self, frame: pl.DataFrame) -> ModelImputer:
        """Learn the standardisation and the imputer from a TRAINING frame; returns self."""
        self._check_params()
        cols = _default_columns(frame, self.columns)
        x = self._matrix(frame, cols)
        observed = ~np.isnan(x)
        keep = observed.any(axis=0)
        self.skipped_columns_ = [c for c, k in zip(cols, keep, strict=True) if not k]
        if self.skipped_columns_:
            warnings.warn(
                f"columns {self.skipped_columns_} have no observed value in the training frame; "
                "they are left missing",
                DataQualityWarning,
                stacklevel=2,
            )
        self.columns_ = [c for c, k in zip(cols, keep, strict=True) if k]
        if not self.columns_:
            raise ConfigError("no column has an observed value in the training frame")
        x = x[:, keep]
        self.mean_ = np.nanmean(x, axis=0)
        std = np.nanstd(x, axis=0)
        self.scale_ = np.where(std > 0, std, 1.0)
        z = (x - self.mean_) / self.scale_
        if self.method == "knn":
            from sklearn.impute import KNNImputer

            imp = KNNImputer(n_neighbors=self.n_neighbors)
        else:
            from sklearn.experimental import enable_iterative_imputer  # noqa: F401
            from sklearn.impute import IterativeImputer

            imp = IterativeImputer(max_iter=self.max_iter, random_state=self.seed)
        self.imputer_ = imp.fit(z)
        logger.info(
            "%s imputer fitted on %d rows, %d columns (%.2f%% missing)",
            self.method, x.shape[0], x.shape[1], 100.0 * float(np.isnan(x).mean()),
        )
        return self

    def transform_with_report(self, frame: pl.DataFrame) -> tuple[pl.DataFrame, ImputationReport]:
        """Fill missing cells of ``columns_``; returns the frame and the counts."""
        if not hasattr(self, "imputer_"):
            raise ModelError("ModelImputer is not fitted; call fit(train_frame) first")
        missing_cols = [c for c in self.columns_ if c not in frame.columns]
        if missing_cols:
            raise ConfigError(f"frame lacks the fitted columns {missing_cols}")
        cols = self.columns_
        x = self._matrix(frame, cols)
        gaps = np.isnan(x)
        if gaps.any():
            with warnings.catch_warnings():
                # sklearn warns about all-missing rows/columns it handles with training means
                warnings.simplefilter("ignore", UserWarning)
                z = self.imputer_.transform((x - self.mean_) / self.scale_)
            filled = np.where(gaps, z * self.scale_ + self.mean_, x)
        else:
            filled = x
        imputed = {c: int(n) for c, n in zip(cols, gaps.sum(axis=0), strict=True)}
        still = {c: int(n) for c, n in zip(cols, np.isnan(filled).sum(axis=0), strict=True)}
        for c in self.skipped_columns_:
            if c in frame.columns:
                imputed[c] = 0
                still[c] = int(_nan_to_null(frame, [c])[c].null_count())
        out = _nan_to_null(frame, list(cols)).with_columns(
            [pl.Series(c, filled[:, i]).fill_nan(None) for i, c in enumerate(cols)]
        )
        out = out.with_columns(
            [pl.col(c).cast(frame.schema[c]) for c in cols if frame.schema[c].is_float()]
        )
        report = ImputationReport(imputed, still)
        logger.info(
            "%s imputer: %d values filled, %d still missing in %d rows",
            self.method, report.total_imputed, report.total_missing, frame.height,
        )
        return out, report

    def transform(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Fill missing cells of ``columns_`` (counts logged; see `transform_with_report`)."""
        return self.transform_with_report(frame)[0]

    def fit_transform(self, frame: pl.DataFrame) -> pl.DataFrame:
        """`fit` then `transform` on the same (training) frame."""
        return self.fit(frame).transform(frame)
