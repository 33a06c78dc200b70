"""Vectorised Breslow baseline hazards and survival curves of time-dependent Cox models.

For a relative-risk model with a time-dependent log-risk ``g(x, t)`` (Cox-Time, Kvamme et al.
2019), the Breslow estimate of the baseline hazard at the distinct event times ``t_j`` is

    h0_j = d_j / sum_{i : T_i >= t_j} exp g(x_i, t_j),

with ``d_j`` the number of events at ``t_j``, and the cumulative hazard of a record ``x`` is
``H(t | x) = sum_{t_j <= t} h0_j exp g(x, t_j)``, ``S(t | x) = exp(-H(t | x))``.

pycox 0.3.0 computes both with one ``predict`` call per event time (a Python loop over times
with a data loader per call), i.e. one full network evaluation per at-risk ``(record, time)``
pair. Two evaluation strategies are offered here, both accumulating in float64:

* a generic callable ``log_risk_at(rows, times)``: the needed pairs are enumerated directly and
  evaluated in large chunks (same number of network evaluations as pycox, less overhead);
* `PiecewiseAffineLogRisk`, for a head made of ``Linear``/``ReLU``/``BatchNorm1d``/``Dropout``
  layers in eval mode whose first layer takes ``cat(z, t)`` (`flare_core.models.cox_time.
  CoxTimeNet`). Such a net is *continuous and piecewise affine in t* for a fixed record. The
  first layer's record part ``W_z z + b`` is computed once per record; a forward pass at
  ``(x, t_j)`` also propagates ``dg/dt`` and the distance to the nearest ReLU switch after
  ``t_j``, and ``g`` at the following event times is ``g(t_j) + (t - t_j) dg/dt`` until that
  switch. The network therefore runs once per record and *linear piece* instead of once per
  pair. This is exact (not an approximation): only float rounding differs, and because ``g`` is
  continuous a switch located a few ulps off changes ``g`` by a few ulps only.

Times are in whatever units the model's time input uses (the caller maps them to hours).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError

__all__ = [
    "LogRiskAt",
    "PiecewiseAffineLogRisk",
    "breslow_baseline_hazards",
    "cumulative_hazards",
    "step_values",
]

logger = logging.getLogger(__name__)

#: ``log_risk_at(rows, times) -> g`` : log-risk of record ``rows[k]`` at time ``times[k]``
#: (both 1-D of equal length; rows index the caller's record arrays), returned as a 1-D float
#: array of the same length.
LogRiskAt = Callable[[np.ndarray, np.ndarray], np.ndarray]

_DEFAULT_CHUNK = 1 << 14  # pairs per forward pass; larger batches fall out of the CPU caches


class PiecewiseAffineLogRisk:
    """Exact local affine pieces in ``t`` of a ReLU head ``g = head(cat(z, t))``.

    Parameters
    ----------
    head : torch.nn.Module
        ``nn.Sequential`` (nested ``Sequential`` allowed) of ``Linear``, ``ReLU``,
        ``BatchNorm1d``, ``Dropout`` and ``Identity`` modules ending in a ``Linear`` with one
        output; the first ``Linear`` takes ``z`` and, as its *last* input column, the time. It
        must be in eval mode (batch norm with running statistics, dropout off).
    z : torch.Tensor of shape (n, width)
        Time-independent input of every record (encoder output); rows are the ``rows`` used
        by `breslow_baseline_hazards` / `cumulative_hazards`.
    dtype : torch.dtype
        Arithmetic of the network and piece evaluation (float32 default, the precision the
        net computes in anyway; sums of ``exp g`` are accumulated in float64).
    chunk_rows : int
        Records per forward pass when computing the first layer's record part.

    Notes
    -----
    Batch norm (eval) layers are folded into the following ``Linear``; the record part
    ``W_z z + b`` of the first layer is computed once here (the widest matmul of the net when
    the time enters the first layer). Calling the object returns ``g``, ``dg/dt`` and the
    ``reach``: the length of time after ``t`` over which no ReLU pre-activation changes sign, so
    ``g`` is exactly affine on ``[t, t + reach]``.
    """

    def __init__(self, head: nn.Module, z: torch.Tensor, *, dtype: torch.dtype = torch.float32,
                 chunk_rows: int = 1 << 14) -> None:
        mods = _flatten(head)
        if any(m.training for m in mods) or head.training:
            raise ConfigError("PiecewiseAffineLogRisk needs the head in eval mode (net.eval())")
        if not mods or not isinstance(mods[0], nn.Linear) or not isinstance(mods[-1], nn.Linear):
            raise ConfigError("head must start and end with nn.Linear")
        if mods[-1].out_features != 1:
            raise ConfigError(f"head must have one output, got {mods[-1].out_features}")
        first = mods[0]
        if z.ndim != 2 or first.in_features != z.shape[1] + 1:
            raise ConfigError(
                f"first Linear takes {first.in_features} inputs; expected z width + 1 time "
                f"column, got z of shape {tuple(z.shape)}")
        dev = z.device
        with torch.inference_mode():
            w = first.weight.detach().to(dev, dtype)
            b = (first.bias.detach().to(dev, dtype) if first.bias is not None
                 else torch.zeros(w.shape[0], dtype=dtype, device=dev))
            wz_t = w[:, :-1].T.contiguous()
            self.u = torch.cat([torch.addmm(b, z[i:i + chunk_rows].to(dtype), wz_t)
                                for i in range(0, max(1, z.shape[0]), chunk_rows)])
            self.w_t = w[:, -1].contiguous()
            # remaining modules -> list of (W^T, b) with batch norm folded in; ReLU between them
            self.layers: list[tuple[torch.Tensor, torch.Tensor]] = []
            scale: torch.Tensor | None = None
            shift: torch.Tensor | None = None
            relu_pending = False
            for m in mods[1:]:
                if isinstance(m, nn.ReLU):
                    if relu_pending:
                        raise ConfigError("two ReLUs without a Linear between them")
                    relu_pending = True
                elif isinstance(m, nn.BatchNorm1d):
                    if not relu_pending or m.running_mean is None:
                        raise ConfigError("BatchNorm1d must follow a ReLU and track statistics")
                    s = (m.weight.detach().to(dev, dtype) if m.affine
                         else torch.ones_like(m.running_var, dtype=dtype, device=dev))
                    s = s / torch.sqrt(m.running_var.to(dev, dtype) + m.eps)
                    sh = ((m.bias.detach().to(dev, dtype) if m.affine else 0.0)
                          - m.running_mean.to(dev, dtype) * s)
                    scale = s if scale is None else scale * s
                    shift = sh if shift is None else shift * s + sh
                elif isinstance(m, nn.Linear):
                    if not relu_pending:
                        raise ConfigError("each Linear after the first must follow a ReLU")
                    wl = m.weight.detach().to(dev, dtype)
                    bl = (m.bias.detach().to(dev, dtype) if m.bias is not None
                          else torch.zeros(wl.shape[0], dtype=dtype, device=dev))
                    if shift is not None:
                        bl = bl + wl @ shift
                        wl = wl * scale
                    self.layers.append((wl.T.contiguous(), bl))
                    scale = shift = None
                    relu_pending = False
                elif not isinstance(m, nn.Dropout | nn.Identity):
                    raise ConfigError(f"unsupported module in head: {type(m).__name__}")
        self.n_rows = z.shape[0]
        self.dtype = dtype
        self._nudge = 1e-9  # time units: decides the pattern of a unit exactly at 0

    def __call__(self, rows: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor,
                                                                     torch.Tensor]:
        """``g(x_rows[k], t[k])``, ``dg/dt`` and the reach, each of shape (len(rows),).

        ``rows`` (int64) and ``t`` (time units of the net, dtype of this object) are 1-D
        tensors of equal length on the device of ``z``.
        """
        with torch.inference_mode():
            a = torch.index_select(self.u, 0, rows).addcmul_(t[:, None], self.w_t)
            s = self.w_t.expand_as(a)
            reach = torch.full((a.shape[0],), torch.inf, dtype=self.dtype, device=a.device)
            for wt, b in self.layers:
                # ReLU pattern just *after* t (a unit exactly at 0 counts by its slope), then
                # the nearest switch: unit k crosses 0 after a distance -a_k/s_k when s_k/a_k < 0,
                # so the nearest is -1/min_k(s_k/a_k). a_k == 0 gives a distance 0 (or NaN when
                # s_k == 0 too): the piece ends here and the net runs again at the next time.
                on = torch.add(a, s, alpha=self._nudge) > 0
                q = torch.amin(s / a, dim=1)
                reach = torch.minimum(reach, torch.where(q < 0, -1.0 / q, torch.inf))
                reach = torch.where(torch.isnan(q), q, reach)
                a = torch.addmm(b, a.mul_(on), wt)
                s = (s * on) @ wt
            return a[:, 0], s[:, 0], reach


def _flatten(module: nn.Module) -> list[nn.Module]:
    if isinstance(module, nn.Sequential):
        return [m for child in module for m in _flatten(child)]
    return [module]


def _check_chunk(chunk_pairs: int) -> None:
    if not (isinstance(chunk_pairs, int) and chunk_pairs > 0):
        raise ConfigError(f"chunk_pairs must be a positive int, got {chunk_pairs!r}")


def breslow_baseline_hazards(
    log_risk_at: LogRiskAt | PiecewiseAffineLogRisk,
    durations: np.ndarray,
    events: np.ndarray,
    *,
    max_duration: float | None = None,
    chunk_pairs: int = _DEFAULT_CHUNK,
) -> tuple[np.ndarray, np.ndarray]:
    """Breslow baseline hazard increments of a time-dependent Cox model.

    Parameters
    ----------
    log_risk_at : callable or PiecewiseAffineLogRisk
        ``log_risk_at(rows, times)`` -> log-risk ``g(x_rows[k], times[k])``; ``rows`` index the
        records in the order of ``durations``. A `PiecewiseAffineLogRisk` (rows of its ``z``
        in the order of ``durations``) is evaluated once per record and affine piece instead of
        once per pair (module docstring).
    durations : ndarray of shape (n,)
        Observed times (event or censoring), in the model's time units.
    events : ndarray of shape (n,)
        1 where the record ends in an event, 0 where censored.
    max_duration : float, optional
        Drop event times above it.
    chunk_pairs : int
        Number of (record, time) pairs evaluated per call of ``log_risk_at`` (records per
        forward pass for a `PiecewiseAffineLogRisk`).

    Returns
    -------
    times : ndarray of shape (m,)
        Distinct event times, ascending (dtype of ``durations``).
    hazards : ndarray of shape (m,), float64
        ``h0_j = d_j / sum_{T_i >= t_j} exp g(x_i, t_j)``.

    Notes
    -----
    The risk set of ``t_j`` is every record with ``T_i >= t_j`` (standard Breslow). pycox uses
    the records from the first *event* at ``t_j`` on in its duration-sorted order, which is the
    same set unless a censored record ties an event time and sorts before it.
    """
    _check_chunk(chunk_pairs)
    durations = np.asarray(durations)
    events = np.asarray(events)
    if durations.ndim != 1 or durations.shape != events.shape:
        raise ConfigError(
            f"durations and events must be 1-D of equal length, got {durations.shape} and "
            f"{events.shape}"
        )
    if not np.all(np.isfinite(durations)):
        raise ConfigError("durations contain NaN or infinite values")
    order = np.argsort(durations, kind="stable")
    t_sorted = durations[order]
    is_event = events != 0
    times, counts = np.unique(durations[is_event], return_counts=True)
    if max_duration is not None:
        keep = times <= max_duration
        times, counts = times[keep], counts[keep]
    m, n = times.size, durations.size
    if m == 0:
        return times, np.zeros(0)
    start = np.searchsorted(t_sorted, times, side="left")
    if isinstance(log_risk_at, PiecewiseAffineLogRisk):
        at_risk = _sum_expg_piecewise(log_risk_at, order, start, times, chunk_pairs)
        logger.debug("Breslow (piecewise affine): %d event times, %d records", m, n)
        return times, counts / at_risk
    lengths = (n - start).astype(np.int64)
    cum = np.concatenate([[0], np.cumsum(lengths)])
    n_pairs = int(cum[-1])
    at_risk = np.zeros(m, dtype=np.float64)
    for a in range(0, n_pairs, chunk_pairs):
        k = np.arange(a, min(n_pairs, a + chunk_pairs), dtype=np.int64)
        jj = np.searchsorted(cum, k, side="right") - 1
        rows = order[start[jj] + (k - cum[jj])]
        g = np.asarray(log_risk_at(rows, times[jj]), dtype=np.float64).ravel()
        at_risk += np.bincount(jj, weights=np.exp(g), minlength=m)
    logger.debug("Breslow: %d event times, %d (record, time) pairs", m, n_pairs)
    return times, counts / at_risk


def cumulative_hazards(
    log_risk_at: LogRiskAt | PiecewiseAffineLogRisk,
    n_rows: int,
    times: np.ndarray,
    hazards: np.ndarray,
    *,
    chunk_pairs: int = _DEFAULT_CHUNK,
) -> np.ndarray:
    """Cumulative hazards ``H(t_j | x_i)`` of ``n_rows`` records at every baseline time.

    Parameters
    ----------
    log_risk_at : callable or PiecewiseAffineLogRisk
        As in `breslow_baseline_hazards`; ``rows`` index the records to predict.
    n_rows : int
        Number of records.
    times, hazards : ndarray of shape (m,)
        Output of `breslow_baseline_hazards`.
    chunk_pairs : int
        Pairs per call of ``log_risk_at``.

    Returns
    -------
    ndarray of shape (n_rows, m), float64
        ``H[i, j] = sum_{k <= j} h0_k exp g(x_i, t_k)``; ``S = exp(-H)``.
    """
    _check_chunk(chunk_pairs)
    times = np.asarray(times)
    hazards = np.asarray(hazards, dtype=np.float64)
    m = times.size
    out = np.zeros((n_rows, m), dtype=np.float64)
    if m == 0 or n_rows == 0:
        return out
    nz = np.flatnonzero(hazards > 0)  # zero increments need no network evaluation
    if nz.size == 0:
        return out
    if isinstance(log_risk_at, PiecewiseAffineLogRisk):
        rows = np.arange(n_rows, dtype=np.int64)
        g = _g_on_times_piecewise(log_risk_at, rows, times[nz], chunk_pairs)
        out[:, nz] = np.exp(g) * hazards[nz]
        return np.cumsum(out, axis=1, out=out)
    block = max(1, chunk_pairs // nz.size)
    for r0 in range(0, n_rows, block):
        r1 = min(n_rows, r0 + block)
        rows = np.repeat(np.arange(r0, r1, dtype=np.int64), nz.size)
        tj = np.tile(times[nz], r1 - r0)
        g = np.asarray(log_risk_at(rows, tj), dtype=np.float64).reshape(r1 - r0, nz.size)
        out[r0:r1, nz] = np.exp(g) * hazards[nz]
    return np.cumsum(out, axis=1, out=out)


def _pieces_on_grid(risk: PiecewiseAffineLogRisk, rows: np.ndarray, times: np.ndarray,
                    stop: np.ndarray, chunk_rows: int):
    """Yield ``(pos, j, g)`` with ``g = g(x_rows[pos], times[j])`` for every ``j < stop[pos]``.

    Each record is followed along its own affine pieces: the net runs at the first time not
    yet covered, ``g`` is filled in for every time up to the end of that piece, and so on, so
    the number of forward passes per record is its number of pieces (at most ``stop[pos]``).
    """
    dev, dt = risk.u.device, risk.dtype
    t_all = torch.from_numpy(np.asarray(times, dtype=np.float64)).to(dev, dt)
    for r0 in range(0, rows.size, chunk_rows):
        pos = torch.arange(r0, min(rows.size, r0 + chunk_rows), device=dev)
        rws = torch.from_numpy(np.ascontiguousarray(rows[r0:r0 + chunk_rows], dtype=np.int64))
        rws = rws.to(dev)
        end = torch.from_numpy(np.asarray(stop[r0:r0 + chunk_rows], dtype=np.int64)).to(dev)
        j = torch.zeros_like(end)
        live = torch.nonzero(j < end).flatten()
        while live.numel():
            jl, el = j[live], end[live]
            t0 = t_all[jl]
            g, slope, reach = risk(rws[live], t0)
            # times covered by this piece: t0 <= t_k <= t0 + reach (NaN reach: t0 only)
            nxt = torch.searchsorted(t_all, t0 + torch.nan_to_num(reach, nan=0.0), right=True)
            nxt = torch.minimum(torch.maximum(nxt, jl + 1), el)
            cnt = nxt - jl
            first = torch.cumsum(cnt, 0) - cnt
            which = torch.repeat_interleave(torch.arange(live.numel(), device=dev), cnt)
            k = jl[which] + torch.arange(which.numel(), device=dev) - first[which]
            yield pos[live][which], k, torch.addcmul(g[which], slope[which],
                                                     t_all[k] - t0[which])
            j[live] = nxt
            live = live[nxt < el]


def _sum_expg_piecewise(risk: PiecewiseAffineLogRisk, order: np.ndarray, start: np.ndarray,
                        times: np.ndarray, chunk_rows: int) -> np.ndarray:
    """``sum_{sorted records k >= start[j]} exp g(x_order[k], t_j)`` for every j."""
    # sorted record k is at risk at t_j iff start[j] <= k, i.e. for j < #{j : start[j] <= k}
    stop = np.searchsorted(start, np.arange(order.size), side="right")
    out = torch.zeros(times.size, dtype=torch.float64, device=risk.u.device)
    with torch.inference_mode():
        for _, k, g in _pieces_on_grid(risk, order, times, stop, chunk_rows):
            out.index_add_(0, k, torch.exp(g.to(torch.float64)))
    return out.cpu().numpy()


def _g_on_times_piecewise(risk: PiecewiseAffineLogRisk, rows: np.ndarray, times: np.ndarray,
                          chunk_rows: int) -> np.ndarray:
    """``g(x_rows[i], times[j])`` as an (len(rows), len(times)) float64 array."""
    out = torch.empty((rows.size, times.size), dtype=torch.float64, device=risk.u.device)
    stop = np.full(rows.size, times.size)
    with torch.inference_mode():
        for pos, k, g in _pieces_on_grid(risk, rows, times, stop, chunk_rows):
            out[pos, k] = g.to(torch.float64)
    return out.cpu().numpy()


def step_values(times: np.ndarray, values: np.ndarray, at: np.ndarray, *, before: float) -> np.ndarray:
    """Evaluate right-continuous step functions (jumps at ``times``) at the points ``at``.

    Parameters
    ----------
    times : ndarray of shape (m,)
        Ascending jump times.
    values : ndarray of shape (n, m)
        Value from ``times[j]`` (inclusive) until the next jump, per row.
    at : ndarray of shape (k,)
        Query points, same units as ``times``.
    before : float
        Value before the first jump (1.0 for survival, 0.0 for cumulative hazards).

    Returns
    -------
    ndarray of shape (n, k)
    """
    values = np.atleast_2d(values)
    idx = np.searchsorted(np.asarray(times), np.asarray(at), side="right") - 1
    out = np.full((values.shape[0], idx.size), before, dtype=np.float64)
    ok = idx >= 0
    out[:, ok] = values[:, idx[ok]]
    return out
