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
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, Self

import numpy as np
import torch
from torch import nn

from ..config import check_positive
from ..errors import ConfigError, ModelError
from ..metrics import true_skill_statistic
from .baselines import (
    _as_binary_labels,
    _as_feature_matrix,
    _check_fitted,
    _read_meta,
    _select_feature_names,
)
from .persistence import load_sklearn, load_torch, save_sklearn, save_torch, write_json

__all__ = ["DeFNConfig", "DeepFlareNet", "DeFNNetwork", "default_class_weight"]

logger = logging.getLogger(__name__)

Target = Literal["M", "C"]
_DEFAULT_CLASS_WEIGHT: dict[str, tuple[float, float]] = {"M": (1.0, 50.0), "C": (1.0, 4.0)}
_LABEL_COLUMN = {"M": "m_within_24h", "C": "c_within_24h"}


def default_class_weight(target: Target) -> tuple[float, float]:
    """Loss weights (no-flare, flare) of Nishizuka et al. (2018): 1:50 for >=M, 1:4 for >=C."""
    try:
        return _DEFAULT_CLASS_WEIGHT[target]
    except KeyError:
        raise ConfigError(f"target must be 'M' or 'C', got {target!r}") from None


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

    def __post_init__(self) -> None:
        for name in ("hidden", "learning_rate", "batch_size", "max_epochs"):
            check_positive(name, getattr(self, name))
        for name in ("hidden", "batch_size", "max_epochs"):
            if not isinstance(getattr(self, name), int):
                raise ConfigError(f"{name} must be an int, got {getattr(self, name)!r}")
        if self.batch_size < 2:
            raise ConfigError(f"batch_size must be >= 2 (batch norm), got {self.batch_size}")
        if self.patience is not None:
            check_positive("patience", self.patience)
        if self.class_weight is not None:
            if len(self.class_weight) != 2:
                raise ConfigError(f"class_weight needs 2 values, got {self.class_weight!r}")
            for w in self.class_weight:
                check_positive("class_weight", w)
            object.__setattr__(self, "class_weight", tuple(float(w) for w in self.class_weight))
        if self.weight_decay < 0:
            raise ConfigError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        if not 0.0 < self.threshold < 1.0:
            raise ConfigError(f"threshold must be in (0, 1), got {self.threshold!r}")


class DeFNNetwork(nn.Module):
    """The DeFN residual MLP: (batch, n_in) standardised features -> (batch, 2) logits.

    Softmax of the logits gives P(no flare), P(flare).
    """

    def __init__(self, n_in: int, hidden: int = 200) -> None:
        super().__init__()

        def dense(a: int, b: int, relu: bool = True) -> list[nn.Module]:
            layers: list[nn.Module] = [nn.Linear(a, b), nn.BatchNorm1d(b)]
            return [*layers, nn.ReLU()] if relu else layers

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


