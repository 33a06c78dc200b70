"""Shared machinery of the torch yes/no flare classifiers (`defn.DeepFlareNet`, `lstm.LSTMForecaster`).

Both models standardise their inputs with training statistics, train a network that returns
(batch, 2) logits of (no flare, flare) with class-weighted cross entropy and Adam, and keep the
epoch with the highest true skill statistic on the caller's validation set (a region-disjoint
split or a later period; never the test set), or, with ``epoch_score="last"``, train a fixed
number of epochs without validation data (a refit with the epochs a validation run chose). `TorchBinaryClassifier` holds what they share: the training loop,
prediction, the fitted check and saving to / loading from a directory of ``network.pt``
(state_dict), ``scaler.skops`` and ``meta.json``. A model supplies its settings class, its input
preparation and `TorchBinaryClassifier._build_network`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, replace
from typing import Any, ClassVar, Generic, Literal, Protocol, Self, TypeVar, get_args

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import StrOptions
from torch import nn

from ..config import check_positive
from ..errors import ConfigError, ModelError
from ..metrics import best_tss_threshold, true_skill_statistic
from ._inputs import META_FILE, as_binary_labels, check_fitted
from .persistence import ModelState, StateLayout

__all__ = [
    "MemberAverage",
    "Target",
    "TorchBinaryClassifier",
    "TrainingSettings",
    "check_common_settings",
    "default_class_weight",
    "pick_device",
    "train_keep_best_tss",
]

logger = logging.getLogger(__name__)

Target = Literal["M", "C"]
#: How `train_keep_best_tss` scores an epoch on the validation set: the TSS of the forecast
#: ``P >= threshold`` ("tss_at_threshold", the DeFN paper) or the best TSS over all
#: thresholds ("best_tss"; the threshold is then chosen on the same validation set, so the
#: epoch and the threshold are picked by one criterion). "last" scores nothing: it trains
#: exactly ``max_epochs`` epochs and keeps the last one, with no validation data (the refit
#: of a model on all records with the number of epochs a validation run selected).
EpochScore = Literal["tss_at_threshold", "best_tss", "last"]
EPOCH_SCORES: tuple[str, ...] = get_args(EpochScore)
_DEFAULT_CLASS_WEIGHT: dict[str, tuple[float, float]] = {"M": (1.0, 50.0), "C": (1.0, 4.0)}
_NETWORK_FILE = "network.pt"
_SCALER_FILE = "scaler.skops"



class TrainingSettings(Protocol):
    """What the shared training code reads from a model's frozen settings dataclass."""

    @property
    def class_weight(self) -> tuple[float, float] | None: ...
    @property
    def learning_rate(self) -> float: ...
    @property
    def weight_decay(self) -> float: ...
    @property
    def batch_size(self) -> int: ...
    @property
    def max_epochs(self) -> int: ...
    @property
    def patience(self) -> int | None: ...
    @property
    def threshold(self) -> float: ...
    @property
    def seed(self) -> int: ...
    @property
    def device(self) -> str | None: ...
    @property
    def n_members(self) -> int: ...
    @property
    def epoch_score(self) -> EpochScore: ...
    @property
    def weight_average_decay(self) -> float | None: ...
    @property
    def input_noise(self) -> float: ...


ConfigT = TypeVar("ConfigT", bound=TrainingSettings)


def default_class_weight(target: Target) -> tuple[float, float]:
    """Loss weights (no-flare, flare) of Nishizuka et al. (2018): 1:50 for >=M, 1:4 for >=C."""
    try:
        return _DEFAULT_CLASS_WEIGHT[target]
    except KeyError:
        raise ConfigError(f"target must be 'M' or 'C', got {target!r}") from None


