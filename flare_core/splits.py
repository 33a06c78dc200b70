"""Train/validation/test splits that never put one active region in two parts.

Records of one HARP are hours apart and nearly identical, so a split that lets a region sit on
both sides leaks the test set into training. Every splitter here works on the region id column
(``harpnum``) and returns positional row indices (numpy int64 arrays, sorted ascending) into the
frame it was given. This module is the one home of region splitting: every splitter is
built on scikit-learn's splitters (``GroupKFold`` / ``StratifiedGroupKFold`` over records,
``StratifiedKFold`` over regions).

* `chronological_split` -- train / validation / test by date; each region goes to the part
  holding its FIRST record time ``t_rec`` (UTC), so a region that spans a boundary stays whole.
* `region_kfold` -- K folds over regions (scikit-learn ``GroupKFold``, or
  ``StratifiedGroupKFold`` when a label column is given).
* `repeated_region_cv` -- `region_kfold` repeated with a different seeded shuffle each repeat
  (the survival-model study averaged 90 repeats).
* `split_validation` -- (fit, validation) frames by whole regions: one fold of a shuffled
  ``StratifiedKFold`` over the regions, stratified by whether a region ever flares
  (`flare_core.training.train_all`'s default validation).
* `split_validation_period` -- (fit, validation) frames by time with a ``tmax_h`` gap
  (`flare_core.config.TrainConfig.validation_start`).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import polars as pl

from .dataset import time_range
from .errors import ConfigError, ModelError
from .models.registry import LABEL_M
from .timeutil import to_utc

if TYPE_CHECKING:
    from .config import TrainConfig

__all__ = ["ChronologicalSplit", "chronological_split", "region_kfold", "repeated_region_cv",
           "split_validation", "split_validation_period", "refit_records"]

logger = logging.getLogger(__name__)


class ChronologicalSplit(NamedTuple):
    """Row indices of the three parts of a `chronological_split`."""

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray


def _check_columns(frame: pl.DataFrame, *cols: str | None) -> None:
    missing = [c for c in cols if c is not None and c not in frame.columns]
    if missing:
        raise ConfigError(f"frame lacks columns {missing}; it has {frame.columns}")
    if frame.height == 0:
        raise ConfigError("cannot split an empty frame")


def _groups(frame: pl.DataFrame, group_col: str) -> np.ndarray:
    g = frame[group_col]
    if g.null_count():
        i = int(g.is_null().arg_true()[0])
        raise ConfigError(f"{group_col} is null in {g.null_count()} rows (first: row {i})")
    return g.to_numpy()


def chronological_split(
    frame: pl.DataFrame,
    *,
    train_end: datetime | str,
    validation_end: datetime | str,
    group_col: str = "harpnum",
    time_col: str = "t_rec",
) -> ChronologicalSplit:
    """Split by date, keeping each region whole.

    A region belongs to train if its first ``time_col`` is before ``train_end``, to
    validation if it is in ``[train_end, validation_end)``, else to test. All of its records
    follow it, including records after the boundary; the first record decides so that no
    information about a later part leaks into an earlier one through a shared region.

    Parameters
    ----------
    frame : polars.DataFrame
        One row per record with ``group_col`` and ``time_col`` (``Datetime``; naive values
        are taken as UTC).
    train_end, validation_end : datetime or ISO string
        Boundaries in UTC (naive values are UTC); ``train_end <= validation_end``. Equal
        boundaries give an empty validation part.
    group_col, time_col : str
        Region id and record time columns.

    Returns
    -------
    ChronologicalSplit
        ``(train, validation, test)`` row-index arrays; every row is in exactly one.
    """
    _check_columns(frame, group_col, time_col)
    t0, t1 = to_utc(train_end), to_utc(validation_end)
    if t1 < t0:
        raise ConfigError(f"validation_end {t1.isoformat()} is before train_end {t0.isoformat()}")
    dtype = frame.schema[time_col]
    if not isinstance(dtype, pl.Datetime):
        raise ConfigError(f"{time_col} must be a Datetime column, got {dtype}")
    t = pl.col(time_col)
    if dtype.time_zone is None:
        t = t.dt.replace_time_zone("UTC")
    elif dtype.time_zone != "UTC":
        t = t.dt.convert_time_zone("UTC")
    _groups(frame, group_col)
    if frame[time_col].null_count():
        raise ConfigError(f"{time_col} has {frame[time_col].null_count()} null values")
    part = (
        frame.select(pl.col(group_col), t.alias("_t"))
        .with_row_index("_row")
        .with_columns(pl.col("_t").min().over(group_col).alias("_first"))
        .with_columns(
            pl.when(pl.col("_first") < t0)
            .then(0)
            .when(pl.col("_first") < t1)
            .then(1)
            .otherwise(2)
            .alias("_part")
        )
    )
    parts = [part.filter(pl.col("_part") == k)["_row"].to_numpy().astype(np.int64) for k in range(3)]
    n_regions = [part.filter(pl.col("_part") == k)[group_col].n_unique() for k in range(3)]
    logger.info(
        "chronological split at %s / %s: rows %s, regions %s (train/validation/test)",
        t0.isoformat(), t1.isoformat(), [len(p) for p in parts], n_regions,
    )
    return ChronologicalSplit(*parts)


def _kfold_splits(
    frame: pl.DataFrame,
    n_splits: int,
    stratify: str | None,
    group_col: str,
    seed: int | None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import GroupKFold, StratifiedGroupKFold

    groups = _groups(frame, group_col)
    n_groups = len(np.unique(groups))
    if n_splits > n_groups:
        raise ConfigError(f"n_splits={n_splits} exceeds the number of regions ({n_groups})")
    shuffle = seed is not None
    x = np.zeros((frame.height, 1))
    if stratify is None:
        cv = GroupKFold(n_splits=n_splits, shuffle=shuffle, random_state=seed)
        splits = cv.split(x, groups=groups)
    else:
        y = frame[stratify]
        if y.null_count():
            raise ConfigError(f"stratify column {stratify} has {y.null_count()} null values")
        cv = StratifiedGroupKFold(n_splits=n_splits, shuffle=shuffle, random_state=seed)
        splits = cv.split(x, y.to_numpy(), groups=groups)
    return [(np.sort(tr).astype(np.int64), np.sort(te).astype(np.int64)) for tr, te in splits]


def region_kfold(
    frame: pl.DataFrame,
    *,
    n_splits: int = 5,
    stratify: str | None = None,
    group_col: str = "harpnum",
    seed: int | None = 0,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """K-fold cross-validation over regions: each region is in exactly one test fold.

    Parameters
    ----------
    frame : polars.DataFrame
        One row per record with ``group_col`` (and ``stratify`` if given).
    n_splits : int
        Number of folds, at least 2 and at most the number of regions.
    stratify : str, optional
        Label column (e.g. ``m_within_24h``). When given, ``StratifiedGroupKFold`` keeps the
        label ratio of each fold close to the overall ratio; otherwise ``GroupKFold``
        balances fold sizes.
    group_col : str
        Region id column.
    seed : int or None
        Seed of the region shuffle; None keeps scikit-learn's deterministic, unshuffled
        assignment.

    Returns
    -------
    list of (train_idx, test_idx)
        ``n_splits`` pairs of sorted row-index arrays.
    """
    if not (isinstance(n_splits, int) and n_splits >= 2):
        raise ConfigError(f"n_splits must be an int >= 2, got {n_splits!r}")
    _check_columns(frame, group_col, stratify)
    return _kfold_splits(frame, n_splits, stratify, group_col, seed)


def repeated_region_cv(
    frame: pl.DataFrame,
    *,
    n_splits: int = 5,
    n_repeats: int = 90,
    stratify: str | None = None,
    group_col: str = "harpnum",
    seed: int = 0,
) -> Iterator[tuple[int, int, np.ndarray, np.ndarray]]:
    """Repeated region K-fold: ``n_repeats`` independent shuffles of `region_kfold`.

    Repeat ``r`` uses a seed drawn from ``numpy.random.SeedSequence(seed)``, so the whole
    sequence is reproducible from ``seed`` and repeats differ from one another.

    Parameters
    ----------
    frame, n_splits, stratify, group_col
        As in `region_kfold`.
    n_repeats : int
        Number of repeats (the survival-model study used 90).
    seed : int
        Master seed.

    Yields
    ------
    (repeat, fold, train_idx, test_idx)
        Generated lazily (``n_repeats * n_splits`` pairs would not fit in memory for large
        frames); indices are sorted row positions.
    """
    if not (isinstance(n_repeats, int) and n_repeats >= 1):
        raise ConfigError(f"n_repeats must be an int >= 1, got {n_repeats!r}")
    if not (isinstance(n_splits, int) and n_splits >= 2):
        raise ConfigError(f"n_splits must be an int >= 2, got {n_splits!r}")
    _check_columns(frame, group_col, stratify)
    _groups(frame, group_col)  # fail now, not at the first next()
    seeds = np.random.SeedSequence(seed).generate_state(n_repeats, dtype=np.uint32)

    def _generate() -> Iterator[tuple[int, int, np.ndarray, np.ndarray]]:
        for r, s in enumerate(seeds):
            splits = _kfold_splits(frame, n_splits, stratify, group_col, int(s))
            for k, (tr, te) in enumerate(splits):
                yield r, k, tr, te

    return _generate()


def split_validation(
    dataset: pl.DataFrame, *, fraction: float, seed: int, label: str = LABEL_M
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split ``dataset`` into (fit, validation) by whole regions (HARPs).

    The validation regions are one fold of a shuffled scikit-learn ``StratifiedKFold`` over
    the REGIONS (one row per HARP, ``round(1 / fraction)`` folds, at least 2 and at most one
    per region), stratified by whether a region ever has a positive ``label``: about
    ``fraction`` of the flaring and of the quiet regions (flaring regions are rare, and a
    validation part without them cannot select thresholds). Deterministic for a given
    ``seed``.

    The folds are drawn over regions rather than with ``StratifiedGroupKFold`` over records:
    that splitter orders the groups by their record counts before it assigns them, so with
    one label per region its shuffle barely changes the folds from seed to seed.

    Parameters
    ----------
    dataset : polars.DataFrame
        Records with ``harpnum`` (and ``label``; without it every region counts as quiet).
    fraction : float
        In (0, 1): the share of the regions held out.
    seed : int
        Seed of the region shuffle.
    label : str
        Binary label column whose "ever positive" per region stratifies the split.

    Returns
    -------
    (fit, validation) : tuple of polars.DataFrame
        The rows of ``dataset`` in their order; no region is in both.

    Raises
    ------
    ConfigError
        If ``fraction`` is not in (0, 1) or ``harpnum`` is missing.
    ModelError
        If there are fewer than 2 regions.
    """
    from sklearn.model_selection import KFold, StratifiedKFold

    if not (0.0 < fraction < 1.0):
        raise ConfigError(f"fraction must lie in (0, 1), got {fraction!r}")
    if "harpnum" not in dataset.columns:
        raise ConfigError(f"frame lacks columns ['harpnum']; it has {dataset.columns}")
    ever = (pl.col(label).cast(pl.Boolean).fill_null(False).any()
            if label in dataset.columns else pl.lit(False))
    regions = (dataset.drop_nulls("harpnum").group_by("harpnum")
               .agg(ever.alias("_pos")).sort("harpnum"))
    if regions.height < 2:
        raise ModelError(
            f"need >= 2 regions for a region-disjoint validation split, got {regions.height}"
        )
    y = regions["_pos"].to_numpy().astype(np.int8)
    largest_class = int(np.bincount(y).max())
    n_splits = max(2, min(round(1.0 / fraction), largest_class))
    # two regions, one flaring: nothing to stratify, each is one fold
    cv = (StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
          if largest_class >= 2 else KFold(n_splits=2, shuffle=True, random_state=seed))
    with warnings.catch_warnings():
        # fewer flaring regions than folds: scikit-learn warns, the split is still valid
        warnings.filterwarnings("ignore", message="The least populated class",
                                category=UserWarning)
        _, val_regions = next(cv.split(np.zeros((regions.height, 1)), y))
    is_val = pl.col("harpnum").is_in(regions["harpnum"].gather(val_regions).implode())
    fit, valid = dataset.filter(~is_val), dataset.filter(is_val)
    if fit.height == 0 or valid.height == 0:
        raise ModelError("validation split left one side empty; use more regions")
    logger.info(
        "validation split: %d regions / %d records fit, %d regions / %d records validation",
        fit["harpnum"].n_unique(), fit.height, valid["harpnum"].n_unique(), valid.height,
    )
    return fit, valid


