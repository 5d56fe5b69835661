"""Two threads in one numba parallel region: a bounded handshake, a spin barrier, and the split
of every layer between them that the chunk trainer (:mod:`~spela_hw._kernels.chunk`) uses.

The threads synchronise through atomic loads, stores and a compare-and-swap on an ``int64``
array (LLVM atomics; numba has none on the CPU). Before their main loop they shake hands with a
bounded wait (:func:`meet`): if the two ``prange`` iterations are not running at the same time
(one thread, or a threading layer that may run both on one worker), both give up and the caller
falls back to one thread instead of waiting forever. Then they meet at :func:`barrier`.
"""

import numpy as np
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from . import jit

HANDSHAKE_SPINS = 200_000_000  # atomic loads (about a second) before giving up on the partner
_STATE, _PHASE0 = 0, 8  # sync[0]: handshake; sync[8 + 8 t]: thread t's barrier phase (own line)


@jit
def new_sync():
    """The shared state of one meeting (zeroed; each thread's phase on its own cache line)."""
    return np.zeros(_PHASE0 + 16, np.int64)


def _item_ptr(context, builder, aryty, ary, i):
    return cgutils.get_item_pointer(context, builder, aryty, context.make_array(aryty)(context, builder, ary), [i])


@intrinsic
def _load_acquire(typingctx, arr, i):
    if arr != types.Array(types.int64, 1, "C") or not isinstance(i, types.Integer):
        return None

    def codegen(context, builder, sig, args):
        ptr = _item_ptr(context, builder, sig.args[0], args[0], context.cast(builder, args[1], sig.args[1], types.intp))
        return builder.load_atomic(ptr, "acquire", 8)

    return types.int64(arr, i), codegen


@intrinsic
def _store_release(typingctx, arr, i, v):
    if arr != types.Array(types.int64, 1, "C") or not isinstance(i, types.Integer) or v != types.int64:
        return None

    def codegen(context, builder, sig, args):
        ptr = _item_ptr(context, builder, sig.args[0], args[0], context.cast(builder, args[1], sig.args[1], types.intp))
        builder.store_atomic(args[2], ptr, "release", 8)
        return context.get_dummy_value()

    return types.void(arr, i, v), codegen


@intrinsic
def _compare_swap(typingctx, arr, i, expected, new):
    """``arr[i] = new`` if ``arr[i] == expected``, atomically; returns the old value."""
    if arr != types.Array(types.int64, 1, "C") or not isinstance(i, types.Integer) \
            or expected != types.int64 or new != types.int64:
        return None

    def codegen(context, builder, sig, args):
        ptr = _item_ptr(context, builder, sig.args[0], args[0], context.cast(builder, args[1], sig.args[1], types.intp))
        res = builder.cmpxchg(ptr, args[2], args[3], "seq_cst", "seq_cst")
        return builder.extract_value(res, 0)

    return types.int64(arr, i, expected, new), codegen


@jit
def meet(sync, tid, spins):
    """True when both threads arrived (they run concurrently); False when one gave up first.

    ``sync[0]``: 0 nobody, ``t + 1`` thread ``t`` waits, 3 both met, -1 abandoned.
    """
    me = np.int64(tid + 1)
    old = _compare_swap(sync, _STATE, np.int64(0), me)
    if old == 0:  # first: wait for the partner, then abandon unless it arrived meanwhile
        for _ in range(spins):
            if _load_acquire(sync, _STATE) == 3:
                return True
        return _compare_swap(sync, _STATE, me, np.int64(-1)) != me
    if old == 2 - tid:  # the partner waits: complete the meeting unless it has just given up
        return _compare_swap(sync, _STATE, old, np.int64(3)) == old
    return False


@jit
def barrier(sync, tid, phase):
    """Wait until the partner has also reached ``phase`` (phases count up from 1)."""
    _store_release(sync, _PHASE0 + 8 * tid, np.int64(phase))
    other = _PHASE0 + 8 * (1 - tid)
    while _load_acquire(sync, other) < phase:
        pass


# ----------------------------------------------------------------------------------------------
# the split of a layer's outputs at ``split_k`` (thread 0 below, thread 1 above)
# ----------------------------------------------------------------------------------------------
@jit
def own_outputs(tid, nthreads, split_k, m):
    """Thread ``tid``'s outputs ``[i0, i1)`` of an ``m``-output layer (one thread: all)."""
    if nthreads == 1:
        return 0, m
    return (0, split_k) if tid == 0 else (split_k, m)


@jit
def stored_block(i0, i1, split_k, half):
    """Part ``half`` (0, 1) of outputs ``[i0, i1)`` that lies in one stored block of a layer kept
    block-major at ``split_k`` (empty when ``c1 <= c0``)."""
    if half == 0:
        return i0, min(i1, split_k)
    return max(i0, split_k), i1


@jit
def load_inputs(xin, nb, n, X, s0, k, h_buf, hb, par, nthreads):
    """Layer ``k``'s inputs of ``nb`` samples into ``xin``: rows ``s0..`` of ``X`` for the first
    layer, else the previous layer's ``h`` (still in ``h_buf`` on one thread; on two, the halves
    both published in ``hb``)."""
    for s in range(nb):
        if k == 0:
            xs = X[s0 + s]
            for j in range(n):
                xin[s, j] = xs[j]
        else:
            src = h_buf[s] if nthreads == 1 else hb[2 * (k - 1) + par, s]
            for j in range(n):
                xin[s, j] = src[j]


@jit
def publish(h_buf, hb, k, par, nb, i0, i1, nthreads, sync, tid, phase):
    """Layer ``k``'s whole ``h`` of this step, once the partner has published its half next to
    ours (``hb`` is double-buffered by step parity ``par``); returns it and the barrier phase."""
    if nthreads == 1:
        return h_buf, phase
    hk = hb[2 * k + par]
    for s in range(nb):
        for i in range(i0, i1):
            hk[s, i] = h_buf[s, i]
    barrier(sync, tid, phase + 1)
    return hk, phase + 1