def check_common_settings(config: TrainingSettings) -> None:
    """Check the settings every torch classifier config has; call from ``__post_init__``.

    Checks ``patience`` (None or > 0), ``n_members`` (int >= 1), ``class_weight`` (None or
    two positive values, stored back as a tuple of floats), ``weight_decay`` (>= 0),
    ``threshold`` (in (0, 1)), ``epoch_score`` (one of `EPOCH_SCORES`),
    ``weight_average_decay`` (None or in (0, 1)) and ``input_noise`` (>= 0).
    """
    if config.patience is not None:
        check_positive("patience", config.patience)
    if config.class_weight is not None:
        if len(config.class_weight) != 2:
            raise ConfigError(f"class_weight needs 2 values, got {config.class_weight!r}")
        for w in config.class_weight:
            check_positive("class_weight", w)
        object.__setattr__(config, "class_weight", tuple(float(w) for w in config.class_weight))
    if not (isinstance(config.n_members, int) and config.n_members >= 1):
        raise ConfigError(f"n_members must be a positive int, got {config.n_members!r}")
    if config.weight_decay < 0:
        raise ConfigError(f"weight_decay must be >= 0, got {config.weight_decay!r}")
    if not 0.0 < config.threshold < 1.0:
        raise ConfigError(f"threshold must be in (0, 1), got {config.threshold!r}")
    if config.epoch_score not in EPOCH_SCORES:
        raise ConfigError(f"epoch_score must be one of {EPOCH_SCORES}, got {config.epoch_score!r}")
    if config.epoch_score == "last" and config.patience is not None:
        raise ConfigError(f"patience ({config.patience!r}) needs a validation score; "
                          "epoch_score='last' trains max_epochs epochs and must have "
                          "patience=None")
    if not config.input_noise >= 0.0:
        raise ConfigError(f"input_noise must be >= 0, got {config.input_noise!r}")
    decay = config.weight_average_decay
    if decay is not None and not 0.0 < decay < 1.0:
        raise ConfigError(f"weight_average_decay must be None or in (0, 1), got {decay!r}")


class MemberAverage(nn.Module):
    """Ensemble of networks with (batch, 2) logits whose event probabilities are averaged.

    ``forward`` returns ``log(mean_i softmax(member_i(x)))``, so a softmax of the output is
    the members' mean probability (a variance reducer: the members differ only in their
    initialisation and batch-order seeds).
    """

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        """Log of the mean member probabilities of (no flare, flare)."""
        probs = torch.stack([torch.softmax(m(*inputs), dim=1) for m in self.members])
        return torch.log(probs.mean(dim=0).clamp_min(1e-12))


