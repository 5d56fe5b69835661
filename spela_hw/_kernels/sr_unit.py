"""The stochastic-rounding (SR) unit's random words, drawn in vector loops.

Output ``i`` of input ``j`` rounds with half ``i % 2`` (16 bits) of the 32-bit word
``lowbias32(k32 + j ceil(m / 2) + i // 2)`` (:mod:`spela_hw.rng`): two neighbouring outputs share
a word. An input-major row draws half as many contiguous words and reads them as ``uint16`` in
output order; an output-major row (or a row-major one) reads one half of words ``ceil(m / 2)``
apart. ``PrecisionSpec.sr_bits`` is applied to each word as it is hashed (:func:`sr_words`), so
the rounding loops of :mod:`spela_hw._kernels.rounding_lanes` are the same for every width.
"""


import numpy as np

from ..codes import NEAREST
from . import jit
from .fixed import lowbias32

@jit
def sr_words(z32, nw, base, stride, srmask):
    """z32[g] = lowbias32(base + g * stride) (mod 2**32), g < nw, as the SR unit rounds with it:
    the random bits it keeps (``srmask``, :func:`spela_hw.rng.sr_mask32`: the top ``sr_bits`` of
    each half) and the bit below them set (:func:`spela_hw._kernels.fixed.sr_word`); an AND and
    an OR here, so that the rounding loops are the same for every ``sr_bits``.
    An input's words are contiguous (``stride`` 1), one output's words along its inputs are
    ``P`` apart. ``z32.view(np.uint16)[i]`` is then half ``i % 2`` of word ``i // 2``: the offset
    of output ``i`` of an input-major row. A separate loop: the compiler vectorises it alone (8
    lanes)."""
    c = np.uint32(base)
    st = np.uint32(stride)
    mk = np.uint32(srmask)
    inv = np.uint32(~mk)
    hb = np.uint32(inv & np.uint32(~np.uint32(inv >> np.uint32(1))))
    for g in range(nw):  # a 32-bit counter: ``base + g * stride`` would be formed in 64 bits
        z32[g] = np.uint32((lowbias32(c) & mk) | hb)
        c = np.uint32(c + st)


@jit
def sr_half_extract(r16, z32, w, half):
    """r16[j] = half ``half`` of the word z32[j], j < w (the two outputs of a word share it:
    hashed once, read twice)."""
    sl = np.uint32(16 * half)
    for j in range(w):
        r16[j] = np.uint16((z32[j] >> sl) & np.uint32(0xFFFF))


@jit
def sr_const_fill(r16, w, mode):
    """The 16-bit rounding offsets of the deterministic modes: half (nearest) or 0 (truncate)."""
    c = np.uint16(0x8000) if mode == NEAREST else np.uint16(0)
    for i in range(w):
        r16[i] = c
