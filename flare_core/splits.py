"""Train/validation/test splits that never put one active region in two parts.

Records of one HARP are hours apart and nearly identical, so a split that lets a region sit on
both sides leaks the test set into training. Every splitter here works on the region id column
(``harpnum``) and returns positional row indices (numpy int64 arrays, sorted ascending) into the
frame it was given.

* `chronological_split` -- train / validation / test by date; each region goes to the part
  holding its FIRST record time ``t_rec`` (UTC), so a region that spans a boundary stays whole.
* `region_kfold` -- K folds over regions (scikit-learn ``GroupKFold``, or
  ``StratifiedGroupKFold`` when a label column is given).
* `repeated_region_cv` -- `region_kfold` repeated with a different seeded shuffle each repeat
  (the survival-model study averaged 90 repeats).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime
from typing import NamedTuple

import numpy as np
import polars as pl

from .errors import ConfigError
from .timeutil import to_utc

__all__ = ["ChronologicalSplit", "chronological_split", "region_kfold", "repeated_region_cv"]

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
