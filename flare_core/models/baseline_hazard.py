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
  CoxTimeNet`). Such a net is *continuous and piecewise affine in t* for a fixed record,
  with a kink wherever a hidden unit changes sign. All kinks of a record on its time range
  are found layer by layer (`PiecewiseAffineLogRisk.knots`): the first layer's record part
  ``W_z z + b`` is computed once per record, its pre-activation is a line in ``t``, and a
  knot is inserted where a unit crosses 0; each later layer runs *once on all knots* (one
  batched float32 matmul for a block of records), and again a knot is inserted wherever a unit
  changes sign between two neighbouring knots. ``g`` at the event times is then the linear
  interpolation of its knots, applied as cumulative (intercept, slope) changes over a dense
  block of (record x event time) cells in float64. The net thus runs once per layer and knot
  (about 30-60 per record for 6 hidden layers of 64) instead of once per pair, and the cost
  of a knot made by layer ``l`` is only the matmuls of the layers after ``l``. This is exact
  (not an approximation): only float rounding differs, and because ``g`` is continuous a
  crossing located a few ulps off changes ``g`` by a few ulps only.

  On the CPU the knots are found by compiled (numba) kernels on linked lists of knots
  (`_nb_build`): a layer's matmul runs only on the knots made *before* it, written in
  place, and a knot made by that layer's sign changes gets the next layer's pre-activations
  by rank-one updates: on a segment ``a(s) = a_L + s (a_R - a_L)`` the next layer
  ``y = W relu(a) + b`` is affine between the crossings, a crossing of unit ``u`` changes
  its slope by ``+-(a_R - a_L)_u W[:, u]``, and the slopes times the piece lengths add up
  to ``y_R - y_L`` (known from the matmul), which fixes the first slope. This saves one
  matmul per knot (O(width) instead of O(width^2)). The ReLU and the sign bits of every
  knot come from one vector pass (`_nb_signs`), so a segment without a sign change costs
  one XOR per 64 units. The whole Breslow sum is one compiled call (`_nb_breslow_sums`):
  blocks of 64 records (a block's layers stay in the L2 cache), the first layer's record
  part and every later layer one float32 BLAS matmul per block (``np.dot``, on one thread),
  then ``g`` at every at-risk (record, event time) pair interpolated from the knots in
  float64, exponentiated in float32 by a vectorised polynomial (`_exp32`) and summed in
  float64. The matmuls (~24 GFLOP for 50 000 records, 6 layers of 64, ~30 knots each) are
  about 60 % of the time. Other devices use the all-torch path
  (`PiecewiseAffineLogRisk._knots_torch`, one matmul per layer on every knot).

Times are in whatever units the model's time input uses (the caller maps them to hours).
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable

import numpy as np
import torch
from llvmlite import ir
from numba import njit, types
from numba.cpython.unsafe.numbers import trailing_zeros
from numba.extending import intrinsic
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
    """Exact piecewise-affine form in ``t`` (knots) of a ReLU head ``g = head(cat(z, t))``.

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
        Arithmetic of the network and knot evaluation (float32 default, the precision the
        net computes in anyway; sums of ``exp g`` are accumulated in float64).
    chunk_rows : int
        Records per forward pass when computing the first layer's record part.

    Notes
    -----
    Batch norm (eval) layers are folded into the following ``Linear``; the record part
    ``W_z z + b`` of the first layer is computed once here (the widest matmul of the net when
    the time enters the first layer). `knots` returns every kink of ``g(x, .)`` on a time
    range with ``g`` there; ``g`` is exactly affine between consecutive knots.
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
            self._z, self._b0, self._chunk_rows = z, b, chunk_rows
            self._wz_t = w[:, :-1].T.contiguous()
            self._u: torch.Tensor | None = None  # `u`, made on first use
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
        self.device = dev
        self._cpu: tuple | None = None  # `_cpu_params`, made on first use

    @property
    def u(self) -> torch.Tensor:
        """The first layer's record part ``W_z z + b``, shape (n, width) (made on first use;
        the compiled CPU path computes it per block of records instead)."""
        if self._u is None:
            with torch.inference_mode():
                z, c = self._z, self._chunk_rows
                self._u = torch.cat([torch.addmm(self._b0, z[i:i + c].to(self.dtype),
                                                 self._wz_t)
                                     for i in range(0, max(1, z.shape[0]), c)])
        return self._u

    def _cpu_params(self) -> tuple[np.ndarray, ...]:
        """``z``, the first layer (``W_z^T``, bias, time column) and the later layers' ``W^T``
        and biases as arrays (sharing the tensors' memory where they can): the first six
        arguments of `_nb_build`."""
        if self._cpu is None:
            with torch.inference_mode():
                z = self._z.to(self.dtype).contiguous()
            self._cpu = (z.numpy(), self._wz_t.numpy(), self._b0.numpy(), self.w_t.numpy(),
                         tuple(wt.numpy() for wt, _ in self.layers),
                         tuple(b.numpy() for _, b in self.layers))
        return self._cpu

    def knots(self, rows: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Every kink of ``g(x_rows[i], .)`` on ``[lo[i], hi[i]]``, with ``g`` there.

        Parameters
        ----------
        rows : torch.Tensor of shape (k,), int64
            Rows of ``z``.
        lo, hi : torch.Tensor of shape (k,), float64
            Time range of each record (net time units), ``lo <= hi``.

        Returns
        -------
        rec, tau, g : torch.Tensor of shape (r,)
            Knots sorted by record (position ``i`` in ``rows``, int64) then time ``tau``
            (float64); ``g`` (dtype of this object) is the net output at each. Each record's
            first and last knots are ``lo`` and ``hi``, and ``g`` is affine between
            consecutive knots of a record, so linear interpolation of the knots is ``g``
            exactly (up to rounding).

        Notes
        -----
        Layer by layer: the pre-activations are affine between consecutive knots, so a unit
        whose sign differs at the two ends of a segment crosses 0 once inside it, at the
        fraction ``f = a0 / (a0 - a1)``; a knot is inserted there with the pre-activations
        interpolated (the crossing unit exactly 0), then the ReLU and the next ``Linear`` run
        on all knots in one matmul. A unit exactly 0 at a knot needs no knot (the ReLU is
        affine on both sides of it); a sign test ``a > 0`` may then insert a duplicate knot
        at ``f = 0``, which is harmless.

        On the CPU the compiled path (`_linked_knots`) finds the same knots; it computes the
        next layer's pre-activations at a new knot by rank-one slope updates instead of a
        matmul (module docstring), so ``g`` may differ from this path's by float rounding.
        """
        if self.device.type == "cpu" and self.layers:
            heads, nxt, tau_l, g_l = _linked_knots(self, rows.cpu().numpy(),
                                                   lo.cpu().numpy(), hi.cpu().numpy())
            perm, rec = _nb_sorted(heads, nxt)
            return (torch.from_numpy(rec), torch.from_numpy(tau_l[perm]),
                    torch.from_numpy(g_l[perm]))
        return self._knots_torch(rows, lo, hi)

    def _knots_torch(self, rows: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`knots` in torch operations (any device): every layer runs on all knots."""
        ar = torch.arange
        dev, dt = self.u.device, self.dtype
        n = rows.numel()
        # knots are stored in creation order (new ones appended, so a layer's matmul writes
        # old and new rows into one buffer without moving rows); ``perm`` lists them sorted
        rec = ar(n, device=dev).repeat_interleave(2)
        tau = torch.stack([lo, hi], 1).reshape(-1)
        perm = ar(2 * n, device=dev)
        a = torch.index_select(self.u, 0, rows).repeat_interleave(2, 0)
        a.addcmul_(tau.to(dt)[:, None], self.w_t)
        for wt, b in self.layers:
            width = a.shape[1]
            pos = a > 0
            # segments (consecutive sorted knots of one record) where some unit changes
            # sign; 8 units at a time through an int64 view of the bool mask
            packed = pos.view(torch.uint8).view(torch.int64) if width % 8 == 0 else pos
            packed = packed.index_select(0, perm)
            rec_s = rec.index_select(0, perm)
            cand = torch.logical_and((packed[1:] != packed[:-1]).any(1), rec_s[1:] == rec_s[:-1])
            cand = cand.nonzero().squeeze(1)
            a_new = a[:0]
            if cand.numel():
                left, right = perm.index_select(0, cand), perm.index_select(0, cand + 1)
                ci, units = (pos.index_select(0, left) != pos.index_select(0, right)).nonzero(
                    as_tuple=True)
                segs, left, right = (v.index_select(0, ci) for v in (cand, left, right))
                flat = a.view(-1)
                a0 = flat.take(left * width + units)
                f = (a0 / (a0 - flat.take(right * width + units))).clamp_(0.0, 1.0)
                # crossings ordered by segment, then by position inside it (f in [0, 1])
                o = torch.argsort(segs.to(torch.float64).mul_(2.0).add_(f), stable=True)
                segs, left, right, units, f = (v.index_select(0, o)
                                               for v in (segs, left, right, units, f))
                n_new = segs.numel()
                a_new = torch.lerp(a.index_select(0, left), a.index_select(0, right), f[:, None])
                a_new.view(-1)[ar(n_new, device=dev) * width + units] = 0.0
                # sorted order: old knot i moves down by the new knots of the segments before it
                r = a.shape[0]
                c = torch.bincount(segs, minlength=r)
                excl = torch.cumsum(c, 0) - c
                pos_old = ar(r, device=dev) + excl
                pos_new = (pos_old.index_select(0, segs) + 1
                           + (ar(n_new, device=dev) - excl.index_select(0, segs)))
                perm = (torch.empty(r + n_new, dtype=perm.dtype, device=dev)
                        .index_copy_(0, pos_old, perm)
                        .index_copy_(0, pos_new, ar(r, r + n_new, device=dev)))
                tau_new = torch.lerp(tau.index_select(0, left), tau.index_select(0, right),
                                     f.to(torch.float64))
                tau = torch.cat([tau, tau_new])
                rec = torch.cat([rec, rec.index_select(0, left)])
            out = torch.empty((a.shape[0] + a_new.shape[0], wt.shape[1]), dtype=dt, device=dev)
            torch.addmm(b, a.clamp_(min=0.0), wt, out=out[:a.shape[0]])
            if a_new.shape[0]:
                torch.addmm(b, a_new.clamp_(min=0.0), wt, out=out[a.shape[0]:])
            a = out
        return tuple(v.index_select(0, perm) for v in (rec, tau, a[:, 0]))


@intrinsic
def _f32_from_bits(typingctx, bits):
    """Reinterpret the low 32 bits of an integer as a float32 (vectorises, unlike ldexp)."""
    if not isinstance(bits, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        v = args[0]
        if signature.args[0].bitwidth > 32:
            v = builder.trunc(v, ir.IntType(32))
        return builder.bitcast(v, ir.FloatType())

    return types.float32(bits), codegen


@njit(cache=True, nogil=True, inline="always")
def _exp32(x):
    """``exp(x)`` of a float32 in float32 (relative error about 1e-7, that of float32
    rounding), in plain arithmetic so that loops over it vectorise (16 lanes; numba's
    ``np.exp`` is a libm call per element).

    ``x = n ln 2 + r`` with ``|r| <= ln 2 / 2`` (Cody-Waite split of ln 2, ``n ln2_hi``
    exact), ``exp(r)`` by its Taylor polynomial of degree 7 (remainder below 6e-9 relative)
    and ``2^n`` applied as two exact powers of two built from their bits (overflow gives
    inf, underflow 0).
    """
    f = types.float32
    x = min(max(x, f(-150.0)), f(150.0))
    n = np.floor(x * f(1.442695) + f(0.5))
    r = (x - n * f(0.693359375)) - n * f(-2.12194440e-4)
    p = f(1.0 / 5040.0)
    p = p * r + f(1.0 / 720.0)
    p = p * r + f(1.0 / 120.0)
    p = p * r + f(1.0 / 24.0)
    p = p * r + f(1.0 / 6.0)
    p = p * r + f(0.5)
    p = p * r + f(1.0)
    p = p * r + f(1.0)
    ni = np.int32(n)
    h = ni >> 1
    return (p * _f32_from_bits((h + 127) << 23)) * _f32_from_bits((ni - h + 127) << 23)


@intrinsic
def _relu_bits64(typingctx, y, yoff, bias, boff, a, aoff):
    """``a.flat[aoff + i] = relu(v_i)`` for ``v_i = y.flat[yoff + i] + bias.flat[boff + i]``,
    ``i < 64``, returning the bits ``v_i > 0`` as a uint64: one vector block in LLVM IR (a
    compare gives the bit mask directly; a numba loop builds it bit by bit)."""
    if not (isinstance(y, types.Array) and y.dtype in (types.float32, types.float64)
            and isinstance(bias, types.Array) and isinstance(a, types.Array)
            and bias.dtype == y.dtype and a.dtype == y.dtype):
        return None

    def codegen(context, builder, signature, args):
        vt = ir.VectorType(context.get_value_type(signature.args[0].dtype), 64)

        def ptr(i):
            ary = context.make_array(signature.args[i])(context, builder, args[i])
            return builder.bitcast(builder.gep(ary.data, [args[i + 1]]), vt.as_pointer())

        v = builder.fadd(builder.load(ptr(0), align=4), builder.load(ptr(2), align=4))
        pos = builder.fcmp_ordered(">", v, ir.Constant(vt, None))
        builder.store(builder.select(pos, v, ir.Constant(vt, None)), ptr(4), align=4)
        return builder.bitcast(pos, ir.IntType(64))

    return types.uint64(y, types.intp, bias, types.intp, a, types.intp), codegen


@njit(cache=True, nogil=True)
def _nb_signs(y, bias, a, mask):
    """``a = relu(y + bias)`` and the bits ``y + bias > 0`` (64 units a word) of every row
    (all three C-contiguous)."""
    width = y.shape[1]
    full = width // 64
    zero = y.dtype.type(0.0)
    for r in range(y.shape[0]):
        for w in range(full):
            o = r * width + 64 * w
            mask[r, w] = _relu_bits64(y, o, bias, 64 * w, a, o)
        if full < mask.shape[1]:  # the last, partial word
            yr = y[r]
            ar = a[r]
            m = np.uint64(0)
            for u in range(64 * full, width):
                v = yr[u] + bias[u]
                m |= np.uint64(v > zero) << np.uint64(u - 64 * full)
                ar[u] = v if v > zero else zero
            mask[r, full] = m


@njit(cache=True, nogil=True)
def _nb_grow(v, n):
    """``v`` with room for at least ``n`` entries (doubling), its contents kept."""
    if v.size >= n:
        return v
    out = np.empty(max(n, 2 * v.size), dtype=v.dtype)
    out[:v.size] = v
    return out


@njit(cache=True, nogil=True)
def _nb_crossings(nxt, y, bias, mask, left, seg, units, f, sd):
    """Sign changes of the pre-activations ``y + bias`` between neighbouring knots.

    ``nxt[k]`` is the knot after ``k`` in its record (-1 at the record's end); ``mask``
    holds the sign bits of every knot (`_nb_signs`), so a segment without a crossing costs
    one XOR per 64 units, and ``left`` (one entry per knot) is scratch. Writes (growing the
    arrays as needed) ``seg`` (the segment's left knot), ``units``, the fraction ``f`` in
    [0, 1] of the segment where the unit crosses 0 and ``sd = sign * (a_right - a_left)``
    (sign +1 where the unit switches on), grouped by segment in knot order, ascending ``f``
    within one (ties in unit order). Returns their number and the four arrays.
    """
    nw = mask.shape[1]
    # 1: the segments with a crossing and the number of crossings (one pass, no allocation);
    # segment k is (k, nxt[k]), visited in knot order (independent loads, no pointer chase)
    n_seg = 0
    n = 0
    for k in range(nxt.size):
        k2 = nxt[k]
        if k2 < 0:
            continue
        c = 0
        for w in range(nw):
            x = mask[k, w] ^ mask[k2, w]
            while x:
                x &= x - np.uint64(1)
                c += 1
        if c:
            left[n_seg] = k
            n_seg += 1
            n += c
    seg = _nb_grow(seg, n)
    units = _nb_grow(units, n)
    f = _nb_grow(f, n)
    sd = _nb_grow(sd, n)
    # 2: their crossings, sorted by f within each segment
    n = 0
    for i in range(n_seg):
        k = left[i]
        k2 = nxt[k]
        p0 = n
        for w in range(nw):
            x = mask[k, w] ^ mask[k2, w]
            while x:
                u = 64 * w + np.int64(trailing_zeros(x))
                x &= x - np.uint64(1)
                a0 = np.float64(y[k, u] + bias[u])
                a1 = np.float64(y[k2, u] + bias[u])
                fr = min(max(a0 / (a0 - a1), 0.0), 1.0)
                s = a1 - a0 if a1 > 0.0 else a0 - a1
                q = n
                while q > p0 and f[q - 1] > fr:  # insertion sort by f, stable
                    f[q], units[q], sd[q] = f[q - 1], units[q - 1], sd[q - 1]
                    q -= 1
                f[q], units[q], sd[q] = fr, u, s
                seg[n] = k
                n += 1
    return n, seg, units, f, sd


@njit(cache=True, nogil=True)
def _nb_insert(nxt, tau, y, k_old, wt, seg, units, f, sd, n_new):
    """Insert the crossings of `_nb_crossings` as knots ``k_old, k_old + 1, ...``.

    ``y[:k_old]`` holds the next layer's ``W relu(a)`` at the old knots (``wt = W^T``; the
    bias is added by the next `_nb_signs`); the rows of the new knots are written to
    ``y[k_old:]``, and ``nxt``/``tau`` (room for the new knots) are updated in place. On a
    segment ``a(s) = a_L + s (a_R - a_L)``, ``s`` in [0, 1], ``y`` is affine between
    crossings with slope ``W D a'`` (``D`` the units on), and each crossing changes that
    slope by ``sd W[:, u]``; the first slope is ``(y_R - y_L) - sum_i (1 - f_i) sd_i W[:,
    u_i]`` (the slopes times the piece lengths add up to ``y_R - y_L``).
    """
    w_out = y.shape[1]
    slope = np.empty(w_out, dtype=np.float64)
    cur = np.empty(w_out, dtype=np.float64)
    q0 = 0
    while q0 < n_new:
        left = seg[q0]
        q1 = q0 + 1
        while q1 < n_new and seg[q1] == left:
            q1 += 1
        right = nxt[left]
        t0 = tau[left]
        dt = tau[right] - t0
        if q1 == q0 + 1:  # one crossing: (1 - f) y_L + f y_R - f (1 - f) sd W[:, u]
            kn = k_old + q0
            fq = f[q0]
            c = y.dtype.type(fq * (1.0 - fq) * sd[q0])
            cl = y.dtype.type(1.0 - fq)
            cr = y.dtype.type(fq)
            yl = y[left]
            yr = y[right]
            yn = y[kn]
            wu = wt[units[q0]]
            for o in range(w_out):  # in the net's precision (3 terms, rounded once each)
                yn[o] = cl * yl[o] + cr * yr[o] - c * wu[o]
            tau[kn] = t0 + fq * dt
            nxt[left] = kn
            nxt[kn] = right
            q0 = q1
            continue
        for o in range(w_out):
            cur[o] = y[left, o]
            slope[o] = np.float64(y[right, o]) - cur[o]
        for q in range(q0, q1):
            c = (1.0 - f[q]) * sd[q]
            wu = wt[units[q]]
            for o in range(w_out):
                slope[o] -= c * wu[o]
        f_prev = 0.0
        prev = left
        for q in range(q0, q1):
            kn = k_old + q
            step = f[q] - f_prev
            c = sd[q]
            wu = wt[units[q]]
            yn = y[kn]
            for o in range(w_out):
                cur[o] += step * slope[o]
                yn[o] = cur[o]
                slope[o] += c * wu[o]
            tau[kn] = t0 + f[q] * dt
            nxt[prev] = kn
            prev = kn
            f_prev = f[q]
        nxt[prev] = right
        q0 = q1


@njit(cache=True, nogil=True)
def _nb_workspace(w):
    """Empty buffers for `_nb_build` (grown on demand): pre-activations, their ReLU, sign
    words, ``nxt``, ``tau``, scratch and the four crossing arrays."""
    n = 1024
    width = w.shape[1]
    return (np.empty(n * width, dtype=w.dtype), np.empty(n * width, dtype=w.dtype),
            np.empty(n, dtype=np.uint64), np.empty(n, dtype=np.int64),
            np.empty(n, dtype=np.float64), np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64),
            np.empty(n, dtype=np.int64), np.empty(n, dtype=np.float64),
            np.empty(n, dtype=np.float64))


@njit(cache=True, nogil=True)
def _nb_build(z, wz_t, b0, w_t, wts, bs, rows, lo, hi, ws):
    """The knots of records ``rows`` on ``[lo, hi]`` as linked lists (`_linked_knots`).

    The first layer is ``W_z z + b0 + t w_t`` (its record part computed here, one small
    matmul for the block); ``wts``/``bs`` are the later layers' ``W^T`` and bias. Each
    layer: `_nb_signs` (ReLU and sign bits of every knot), `_nb_crossings`, one matmul on
    the knots made before it (``np.dot``, BLAS), then `_nb_insert` for its new knots.
    Returns ``heads, nxt, tau, g`` (views into the workspace ``ws``, valid until its next
    use) and the workspace.
    """
    ybuf, abuf, mbuf, nxt, tau, left, seg, units, f, sd = ws
    n = rows.size
    k = 2 * n
    width = wz_t.shape[1]
    u = np.empty((n, width), dtype=wz_t.dtype)
    np.dot(z[rows], wz_t, u)
    ybuf = _nb_grow(ybuf, k * width)
    nxt = _nb_grow(nxt, k)
    tau = _nb_grow(tau, k)
    heads = np.arange(0, k, 2)
    y = ybuf[:k * width].reshape((k, width))
    for i in range(n):
        tau[2 * i] = lo[i]
        tau[2 * i + 1] = hi[i]
        nxt[2 * i] = 2 * i + 1
        nxt[2 * i + 1] = -1
        ur = u[i]
        t0 = u.dtype.type(lo[i])
        t1 = u.dtype.type(hi[i])
        for o in range(width):
            y[2 * i, o] = (ur[o] + b0[o]) + t0 * w_t[o]
            y[2 * i + 1, o] = (ur[o] + b0[o]) + t1 * w_t[o]
    bias = np.zeros(width, dtype=u.dtype)
    for li in range(len(wts)):
        wt = wts[li]
        w_in, w_out = wt.shape
        nw = (w_in + 63) // 64
        abuf = _nb_grow(abuf, k * w_in)
        mbuf = _nb_grow(mbuf, k * nw)
        a = abuf[:k * w_in].reshape((k, w_in))
        _nb_signs(y, bias, a, mbuf[:k * nw].reshape((k, nw)))
        left = _nb_grow(left, k)
        n_new, seg, units, f, sd = _nb_crossings(nxt[:k], y, bias,
                                                 mbuf[:k * nw].reshape((k, nw)), left,
                                                 seg, units, f, sd)
        k2 = k + n_new
        ybuf = _nb_grow(ybuf, k2 * w_out)  # (y is dead here: the copy is only wasted time)
        nxt = _nb_grow(nxt, k2)
        tau = _nb_grow(tau, k2)
        y = ybuf[:k2 * w_out].reshape((k2, w_out))
        np.dot(a, wt, ybuf[:k * w_out].reshape((k, w_out)))  # contiguous: BLAS
        _nb_insert(nxt, tau, y, k, wt, seg, units, f, sd, n_new)
        k = k2
        bias = bs[li]
    g = np.empty(k, dtype=u.dtype)
    for i in range(k):
        g[i] = y[i, 0] + bias[0]
    return heads, nxt[:k], tau[:k], g, (ybuf, abuf, mbuf, nxt, tau, left, seg, units, f, sd)


@njit(cache=True, nogil=True, fastmath={"contract"})
def _nb_add_expg(heads, nxt, tau, g, t, stop, out, buf):
    """``out[j] += exp g_i(t[j])`` for every record i and ``j < stop[i]`` (``g_i`` the linear
    interpolation of its knots, ``t[0]`` and ``t[stop[i] - 1]`` its first and last knots):
    ``g`` interpolated in float64 and rounded to the dtype of ``buf`` (the net's), then
    exponentiated in it (float32: `_exp32`) and summed in float64; ``buf`` (at least
    ``max(stop)`` long) is scratch."""
    for r in range(heads.size):
        s = stop[r]
        j = 0
        k = heads[r]
        while j < s:  # g at the times, one segment of knots at a time
            k2 = nxt[k]
            ga = np.float64(g[k])
            if k2 < 0:  # a one-time range: both knots at t[0]
                while j < s:
                    buf[j] = ga
                    j += 1
                break
            ta = tau[k]
            dt = tau[k2] - ta
            slope = (np.float64(g[k2]) - ga) / dt if dt > 0.0 else 0.0
            tb = tau[k2] if nxt[k2] >= 0 else np.inf  # the last segment takes every time left
            while j < s and t[j] < tb:
                buf[j] = ga + (t[j] - ta) * slope
                j += 1
            k = k2
        if buf.itemsize == 4:
            for j in range(s):  # vectorised
                out[j] += np.float64(_exp32(buf[j]))
        else:  # a float64 net: float64 exp
            for j in range(s):
                out[j] += np.exp(np.float64(buf[j]))


@njit(cache=True, nogil=True)
def _nb_breslow_sums(z, wz_t, b0, w_t, wts, bs, rows, stop, t, block):
    """``sum_i exp g(x_rows[i], t[j])`` over the records with ``j < stop[i]``, for every j:
    knots of ``block`` records at a time (`_nb_build`), summed by `_nb_add_expg`."""
    out = np.zeros(t.size, dtype=np.float64)
    buf = np.empty(t.size, dtype=wz_t.dtype)
    ws = _nb_workspace(wz_t)
    n = rows.size
    for r0 in range(0, n, block):
        r1 = min(n, r0 + block)
        live = 0
        for i in range(r0, r1):
            live += stop[i] > 0
        if live == 0:
            continue
        rw = np.empty(live, dtype=np.int64)
        st = np.empty(live, dtype=np.int64)
        hi = np.empty(live, dtype=np.float64)
        p = 0
        for i in range(r0, r1):
            if stop[i] > 0:
                rw[p] = rows[i]
                st[p] = stop[i]
                hi[p] = t[stop[i] - 1]
                p += 1
        heads, nxt, tau, g, ws = _nb_build(z, wz_t, b0, w_t, wts, bs, rw, np.full(live, t[0]),
                                           hi, ws)
        _nb_add_expg(heads, nxt, tau, g, t, st, out, buf)
    return out


@njit(cache=True, nogil=True)
def _nb_sorted(heads, nxt):
    """Knot indices in (record, time) order and the record of each."""
    perm = np.empty(nxt.size, dtype=np.int64)
    rec = np.empty(nxt.size, dtype=np.int64)
    p = 0
    for r in range(heads.size):
        k = heads[r]
        while k >= 0:
            perm[p] = k
            rec[p] = r
            p += 1
            k = nxt[k]
    return perm[:p], rec[:p]


@njit(cache=True, nogil=True)
def _nb_g_at_times(heads, nxt, tau, g, t, stop, offs, out):
    """``out[offs[i] + j] = g_i(t[j])`` for ``j < stop[i]``: linear interpolation of record
    i's knots (``t`` ascending, ``t[0]`` and ``t[stop[i] - 1]`` its first and last knots)."""
    for r in range(heads.size):
        s = stop[r]
        p = offs[r]
        j = 0
        k = heads[r]
        while j < s:
            k2 = nxt[k]
            if k2 < 0:  # a one-time range: both knots at t[0]
                while j < s:
                    out[p + j] = g[k]
                    j += 1
                break
            ta = tau[k]
            ga = np.float64(g[k])
            dt = tau[k2] - ta
            slope = (np.float64(g[k2]) - ga) / dt if dt > 0.0 else 0.0
            if nxt[k2] < 0:  # last segment: every remaining time
                tb = np.inf
            else:
                tb = tau[k2]
            j1 = j
            while j1 < s and t[j1] < tb:
                j1 += 1
            for i in range(j, j1):  # vectorised
                out[p + i] = ga + (t[i] - ta) * slope
            j = j1
            k = k2


def _linked_knots(risk: PiecewiseAffineLogRisk, rows: np.ndarray, lo: np.ndarray,
                  hi: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """`PiecewiseAffineLogRisk.knots` on the CPU, as linked lists.

    Returns ``heads`` (record i's first knot, its ``lo``, is knot ``2 i``), ``nxt`` (the next
    knot of the same record, -1 after ``hi``), ``tau`` (float64) and ``g`` (dtype of
    ``risk``) per knot. Knots are appended in creation order: each layer is one matmul on the
    knots made before it (written in place, no row moves), and the knots it makes get the
    next layer's pre-activations by rank-one updates (`_nb_build`).
    """
    p = risk._cpu_params()
    with _one_blas_thread():
        heads, nxt, tau, g, _ = _nb_build(*p, np.ascontiguousarray(rows, np.int64),
                                          np.ascontiguousarray(lo, np.float64),
                                          np.ascontiguousarray(hi, np.float64),
                                          _nb_workspace(p[1]))
    return heads, nxt, tau, g


def _flatten(module: nn.Module) -> list[nn.Module]:
    if isinstance(module, nn.Sequential):
        return [m for child in module for m in _flatten(child)]
    return [module]


@functools.cache
def _blas_controller():
    """threadpoolctl's controller of the loaded BLAS libraries (None without threadpoolctl),
    made once scipy's BLAS, the one numba's ``np.dot`` calls, is loaded."""
    try:
        import scipy.linalg.cython_blas  # noqa: F401  (loads the BLAS numba calls)
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        return None
    return ThreadpoolController()


def _one_blas_thread() -> contextlib.AbstractContextManager:
    """Context running BLAS on one thread: the compiled path's matmuls are a few thousand
    rows of 64 each, which a multi-threaded BLAS slows down several fold (more so on a
    shared machine); costs ~10 us."""
    ctl = _blas_controller()
    return contextlib.nullcontext() if ctl is None else ctl.limit(limits=1, user_api="blas")


def _knot_rows(chunk_pairs: int, risk: PiecewiseAffineLogRisk) -> int:
    # a record has tens of knots, each a row of every layer: on the CPU 1/256 of chunk_pairs
    # records (64 by default, ~2000 knots of 64 float32) keep a block's layers in the L2
    # cache; other devices take larger blocks (fewer kernel launches)
    return max(1, chunk_pairs // (256 if risk.device.type == "cpu" else 32))


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
        in the order of ``durations``) is evaluated once per layer and knot instead of once
        per pair (module docstring).
    durations : ndarray of shape (n,)
        Observed times (event or censoring), in the model's time units.
    events : ndarray of shape (n,)
        1 where the record ends in an event, 0 where censored.
    max_duration : float, optional
        Drop event times above it.
    chunk_pairs : int
        Number of (record, time) pairs evaluated per call of ``log_risk_at``; for a
        `PiecewiseAffineLogRisk`, ``chunk_pairs // 256`` records per block of knots on the CPU
        (``chunk_pairs // 32`` on other devices).

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
        at_risk = _sum_expg_piecewise(log_risk_at, order, start, times,
                                      _knot_rows(chunk_pairs, log_risk_at))
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
        Pairs per call of ``log_risk_at`` (for a `PiecewiseAffineLogRisk`, ``chunk_pairs //
        256`` records per block of knots on the CPU, ``// 32`` on other devices).

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
        g = _g_on_times_piecewise(log_risk_at, rows, times[nz],
                                  _knot_rows(chunk_pairs, log_risk_at))
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


def _g_blocks(risk: PiecewiseAffineLogRisk, rows: np.ndarray, times: np.ndarray,
              stop: np.ndarray, chunk_rows: int):
    """Yield ``(r0, g)``: ``g[i, j] = g(x_rows[r0 + i], times[j])`` (float64) for ``j <
    stop[r0 + i]``, one block of ``chunk_rows`` records at a time (entries at ``j >= stop``
    are unspecified; ``g`` has ``max(stop)`` columns of the block).

    The knots of each record on ``[times[0], times[stop - 1]]`` (`PiecewiseAffineLogRisk.
    knots`) give ``g = alpha_k + slope_k t`` between knots ``k`` and ``k + 1``; each segment
    holding event times writes its change of ``(alpha, slope)`` at its first time and a
    cumulative sum along the times spreads it to the rest.
    """
    dev = risk.device
    t_all = torch.from_numpy(np.asarray(times, dtype=np.float64)).to(dev)
    rows_t = torch.from_numpy(np.ascontiguousarray(rows, dtype=np.int64)).to(dev)
    stop_t = torch.from_numpy(np.asarray(stop, dtype=np.int64)).to(dev)
    for r0 in range(0, rows.size, chunk_rows):
        end = stop_t[r0:r0 + chunk_rows]
        m = int(end.max()) if end.numel() else 0
        if m == 0:
            continue
        live = torch.nonzero(end > 0).squeeze(1)
        end = end.index_select(0, live)
        lo = t_all[:1].expand(live.numel())
        rec, tau, g = risk.knots(rows_t[r0:r0 + chunk_rows][live], lo, t_all[end - 1])
        g = g.to(torch.float64)
        last = torch.ones_like(rec, dtype=torch.bool)
        last[:-1] = rec[1:] != rec[:-1]
        jlo = torch.searchsorted(t_all, tau, side="left")
        # knot k covers the times in [tau_k, tau_k+1); a record's last knot (times[end - 1])
        # covers that time only
        jhi = torch.where(last, end.index_select(0, rec), torch.cat([jlo[1:], jlo[-1:]]))
        dtau = torch.cat([tau[1:], tau[-1:]]) - tau
        ok = ~last & (dtau > 0)
        slope = torch.where(ok, (torch.cat([g[1:], g[-1:]]) - g) / torch.where(ok, dtau, 1.0),
                            0.0)
        used = torch.nonzero(jhi > jlo).squeeze(1)  # segments holding event times
        rec, jlo, slope = (v.index_select(0, used) for v in (rec, jlo, slope))
        alpha = g.index_select(0, used) - slope * tau.index_select(0, used)
        first = torch.ones_like(rec, dtype=torch.bool)
        first[1:] = rec[1:] != rec[:-1]
        d_alpha = torch.where(first, alpha, alpha - torch.cat([alpha[:1], alpha[:-1]]))
        d_slope = torch.where(first, slope, slope - torch.cat([slope[:1], slope[:-1]]))
        cell = live.index_select(0, rec) * m + jlo
        shape = (min(rows.size, r0 + chunk_rows) - r0, m)
        a_cum = torch.zeros(shape, dtype=torch.float64, device=dev)
        s_cum = torch.zeros(shape, dtype=torch.float64, device=dev)
        a_cum.view(-1)[cell] = d_alpha
        s_cum.view(-1)[cell] = d_slope
        yield r0, torch.cumsum(a_cum, 1).addcmul_(torch.cumsum(s_cum, 1), t_all[:m])


def _cpu_blocks(risk: PiecewiseAffineLogRisk, rows: np.ndarray, times: np.ndarray,
                stop: np.ndarray, chunk_rows: int):
    """Yield ``(r0, stop, heads, nxt, tau, g)``: the knots (`_linked_knots`) of
    ``rows[r0:r0 + chunk_rows]`` on ``[times[0], times[stop - 1]]``, one block at a time;
    records with ``stop == 0`` are left out (``stop`` is the block's, without them)."""
    times = np.asarray(times, dtype=np.float64)
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    stop = np.asarray(stop, dtype=np.int64)
    for r0 in range(0, rows.size, chunk_rows):
        st = stop[r0:r0 + chunk_rows]
        rw = rows[r0:r0 + chunk_rows]
        if not st.all():
            live = st > 0
            if not live.any():
                continue
            st, rw = st[live], rw[live]
        heads, nxt, tau, g = _linked_knots(risk, rw, np.full(st.size, times[0]),
                                           times[st - 1])
        yield r0, st, heads, nxt, tau, g


def _sum_expg_piecewise(risk: PiecewiseAffineLogRisk, order: np.ndarray, start: np.ndarray,
                        times: np.ndarray, chunk_rows: int) -> np.ndarray:
    """``sum_{sorted records k >= start[j]} exp g(x_order[k], t_j)`` for every j."""
    # sorted record k is at risk at t_j iff start[j] <= k, i.e. for j < #{j : start[j] <= k}
    stop = np.searchsorted(start, np.arange(order.size), side="right")
    if risk.device.type == "cpu" and risk.layers:
        with _one_blas_thread():
            return _nb_breslow_sums(*risk._cpu_params(), np.ascontiguousarray(order, np.int64),
                                    stop.astype(np.int64), np.asarray(times, dtype=np.float64),
                                    chunk_rows)
    out = torch.zeros(times.size, dtype=torch.float64, device=risk.device)
    stop_t = torch.from_numpy(stop).to(out.device)
    with torch.inference_mode():
        for r0, g in _g_blocks(risk, order, times, stop, chunk_rows):
            gone = (torch.arange(g.shape[1], device=out.device)
                    >= stop_t[r0:r0 + g.shape[0], None])
            out[:g.shape[1]] += torch.exp_(g.masked_fill_(gone, -torch.inf)).sum(0)
    return out.cpu().numpy()


def _g_on_times_piecewise(risk: PiecewiseAffineLogRisk, rows: np.ndarray, times: np.ndarray,
                          chunk_rows: int) -> np.ndarray:
    """``g(x_rows[i], times[j])`` as an (len(rows), len(times)) float64 array."""
    if risk.device.type == "cpu" and risk.layers:
        times = np.asarray(times, dtype=np.float64)
        m = times.size
        out = np.empty((rows.size, m), dtype=np.float64)
        stop = np.full(rows.size, m, dtype=np.int64)
        with torch.inference_mode(), _one_blas_thread():
            for r0, st, heads, nxt, tau, g in _cpu_blocks(risk, rows, times, stop, chunk_rows):
                offs = np.arange(st.size + 1, dtype=np.int64) * m
                _nb_g_at_times(heads, nxt, tau, g, times, st, offs,
                               out[r0:r0 + st.size].reshape(-1))
        return out
    out = torch.empty((rows.size, times.size), dtype=torch.float64, device=risk.device)
    stop = np.full(rows.size, times.size)
    with torch.inference_mode():
        for r0, g in _g_blocks(risk, rows, times, stop, chunk_rows):
            out[r0:r0 + g.shape[0]] = g
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
