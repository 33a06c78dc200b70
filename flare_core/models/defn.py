"""Deep Flare Net (DeFN): a residual multilayer perceptron for >=M / >=C flares within 24 h.

After Nishizuka et al. (2018, ApJ 858, 113). Inputs are standardised with statistics of the
training samples only; the network is

    n_in -> [200 -> 200 -> n_in] (+ skip) -> [200 -> 200 -> n_in] (+ skip) -> 200 -> 2 (softmax)

(node layout ``[n_in, 200, 200, n_in, 200, 200, n_in, 200, 2]``), every hidden layer with batch
normalisation and ReLU. Each bracketed block ends at width ``n_in`` where its input is added
back (``h <- h + block(h)``). The loss is class-weighted cross entropy (1:50 for >=M, 1:4 for
>=C by default), the optimiser Adam (lr 1e-3, batch 150). The epoch kept is the one with the
highest true skill statistic on the caller's validation set (a region-disjoint split; never the
test set), the forecast being "event" when P(event) >= 0.5.

Labels: ``m_within_24h`` (target "M") or ``c_within_24h`` (target "C") — a flare of at least
that class peaks in ``(t_rec, t_rec + 24 h]``, UTC.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
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
from ._torch_classifier import (
    EpochScore,
    TorchBinaryClassifier,
    check_common_settings,
    default_class_weight,
)

__all__ = ["DeFNConfig", "DeepFlareNet", "DeFNNetwork", "default_class_weight"]

logger = logging.getLogger(__name__)

#: Records per forward pass in `DeepFlareNet.predict_proba` (a 200-wide hidden layer of 65 k
#: records is 52 MB of float32).
_PREDICT_CHUNK = 65_536

_LABEL_COLUMN = {"M": "m_within_24h", "C": "c_within_24h"}


@dataclass(frozen=True)
class DeFNConfig:
    """Training settings of `DeepFlareNet`.

    Parameters
    ----------
    hidden : int, default 200
        Width of the hidden layers.
    class_weight : (float, float) or None
        Cross-entropy weights of (no flare, flare); None uses `default_class_weight` of the
        target.
    learning_rate : float, default 1e-3
        Adam step size.
    batch_size : int, default 150
    max_epochs : int, default 50
    patience : int or None, default None
        Stop after this many epochs without a better validation TSS; None runs every epoch.
    weight_decay : float, default 0.0
        Adam L2 penalty.
    threshold : float, default 0.5
        P(event) at or above which the forecast is "event" when scoring validation TSS.
    seed : int, default 0
        Seeds weight initialisation and batch order; fits are reproducible on CPU.
    device : str or None, default None
        torch device; None picks "cuda" when available, else "cpu".
    n_members : int, default 1
        Networks trained with seeds ``seed, seed + 1, ...`` (each keeping its own
        best-validation-TSS epoch) whose probabilities are averaged; 1 is a single network.
    epoch_score : {"tss_at_threshold", "best_tss"}, default "tss_at_threshold"
        Validation TSS that picks the epoch: at ``threshold`` (the paper), or the best over
        all thresholds (consistent with a decision threshold chosen on validation data).
    weight_average_decay : float or None, default None
        If set, an exponential moving average of the weights (this decay per step) is scored
        and kept instead of the raw weights.
    dropout : float, default 0.0
        Dropout probability after every hidden ReLU; 0 is the paper's network.
    input_noise : float, default 0.0
        Standard deviation of Gaussian noise added to the standardised inputs of every
        training batch (a regulariser; 0 is the paper's training).
    """

    hidden: int = 200
    class_weight: tuple[float, float] | None = None
    learning_rate: float = 1e-3
    batch_size: int = 150
    max_epochs: int = 50
    patience: int | None = None
    weight_decay: float = 0.0
    threshold: float = 0.5
    seed: int = 0
    device: str | None = None
    n_members: int = 1
    epoch_score: EpochScore = "tss_at_threshold"
    weight_average_decay: float | None = None
    dropout: float = 0.0
    input_noise: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout!r}")
        for name in ("hidden", "learning_rate", "batch_size", "max_epochs"):
            check_positive(name, getattr(self, name))
        for name in ("hidden", "batch_size", "max_epochs"):
            if not isinstance(getattr(self, name), int):
                raise ConfigError(f"{name} must be an int, got {getattr(self, name)!r}")
        if self.batch_size < 2:
            raise ConfigError(f"batch_size must be >= 2 (batch norm), got {self.batch_size}")
        check_common_settings(self)


class DeFNNetwork(nn.Module):
    """The DeFN residual MLP: (batch, n_in) standardised features -> (batch, 2) logits.

    Softmax of the logits gives P(no flare), P(flare). ``dropout`` > 0 adds dropout after
    every hidden ReLU (not in the paper; parameter names are the same either way).
    """

    def __init__(self, n_in: int, hidden: int = 200, dropout: float = 0.0) -> None:
        super().__init__()

        def dense(a: int, b: int, relu: bool = True) -> list[nn.Module]:
            layers: list[nn.Module] = [nn.Linear(a, b), nn.BatchNorm1d(b)]
            if not relu:
                return layers
            return [*layers, nn.ReLU(), nn.Dropout(dropout)] if dropout else [*layers, nn.ReLU()]

        self.block1 = nn.Sequential(
            *dense(n_in, hidden), *dense(hidden, hidden), *dense(hidden, n_in, relu=False)
        )
        self.block2 = nn.Sequential(
            *dense(n_in, hidden), *dense(hidden, hidden), *dense(hidden, n_in, relu=False)
        )
        self.head = nn.Sequential(*dense(n_in, hidden), nn.Linear(hidden, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of (no flare, flare)."""
        h = x + self.block1(x)
        h = h + self.block2(h)
        return self.head(h)


class DeepFlareNet(TorchBinaryClassifier[DeFNConfig]):
    """Deep Flare Net probability of a >=M (or >=C) flare within 24 h of ``t_rec``.

    Parameters
    ----------
    target : {"M", "C"}, default "M"
        Flare class threshold; only sets the default loss weights and the label column name
        ``label_column`` (``m_within_24h`` / ``c_within_24h``) — labels are passed to `fit`.
    config : DeFNConfig, optional
        Training settings.
    features : sequence of str, optional
        Frame columns to use; default every numeric column that is not an identifier or label.

    Attributes
    ----------
    network_ : DeFNNetwork
        The network of the best-validation-TSS epoch, in eval mode on the CPU.
    scaler_ : sklearn Pipeline
        Mean imputation then standardisation, fitted on the training samples only.
    best_epoch_ : int
        1-based epoch kept.
    best_val_tss_ : float
        Validation TSS of that epoch.
    history_ : list of dict
        Per epoch: ``epoch``, ``train_loss``, ``val_loss``, ``val_tss``.

    See Also
    --------
    flare_core.models._torch_classifier.TorchBinaryClassifier : training loop, `predict`,
        `save` (``network.pt``, ``scaler.skops``, ``meta.json``) and `load`.

    Examples
    --------
    >>> model = DeepFlareNet("M", config=DeFNConfig(max_epochs=20))  # doctest: +SKIP
    >>> model.fit(train, train["m_within_24h"], X_val=val, y_val=val["m_within_24h"])
    >>> refit = sklearn.base.clone(model).fit(everything, everything["m_within_24h"])
    >>> p = model.predict_proba(test)  # (n_samples,) P(>=M flare in (t, t + 24 h])
    """

    config_class = DeFNConfig
    model_name = "DeFN"

    @property
    def label_column(self) -> str:
        """Dataset label column of the target: ``m_within_24h`` or ``c_within_24h``."""
        default_class_weight(self.target)  # validates target
        return _LABEL_COLUMN[self.target]

    def _build_network(self, n_in: int) -> DeFNNetwork:
        return DeFNNetwork(n_in, self.config.hidden, self.config.dropout)

    def fit(self, X: Any, y: Any, *, X_val: Any = None, y_val: Any = None) -> Self:  # noqa: N803
        """Train and keep the epoch with the best validation TSS.

        Parameters
        ----------
        X : ndarray (n_samples, n_features) or polars.DataFrame
            Training features; NaN/null values are imputed with the training mean (counted
            and logged).
        y : array-like (n_samples,) bool or 0/1
            Training labels.
        X_val, y_val : optional
            Validation samples (regions disjoint from training and test); they choose the epoch
            and must contain both classes. Without them the network trains ``max_epochs``
            epochs and the last is kept (a refit with the epochs a validation run chose).

        Returns
        -------
        self
        """
        validate_params(self)
        if (X_val is None) != (y_val is None):
            raise ModelError("pass both X_val and y_val, or neither")
        names = select_feature_names(X, self.features)
        x_train = as_feature_matrix(X, names)
        x_val = None if X_val is None else as_feature_matrix(X_val, names, x_train.shape[1])
        if x_train.shape[0] < 2:
            raise ModelError(f"need at least 2 training samples, got {x_train.shape[0]}")
        y_train, y_val_arr = self._check_labels(
            y, x_train.shape[0], y_val, None if x_val is None else x_val.shape[0])
        log_missing_values(x_train, self.model_name)
        scaler = make_standardiser().fit(x_train)
        self._fit_network(
            x_train.shape[1], (scaler.transform(x_train),), y_train,
            None if x_val is None else (scaler.transform(x_val),), y_val_arr,
        )
        self.scaler_ = scaler
        self.feature_names_in_ = names
        self.n_features_in_ = x_train.shape[1]
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """P(flare of at least the target class within 24 h), shape ``(n_samples,)``."""
        check_fitted(self, "network_")
        x = as_feature_matrix(X, self.feature_names_in_, self.n_features_in_)
        if x.shape[0] <= _PREDICT_CHUNK:
            return self._event_probability(
                torch.as_tensor(self.scaler_.transform(x), dtype=torch.float32))
        # in chunks: each hidden layer of a whole 10^6-record batch is ~0.8 GB of float32
        # (equal parts, none much smaller than the others)
        out = np.empty(x.shape[0], dtype=np.float64)
        for part in np.array_split(np.arange(x.shape[0]), -(-x.shape[0] // _PREDICT_CHUNK)):
            lo, hi = part[0], part[-1] + 1
            out[lo:hi] = self._event_probability(
                torch.as_tensor(self.scaler_.transform(x[lo:hi]), dtype=torch.float32))
        return out
