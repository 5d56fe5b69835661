"""What a learner executed, counted per layer: the data that the hardware model prices.

Counts are data, not energy. Every backend fills the same counters for the same code path, so
that ``sim`` can multiply them by an energy table. All counters are exact integers per layer.

Counter meanings (per layer, summed over the samples seen):

=======================  ===========================================================================
forward_macs             multiply-accumulates of ``W x`` (dense: fan_out * fan_in per sample)
forward_macs_nonzero     those whose input activation is non-zero (what a zero-skipping engine runs)
target_macs              MACs of a second (target) stream through the same weights: sigprop's label
                         stream ``W t`` (its activation traffic is in act_reads / act_writes)
loss_macs                MACs of the local loss unit (``|h|^2`` and ``h . v_y``: 2 * fan_out)
readout_macs             MACs of the cosine read-out ``V h`` (n_classes * fan_out per read-out)
update_macs              multiplies of the weight update (outer product, fan_out * fan_in per sample)
update_macs_nonzero      those with a non-zero pre-synaptic input and non-zero post-synaptic term
error_macs               MACs propagating errors backwards (``W^T delta``; backprop only)
weight_reads             weight and bias reads (forward, plus read-modify-write of every update)
weight_writes            weight and bias write-backs of a dense read-modify-write update
update_writes            weights and biases whose stored value actually changed
act_reads                activation buffer reads (layer inputs for forward and update, stored
                         activations for backprop)
act_writes               activation buffer writes (layer outputs, error/post-synaptic terms,
                         stored activations for backprop)
class_vector_reads       class-vector entries read (v_y when training, all of V for a read-out)
loss_unit_ops            scalar operations of the loss unit (square roots, divisions)
saturations              values clipped (or wrapped) by a fixed-point format
zero_norm_events         samples whose output was exactly zero (no cosine; update skipped)
=======================  ===========================================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["COUNTERS", "Counts"]

COUNTERS = (
    "forward_macs",
    "forward_macs_nonzero",
    "target_macs",
    "loss_macs",
    "readout_macs",
    "update_macs",
    "update_macs_nonzero",
    "error_macs",
    "weight_reads",
    "weight_writes",
    "update_writes",
    "act_reads",
    "act_writes",
    "class_vector_reads",
    "loss_unit_ops",
    "saturations",
    "zero_norm_events",
)


@dataclass
class Counts:
    """Per-layer operation counters of one phase (``"train"`` or ``"infer"``).

    Attributes
    ----------
    n_layers : int
    phase : str
    precision : str
        Operand precision of the MACs, e.g. ``"fp32"`` or ``"w8a16"`` (see ``bits``).
    bits : dict
        Bit widths by operand (``weight``, ``activation``, ``accumulator``, ``class_vector``,
        ``update``); 32 for float32.
    samples : int
        Samples processed.
    update_steps : int
        Weight-update steps (one per mini-batch).
    data : dict of str to ndarray
        One int64 array of length ``n_layers`` per counter in :data:`COUNTERS`.
    """

    n_layers: int
    phase: str = "train"
    precision: str = "fp32"
    bits: dict = field(default_factory=dict)
    samples: int = 0
    update_steps: int = 0
    data: dict = field(default_factory=dict)

    def __post_init__(self):
        for name in COUNTERS:
            self.data.setdefault(name, np.zeros(self.n_layers, dtype=np.int64))

    def add(self, name: str, layer: int, value) -> None:
        self.data[name][layer] += int(value)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.data[name]

    def merge(self, other: "Counts") -> "Counts":
        """Add ``other``'s counters into this object (same layers and phase) and return it."""
        if other.n_layers != self.n_layers or other.phase != self.phase:
            raise ValueError("can only merge counts of the same network and phase")
        for name in COUNTERS:
            self.data[name] += other.data[name]
        self.samples += other.samples
        self.update_steps += other.update_steps
        return self

    def per_sample(self) -> dict[str, np.ndarray]:
        """Counters divided by the number of samples (float64 per layer)."""
        n = max(self.samples, 1)
        return {k: v / n for k, v in self.data.items()}

    def totals(self) -> dict[str, int]:
        """Counters summed over layers."""
        return {k: int(v.sum()) for k, v in self.data.items()}

    def to_dict(self) -> dict:
        """JSON-ready representation (lists of ints)."""
        return {
            "n_layers": self.n_layers,
            "phase": self.phase,
            "precision": self.precision,
            "bits": dict(self.bits),
            "samples": self.samples,
            "update_steps": self.update_steps,
            "data": {k: [int(x) for x in v] for k, v in self.data.items()},
        }

    @classmethod
    def from_dict(cls, d: dict) -> "Counts":
        data = {k: np.asarray(v, dtype=np.int64) for k, v in d["data"].items()}
        return cls(d["n_layers"], d["phase"], d["precision"], dict(d["bits"]), d["samples"],
                   d["update_steps"], data)
