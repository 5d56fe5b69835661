"""Counter-based random numbers shared bit for bit by the reference backend and the kernels.

Stochastic rounding needs one random number per weight update. Drawing them from a sequential
generator would tie results to evaluation order; instead every random number is a pure function
of a key (derived from the seed, the layer and the update step) and the index of the synapse.
Any backend, serial or parallel, in any order, gets the same numbers, and a training run can
resume from ``(seed, step)`` alone. Keys and :func:`random_bits` / :func:`uniform01` (used by the
optimisers with state, :mod:`spela_hw.rules.optim`) use the 64-bit ``splitmix64`` finaliser.

Stochastic-rounding unit (SR unit)
    A hardware SR unit has a limited number of random bits: ``sr_bits`` per synapse
    (:attr:`spela_hw.specs.PrecisionSpec.sr_bits`, 1 to ``SR_BITS = 16``). One 32-bit hash word
    feeds ``SR_LANES = 2`` neighbouring *output* neurons of one input, a 16-bit half each. The
    hash is ``lowbias32`` (``x ^= x >> 16; x *= 0x7feb352d; x ^= x >> 15; x *= 0x846ca68b;
    x ^= x >> 16``, a bijection of 32-bit words with good avalanche; 32-bit multiplies vectorise
    with AVX2, splitmix64's 64-bit ones do not). With the layer's 32-bit key
    ``k32 = (key ^ (key >> 32)) mod 2**32``, ``m`` outputs, fan-in ``n`` and ``P = ceil(m / 2)``
    words per input, the weight ``(i, j)`` reads half ``i % 2`` (bits ``16 (i % 2) .. 16 (i % 2)
    + 15``) of ``lowbias32((k32 + j P + i // 2) mod 2**32)``; the bias ``i`` reads the same as a
    weight of a constant input ``j = n`` (word ``n P + i // 2``, half ``i % 2``). The words of
    one input are contiguous and, read as little-endian 16-bit numbers, are the offsets of
    outputs ``0, 1, 2, ...`` in order (a kernel hashes a row of words and reads them as
    ``uint16``). Of each half the unit keeps the top ``b = sr_bits`` bits and sets the bit below
    them: ``r16 = (half & sr_mask16(b)) | (0x8000 >> b)`` (:func:`sr_mask16`,
    :func:`sr_half16`; a kernel does it to the whole word, :func:`sr_mask32`, when it hashes it;
    for ``b = 16`` the set bit falls outside the lane: the full 16-bit half, as always).
    Rounding a sum ``S`` down by ``shift`` bits first truncates ``S`` to ``16`` bits below the
    result's LSB (floor), then adds ``r16`` and drops those 16 bits:
    ``((S >> (shift - 16)) + r16) >> 16``, which equals ``(S + (r16 << (shift - 16))) >> shift``;
    for ``shift < 16``, ``(S + (r16 >> (16 - shift))) >> shift``. What a unit of ``b`` random
    bits computes: ``S`` rounded to the nearest multiple of ``2**-b`` LSB (the set bit is its
    half), then rounded up with probability equal to the ``b`` fraction bits compared with ``b``
    random bits. The random offsets sit at the midpoints ``(k + 1/2) 2**-b`` of ``[0, 1)`` LSB,
    so an increment's expected value is its value within ``2**-(b + 1)`` LSB, and that error
    has no sign of its own: a comparator of the ``b`` truncated bits alone (offsets ``k 2**-b``)
    loses ``2**-(b + 1)`` LSB per update on average, always downwards, which in per-sample
    training drags every weight to the bottom of its range at 6 random bits or fewer
    (bench/RESULTS.md). With ``shift <= b`` the top ``shift`` random bits round ``S`` exactly.
    For a uniformly random key every half is uniform on ``[0, 2**16)`` (the hash is a
    bijection), so the kept bits are uniform.
    Word indices wrap modulo ``2**32`` (layers of more than ``2**33`` synapses would reuse words);
    with a 32-bit key, two steps share a key with probability ``2**-32`` (and the words of two
    steps may overlap shifted), which leaves each synapse's offsets uniform and unbiased.
    The 64-bit ``splitmix64`` draws of :func:`random_bits` (the Adam/optimiser path) are not
    part of the SR unit and stay as they are.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "SR_BITS",
    "SR_LANES",
    "lowbias32",
    "random_bits",
    "splitmix64",
    "sr_bias_offsets",
    "sr_half16",
    "sr_key32",
    "sr_mask16",
    "sr_mask32",
    "sr_offsets",
    "sr_weight_offsets",
    "sr_words_per_input",
    "stream_key",
    "stream_keys",
    "uniform01",
]

SR_BITS = 16  # random bits of one lane (a 16-bit half word): the most the SR unit can use
SR_LANES = 2  # synapses (neighbouring output neurons) fed by one 32-bit hash word

# SplitMix64's constants (Steele, Lea & Flood 2014), shared with the jitted copies of the finaliser
SPLITMIX64_GAMMA = np.uint64(0x9E3779B97F4A7C15)
SPLITMIX64_M1 = np.uint64(0xBF58476D1CE4E5B9)
SPLITMIX64_M2 = np.uint64(0x94D049BB133111EB)
_H1 = np.uint32(0x7FEB352D)
_H2 = np.uint32(0x846CA68B)
_MASK32 = np.uint64(0xFFFFFFFF)


def splitmix64(x: np.ndarray) -> np.ndarray:
    """The SplitMix64 finaliser applied elementwise to uint64 values (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        z = np.asarray(x, dtype=np.uint64) + SPLITMIX64_GAMMA
        z = (z ^ (z >> np.uint64(30))) * SPLITMIX64_M1
        z = (z ^ (z >> np.uint64(27))) * SPLITMIX64_M2
        return z ^ (z >> np.uint64(31))


def lowbias32(x: np.ndarray) -> np.ndarray:
    """The SR unit's 32-bit hash applied elementwise to uint32 values (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        z = np.asarray(x, dtype=np.uint32)
        z = (z ^ (z >> np.uint32(16))) * _H1
        z = (z ^ (z >> np.uint32(15))) * _H2
        return z ^ (z >> np.uint32(16))


_M64 = 0xFFFFFFFFFFFFFFFF
_GAMMA_INT, _M1_INT, _M2_INT = int(SPLITMIX64_GAMMA), int(SPLITMIX64_M1), int(SPLITMIX64_M2)


def _splitmix64_int(x: int) -> int:
    """:func:`splitmix64` of one value in Python integers (the per-step key costs 1 us this way,
    23 us through one-element NumPy arrays)."""
    z = (x + _GAMMA_INT) & _M64
    z = ((z ^ (z >> 30)) * _M1_INT) & _M64
    z = ((z ^ (z >> 27)) * _M2_INT) & _M64
    return z ^ (z >> 31)


def stream_key(seed: int, stream: int, step: int) -> int:
    """Key of the random stream for ``(seed, stream, step)``, e.g. stream = layer index (the
    values of :func:`stream_keys`)."""
    k = _splitmix64_int(int(seed) & _M64)
    k = _splitmix64_int(k ^ (int(stream) & _M64))
    return _splitmix64_int(k ^ (int(step) & _M64))


def stream_keys(seed: int, streams: np.ndarray, step: int) -> np.ndarray:
    """:func:`stream_key` of many streams at once (uint64, the same values)."""
    k = splitmix64(np.array([seed & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64))
    k = splitmix64(k ^ (np.asarray(streams, dtype=np.int64).astype(np.uint64)))
    return splitmix64(k ^ np.uint64(step & 0xFFFFFFFFFFFFFFFF))


def random_bits(key: int, index: np.ndarray, shift: int) -> np.ndarray:
    """Uniform integers in ``[0, 2**shift)`` (1 <= shift <= 63) for each ``index`` under ``key``."""
    with np.errstate(over="ignore"):
        z = splitmix64(np.uint64(key) + np.asarray(index, dtype=np.uint64))
    return (z >> np.uint64(64 - shift)).astype(np.int64)


def uniform01(key: int, index: np.ndarray) -> np.ndarray:
    """Uniform float64 numbers in ``[0, 1)`` for each ``index`` under ``key`` (53 random bits)."""
    with np.errstate(over="ignore"):
        z = splitmix64(np.uint64(key) + np.asarray(index, dtype=np.uint64))
    return (z >> np.uint64(11)).astype(np.float64) * 2.0**-53


def sr_key32(key: int) -> int:
    """The SR unit's 32-bit key of a 64-bit stream key: ``(key ^ (key >> 32)) mod 2**32``."""
    key = int(key) & 0xFFFFFFFFFFFFFFFF
    return (key ^ (key >> 32)) & 0xFFFFFFFF


def sr_mask16(sr_bits: int) -> int:
    """The 16-bit mask that keeps the top ``sr_bits`` bits of a lane (``1 <= sr_bits <= 16``)."""
    if not 1 <= sr_bits <= SR_BITS:
        raise ValueError(f"sr_bits must lie in 1..{SR_BITS}, got {sr_bits}")
    return (0xFFFF << (SR_BITS - sr_bits)) & 0xFFFF


def sr_half16(sr_bits: int) -> int:
    """The bit below the kept ``sr_bits`` of a lane, ``0x8000 >> sr_bits`` (0 for 16): set, it
    puts the unit's offsets at the midpoints of its ``2**sr_bits`` steps."""
    sr_mask16(sr_bits)  # validates
    return 0x8000 >> sr_bits


def sr_mask32(sr_bits: int) -> int:
    """:func:`sr_mask16` in both halves of a 32-bit word (what a kernel ANDs a hash word with;
    the kernel derives :func:`sr_half16`'s bits from it as ``~mask & ~(~mask >> 1)``)."""
    m = sr_mask16(sr_bits)
    return m | (m << 16)


def sr_offsets(key: int, word: np.ndarray, half: np.ndarray, shift: int,
               sr_bits: int = SR_BITS) -> np.ndarray:
    """The SR unit's rounding offsets ``r`` in ``[0, 2**shift)`` (``(S + r) >> shift`` rounds).

    ``r16`` is half ``half`` (16 bits) of ``lowbias32((sr_key32(key) + word) mod 2**32)`` with
    its top ``sr_bits`` bits kept and the bit below them set (:func:`sr_half16`);
    ``r = r16 << (shift - 16)`` (``shift >= 16``) or ``r16 >> (16 - shift)``; int64,
    ``1 <= shift <= 62``.
    """
    w = (np.uint64(sr_key32(key)) + np.asarray(word, dtype=np.uint64)) & _MASK32
    z = lowbias32(w.astype(np.uint32)).astype(np.uint64)
    r16 = (z >> (np.uint64(SR_BITS) * np.asarray(half, dtype=np.uint64))) & np.uint64(sr_mask16(sr_bits))
    r16 = r16 | np.uint64(sr_half16(sr_bits))
    r16 = r16.astype(np.int64)
    if shift >= SR_BITS:
        return r16 << np.int64(shift - SR_BITS)
    return r16 >> np.int64(SR_BITS - shift)


def sr_words_per_input(m: int) -> int:
    """``P = ceil(m / 2)``: the SR unit's words per input of a layer with ``m`` outputs."""
    return -(-m // SR_LANES)


def sr_weight_offsets(key: int, m: int, n: int, shift: int, sr_bits: int = SR_BITS) -> np.ndarray:
    """``(m, n)`` offsets of the weights of a layer with ``m`` outputs and fan-in ``n``."""
    i = np.arange(m, dtype=np.uint64)[:, None]
    j = np.arange(n, dtype=np.uint64)[None, :]
    P = np.uint64(sr_words_per_input(m))
    return sr_offsets(key, j * P + i // np.uint64(SR_LANES),
                      np.broadcast_to(i % np.uint64(SR_LANES), (m, n)), shift, sr_bits)


def sr_bias_offsets(key: int, m: int, n: int, shift: int, sr_bits: int = SR_BITS) -> np.ndarray:
    """``(m,)`` offsets of the biases of the same layer (the words of a constant input ``n``)."""
    i = np.arange(m, dtype=np.uint64)
    base = np.uint64(n) * np.uint64(sr_words_per_input(m))
    return sr_offsets(key, base + i // np.uint64(SR_LANES), i % np.uint64(SR_LANES), shift, sr_bits)
