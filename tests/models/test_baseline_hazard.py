"""The vectorised Breslow baseline and survival curves against pycox 0.3.0's loops."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flare_core.errors import ConfigError
from flare_core.models._pycox_compat import import_pycox
from flare_core.models.baseline_hazard import (
    breslow_baseline_hazards,
    cumulative_hazards,
    step_values,
)
from flare_core.models.cox_time import CoxTimeConfig, CoxTimeModel, SurvivalArrays


def _synthetic(n: int, seed: int):
    """Synthetic records (not real data): risk grows with x0; durations on a 0.5 h grid so that
    events tie with events and with censored records."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    x_cat = rng.integers(0, 3, size=(n, 1))
    d = rng.exponential(50.0 / np.exp(0.7 * x[:, 0]))
    ev = (d < 100).astype(int)
    d = np.round(np.minimum(d, 100.0) * 2) / 2
    return x, x_cat, d, ev


@pytest.fixture(scope="module", params=[0, 1], ids=["time-in-first-layer", "time-in-layer-1"])
def fitted(request):
    # time_layer=0 is the paper's layout and exercises the piecewise-affine fast path through
    # every hidden layer (with eval-mode BatchNorm folded); 1 puts an encoder in front.
    x, x_cat, d, ev = _synthetic(300, 0)
    cfg = CoxTimeConfig(epochs=2, n_hidden=2, hidden_nodes=8, batch_size=32, mu0_sample=50,
                        time_layer=request.param, batch_norm=True, device="cpu")
    model = CoxTimeModel(cfg).fit(SurvivalArrays(x, d, ev, x_cat))
    return model, (x, x_cat, d, ev)


def test_matches_pycox_baseline_and_survival(fitted):
    pycox = import_pycox()
    model, (x, x_cat, d, ev) = fitted
    d_s = model._scale_t(d)
    # pycox needs duration-sorted training data; within ties put events first, where pycox's
    # risk set ("from the first event at t on") equals the standard Breslow set T_i >= t.
    order = np.lexsort((-ev, d_s))
    xs, xc = model._scale_x(x)[order], x_cat[order]
    ref = pycox.models.CoxTime(model.net_, device="cpu")
    bh = ref.compute_baseline_hazards((xs, xc), (d_s[order], ev[order].astype("float32")))
    times = model.event_times_scaled_
    assert np.array_equal(bh.index.values[bh.values > 0], times)
    np.testing.assert_allclose(bh.loc[times].values, model.baseline_hazards_, rtol=1e-5)
    assert bh.drop(index=times).sum() == 0  # censoring-only times carry no hazard

    surv_ref = ref.predict_surv_df((model._scale_x(x[:40]), x_cat[:40])).loc[times].values.T
    surv = model._step_survival(x[:40], x_cat[:40])
    np.testing.assert_allclose(surv, surv_ref, atol=1e-6, rtol=0)


def test_generic_callable_equals_dense_formula():
    rng = np.random.default_rng(3)
    n = 50
    beta = rng.normal(size=n)
    d = rng.integers(1, 20, size=n).astype(float)
    ev = rng.integers(0, 2, size=n)

    def log_risk_at(rows, times):  # a time-dependent toy log-risk
        return beta[rows] * np.sin(times)

    times, haz = breslow_baseline_hazards(log_risk_at, d, ev, chunk_pairs=7)
    expect = []
    for t in np.unique(d[ev == 1]):
        at_risk = d >= t
        expect.append(((d == t) & (ev == 1)).sum() / np.exp(beta[at_risk] * np.sin(t)).sum())
    np.testing.assert_allclose(haz, expect, rtol=1e-12)
    H = cumulative_hazards(lambda r, t: beta[:5][r] * np.sin(t), 5, times, haz, chunk_pairs=11)
    dense = np.cumsum(np.exp(beta[:5, None] * np.sin(times)[None, :]) * haz, axis=1)
    np.testing.assert_allclose(H, dense, rtol=1e-12)


def test_step_values_and_errors():
    vals = np.array([[0.9, 0.5, 0.2]])
    out = step_values(np.array([1.0, 2.0, 3.0]), vals, np.array([0.0, 1.0, 2.5, 9.0]), before=1.0)
    np.testing.assert_array_equal(out, [[1.0, 0.9, 0.5, 0.2]])
    with pytest.raises(ConfigError):
        breslow_baseline_hazards(lambda r, t: r * 0.0, np.ones(3), np.ones(2))
    with pytest.raises(ConfigError):
        breslow_baseline_hazards(lambda r, t: r * 0.0, np.ones(3), np.ones(3), chunk_pairs=0)
    t, h = breslow_baseline_hazards(lambda r, t: r * 0.0, np.ones(3), np.zeros(3))
    assert t.size == 0 and h.size == 0


