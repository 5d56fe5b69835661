"""IBM aihwkit's analog tiles as the device of a training run (implements ``MatVecDeviceModel``).

Needs the optional extra ``pip install 'spela-hw[aihwkit]'`` (aihwkit 1.2 and PyTorch; Python
3.12 or newer). It answers "how does SPELA (or backprop) train on this device preset?" with
aihwkit's device physics instead of :class:`sim.CrossbarDevice`'s own update model.

One aihwkit ``AnalogTile`` (no analog bias) holds each layer's weights in *tile units*
``w / weight_range``, so a device whose bounds are ``[-1, 1]`` spans ``[-r, r]`` in weights.

* **program** writes the initial weights with ``set_weights`` (an exact write in aihwkit; with
  ``program_levels`` they are first snapped to that many evenly spaced levels over ``[-r, r]``,
  as :meth:`CrossbarDevice.program` does).
* **update** turns the requested increment ``dW`` into aihwkit's pulsed outer-product update
  ``tile.update(x, d)`` (``W <- W - lr d x^T``, here with ``lr = 1`` and ``d`` carrying ``-dW``):
  stochastic pulse trains of at most ``desired_bl`` (31) pulses per row and column, with
  aihwkit's update management (``x`` and ``d`` scaled to the same maximum; fewer pulses when the
  update is small), and every coincidence moves the cell by the device's step, with its bounds,
  variations and non-linearity. A rank-1 ``dW = u v^T`` (one sample's update: SPELA's
  post-synaptic term times its input) is applied as one outer product, exactly as a crossbar
  would pulse it; any other ``dW`` (a mini-batch sum) column by column, ``x = e_j`` and
  ``d = -dW[:, j]``, so each cell receives ``|dW_ij| / dw_min`` coincidences on average
  (the mini-batch is summed digitally first, then written).
* **read / mvm / mvm_transposed**: ``read`` returns the stored weights (``get_weights``); the
  products go through the tile's ``forward`` and ``backward``. With ``io="ideal"`` the tile's
  IO is perfect (``is_perfect``: exact products); with ``io="aihwkit"`` aihwkit's default
  ``IOParameters`` apply (7-bit input DAC, 9-bit output ADC, output noise 0.06, noise and bound
  management), on both directions.

Biases stay digital, as in :class:`sim.CrossbarDevice`: ``b + db`` exactly.

Not reproducible bit for bit: aihwkit 1.2 seeds its pulse-train generator from the clock and
exposes no way to set it from Python; ``seed`` fixes the device-to-device draws
(``construction_seed``). Matching parameters with :class:`sim.CrossbarDevice` is
:class:`MatchedDevice`'s job (the mapping is in ``docs/hardware.md``, "aihwkit as the device
engine").
"""

from __future__ import annotations

import dataclasses
import importlib
import math
from dataclasses import dataclass

import numpy as np

from spela_hw.errors import ConfigError, SpelaError

__all__ = ["AIHWKIT_DEVICES", "IO_MODES", "PULSE_TYPES", "AihwkitDevice", "MatchedDevice", "aihwkit_device_config"]

# name -> aihwkit class: the generic behavioural devices and the single-device presets
AIHWKIT_DEVICES = {
    "constant_step": "configs.ConstantStepDevice",
    "linear_step": "configs.LinearStepDevice",
    "soft_bounds": "configs.SoftBoundsDevice",
    "soft_bounds_pmax": "configs.SoftBoundsPmaxDevice",
    "exp_step": "configs.ExpStepDevice",
    "pow_step": "configs.PowStepDevice",
    "ideal_pulsed": "presets.IdealizedPresetDevice",
    "gokmen_vlasov": "presets.GokmenVlasovPresetDevice",
    "reram_es": "presets.ReRamESPresetDevice",
    "reram_sb": "presets.ReRamSBPresetDevice",
    "reram_array_om": "presets.ReRamArrayOMPresetDevice",
    "reram_array_hfo2": "presets.ReRamArrayHfO2PresetDevice",
    "capacitor": "presets.CapacitorPresetDevice",
    "ecram": "presets.EcRamPresetDevice",
    "ecram_mo": "presets.EcRamMOPresetDevice",
    "pcm": "presets.PCMPresetDevice",
}
IO_MODES = ("ideal", "aihwkit")
PULSE_TYPES = {"stochastic": "STOCHASTIC_COMPRESSED", "deterministic": "DETERMINISTIC_IMPLICIT",
               "mean_count": "MEAN_COUNT"}


