"""Outputs of a spiking run: accuracy at every read-out and per-sample counts that ``sim`` prices.

Counts are plain dicts of floats (per sample), never Brian2 objects, so ``sim`` can price them
without importing ``mappings``. Names (per layer, per sample):

====================  ==========================================================================
input_spikes          spikes arriving at the layer (from the input code or the layer before)
synaptic_ops          input_spikes x out-degree: one accumulate per spike and target neuron
plasticity_updates    synaptic ops while the learning gate was open (each is a weight update);
                      the simulator also runs the statement with the gate closed (adding 0),
                      which hardware would skip, so only gated ones are counted
output_spikes         spikes emitted by the layer (the whole sample, rest included)
neuron_updates        neurons x time steps (clock-driven membrane and trace updates)
bias_updates          neurons x gated steps (the bias integrates the error while the gate is open)
error_evaluations     neurons x steps of the error ``delta`` (training only)
normaliser_macs       2 x neurons x steps: the two layer-wide sums (training only)
normaliser_ops        3 x steps: one square root and two divisions per step (training only)
class_vector_reads    neurons x steps of ``e`` while training; n_classes x units per read-out
readout_macs          n_classes x units: cosine read-out of the spike counts (once per sample)
====================  ==========================================================================
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

__all__ = ["SpikingResult", "readout", "spike_counts"]

COUNT_NAMES = ("input_spikes", "synaptic_ops", "plasticity_updates", "output_spikes", "neuron_updates",
               "bias_updates", "error_evaluations", "normaliser_macs", "normaliser_ops",
               "class_vector_reads", "readout_macs")


def readout(counts: np.ndarray, codes: np.ndarray, on_off: bool = False,
            off_gain: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Cosine read-out of spike counts: ``(predictions, silent)``.

    ``argmax_c cos(count, e_c) = argmax_c e_c . count`` (the positive factor 1/|count| does not
    change the argmax); ties go to the lowest index and an all-silent sample is class 0 (flagged in
    ``silent``). Under ON/OFF pairs the signed output ``count_on - off_gain * count_off`` is read
    (``off_gain`` is 1 for learned pairs; a converted LeakyReLU layer uses its slope times the
    ratio of its OFF and ON scales).
    """
    if on_off:
        m = counts.shape[1] // 2
        counts = counts[:, :m] - off_gain * counts[:, m:]
    scores = counts @ codes.T
    silent = ~np.any(counts != 0, axis=1)
    pred = np.argmax(scores, axis=1)
    pred[silent] = 0
    return pred, silent


def spike_counts(raw, schedule, plans, config, n_classes: int, learn: bool) -> dict:
    """Per-sample counts of each phase (``train``/``test``), per layer and in total."""
    enc, dt = config.encoding, config.backend.dt_ms
    steps = int(round(enc.sample_ms / dt))
    gate_steps = int(round(enc.gate_ms / dt))
    out = {}
    for phase, n in (("train", schedule.n_train), ("test", schedule.n_test)):
        if n == 0:
            continue
        layers = []
        pre = "input"
        for k, plan in enumerate(plans, start=1):
            m = plan.n_neurons
            units = plan.codes.shape[1]
            inp = raw.spikes[pre][phase] / n
            row = dict.fromkeys(COUNT_NAMES, 0.0)
            row.update(layer=k, fan_in=int(plan.weights.shape[1]), fan_out=int(m),
                       input_spikes=inp, synaptic_ops=inp * m,
                       output_spikes=raw.spikes[f"layer{k}"][phase] / n,
                       neuron_updates=float(m * steps), readout_macs=float(n_classes * units))
            row["class_vector_reads"] = float(n_classes * units)
            if phase == "train" and learn:
                row.update(plasticity_updates=raw.spikes[pre]["gated"] / n * m,
                           bias_updates=float(m * gate_steps), error_evaluations=float(m * steps),
                           normaliser_macs=float(2 * m * steps), normaliser_ops=float(3 * steps))
                row["class_vector_reads"] += float(m * steps)
            layers.append(row)
            pre = f"layer{k}"
        total = {name: float(sum(r[name] for r in layers)) for name in COUNT_NAMES}
        out[phase] = {"samples": int(n), "layers": layers, "total": total}
    return out


@dataclass(frozen=True)
class SpikingResult:
    """What one spiking run measured.

    Attributes
    ----------
    mode : {"train", "inference"}
    layer_accuracy : tuple of float
        Test accuracy of the spike-count read-out at every layer (first layer first).
    rate_twin_accuracy : tuple of float or None
        Test accuracy of the same weights evaluated noise-free with the LIF rate function; the gap
        to ``layer_accuracy`` is read-out noise, the gap of this to a rate model learning error.
    online_accuracy : list of dict
        Learning curve: accuracy of the spike read-out on training samples *while learning*, per
        block of samples (``{"samples_seen", "accuracy": [per layer]}``).
    silent_fraction : tuple of float
        Test samples on which a layer emitted no spike (predicted as class 0).
    counts : dict
        Per-sample counts by phase (:func:`spike_counts`), for ``sim.spiking_energy``.
    target, wall_s, build_s, sim_s :
        Brian2 target and timings (``build_s``/``sim_s`` for ``cpp_standalone`` only).
    info : dict
        Configuration, sign policy, class-code kind and sample counts, for the record.
    """

    mode: str
    layer_accuracy: tuple
    rate_twin_accuracy: tuple | None
    online_accuracy: list
    silent_fraction: tuple
    counts: dict
    target: str
    wall_s: float
    build_s: float | None
    sim_s: float | None
    info: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return asdict(self)