@pytest.mark.parametrize("time_layer", [0, 3])
def test_knots_interpolate_the_net_exactly(time_layer):
    """Linear interpolation of `PiecewiseAffineLogRisk.knots` equals a float64 forward pass of
    the same (untrained, eval-mode, batch-norm) net at arbitrary times, and the knots are
    sorted per record from ``lo`` to ``hi``; a zero-length range gives its one value."""
    import torch

    from flare_core.models.baseline_hazard import PiecewiseAffineLogRisk, _g_on_times_piecewise
    from flare_core.models.cox_time import CoxTimeNet

    torch.manual_seed(1)
    net = CoxTimeNet(5, (3,), embedding_dim=2, n_hidden=4, hidden_nodes=16,
                     time_layer=time_layer, batch_norm=True, dropout=0.1)
    with torch.no_grad():  # non-trivial batch-norm statistics
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    net.eval()
    rng = np.random.default_rng(2)
    x = torch.from_numpy(rng.normal(size=(60, 5)).astype(np.float32))
    x_cat = torch.from_numpy(rng.integers(0, 3, size=(60, 1)))
    with torch.inference_mode():
        z = net.encode(x, x_cat)
    risk = PiecewiseAffineLogRisk(net.head_layers, z)
    times = np.sort(rng.uniform(-3.0, 3.0, size=97))
    g = _g_on_times_piecewise(risk, np.arange(60), times, chunk_rows=16)
    net64 = copy.deepcopy(net).double()
    with torch.inference_mode():
        ref = net64.head(z.double().repeat_interleave(times.size, 0),
                         torch.from_numpy(np.tile(times, 60))[:, None]).reshape(60, -1)
    assert np.abs(ref.numpy()).max() > 1.0  # not a trivial net
    np.testing.assert_allclose(g, ref.numpy(), atol=2e-6, rtol=0)  # float32 rounding

    lo = torch.tensor([-3.0, 0.5, -1.0], dtype=torch.float64)
    hi = torch.tensor([3.0, 0.5, 2.0], dtype=torch.float64)
    rec, tau, gk = risk.knots(torch.tensor([0, 1, 2]), lo, hi)
    assert torch.equal(rec, torch.sort(rec, stable=True).values)
    for i in range(3):
        t_i = tau[rec == i]
        assert t_i[0] == lo[i] and t_i[-1] == hi[i] and bool((t_i[1:] >= t_i[:-1]).all())
    assert (rec == 0).sum() > 4  # the full range has kinks


def _random_net(seed: int, n_hidden: int, width: int, n_numeric: int = 4):
    """An untrained eval-mode CoxTimeNet with time in the first layer and non-trivial batch
    norm statistics, its encoded inputs of 40 synthetic records, and a float64 copy."""
    import torch

    from flare_core.models.cox_time import CoxTimeNet

    torch.manual_seed(seed)
    net = CoxTimeNet(n_numeric, (3,), embedding_dim=2, n_hidden=n_hidden, hidden_nodes=width,
                     time_layer=0, batch_norm=True, dropout=0.1)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    net.eval()
    rng = np.random.default_rng(seed)
    x = torch.from_numpy(rng.normal(size=(40, n_numeric)).astype(np.float32))
    x_cat = torch.from_numpy(rng.integers(0, 3, size=(40, 1)))
    with torch.inference_mode():
        z = net.encode(x, x_cat)
    return net, z, copy.deepcopy(net).double()


def _net_with_float64_reference(seed: int, n_hidden: int, width: int, *, data_seed: int):
    """`_random_net`, 40 durations on a 0.1 grid with events (the first one an event), and
    the float64 copy's log-risk ``g64(rows, times)`` as a reference callable, and the
    generator the data came from (for more draws)."""
    import torch

    net, z, net64 = _random_net(seed, n_hidden, width)
    rng = np.random.default_rng(data_seed)
    d = np.round(rng.uniform(-2.0, 2.0, size=40), 1)
    ev = rng.integers(0, 2, size=40)
    ev[0] = 1

    def g64(rows, times):
        with torch.inference_mode():
            return net64.head(z.double()[torch.from_numpy(rows)],
                              torch.from_numpy(np.asarray(times, dtype=np.float64))[:, None]
                              ).numpy().ravel()

    return net, z, d, ev, g64, rng


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n_hidden=st.integers(1, 4),
       width=st.sampled_from([3, 8, 13, 64, 70]), n_times=st.integers(1, 30))