def _pick_device(requested: str | None) -> torch.device:
    if requested is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def _train_keep_best_tss(
    network: nn.Module,
    train_inputs: tuple[np.ndarray, ...],
    y_train: np.ndarray,
    val_inputs: tuple[np.ndarray, ...],
    y_val: np.ndarray,
    *,
    settings: Any,
    class_weight: tuple[float, float],
    device: torch.device,
    name: str,
) -> tuple[dict[str, torch.Tensor], int, float, list[dict[str, float]]]:
    """Adam + class-weighted cross entropy; return the state of the best-validation-TSS epoch.

    ``network(*inputs)`` must return (batch, 2) logits. ``settings`` supplies
    ``learning_rate``, ``weight_decay``, ``batch_size``, ``max_epochs``, ``patience``,
    ``threshold`` and ``seed`` (batch order). The network is trained on ``device`` and left on
    the CPU; the returned state dict holds CPU tensors.

    Returns
    -------
    best_state, best_epoch (1-based), best_val_tss, history (one dict per epoch)
    """
    network = network.to(device)
    gen = torch.Generator().manual_seed(settings.seed)

    def tensors(arrays: tuple[np.ndarray, ...]) -> list[torch.Tensor]:
        out = []
        for a in arrays:
            dtype = torch.float32 if np.issubdtype(a.dtype, np.floating) else torch.long
            out.append(torch.as_tensor(a, dtype=dtype, device=device))
        return out

    xt, xv = tensors(train_inputs), tensors(val_inputs)
    yt = torch.as_tensor(y_train, dtype=torch.long, device=device)
    yv = torch.as_tensor(y_val, dtype=torch.long, device=device)
    loss_fn = nn.CrossEntropyLoss(
        weight=torch.tensor(class_weight, dtype=torch.float32, device=device)
    )
    optimiser = torch.optim.Adam(
        network.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay
    )
    history: list[dict[str, float]] = []
    best_tss, best_epoch, best_state = -math.inf, 0, None
    n = yt.shape[0]
    for epoch in range(1, settings.max_epochs + 1):
        network.train()
        order = torch.randperm(n, generator=gen).to(device)
        total, seen = 0.0, 0
        for start in range(0, n, settings.batch_size):
            idx = order[start : start + settings.batch_size]
            if idx.numel() < 2:  # batch norm needs two samples in training mode
                continue
            optimiser.zero_grad()
            loss = loss_fn(network(*(x[idx] for x in xt)), yt[idx])
            loss.backward()
            optimiser.step()
            total += loss.item() * idx.numel()
            seen += idx.numel()
        network.eval()
        with torch.no_grad():
            logits = network(*xv)
            val_loss = float(loss_fn(logits, yv))
            p_val = torch.softmax(logits, dim=1)[:, 1].cpu().numpy()
        val_tss = true_skill_statistic(y_val, p_val >= settings.threshold)
        history.append(
            {"epoch": epoch, "train_loss": total / max(seen, 1), "val_loss": val_loss,
             "val_tss": val_tss}
        )
        logger.debug("%s epoch %d: val TSS %.3f, val loss %.4f", name, epoch, val_tss, val_loss)
        if val_tss > best_tss:
            best_tss, best_epoch = val_tss, epoch
            best_state = {k: v.detach().to("cpu", copy=True) for k, v in
                          network.state_dict().items()}
        elif settings.patience is not None and epoch - best_epoch >= settings.patience:
            logger.info("%s: no better validation TSS for %d epochs; stop", name,
                        settings.patience)
            break
    network.to("cpu")
    if best_state is None:  # every epoch gave a NaN TSS: cannot happen with both classes
        raise ModelError("no epoch produced a finite validation TSS")
    logger.info("%s: kept epoch %d of %d, validation TSS %.3f", name, best_epoch,
                len(history), best_tss)
    return best_state, best_epoch, best_tss, history


