"""LSTM over a region's most recent SHARP records: P(>=M flare within 24 h), after Liu et al.

Liu, H., Liu, C., Wang, J. T. L. & Wang, H. 2019, ApJ 877, 121 ("Predicting Solar Flares Using
a Long Short-term Memory Network"): each sample is the sequence of a region's last ``n_steps``
records, ending with the record at the sample time ``t_rec``, fed to an LSTM whose last hidden
state is classified. Here the classifier is a small dense head with a softmax over
(no flare, flare), trained with class-weighted cross entropy and Adam; as for Deep Flare Net
(`flare_core.models.defn`) the epoch kept is the one with the best TSS on the caller's
validation set (region-disjoint; never the test set).

No look-ahead: the sequence of a record holds only records of the same region with
``t_rec`` at or before its own (and, with ``max_lookback_h``, not older than that). Regions
with a shorter history give shorter sequences (padded and masked, never filled with later
data).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
import polars as pl
import torch
from torch import nn

from ..config import check_positive
from ..errors import ConfigError, ModelError
from ._inputs import (
    as_feature_matrix,
    check_fitted,
    log_missing_values,
    make_standardiser,
    select_feature_names,
    validate_params,
)
from ._torch_classifier import EpochScore, TorchBinaryClassifier, check_common_settings

__all__ = ["LSTMConfig", "LSTMNetwork", "LSTMForecaster", "build_sequences", "sequence_index",
           "gather_sequences"]

logger = logging.getLogger(__name__)

#: Records per forward pass in `LSTMForecaster.predict_proba`: the padded sequences (16 k
#: records x 10 steps x 100 features, ~65 MB of float32), their packed and sorted copies and
#: the LSTM's input projections for every step (4 x hidden a step, ~170 MB at hidden 64)
#: live at once; 65 k records a pass peaked ~1.9 GB above the rest.
_PREDICT_CHUNK = 16_384


def build_sequences(
    frame: pl.DataFrame,
    values: np.ndarray | None = None,
    *,
    features: Sequence[str] | None = None,
    n_steps: int = 10,
    max_lookback_h: float | None = None,
    step_h: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per record, the sequence of its region's last ``n_steps`` records up to and including it.

    With ``step_h`` the steps are hours, not records: step ``k`` (``k = 0`` the record
    itself) is the region's newest record at or before ``t_rec - k * step_h``, so the
    sequence spans the same time whatever the cadence of the input (12-min NRT records,
    hourly training subsets, 96-min research sets). Across a data gap a step repeats the
    last record before it (the value known then).

    Parameters
    ----------
    frame : pl.DataFrame
        Records sorted by ``(harpnum, t_rec)`` with no duplicate key; ``t_rec`` UTC.
    values : ndarray (n_records, n_features), optional
        Per-record inputs aligned with ``frame`` rows (e.g. standardised features); default
        the ``features`` columns of ``frame`` as float64 (nulls become NaN).
    features : sequence of str, optional
        Columns used when ``values`` is None.
    n_steps : int, default 10
        Maximum sequence length (records).
    max_lookback_h : float, optional
        Leave out records more than this many hours before the sample's ``t_rec``.
    step_h : float, optional
        Hours between steps (see above); default one record per step.

    Returns
    -------
    sequences : ndarray (n_records, n_steps, n_features) float64
        ``sequences[i, :L_i]`` are the region's records ``t_rec <= t_rec[i]``, oldest first,
        the last being record ``i`` itself; ``sequences[i, L_i:]`` is padding (0.0).
    lengths : ndarray (n_records,) int64
        ``L_i`` in ``1 .. n_steps``; ``np.arange(n_steps) < lengths[:, None]`` is the mask.

    Raises
    ------
    ModelError
        If the frame is not sorted by ``(harpnum, t_rec)``, repeats a key, has a null key, or
        ``values`` does not match it.
    """
    index, lengths = sequence_index(frame, n_steps=n_steps, max_lookback_h=max_lookback_h,
                                    step_h=step_h)
    if values is None:
        if features is None:
            raise ModelError("pass values or the feature column names")
        values = as_feature_matrix(frame, list(features))
    values = np.asarray(values, dtype=np.float64)
    n = frame.height
    if values.ndim != 2 or values.shape[0] != n:
        raise ModelError(f"values must have shape ({n}, n_features), got {values.shape}")
    return gather_sequences(values, index), lengths


