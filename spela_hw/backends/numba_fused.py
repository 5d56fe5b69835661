"""Fused SPELA training and batched primitives for the numba backend.

:func:`spela_train_chunk` is what :meth:`NumbaOps.spela_train_chunk` runs. It lays the weights
out input-major for the duration of one call, runs :mod:`spela_hw._kernels.chunk` (pending
update of step t fused with the forward pass of step t+1, zero skipping, narrow weights, every
layer optionally split between two threads), then writes the weights back and fills the same
:class:`~spela_hw.counts.Counts` as the per-step path. Fixed-point results equal the per-step
path (and the reference) bit for bit; float32 results agree within float tolerance; the number
of threads never changes a result, so a :class:`ThreadChooser` may run each segment of a
chunk on one thread or on all, whichever has been faster on the machine as it is (busy cores make
the per-step barriers of the threaded path expensive).

:func:`forward_batch` is ``NumbaOps.forward`` for fixed-point batches of 16 samples or more
(transposed once per call, zero-skipping sub-batches); :func:`update_is_fast` decides whether
``NumbaOps.update`` may use the vectorised rounding (no int64 wrap-around possible).
"""

from __future__ import annotations

import sys
import time

import numpy as np

from .._kernels import buffers as kfu  # the fused kernels' counter columns (C_*)
from .._kernels import chunk as kch
from .._kernels import forward as kfw
from .._kernels.sync import HANDSHAKE_SPINS
from .._kernels.records import (Activation, ChunkBuffers, FixedFormats, FixedLayer, Network,
                                SpelaRule)
from ..codes import INPUT_MAJOR, NEAREST, OUTPUT_MAJOR
from ..rng import splitmix64
from .common import LOSS_CODE, SAT_ACTIVATION, SAT_UPDATE, SAT_WEIGHT

__all__ = ["fused_supported", "spela_train_chunk", "stream_keys", "forward_batch",
           "update_is_fast", "update_is_fast32", "ThreadChooser"]

_BLOCK_ALIGN = 64  # outputs per block are a multiple of this (whole cache lines, SIMD width)
_MIN_PARALLEL_WIDTH = 256  # narrower layers run on one thread (a barrier costs more than them)
_NARROW = 64  # layers with fewer outputs are kept output-major (loops over the long fan-in)