def pick_device(requested: str | None) -> torch.device:
    """``requested`` as a torch device; None picks "cuda" when available, else "cpu"."""
    if requested is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def train_keep_best_tss(
    network: nn.Module,
    train_inputs: tuple[np.ndarray, ...],
    y_train: np.ndarray,
    val_inputs: tuple[np.ndarray, ...],
    y_val: np.ndarray,
    *,
    settings: TrainingSettings,
    class_weight: tuple[float, float],
    device: torch.device,
    name: str,
) -> tuple[dict[str, torch.Tensor], int, float, list[dict[str, float]]]:
    """Adam + class-weighted cross entropy; return the state of the best-validation-TSS epoch.

    ``network(*inputs)`` must return (batch, 2) logits. ``settings`` supplies
    ``learning_rate``, ``weight_decay``, ``batch_size``, ``max_epochs``, ``patience``,
    ``threshold`` and ``epoch_score`` (how an epoch's validation TSS is measured, see
    `EpochScore`), ``weight_average_decay`` (None, or the decay of an exponential moving
    average of the weights that is scored and kept instead of the raw weights),
    ``input_noise`` (standard deviation of Gaussian noise added to the float inputs of every
    training batch, in standardised units; 0 adds none) and ``seed`` (batch order and noise);
    ``class_weight`` and ``device`` are arguments. The network is trained on
    ``device`` and left on the CPU; the returned state dict holds CPU tensors.

    With ``epoch_score="last"`` nothing is validated: ``val_inputs``/``y_val`` are never
    read (pass a placeholder), exactly ``max_epochs`` epochs are trained and the last state
    is returned with ``best_epoch = max_epochs`` and ``best_val_tss = nan``.

    Returns
    -------
    best_state, best_epoch (1-based), best_val_tss, history (one dict per epoch)
    """
    no_validation = settings.epoch_score == "last"
    network = network.to(device)
    gen = torch.Generator().manual_seed(settings.seed)

    def tensors(arrays: tuple[np.ndarray, ...]) -> list[torch.Tensor]:
        out = []
        for a in arrays:
            dtype = torch.float32 if np.issubdtype(a.dtype, np.floating) else torch.long
            out.append(torch.as_tensor(a, dtype=dtype, device=device))
        return out

    xt = tensors(train_inputs)
    xv = [] if no_validation else tensors(val_inputs)
    yt = torch.as_tensor(y_train, dtype=torch.long, device=device)
    yv = None if no_validation else torch.as_tensor(y_val, dtype=torch.long, device=device)
    loss_fn = nn.CrossEntropyLoss(
        weight=torch.tensor(class_weight, dtype=torch.float32, device=device)
    )
    optimiser = torch.optim.Adam(
        network.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay
    )
    # Exponential moving average of the weights and batch-norm statistics, updated after
    # every step; when set, it (not the raw network) is what each epoch is scored on and kept.
    averaged = None
    if settings.weight_average_decay is not None:
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        averaged = AveragedModel(
            network, multi_avg_fn=get_ema_multi_avg_fn(settings.weight_average_decay),
            use_buffers=True,
        )
    scored = network if averaged is None else averaged.module
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
            batch = [x[idx] for x in xt]
            if settings.input_noise:
                # Gaussian noise injection (Bishop 1995: ~ Tikhonov regularisation); only on
                # float inputs (categorical codes stay as they are)
                batch = [x + settings.input_noise * torch.randn(
                    x.shape, generator=gen).to(device) if x.is_floating_point() else x
                    for x in batch]
            loss = loss_fn(network(*batch), yt[idx])
            loss.backward()
            optimiser.step()
            if averaged is not None:
                averaged.update_parameters(network)
            total += loss.item() * idx.numel()
            seen += idx.numel()
        if no_validation:
            history.append({"epoch": epoch, "train_loss": total / max(seen, 1)})
            logger.debug("%s epoch %d: train loss %.4f", name, epoch, history[-1]["train_loss"])
            continue
        scored.eval()
        with torch.no_grad():
            logits = scored(*xv)
            val_loss = float(loss_fn(logits, yv))
            p_val = torch.softmax(logits, dim=1)[:, 1].cpu().numpy()
        if settings.epoch_score == "best_tss":
            val_tss = best_tss_threshold(y_val, p_val)[1]
        else:
            val_tss = true_skill_statistic(y_val, p_val >= settings.threshold)
        history.append(
            {"epoch": epoch, "train_loss": total / max(seen, 1), "val_loss": val_loss,
             "val_tss": val_tss}
        )
        logger.debug("%s epoch %d: val TSS %.3f, val loss %.4f", name, epoch, val_tss, val_loss)
        if val_tss > best_tss:
            best_tss, best_epoch = val_tss, epoch
            best_state = {k: v.detach().to("cpu", copy=True) for k, v in
                          scored.state_dict().items()}
        elif settings.patience is not None and epoch - best_epoch >= settings.patience:
            logger.info("%s: no better validation TSS for %d epochs; stop", name,
                        settings.patience)
            break
    network.to("cpu")
    if no_validation:
        logger.info("%s: trained %d epochs (fixed, no validation), kept the last", name,
                    len(history))
        last = {k: v.detach().to("cpu", copy=True) for k, v in scored.state_dict().items()}
        return last, len(history), math.nan, history
    if best_state is None:  # every epoch gave a NaN TSS: cannot happen with both classes
        raise ModelError("no epoch produced a finite validation TSS")
    logger.info("%s: kept epoch %d of %d, validation TSS %.3f", name, best_epoch,
                len(history), best_tss)
    return best_state, best_epoch, best_tss, history


