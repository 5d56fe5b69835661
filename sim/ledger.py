"""Memory ledger by training algorithm, tensor class and memory level; budget checks and solvers.

Accounting rules (docs/hardware.md §9; ``a_l`` = values entering layer l, ``o_l`` = values it
produces before pooling, ``B`` = batch, ``C`` = classes, ``d_k`` = width the local loss sees):

* backprop: weights + optional master copy + gradient buffer (convention ``bp_gradient``; none when
  fused, the default) + optimiser state
  + **B * sum_l a_l** stored layer inputs, 1-bit activation-derivative masks of every hidden
  layer and pooling indices + error ping-pong buffers **2 * B * max_l o_l**;
* SPELA (a layer-local rule): weights + optional master copy + optimiser state + class vectors
  **sum_k C * d_k** (or one seed) + **B * max_k (a_k + o_k)** values in flight plus a 1-bit mask of
  one layer + one delta per sample (in place by default); no stored activations across layers, no
  error buffers; at B = 1 no gradient buffer, at B > 1 the update is formed from the rows in
  flight (or, by convention, from a one-layer gradient buffer);
* sigprop: like the local rule with ``B + B'`` rows in flight (``B' = B``, or ``C`` for the
  label-direct loss) plus the trainable front projection ``C * d_1``;
* Forward-Forward, PEPITA and DRTP are analytic rows of the same table
  (:data:`ALGORITHMS`);
* conv networks (:func:`sim.workload.spec_workload`): BatchNorm's scale and shift are trainable
  parameters (optimiser state, master copy) and its running mean and variance are stored beside
  them (at inference: one folded scale and shift); in training a BatchNorm layer also keeps its
  normalised values (backprop: stored for the backward pass; a local rule: in flight). SPELA's
  trainable per-channel projections are parameters like the weights; a fixed projection is one
  seed; a projection target's class-group table (class -> group per channel) is stored unless
  the class vectors are regenerated from a seed (it is regenerated with them).

Each rule is one :class:`~sim.algorithms.AlgorithmProfile`; adding a rule is adding a row (the
ledger tests its fields, never its name). Every ledger row
carries its formula so reports can show why a number is what it is (``sum_l`` vs ``max_k``).
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field, replace

from spela_hw.errors import ConfigError
from spela_hw.specs import DEFAULT_SR_BITS, PrecisionSpec

from .algorithms import ALGORITHMS, AlgorithmProfile
from .config import Conventions, HardwareConfig
from .units import format_bytes, parse_quantity
from .workload import MAX_CLASS_GROUPS, Workload, algorithm_profile, as_workload

__all__ = [
    "BitWidths",
    "AlgorithmProfile",
    "ALGORITHMS",
    "OPTIMIZER_STATES",
    "LedgerRow",
    "MemoryLedger",
    "MemoryBudget",
    "FitResult",
    "memory_ledger",
    "widest_network",
    "largest_batch",
    "widest_weight_bits",
    "LEVELS",
]

LEVELS = ("register", "sram", "nvm", "crossbar", "dram")
_LEVEL_NAMES = {"total": "on-chip total", "register": "registers", "sram": "SRAM", "nvm": "NVM",
                "crossbar": "crossbar cells", "dram": "DRAM"}
ON_CHIP = ("register", "sram", "nvm", "crossbar")

# Optimiser state in weight-sized copies (docs/hardware.md §8).
OPTIMIZER_STATES = {"sgd": 0, "momentum": 1, "adam": 2}


def _bits_ok(name: str, v, lo: int = 0, hi: int = 64) -> None:
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise ConfigError(name, f"must be an integer from {lo} to {hi}, got {v!r}")


@dataclass(frozen=True)
class BitWidths:
    """Storage width of every tensor class, in bits.

    Attributes
    ----------
    weight, bias, activation, error, class_vector : int
    accumulator : int
        Width of MAC accumulators (energy of the add in a MAC).
    update : int
        Width of the post-synaptic term that multiplies the input in the update.
    master : int
        Master/accumulator copy of the weights (0 = none: updates go straight to the weights).
    gradient : int
        Gradient buffer width (backprop; a local rule's one-layer buffer).
    optimizer_state : int
        Width of momentum / Adam moments (float32 in ``spela_hw``).
    sr_random_bits : int
        Random bits consumed per stochastically rounded weight update (0 = no stochastic rounding);
        ``PrecisionSpec.sr_bits`` of the trainer (default the same).
    is_float : bool
        Arithmetic is floating point (Horowitz fp costs; no crossbar).
    """

    weight: int = 8
    activation: int = 8
    accumulator: int = 32
    update: int = 16
    class_vector: int = 8
    bias: int = 0
    error: int = 0
    master: int = 0
    gradient: int = 32
    optimizer_state: int = 32
    sr_random_bits: int = DEFAULT_SR_BITS
    is_float: bool = False

    def __post_init__(self):
        for name in ("weight", "activation", "accumulator", "update", "class_vector", "gradient",
                     "optimizer_state"):
            _bits_ok(name + "_bits", getattr(self, name), 1, 64)
        for name in ("bias", "error", "master", "sr_random_bits"):
            _bits_ok(name + "_bits", getattr(self, name), 0, 64)
        if self.bias == 0:
            object.__setattr__(self, "bias", self.weight)
        if self.error == 0:
            object.__setattr__(self, "error", self.activation)
        if self.master and self.master < self.weight:
            raise ConfigError("master_bits", f"a master copy must be at least weight_bits = {self.weight}")

    @classmethod
    def from_precision(cls, precision: PrecisionSpec | None, **overrides) -> "BitWidths":
        """Widths of a :class:`~spela_hw.specs.PrecisionSpec` (float32 when ``None``)."""
        if precision is None or not precision.is_fixed:
            base = dict(weight=32, activation=32, accumulator=32, update=32, class_vector=32, bias=32,
                        error=32, gradient=32, optimizer_state=32, sr_random_bits=0, is_float=True)
        else:
            base = dict(weight=precision.weight.bits, activation=precision.activation.bits,
                        accumulator=precision.accumulator.bits, update=precision.update.bits,
                        class_vector=precision.class_vector.bits,
                        sr_random_bits=precision.sr_bits if precision.update.rounding == "stochastic" else 0)
        base.update(overrides)
        return cls(**base)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class LedgerRow:
    """One tensor class of a ledger.

    Attributes
    ----------
    tensor_class : str
    level : str
        One of :data:`LEVELS`.
    values : int
        Number of stored values (or bits, for 1-bit masks ``bits = 1``).
    bits : int
    bytes : int
        ``ceil(values * bits / 8)``.
    formula : str
        The accounting rule with its numbers, e.g. ``"B * sum_l a_l = 50 * 1808"``.
    persistent : bool
        Lives across samples (weights, state) rather than within one step.
    note : str
    spilled : bool
        Placed in DRAM because SRAM was full (it would sit in SRAM otherwise).
    """

    tensor_class: str
    level: str
    values: int
    bits: int
    bytes: int
    formula: str
    persistent: bool
    note: str = ""
    spilled: bool = False


def _row(tensor_class, level, values, bits, formula, persistent, note=""):
    values = int(values)
    return LedgerRow(tensor_class, level, values, int(bits), -(-values * int(bits) // 8), formula,
                     persistent, note)


@dataclass(frozen=True)
class MemoryBudget:
    """Memory limits per level, each meaning one thing (bytes; ``None`` = no limit).

    ``MemoryBudget.parse("256 KiB")`` (or a bare number) limits the on-chip **SRAM**: the
    read/write working memory, which is what a "256 KB training budget" means. Weights held in
    crossbar (NVM or SRAM compute) cells do not count against it: they have their own
    ``crossbar=`` limit, as flash/ROM has ``nvm=`` and off-chip memory ``dram=``. ``total=`` caps
    the on-chip sum (registers, SRAM, NVM, crossbar cells) and must be asked for by name, e.g.
    ``"sram=256KiB,crossbar=1MiB,dram=2GiB"``. Units: :data:`sim.units.BYTE_UNITS_HELP`.
    """

    total_bytes: float | None = None
    register_bytes: float | None = None
    sram_bytes: float | None = None
    nvm_bytes: float | None = None
    crossbar_bytes: float | None = None
    dram_bytes: float | None = None

    @classmethod
    def parse(cls, text: str) -> "MemoryBudget":
        if not isinstance(text, str) or not text.strip():
            raise ConfigError("budget", f"must be a size like '256 KiB' (SRAM) or 'sram=256KiB,crossbar=1MiB', "
                                        f"got {text!r}")
        kwargs = {}
        for part in text.split(","):
            part = part.strip()
            key, _, value = part.rpartition("=")
            key = key.strip() or "sram"
            if key not in ("total",) + LEVELS:
                raise ConfigError(f"budget.{key}", f"unknown level; use one of {LEVELS} or total (on-chip sum)")
            if f"{key}_bytes" in kwargs:
                raise ConfigError(f"budget.{key}", f"given twice in {text!r}")
            # accept "256KB" as well as "256 KB"
            value = re.sub(r"^([0-9.eE+-]+)([A-Za-z])", r"\1 \2", value.strip())
            kwargs[f"{key}_bytes"] = parse_quantity(value, "bytes", f"budget.{key}")
        return cls(**kwargs)

    @classmethod
    def coerce(cls, budget) -> "MemoryBudget":
        """A budget from a string, a number of bytes (the SRAM limit), ``None`` (no limit) or itself."""
        if isinstance(budget, MemoryBudget):
            return budget
        if budget is None:
            return cls()
        if isinstance(budget, str):
            return cls.parse(budget)
        if isinstance(budget, (int, float)) and not isinstance(budget, bool):
            return cls(sram_bytes=float(budget))
        raise ConfigError("budget", f"must be a MemoryBudget, a size or None, got {budget!r}")

    def limits(self) -> dict[str, float]:
        return {k.removesuffix("_bytes"): v for k, v in asdict(self).items() if v is not None}

    def describe(self) -> str:
        return ", ".join(f"{k}={format_bytes(v)}" for k, v in self.limits().items()) or "unlimited"


@dataclass(frozen=True)
class FitResult:
    """Does a ledger fit a budget (and the hardware's own capacities)?

    ``used_bytes`` is by level after the check's placement (``total`` = on-chip sum);
    ``sram_demand_bytes`` is what the step would hold in SRAM with unlimited SRAM (monotone in
    the batch size and widths); ``spilled_bytes`` moved to DRAM because SRAM was full.
    """

    fits: bool
    reasons: tuple[str, ...]
    used_bytes: dict
    limit_bytes: dict
    sram_demand_bytes: int = 0
    spilled_bytes: int = 0

    def __bool__(self) -> bool:
        return self.fits


@dataclass(frozen=True)
class MemoryLedger:
    """Rows by tensor class and level for one algorithm, phase and configuration."""

    algorithm: str
    phase: str
    batch_size: int
    network: str
    rows: tuple[LedgerRow, ...]
    conventions: dict
    hardware: str | None = None
    capacities: dict = field(default_factory=dict)

    @property
    def peak_bytes(self) -> int:
        """Everything that is live at the worst moment of the step (rows are already peaks)."""
        return sum(r.bytes for r in self.rows)

    @property
    def on_chip_bytes(self) -> int:
        return sum(r.bytes for r in self.rows if r.level in ON_CHIP)

    def by_class(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.rows:
            out[r.tensor_class] = out.get(r.tensor_class, 0) + r.bytes
        return out

    def by_level(self) -> dict[str, int]:
        out = {lv: 0 for lv in LEVELS}
        for r in self.rows:
            out[r.level] += r.bytes
        return out

    def bytes_of(self, tensor_class: str) -> int:
        return self.by_class().get(tensor_class, 0)

    @property
    def spilled_bytes(self) -> int:
        """Bytes the placement moved to DRAM because SRAM was full (0 without a DRAM spill)."""
        return sum(r.bytes for r in self.rows if r.level == "dram")

    def unspilled(self) -> "MemoryLedger":
        """This ledger with nothing spilled: every row where it sits with unlimited SRAM."""
        rows = tuple(replace(r, level="sram", spilled=False, note=r.note.replace(_SPILL_NOTE, "").strip("; "))
                     if r.spilled else r for r in self.rows)
        return replace(self, rows=rows)

    def spilled_to(self, sram_limit: float) -> "MemoryLedger":
        """Rows re-placed for an SRAM of ``sram_limit`` bytes (largest spillable rows to DRAM)."""
        return replace(self, rows=tuple(_spill(list(self.unspilled().rows), sram_limit)))

    def fits(self, budget: MemoryBudget | str | float | int | None = None,
             allow_dram_spill: bool | None = None) -> FitResult:
        """Yes/no with reasons: the budget's limits and the hardware's level capacities.

        Parameters
        ----------
        budget : MemoryBudget, str or number, optional
            A number or ``"256 KiB"`` limits SRAM (see :class:`MemoryBudget`); crossbar cells,
            NVM and DRAM have limits of their own.
        allow_dram_spill : bool, optional
            Whether rows that overflow SRAM (the smaller of the budget's SRAM limit and the
            hardware's SRAM) may move to DRAM. Default: only when ``budget`` sets a ``dram``
            limit. When not allowed, the step is checked with everything it needs in SRAM, so
            the answer is monotone in the batch size and width (a spill cannot make a larger
            configuration "fit"). When allowed, the spill is re-done against that SRAM limit and
            the step fits if what cannot spill (weights, class vectors, ...) fits and DRAM holds
            the rest.
        """
        budget = MemoryBudget.coerce(budget)
        if allow_dram_spill is None:
            allow_dram_spill = budget.dram_bytes is not None
        elif not isinstance(allow_dram_spill, bool):
            raise ConfigError("allow_dram_spill", f"must be True, False or None, got {allow_dram_spill!r}")
        limits = budget.limits()
        demand = self.unspilled()
        sram_demand = demand.by_level()["sram"]
        sram_limit = min((x for x in (limits.get("sram"), self.capacities.get("sram")) if x is not None),
                         default=None)
        has_dram = "dram" in self.capacities
        placed = demand
        if allow_dram_spill and has_dram and sram_limit is not None and sram_demand > sram_limit:
            placed = demand.spilled_to(sram_limit)
        used = placed.by_level()
        used["total"] = placed.on_chip_bytes
        spilled = placed.spilled_bytes
        reasons = []
        top = sorted(self.by_class().items(), key=lambda kv: -kv[1])[:3]
        top_txt = ", ".join(f"{k} {format_bytes(v)}" for k, v in top if v)
        for key, lim in limits.items():
            if used[key] > lim:
                reasons.append(f"{_LEVEL_NAMES[key]} {format_bytes(used[key])} exceeds the budget {format_bytes(lim)} "
                               f"by {format_bytes(used[key] - lim)} (largest: {top_txt})")
        for key, cap in self.capacities.items():
            if used.get(key, 0) > cap:
                why = f"{_LEVEL_NAMES[key]} {format_bytes(used[key])} exceeds the hardware's {_LEVEL_NAMES[key]} capacity " \
                      f"{format_bytes(cap)}"
                if key == "sram" and has_dram and not allow_dram_spill:
                    would = demand.spilled_to(cap)
                    what = sorted({r.tensor_class for r in would.rows if r.level == "dram"})
                    why += (f": {format_bytes(would.spilled_bytes)} ({', '.join(what)}) would spill to DRAM "
                            "(allow_dram_spill=True to accept DRAM traffic)")
                reasons.append(why)
        return FitResult(not reasons, tuple(reasons), used,
                         {**limits, **{f"hw_{k}": v for k, v in self.capacities.items()}},
                         int(sram_demand), int(spilled))

    def to_records(self) -> list[dict]:
        base = {"algorithm": self.algorithm, "phase": self.phase, "batch_size": self.batch_size,
                "network": self.network, "hardware": self.hardware}
        return [{**base, **asdict(r)} for r in self.rows]


def _optimizer_kind(optimizer) -> str:
    if optimizer is None:
        return "sgd"
    if isinstance(optimizer, str):
        if optimizer not in OPTIMIZER_STATES:
            raise ConfigError("optimizer", f"must be one of {tuple(OPTIMIZER_STATES)}, got {optimizer!r}")
        return optimizer
    kind = getattr(optimizer, "kind", None)
    if kind == "sgd":
        return "momentum" if getattr(optimizer, "momentum", 0.0) > 0 else "sgd"
    if kind == "adam":
        return "adam"
    raise ConfigError("optimizer", f"unknown optimiser {optimizer!r}")


def _rule_parts(rule) -> tuple[str, object]:
    if isinstance(rule, str):
        return rule, None
    return rule.name, getattr(rule, "optimizer", None)


def memory_ledger(
    network,
    rule,
    bits: BitWidths | None = None,
    batch_size: int = 1,
    phase: str = "train",
    hardware: HardwareConfig | None = None,
    conventions: Conventions | None = None,
    optimizer=None,
    sigprop_target_rows: str | None = None,
    exit_layer: int | None = None,
    readouts: str = "all",
    n_classes: int | None = None,
) -> MemoryLedger:
    """Itemise the memory of training (or inference) with ``rule``.

    Parameters
    ----------
    network : Workload, NetworkSpec or sequence of int
    rule : rule spec or str
        A name in :data:`ALGORITHMS` or a spec with ``.name`` (its ``optimizer`` sets the
        optimiser state unless ``optimizer`` is given).
    bits : BitWidths
        Storage widths (default int8 weights and activations, no master copy).
    batch_size : int
    phase : {"train", "infer"}
    hardware : HardwareConfig, optional
        Places rows at memory levels (crossbar arrays, SRAM, NVM, DRAM spill) and supplies
        capacities; without it every row sits in SRAM except seeds (registers).
    conventions : Conventions, optional
        Defaults to ``hardware.conventions`` (or the defaults).
    optimizer : {"sgd", "momentum", "adam"} or optimiser spec, optional
    sigprop_target_rows : {"batch", "classes"}, optional
        ``B' = B`` (in-batch loss) or ``B' = C`` (label-direct, per-sample mode). Defaults to
        the rule spec's ``targets`` (for a rule given by name, its profile's ``target_rows``:
        ``"classes"``, :class:`~spela_hw.specs.Sigprop`'s default), as the closed-form counts do.
    exit_layer, readouts
        Inference: layers up to ``exit_layer`` run; class vectors of the exit layer only
        (``"exit"``) or of every layer (``"all"``, every layer can be an exit).
    """
    wl = as_workload(network, n_classes)
    bits = bits or BitWidths()
    name, rule_opt = _rule_parts(rule)
    prof = algorithm_profile(name)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError("batch_size", f"must be a positive integer, got {batch_size!r}")
    if phase not in ("train", "infer"):
        raise ConfigError("phase", f"must be 'train' or 'infer', got {phase!r}")
    if sigprop_target_rows is None:
        sigprop_target_rows = getattr(rule, "targets", prof.target_rows) if prof.target_rows else "batch"
    if sigprop_target_rows not in ("batch", "classes"):
        raise ConfigError("sigprop_target_rows", f"must be 'batch' or 'classes', got {sigprop_target_rows!r}")
    conv = conventions or (hardware.conventions if hardware is not None else Conventions())
    opt = _optimizer_kind(optimizer if optimizer is not None else rule_opt)
    B, C, Ls = batch_size, wl.n_classes, wl.layers
    rows: list[LedgerRow] = []

    if phase == "infer":
        last = len(Ls) - 1
        k_exit = last if exit_layer is None else exit_layer
        if not 0 <= k_exit <= last:
            raise ConfigError("exit_layer", f"must be in [0, {last}], got {exit_layer!r}")
        Ls = Ls[: k_exit + 1]
    W = sum(L.weights for L in Ls)
    Bs = sum(L.biases for L in Ls)
    N = sum(L.norm_params for L in Ls)
    # the projections of the layers read out (training: every layer steps on its own loss)
    read_out = Ls if (phase == "train" or readouts == "all") else Ls[-1:]
    P = sum(L.stored_projection for L in read_out) if prof.projections else 0
    trainable = W + Bs + N + P
    rows.append(_row("weights", "", W, bits.weight, f"sum_l m_l*n_l = {W}", True))
    if Bs:
        rows.append(_row("biases", "", Bs, bits.bias, f"sum_l m_l = {Bs}", True))
    if N:
        why = "scale, shift" if phase == "train" else "running statistics folded into one scale and shift"
        rows.append(_row("norm_params", "", N, bits.bias, f"sum_(BN l) 2*c_l = {N}", True, f"BatchNorm {why}"))
        if phase == "train":
            rows.append(_row("norm_statistics", "", N, bits.accumulator, f"sum_(BN l) 2*c_l = {N}", True,
                             "BatchNorm running mean and variance"))
    if P:
        terms = " + ".join(str(L.stored_projection) for L in read_out if L.stored_projection)
        rows.append(_row("projections", "", P, bits.weight, f"sum_k c_k*(h*w)_k*proj = {terms}"
                         + (f" = {P}" if "+" in terms else ""), True,
                         "SPELA CNN-extension projections (trainable)"))
    fixed = sum(L.projection_params for L in read_out if L.target == "fixed_projection") if prof.projections else 0
    if fixed:
        rows.append(_row("projections", "register", 1, 64, f"one seed instead of sum_k c_k*(h*w)_k*proj = {fixed}",
                         True, "fixed projections regenerated from (seed, layer)"))
    step = [_step_values(L, phase) for L in Ls]
    max_io = max(step)
    max_o = max(L.out_values for L in Ls)
    arg_io = max(range(len(Ls)), key=step.__getitem__)

    if phase == "train":
        if prof.targets == "front_projection":
            front = getattr(rule, "front", "concat")
            if front == "random_projection":
                rows.append(_row("front_projection", "register", 1, 64, f"one seed instead of d_0*C = "
                                 f"{wl.input_values}*{C}", True, "fixed random label projection P"))
            elif front == "learned_projection":
                d0 = wl.input_values
                rows.append(_row("front_projection", "", C * d0, bits.weight, f"d_0*C = {d0}*{C}", True,
                                 "trainable label projection P"))
                trainable += C * d0
            else:
                d1 = Ls[0].out_values
                rows.append(_row("front_projection", "", C * d1, bits.weight, f"C*d_1 = {C}*{d1}", True,
                                 "trainable label columns S"))
                trainable += C * d1
        if bits.master:
            rows.append(_row("master_copy", "", trainable, bits.master,
                             f"trainable params at {bits.master} bits = {trainable}", True))
        # gradient buffer
        if prof.global_gradient:
            if conv.bp_gradient == "buffered":
                rows.append(_row("gradient_buffer", "", trainable, bits.gradient,
                                 f"sum_l (m_l*n_l + m_l) = {trainable}", True))
            else:
                rows.append(_row("gradient_buffer", "", 0, bits.gradient, "fused into the backward pass", True))
        else:
            if B > 1 and conv.batched_local_update == "gradient_buffer":
                g = max(L.weights + L.biases for L in Ls)
                rows.append(_row("gradient_buffer", "", g, bits.gradient, f"max_k (m_k*n_k + m_k) = {g}", True,
                                 "one-layer buffer (convention batched_local_update)"))
            else:
                why = "B = 1: rank-1 update applied as it is formed" if B == 1 else \
                    "B > 1: update formed from the B rows in flight"
                rows.append(_row("gradient_buffer", "", 0, bits.gradient, why, True))
        n_state = OPTIMIZER_STATES[opt]
        rows.append(_row("optimizer_state", "", n_state * trainable, bits.optimizer_state,
                         f"{n_state} x {trainable} ({opt})", True))
        # activations
        if prof.rows == "B":
            r, rtxt = B, f"B={B}"
        elif prof.rows == "2B":
            r, rtxt = 2 * B, f"2B={2 * B}"
        else:
            bp = B if sigprop_target_rows == "batch" else C
            r, rtxt = B + bp, f"B+B'={B}+{bp}"
        if prof.stored == "inputs":
            s = sum(L.in_values for L in Ls)
            formula = f"B * sum_l a_l = {B} * {s}"
            s_bn = sum(L.out_values for L in Ls if L.norm_channels)
            if s_bn:  # BatchNorm's backward pass needs its normalised values
                formula = f"B * (sum_l a_l + sum_(BN l) o_l) = {B} * ({s} + {s_bn})"
            rows.append(_row("stored_activations", "", B * (s + s_bn), bits.activation, formula, False))
        elif prof.stored == "outputs":
            s = sum(L.out_values for L in Ls)
            rows.append(_row("stored_activations", "", B * s, bits.activation, f"B * sum_l o_l = {B} * {s}", False))
            rows.append(_row("activations_in_flight", "", r * max_io, bits.activation,
                             f"{rtxt} * max_k (a_k + o_k{_BN_TERM if N else ''}) = {r} * {max_io}", False,
                             "second (modulated) pass"))
        else:
            rows.append(_row("activations_in_flight", "", r * max_io, bits.activation,
                             f"{rtxt} * max_k (a_k + o_k{_BN_TERM if N else ''}) = {r} * {max_io}", False,
                             f"largest at {Ls[arg_io].name}"))
        if prof.masks == "hidden":
            hidden = [L for L in Ls[:-1]]
            s = sum(L.out_values for L in hidden)
            rows.append(_row("activation_masks", "", B * s, 1, f"B * sum_(hidden l) o_l = {B} * {s} bits", False))
        else:
            rows.append(_row("activation_masks", "", r * max_o, 1, f"{rtxt} * max_k o_k = {r} * {max_o} bits", False))
        pooled = [L for L in Ls if L.pool > 1]
        if pooled and prof.stored != "none":
            s = sum(L.pooled_values * math.ceil(math.log2(L.pool)) for L in pooled)
            rows.append(_row("pooling_indices", "", B * s, 1, f"B * sum_l pooled_l*log2(pool) = {B} * {s} bits", False))
        if prof.errors == "ping_pong":
            rows.append(_row("error_buffers", "", 2 * B * max_o, bits.error, f"2 * B * max_l o_l = 2 * {B} * {max_o}", False))
        elif prof.errors == "delta":
            if conv.spela_delta == "in_place" and prof.delta_in_place:
                rows.append(_row("error_buffers", "", 0, bits.error, f"delta overwrites h ({r} * {max_o} values)", False))
            else:
                rows.append(_row("error_buffers", "", r * max_o, bits.error, f"{rtxt} * max_k o_k = {r} * {max_o}", False))
        elif prof.errors == "output":
            rows.append(_row("error_buffers", "", B * C, bits.error, f"B * C = {B} * {C}", False))
        if bits.sr_random_bits:
            rows.append(_row("rng_state", "register", 2, 64, "counter-based: 64-bit key + 64-bit step", True))

    # fixed targets (class vectors, feedback matrices) and inference working set
    if prof.targets == "class_vectors":
        cv_layers = Ls if (phase == "train" or readouts == "all") else Ls[-1:]
        # a projection target stores one vector per class group of each channel (at most
        # MAX_CLASS_GROUPS), not one per class: spela_hw.conv.description counts the same
        s = sum((min(MAX_CLASS_GROUPS, C) if L.class_groups else C) * L.loss_dim for L in cv_layers)
        per_layer = "min(C, groups)*d_k" if any(L.class_groups for L in cv_layers) else "C*d_k"
        if conv.class_vector_storage == "seed":
            rows.append(_row("class_vectors", "register", 1, 64, f"one seed instead of sum_k {per_layer} = {s} values",
                             True, "regenerated from (seed, layer)"))
        else:
            rows.append(_row("class_vectors", "", s, bits.class_vector, f"sum_k {per_layer} = {s}", True))
        g = sum(L.class_groups for L in cv_layers)
        if g and conv.class_vector_storage != "seed":  # else regenerated with the class vectors
            gb = math.ceil(math.log2(MAX_CLASS_GROUPS))
            rows.append(_row("class_groups", "", g, gb, f"sum_k c_k*C = {g} group indices of {gb} bits", True,
                             "class -> group of every channel of a projection target"))
    elif phase == "infer" and prof.exit_class_vectors and len(Ls) < wl.n_layers:
        # an early exit of a backprop network reads out by cosine to class vectors (as in spela_hw)
        cv_layers = Ls if readouts == "all" else Ls[-1:]
        # a projection target stores one vector per class group of each channel (at most
        # MAX_CLASS_GROUPS), not one per class: spela_hw.conv.description counts the same
        s = sum((min(MAX_CLASS_GROUPS, C) if L.class_groups else C) * L.loss_dim for L in cv_layers)
        rows.append(_row("class_vectors", "", s, bits.class_vector, f"sum_(exits k) C*d_k = {s}", True,
                         "early-exit read-out"))
    elif prof.targets in ("drtp_feedback", "pepita_feedback") and phase == "train":
        if prof.targets == "drtp_feedback":
            s = sum(C * L.out_values for L in Ls[:-1])
            f = "sum_(l<L) C*o_l"
        else:
            s = wl.input_values * C
            f = "d_0*C"
        if conv.class_vector_storage == "seed":
            rows.append(_row("feedback_matrices", "register", 1, 64, f"one seed instead of {f} = {s}", True))
        else:
            rows.append(_row("feedback_matrices", "", s, bits.class_vector, f"{f} = {s}", True))
    if phase == "infer":
        rows.append(_row("activations_in_flight", "", B * max_io, bits.activation,
                         f"B * max_k (a_k + o_k) = {B} * {max_io}", False))
    rows.append(_row("io_staging", "", wl.input_values, bits.activation,
                     f"next input sample = {wl.input_values}", False))

    rows, caps = _place(rows, hardware, conv, phase)
    return MemoryLedger(name, phase, B, wl.name, tuple(rows), {**conv.describe(), "optimizer": opt},
                        hardware.name if hardware is not None else None, caps)


#: The normalised values a BatchNorm layer keeps for its backward pass, in the working-set formula.
_BN_TERM = " + o_k if BN"


def _step_values(L, phase: str) -> int:
    """Values one layer holds while it steps: input and output, plus BatchNorm's normalised values
    in training (its backward pass needs them; at inference it is folded into a scale and shift)."""
    return L.in_values + L.out_values + (L.out_values if L.norm_channels and phase == "train" else 0)


_SPILLABLE = ("stored_activations", "activations_in_flight", "activation_masks", "pooling_indices", "error_buffers",
              "gradient_buffer", "optimizer_state", "master_copy")


def _place(rows: list[LedgerRow], hw: HardwareConfig | None, conv: Conventions, phase: str):
    """Assign memory levels; spill the largest spillable SRAM rows to DRAM when SRAM overflows."""
    caps: dict[str, float] = {}
    has_xbar = hw is not None and hw.has_crossbar
    nvm = hw.nvm if hw is not None else None
    if hw is not None:
        caps["sram"] = sum(b.size_bytes for b in hw.buffers if b.writable)
        if nvm is not None:
            caps["nvm"] = sum(b.size_bytes for b in hw.buffers if not b.writable)
    out = []
    for r in rows:
        level = r.level
        if not level:
            if r.tensor_class == "weights":
                if has_xbar:
                    level = "crossbar"
                elif phase == "infer" and nvm is not None:
                    level = "nvm"  # a digital device can run inference from flash
                else:
                    level = "sram"
            elif r.tensor_class in ("class_vectors", "feedback_matrices"):
                st = conv.class_vector_storage
                if st == "crossbar":
                    if not has_xbar:
                        raise ConfigError("conventions.class_vector_storage", "'crossbar' needs a crossbar")
                    level = "crossbar"
                elif st == "nvm":
                    if nvm is not None:
                        level = "nvm"
                    elif has_xbar and hw.crossbar.device.is_nonvolatile:
                        level = "crossbar"
                    elif hw is None:
                        level = "nvm"
                    else:
                        raise ConfigError("conventions.class_vector_storage",
                                          f"'nvm' needs a flash/ROM level or non-volatile arrays on {hw.name!r}")
                else:
                    level = "sram"
            else:
                level = "sram"
        out.append(replace(r, level=level))
    if hw is not None and hw.dram.present:
        caps["dram"] = hw.dram.size_bytes or math.inf
        out = _spill(out, caps["sram"])
    return out, caps


_SPILL_NOTE = "spilled to DRAM (SRAM full)"


def _spill(rows: list[LedgerRow], sram_limit: float) -> list[LedgerRow]:
    """Move the largest spillable SRAM rows to DRAM until SRAM holds at most ``sram_limit`` bytes."""
    sram_used = sum(r.bytes for r in rows if r.level == "sram")
    order = sorted((i for i, r in enumerate(rows) if r.tensor_class in _SPILLABLE and r.level == "sram" and r.bytes),
                   key=lambda i: -rows[i].bytes)
    out = list(rows)
    for i in order:
        if sram_used <= sram_limit:
            break
        sram_used -= out[i].bytes
        out[i] = replace(out[i], level="dram", spilled=True,
                         note=(out[i].note + "; " if out[i].note else "") + _SPILL_NOTE)
    return out


# -- solvers ------------------------------------------------------------------------------------


def widest_network(
    dims_pattern,
    budget,
    rule,
    bits: BitWidths | None = None,
    batch_size: int = 1,
    hardware: HardwareConfig | None = None,
    n_classes: int | None = None,
    include: tuple[str, ...] | None = None,
    max_width: int = 1 << 20,
    allow_dram_spill: bool | None = None,
    **kw,
) -> int:
    """The largest width ``h`` for the ``None`` entries of ``dims_pattern`` that fits ``budget``.

    ``dims_pattern = (784, None, 10)`` searches 784-h-10. ``include`` restricts the ledger to
    some tensor classes (``("weights",)`` answers "whose weights alone fit": 330 for 784-h-10 in
    256 KiB at int8). Returns 0 when even ``h = 1`` does not fit. ``allow_dram_spill`` as in
    :meth:`MemoryLedger.fits` (default: on chip only, unless the budget limits DRAM).
    """
    pattern = tuple(dims_pattern)
    if None not in pattern:
        raise ConfigError("dims_pattern", "needs at least one None entry (the width to solve for)")
    budget = MemoryBudget.coerce(budget)
    n_cls = n_classes or pattern[-1]

    def ok(h: int) -> bool:
        dims = tuple(h if d is None else d for d in pattern)
        led = memory_ledger(Workload.dense(dims, n_cls), rule, bits, batch_size, "train", hardware, **kw)
        if include is not None:
            led = replace(led, rows=tuple(r for r in led.rows if r.tensor_class in include))
        return led.fits(budget, allow_dram_spill).fits

    return _bisect(ok, 1, max_width)


def largest_batch(network, budget, rule, bits: BitWidths | None = None, hardware: HardwareConfig | None = None,
                  max_batch: int = 1 << 16, allow_dram_spill: bool | None = None, **kw) -> int:
    """The largest batch size whose training ledger fits ``budget`` and the hardware (0 if none).

    By default the step must fit on chip: a batch whose rows spill to DRAM does not fit
    (``allow_dram_spill=True``, or a budget with a ``dram`` limit, accepts the spill; the answer
    is then a capacity, not an on-chip working set). ``budget=None`` checks the hardware's
    capacities only.
    """
    budget = MemoryBudget.coerce(budget)
    return _bisect(lambda b: memory_ledger(network, rule, bits, b, "train", hardware, **kw)
                   .fits(budget, allow_dram_spill).fits, 1, max_batch)


def widest_weight_bits(network, budget, rule, bits: BitWidths | None = None, batch_size: int = 1,
                       hardware: HardwareConfig | None = None, max_bits: int = 16,
                       allow_dram_spill: bool | None = None, **kw) -> int:
    """The widest weight format (``<= max_bits``) that fits, i.e. the fewest bits given up (0 if none)."""
    bits = bits or BitWidths()
    budget = MemoryBudget.coerce(budget)

    def ok(b: int) -> bool:
        bw = replace(bits, weight=b, bias=b if bits.bias == bits.weight else bits.bias,
                     master=max(bits.master, b) if bits.master else 0)
        return memory_ledger(network, rule, bw, batch_size, "train", hardware, **kw).fits(budget, allow_dram_spill).fits

    return _bisect(ok, 1, max_bits)


def _bisect(ok, lo: int, hi: int) -> int:
    """Largest x in [lo, hi] with ok(x) for a monotone (true then false) predicate; 0 if none."""
    if not ok(lo):
        return 0
    if ok(hi):
        return hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if ok(mid):
            lo = mid
        else:
            hi = mid
    return lo