def stream_keys(seed: int, n_layers: int, step0: int, n_steps: int) -> np.ndarray:
    """Keys ``stream_key(seed, k, step0 + t)`` as a ``(n_steps, n_layers)`` uint64 array."""
    out = np.empty((n_steps, n_layers), np.uint64)
    steps = np.arange(step0, step0 + n_steps, dtype=np.uint64)
    with np.errstate(over="ignore"):
        k0 = splitmix64(np.array([seed & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64))
        for k in range(n_layers):
            k1 = splitmix64(k0 ^ np.uint64(k))
            out[:, k] = splitmix64(k1 ^ steps)
    return out


def _lay_out(weights, w_flat, woff, layout, split, back=False):
    """Copy ``weights`` (``(m, n)`` each) into ``w_flat`` as the fused kernels read them, or back
    (``back``). Input-major layers are stored block-major at ``split[k]``
    (:func:`spela_hw._kernels.buffers.block_view`: one transposed copy per block, no intermediate),
    output-major layers as they are."""
    for k, wk in enumerate(weights):
        m, n = wk.shape
        seg = w_flat[woff[k]:woff[k] + m * n]
        if layout[k] != INPUT_MAJOR:
            if back:
                wk[...] = seg.reshape(m, n)
            else:
                seg.reshape(m, n)[...] = wk
            continue
        for c0, c1 in ((0, split[k]), (split[k], m)):
            if c1 == c0:
                continue
            blk = seg[n * c0:n * c1].reshape(n, c1 - c0)
            if back:
                wk[c0:c1] = blk.T
            else:
                blk[...] = wk[c0:c1].T


def two_cores_split(m: int, input_major: bool = True) -> int:
    """First output of the second thread in a layer of ``m`` outputs (the two-thread kernels):
    half, on a 64-byte boundary of float32 outputs for wide layers; even in narrow input-major
    layers, whose blocks start on a stochastic-rounding word (two outputs share one)."""
    if m >= _BLOCK_ALIGN:
        return -(-(m // 2) // 16) * 16
    return m // 4 * 2 if input_major else m // 2


def _scratch(ops, name: str, n: int, dtype) -> np.ndarray:
    """A 64-byte aligned buffer of ``n`` items kept on ``ops`` as ``_scratch_<name>`` (contents
    undefined; not pickled), reallocated only when the size or type changes."""
    key = "_scratch_" + name
    buf = ops.__dict__.get(key)
    if buf is None or buf.size != n or buf.dtype != np.dtype(dtype):
        buf = ops.__dict__[key] = aligned_empty(n, dtype)
    return buf


def aligned_empty(n: int, dtype) -> np.ndarray:
    """Uninitialised 1-D array starting on a 64-byte (cache-line) boundary."""
    itemsize = np.dtype(dtype).itemsize
    buf = np.empty(n + 64 // itemsize, dtype)
    off = (-buf.ctypes.data % 64) // itemsize
    return buf[off:off + n]


def _int_dtype(lo, hi):
    """int32 when a format's integers fit in it (SIMD lanes twice as wide as int64)."""
    return np.int32 if -(2**31) <= int(lo) and int(hi) < 2**31 else np.int64


def update_is_fast(ops, batch: int, p=None, x=None) -> bool:
    """Whether the vectorised rounding applies: ``|S + r| < 2**62`` for every update sum ``S``
    (``batch`` products of an update term and an input; their formats bound them, or the
    actual arrays ``p`` and ``x`` when given)."""
    if p is not None and x is not None:
        pmax = int(np.abs(p).max(initial=0))
        xmax = int(np.abs(x).max(initial=0))
    else:
        pmax = max(abs(int(ops.lo[SAT_UPDATE])), abs(int(ops.hi[SAT_UPDATE])))
        xmax = max(abs(int(ops.lo[SAT_ACTIVATION])), abs(int(ops.hi[SAT_ACTIVATION])))
    return batch * pmax * xmax + 2**max(ops.shift_w, 0) < 2**62


def update_is_fast32(ops) -> bool:
    """Whether a single contribution ``p x`` rounds in int32 lanes
    (:func:`~spela_hw._kernels.rounding_lanes.fx_apply_px32`): saturating weights,
    ``shift_w >= 16`` and every term of ``ph x + ((pl x) >> e) + r16`` within int32
    (``e = shift_w - 16``, ``p = ph 2**e + pl``) for the formats' largest values."""
    if not ops.fixed or ops.wrap[SAT_WEIGHT] or ops.shift_w < 16:
        return False
    e = ops.shift_w - 16
    pmax = max(abs(int(ops.lo[SAT_UPDATE])), abs(int(ops.hi[SAT_UPDATE])))
    xmax = max(abs(int(ops.lo[SAT_ACTIVATION])), abs(int(ops.hi[SAT_ACTIVATION])))
    return (2**e - 1) * xmax < 2**31 and ((pmax >> e) + 2) * xmax + 2**16 < 2**31


class ThreadChooser:
    """Runs a chunk in segments, each on one thread or on all, whichever was faster lately.

    Per-step barriers make the threaded path fast on idle cores and many times slower when the
    cores are busy with other work (a waiting thread loses its time slice at every step). Results
    never depend on the choice (see :mod:`spela_hw._kernels`), so segments may switch
    freely. The faster mode (threads only when clearly faster: they occupy every core) runs in
    segments that double while it keeps winning, from a short probe up to ``segment_samples``
    (or ``MIN_STEPS`` steps), so that one lucky measurement costs little; the other mode is
    re-measured on a short probe now and then, less often each time it loses.
    """

    MAX_GAP = 64  # at most this many segments between two probes
    MARGIN = 1.1  # threads must be this much faster than one thread to be chosen
    MIN_STEPS = 128  # longest segments have at least this many steps

    def __init__(self, fixed: bool | None = None, segment_samples: int = 2048,
                 probe_samples: int = 8, clock=time.perf_counter):
        self.clock = clock
        self.fixed = fixed  # True / False: always threaded / serial, in one segment
        self.segment_samples = segment_samples  # (one extra flush pass per segment)
        self.probe_samples = probe_samples  # samples of a segment that re-measures a mode
        self.rate = {False: None, True: None}  # samples per second, exponential average
        self.warm = {False: False, True: False}  # a mode's first run may compile: not timed
        self.length = {False: 0, True: 0}  # samples of the next segment of a mode (0: probe)
        self.gap = 4  # segments until the next probe of the slower mode
        self.since = 0

    def _best(self) -> bool:
        return self.rate[True] > self.MARGIN * self.rate[False]

    def _record(self, par: bool, rate: float) -> None:
        old = self.rate[par]
        self.rate[par] = rate if old is None else 0.5 * (old + rate)

    def run_segments(self, run, n_steps: int, batch: int) -> None:
        """``run(t0, t1, parallel)`` over steps ``[0, n_steps)`` in segments."""
        if self.fixed is not None:
            run(0, n_steps, bool(self.fixed))
            return
        # at least MIN_STEPS steps: each segment ends with an extra pass (the pending update)
        seg = max(self.MIN_STEPS, self.segment_samples // batch)
        probe = max(1, self.probe_samples // batch)
        t0 = 0
        while t0 < n_steps:
            probing = True
            if not (self.warm[False] and self.warm[True]):  # short warm-up runs first
                par = self.warm[False]  # serial first, then threaded
            elif self.rate[False] is None or self.rate[True] is None:
                par = self.rate[False] is not None
            else:
                best = self._best()
                probing = self.since >= self.gap
                par = not best if probing else best
            length = probe if probing else max(probe, min(self.length[par], seg))
            t1 = min(n_steps, t0 + length)
            c0 = self.clock()
            run(t0, t1, par)
            dt = max(self.clock() - c0, 1e-9)
            steps, t0 = t1 - t0, t1
            if not self.warm[par]:
                self.warm[par] = True
                continue
            was_best = self.rate[False] is not None and self.rate[True] is not None \
                and self._best() == par
            # a segment of k steps makes k + 1 passes (the last one applies the pending update)
            self._record(par, (steps + 1) * batch / dt)
            if self.rate[False] is None or self.rate[True] is None:
                continue
            wins = self._best() == par
            # segments of a winning mode grow; a mode that lost starts again from a probe
            self.length[par] = min(2 * max(length, probe), seg) if wins else 0
            if probing and not was_best:  # probe less often while the other mode keeps winning
                self.since = 0
                self.gap = 4 if wins else min(2 * self.gap, self.MAX_GAP)
            else:
                self.since += 1


def fused_supported(ops, rule, device=None) -> bool:
    """Whether the fused path runs ``rule`` exactly as the per-step path would."""
    if device is not None or getattr(rule, "name", None) != "spela":
        return False
    opt = rule.optimizer
    if opt.kind != "sgd" or opt.momentum or rule.update_order != "pre_update":
        return False
    # The "raise" overflow policy must stop at the exact step that overflowed: per-step path.
    if ops.fixed and any(ops.raise_on):
        return False
    # The kernels read the SR unit's 32-bit words as uint16 halves in output order, which holds
    # on little-endian hosts (x86, ARM) only.
    return not ops.fixed or sys.byteorder == "little"


def _activation(ops) -> Activation:
    """The kernels' :class:`~spela_hw._kernels.records.Activation` of ``ops``."""
    if not ops.fixed:
        return Activation(int(ops.act_code), float(ops.slope), 0, np.zeros(1, np.int64), 0, 1.0)
    return Activation(int(ops.act_code), float(ops.slope), int(ops.slope_q),
                      np.ascontiguousarray(ops.lut, np.int64),
                      int(ops.precision.activation.min_int), float(ops.gate_h2))


def _kflush(wmax: int, xmax: int) -> int:
    """Products of weights and inputs up to ``wmax``, ``xmax`` summed in int32 lanes before a flush
    to int64 (0: int64 only)."""
    return (2**31 - 1) // (wmax * xmax) if wmax * xmax <= 2**31 - 1 else 0


def _limit(lo, hi) -> int:
    return max(abs(int(lo)), abs(int(hi)))


def _fixed_formats(ops, L: int, B: int) -> FixedFormats:
    """Every layer's formats and update rounding (each layer its own weight binary point) for
    steps of ``B`` samples."""
    layers = [ops.layer(k) for k in range(L)]
    xmax = _limit(ops.lo[SAT_ACTIVATION], ops.hi[SAT_ACTIVATION])

    def col(f, dtype=np.int64):
        return np.array([f(lk) for lk in layers], dtype)

    return FixedFormats(
        lo=np.stack([lk.lo for lk in layers]), hi=np.stack([lk.hi for lk in layers]),
        wrap=np.stack([lk.wrap for lk in layers]), f_a=int(ops.f_a),
        shift_acc=col(lambda lk: lk.shift_acc), sh_w=col(lambda lk: lk.shift_w),
        sh_b=col(lambda lk: lk.shift_b), mode=int(ops.rounding),
        srmask=col(lambda lk: int(lk.sr_mask32), np.uint32),
        kflush=col(lambda lk: _kflush(_limit(lk.lo[SAT_WEIGHT], lk.hi[SAT_WEIGHT]), xmax)),
        fast=col(lambda lk: update_is_fast(lk, B), np.bool_),
        fast32=col(lambda lk: update_is_fast32(lk), np.bool_),
        pow2_a=float(ops.pow2_a), pow2_au=float(ops.pow2_au))


def spela_train_chunk(ops, state, rule, x, y, lr: float, batch_size: int, counts,
                      threads: int = 1, narrow: int = _NARROW,
                      chooser: ThreadChooser | None = None) -> None:
    """Train ``state`` on ``(x, y)`` in consecutive steps of ``batch_size`` samples.

    Equivalent to calling :func:`spela_hw.rules.spela.train_batch` on each slice
    ``x[s:s + batch_size]`` in order (the last step may be smaller). ``x`` is in the backend's
    input representation, ``y`` holds class indices. The caller checks :func:`fused_supported`.
    Layers with fewer than ``narrow`` outputs are processed output-major, the others input-major
    with their outputs split between two threads when ``threads > 1`` (more are not used). The
    chunk then runs in segments on one thread or on two, whichever ``chooser`` (default: one
    :class:`ThreadChooser` kept on ``ops``) found faster (the result is the same either way).
    """
    spec = state.spec
    L = spec.n_layers
    dims = np.asarray(spec.dims, np.int64)
    N = len(y)
    if N == 0:
        return
    B = int(batch_size)
    n_steps = -(-N // B)
    shapes = spec.layer_shapes()
    layout = np.array([OUTPUT_MAJOR if m < narrow else INPUT_MAJOR for m, _ in shapes],
                      np.int64)
    dtype = state.weights[0].dtype
    per = 64 // np.dtype(dtype).itemsize  # layers start on 64-byte boundaries
    woff = np.zeros(L + 1, np.int64)
    woff[1:] = np.cumsum([-(-m * n // per) * per for m, n in shapes])
    boff = np.zeros(L + 1, np.int64)
    boff[1:] = np.cumsum([m for m, _ in shapes])
    # (reused from call to call: a fresh buffer would page-fault its megabytes in every time)
    w_flat = _scratch(ops, "w_flat", int(woff[-1]), dtype)
    b_flat = np.concatenate([np.asarray(b) for b in state.biases]).astype(dtype, copy=False)
    n_cls = spec.n_classes
    voff = np.zeros(L + 1, np.int64)
    voff[1:] = np.cumsum([n_cls * m for m, _ in shapes])
    # Two threads own the outputs below and above split[k] of every layer for a whole segment
    # (the chunk kernels); one thread runs both parts in turn, same result.
    parallel = threads > 1 and any(lay == INPUT_MAJOR and m >= _MIN_PARALLEL_WIDTH
                                   for lay, (m, _) in zip(layout, shapes))
    split = np.array([two_cores_split(m, lay == INPUT_MAJOR) if parallel else m
                      for lay, (m, _) in zip(layout, shapes)], np.int64)
    if parallel and chooser is None:
        chooser = ops.__dict__.setdefault("_thread_chooser", ThreadChooser())
    yi = np.ascontiguousarray(y, np.int64)
    kc = np.zeros((L, kfu.N_COUNTERS), np.int64)
    act = _activation(ops)
    normalize = rule.input_norm != "off"
    srule = SpelaRule(float(lr), LOSS_CODE[rule.loss], bool(normalize))
    nmax = int(dims.max())
    if ops.fixed:
        xdt = _int_dtype(ops.lo[SAT_ACTIVATION], ops.hi[SAT_ACTIVATION])
        pdt = _int_dtype(ops.lo[SAT_UPDATE], ops.hi[SAT_UPDATE])
        hdt = np.int64
        v_flat = np.concatenate([np.asarray(v, np.int64).ravel() for v in state.vectors])
        vn_flat = np.concatenate([np.asarray(v, np.float64) for v in state.vector_norms])
        keys = stream_keys(state.rounding_seed, L, state.update_step, n_steps)
        fmts = _fixed_formats(ops, L, B)
    else:  # (no formats: the kernels' float32 version)
        xdt = pdt = hdt = np.float32
        v_flat = np.concatenate([np.asarray(v, np.float32).ravel() for v in state.vectors])
        vn_flat = np.ones(L * n_cls)  # (unused: float32 class vectors are unit vectors)
        keys = np.zeros((n_steps, 0), np.uint64)  # (unused: no rounding)
        fmts = None
    X = np.ascontiguousarray(x, xdt)
    net = Network(dims, layout, split, w_flat, woff, b_flat, boff, v_flat, voff, vn_flat, n_cls)
    # shapes and narrowest types of each thread's buffers
    bufs = ChunkBuffers(np.empty((L, 2, B, nmax), xdt), np.empty((L, B, nmax), pdt),
                        np.empty((L, 2, B * nmax), xdt), np.zeros(1, hdt))

    def run(t0, t1, par):
        args = (X[t0 * B:t1 * B], yi[t0 * B:t1 * B], B, net, srule, act, fmts, keys[t0:t1], bufs)
        if par and not ops.__dict__.get("_two_cores_failed", False):
            kc2 = np.zeros((2, L, kfu.N_COUNTERS), np.int64)
            if kch.train_chunk_two_cores(*args, kc2, HANDSHAKE_SPINS):
                kc[...] += kc2.sum(axis=0)
                return
            ops.__dict__["_two_cores_failed"] = True  # the threads never ran together
        kch.train_chunk(*args, kc)
    # Weights stay block-major for the whole chunk: one thread runs the same blocks in turn, so
    # segments may switch modes without re-laying the weights out.
    _lay_out(state.weights, w_flat, woff, layout, split)
    if not parallel:
        run(0, n_steps, False)
    else:
        chooser.run_segments(run, n_steps, B)
    _lay_out(state.weights, w_flat, woff, layout, split, back=True)
    for k in range(L):
        state.biases[k][...] = b_flat[boff[k]:boff[k + 1]]
    _add_counts(counts, rule, shapes, N, n_steps, kc)
    state.update_step += n_steps


def _add_counts(counts, rule, shapes, N, S, kc) -> None:
    """What the chunk executed: SPELA's counting (the per-step path's) with the kernels' counters."""
    from ..rules.spela import count_layer_steps  # the rule's own counting, shared, not re-derived

    for k, shape in enumerate(shapes):
        count_layer_steps(counts, k, shape, rule, N, S, input_nonzeros=int(kc[k, kfu.C_FWD_NNZ]),
                          update_macs_nonzero=int(kc[k, kfu.C_UPD_NNZ]), update_writes=int(kc[k, kfu.C_WRITES]),
                          saturations=int(kc[k, kfu.C_SAT]), zero_norm_events=int(kc[k, kfu.C_ZERO]))
    counts.samples += N
    counts.update_steps += S


_FORWARD_SUB = 64  # samples per sub-batch of the batched forward pass (accumulators in L2)
BATCHED_FORWARD_MIN = 16  # smaller batches use the per-sample kernels (no transpose)


def forward_batch(ops, w, b, x, threads: int = 1):
    """``ops.forward`` of a fixed-point batch of many samples: ``(a, h, sat)``.

    The weights are transposed once to the input-major layout and the batch runs in sub-batches
    with zero skipping (on ``threads`` threads, sub-batches being independent), equal to the
    reference bit for bit.
    """
    nb = x.shape[0]
    m, n = w.shape
    sat = np.zeros(4, np.int64)
    wl = np.ascontiguousarray(w.T)  # input-major for every layer (narrow ones included)
    b = np.ascontiguousarray(b)
    parallel = threads > 1 and nb > _FORWARD_SUB
    act = _activation(ops)
    x = np.ascontiguousarray(x)
    if x.dtype not in (np.int32, np.int64):
        x = x.astype(np.int64)
    a = np.empty((nb, m), np.int64)
    h = np.empty((nb, m), np.int64)
    xmax = _limit(ops.lo[SAT_ACTIVATION], ops.hi[SAT_ACTIVATION])
    kflush = _kflush(_limit(ops.lo[SAT_WEIGHT], ops.hi[SAT_WEIGHT]), xmax)
    if not x.size or int(np.abs(x).max(initial=0)) > xmax:
        kflush = 0  # inputs outside the activation format: int64 lanes only
    # the layer's formats (no update: its fields are not read)
    lay = FixedLayer(ops.lo, ops.hi, ops.wrap, int(ops.f_a), int(ops.shift_acc), 1, 1, NEAREST,
                     np.uint32(0), kflush, True, False)
    fwd = kfw.forward_fixed_parallel if parallel else kfw.forward_fixed
    fwd(wl, b, x, lay, act, _FORWARD_SUB, a, h, sat)
    return a, h, sat