class TorchBinaryClassifier(BaseEstimator, Generic[ConfigT]):
    """Base of the torch classifiers of P(flare of at least ``target`` within 24 h).

    A scikit-learn estimator: ``fit(X, y, *, X_val=None, y_val=None)`` returns self,
    `predict_proba` gives P(event) of shape ``(n_samples,)`` and `predict` the yes/no
    forecast. Without ``X_val`` the network trains ``max_epochs`` epochs and keeps the last
    (as ``epoch_score="last"``).

    A subclass sets ``config_class`` (a frozen dataclass satisfying `TrainingSettings`),
    ``model_name`` (for log lines), and implements
    `_build_network` (the untrained network for ``n_in`` features, from ``self.config``; used
    by `fit` and `load`), ``fit`` and ``predict_proba``. ``fit`` prepares its inputs and calls
    `_fit_network`; ``predict_proba`` calls `_event_probability`.

    Parameters
    ----------
    target : {"M", "C"}, default "M"
        Flare class threshold; sets the default loss weights (labels are passed to ``fit``).
    config : ConfigT, optional
        Training settings; default ``config_class()``.
    features : sequence of str, optional
        Frame columns to use; default every numeric column that is not an identifier or label.
    """

    config_class: ClassVar[type[TrainingSettings]]
    model_name: ClassVar[str]
    _parameter_constraints: ClassVar[dict]

    def __init__(
        self,
        target: Target = "M",
        *,
        config: ConfigT | None = None,
        features: Sequence[str] | None = None,
    ) -> None:
        self.target = target
        self.config: ConfigT = config if config is not None else self.config_class()
        self.features = features

    @property
    def class_weight(self) -> tuple[float, float]:
        """(no flare, flare) loss weights in use."""
        cfg_weight = self.config.class_weight
        return cfg_weight if cfg_weight is not None else default_class_weight(self.target)

    def _build_network(self, n_in: int) -> nn.Module:  # pragma: no cover - abstract
        raise NotImplementedError

    def predict_proba(self, X: Any) -> np.ndarray:  # noqa: N803 # pragma: no cover - abstract
        raise NotImplementedError

    # ------------------------------------------------------------------------------- fitting

    def _check_labels(
        self, y: Any, n_train: int, y_val: Any, n_val: int | None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """0/1 training and validation labels; validation must hold both classes, unless
        nothing is validated (``n_val`` None: no validation data; or ``epoch_score="last"``:
        the validation labels are never read)."""
        y_train = as_binary_labels(y, n_train)
        if n_val is None:
            return y_train, None
        y_val_arr = as_binary_labels(y_val, n_val)
        if self.config.epoch_score == "last":
            return y_train, y_val_arr
        if np.unique(y_val_arr).size < 2:
            raise ModelError("validation labels must contain both classes (TSS is undefined)")
        return y_train, y_val_arr

    def _training_config(self, validated: bool) -> ConfigT:
        """``self.config``, or without validation data its ``epoch_score="last"`` variant."""
        cfg = self.config
        if validated or cfg.epoch_score == "last":
            return cfg
        logger.info("%s >=%s: no validation data; training %d epochs, keeping the last",
                    self.model_name, self.target, cfg.max_epochs)
        return replace(cfg, epoch_score="last", patience=None)

    def _fit_network(
        self,
        n_in: int,
        train_inputs: tuple[np.ndarray, ...],
        y_train: np.ndarray,
        val_inputs: tuple[np.ndarray, ...] | None,
        y_val: np.ndarray | None,
    ) -> None:
        """Build a seeded network, train it and set ``network_`` and the fit summary.

        ``val_inputs`` None: no validation, ``max_epochs`` epochs, the last kept."""
        cfg = self._training_config(val_inputs is not None)
        if val_inputs is None:
            val_inputs, y_val = (), np.zeros(0, dtype=np.int64)  # never read
        members: list[nn.Module] = []
        for i in range(cfg.n_members):
            settings = replace(cfg, seed=cfg.seed + i)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(settings.seed)
                network = self._build_network(n_in)
            best_state, best_epoch, best_tss, history = train_keep_best_tss(
                network, train_inputs, y_train, val_inputs, y_val,
                settings=settings, class_weight=self.class_weight,
                device=pick_device(cfg.device),
                name=f"{self.model_name} >={self.target} member {i}",
            )
            network.load_state_dict(best_state)
            members.append(network.eval())
            if i == 0:  # the summary attributes describe the first member
                self.best_epoch_ = best_epoch
                self.best_val_tss_ = best_tss
                self.history_ = history
        self.network_ = self._assemble(members).eval()

    def _assemble(self, members: Sequence[nn.Module]) -> nn.Module:
        """The network used for prediction: the single member, or their `MemberAverage`."""
        return members[0] if len(members) == 1 else MemberAverage(members)

    # ---------------------------------------------------------------------------- prediction

    def _event_probability(self, *inputs: torch.Tensor) -> np.ndarray:
        """P(flare) from the fitted network, shape ``(n_samples,)`` float64."""
        self.network_.eval()
        with torch.no_grad():
            return torch.softmax(self.network_(*inputs), dim=1)[:, 1].numpy().astype(np.float64)

    def predict(self, X: Any) -> np.ndarray:  # noqa: N803
        """Yes/no forecast: ``predict_proba(X) >= config.threshold``."""
        return self.predict_proba(X) >= self.config.threshold

    # --------------------------------------------------------------------------- persistence

    state_layout: ClassVar[StateLayout]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._parameter_constraints = {
            "target": [StrOptions(set(_DEFAULT_CLASS_WEIGHT))],
            "config": [cls.config_class, None],
            "features": ["array-like", None],
        }
        cls.state_layout = StateLayout(
            meta_file=META_FILE, header={"class": cls.__name__},
            what=f"{cls.__name__} model directory",
            sklearn=(_SCALER_FILE,), torch=(_NETWORK_FILE,))

    def _get_state(self) -> ModelState:
        """``network.pt`` (state_dict), ``scaler.skops`` and ``meta.json``."""
        check_fitted(self, "network_")
        meta = {
            "target": self.target,
            "config": asdict(self.config),
            "features": None if self.features is None else list(self.features),
            "feature_names_in": self.feature_names_in_,
            "n_features_in": self.n_features_in_,
            "best_epoch": self.best_epoch_,
            # NaN (nothing validated, epoch_score="last") is written as null
            "best_val_tss": (None if math.isnan(self.best_val_tss_)
                             else self.best_val_tss_),
            "history": self.history_,
        }
        return ModelState(meta=meta, sklearn={_SCALER_FILE: self.scaler_},
                          torch={_NETWORK_FILE: self.network_.state_dict()})

    @classmethod
    def _from_state(cls, state: ModelState) -> Self:
        """The network is on the CPU in eval mode."""
        meta = state.meta
        cfg = dict(meta["config"])
        if cfg.get("class_weight") is not None:
            cfg["class_weight"] = tuple(cfg["class_weight"])
        model = cls(meta["target"], config=cls.config_class(**cfg), features=meta["features"])
        n_in = int(meta["n_features_in"])
        network = model._assemble(
            [model._build_network(n_in) for _ in range(model.config.n_members)])
        try:
            network.load_state_dict(state.torch[_NETWORK_FILE])
        except RuntimeError as e:  # shape or key mismatch
            raise ModelError(f"network weights do not match the saved layout: {e}") from e
        model.network_ = network.eval()
        model.scaler_ = state.sklearn[_SCALER_FILE]
        model.feature_names_in_ = meta["feature_names_in"]
        model.n_features_in_ = int(meta["n_features_in"])
        model.best_epoch_ = int(meta["best_epoch"])
        tss = meta["best_val_tss"]
        model.best_val_tss_ = math.nan if tss is None else float(tss)
        model.history_ = meta["history"]
        return model