def _aihwkit(module: str):
    """Import ``aihwkit.simulator.<module>`` or say how to install it."""
    try:
        return importlib.import_module(f"aihwkit.simulator.{module}")
    except ImportError as exc:
        raise SpelaError(f"the aihwkit device needs the optional extra: pip install 'spela-hw[aihwkit]' "
                         f"(aihwkit 1.2 and PyTorch, Python >= 3.12); import failed: {exc}") from None


def aihwkit_device_config(device, **fields):
    """An aihwkit device config from a name in :data:`AIHWKIT_DEVICES` (or a config), with fields set.

    Raises :class:`~spela_hw.errors.ConfigError` naming ``device`` for an unknown name and
    ``device.<field>`` for a field the device does not have.
    """
    if isinstance(device, str):
        if device not in AIHWKIT_DEVICES:
            raise ConfigError("device", f"unknown aihwkit device {device!r}; choose one of {sorted(AIHWKIT_DEVICES)}")
        module, name = AIHWKIT_DEVICES[device].split(".")
        device = getattr(_aihwkit(module), name)()
    elif not dataclasses.is_dataclass(device) or not hasattr(device, "as_bindings"):
        raise ConfigError("device", f"must be a device name or an aihwkit device config, got {device!r}")
    known = {f.name for f in dataclasses.fields(device)}
    for key in fields:
        if key not in known:
            raise ConfigError(f"device.{key}", f"{type(device).__name__} has no field {key!r}")
    return dataclasses.replace(device, **fields)


