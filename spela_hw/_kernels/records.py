"""Parameter records of the fused kernels: named tuples that numba passes as one typed argument
(a struct of scalars and arrays; reading a field costs what a separate argument costs).

They replace positional argument lists: a kernel reads ``lay.sh_w`` where it read the 15th
argument. :mod:`spela_hw.backends.numba_fused` builds the per-chunk records once per call; the
chunk workers build the per-layer and per-step ones.
"""

from collections import namedtuple

from . import jit

#: One layer's fixed-point formats and update rounding. ``lo``, ``hi``, ``wrap``: limits and
#: overflow of (accumulator, activation, update, weight) (``SAT_*`` order of
#: :mod:`spela_hw.backends.common`); ``f_a``: fractional bits of the activations (the bias is
#: shifted by them); ``shift_acc``: accumulator -> activation shift; ``sh_w``, ``sh_b``: update
#: sum -> weight / bias shifts; ``mode``, ``srmask``: rounding mode and the SR unit's kept bits;
#: ``kflush``: products summed in int32 lanes before a flush to int64 (0: int64 only); ``fast``:
#: update sums cannot wrap int64; ``fast32``: a single contribution rounds in int32 lanes.
FixedLayer = namedtuple("FixedLayer", "lo hi wrap f_a shift_acc sh_w sh_b mode srmask kflush "
                                      "fast fast32")

#: Every layer's :class:`FixedLayer` fields, by layer (``lo[k]``, ``sh_w[k]``, ...; ``f_a`` and
#: ``mode`` are the same for all layers), plus ``pow2_a`` (2**f_a, input normalisation) and
#: ``pow2_au`` (the update format's scale, loss unit).
FixedFormats = namedtuple("FixedFormats", "lo hi wrap f_a shift_acc sh_w sh_b mode srmask kflush "
                                          "fast fast32 pow2_a pow2_au")

#: The activation function (a :mod:`spela_hw.codes` code) and its parameters: the LeakyReLU
#: ``slope`` (float) and ``slope_q`` (fixed point, 16 fractional bits), tanh's lookup table
#: ``lut`` indexed from ``act_min``, and ``gate_h2`` (1 - h^2 of a fixed-point h).
Activation = namedtuple("Activation", "code slope slope_q lut act_min gate_h2")

#: A batch of one layer's inputs: ``nb`` samples ``x[:nb]``, and in input-major layers their
#: non-zero entries by column (:func:`spela_hw._kernels.sparse.csc_of`: ``ptr``, ``idx``, ``val``).
Inputs = namedtuple("Inputs", "nb x ptr idx val")

#: One thread's scratch for the fixed-point block passes: accumulators ``acc`` (int64) and
#: ``acc32`` (int32 lanes), update sums ``srow``, the SR unit's words ``zbuf`` (a block's) and
#: ``zrow`` (an output-major row pair's), pending terms split for int32 lanes ``phl``.
FixedScratch = namedtuple("FixedScratch", "acc acc32 srow zbuf zrow phl")

#: One thread's scratch for the float32 block passes.
FloatScratch = namedtuple("FloatScratch", "acc srow")


@jit
def layer_of(fmts, k):
    """Layer ``k``'s :class:`FixedLayer` from the per-chunk :class:`FixedFormats`."""
    return FixedLayer(fmts.lo[k], fmts.hi[k], fmts.wrap[k], fmts.f_a, fmts.shift_acc[k],
                      fmts.sh_w[k], fmts.sh_b[k], fmts.mode, fmts.srmask[k], fmts.kflush[k],
                      fmts.fast[k], fmts.fast32[k])


#: The network of a chunk, flat: layer widths ``dims``, per-layer ``layout`` (a
#: :mod:`spela_hw.codes` layout) and ``split`` (first output of thread 1), weights ``w_flat`` at
#: offsets ``woff`` (input-major layers stored block-major at ``split[k]``), biases ``b_flat`` at
#: ``boff``, class vectors ``v_flat`` (``n_cls`` per layer) at ``voff`` and their norms
#: ``vnorm`` (``n_cls`` per layer; fixed point only).
Network = namedtuple("Network", "dims layout split w_flat woff b_flat boff v_flat voff vnorm n_cls")

#: SPELA's options in a chunk: learning rate, loss code, input normalisation (bool).
SpelaRule = namedtuple("SpelaRule", "lr loss normalize")

#: Shapes and types of one thread's layer buffers (copied per thread): inputs by step parity
#: ``xbuf`` (L, 2, B, nmax), pending post-synaptic terms ``pbuf`` (L, B, nmax) and sparse input
#: values ``val`` (L, 2, B * nmax), in the narrowest types that hold the formats; ``h``: one
#: value of the type of the activations ``a``, ``h`` (int64 or float32).
ChunkBuffers = namedtuple("ChunkBuffers", "xbuf pbuf val h")
