"""The modelling table: running SHARP statistics + flare history (+ labels) per record.

`build_dataset` is what the model trainers and the forecast flow call. Each output row is
one distinct ``(harpnum, t_rec)`` record; inputs use only records at or before ``t_rec`` and
flares that peaked before it, labels only what comes after (see `flare_core.features`,
`flare_core.history`, `flare_core.labels`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import polars as pl

from .features import RunningStats, build_running_stats, drop_duplicate_records, utc_time_column
from .history import HISTORY_COLUMNS, build_flare_history
from .labels import label_columns, label_time_to_event

__all__ = ["KEY_COLUMNS", "DatasetColumns", "build_dataset"]

logger = logging.getLogger(__name__)

KEY_COLUMNS: tuple[str, str] = ("harpnum", "t_rec")


@dataclass(frozen=True)
class DatasetColumns:
    """Column groups of a `build_dataset` frame.

    Attributes
    ----------
    features : tuple of str
        Running statistics ``{keyword}__{stat}``.
    history : tuple of str
        Flare-history columns ``history__*``.
    labels : tuple of str
        Label columns present (empty for ``with_labels=False``).
    """

    features: tuple[str, ...]
    history: tuple[str, ...]
    labels: tuple[str, ...]

    @property
    def inputs(self) -> list[str]:
        """Every model-input column: features then history (never keys or labels)."""
        return [*self.features, *self.history]

    @classmethod
    def of(cls, frame: pl.DataFrame) -> DatasetColumns:
        """Split the columns of a `build_dataset` frame into their groups."""
        history = tuple(c for c in frame.columns if c.startswith("history__"))
        features = tuple(c for c in frame.columns if "__" in c and c not in history)
        labels = tuple(c for c in frame.columns if c not in (*KEY_COLUMNS, *features, *history))
        return cls(features=features, history=history, labels=labels)


def build_dataset(
    sharp: pl.DataFrame,
    flares: pl.DataFrame | None,
    *,
    features: RunningStats = RunningStats(),
    tmax_h: float = 144.0,
    horizon_h: float = 24.0,
    with_labels: bool = True,
    censor: Literal["last_observation", "tmax"] = "last_observation",
) -> pl.DataFrame:
    """Join running statistics, flare history and (optionally) labels on the record keys.

    Parameters
    ----------
    sharp : pl.DataFrame
        SHARP keyword frame (`flare_core.schema`), any order; duplicates of
        ``(harpnum, t_rec)`` are dropped keeping the last (counted and logged).
    flares : pl.DataFrame or None
        Flare-event frame with ``harpnum`` filled. ``None`` is allowed only with
        ``with_labels=False``: the history columns are then null (unknown, not zero).
    features : RunningStats
        Running-statistics settings; its ``window_h`` is also the B/C history window.
    tmax_h, horizon_h, censor
        Label settings, see `flare_core.labels.label_time_to_event`.
    with_labels : bool
        ``False`` for inference: no label columns, and no look at flares after ``t_rec``.

    Returns
    -------
    pl.DataFrame
        Sorted by ``(harpnum, t_rec)``: the keys, the feature columns, `HISTORY_COLUMNS`,
        then `flare_core.labels.label_columns` when ``with_labels``. `DatasetColumns.of`
        splits the columns into these groups.
    """
    if flares is None and with_labels:
        from .errors import ConfigError

        raise ConfigError("labels need a flare list: pass flares or with_labels=False")
    records, _ = drop_duplicate_records(utc_time_column(sharp, "t_rec"))
    frame = build_running_stats(records, features)
    if flares is None:
        logger.warning("no flare list given: flare-history columns are null")
        frame = frame.with_columns(
            [pl.lit(None, dtype=pl.Float64).alias(c) for c in HISTORY_COLUMNS])
    else:
        history = build_flare_history(records, flares, window_h=features.window_h)
        frame = frame.join(history, on=list(KEY_COLUMNS), how="left", maintain_order="left")
    if with_labels:
        labels = label_time_to_event(records, flares, tmax_h=tmax_h, censor=censor,
                                     horizon_h=horizon_h)
        frame = frame.join(labels, on=list(KEY_COLUMNS), how="left", maintain_order="left")
        assert frame.columns[-len(label_columns(horizon_h)):] == label_columns(horizon_h)
    logger.info("dataset: %d records x %d columns (labels: %s)", frame.height, frame.width,
                with_labels)
    return frame
