"""Cox-Time deep survival model of the time to a region's next >=M flare (hours).

Cox-Time (Kvamme, Borgan & Scheel 2019) is a relative-risk model without proportional
hazards: the log-risk ``g(x, t)`` is a neural net of the inputs *and* the time, trained with
case-control sampling (pycox ``CoxTime``). Following the survival paper (A&A 703, A99, 2025,
Sects. 2 and 4-5) the inputs are the running SHARP statistics (continuous, standardised) plus
categorical inputs as embeddings (expected flare class from `flare_core.models.flare_class`,
binned B/C flare counts), the net has 6 hidden layers, batch 150, AdamWR (cosine annealing
with warm restarts, cycle length x2, peak learning rate x0.8 per cycle), 2 sampled controls
per case and ``Tmax = 144 h``; early stopping on a validation split of *other* regions.

Public times are hours after the record time ``t_rec`` (UTC); pycox's duration scaling
(``LabTransCoxTime``) is internal. Per record the model gives the survival curve
``S(t | x)`` on a fixed grid ``0 .. tmax_h``, the restricted mean lifetime
``integral_0^Tmax S dt`` (hours; the mean of ``min(T, Tmax)``, so a quiet region sits near the
cap, see `flare_core.models.lifetime.lifetime_label`), its bias-corrected value and ``P(flare >= M within H h) = 1 - S(H)``.

Bias correction (our choice, documented): ``mu0`` is the mean lifetime of the *training
population*, i.e. the mean over training records of their predicted mean lifetimes
(``bias_reference="population"``, default). ``"baseline"`` instead uses the mean lifetime of
the Breslow baseline curve ``exp(-sum h0_j)`` (the curve of ``g = 0``, not of any real region).
The corrected mean lifetime is ``mean_lifetime - mu0``: negative means "flares sooner than a
typical training record", positive "later".

Inputs are clipped to ``input_clip`` standard deviations: the net extrapolates linearly, and
on sun2022 one record 64 standard deviations out (HARP 2673, three B flares in 4 h) got
``g = 13.6`` and held 96 % of the Breslow risk-set sum up to its 8 h duration, so every curve
stayed near 1 for 8 h and collapsed in hour 9. The case-control loss (2 sampled controls)
hardly ever compares against such a record, so nothing in training holds its ``g`` down.

Baseline hazards and survival curves are computed by the vectorised
`flare_core.models.baseline_hazard` (matches pycox to 1e-6; see tests and
``benchmarks/bench_survival.py``).
"""

from __future__ import annotations

import copy
import logging
from dataclasses import asdict, dataclass
from typing import ClassVar, Literal, NamedTuple

import numpy as np
import torch
from sklearn.base import BaseEstimator
from torch import nn

from ..config import check_positive
from ..errors import ConfigError, ModelError
from ._inputs import check_fitted, validate_params
from ._pycox_compat import import_pycox
from .baseline_hazard import (
    PiecewiseAffineLogRisk,
    breslow_baseline_hazards,
    cumulative_hazards,
    step_values,
)
from .lifetime import restricted_mean_lifetime
from .persistence import ModelState, StateLayout

__all__ = [
    "CoxTimeConfig",
    "CoxTimeNet",
    "SurvivalArrays",
    "CoxTimeModel",
]

logger = logging.getLogger(__name__)

_FORMAT_VERSION = 1


