"""Benchmark: vectorised Breslow baseline + survival curves vs pycox 0.3.0's loops (Cox-Time).

Data: SYNTHETIC records (no real data): ``--records`` training rows (default 50 000) of 30
standardised features and 2 categorical codes, exponential times to event whose rate depends
on two features, censored at ``Tmax = 144 h`` and recorded at a ``--resolution-h`` grid
(default 0.25 h, so ~500 distinct event times; real labels are minute-resolution, which makes
both implementations proportionally slower). The nets are untrained and in eval mode; both
implementations evaluate the *same* net on the *same* scaled inputs, and the outputs are
cross-checked. pycox's time does not depend on the weights; the piecewise method's grows with
the number of ReLU kinks of ``g(x, .)`` over the time range (printed per record), which the
weights set (here about 29 per training record on its at-risk range with time in the first
layer, and 5 with time in the last hidden layer).

Two tasks, each for two architectures of `flare_core.models.cox_time.CoxTimeNet`:

* baseline: Breslow hazards over the training set (pycox ``compute_baseline_hazards``, which
  calls ``predict`` once per event time on the at-risk rows);
* predict: survival curves of ``--predict-records`` records (pycox ``predict_surv_df``, one
  ``predict`` per baseline time) -- an operational forecast run.

Architectures: ``time_layer=0`` (the paper / pycox ``MLPVanillaCoxTime`` layout, time enters
the first layer) and ``time_layer=5`` (time enters the last hidden layer).

Implementations timed: pycox; ``piecewise`` = `PiecewiseAffineLogRisk` (the ReLU head is
piecewise affine in t: the kinks of every record's ``g(., t)`` are found layer by layer by
compiled kernels, each layer one matmul on the knots made before it, the next layer's values
at a new knot by rank-one slope updates, the first layer's record part once per record; ``g``
at the at-risk event times is the linear interpolation of the knots, exponentiated in float32
by a vectorised polynomial and summed in float64; the whole Breslow sum is one compiled call
over blocks of 64 records, its BLAS matmuls on one thread), which is what `CoxTimeModel` uses;
with ``--generic`` also the chunked per-pair callable path. Both implementations first run once,
untimed, on about 1000 records (`_warm_up`: loading the compiled kernels and warming torch is a
one-off cost per process); the timed runs are single wall-clock runs in the same process.

The last lines, one per architecture, read ``RESULT layout=paper baseline_speedup=..
predict_speedup=.. max_diff=..`` (``paper`` = ``time_layer=0``; ``max_diff`` is the larger of
the hazards' relative and the survival curves' absolute difference to pycox).

Usage: ``python benchmarks/bench_survival.py [--records 50000] [--predict-records 200]
[--generic]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from flare_core.models._pycox_compat import import_pycox
from flare_core.models.baseline_hazard import (
    PiecewiseAffineLogRisk,
    breslow_baseline_hazards,
    cumulative_hazards,
)
from flare_core.models.cox_time import CoxTimeNet


def _data(n: int, resolution_h: float, seed: int):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 30)).astype(np.float32)
    x_cat = rng.integers(0, 4, size=(n, 2)).astype(np.int64)
    rate = np.exp(0.8 * x[:, 0] - 0.5 * x[:, 1] + 0.3 * x_cat[:, 0]) / 150.0
    d = rng.exponential(1.0 / rate)
    ev = (d <= 144.0).astype(np.float32)
    d = np.round(np.minimum(d, 144.0) / resolution_h) * resolution_h
    d_s = ((d - d.mean()) / d.std()).astype(np.float32)
    return x, x_cat, d_s, ev


def _log_risk(net: CoxTimeNet, x: np.ndarray, x_cat: np.ndarray):
    net.eval()  # torchtuples puts the net back into train mode after each pycox predict
    with torch.inference_mode():
        z = net.encode(torch.from_numpy(x), torch.from_numpy(x_cat))

    def f(rows, times):
        with torch.inference_mode():
            r = torch.from_numpy(rows)
            t = torch.from_numpy(np.asarray(times, dtype=np.float32).reshape(-1, 1))
            return net.head(z.index_select(0, r), t).double().numpy().ravel()

    return f


def _piecewise(net: CoxTimeNet, x: np.ndarray, x_cat: np.ndarray) -> PiecewiseAffineLogRisk:
    net.eval()
    with torch.inference_mode():
        z = net.encode(torch.from_numpy(x), torch.from_numpy(x_cat))
    return PiecewiseAffineLogRisk(net.head_layers, z)


def _kinks_per_record(risk: PiecewiseAffineLogRisk, d_s: np.ndarray, times: np.ndarray,
                      sample: int = 2000) -> float:
    """Mean number of ReLU kinks of ``g(x_i, .)`` over ``[t_1, t_last <= T_i]`` (the times at
    which record i is at risk), over an even sample of the (duration-sorted) records."""
    rows = np.unique(np.linspace(0, len(d_s) - 1, sample).astype(np.int64))
    stop = np.searchsorted(times, d_s[rows], side="right")
    rows, stop = rows[stop > 0], stop[stop > 0]
    t = torch.from_numpy(times.astype(np.float64))
    with torch.inference_mode():
        rec, _, _ = risk.knots(torch.from_numpy(rows), t[:1].expand(rows.size),
                               t[torch.from_numpy(stop - 1)])
    return rec.numel() / rows.size - 2.0  # each record's two end points are not kinks


def _calibrate(net: CoxTimeNet, x, x_cat, d_s) -> None:
    """Rescale the untrained output layer so that g has unit spread, as a trained net has
    (an untrained Kaiming-initialised net gives |g| of tens, whose exp overflows pycox's
    float32 arithmetic)."""
    with torch.inference_mode():
        g = net(torch.from_numpy(x), torch.from_numpy(x_cat),
                torch.from_numpy(d_s.reshape(-1, 1)))
        net.head_layers[-1].weight /= float(g.std()) + 1e-12


def _warm_up(ref, net: CoxTimeNet, x, x_cat, d_s, ev) -> None:
    """One small untimed run of both implementations: the first call in a process loads the
    compiled kernels (numba's on-disk cache) and warms torch, a one-off cost per process."""
    s = slice(None, None, max(1, len(x) // 1000))  # keeps the duration order
    ref.compute_baseline_hazards((x[s], x_cat[s]), (d_s[s], ev[s]), set_hazards=False)
    times, haz = breslow_baseline_hazards(_piecewise(net, x[s], x_cat[s]), d_s[s], ev[s])
    cumulative_hazards(_piecewise(net, x[:5], x_cat[:5]), 5, times, haz)


_CPU: list[float] = []  # process CPU time of each `_timed` call, in call order


def _timed(fn):
    """Wall-clock seconds of ``fn()`` (what the speedups use); the process CPU seconds are
    appended to ``_CPU`` (printed too: steadier than wall clock on a shared machine)."""
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn()
    t = time.perf_counter() - t0
    _CPU.append(time.process_time() - c0)
    return out, t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=50_000)
    ap.add_argument("--predict-records", type=int, default=200)
    ap.add_argument("--resolution-h", type=float, default=0.25)
    ap.add_argument("--hidden-nodes", type=int, default=64)
    ap.add_argument("--time-layers", type=str, default="0,5")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (all implementations)")
    ap.add_argument("--generic", action="store_true", help="also time the per-pair callable path")
    args = ap.parse_args()
    pycox = import_pycox()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    x, x_cat, d_s, ev = _data(args.records, args.resolution_h, args.seed)
    order = np.lexsort((-ev, d_s))  # pycox needs sorted durations (events first in ties)
    x, x_cat, d_s, ev = x[order], x_cat[order], d_s[order], ev[order]
    n_pred = args.predict_records
    xp, xcp = x[::max(1, len(x) // n_pred)][:n_pred], x_cat[::max(1, len(x) // n_pred)][:n_pred]
    results = []
    print(f"SYNTHETIC data: {len(x)} training records, {int(ev.sum())} events, "
          f"{np.unique(d_s[ev == 1]).size} distinct event times; {len(xp)} records predicted; "
          f"torch threads {torch.get_num_threads()}")
    for time_layer in (int(v) for v in args.time_layers.split(",")):
        net = CoxTimeNet(30, (4, 4), embedding_dim=4, n_hidden=6, hidden_nodes=args.hidden_nodes,
                         time_layer=time_layer, batch_norm=True, dropout=0.1).eval()
        _calibrate(net, x[:2000], x_cat[:2000], d_s[:2000])
        ref = pycox.models.CoxTime(net, device="cpu")
        _warm_up(ref, net, x, x_cat, d_s, ev)

        bh, t_ref = _timed(lambda ref=ref: ref.compute_baseline_hazards(
            (x, x_cat), (d_s, ev), set_hazards=True))
        (times, haz), t_vec = _timed(lambda net=net: breslow_baseline_hazards(
            _piecewise(net, x, x_cat), d_s, ev))
        err = float(np.max(np.abs(bh.loc[times].values - haz) / haz))
        base_speedup, base_err = t_ref / t_vec, err
        kinks = _kinks_per_record(_piecewise(net, x, x_cat), d_s, times)
        print(f"kinks     time_layer={time_layer}: {kinks:.1f} per training record on its "
              "at-risk range")
        print(f"baseline  time_layer={time_layer}: piecewise {t_vec:.2f} s vs pycox "
              f"{t_ref:.2f} s -> {t_ref / t_vec:.1f}x faster (max rel. diff {err:.1e}); "
              f"CPU time {_CPU[-1]:.2f} s vs {_CPU[-2]:.2f} s -> {_CPU[-2] / _CPU[-1]:.1f}x")
        if args.generic:
            (_, haz_g), t_gen = _timed(lambda net=net: breslow_baseline_hazards(
                _log_risk(net, x, x_cat), d_s, ev))
            err = float(np.max(np.abs(bh.loc[times].values - haz_g) / haz_g))
            print(f"baseline  time_layer={time_layer}: generic per-pair {t_gen:.2f} s -> "
                  f"{t_ref / t_gen:.1f}x faster than pycox (max rel. diff {err:.1e})")

        surv_ref, p_ref = _timed(lambda ref=ref: ref.predict_surv_df((xp, xcp)))
        H, p_vec = _timed(lambda net=net, times=times, haz=haz: cumulative_hazards(
            _piecewise(net, xp, xcp), len(xp), times, haz))
        err = float(np.max(np.abs(np.exp(-H) - surv_ref.loc[times].values.T)))
        layout = "paper" if time_layer == 0 else f"time_layer={time_layer}"
        results.append(f"RESULT layout={layout} baseline_speedup={base_speedup:.1f} "
                       f"predict_speedup={p_ref / p_vec:.1f} max_diff={max(base_err, err):.1e}")
        print(f"predict   time_layer={time_layer}: piecewise {p_vec:.3f} s vs pycox "
              f"{p_ref:.2f} s -> {p_ref / p_vec:.1f}x faster (max abs. diff of S {err:.1e}); "
              f"CPU time {_CPU[-1]:.3f} s vs {_CPU[-2]:.2f} s -> {_CPU[-2] / _CPU[-1]:.1f}x")
        if args.generic:
            H, p_gen = _timed(lambda net=net, times=times, haz=haz: cumulative_hazards(
                _log_risk(net, xp, xcp), len(xp), times, haz))
            err = float(np.max(np.abs(np.exp(-H) - surv_ref.loc[times].values.T)))
            print(f"predict   time_layer={time_layer}: generic per-pair {p_gen:.3f} s -> "
                  f"{p_ref / p_gen:.1f}x faster than pycox (max abs. diff of S {err:.1e})")
    for line in results:
        print(line)


if __name__ == "__main__":
    main()