def gather_sequences(values: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``values`` rows at ``index`` (`sequence_index`), 0.0 where the index is -1 (padding)."""
    # one take of whole rows, then the padding zeroed (~10x faster than a boolean-masked
    # fancy assignment at 10^5 records; the same values)
    if values.shape[0] == 0:  # nothing to take: padding only
        return np.zeros((*index.shape, values.shape[1]), dtype=values.dtype)
    out = np.take(values, np.maximum(index, 0), axis=0)
    out[index < 0] = 0
    return out


def sequence_index(
    frame: pl.DataFrame,
    *,
    n_steps: int = 10,
    max_lookback_h: float | None = None,
    step_h: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Row numbers of `build_sequences`: ``index[i, :L_i]`` the rows of record ``i``'s
    sequence, oldest first, ``-1`` as padding; ``lengths`` ``L_i``. Gathering rows through
    it in chunks (`gather_sequences`) bounds the memory of predicting many records."""
    if n_steps < 1:
        raise ConfigError(f"n_steps must be >= 1, got {n_steps!r}")
    if max_lookback_h is not None:
        check_positive("max_lookback_h", max_lookback_h)
    if step_h is not None:
        check_positive("step_h", step_h)
    for col in ("harpnum", "t_rec"):
        if col not in frame.columns:
            raise ModelError(f"sequence frame lacks the column {col!r}")
        if frame[col].null_count():
            raise ModelError(f"sequence frame has {frame[col].null_count()} null {col!r} values")
    n = frame.height
    harp = frame["harpnum"].to_numpy()
    t_us = frame["t_rec"].dt.epoch("us").to_numpy()
    same_region = harp[1:] == harp[:-1]
    if np.any(harp[1:] < harp[:-1]) or np.any(same_region & (t_us[1:] <= t_us[:-1])):
        raise ModelError("sequence frame must be sorted by (harpnum, t_rec) without duplicates")

    # index of the first record of each row's region
    starts = np.flatnonzero(np.r_[True, ~same_region]) if n else np.empty(0, dtype=np.int64)
    region_start = np.repeat(starts, np.diff(np.r_[starts, n]))
    rows = np.arange(n)
    # k = 0 is the record itself, k = n_steps - 1 the oldest candidate
    if step_h is None:
        back = rows[:, None] - np.arange(n_steps)[None, :]
    else:
        # newest row of the same region at or before t - k step: search on (region, time)
        # pairs encoded as one sorted key (region rank * span + time offset)
        rank = np.cumsum(np.r_[False, ~same_region]) if n else np.empty(0, np.int64)
        t0 = t_us.min() if n else 0
        span = (t_us.max() - t0 + 1) if n else 1
        offsets = np.arange(n_steps, dtype=np.int64) * int(round(step_h * 3_600e6))
        targets = (t_us - t0)[:, None] - offsets[None, :]
        key = rank * span + (t_us - t0)
        back = np.searchsorted(key, rank[:, None] * span + targets, side="right") - 1
        back[targets < 0] = -1  # before the region's (and the frame's) first record
    valid = back >= region_start[:, None]
    if max_lookback_h is not None:
        age_us = t_us[:, None] - t_us[np.clip(back, 0, None)]
        valid &= age_us <= max_lookback_h * 3_600e6
    # valid is a prefix along k (records get older with k), so its row sum is the length
    lengths = valid.sum(axis=1).astype(np.int64)
    # step k of the output (oldest first) is back-offset lengths - 1 - k
    offset = lengths[:, None] - 1 - np.arange(n_steps)[None, :]
    has = offset >= 0
    index = np.where(has, np.take_along_axis(back, np.clip(offset, 0, None), axis=1), -1)
    return index.astype(np.int64), lengths


@dataclass(frozen=True)
class LSTMConfig:
    """Settings of `LSTMForecaster`.

    Parameters
    ----------
    n_steps : int, default 10
        Records per sequence (the sample's own record and up to ``n_steps - 1`` earlier ones).
    max_lookback_h : float or None, default None
        Ignore records older than this many hours before the sample time.
    step_h : float or None, default None
        Hours between sequence steps (`build_sequences`): a cadence-independent sequence.
        None: one record per step.
    hidden : int, default 64
        LSTM state size (also the width of the dense head).
    num_layers : int, default 1
    dropout : float, default 0.0
        Between stacked LSTM layers and in the head.
    class_weight : (float, float) or None
        Cross-entropy weights (no flare, flare); None uses `default_class_weight` of the target.
    learning_rate, weight_decay, batch_size, max_epochs, patience, threshold, seed, device,
    n_members, epoch_score, weight_average_decay, input_noise
        As in `flare_core.models.defn.DeFNConfig`.
    """

    n_steps: int = 10
    max_lookback_h: float | None = None
    step_h: float | None = None
    hidden: int = 64
    num_layers: int = 1
    dropout: float = 0.0
    class_weight: tuple[float, float] | None = None
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 150
    max_epochs: int = 30
    patience: int | None = None
    threshold: float = 0.5
    seed: int = 0
    device: str | None = None
    n_members: int = 1
    epoch_score: EpochScore = "tss_at_threshold"
    weight_average_decay: float | None = None
    input_noise: float = 0.0

    def __post_init__(self) -> None:
        for name in ("n_steps", "hidden", "num_layers", "batch_size", "max_epochs"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive int, got {value!r}")
        if self.batch_size < 2:
            raise ConfigError(f"batch_size must be >= 2, got {self.batch_size}")
        check_positive("learning_rate", self.learning_rate)
        if self.max_lookback_h is not None:
            check_positive("max_lookback_h", self.max_lookback_h)
        if self.step_h is not None:
            check_positive("step_h", self.step_h)
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout!r}")
        check_common_settings(self)


class LSTMNetwork(nn.Module):
    """(batch, n_steps, n_in) padded sequences + lengths -> (batch, 2) logits.

    The last hidden state of the top LSTM layer (after each sequence's last real step; the
    padding is skipped with `torch.nn.utils.rnn.pack_padded_sequence`) goes through a dense
    ReLU layer and a linear layer.
    """

    def __init__(self, n_in: int, hidden: int = 64, num_layers: int = 1,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.lstm = nn.LSTM(n_in, hidden, num_layers=num_layers, batch_first=True,
                            dropout=dropout if num_layers > 1 else 0.0)
        self.head = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(dropout),
                                  nn.Linear(hidden, 2))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Logits of (no flare, flare) for each sequence."""
        packed = nn.utils.rnn.pack_padded_sequence(
            x, lengths.to("cpu"), batch_first=True, enforce_sorted=False
        )
        _, (h_n, _) = self.lstm(packed)
        return self.head(h_n[-1])


class LSTMForecaster(TorchBinaryClassifier[LSTMConfig]):
    """LSTM probability of a >=M (or >=C) flare within 24 h of each record's ``t_rec``.

    Parameters
    ----------
    target : {"M", "C"}, default "M"
        Sets the default loss weights; labels are passed to `fit`.
    config : LSTMConfig, optional
    features : sequence of str, optional
        Frame columns to use; default every numeric column that is not an identifier or label.

    Notes
    -----
    `fit` and `predict_proba` take record frames (``harpnum``, ``t_rec``, features) sorted by
    ``(harpnum, t_rec)``; each record is a sample whose sequence is built by
    `build_sequences` from the records of the same frame, so pass every record of a region
    that precedes the ones to forecast (in operations: the recent history plus the latest
    record). Features are imputed (training mean) and standardised with training statistics.

    Attributes
    ----------
    network_, scaler_, feature_names_in_, n_features_in_, best_epoch_, best_val_tss_, history_
        As in `flare_core.models.defn.DeepFlareNet`.

    See Also
    --------
    flare_core.models._torch_classifier.TorchBinaryClassifier : training loop, `predict`,
        `save` (``network.pt``, ``scaler.skops``, ``meta.json``) and `load`.
    """

    config_class = LSTMConfig
    model_name = "LSTM"

    def _build_network(self, n_in: int) -> LSTMNetwork:
        c = self.config
        return LSTMNetwork(n_in, c.hidden, c.num_layers, c.dropout)

    def _sequences(self, frame: Any) -> tuple[np.ndarray, np.ndarray]:
        if not isinstance(frame, pl.DataFrame):
            raise ModelError("LSTMForecaster needs a polars frame with harpnum and t_rec")
        x = as_feature_matrix(frame, self.feature_names_in_, self.n_features_in_)
        z = self.scaler_.transform(x)
        seq, lengths = build_sequences(
            frame, z, n_steps=self.config.n_steps, max_lookback_h=self.config.max_lookback_h,
            step_h=self.config.step_h,
        )
        return seq.astype(np.float32), lengths

    def fit(self, X: pl.DataFrame, y: Any, *, X_val: pl.DataFrame | None = None,  # noqa: N803
            y_val: Any = None) -> Self:
        """Train and keep the epoch with the best validation TSS.

        Parameters
        ----------
        X : pl.DataFrame
            Training records sorted by ``(harpnum, t_rec)``.
        y : array-like (n_records,) bool or 0/1
            Label of each record (e.g. ``m_within_24h``).
        X_val, y_val : optional
            Validation records (regions disjoint from training and test) and labels; both
            classes must occur. Without them the network trains ``max_epochs`` epochs and
            the last is kept.
        """
        validate_params(self)
        if (X_val is None) != (y_val is None):
            raise ModelError("pass both X_val and y_val, or neither")
        if not isinstance(X, pl.DataFrame) or not (X_val is None
                                                   or isinstance(X_val, pl.DataFrame)):
            raise ModelError("LSTMForecaster.fit needs polars frames with harpnum and t_rec")
        names = select_feature_names(X, self.features)
        x_train = as_feature_matrix(X, names)
        y_train, y_val_arr = self._check_labels(
            y, x_train.shape[0], y_val, None if X_val is None else X_val.height)
        log_missing_values(x_train, self.model_name)
        self.scaler_ = make_standardiser().fit(x_train)
        self.feature_names_in_ = names
        self.n_features_in_ = x_train.shape[1]
        self._fit_network(
            self.n_features_in_, self._sequences(X), y_train,
            None if X_val is None else self._sequences(X_val), y_val_arr
        )
        return self

    def predict_proba(self, X: pl.DataFrame, *, rows: np.ndarray | None = None  # noqa: N803
                      ) -> np.ndarray:
        """P(flare of at least the target class within 24 h) per record, ``(n_records,)``.

        ``rows``: optional boolean mask (n_records,); only those records are predicted (their
        sequences still gather every record of ``X``), the others are NaN.
        """
        check_fitted(self, "network_")
        if not isinstance(X, pl.DataFrame):
            raise ModelError("LSTMForecaster needs a polars frame with harpnum and t_rec")
        x = as_feature_matrix(X, self.feature_names_in_, self.n_features_in_)
        z = self.scaler_.transform(x).astype(np.float32)
        c = self.config
        index, lengths = sequence_index(X, n_steps=c.n_steps, max_lookback_h=c.max_lookback_h,
                                        step_h=c.step_h)
        out = np.full(X.height, np.nan, dtype=np.float64)
        if rows is None:
            wanted = np.arange(X.height)
        else:
            rows = np.asarray(rows, dtype=bool)
            if rows.shape != (X.height,):
                raise ModelError(f"rows must be a boolean mask of {X.height} records, got "
                                 f"shape {rows.shape}")
            wanted = np.flatnonzero(rows)
        # bounded memory at 10^6 records: equal parts, none much smaller than the others
        for part in np.array_split(wanted, max(1, -(-wanted.size // _PREDICT_CHUNK))):
            if part.size == 0:
                continue
            seq = gather_sequences(z, index[part])
            out[part] = self._event_probability(torch.as_tensor(seq),
                                                torch.as_tensor(lengths[part]))
        return out