def test_compiled_breslow_and_curves_equal_float64_forward_pass(seed, n_hidden, width, n_times):
    """The compiled knot path (CPU) gives the Breslow hazards and cumulative hazards of a
    float64 forward pass at every (record, time) pair, for widths below, at and above one
    64-bit word, one or many event times, ties and records censored before the first event."""

    from flare_core.models.baseline_hazard import PiecewiseAffineLogRisk

    # durations on a 0.1 grid: ties
    net, z, d, ev, g64, rng = _net_with_float64_reference(seed, n_hidden, width,
                                                          data_seed=seed + 1)
    times, haz = breslow_baseline_hazards(PiecewiseAffineLogRisk(net.head_layers, z), d, ev)
    t_ref, h_ref = breslow_baseline_hazards(g64, d, ev)
    assert np.array_equal(times, t_ref)
    np.testing.assert_allclose(haz, h_ref, rtol=2e-5)
    tj = np.sort(rng.uniform(-2.5, 2.5, size=n_times))
    hj = rng.uniform(0.0, 0.1, size=n_times)
    H = cumulative_hazards(PiecewiseAffineLogRisk(net.head_layers, z), 40, tj, hj)
    H_ref = cumulative_hazards(g64, 40, tj, hj)
    np.testing.assert_allclose(H, H_ref, rtol=2e-5, atol=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_compiled_knots_equal_torch_knots(seed):
    """The compiled CPU knots (rank-one updates at new knots) and the all-torch path (one
    matmul per layer on every knot) describe the same function: each one's interpolation at
    the other's knots and at random times agrees to float32 rounding."""
    import torch

    from flare_core.models.baseline_hazard import PiecewiseAffineLogRisk

    net, z, _ = _random_net(seed, 4, 64)
    risk = PiecewiseAffineLogRisk(net.head_layers, z)
    rows = torch.arange(40)
    lo = torch.full((40,), -2.0, dtype=torch.float64)
    hi = torch.linspace(-2.0, 3.0, 40, dtype=torch.float64)  # record 0: lo == hi
    with torch.inference_mode():
        fast = risk.knots(rows, lo, hi)
        slow = risk._knots_torch(rows, lo, hi)
    assert fast[0].numel() > 3 * 40  # kinks were found
    for (rec_a, tau_a, g_a), (rec_b, tau_b, g_b) in ((fast, slow), (slow, fast)):
        for i in range(40):
            ta, tb = tau_a[rec_a == i].numpy(), tau_b[rec_b == i].numpy()
            assert ta[0] == lo[i] and ta[-1] == hi[i] and np.all(np.diff(ta) >= 0)
            np.testing.assert_allclose(np.interp(tb, ta, g_a[rec_a == i].numpy()),
                                       g_b[rec_b == i].numpy(), atol=2e-5)


def test_float32_exp_kernel_matches_numpy():
    """The vectorised float32 exp of the at-risk sums is as accurate as float32 allows, and
    overflows to inf / underflows to 0 like ``np.exp``."""
    from numba import njit

    from flare_core.models.baseline_hazard import _exp32

    @njit
    def exp_all(x):
        out = np.empty(x.size)
        for i in range(x.size):
            out[i] = _exp32(x[i])
        return out

    x = np.linspace(-80.0, 80.0, 200_001).astype(np.float32)
    np.testing.assert_allclose(exp_all(x), np.exp(x.astype(np.float64)), rtol=2e-7, atol=0)
    edge = exp_all(np.array([-1e4, -200.0, 0.0, 200.0, 1e4], dtype=np.float32))
    np.testing.assert_array_equal(edge, [0.0, 0.0, 1.0, np.inf, np.inf])


@pytest.mark.parametrize("width", [128, 130])
def test_compiled_breslow_with_several_sign_words(width):
    """Hidden layers wider than one 64-bit sign word (two full words, and two plus a partial
    one): the compiled path equals a float64 forward pass at every (record, time) pair."""
    import torch

    from flare_core.models.baseline_hazard import PiecewiseAffineLogRisk

    net, z, d, ev, g64, _ = _net_with_float64_reference(5, 3, width, data_seed=7)
    risk = PiecewiseAffineLogRisk(net.head_layers, z)
    times, haz = breslow_baseline_hazards(risk, d, ev, chunk_pairs=256 * 7)  # 7-record blocks
    t_ref, h_ref = breslow_baseline_hazards(g64, d, ev)
    assert np.array_equal(times, t_ref)
    np.testing.assert_allclose(haz, h_ref, rtol=2e-5)
    rec, _, _ = risk.knots(torch.arange(40), torch.full((40,), -2.0, dtype=torch.float64),
                           torch.full((40,), 2.0, dtype=torch.float64))
    assert rec.numel() > 3 * 40  # kinks were found


def test_compiled_breslow_in_float64():
    """A `PiecewiseAffineLogRisk` in float64 keeps float64 throughout the compiled path
    (knots, interpolation and exp): the hazards equal a float64 forward pass to rounding."""
    import torch

    from flare_core.models.baseline_hazard import PiecewiseAffineLogRisk

    net, z, d, ev, g64, _ = _net_with_float64_reference(3, 3, 64, data_seed=4)
    risk = PiecewiseAffineLogRisk(net.head_layers, z, dtype=torch.float64)
    times, haz = breslow_baseline_hazards(risk, d, ev)
    t_ref, h_ref = breslow_baseline_hazards(g64, d, ev)
    assert np.array_equal(times, t_ref)
    np.testing.assert_allclose(haz, h_ref, rtol=1e-11)