@dataclass(frozen=True)
class CoxTimeConfig:
    """Hyper-parameters of `CoxTimeModel` (paper defaults).

    Attributes
    ----------
    tmax_h : float
        Censoring horizon, hours; survival curves cover ``[0, tmax_h]``.
    grid_step_h : float
        Step of the output survival grid, hours.
    n_hidden : int
        Hidden layers (paper: 6).
    hidden_nodes : int
        Width of each hidden layer.
    time_layer : int
        Hidden layers that see only the record inputs before the time is concatenated
        (0 = pycox ``MLPVanillaCoxTime`` style: time is an input of the first layer). Layers
        before it run once per record when computing survival curves.
    embedding_dim : int
        Width of each categorical embedding.
    batch_norm : bool
        Batch normalisation after each hidden activation.
    dropout : float
        Dropout probability after each hidden layer (0 disables).
    input_noise : float
        Standard deviation of Gaussian noise added to the (standardised) continuous inputs in
        training mode only (a regulariser; 0 disables).
    input_clip : float or None
        Standardised continuous inputs are clipped to ``[-input_clip, input_clip]`` (training
        and prediction). A ReLU net extrapolates linearly, so a record far outside the
        training cloud (e.g. 3 B flares in 4 h: 50 standard deviations of a mostly-zero
        count) gets an extreme log-risk ``g`` that one such record can make dominate the
        Breslow risk sets; None disables.
    batch_size : int
        Cases per batch (paper: 150).
    epochs : int
        Maximum epochs.
    patience : int
        Early stopping: epochs without a better validation loss before stopping.
    lr : float
        Peak learning rate of AdamWR.
    weight_decay : float
        Decoupled weight decay of AdamWR.
    cycle_multiplier : int
        AdamWR cycle-length multiplier.
    cycle_eta_multiplier : float
        AdamWR per-cycle multiplier of the peak learning rate.
    n_control : int
        Sampled controls per case in the risk set (paper: 2).
    shrink : float
        pycox Cox-Time shrinkage penalty on ``g``.
    bias_reference : {"population", "baseline"}
        How ``mu0`` is defined (module docstring).
    mu0_sample : int
        Training records used to estimate the population ``mu0`` (random, seeded).
    seed : int
        Seed of torch, the control sampler and sub-sampling.
    device : str or None
        Torch device; None: CUDA when available, else CPU.
    chunk_pairs : int
        Work unit of the baseline and survival computation: ``chunk_pairs // 256`` records
        per block of knots on the CPU, ``// 32`` on other devices
        (`flare_core.models.baseline_hazard`).
    """

    tmax_h: float = 144.0
    grid_step_h: float = 1.0
    n_hidden: int = 6
    hidden_nodes: int = 64
    time_layer: int = 0
    embedding_dim: int = 4
    batch_norm: bool = True
    dropout: float = 0.1
    input_noise: float = 0.0
    input_clip: float | None = 5.0
    batch_size: int = 150
    epochs: int = 256
    patience: int = 16
    lr: float = 1e-3
    weight_decay: float = 1e-2
    cycle_multiplier: int = 2
    cycle_eta_multiplier: float = 0.8
    n_control: int = 2
    shrink: float = 0.0
    bias_reference: Literal["population", "baseline"] = "population"
    mu0_sample: int = 5000
    seed: int = 0
    device: str | None = None
    chunk_pairs: int = 1 << 14

    def __post_init__(self) -> None:
        for name in ("tmax_h", "grid_step_h", "hidden_nodes", "embedding_dim", "batch_size",
                     "epochs", "patience", "lr", "cycle_multiplier", "cycle_eta_multiplier",
                     "n_control", "mu0_sample", "chunk_pairs", "n_hidden"):
            check_positive(name, getattr(self, name))
        if not (isinstance(self.time_layer, int) and 0 <= self.time_layer < self.n_hidden):
            raise ConfigError(
                f"time_layer must be an int in [0, n_hidden={self.n_hidden}), got "
                f"{self.time_layer!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if self.input_clip is not None and not self.input_clip > 0.0:
            raise ConfigError(f"input_clip must be > 0 or None, got {self.input_clip!r}")
        if not self.input_noise >= 0.0:
            raise ConfigError(f"input_noise must be >= 0, got {self.input_noise!r}")
        if self.weight_decay < 0 or self.shrink < 0:
            raise ConfigError(
                f"weight_decay and shrink must be >= 0, got {self.weight_decay!r}, {self.shrink!r}")
        if self.bias_reference not in ("population", "baseline"):
            raise ConfigError(
                f"bias_reference must be 'population' or 'baseline', got {self.bias_reference!r}")
        if self.grid_step_h > self.tmax_h:
            raise ConfigError(f"grid_step_h={self.grid_step_h} exceeds tmax_h={self.tmax_h}")


class SurvivalArrays(NamedTuple):
    """Inputs and targets of a survival fit.

    ``x``: (n, p) float continuous inputs; ``durations_h``: (n,) hours to the event or
    censoring; ``events``: (n,) 1 = event, 0 = censored; ``x_cat``: (n, k) non-negative int
    categorical codes or None.
    """

    x: np.ndarray
    durations_h: np.ndarray
    events: np.ndarray
    x_cat: np.ndarray | None = None


def _block(n_in: int, n_out: int, batch_norm: bool, dropout: float) -> nn.Sequential:
    lin = nn.Linear(n_in, n_out)
    nn.init.kaiming_normal_(lin.weight, nonlinearity="relu")
    layers: list[nn.Module] = [lin, nn.ReLU()]
    if batch_norm:
        layers.append(nn.BatchNorm1d(n_out))
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


class CoxTimeNet(nn.Module):
    """Mixed-input MLP of Cox-Time: ``g(x_num, x_cat, t)``, shape (batch, 1).

    Continuous inputs are concatenated with one ``nn.Embedding`` output per categorical
    column; the first ``time_layer`` hidden layers see only those (`encode`); the time
    (pycox-scaled) is concatenated before the remaining layers (`head`). The output layer has
    no bias, as in pycox ``MLPVanillaCoxTime`` (a constant cancels in the partial likelihood).
    In training mode ``input_noise`` > 0 adds Gaussian noise of that standard deviation to the
    continuous inputs (drawn from torch's global generator, which the fit seeds).
    """

    def __init__(self, n_numeric: int, cardinalities: tuple[int, ...], *, embedding_dim: int,
                 n_hidden: int, hidden_nodes: int, time_layer: int, batch_norm: bool,
                 dropout: float, input_noise: float = 0.0) -> None:
        super().__init__()
        self.input_noise = input_noise
        self.embeddings = nn.ModuleList(nn.Embedding(c, embedding_dim) for c in cardinalities)
        width = n_numeric + embedding_dim * len(cardinalities)
        enc: list[nn.Module] = []
        for _ in range(time_layer):
            enc.append(_block(width, hidden_nodes, batch_norm, dropout))
            width = hidden_nodes
        self.encoder = nn.Sequential(*enc)
        head: list[nn.Module] = []
        width += 1
        for _ in range(n_hidden - time_layer):
            head.append(_block(width, hidden_nodes, batch_norm, dropout))
            width = hidden_nodes
        out = nn.Linear(width, 1, bias=False)
        nn.init.kaiming_normal_(out.weight, nonlinearity="relu")
        head.append(out)
        self.head_layers = nn.Sequential(*head)

    def encode(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        """Time-independent part: (batch, p) and (batch, k) -> (batch, width)."""
        if self.training and self.input_noise:
            x_num = x_num + self.input_noise * torch.randn_like(x_num)
        parts = [x_num] + [emb(x_cat[:, i]) for i, emb in enumerate(self.embeddings)]
        return self.encoder(torch.cat(parts, dim=1))

    def head(self, z: torch.Tensor, time: torch.Tensor) -> torch.Tensor:
        """Time-dependent part: encoded (batch, width) and time (batch, 1) -> g (batch, 1)."""
        return self.head_layers(torch.cat([z, time], dim=1))

    def forward(self, x_num: torch.Tensor, x_cat: torch.Tensor, time: torch.Tensor) -> torch.Tensor:
        """pycox calling convention: the inputs, then the time as the last argument."""
        return self.head(self.encode(x_num, x_cat), time)


class _KeepBest:
    """torchtuples callback: early stopping on the validation loss, best weights in memory."""

    def __init__(self, patience: int) -> None:
        self.patience = patience
        self.best = np.inf
        self.best_epoch = -1
        self.epoch = -1
        self.state: dict | None = None

    def give_model(self, model) -> None:
        self.model = model

    def on_fit_start(self) -> None:
        pass

    def on_epoch_start(self) -> None:
        pass

    def on_batch_start(self) -> None:
        pass

    def before_step(self) -> bool:
        return False

    def on_batch_end(self) -> None:
        pass

    def on_epoch_end(self) -> bool:
        self.epoch += 1
        score = float(self.model.val_metrics.scores["loss"]["score"][-1])
        if score < self.best:
            self.best, self.best_epoch = score, self.epoch
            self.state = copy.deepcopy(self.model.net.state_dict())
        return self.epoch - self.best_epoch >= self.patience

    def on_fit_end(self) -> None:
        if self.state is not None:
            self.model.net.load_state_dict(self.state)


def _as_inputs(x, x_cat, n_cat_expected: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ConfigError(f"x must be 2-D (records, features), got shape {x.shape}")
    if x_cat is None:
        x_cat = np.zeros((x.shape[0], 0), dtype=np.int64)
    x_cat = np.asarray(x_cat)
    if x_cat.ndim == 1:
        x_cat = x_cat.reshape(-1, 1)
    if x_cat.shape[0] != x.shape[0]:
        raise ConfigError(f"x has {x.shape[0]} rows but x_cat has {x_cat.shape[0]}")
    if n_cat_expected is not None and x_cat.shape[1] != n_cat_expected:
        raise ConfigError(f"expected {n_cat_expected} categorical columns, got {x_cat.shape[1]}")
    if x_cat.size and (not np.all(np.isfinite(x_cat)) or (x_cat < 0).any()):
        raise ConfigError("x_cat must hold non-negative integer codes")
    bad = ~np.isfinite(x).all(axis=1)
    if bad.any():
        raise ConfigError(
            f"x has NaN/inf in {int(bad.sum())} record(s) (first row {int(np.flatnonzero(bad)[0])});"
            " fill them first (train_all uses the training means)")
    return x, x_cat.astype(np.int64)


def _survival_arrays(X, y=None, X_cat=None, what: str = "train") -> SurvivalArrays:  # noqa: N803
    """`SurvivalArrays` from ``(X, Surv y, X_cat)``, or ``X`` itself when it is one."""
    if isinstance(X, SurvivalArrays):
        if y is not None or X_cat is not None:
            raise ConfigError(f"{what}: pass SurvivalArrays alone, or X with a Surv target y")
        return X
    if y is None:
        raise ConfigError(f"{what}: a Surv target y (event, time in hours) is required")
    from sksurv.util import check_y_survival

    try:
        event, time_h = check_y_survival(y, allow_all_censored=True)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"{what}: y must be a sksurv Surv structured array: {e}") from e
    return SurvivalArrays(X, time_h, event.astype(np.float64), X_cat)


class CoxTimeModel(BaseEstimator):
    """Cox-Time survival model answering in hours; a scikit-learn estimator.

    Parameters
    ----------
    config : CoxTimeConfig
        Hyper-parameters; stored, nothing else happens in ``__init__``.

    Attributes
    ----------
    net_ : CoxTimeNet
        The fitted network (eval mode).
    event_times_h_ : ndarray
        Distinct training event times (hours) of the Breslow baseline.
    baseline_hazards_ : ndarray
        Breslow hazard increments at ``event_times_h_``.
    mu0_h_ : float
        Mean-lifetime offset used by the bias correction (hours).
    history_ : dict
        ``train_loss``/``val_loss`` per epoch and ``best_epoch``.

    Examples
    --------
    >>> y = Surv.from_arrays(event=events, time=durations_h)                       # doctest: +SKIP
    >>> model = CoxTimeModel(CoxTimeConfig(epochs=5)).fit(x, y, X_cat=x_cat,
    ...                                                   validation=(xv, yv, xv_cat))  # doctest: +SKIP
    >>> model = CoxTimeModel(CoxTimeConfig(epochs=5)).fit(train, validation=val)  # doctest: +SKIP
    >>> model.predict_event_probability(x_new, horizon_h=24.0)                     # doctest: +SKIP
    """

    _parameter_constraints: ClassVar[dict] = {"config": [CoxTimeConfig, None]}

    def __init__(self, config: CoxTimeConfig | None = None) -> None:
        self.config = config if config is not None else CoxTimeConfig()

    # ----------------------------------------------------------------- helpers
    def _device(self) -> torch.device:
        if self.config.device is not None:
            return torch.device(self.config.device)
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")

    def _check_fitted(self) -> None:
        check_fitted(self, "net_")

    def _scale_x(self, x: np.ndarray) -> np.ndarray:
        xs = (x - self.x_mean_) / self.x_scale_
        if self.config.input_clip is not None:
            xs = np.clip(xs, -self.config.input_clip, self.config.input_clip)
        return xs.astype(np.float32)

    def _clip_cat(self, x_cat: np.ndarray) -> np.ndarray:
        if not self.cardinalities_:
            return x_cat
        hi = np.asarray(self.cardinalities_) - 1
        over = x_cat > hi
        if over.any():
            logger.debug("%d categorical code(s) above the training maximum clipped", over.sum())
        return np.minimum(x_cat, hi)

    def _scale_t(self, t_h: np.ndarray) -> np.ndarray:
        return ((np.asarray(t_h, dtype=np.float64) - self.t_mean_) / self.t_scale_).astype(np.float32)

    def _encode(self, x: np.ndarray, x_cat: np.ndarray) -> torch.Tensor:
        dev = next(self.net_.parameters()).device
        xs = torch.from_numpy(self._scale_x(x)).to(dev)
        xc = torch.from_numpy(self._clip_cat(x_cat)).to(dev)
        self.net_.eval()
        with torch.inference_mode():
            return torch.cat([self.net_.encode(xs[i:i + 65536], xc[i:i + 65536])
                              for i in range(0, max(1, xs.shape[0]), 65536)])

    def _log_risk_fn(self, z: torch.Tensor) -> PiecewiseAffineLogRisk:
        """Exact piecewise-affine-in-time evaluator of the head on encoded records ``z``."""
        self.net_.eval()
        return PiecewiseAffineLogRisk(self.net_.head_layers, z)

    # --------------------------------------------------------------------- fit
    def fit(self, X: np.ndarray | SurvivalArrays, y: np.ndarray | None = None, *,  # noqa: N803
            X_cat: np.ndarray | None = None,  # noqa: N803
            validation: SurvivalArrays | tuple | None = None) -> CoxTimeModel:
        """Train the net, then compute the Breslow baseline and ``mu0``.

        Parameters
        ----------
        X : ndarray of shape (n, p), or SurvivalArrays
            Continuous training inputs (raw units). A `SurvivalArrays` carries inputs and
            targets together (then ``y`` and ``X_cat`` are not given).
        y : structured ndarray of shape (n,)
            scikit-survival target (`sksurv.util.Surv`): event indicator (bool) and time to
            the event or censoring, hours (values above ``tmax_h`` are censored at it).
        X_cat : ndarray of shape (n, k), optional
            Non-negative integer categorical codes (embeddings).
        validation : SurvivalArrays or tuple, optional
            Records of regions *not* in the training set (`flare_core.splits`) for early
            stopping, as `SurvivalArrays` or ``(X_val, y_val)`` / ``(X_val, y_val, X_cat_val)``;
            without it the net trains for ``epochs`` epochs.

        Returns
        -------
        self
        """
        validate_params(self)
        train = _survival_arrays(X, y, X_cat, "train")
        if validation is not None and not isinstance(validation, SurvivalArrays):
            validation = _survival_arrays(*validation, what="validation")
        cfg = self.config
        pycox = import_pycox()
        import torchtuples as tt

        x, x_cat = _as_inputs(train.x, train.x_cat)
        d_h, ev = self._check_target(train.durations_h, train.events, x.shape[0], "train")
        if ev.sum() == 0:
            raise ConfigError("training data has no events; Cox-Time cannot be fitted")
        self.n_features_ = x.shape[1]
        self.x_mean_ = x.mean(axis=0)
        sd = x.std(axis=0)
        self.x_scale_ = np.where(sd > 0, sd, 1.0)
        self.cardinalities_ = tuple(int(c) + 1 for c in x_cat.max(axis=0)) if x_cat.size else (
            (1,) * x_cat.shape[1])
        labtrans = pycox.models.CoxTime.label_transform()
        d_s, e_s = labtrans.fit_transform(d_h, ev)
        self.t_mean_ = float(labtrans.duration_scaler.mean_[0])
        self.t_scale_ = float(labtrans.duration_scaler.scale_[0])

        device = self._device()
        np_state = np.random.get_state()  # noqa: NPY002 (pycox uses the legacy RNG)
        with torch.random.fork_rng(devices=[] if device.type == "cpu" else [device]):
            torch.manual_seed(cfg.seed)
            np.random.seed(cfg.seed)  # noqa: NPY002 (pycox samples controls with it)
            try:
                net = CoxTimeNet(x.shape[1], self.cardinalities_, embedding_dim=cfg.embedding_dim,
                                 n_hidden=cfg.n_hidden, hidden_nodes=cfg.hidden_nodes,
                                 time_layer=cfg.time_layer, batch_norm=cfg.batch_norm,
                                 dropout=cfg.dropout, input_noise=cfg.input_noise)
                optimizer = tt.optim.AdamWR(
                    lr=cfg.lr, decoupled_weight_decay=cfg.weight_decay,
                    cycle_multiplier=cfg.cycle_multiplier,
                    cycle_eta_multiplier=cfg.cycle_eta_multiplier)
                model = pycox.models.CoxTime(net, optimizer, device=device, shrink=cfg.shrink,
                                             labtrans=labtrans)
                inputs = (self._scale_x(x), self._clip_cat(x_cat))
                callbacks, val_data = [], None
                keep = None
                if validation is not None:
                    xv, xcv = _as_inputs(validation.x, validation.x_cat, x_cat.shape[1])
                    dv, evv = self._check_target(validation.durations_h, validation.events,
                                                 xv.shape[0], "validation")
                    if evv.sum() == 0:
                        raise ConfigError("validation data has no events; cannot early-stop")
                    val_data = tt.tuplefy((self._scale_x(xv), self._clip_cat(xcv)),
                                          labtrans.transform(dv, evv))
                    keep = _KeepBest(cfg.patience)
                    callbacks.append(keep)
                log = model.fit(inputs, (d_s, e_s), batch_size=cfg.batch_size, epochs=cfg.epochs,
                                callbacks=callbacks, verbose=False, val_data=val_data,
                                n_control=cfg.n_control)
            finally:
                np.random.set_state(np_state)  # noqa: NPY002
        logs = log.to_pandas()
        self.history_ = {
            "train_loss": [float(v) for v in logs["train_loss"]],
            # without validation data torchtuples logs NaN validation losses: none recorded
            "val_loss": ([float(v) for v in logs["val_loss"]]
                         if validation is not None and "val_loss" in logs else []),
            "best_epoch": (keep.best_epoch if keep is not None else len(logs) - 1),
        }
        logger.info("Cox-Time trained %d epochs (best %d) on %d records, %d events",
                    len(logs), self.history_["best_epoch"], x.shape[0], int(ev.sum()))
        self.net_ = net.eval()
        self._fit_baseline(x, x_cat, d_h, ev)
        return self

    def _check_target(self, durations_h, events, n: int, what: str):
        d = np.asarray(durations_h, dtype=np.float64).ravel()
        e = np.asarray(events).astype(np.float64).ravel()
        if d.size != n or e.size != n:
            raise ConfigError(f"{what}: {n} records but {d.size} durations and {e.size} events")
        if not np.all(np.isfinite(d)) or (d < 0).any():
            raise ConfigError(f"{what}: durations_h must be finite and >= 0")
        if not np.isin(e, (0.0, 1.0)).all():
            raise ConfigError(f"{what}: events must be 0/1")
        over = d > self.config.tmax_h
        if over.any():
            logger.info("%s: %d duration(s) above tmax_h censored at %g h", what, over.sum(),
                        self.config.tmax_h)
            e = np.where(over, 0.0, e)
            d = np.minimum(d, self.config.tmax_h)
        return d, e

    def _fit_baseline(self, x, x_cat, d_h, ev) -> None:
        cfg = self.config
        z = self._encode(x, x_cat)
        d_s = self._scale_t(d_h)
        times_s, haz = breslow_baseline_hazards(self._log_risk_fn(z), d_s, ev,
                                                chunk_pairs=cfg.chunk_pairs)
        # exact hours of each distinct scaled event time
        first = {}
        for t_s, t_h in zip(d_s[ev == 1], d_h[ev == 1], strict=True):
            first.setdefault(float(t_s), float(t_h))
        self.event_times_h_ = np.array([first[float(t)] for t in times_s])
        self.event_times_scaled_ = times_s
        self.baseline_hazards_ = haz
        s0 = np.exp(-np.cumsum(haz))[None, :]
        self.mu0_baseline_h_ = float(restricted_mean_lifetime(self.event_times_h_, s0,
                                                              cfg.tmax_h)[0])
        rng = np.random.default_rng(cfg.seed)
        n = x.shape[0]
        idx = rng.choice(n, size=min(n, cfg.mu0_sample), replace=False)
        self.mu0_population_h_ = float(np.mean(self.predict_mean_lifetime(
            x[idx], x_cat[idx], corrected=False)))
        self.mu0_h_ = (self.mu0_population_h_ if cfg.bias_reference == "population"
                       else self.mu0_baseline_h_)

    # ----------------------------------------------------------------- predict
    def _step_survival(self, x, x_cat) -> np.ndarray:
        """S(t_j | x) at the baseline event times, shape (n, m)."""
        self._check_fitted()
        x, x_cat = _as_inputs(x, x_cat, len(self.cardinalities_))
        if x.shape[1] != self.n_features_:
            raise ConfigError(f"expected {self.n_features_} features, got {x.shape[1]}")
        keep = self.event_times_h_ <= self.config.tmax_h
        z = self._encode(x, x_cat)
        H = cumulative_hazards(self._log_risk_fn(z), x.shape[0],
                               self.event_times_scaled_[keep], self.baseline_hazards_[keep],
                               chunk_pairs=self.config.chunk_pairs)
        return np.exp(-H)

    @property
    def grid_h(self) -> np.ndarray:
        """The output survival grid, hours: ``0, grid_step_h, ..., tmax_h``."""
        c = self.config
        return np.arange(0.0, c.tmax_h + c.grid_step_h / 2, c.grid_step_h)

    def predict_survival(self, x: np.ndarray, x_cat: np.ndarray | None = None
                         ) -> tuple[np.ndarray, np.ndarray]:
        """Survival curves ``S(t | x)`` on the fixed grid.

        Parameters
        ----------
        x : ndarray of shape (n, p)
            Continuous inputs (raw units, the model standardises them).
        x_cat : ndarray of shape (n, k), optional
            Categorical codes as in training.

        Returns
        -------
        grid_h : ndarray of shape (g,)
            Hours after ``t_rec``: ``0 .. tmax_h`` in steps of ``grid_step_h``.
        survival : ndarray of shape (n, g)
            Probability of no >=M flare in ``(t_rec, t_rec + grid_h]``.
        """
        surv = self._step_survival(x, x_cat)
        keep = self.event_times_h_ <= self.config.tmax_h
        grid = self.grid_h
        return grid, step_values(self.event_times_h_[keep], surv, grid, before=1.0)

    def predict_mean_lifetime(self, x: np.ndarray, x_cat: np.ndarray | None = None, *,
                              corrected: bool = False) -> np.ndarray:
        """Restricted mean lifetime ``integral_0^tmax_h S(t | x) dt``, hours (exact step integral).

        With ``corrected=True`` the bias-corrected value ``mean_lifetime - mu0_h_`` is
        returned (module docstring).
        """
        surv = self._step_survival(x, x_cat)
        keep = self.event_times_h_ <= self.config.tmax_h
        mu = restricted_mean_lifetime(self.event_times_h_[keep], surv, self.config.tmax_h)
        return mu - self.mu0_h_ if corrected else mu

    def predict_event_probability(self, x: np.ndarray, x_cat: np.ndarray | None = None, *,
                                  horizon_h: float = 24.0) -> np.ndarray:
        """``P(>=M flare peaks in (t_rec, t_rec + horizon_h]) = 1 - S(horizon_h | x)``."""
        check_positive("horizon_h", horizon_h)
        if horizon_h > self.config.tmax_h:
            raise ConfigError(f"horizon_h={horizon_h} exceeds tmax_h={self.config.tmax_h}")
        surv = self._step_survival(x, x_cat)
        keep = self.event_times_h_ <= self.config.tmax_h
        s = step_values(self.event_times_h_[keep], surv, np.array([horizon_h]), before=1.0)
        return 1.0 - s[:, 0]

    # ------------------------------------------------------------- persistence
    state_layout = StateLayout(
        meta_file="model.json", what=f"Cox-Time model directory of format {_FORMAT_VERSION}",
        header={"kind": "cox_time", "format_version": _FORMAT_VERSION}, torch=("net.pt",))

    def _get_state(self) -> ModelState:
        """``net.pt`` (state_dict) and ``model.json`` (config, scalers, baseline)."""
        self._check_fitted()
        meta = {
            "config": asdict(self.config),
            "n_features": self.n_features_, "cardinalities": list(self.cardinalities_),
            "x_mean": self.x_mean_.tolist(), "x_scale": self.x_scale_.tolist(),
            "t_mean": self.t_mean_, "t_scale": self.t_scale_,
            "event_times_h": self.event_times_h_.tolist(),
            "event_times_scaled": self.event_times_scaled_.astype(np.float64).tolist(),
            "baseline_hazards": self.baseline_hazards_.tolist(),
            "mu0_h": self.mu0_h_, "mu0_population_h": self.mu0_population_h_,
            "mu0_baseline_h": self.mu0_baseline_h_, "history": self.history_,
        }
        return ModelState(meta=meta, torch={"net.pt": self.net_.state_dict()})

    @classmethod
    def _from_state(cls, state: ModelState) -> CoxTimeModel:
        meta = state.meta
        # models saved before input_clip existed were trained (and must predict) unclipped
        self = cls(CoxTimeConfig(**{"input_clip": None, **meta["config"]}))
        cfg = self.config
        self.n_features_ = int(meta["n_features"])
        self.cardinalities_ = tuple(int(c) for c in meta["cardinalities"])
        self.x_mean_ = np.asarray(meta["x_mean"], dtype=np.float64)
        self.x_scale_ = np.asarray(meta["x_scale"], dtype=np.float64)
        self.t_mean_, self.t_scale_ = float(meta["t_mean"]), float(meta["t_scale"])
        self.event_times_h_ = np.asarray(meta["event_times_h"], dtype=np.float64)
        self.event_times_scaled_ = np.asarray(meta["event_times_scaled"], dtype=np.float32)
        self.baseline_hazards_ = np.asarray(meta["baseline_hazards"], dtype=np.float64)
        self.mu0_h_ = float(meta["mu0_h"])
        self.mu0_population_h_ = float(meta["mu0_population_h"])
        self.mu0_baseline_h_ = float(meta["mu0_baseline_h"])
        self.history_ = meta["history"]
        net = CoxTimeNet(self.n_features_, self.cardinalities_, embedding_dim=cfg.embedding_dim,
                         n_hidden=cfg.n_hidden, hidden_nodes=cfg.hidden_nodes,
                         time_layer=cfg.time_layer, batch_norm=cfg.batch_norm,
                         dropout=cfg.dropout)
        try:
            net.load_state_dict(state.torch["net.pt"])
        except RuntimeError as e:
            raise ModelError(f"net.pt does not match the saved configuration: {e}") from e
        self.net_ = net.to(self._device()).eval()
        return self

