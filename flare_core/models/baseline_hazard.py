"""Vectorised Breslow baseline hazards and survival curves of time-dependent Cox models.

For a relative-risk model with a time-dependent log-risk ``g(x, t)`` (Cox-Time, Kvamme et al.
2019), the Breslow estimate of the baseline hazard at the distinct event times ``t_j`` is

    h0_j = d_j / sum_{i : T_i >= t_j} exp g(x_i, t_j),

with ``d_j`` the number of events at ``t_j``, and the cumulative hazard of a record ``x`` is
``H(t | x) = sum_{t_j <= t} h0_j exp g(x, t_j)``, ``S(t | x) = exp(-H(t | x))``.

pycox 0.3.0 computes both with one ``predict`` call per event time (a Python loop over times
with a data loader per call). The functions here enumerate the needed ``(record, time)`` pairs
directly and evaluate them in large chunks through a caller-supplied ``log_risk_at(rows, times)``,
accumulating in float64. If the model can split ``g`` into a time-independent encoder and a
time-dependent head (`flare_core.models.cox_time.CoxTimeNet`), the encoder runs once per record
and only the head runs per pair.

Times are in whatever units the model's time input uses (the caller maps them to hours).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

from ..errors import ConfigError

__all__ = ["LogRiskAt", "breslow_baseline_hazards", "cumulative_hazards", "step_values"]

logger = logging.getLogger(__name__)

#: ``log_risk_at(rows, times) -> g`` : log-risk of record ``rows[k]`` at time ``times[k]``
#: (both 1-D of equal length; rows index the caller's record arrays), returned as a 1-D float
#: array of the same length.
LogRiskAt = Callable[[np.ndarray, np.ndarray], np.ndarray]

_DEFAULT_CHUNK = 1 << 14  # pairs per forward pass; larger batches fall out of the CPU caches


def _check_chunk(chunk_pairs: int) -> None:
    if not (isinstance(chunk_pairs, int) and chunk_pairs > 0):
        raise ConfigError(f"chunk_pairs must be a positive int, got {chunk_pairs!r}")


def breslow_baseline_hazards(
    log_risk_at: LogRiskAt,
    durations: np.ndarray,
    events: np.ndarray,
    *,
    max_duration: float | None = None,
    chunk_pairs: int = _DEFAULT_CHUNK,
) -> tuple[np.ndarray, np.ndarray]:
    """Breslow baseline hazard increments of a time-dependent Cox model.

    Parameters
    ----------
    log_risk_at : callable
        ``log_risk_at(rows, times)`` -> log-risk ``g(x_rows[k], times[k])``; ``rows`` index the
        records in the order of ``durations``.
    durations : ndarray of shape (n,)
        Observed times (event or censoring), in the model's time units.
    events : ndarray of shape (n,)
        1 where the record ends in an event, 0 where censored.
    max_duration : float, optional
        Drop event times above it.
    chunk_pairs : int
        Number of (record, time) pairs evaluated per call of ``log_risk_at``.

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
    log_risk_at: LogRiskAt,
    n_rows: int,
    times: np.ndarray,
    hazards: np.ndarray,
    *,
    chunk_pairs: int = _DEFAULT_CHUNK,
) -> np.ndarray:
    """Cumulative hazards ``H(t_j | x_i)`` of ``n_rows`` records at every baseline time.

    Parameters
    ----------
    log_risk_at : callable
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
    block = max(1, chunk_pairs // nz.size)
    for r0 in range(0, n_rows, block):
        r1 = min(n_rows, r0 + block)
        rows = np.repeat(np.arange(r0, r1, dtype=np.int64), nz.size)
        tj = np.tile(times[nz], r1 - r0)
        g = np.asarray(log_risk_at(rows, tj), dtype=np.float64).reshape(r1 - r0, nz.size)
        out[r0:r1, nz] = np.exp(g) * hazards[nz]
    return np.cumsum(out, axis=1, out=out)


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