def _rank_one(d: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``(u, v)`` with ``d == outer(u, v)`` (to float32 rounding), or ``None`` if ``d`` is not rank 1."""
    j = int(np.argmax(np.abs(d).sum(axis=0)))
    u = d[:, j]
    i = int(np.argmax(np.abs(u)))
    if u[i] == 0.0:
        return None
    v = d[i, :] / u[i]
    if not np.allclose(np.outer(u, v), d, rtol=1e-5, atol=1e-6 * abs(u[i]) * np.abs(v).max()):
        return None
    return u, v


class AihwkitDevice:
    """aihwkit analog tiles behind the ``spela_hw`` device hook (see the module docstring).

    Parameters
    ----------
    device : str or aihwkit device config
        A name of :data:`AIHWKIT_DEVICES` (``"constant_step"``, ``"soft_bounds"``, presets such as
        ``"reram_sb"``, ``"ecram"``, ``"pcm"``) or any aihwkit single-device config instance.
    weight_range : float or sequence of float
        Weights of layer ``k`` are ``weight_range[k]`` times the tile's values.
    seed : int
        Seeds the device-to-device draws (aihwkit ``construction_seed = seed + 1``; 0 would mean
        a clock seed in aihwkit).
    io : {"ideal", "aihwkit"}
        Perfect forward/backward products, or aihwkit's default IO non-idealities.
    pulse_type : {"stochastic", "deterministic", "mean_count"}
        aihwkit's pulse trains: stochastic (its default), deterministic implicit coincidences, or
        the expected count.
    desired_bl : int
        Pulses per update at most (aihwkit's ``desired_bl``).
    program_levels : int or None
        Snap initial weights to this many levels over ``[-r, r]`` before writing them.
    pulse_granularity : float or None
        The increment, in tile units, that the update turns into one pulse; ``None``: the
        device's ``dw_min`` (aihwkit's own convention). A non-linear device whose step at
        ``w = 0`` differs from its mean step gets the crossbar's convention with
        ``2 / (levels - 1)``. Implemented as the tile's learning rate ``dw_min / granularity``.
    **fields
        Fields of the aihwkit device config (``dw_min=0.01``, ``w_max=1.0``, ...).
    """

    def __init__(self, device="constant_step", weight_range=1.0, seed: int = 0, io: str = "ideal",
                 pulse_type: str = "stochastic", desired_bl: int = 31, program_levels: int | None = None,
                 pulse_granularity: float | None = None, **fields):
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ConfigError("seed", f"must be a non-negative integer, got {seed!r}")
        fields.setdefault("construction_seed", seed + 1)
        self.device_config = aihwkit_device_config(device, **fields)
        self.device_name = device if isinstance(device, str) else type(device).__name__
        if io not in IO_MODES:
            raise ConfigError("io", f"must be one of {IO_MODES}, got {io!r}")
        if pulse_type not in PULSE_TYPES:
            raise ConfigError("pulse_type", f"must be one of {tuple(PULSE_TYPES)}, got {pulse_type!r}")
        if isinstance(desired_bl, bool) or not isinstance(desired_bl, int) or desired_bl < 1:
            raise ConfigError("desired_bl", f"must be a positive integer, got {desired_bl!r}")
        if program_levels is not None and (isinstance(program_levels, bool) or not isinstance(program_levels, int)
                                           or program_levels < 2):
            raise ConfigError("program_levels", f"must be None or an integer >= 2, got {program_levels!r}")
        g = pulse_granularity
        if g is not None and (isinstance(g, bool) or not isinstance(g, (int, float)) or not (g > 0 and math.isfinite(g))):
            raise ConfigError("pulse_granularity", f"must be None or a positive number, got {g!r}")
        self.learning_rate = 1.0
        if g is not None:
            if getattr(self.device_config, "dw_min", None) is None:
                raise ConfigError("pulse_granularity", f"{self.device_name} has no dw_min field to scale")
            self.learning_rate = float(self.device_config.dw_min) / g
        ranges = (weight_range,) if isinstance(weight_range, (int, float)) else tuple(weight_range)
        for r in ranges:
            if isinstance(r, bool) or not isinstance(r, (int, float)) or not (r > 0 and math.isfinite(r)):
                raise ConfigError("weight_range", f"must be positive numbers, got {weight_range!r}")
        self.weight_ranges = tuple(float(r) for r in ranges)
        self.seed, self.io, self.pulse_type = seed, io, pulse_type
        self.desired_bl, self.program_levels = desired_bl, program_levels
        self.tiles: dict = {}
        self.update_calls = 0

    def describe(self) -> str:
        """One line naming the device and the conventions in force (for reports)."""
        return (f"aihwkit {self.device_name} tile, {self.pulse_type} pulse trains (<= {self.desired_bl} pulses, "
                f"update management), IO {'perfect' if self.io == 'ideal' else 'aihwkit default IOParameters'}")

    def weight_range(self, layer: int = 0) -> float:
        """The weight range ``r`` of ``layer`` (weights are ``r`` times the tile's values)."""
        if len(self.weight_ranges) == 1:
            return self.weight_ranges[0]
        if not 0 <= layer < len(self.weight_ranges):
            raise ConfigError("weight_range", f"no range given for layer {layer}")
        return self.weight_ranges[layer]

    def rpu_config(self):
        """The aihwkit ``SingleRPUConfig`` of every tile."""
        configs = _aihwkit("configs")
        enums = _aihwkit("parameters.enums")
        cfg = configs.SingleRPUConfig(device=self.device_config)
        if self.io == "ideal":
            cfg.forward.is_perfect = True
            cfg.backward.is_perfect = True
        cfg.update.desired_bl = self.desired_bl
        cfg.update.pulse_type = getattr(enums.PulseType, PULSE_TYPES[self.pulse_type])
        return cfg

    # -- tiles ---------------------------------------------------------------------------------

    def _tile(self, layer: int, w=None):
        if layer not in self.tiles:
            raise ConfigError("layer", f"layer {layer} was never programmed")
        tile = self.tiles[layer]
        if w is not None and tuple(np.shape(w)) != (tile.out_size, tile.in_size):
            raise ConfigError("w", f"shape {np.shape(w)} does not match layer {layer} "
                                   f"{(tile.out_size, tile.in_size)}")
        return tile

    def weights_of(self, layer: int) -> np.ndarray:
        """The weights the tile of ``layer`` holds now (float32)."""
        w, _ = self._tile(layer).get_weights()
        return (w.numpy() * np.float32(self.weight_range(layer))).astype(np.float32)

    @staticmethod
    def _torch(a):
        import torch

        return torch.from_numpy(np.ascontiguousarray(a, np.float32))

    # -- DeviceModel protocol ------------------------------------------------------------------

    def program(self, layer: int, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Create the layer's tile and write the initial weights (snapped to ``program_levels``)."""
        tiles = _aihwkit("tiles")
        out_size, in_size = np.shape(w)
        tile = tiles.AnalogTile(out_size, in_size, self.rpu_config(), bias=False)
        tile.set_learning_rate(self.learning_rate)
        g = np.asarray(w, np.float64) / self.weight_range(layer)
        if self.program_levels is not None:
            steps = self.program_levels - 1
            g = np.round((np.clip(g, -1.0, 1.0) + 1.0) * 0.5 * steps) / steps * 2.0 - 1.0
        tile.set_weights(self._torch(g), apply_weight_scaling=False)
        self.tiles[layer] = tile
        return self.weights_of(layer), np.asarray(b, np.float32).copy()

    def read(self, layer: int, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The stored weights (aihwkit's ``get_weights``) and the digital biases."""
        self._tile(layer, w)
        return self.weights_of(layer), np.asarray(b, np.float32)

    def mvm(self, layer: int, x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``x W^T + b`` through the tile's forward pass (IO per ``io``), bias added digitally."""
        tile = self._tile(layer, w)
        y = tile.joint_forward(self._torch(x)).numpy()
        return (y * np.float32(self.weight_range(layer)) + np.asarray(b, np.float32)).astype(np.float32)

    def mvm_transposed(self, layer: int, p: np.ndarray, w: np.ndarray) -> np.ndarray:
        """Backprop's ``p W`` through the tile's backward pass (the transposed read)."""
        tile = self._tile(layer, w)
        e = tile.backward(self._torch(p)).numpy()
        return (e * np.float32(self.weight_range(layer))).astype(np.float32)

    def update(self, layer: int, w: np.ndarray, b: np.ndarray, dw: np.ndarray, db: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
        """Apply ``dw`` as aihwkit pulsed outer-product updates; return the stored weights."""
        tile = self._tile(layer, w)
        if np.shape(dw) != (tile.out_size, tile.in_size):
            raise ConfigError("dw", f"shape {np.shape(dw)} does not match layer {layer}")
        d = -np.asarray(dw, np.float64) / self.weight_range(layer)  # aihwkit applies W -= lr d x^T
        factors = _rank_one(d)
        if factors is not None:
            u, v = factors
            tile.update(self._torch(v[None, :]), self._torch(u[None, :]))
        else:
            cols = np.flatnonzero(np.any(d != 0.0, axis=0))
            if cols.size:
                x = np.zeros((cols.size, tile.in_size), np.float32)
                x[np.arange(cols.size), cols] = 1.0
                tile.update(self._torch(x), self._torch(d[:, cols].T))
        self.update_calls += 1
        new_b = (np.asarray(b, np.float64) + np.asarray(db, np.float64)).astype(np.float32)
        return self.weights_of(layer), new_b


MATCHED_KINDS = ("constant_step", "soft_bounds")


@dataclass(frozen=True)
class MatchedDevice:
    """One device described once, built as a :class:`sim.CrossbarDevice` and as an aihwkit tile.

    Both sides get the same number of states, bounds, step law and variations; the mapping is
    derived in ``docs/hardware.md`` ("aihwkit as the device engine"). Weights live in
    ``[-weight_range, weight_range]``; ``P = levels - 1`` nominal pulses cross the range.

    Attributes
    ----------
    kind : {"constant_step", "soft_bounds"}
        ``constant_step``: every pulse moves the weight by ``dw_min = 2 r / P``
        (aihwkit ``ConstantStepDevice``). ``soft_bounds``: NeuroSim's exponential LTP/LTD with
        non-linearity ``nonlinearity`` (``A = P / nonlinearity``), whose step shrinks linearly
        towards the bound it approaches; aihwkit's twin is ``LinearStepDevice`` with
        ``gamma = 1 / (2B - 1)`` and hard bounds at ``+-r`` (its ``SoftBoundsDevice`` is the
        limit ``nonlinearity -> inf``).
    levels : int
        States across the range (``P + 1``).
    weight_range : float
    nonlinearity : float
        ``soft_bounds`` only (> 0); ``constant_step`` needs 0.
    d2d_sigma : float
        Device-to-device spread of the step: a log-normal factor ``exp(d2d_sigma xi)`` per cell
        (aihwkit ``dw_min_dtod`` with ``dw_min_dtod_log_normal``).
    c2c_sigma : float
        Cycle-to-cycle noise per pulse in units of the nominal step ``2 r / P`` (additive).
    max_pulses : int
        Pulses per cell per update at most (aihwkit ``desired_bl``).
    """

    kind: str = "constant_step"
    levels: int = 64
    weight_range: float = 1.0
    nonlinearity: float = 0.0
    d2d_sigma: float = 0.0
    c2c_sigma: float = 0.0
    max_pulses: int = 31

    def __post_init__(self):
        if self.kind not in MATCHED_KINDS:
            raise ConfigError("kind", f"must be one of {MATCHED_KINDS}, got {self.kind!r}")
        if isinstance(self.levels, bool) or not isinstance(self.levels, int) or self.levels < 2:
            raise ConfigError("levels", f"must be an integer >= 2, got {self.levels!r}")
        if self.kind == "soft_bounds" and not self.nonlinearity > 0:
            raise ConfigError("nonlinearity", f"a soft-bounds device needs nonlinearity > 0, got {self.nonlinearity!r}")
        if self.kind == "constant_step" and self.nonlinearity != 0:
            raise ConfigError("nonlinearity", f"a constant-step device has nonlinearity 0, got {self.nonlinearity!r}")
        for name in ("d2d_sigma", "c2c_sigma"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 10:
                raise ConfigError(name, f"must be in [0, 10], got {v!r}")

    @property
    def pulses(self) -> int:
        """``P``: nominal pulses from one bound to the other."""
        return self.levels - 1

    def aihwkit_fields(self) -> tuple[str, dict]:
        """The aihwkit device name and its fields, in tile units (bounds ``+-1``)."""
        P = self.pulses
        common = dict(w_max=1.0, w_min=-1.0, w_max_dtod=0.0, w_min_dtod=0.0, up_down=0.0, up_down_dtod=0.0,
                      dw_min_dtod=float(self.d2d_sigma), dw_min_dtod_log_normal=True)
        if self.kind == "constant_step":
            return "constant_step", dict(common, dw_min=2.0 / P, dw_min_std=float(self.c2c_sigma))
        A = P / self.nonlinearity
        B = 1.0 / (1.0 - math.exp(-P / A))
        w_bound = 2.0 * B - 1.0  # where the exponential law's step would vanish (tile units)
        dw_min = (1.0 - math.exp(-1.0 / A)) * w_bound  # one pulse's step at w = 0
        return "linear_step", dict(common, dw_min=dw_min, gamma_up=1.0 / w_bound, gamma_down=1.0 / w_bound,
                                   gamma_up_dtod=0.0, gamma_down_dtod=0.0, mean_bound_reference=True,
                                   mult_noise=False, write_noise_std=0.0,
                                   dw_min_std=float(self.c2c_sigma) * (2.0 / P) / dw_min)

    def aihwkit(self, seed: int = 0, io: str = "ideal", **kwargs) -> AihwkitDevice:
        """The aihwkit side: initial weights snapped to ``levels`` and ``dW / (2 r / P)`` pulses
        requested per update, as :class:`sim.CrossbarDevice` does."""
        name, fields = self.aihwkit_fields()
        return AihwkitDevice(name, weight_range=self.weight_range, seed=seed, io=io, desired_bl=self.max_pulses,
                             program_levels=self.levels, pulse_granularity=2.0 / self.pulses, **kwargs, **fields)

    def crossbar(self, seed: int = 0):
        """The :class:`sim.CrossbarDevice` side: ``rram-22nm``'s cell with these update physics,
        no faults, ideal converters (exact products, like ``io="ideal"``)."""
        from .crossbar_device import CrossbarDevice

        return CrossbarDevice("rram-22nm", weight_range=self.weight_range, seed=seed, max_pulses=self.max_pulses,
                              converters=None, levels=self.levels, nonlinearity_ltp=float(self.nonlinearity),
                              nonlinearity_ltd=float(self.nonlinearity), d2d_sigma=float(self.d2d_sigma),
                              c2c_sigma=float(self.c2c_sigma), stuck_at_hrs_rate=0.0, stuck_at_lrs_rate=0.0)
