"""What a report computes: :class:`ReportConfig`, read from keyword arguments, TOML or the CLI.

A report config is a frozen, validated dataclass. The same settings come from three places, in
increasing priority: the defaults below, a TOML file (``--config file.toml``, flat keys named
exactly like the fields, or under a ``[report]`` table), and command-line options. An unknown key
or a bad value raises :class:`~spela_hw.errors.ConfigError` naming the field.

Weight precisions are written as ``"fp32"`` (float32) or an integer number of weight bits
(fixed point from :meth:`spela_hw.PrecisionSpec.fixed`, 16-bit activations, stochastic rounding of
updates).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from sim.tomlfile import read_toml
from spela_hw import PrecisionSpec
from spela_hw.classvectors import CLASS_VECTOR_METHODS
from spela_hw.errors import ConfigError, naming_file
from spela_hw.specs import RULES

__all__ = [
    "ReportConfig",
    "DEFAULT_PRESET",
    "load_toml",
    "parse_bits",
    "parse_dims",
    "precision_for",
    "precision_label",
    "weight_bits_of",
]

#: The default edge preset: an SRAM compute-in-memory chip with a 256 KB global buffer.
DEFAULT_PRESET = "sram-cim-22nm"

FLOAT_NAMES = ("fp32", "float32", "float", "32")


def load_toml(path, where: str = "config") -> dict:
    """Parse a TOML file into a dict; a missing, non-UTF-8 or malformed file raises ConfigError."""
    return read_toml(path, where)


# -- value parsers (shared with the sweep config and the CLI) ------------------------------------

def _split(value, field):
    if isinstance(value, str):
        parts = [p.strip() for p in value.replace(";", ",").split(",")]
        if any(p == "" for p in parts):
            raise ConfigError(field, f"empty item in {value!r}")
        return parts
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def parse_bits(value, field: str = "bits") -> tuple:
    """Weight precisions from ``"fp32,8,6,4"`` or a list: a tuple of ``"fp32"`` and ints 2..16."""
    out = []
    for item in _split(value, field):
        token = item.strip().lower() if isinstance(item, str) else item
        if isinstance(token, str) and token in FLOAT_NAMES or token == 32:
            out.append("fp32")
            continue
        if isinstance(token, str):
            token = token.removeprefix("int").removeprefix("w")
            try:
                token = int(token)
            except ValueError:
                raise ConfigError(field, f"{item!r} is neither 'fp32' nor a number of bits") from None
        if isinstance(token, bool) or not isinstance(token, int) or not 2 <= token <= 16:
            raise ConfigError(field, f"weight bits must be 'fp32' or an integer from 2 to 16, got {item!r}")
        out.append(token)
    if not out:
        raise ConfigError(field, "needs at least one precision")
    if len(set(out)) != len(out):
        raise ConfigError(field, f"repeats a precision: {value!r}")
    return tuple(out)


def parse_dims(value, field: str = "dims") -> tuple[int, ...]:
    """Layer widths, input first, from ``"784,256,10"`` or a list of ints."""
    items = _split(value, field)
    dims = []
    for i, item in enumerate(items):
        try:
            d = int(item) if isinstance(item, str) else item
        except ValueError:
            raise ConfigError(field, f"{item!r} is not an integer width") from None
        if isinstance(d, bool) or not isinstance(d, int) or d < 1:
            raise ConfigError(f"{field}[{i}]", f"must be a positive integer, got {item!r}")
        dims.append(d)
    if len(dims) < 2:
        raise ConfigError(field, f"needs the input width and at least one layer, got {value!r}")
    return tuple(dims)


def _parse_names(value, field, choices=None) -> tuple[str, ...]:
    names = []
    for item in _split(value, field):
        if not isinstance(item, str) or not item:
            raise ConfigError(field, f"must be names, got {item!r}")
        if choices is not None and item not in choices:
            raise ConfigError(field, f"{item!r} is not one of {tuple(choices)}")
        names.append(item)
    if not names:
        raise ConfigError(field, "needs at least one name")
    if len(set(names)) != len(names):
        raise ConfigError(field, f"repeats a name: {value!r}")
    return tuple(names)


def _parse_ints(value, field, minimum=0) -> tuple[int, ...]:
    out = []
    for item in _split(value, field):
        try:
            v = int(item) if isinstance(item, str) else item
        except ValueError:
            raise ConfigError(field, f"{item!r} is not an integer") from None
        if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
            raise ConfigError(field, f"must be integers >= {minimum}, got {item!r}")
        out.append(v)
    if not out:
        raise ConfigError(field, "needs at least one value")
    if len(set(out)) != len(out):
        raise ConfigError(field, f"repeats a value: {value!r}")
    return tuple(out)


def _parse_floats(value, field, lo, hi, lo_open=False, hi_open=False) -> tuple[float, ...]:
    out = []
    for item in _split(value, field):
        try:
            v = float(item) if isinstance(item, str) else item
        except ValueError:
            raise ConfigError(field, f"{item!r} is not a number") from None
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ConfigError(field, f"must be finite numbers, got {item!r}")
        if v < lo or v > hi or (lo_open and v == lo) or (hi_open and v == hi):
            lb, rb = "(" if lo_open else "[", ")" if hi_open else "]"
            raise ConfigError(field, f"values must lie in {lb}{lo}, {hi}{rb}, got {item!r}")
        out.append(float(v))
    return tuple(out)


def _parse_int(value, field, minimum, allow_none=False):
    if value is None and allow_none:
        return None
    if isinstance(value, str):
        try:
            value = int(value)
        except ValueError:
            raise ConfigError(field, f"{value!r} is not an integer") from None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(field, f"must be an integer >= {minimum}, got {value!r}")
    return value


# -- precisions -----------------------------------------------------------------------------------

def precision_for(bits) -> PrecisionSpec | None:
    """The :class:`PrecisionSpec` of a precision token (``None`` is float32)."""
    return None if bits == "fp32" else PrecisionSpec.fixed(int(bits))


def precision_label(bits) -> str:
    """Display name: ``"fp32"`` or ``"int8"``."""
    return "fp32" if bits == "fp32" else f"int{int(bits)}"


def weight_bits_of(bits) -> int:
    """Weight bit width of a precision token (32 for float32)."""
    return 32 if bits == "fp32" else int(bits)


# -- the report config ----------------------------------------------------------------------------

@dataclass(frozen=True)
class ReportConfig:
    """Everything ``spela-hw report`` computes.

    Parameters
    ----------
    dataset : str
        A name known to :func:`spela_hw.load_dataset` (default: the bundled real MNIST split).
    dims : tuple of int
        Layer widths from the input to the output, e.g. ``(784, 256, 10)``. Every rule trains
        this same shape (like for like); with backprop among the rules the output width must
        equal the number of classes (softmax), so a wider SPELA output (``784,256,34``) is a
        SPELA-only setting (``rules = ["spela"]``).
    bits : tuple
        Weight precisions trained and sized: ``"fp32"`` and/or bit widths. Learning curves are
        drawn for the first two; accuracy-vs-bits uses them all.
    rules : tuple of str
        Learning rules, e.g. ``("spela", "backprop")``.
    class_vectors : str
        SPELA's class vectors (:mod:`spela_hw.classvectors`). Default ``"aligned"``: the paper's
        regular simplex, aligned with the units in a layer as wide as the number of classes (the
        like-for-like output). A randomly rotated simplex (``"auto"``, the published recipes')
        leaves some classes out of reach of a non-negative LeakyReLU output, and SPELA's output
        read-out then swings by 10-20 points from seed to seed (bench/RESULTS.md, "The output
        layer's spread over seeds").
    presets : tuple of str
        Hardware presets (``sim``) to size on; the first one is the main one.
    epochs : int
        Training epochs of every main run.
    seeds : tuple of int
        One run per seed; tables show mean and spread when there are several (the default three
        give the verdict a standard deviation).
    batch_size : int
        1 is the per-sample edge mode.
    train_samples, test_samples : int or None
        Use only the first N samples (None: all); for quick looks and tests.
    few_shot_test_fractions : tuple of float
        The few-shot protocol holds this fraction of the merged data out for testing.
    few_shot_epochs : int
    few_shot_trials : int
        Random re-splits per held-out fraction (trial t uses split seed ``seed * 1000 + t``).
    exit_thresholds : tuple of float
        Confidence thresholds of the confidence-exit policy (relative read-out margin in [0, 1]).
    energy_samples : int
        Test samples whose counts drive the energy of inference and early exit.
    spiking : {"auto", "on", "off"}
        ``auto``: run the small spiking experiment when the Brian2 mapping imports and a C++
        compiler is present (Brian2's ``cpp_standalone``: a fixed ~30-60 s build, then fast);
        ``on``: always (the slow runtime ``numpy`` target without a compiler); ``off``: never.
    spike_dims : tuple of int
        Layer widths of the spiking network.
    spike_train_samples, spike_test_samples : int
    transfer : {"on", "off"}
        ``on``: the on-device transfer-learning section (``spela_hw.transfer``, one trial per
        seed on the configured dataset's images: a frozen conv extractor, SPELA and backprop
        heads in float32 and at the first fixed-point precision of ``bits``, 8 bits without one).
    budget : str or None
        On-chip memory budget (total of registers, SRAM, NVM and crossbar arrays; DRAM excluded),
        e.g. ``"256 KB"`` (default: the 256 KB tiny-training budget of Lin et al. 2022) or
        ``"sram=256KB,nvm=1MB"``; the preset's own capacities are checked as well. ``None``: no
        budget.
    workers : int
        Parallel training processes (0: all cores).
    out : str
        Output directory.
    """

    dataset: str = "mnist-bundled"
    dims: tuple = (784, 256, 10)
    bits: tuple = ("fp32", 8, 6, 4)
    rules: tuple = ("spela", "backprop")
    class_vectors: str = "aligned"
    presets: tuple = (DEFAULT_PRESET,)
    epochs: int = 3
    seeds: tuple = (0, 1, 2)
    batch_size: int = 1
    train_samples: int | None = None
    test_samples: int | None = None
    few_shot_test_fractions: tuple = (0.95, 0.99)
    few_shot_epochs: int = 5
    few_shot_trials: int = 3
    exit_thresholds: tuple = (0.05, 0.1, 0.2, 0.3, 0.5)
    energy_samples: int = 500
    spiking: str = "auto"
    spike_dims: tuple = (784, 100, 10)
    spike_train_samples: int = 1000
    spike_test_samples: int = 300
    transfer: str = "on"
    budget: str | None = "256 KB"
    workers: int = 0
    out: str = "report"

    def __post_init__(self):
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 (frozen dataclass)
        if not isinstance(self.dataset, str) or not self.dataset:
            raise ConfigError("dataset", f"must be a dataset name, got {self.dataset!r}")
        set_("dims", parse_dims(self.dims))
        set_("bits", parse_bits(self.bits))
        set_("rules", _parse_names(self.rules, "rules", tuple(RULES)))
        if self.class_vectors not in CLASS_VECTOR_METHODS:
            raise ConfigError("class_vectors", f"must be one of {CLASS_VECTOR_METHODS}, got {self.class_vectors!r}")
        set_("presets", _parse_names(self.presets, "presets"))
        set_("epochs", _parse_int(self.epochs, "epochs", 1))
        set_("seeds", _parse_ints(self.seeds, "seeds", 0))
        set_("batch_size", _parse_int(self.batch_size, "batch_size", 1))
        set_("train_samples", _parse_int(self.train_samples, "train_samples", 10, allow_none=True))
        set_("test_samples", _parse_int(self.test_samples, "test_samples", 10, allow_none=True))
        set_("few_shot_test_fractions",
             _parse_floats(self.few_shot_test_fractions, "few_shot_test_fractions", 0.0, 1.0, True, True))
        set_("few_shot_epochs", _parse_int(self.few_shot_epochs, "few_shot_epochs", 1))
        set_("few_shot_trials", _parse_int(self.few_shot_trials, "few_shot_trials", 0))
        set_("exit_thresholds", tuple(sorted(set(
            _parse_floats(self.exit_thresholds, "exit_thresholds", 0.0, 1.0)))))
        set_("energy_samples", _parse_int(self.energy_samples, "energy_samples", 1))
        if self.spiking not in ("auto", "on", "off"):
            raise ConfigError("spiking", f"must be 'auto', 'on' or 'off', got {self.spiking!r}")
        set_("spike_dims", parse_dims(self.spike_dims, "spike_dims"))
        set_("spike_train_samples", _parse_int(self.spike_train_samples, "spike_train_samples", 1))
        set_("spike_test_samples", _parse_int(self.spike_test_samples, "spike_test_samples", 1))
        if self.transfer not in ("on", "off"):
            raise ConfigError("transfer", f"must be 'on' or 'off', got {self.transfer!r}")
        if self.budget is not None:
            if not isinstance(self.budget, str) or not self.budget.strip():
                raise ConfigError("budget", f"must be a size such as '256 KB', got {self.budget!r}")
            if self.budget.strip().lower() in ("none", "off"):
                set_("budget", None)
            else:
                from sim import MemoryBudget

                try:
                    MemoryBudget.parse(self.budget)
                except ConfigError as exc:
                    raise ConfigError("budget", str(exc)) from None
        set_("workers", _parse_int(self.workers, "workers", 0))
        if not isinstance(self.out, (str, Path)) or not str(self.out):
            raise ConfigError("out", f"must be a directory path, got {self.out!r}")
        set_("out", str(self.out))
        if self.dims[-1] < 2:
            raise ConfigError("dims", "the last layer needs at least 2 units")

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_dict(cls, d: dict, where: str = "") -> "ReportConfig":
        """Build from a dict (TOML form); unknown keys raise ConfigError naming the key."""
        if not isinstance(d, dict):
            raise ConfigError(where or "config", "must be a table of settings")
        if set(d) == {"report"} and isinstance(d["report"], dict):
            d, where = d["report"], (f"{where}." if where else "") + "report"
        known = set(cls.field_names())
        for key in d:
            if key not in known:
                name = f"{where}.{key}" if where else key
                raise ConfigError(name, f"unknown setting; known: {', '.join(cls.field_names())}")
        return cls(**d)

    @classmethod
    def from_toml(cls, path) -> "ReportConfig":
        """Read a report config file; every error names the file and the field."""
        with naming_file(path):
            return cls.from_dict(load_toml(path))

    def with_overrides(self, **changes) -> "ReportConfig":
        """A copy with some settings replaced (``None`` values are ignored: not given)."""
        d = self.to_dict()
        for k, v in changes.items():
            if k not in d:
                raise ConfigError(k, "unknown setting")
            if v is not None:
                d[k] = v
        return type(self)(**d)

    def to_dict(self) -> dict:
        """JSON/TOML-ready dict (tuples become lists)."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}

    def to_toml(self) -> str:
        """The config as TOML, readable back with :meth:`from_toml` (``None`` settings omitted)."""
        lines = []
        for k, v in self.to_dict().items():
            if v is None:
                if k == "budget":  # None is not the default here: say "no budget" explicitly
                    lines.append('budget = "none"')
                continue
            lines.append(f"{k} = {_toml_value(v)}")
        return "\n".join(lines) + "\n"


def _toml_value(v) -> str:
    import json

    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(type(v))
