"""Validated descriptions of a spiking SPELA mapping: neurons, input code, plasticity, backend.

All times are floats in milliseconds and all rates in hertz (suffixes ``_ms`` / ``_hz``): Brian2
quantities never appear in these descriptions. Every invalid value raises
:class:`~spela_hw.errors.ConfigError` naming the field.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from spela_hw.errors import ConfigError

__all__ = [
    "CODES",
    "SIGN_POLICIES",
    "TARGETS",
    "NeuronConfig",
    "EncodingConfig",
    "PlasticityConfig",
    "QuantizationConfig",
    "BackendConfig",
    "SpikingConfig",
]

CODES = ("poisson", "regular", "ttfs")
SIGN_POLICIES = ("nonnegative", "on_off_differential")
CLASS_CODES = ("disjoint", "sparse")
TARGETS = ("auto", "numpy", "cython", "cpp_standalone")
RESETS = ("subtract", "zero")
SCHEDULES = ("inverse_epoch", "constant", "inverse_time")


def _finite(name: str, value, lo: float = -math.inf, hi: float = math.inf, lo_open: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(name, f"must be a finite number, got {value!r}")
    if value < lo or value > hi or (lo_open and value == lo):
        bracket = "(" if lo_open else "["
        raise ConfigError(name, f"must lie in {bracket}{lo}, {hi}], got {value!r}")


def _choice(name: str, value, choices) -> None:
    if value not in choices:
        raise ConfigError(name, f"must be one of {tuple(choices)}, got {value!r}")


def _steps(value_ms: float, dt_ms: float) -> int | None:
    """``value_ms / dt_ms`` if it is (numerically) an integer, else ``None``."""
    q = value_ms / dt_ms
    return int(round(q)) if abs(q - round(q)) < 1e-6 else None


@dataclass(frozen=True)
class NeuronConfig:
    """Current-based leaky integrate-and-fire neurons in threshold units (threshold 1).

    ``dv/dt = (-leak*v + b)/tau_m``; every input spike adds its weight to ``v``; a spike resets
    ``v`` to 0 (``reset="zero"``) or subtracts 1 (``"subtract"``, closer to ReLU and the choice
    for rate-to-spike conversion). ``tau_y_ms`` is the output trace that estimates the rate
    (``y ~ rate * tau_y``) for the normaliser, the error and the gate.
    """

    tau_m_ms: float = 20.0
    t_ref_ms: float = 2.0
    reset: str = "subtract"
    leak: bool = True
    tau_y_ms: float = 20.0

    def __post_init__(self):
        _finite("neuron.tau_m_ms", self.tau_m_ms, 0.0, 1e5, lo_open=True)
        _finite("neuron.t_ref_ms", self.t_ref_ms, 0.0, 1e4)
        _choice("neuron.reset", self.reset, RESETS)
        if not isinstance(self.leak, bool):
            raise ConfigError("neuron.leak", f"must be a bool, got {self.leak!r}")
        _finite("neuron.tau_y_ms", self.tau_y_ms, 0.0, 1e5, lo_open=True)


@dataclass(frozen=True)
class EncodingConfig:
    """How pixels in [0, 1] become input spikes, and the per-sample presentation schedule.

    Each sample is shown for ``present_ms`` then followed by ``rest_ms`` of silence. The learning
    gate is open from ``gate_start_ms`` to ``gate_stop_ms`` after the sample onset (training
    samples only), once the rates have settled. ``code``:

    * ``poisson``: input ``i`` fires with rate ``rate_max_hz * x_i`` (the default);
    * ``regular``: the same rates as deterministic, evenly spaced trains (phase accumulators);
    * ``ttfs``: time to first spike, one spike per non-zero pixel at
      ``onset + (1 - x_i) * present_ms * ttfs_span`` (brighter pixels earlier).

    ``reset_at_onset`` zeroes membrane potentials and traces at every sample onset, which removes
    carry-over from the previous sample.
    """

    code: str = "poisson"
    rate_max_hz: float = 250.0
    present_ms: float = 100.0
    rest_ms: float = 20.0
    gate_start_ms: float = 20.0
    gate_stop_ms: float = 100.0
    reset_at_onset: bool = True
    ttfs_span: float = 0.5

    def __post_init__(self):
        _choice("encoding.code", self.code, CODES)
        if isinstance(self.rate_max_hz, (int, float)) and not isinstance(self.rate_max_hz, bool) \
                and self.rate_max_hz < 0:
            raise ConfigError("encoding.rate_max_hz", f"rates cannot be negative, got {self.rate_max_hz}")
        _finite("encoding.rate_max_hz", self.rate_max_hz, 0.0, 1e4, lo_open=True)
        _finite("encoding.present_ms", self.present_ms, 0.0, 1e6, lo_open=True)
        _finite("encoding.rest_ms", self.rest_ms, 0.0, 1e6)
        _finite("encoding.gate_start_ms", self.gate_start_ms, 0.0, self.present_ms)
        _finite("encoding.gate_stop_ms", self.gate_stop_ms, 0.0, self.present_ms)
        if self.gate_stop_ms <= self.gate_start_ms:
            raise ConfigError("encoding.gate_stop_ms",
                              f"the gate must close after it opens ({self.gate_start_ms} ms), "
                              f"got {self.gate_stop_ms} ms")
        if not isinstance(self.reset_at_onset, bool):
            raise ConfigError("encoding.reset_at_onset", "must be a bool")
        _finite("encoding.ttfs_span", self.ttfs_span, 0.0, 1.0, lo_open=True)

    @property
    def sample_ms(self) -> float:
        return self.present_ms + self.rest_ms

    @property
    def gate_ms(self) -> float:
        return self.gate_stop_ms - self.gate_start_ms


@dataclass(frozen=True)
class QuantizationConfig:
    """Loihi-class low precision of the plastic synapses (the hardware-faithful variant).

    ``weight_bits``: signed weights on a uniform grid over ``[-range_k, range_k]``, like Loihi's
    8-bit weights with a shared exponent per synapse group: ``range_k`` is ``weight_range`` if
    given, else per layer the power of two at or above ``4 sqrt(6/fan_in)`` (four He bounds),
    capped at ``w_max``; updates are stochastically rounded to that grid. ``trace_bits``: the
    output trace ``y`` used by the rule is read through an unsigned grid of that width over
    ``[0, trace_max]`` (Loihi: 7-bit traces). ``error_bits``: the post-synaptic error is clipped
    and rounded to a signed integer of that width (nengo-loihi: 8 bits) with scale
    ``error_scale`` per unit error, stochastically by default (Loihi rounds its traces
    stochastically; nearest rounding zeroes the many small errors of a wide layer).
    """

    weight_bits: int = 8
    weight_range: float | None = None
    trace_bits: int = 7
    trace_max: float = 8.0
    error_bits: int = 8
    error_scale: float = 1000.0
    error_rounding: str = "stochastic"

    def __post_init__(self):
        for name in ("weight_bits", "trace_bits", "error_bits"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not 2 <= v <= 24:
                raise ConfigError(f"quantization.{name}", f"must be an integer from 2 to 24, got {v!r}")
        _finite("quantization.trace_max", self.trace_max, 0.0, 1e6, lo_open=True)
        if self.weight_range is not None:
            _finite("quantization.weight_range", self.weight_range, 0.0, 1e3, lo_open=True)
        _finite("quantization.error_scale", self.error_scale, 0.0, 1e9, lo_open=True)
        _choice("quantization.error_rounding", self.error_rounding, ("stochastic", "nearest"))


@dataclass(frozen=True)
class PlasticityConfig:
    """The event-driven three-factor form of the SPELA update.

    At every pre-synaptic spike ``w += eta_k * G(t) * delta_post`` (clipped to ``+-w_max``), with
    the post-synaptic error ``delta = g(c) * (e - c*y/|y|)/|y| * ([y > gate_threshold] +
    gate_floor)`` formed inside the simulation from the layer's traces ``y``, the label's code
    ``e``, and the layer-wide norm and cosine (``|y|`` floored by ``norm_floor``). The bias
    integrates ``db/dt = eta_bias_ratio * eta_k * G(t) * delta / (1 s)``.

    ``eta``: per-layer learning rates; ``None`` derives them as ``lr_eff / (T_gate * r_k)`` with
    ``r_0 = rate_max_hz`` for the input layer and ``hidden_rate_hz`` after a hidden layer, so that
    every layer moves at the same rate-equivalent step ``lr_eff`` (docs/spiking.md §2.3).
    ``schedule``: ``inverse_epoch`` scales G by ``1/(1 + epoch)``; ``constant`` keeps it at 1;
    ``inverse_time`` decays it per training sample as ``1/(1 + s/decay_samples)`` (``s`` counts
    training samples across epochs): the per-spike updates are noisy, and a decaying step lets
    the weights settle instead of drifting at a noise floor.
    ``sign_policy``/``class_codes``: see :mod:`mappings.brian2.codes`.
    """

    eta: tuple[float, ...] | None = None
    lr_eff: float = 2.0
    hidden_rate_hz: float = 100.0
    eta_bias_ratio: float = 5.0
    w_max: float = 2.0
    gate_threshold: float = 0.05
    gate_floor: float = 0.001
    norm_floor: float = 0.3
    schedule: str = "inverse_epoch"
    decay_samples: float = 10000.0
    sign_policy: str = "nonnegative"
    class_codes: str = "disjoint"
    code_density: float = 0.2
    quantization: QuantizationConfig | None = None

    def __post_init__(self):
        if self.eta is not None:
            if isinstance(self.eta, (int, float)):
                raise ConfigError("plasticity.eta", "must be a tuple with one rate per layer (or None)")
            object.__setattr__(self, "eta", tuple(self.eta))
            for k, e in enumerate(self.eta):
                _finite(f"plasticity.eta[{k}]", e, 0.0, 1e3)
        _finite("plasticity.lr_eff", self.lr_eff, 0.0, 1e4)
        _finite("plasticity.hidden_rate_hz", self.hidden_rate_hz, 0.0, 1e4, lo_open=True)
        _finite("plasticity.eta_bias_ratio", self.eta_bias_ratio, 0.0, 1e4)
        _finite("plasticity.w_max", self.w_max, 0.0, 1e3, lo_open=True)
        _finite("plasticity.gate_threshold", self.gate_threshold, 0.0, 1e3)
        _finite("plasticity.gate_floor", self.gate_floor, 0.0, 1.0)
        _finite("plasticity.norm_floor", self.norm_floor, 0.0, 1e3, lo_open=True)
        _choice("plasticity.schedule", self.schedule, SCHEDULES)
        _finite("plasticity.decay_samples", self.decay_samples, 0.0, 1e12, lo_open=True)
        _choice("plasticity.sign_policy", self.sign_policy, SIGN_POLICIES)
        _choice("plasticity.class_codes", self.class_codes, CLASS_CODES)
        _finite("plasticity.code_density", self.code_density, 0.0, 1.0, lo_open=True)
        if self.quantization is not None and not isinstance(self.quantization, QuantizationConfig):
            raise ConfigError("plasticity.quantization", "must be a QuantizationConfig or None")


@dataclass(frozen=True)
class BackendConfig:
    """Where and how Brian2 runs.

    ``target``: ``auto`` picks ``cpp_standalone`` when a C++ compiler is on the PATH and the
    runtime ``numpy`` target otherwise. ``build_dir``: the standalone project directory (``None``:
    the persistent folder of the network's shape, see :mod:`mappings.brian2.buildcache`, with
    ``build_cache``; a temporary directory removed after the run without it; give one to keep the
    compiled project, and give every parallel worker its own). ``openmp_threads``: 0 (the
    default) builds without OpenMP (docs/spiking.md §7.4).
    """

    target: str = "auto"
    dt_ms: float = 0.5
    seed: int = 0
    build_dir: str | None = None
    openmp_threads: int = 0
    build_cache: bool = True

    def __post_init__(self):
        _choice("backend.target", self.target, TARGETS)
        _finite("backend.dt_ms", self.dt_ms, 0.0, 100.0, lo_open=True)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError("backend.seed", f"must be a non-negative integer, got {self.seed!r}")
        if self.build_dir is not None and not isinstance(self.build_dir, str):
            raise ConfigError("backend.build_dir", "must be a path string or None")
        if isinstance(self.openmp_threads, bool) or not isinstance(self.openmp_threads, int) \
                or self.openmp_threads < 0:
            raise ConfigError("backend.openmp_threads", "must be an integer >= 0")
        if not isinstance(self.build_cache, bool):
            raise ConfigError("backend.build_cache", f"must be a bool, got {self.build_cache!r}")


@dataclass(frozen=True)
class SpikingConfig:
    """Everything a spiking SPELA run needs besides the network spec, the rule and the data."""

    neuron: NeuronConfig = field(default_factory=NeuronConfig)
    encoding: EncodingConfig = field(default_factory=EncodingConfig)
    plasticity: PlasticityConfig = field(default_factory=PlasticityConfig)
    backend: BackendConfig = field(default_factory=BackendConfig)

    def __post_init__(self):
        for name, cls in (("neuron", NeuronConfig), ("encoding", EncodingConfig),
                          ("plasticity", PlasticityConfig), ("backend", BackendConfig)):
            if not isinstance(getattr(self, name), cls):
                raise ConfigError(name, f"must be a {cls.__name__}")
        dt, enc, neu = self.backend.dt_ms, self.encoding, self.neuron
        # Time constants the clock cannot resolve make the Euler step unstable or meaningless.
        for name, value in (("neuron.tau_m_ms", neu.tau_m_ms), ("neuron.tau_y_ms", neu.tau_y_ms)):
            if value < 2 * dt:
                raise ConfigError(name, f"{value} ms is shorter than two time steps (dt = {dt} ms)")
        if neu.t_ref_ms >= enc.present_ms:
            raise ConfigError("neuron.t_ref_ms",
                              f"a refractory period of {neu.t_ref_ms} ms leaves no room to fire in a "
                              f"{enc.present_ms} ms presentation")
        for name in ("present_ms", "rest_ms", "gate_start_ms", "gate_stop_ms"):
            if _steps(getattr(enc, name), dt) is None:
                raise ConfigError(f"encoding.{name}", f"must be a whole number of time steps (dt = {dt} ms)")
        if enc.rate_max_hz * dt * 1e-3 > 1.0:
            raise ConfigError("encoding.rate_max_hz",
                              f"{enc.rate_max_hz} Hz needs more than one spike per step at dt = {dt} ms")

    def to_dict(self) -> dict:
        """JSON-ready nested dict (written into every result record)."""
        return asdict(self)
