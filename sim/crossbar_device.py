"""A functional crossbar device model that takes part in training (implements ``DeviceModel``).

Each weight is one analog cell (or an offset-mapped cell with a reference column at mid
conductance) whose normalised conductance ``g`` in ``[0, 1]`` maps to
``w = weight_range * (2 g - 1)``. The model covers:

* **conductance levels**: ``levels - 1`` nominal pulses span the range; programming snaps to the
  nearest of ``levels`` evenly spaced states;
* **non-linear, asymmetric updates** (NeuroSim; Chen, Peng, Yu, TCAD 2018)::

      g_LTP(p) = B_p (1 - exp(-p / A_p)),           B_p = 1 / (1 - exp(-P / A_p))
      g_LTD(p) = 1 - B_d (1 - exp((p - P) / A_d)),  B_d = 1 / (1 - exp(-P / A_d))

  with ``P = levels - 1`` and ``A = P / nonlinearity`` (``nonlinearity = 0``: linear). A
  potentiating pulse moves the state one step along the LTP curve from where it is, a depressing
  pulse one step back along the LTD curve, so steps shrink near the bound they approach;
* **update quantisation**: a requested ``dw`` becomes ``floor(dw / dw_min + u)`` pulses
  (stochastic rounding, ``dw_min = 2 weight_range / P``), clipped to ``max_pulses`` per update
  (aihwkit's ``desired_bl = 31``);
* **device-to-device variation** of the step size (log-normal factor per cell,
  ``d2d_sigma``) and **cycle-to-cycle** noise per pulse (``c2c_sigma`` steps, summed over the
  pulses of one update);
* **stuck-at faults**: cells stuck at HRS (``g = 0``) or LRS (``g = 1``) at the given rates;
  they ignore programming and updates;
* **read noise** (optional, ``read_noise_sigma`` in units of ``weight_range``);
* **write counting** per cell (pulses and write events) against the endurance, with a lifetime
  estimate (:meth:`CrossbarDevice.lifetime`);
* **input DAC / bit-serial inputs and ADC quantisation of tile partial sums**
  (:class:`ConverterConfig`, the ``mvm`` hook of :class:`spela_hw.device.MatVecDeviceModel`),
  described below.

Biases stay in the digital periphery: they are returned exactly (``b + db``) and added after
the conversions.

Matrix-vector products through the converters
---------------------------------------------
:meth:`CrossbarDevice.mvm` computes a layer's pre-activation ``a = x W^T + b`` the way a crossbar
with the preset's periphery does (NeuroSim's organisation: inputs drive the rows, each array of
``rows_per_tile`` rows produces one analog partial sum per column, an ADC converts it, digital
shift-add combines the conversions):

1. **Inputs.** Each input vector is scaled by its input range ``x_max`` (``input_range``, or the
   vector's largest ``|x|`` when ``None``) and rounded to ``L = 2**input_bits - 1`` integer levels
   ``q = round(|x| / x_max * L)``. ``input_encoding = "bit_serial"`` (NeuroSim, no DAC) applies
   the ``input_bits`` bit-planes of ``q`` one per cycle as 0/1 row voltages; ``"dac"`` applies
   ``q / L`` as one analog voltage. Negative inputs (LeakyReLU's small negative side, tanh) are
   driven in a second pass of opposite polarity (``x = x+ - x-``), which doubles the
   conversions of that product.
2. **Partial sums.** The rows are cut into tiles of ``rows_per_tile`` (the preset's array rows,
   or its ``rows_read_at_once`` for a partial parallel read). For every tile, input plane and
   column the array produces ``S = sum_i u_i w_i`` (``u`` the plane's 0/1 bits or DAC levels in
   ``[0, 1]``).
3. **ADC** (convention ``signed partial sum``: the reference column of the offset mapping, or
   the second column of a differential pair, is subtracted in the analog domain, so the ADC sees
   the signed ``S``). A symmetric mid-tread converter of ``adc_bits`` has ``N = 2**(adc_bits-1)
   - 1`` levels on each side of an exact zero (``2**adc_bits - 1`` codes; one code unused) and
   step ``F / N``; it rounds to the nearest level (ties to even) and clips at ``+-F``. The full
   scale ``F`` is ``adc_range_fraction`` times

   * ``adc_range = "dynamic"`` (default): the largest ``|S|`` of that input vector's product
     (all tiles, planes and columns): an ideally calibrated ADC. It is a per-vector, symmetric
     variant of the per-tensor min-max range of DNN+NeuroSim's Python wrapper
     (``LinearQuantizeOut``); per vector, so results do not depend on how samples are batched;
   * ``adc_range = "full_scale"``: the largest possible ``|S|``, ``rows_per_tile * r`` (every
     input at 1, every weight at the range limit ``r``); never clips, coarse for sparse inputs.
4. **Recombination.** ``a = x_max * sum_planes c_p sum_tiles Q(S) + b`` with ``c_p = 2**p / L``
   (bit-serial, minus for the negative pass) or ``1`` (DAC).

The products run in a numba kernel that handles one sample at a time in a fixed order and skips
zero inputs (and zero bits of bit-serial inputs), so a batch gives the same products as its
samples one by one. With many bits (``input_bits = adc_bits = 16``) the product equals
``x W^T + b`` to about ``1e-4`` relative; with few ADC bits it visibly does not. Not modelled: weight bit slicing over
several cells (each weight is one analog cell of ``levels`` states, as in NeuroSim's training
mode), ADC non-linearity and noise, IR drop.

Backprop's error path reads the same arrays transposed (:meth:`CrossbarDevice.mvm_transposed`,
``p W``): the error terms ``p`` drive the columns with the same input encoding, each tile of
``cols_per_tile`` columns gives one partial sum per row, converted by the error-path ADC of
``error_adc_bits`` (NeuroSim ``levelOutputAG = 64``: 6 bits) with the same range convention.
The energy model (:mod:`sim.energy`) prices the conversions from closed-form counts; this model
only decides what the network sees.

The update's hot loop (one pass over every cell per update) is a numba kernel whose random numbers are
counter-based (SplitMix64 of a key derived from ``(seed, layer, update)`` and the cell index, as
in :mod:`spela_hw.rng`); faults and device-to-device factors come from a generator seeded with
``seed``, so runs are reproducible.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

import numpy as np

from spela_hw._kernels import jit
from spela_hw.errors import ConfigError
from spela_hw.rng import SPLITMIX64_GAMMA, SPLITMIX64_M1, SPLITMIX64_M2, stream_key

from .config import INPUT_ENCODINGS, DeviceConfig, HardwareConfig

__all__ = ["ADC_RANGES", "ConverterConfig", "CrossbarDevice", "LifetimeResult"]

ADC_RANGES = ("dynamic", "full_scale")


@jit
def _ltp(p, P, A, B):
    if A <= 0.0:
        return p / P
    return B * (1.0 - math.exp(-p / A))


@jit
def _ltp_inv(g, P, A, B):
    if A <= 0.0:
        return g * P
    x = 1.0 - g / B
    if x <= 1e-300:
        return P
    return -A * math.log(x)


@jit
def _ltd(p, P, A, B):
    if A <= 0.0:
        return p / P
    return 1.0 - B * (1.0 - math.exp((p - P) / A))


@jit
def _ltd_inv(g, P, A, B):
    if A <= 0.0:
        return g * P
    x = 1.0 - (1.0 - g) / B
    if x <= 1e-300:
        return 0.0
    return P + A * math.log(x)


@jit
def _uniform(key, index):
    """``spela_hw.rng.uniform01``: SplitMix64 of ``key + index`` -> [0, 1) with 53 bits."""
    z = key + np.uint64(index) + SPLITMIX64_GAMMA
    z = (z ^ (z >> np.uint64(30))) * SPLITMIX64_M1
    z = (z ^ (z >> np.uint64(27))) * SPLITMIX64_M2
    z = z ^ (z >> np.uint64(31))
    return float(z >> np.uint64(11)) * 2.0**-53


@jit
def _apply_update(g, stuck, step_scale, requested, key, P, A_p, B_p, A_d, B_d, c2c, max_pulses,
                  pulse_counts, write_counts):
    """Move every cell by its stochastically rounded pulse count; returns pulses applied.

    ``requested`` holds the real-valued pulse counts ``dw / dw_min``. Random numbers are a pure
    function of ``key`` and the cell index (counter-based, as in :mod:`spela_hw.rng`): cell ``i``
    uses indices ``3i`` (rounding) and ``3i + 1``, ``3i + 2`` (Box-Muller c2c noise).
    """
    total = 0
    flat_g = g.ravel()
    flat_s = stuck.ravel()
    flat_f = step_scale.ravel()
    flat_r = requested.ravel()
    flat_pc = pulse_counts.ravel()
    flat_wc = write_counts.ravel()
    for i in range(flat_g.size):
        r = flat_r[i]
        if r == 0.0 or flat_s[i] != 0:
            continue
        k = math.floor(r + _uniform(key, 3 * i))
        if k > max_pulses:
            k = max_pulses
        elif k < -max_pulses:
            k = -max_pulses
        if k == 0:
            continue
        gi = flat_g[i]
        dp = abs(k) * flat_f[i]
        if k > 0:
            p = _ltp_inv(gi, P, A_p, B_p) + dp
            if p > P:
                p = P
            gn = _ltp(p, P, A_p, B_p)
        else:
            p = _ltd_inv(gi, P, A_d, B_d) - dp
            if p < 0.0:
                p = 0.0
            gn = _ltd(p, P, A_d, B_d)
        if c2c > 0.0:
            u1 = 1.0 - _uniform(key, 3 * i + 1)  # (0, 1]
            u2 = _uniform(key, 3 * i + 2)
            normal = math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)
            gn += c2c / P * math.sqrt(abs(k)) * normal
        if gn < 0.0:
            gn = 0.0
        elif gn > 1.0:
            gn = 1.0
        flat_g[i] = gn
        flat_pc[i] += abs(k)
        flat_wc[i] += 1
        total += abs(k)
    return total


@jit
def _converted_mvm(q, wT, x_max, planes, levels, rows, n_side, dynamic, fraction, full_scale, out):
    """``x W^T`` through input levels, tile partial sums and a signed mid-tread ADC, per sample.

    ``q`` ``(B, n)`` are signed integer input levels (``|q| <= levels``); ``planes`` is the
    number of bit-planes (bit-serial) or 0 for DAC inputs (one analog plane ``q / levels``).
    Each sample is computed alone, in a fixed order, skipping rows whose input is zero, so the
    result does not depend on the batch it came in. ``out`` ``(B, m)`` receives the products.
    """
    nb, n = q.shape
    m = wT.shape[1]
    n_tiles = (n + rows - 1) // rows
    n_planes = planes if planes > 0 else 1
    sums = np.zeros((2, n_planes, n_tiles, m))  # (polarity, plane, tile, column)
    for b in range(nb):
        sums[:] = 0.0
        for i in range(n):
            qi = q[b, i]
            if qi == 0:
                continue
            pol = 0 if qi > 0 else 1
            mag = qi if qi > 0 else -qi
            t = i // rows
            for p in range(n_planes):
                if planes > 0:
                    if (mag >> p) & 1 == 0:
                        continue
                    u = 1.0
                else:
                    u = mag / levels
                row = sums[pol, p, t]
                for j in range(m):
                    row[j] += u * wT[i, j]
        full = full_scale
        if dynamic:
            full = 0.0
            for v in sums.ravel():
                if abs(v) > full:
                    full = abs(v)
            full *= fraction
        if full == 0.0:
            continue
        lsb = full / n_side
        for pol in range(2):
            sign = 1.0 if pol == 0 else -1.0
            for p in range(n_planes):
                c = sign * (2.0**p / levels if planes > 0 else 1.0) * x_max[b] * lsb
                for t in range(n_tiles):
                    for j in range(m):
                        code = np.rint(sums[pol, p, t, j] / lsb)
                        if code > n_side:
                            code = n_side
                        elif code < -n_side:
                            code = -n_side
                        out[b, j] += c * code


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


@dataclass(frozen=True)
class ConverterConfig:
    """Input encoding and ADC of the functional matrix-vector product (see the module docstring).

    Attributes
    ----------
    input_encoding : {"bit_serial", "dac"}
        One input bit-plane per cycle with no DAC (NeuroSim), or one analog DAC level per input.
    input_bits : int
        Bit-planes (bit-serial) or DAC resolution: inputs take ``2**input_bits - 1`` levels above 0.
    adc_bits : int
        ADC resolution (2 to 16; a signed mid-tread converter needs at least 3 levels).
    rows_per_tile : int
        Rows whose currents one conversion sums (array rows, or rows read at once).
    adc_range : {"dynamic", "full_scale"}
        How the ADC full scale is set (named convention, printed with results).
    adc_range_fraction : float
        Multiplies the full scale, in ``(0, 1]``; below 1 trades clipping for a finer step.
    input_range : float or None
        Fixed input full scale ``x_max`` (inputs above it clip); ``None``: per input vector.
    error_adc_bits : int or None
        ADC of the transposed read (backprop's error path); ``None``: exact error products.
    cols_per_tile : int
        Columns whose currents one transposed conversion sums (array columns).
    """

    input_encoding: str = "bit_serial"
    input_bits: int = 8
    adc_bits: int = 5
    rows_per_tile: int = 128
    adc_range: str = "dynamic"
    adc_range_fraction: float = 1.0
    input_range: float | None = None
    error_adc_bits: int | None = 6
    cols_per_tile: int = 128

    def __post_init__(self):
        if self.input_encoding not in INPUT_ENCODINGS:
            raise ConfigError("input_encoding", f"must be one of {INPUT_ENCODINGS}, got {self.input_encoding!r}")
        if not _is_int(self.input_bits) or not 1 <= self.input_bits <= 16:
            raise ConfigError("input_bits", f"must be an integer in [1, 16], got {self.input_bits!r}")
        if not _is_int(self.adc_bits) or not 2 <= self.adc_bits <= 16:
            raise ConfigError("adc_bits", f"must be an integer in [2, 16] (a signed mid-tread ADC needs "
                                          f"3 levels), got {self.adc_bits!r}")
        e = self.error_adc_bits
        if e is not None and (not _is_int(e) or not 2 <= e <= 16):
            raise ConfigError("error_adc_bits", f"must be None or an integer in [2, 16], got {e!r}")
        for name in ("rows_per_tile", "cols_per_tile"):
            v = getattr(self, name)
            if not _is_int(v) or v < 1:
                raise ConfigError(name, f"must be a positive integer, got {v!r}")
        if self.adc_range not in ADC_RANGES:
            raise ConfigError("adc_range", f"must be one of {ADC_RANGES}, got {self.adc_range!r}")
        f = self.adc_range_fraction
        if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0 < f <= 1:
            raise ConfigError("adc_range_fraction", f"must be in (0, 1], got {f!r}")
        r = self.input_range
        if r is not None and (isinstance(r, bool) or not isinstance(r, (int, float))
                              or not (r > 0 and math.isfinite(r))):
            raise ConfigError("input_range", f"must be None or a positive number, got {r!r}")

    @classmethod
    def from_hardware(cls, hardware: HardwareConfig, **overrides) -> "ConverterConfig":
        """The converters of a preset: its input encoding and DAC bits, forward and error-path ADC
        bits, the rows one conversion sums (array rows, or ``rows_read_at_once``) and the array
        columns. Bit-serial inputs take
        8 bit-planes (NeuroSim's 8-bit activations) unless ``input_bits`` is given."""
        if hardware.crossbar is None or hardware.periphery is None:
            raise ConfigError("device", f"{hardware.name} has no crossbar periphery")
        per = hardware.periphery
        base = dict(input_encoding=per.input_encoding,
                    input_bits=per.dac_bits if per.input_encoding == "dac" else 8,
                    adc_bits=per.adc_bits, rows_per_tile=hardware.crossbar.parallel_rows,
                    error_adc_bits=per.adc_bits_error, cols_per_tile=hardware.crossbar.cols)
        return cls(**{**base, **overrides})

    def describe(self) -> str:
        """One line naming the conventions in force (for reports)."""
        rng = self.adc_range + ("" if self.adc_range_fraction == 1 else f" x {self.adc_range_fraction:g}")
        xr = "per vector" if self.input_range is None else f"{self.input_range:g}"
        err = ("exact" if self.error_adc_bits is None
               else f"{self.error_adc_bits} bit per {self.cols_per_tile}-column tile")
        return (f"inputs {self.input_encoding} {self.input_bits} bit (range {xr}); ADC {self.adc_bits} bit, "
                f"signed partial sum per {self.rows_per_tile}-row tile, mid-tread, range {rng}; "
                f"error-path ADC {err}")


@dataclass(frozen=True)
class LifetimeResult:
    """Write statistics of one device model and the lifetime they imply.

    Attributes
    ----------
    samples_seen : int
    max_writes_per_cell, mean_writes_per_cell : float
        Write events (updates that moved the cell); ``max_pulses_per_cell`` counts pulses.
    writes_per_cell_per_sample : float
        Of the most-written cell.
    endurance_cycles : float or None
    samples_per_day : float
    days : float or None
        ``endurance / (writes_per_cell_per_sample * samples_per_day)``; ``inf`` without writes.
    """

    samples_seen: int
    max_writes_per_cell: float
    mean_writes_per_cell: float
    max_pulses_per_cell: float
    writes_per_cell_per_sample: float
    endurance_cycles: float | None
    samples_per_day: float
    days: float | None


class CrossbarDevice:
    """Functional crossbar model called by the ``spela_hw`` training loop.

    Parameters
    ----------
    device : DeviceConfig, HardwareConfig or preset name
        Cell parameters (``levels``, non-linearities, variation, stuck-at rates, endurance).
    weight_range : float or sequence of float
        Weights of layer ``k`` map to ``[-r_k, r_k]`` (one range for all layers, or one per layer).
    seed : int
        Seeds faults, device-to-device factors and every random draw.
    max_pulses : int
        Pulses per cell per update at most.
    read_noise_sigma : float
        Gaussian read noise per read, in units of ``weight_range``.
    converters : "preset", ConverterConfig or None
        The input encoding and ADC of :meth:`mvm`. ``"preset"`` (default) takes them from the
        hardware preset (:meth:`ConverterConfig.from_hardware`); given a bare ``DeviceConfig``
        it means ideal converters unless a converter field is overridden. ``None``: ideal
        converters (exact products).
    **overrides
        Any :class:`ConverterConfig` field (``adc_bits=4``, ``adc_range="full_scale"``, ...) or
        :class:`~sim.config.DeviceConfig` field (``levels=64``, ``d2d_sigma=0.3``, ...).
    """

    def __init__(self, device="rram-22nm", weight_range: float = 1.0, seed: int = 0, max_pulses: int = 31,
                 read_noise_sigma: float = 0.0, converters="preset", **overrides):
        conv_keys = {f.name for f in fields(ConverterConfig)}
        conv_over = {k: overrides.pop(k) for k in list(overrides) if k in conv_keys}
        if isinstance(device, str):
            from .presets import load_preset

            device = load_preset(device)
        hardware = None
        if isinstance(device, HardwareConfig):
            if device.crossbar is None:
                raise ConfigError("device", f"{device.name} has no crossbar")
            hardware = device
            device = device.crossbar.device
        if isinstance(converters, str) and converters == "preset":
            if hardware is not None:
                converters = ConverterConfig.from_hardware(hardware, **conv_over)
            else:
                converters = ConverterConfig(**conv_over) if conv_over else None
        elif isinstance(converters, ConverterConfig):
            converters = replace(converters, **conv_over) if conv_over else converters
        elif converters is None:
            if conv_over:
                raise ConfigError("converters", f"ideal converters (None) take no converter fields, "
                                                f"got {sorted(conv_over)}")
        else:
            raise ConfigError("converters", f"must be 'preset', a ConverterConfig or None, got {converters!r}")
        self.converters: ConverterConfig | None = converters
        if not isinstance(device, DeviceConfig):
            raise ConfigError("device", f"must be a DeviceConfig, HardwareConfig or preset name, got {device!r}")
        try:
            device = replace(device, **overrides)
        except TypeError as exc:
            raise ConfigError("device", str(exc)) from None
        if device.kind == "sram":
            raise ConfigError("device.kind", "an SRAM cell has no analog update physics; use an eNVM device")
        ranges = (weight_range,) if isinstance(weight_range, (int, float)) else tuple(weight_range)
        for r in ranges:
            if isinstance(r, bool) or not isinstance(r, (int, float)) or not (r > 0 and math.isfinite(r)):
                raise ConfigError("weight_range", f"must be positive numbers, got {weight_range!r}")
        if isinstance(max_pulses, bool) or not isinstance(max_pulses, int) or max_pulses < 1:
            raise ConfigError("max_pulses", f"must be a positive integer, got {max_pulses!r}")
        if not (isinstance(read_noise_sigma, (int, float)) and read_noise_sigma >= 0):
            raise ConfigError("read_noise_sigma", f"must be >= 0, got {read_noise_sigma!r}")
        self.device = device
        self.weight_ranges = tuple(float(r) for r in ranges)
        self.max_pulses = int(max_pulses)
        self.read_noise_sigma = float(read_noise_sigma)
        self.seed = int(seed)
        self._rng = np.random.default_rng([self.seed & 0xFFFFFFFF, 0xDE71CE])
        P = float(device.levels - 1)
        self._P = P
        self._A_p, self._B_p = self._shape(device.nonlinearity_ltp)
        self._A_d, self._B_d = self._shape(device.nonlinearity_ltd)
        self.g: dict[int, np.ndarray] = {}
        self.stuck: dict[int, np.ndarray] = {}
        self.step_scale: dict[int, np.ndarray] = {}
        self.pulse_counts: dict[int, np.ndarray] = {}
        self.write_counts: dict[int, np.ndarray] = {}
        self.update_calls = 0
        self._steps: dict[int, int] = {}  # update calls per layer: the key of its random stream

    def _shape(self, nu: float) -> tuple[float, float]:
        if nu <= 0:
            return 0.0, 1.0
        A = self._P / nu
        return A, 1.0 / (1.0 - math.exp(-self._P / A))

    def weight_range(self, layer: int = 0) -> float:
        """The weight range ``r`` of ``layer`` (weights live in ``[-r, r]``)."""
        if len(self.weight_ranges) == 1:
            return self.weight_ranges[0]
        if not 0 <= layer < len(self.weight_ranges):
            raise ConfigError("weight_range", f"no range given for layer {layer}")
        return self.weight_ranges[layer]

    def dw_min(self, layer: int = 0) -> float:
        """Nominal weight change of one pulse (linear device) in ``layer``."""
        return 2.0 * self.weight_range(layer) / self._P

    # -- mapping -------------------------------------------------------------------------------

    def weights_of(self, layer: int) -> np.ndarray:
        """The weights the cells of ``layer`` hold now (float64, no read noise)."""
        return self.weight_range(layer) * (2.0 * self.g[layer] - 1.0)

    def _to_g(self, w: np.ndarray, layer: int) -> np.ndarray:
        return np.clip((np.asarray(w, np.float64) / self.weight_range(layer) + 1.0) * 0.5, 0.0, 1.0)

    def _check(self, layer: int, w) -> None:
        if layer not in self.g:
            raise ConfigError("layer", f"layer {layer} was never programmed")
        if np.shape(w) != self.g[layer].shape:
            raise ConfigError("w", f"shape {np.shape(w)} does not match layer {layer} {self.g[layer].shape}")

    # -- DeviceModel protocol ------------------------------------------------------------------

    def program(self, layer: int, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Write initial weights: snap to the nearest level, add programming noise, apply faults."""
        dev = self.device
        shape = np.shape(w)
        rng = self._rng
        u = rng.random(shape)
        stuck = np.zeros(shape, np.int8)
        stuck[u < dev.stuck_at_hrs_rate] = 1
        stuck[(u >= dev.stuck_at_hrs_rate) & (u < dev.stuck_at_hrs_rate + dev.stuck_at_lrs_rate)] = 2
        scale = np.exp(dev.d2d_sigma * rng.standard_normal(shape)) if dev.d2d_sigma else np.ones(shape)
        g = np.round(self._to_g(w, layer) * self._P) / self._P
        if dev.c2c_sigma:
            g = np.clip(g + dev.c2c_sigma / self._P * rng.standard_normal(shape), 0.0, 1.0)
        g[stuck == 1] = 0.0
        g[stuck == 2] = 1.0
        self.g[layer] = np.ascontiguousarray(g)
        self.stuck[layer] = stuck
        self.step_scale[layer] = np.ascontiguousarray(scale)
        self.pulse_counts[layer] = np.zeros(shape, np.int64)
        self.write_counts[layer] = np.zeros(shape, np.int64)
        return self.weights_of(layer).astype(np.float32), np.asarray(b, np.float32).copy()

    def read(self, layer: int, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The weights a forward pass sees: the cells' state plus optional read noise."""
        self._check(layer, w)
        eff = self.weights_of(layer)
        if self.read_noise_sigma:
            eff = eff + self.read_noise_sigma * self.weight_range(layer) * self._rng.standard_normal(eff.shape)
        return eff.astype(np.float32), np.asarray(b, np.float32)

    def mvm(self, layer: int, x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Pre-activation ``x W^T + b`` ``(B, fan_out)`` through the input encoding and the ADCs.

        ``w``, ``b`` are what :meth:`read` returned for this pass. Exact (float64, returned as
        float32) when the converters are ideal (``converters=None``); otherwise the steps of the
        module docstring (a numba kernel, one sample at a time, zero inputs skipped).
        """
        x = np.asarray(x, np.float64)
        w = np.asarray(w, np.float64)
        if x.ndim != 2 or w.ndim != 2 or x.shape[1] != w.shape[1] or np.shape(b) != (w.shape[0],):
            raise ConfigError("x", f"shapes x {x.shape}, w {w.shape}, b {np.shape(b)} do not chain")
        b = np.asarray(b, np.float64)
        if self.converters is None:
            return (x @ w.T + b).astype(np.float32)
        c = self.converters
        return (self._convert(layer, x, w.T, c.adc_bits, c.rows_per_tile) + b).astype(np.float32)

    def mvm_transposed(self, layer: int, p: np.ndarray, w: np.ndarray) -> np.ndarray:
        """Backprop's error product ``p W`` ``(B, fan_in)`` through the transposed read.

        ``p`` ``(B, fan_out)`` drives the columns; partial sums over tiles of ``cols_per_tile``
        columns go through the error-path ADC (``error_adc_bits``; exact when ``None`` or with
        ideal converters).
        """
        p = np.asarray(p, np.float64)
        w = np.asarray(w, np.float64)
        if p.ndim != 2 or w.ndim != 2 or p.shape[1] != w.shape[0]:
            raise ConfigError("p", f"shapes p {p.shape}, w {w.shape} do not chain")
        c = self.converters
        if c is None or c.error_adc_bits is None:
            return (p @ w).astype(np.float32)
        return self._convert(layer, p, w, c.error_adc_bits, c.cols_per_tile).astype(np.float32)

    def _convert(self, layer: int, x: np.ndarray, w_in_out: np.ndarray, adc_bits: int, tile: int) -> np.ndarray:
        """``x @ w_in_out`` (float64) through input levels, tiles of ``tile`` inputs and the ADC."""
        c = self.converters
        nb = len(x)
        levels = 2**c.input_bits - 1
        if c.input_range is None:
            x_max = np.abs(x).max(axis=1)
            x_max[x_max == 0] = 1.0  # an all-zero vector: any range gives zero
        else:
            x_max = np.full(nb, float(c.input_range))
        # integer input levels q of both polarities (x = x+ - x-), the sign folded into q
        q = np.minimum(np.rint(np.abs(x) / x_max[:, None] * levels), levels).astype(np.int64)
        q = np.where(x < 0, -q, q)
        full_scale = c.adc_range_fraction * tile * self.weight_range(layer)
        out = np.zeros((nb, w_in_out.shape[1]), np.float64)
        _converted_mvm(np.ascontiguousarray(q), np.ascontiguousarray(w_in_out), x_max,
                       c.input_bits if c.input_encoding == "bit_serial" else 0, levels, tile,
                       2 ** (adc_bits - 1) - 1, c.adc_range == "dynamic", float(c.adc_range_fraction),
                       float(full_scale), out)
        return out

    def update(self, layer: int, w: np.ndarray, b: np.ndarray, dw: np.ndarray, db: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
        """Turn ``dw`` into pulses and move the cells; return the stored weights afterwards."""
        self._check(layer, w)
        if np.shape(dw) != self.g[layer].shape:
            raise ConfigError("dw", f"shape {np.shape(dw)} does not match layer {layer}")
        requested = np.ascontiguousarray(np.asarray(dw, np.float64) / self.dw_min(layer))
        key = np.uint64(stream_key(self.seed, layer, self._steps.get(layer, 0)))
        _apply_update(self.g[layer], self.stuck[layer], self.step_scale[layer], requested, key,
                      self._P, self._A_p, self._B_p, self._A_d, self._B_d, float(self.device.c2c_sigma),
                      self.max_pulses, self.pulse_counts[layer], self.write_counts[layer])
        self._steps[layer] = self._steps.get(layer, 0) + 1
        self.update_calls += 1
        new_b = (np.asarray(b, np.float64) + np.asarray(db, np.float64)).astype(np.float32)
        return self.weights_of(layer).astype(np.float32), new_b

    # -- endurance -----------------------------------------------------------------------------

    def lifetime(self, samples_seen: int, samples_per_day: float = 1000.0) -> LifetimeResult:
        """Lifetime implied by the writes so far: days until the most-written cell wears out."""
        if not self.write_counts:
            raise ConfigError("device", "no layer programmed yet")
        if samples_seen <= 0:
            raise ConfigError("samples_seen", f"must be positive, got {samples_seen!r}")
        wmax = max(float(c.max()) for c in self.write_counts.values())
        wmean = float(sum(c.sum() for c in self.write_counts.values()) / sum(c.size for c in self.write_counts.values()))
        pmax = max(float(c.max()) for c in self.pulse_counts.values())
        rate = wmax / samples_seen
        end = self.device.endurance_cycles
        days = None
        if end is not None and samples_per_day > 0:
            days = math.inf if rate == 0 else end / (rate * samples_per_day)
        return LifetimeResult(int(samples_seen), wmax, wmean, pmax, rate, end, float(samples_per_day), days)