class DeepFlareNet:
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

    Examples
    --------
    >>> model = DeepFlareNet("M", config=DeFNConfig(max_epochs=20))  # doctest: +SKIP
    >>> model.fit(train, train["m_within_24h"], X_val=val, y_val=val["m_within_24h"])
    >>> p = model.predict_proba(test)  # (n_samples,) P(>=M flare in (t, t + 24 h])
    """

    def __init__(
        self,
        target: Target = "M",
        *,
        config: DeFNConfig | None = None,
        features: Sequence[str] | None = None,
    ) -> None:
        self.target = target
        self.config = config if config is not None else DeFNConfig()
        self.features = features

    @property
    def label_column(self) -> str:
        """Dataset label column of the target: ``m_within_24h`` or ``c_within_24h``."""
        default_class_weight(self.target)  # validates target
        return _LABEL_COLUMN[self.target]

    @property
    def class_weight(self) -> tuple[float, float]:
        """(no flare, flare) loss weights in use."""
        cfg_weight = self.config.class_weight
        return cfg_weight if cfg_weight is not None else default_class_weight(self.target)

    # ------------------------------------------------------------------------------- fitting

    def fit(self, X: Any, y: Any, *, X_val: Any, y_val: Any) -> Self:  # noqa: N803
        """Train and keep the epoch with the best validation TSS.

        Parameters
        ----------
        X : ndarray (n_samples, n_features) or polars.DataFrame
            Training features; NaN/null values are imputed with the training mean (counted
            and logged).
        y : array-like (n_samples,) bool or 0/1
            Training labels.
        X_val, y_val
            Validation samples (regions disjoint from training and test); they choose the epoch
            and must contain both classes.

        Returns
        -------
        self
        """
        from sklearn.impute import SimpleImputer
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        cfg = self.config
        weights = self.class_weight
        names = _select_feature_names(X, self.features)
        x_train = _as_feature_matrix(X, names)
        y_train = _as_binary_labels(y, x_train.shape[0])
        x_val = _as_feature_matrix(X_val, names, x_train.shape[1])
        y_val_arr = _as_binary_labels(y_val, x_val.shape[0])
        if x_train.shape[0] < 2:
            raise ModelError(f"need at least 2 training samples, got {x_train.shape[0]}")
        if np.unique(y_val_arr).size < 2:
            raise ModelError("validation labels must contain both classes (TSS is undefined)")
        n_missing = int(np.isnan(x_train).sum())
        if n_missing:
            logger.info("DeFN: imputing %d missing training feature values", n_missing)

        scaler = make_pipeline(SimpleImputer(strategy="mean", keep_empty_features=True),
                               StandardScaler())
        z_train = scaler.fit_transform(x_train)
        z_val = scaler.transform(x_val)

        device = _pick_device(cfg.device)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            network = DeFNNetwork(x_train.shape[1], cfg.hidden)
        best_state, best_epoch, best_tss, history = _train_keep_best_tss(
            network, (z_train,), y_train, (z_val,), y_val_arr,
            settings=cfg, class_weight=weights, device=device, name=f"DeFN >={self.target}",
        )
        network.load_state_dict(best_state)
        self.network_ = network.eval()
        self.scaler_ = scaler
        self.feature_names_in_ = names
        self.n_features_in_ = x_train.shape[1]
        self.best_epoch_ = best_epoch
        self.best_val_tss_ = best_tss
        self.history_ = history
        return self

    # ---------------------------------------------------------------------------- prediction

    def predict_proba(self, X: Any) -> np.ndarray:
        """P(flare of at least the target class within 24 h), shape ``(n_samples,)``."""
        _check_fitted(self, "network_")
        x = _as_feature_matrix(X, self.feature_names_in_, self.n_features_in_)
        z = torch.as_tensor(self.scaler_.transform(x), dtype=torch.float32)
        self.network_.eval()
        with torch.no_grad():
            return torch.softmax(self.network_(z), dim=1)[:, 1].numpy().astype(np.float64)

    def predict(self, X: Any) -> np.ndarray:
        """Yes/no forecast: ``predict_proba(X) >= config.threshold``."""
        return self.predict_proba(X) >= self.config.threshold

    # --------------------------------------------------------------------------- persistence

    def save(self, directory: str | Path) -> Path:
        """Write ``network.pt`` (state_dict), ``scaler.skops`` and ``meta.json``."""
        _check_fitted(self, "network_")
        d = Path(directory)
        save_torch(self.network_.state_dict(), d / "network.pt")
        save_sklearn(self.scaler_, d / "scaler.skops")
        meta = {
            "class": type(self).__name__,
            "target": self.target,
            "config": asdict(self.config),
            "features": None if self.features is None else list(self.features),
            "feature_names_in": self.feature_names_in_,
            "n_features_in": self.n_features_in_,
            "best_epoch": self.best_epoch_,
            "best_val_tss": self.best_val_tss_,
            "history": self.history_,
        }
        write_json(meta, d / "meta.json")
        return d

    @classmethod
    def load(cls, directory: str | Path) -> Self:
        """Read a model written by `save`; the network is on the CPU in eval mode."""
        d = Path(directory)
        meta = _read_meta(d, cls.__name__)
        cfg = dict(meta["config"])
        if cfg.get("class_weight") is not None:
            cfg["class_weight"] = tuple(cfg["class_weight"])
        model = cls(meta["target"], config=DeFNConfig(**cfg), features=meta["features"])
        network = DeFNNetwork(int(meta["n_features_in"]), model.config.hidden)
        try:
            network.load_state_dict(load_torch(d / "network.pt"))
        except RuntimeError as e:  # shape or key mismatch
            raise ModelError(f"network weights in {d} do not match the saved layout: {e}") from e
        model.network_ = network.eval()
        model.scaler_ = load_sklearn(d / "scaler.skops")
        model.feature_names_in_ = meta["feature_names_in"]
        model.n_features_in_ = int(meta["n_features_in"])
        model.best_epoch_ = int(meta["best_epoch"])
        model.best_val_tss_ = float(meta["best_val_tss"])
        model.history_ = meta["history"]
        return model