def split_validation_period(dataset: pl.DataFrame, config: TrainConfig
                            ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split ``dataset`` into (fit, validation) by time (`TrainConfig.validation_start`).

    Validation: ``validation_start <= t_rec < validation_end``. Fit: ``t_rec <
    validation_start - tmax_h``, so that no training label (next >=M flare within
    ``tmax_h``) reads a flare of the validation period.
    """
    start = config.validation_period_bound("validation_start")
    end = config.validation_period_bound("validation_end")
    in_val = pl.col("t_rec") >= start
    if end is not None:
        in_val &= pl.col("t_rec") < end
    valid = dataset.filter(in_val)
    fit = dataset.filter(pl.col("t_rec") < start - timedelta(hours=config.tmax_h))
    if fit.height == 0 or valid.height == 0:
        raise ModelError(
            f"validation period from {start.isoformat()} leaves "
            f"{'no training' if fit.height == 0 else 'no validation'} records "
            f"(data {time_range(dataset)})"
        )
    logger.info(
        "validation period %s .. %s: %d regions / %d records fit, %d regions / %d records "
        "validation", start.date(), end.date() if end else "end", fit["harpnum"].n_unique(),
        fit.height, valid["harpnum"].n_unique(), valid.height,
    )
    return fit, valid


def refit_records(dataset: pl.DataFrame, config: TrainConfig) -> pl.DataFrame:
    """The records of the refit (`TrainConfig.refit`): all of ``dataset`` or, with
    ``validation_end``, those before ``validation_end - tmax_h`` (no label reads a flare
    after the validation period); thinned by ``train_step_h``."""
    end = config.validation_period_bound("validation_end")
    records = (dataset if end is None
               else dataset.filter(pl.col("t_rec") < end - timedelta(hours=config.tmax_h)))
    if config.train_step_h is not None:
        from .sampling import thin_records

        n = records.height
        records = thin_records(records, config.train_step_h)
        logger.info("refit: one record per region and %g h: %d of %d records",
                    config.train_step_h, records.height, n)
    return records
