"""Training recipes: the published SPELA and the measured sigprop recipes, as named estimator
presets (``Classifier.from_preset``, ``spela-hw train --preset``).

Not to be confused with the hardware presets of :mod:`sim.presets`.

The two SPELA recipes:

=================  ====================================  ======================================
setting            ``official-code``                     ``paper-v2``
=================  ====================================  ======================================
shape (MNIST)      784-1024-10                           784-1000-34
loss               mean log(2 - cos)                     mean -cos
input L2 norm      none                                  every layer, training and inference
                                                         (Algorithm 1; the literal text omits it
                                                         at inference: ``input_norm="paper_literal"``)
init               He-uniform, bias U(+-1/sqrt(fan_in))  He-normal, bias U(+-1/sqrt(fan_in))
optimiser          SGD 2.5, -0.1 every 10 epochs         SGD 0.01, constant
epochs             200                                   100 (Fig. 2)
batch              50, mean reduction, no shuffle        1 (per sample; Algorithm 1 has no batch
                                                         loop), reshuffled every epoch (seeded)
activation         LeakyReLU(0.001)                      LeakyReLU(0.001) (not stated in v2)
class vectors      rotated simplex per layer             rotated simplex per layer
=================  ====================================  ======================================

Both read out at every layer. See ``docs/spela.md`` §1.9 for the sources.

The two ``sigprop-*`` presets are the measured sigprop recipes (bench/RESULTS.md, "Sigprop
(issue 7)"), both 784-1024-10 with the label columns concatenated at the front (``concat``), the
label-direct in-batch cross-entropy against the ``C`` class rows (``targets="classes"``) and a
locally trained output layer, 10 epochs, reshuffled: ``sigprop-sgd`` is plain per-layer SGD 0.05,
batch 32, halved every 5 epochs (no optimiser state, the on-chip path); ``sigprop-adam`` is one Adam
per layer at the official code's rate 5e-4, batch 128. In 8-bit, ``sigprop-sgd`` stays within 1.5
points of float32 with ``PrecisionSpec.fixed(8, weight_range=0.5)`` (at the default range 0.25 its
Fashion-MNIST layer-1 read-out loses 1.7); ``sigprop-adam`` does at the default range.

``TRAIN_DEFAULTS`` is what ``spela-hw train`` trains without ``--preset``: per sample, 3 epochs,
the rule's own optimiser; SPELA 784-1024-34. Its 34-wide output layer holds the 10 class vectors
in 34 dimensions as the paper's v2 shape does: a 10-wide one read out 79.7 +- 3.3 % after 3 epochs
on the bundled data (seeds 0-2: 77.6, 83.4, 77.9; 25.6 % on seed 0 after one epoch) while layer 1
read out 90.0 %; 34 wide it reads out 92.9 +- 0.9 % (MNIST: 93.2 +- 0.6 % against 91.0 % at
layer 1). The hidden layer learns alone, so its read-out does not change. Backprop and sigprop
read their last layer out by its logits: one unit per class.
"""

from __future__ import annotations

from .errors import ConfigError
from .specs import Adam, Sgd, Sigprop, Spela

__all__ = ["PRESETS", "TRAIN_DEFAULTS", "default_params", "preset_params"]

PRESETS: dict[str, dict] = {
    "official-code": dict(
        layer_sizes=(1024, 10),
        rule=Spela(loss="log_2_minus_cos", input_norm="off",
                   optimizer=Sgd(lr=2.5, step_every=10, step_delta=0.1)),
        activation="leaky_relu", slope=0.001, init="he_uniform", bias_init="uniform_fan_in",
        batch_size=50, epochs=200, shuffle=False,
    ),
    "paper-v2": dict(
        layer_sizes=(1000, 34),
        rule=Spela(loss="neg_cos", input_norm="every_layer", optimizer=Sgd(lr=0.01)),
        activation="leaky_relu", slope=0.001, init="he_normal", bias_init="uniform_fan_in",
        batch_size=1, epochs=100, shuffle=True,
    ),
    "sigprop-sgd": dict(
        layer_sizes=(1024, 10),
        rule=Sigprop(front="concat", loss="in_batch_ce", targets="classes", inference="output_layer",
                     optimizer=Sgd(lr=0.05, step_every=5, step_gamma=0.5)),
        activation="leaky_relu", slope=0.001, init="he_uniform", bias_init="uniform_fan_in",
        batch_size=32, epochs=10, shuffle=True,
    ),
    "sigprop-adam": dict(
        layer_sizes=(1024, 10),
        rule=Sigprop(front="concat", loss="in_batch_ce", targets="classes", inference="output_layer",
                     optimizer=Adam(lr=5e-4)),
        activation="leaky_relu", slope=0.001, init="he_uniform", bias_init="uniform_fan_in",
        batch_size=128, epochs=10, shuffle=True,
    ),
}


#: What ``spela-hw train`` trains when no ``--preset`` is given, per rule (module docstring).
TRAIN_DEFAULTS: dict[str, dict] = {
    "spela": dict(layer_sizes=(1024, 34), epochs=3),
    "backprop": dict(layer_sizes=(1024, 10), epochs=3),
    "sigprop": dict(layer_sizes=(1024, 10), epochs=3),
}


def default_params(rule: str) -> dict:
    """Estimator parameters of ``spela-hw train --rule RULE`` without ``--preset``."""
    if rule not in TRAIN_DEFAULTS:
        raise ConfigError("rule", f"must be one of {tuple(TRAIN_DEFAULTS)}, got {rule!r}")
    return dict(TRAIN_DEFAULTS[rule])


def preset_params(name: str, **overrides) -> dict:
    """Estimator parameters of preset ``name`` with ``overrides`` applied."""
    if name not in PRESETS:
        raise ConfigError("preset", f"must be one of {tuple(PRESETS)}, got {name!r}")
    return {**PRESETS[name], **overrides}
