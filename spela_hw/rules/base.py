"""The protocol every learning rule implements, and the one registry from rule specs to rules.

A rule spec (:class:`~spela_hw.specs.Spela`, :class:`~spela_hw.specs.Backprop`,
:class:`~spela_hw.specs.Sigprop`) describes a rule; a :class:`Rule` runs it. Implementations are
stateless: every call gets the spec (``rule``), the network's mutable ``state``
(:class:`~spela_hw.network.NetworkState`) and the backend's primitives (``ops``). A rule with
parameters of its own (sigprop's label front) keeps them in ``state.extra`` and writes them to
model files through :meth:`Rule.state_arrays`.

:mod:`spela_hw.rules` registers the rules of the toolkit; :func:`rule_for` finds the one of a spec.
This module imports no rule, so every rule module (and :mod:`spela_hw.rules.common`) may import it.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from ..errors import ConfigError

__all__ = ["RULE_KEY", "Rule", "class_vector_readout", "register", "rule_for"]

#: ``state.extra[RULE_KEY]`` is the spec of the rule that initialised the state
#: (:func:`spela_hw.rules.init_rule_state`): read-outs that get only the state find its rule there.
RULE_KEY = "rule"


def class_vector_readout(state, ops, k: int, h: np.ndarray, counts=None) -> tuple[np.ndarray, np.ndarray]:
    """Cosine read-out at layer ``k``: (predicted class indices, scores ``(B, N)``).

    The argmax of ``V h`` equals the argmax of the cosine (the factor 1/|h| is common); ties go
    to the lowest index; an all-zero ``h`` predicts class 0 and is counted as a zero-norm event.
    """
    scores = ops.readout(h, state.vectors[k])
    pred = np.argmax(scores, axis=1)
    if counts is not None:
        nb, m = h.shape
        n_cls = state.vectors[k].shape[0]
        counts.data["readout_macs"][k] += nb * n_cls * m
        counts.data["class_vector_reads"][k] += nb * n_cls * m
        counts.data["zero_norm_events"][k] += int(np.count_nonzero(~h.any(axis=1)))
    return pred, scores


class Rule:
    """What the estimator, the model files and the read-out ask of a learning rule.

    A subclass sets :attr:`spec_type` and implements :meth:`train_batch`; every other method has
    a default that suits a rule without parameters of its own, trained one mini-batch at a time
    and read out by the cosine to the class vectors at every layer. The rule modules bind their
    module-level functions as static methods, so the same functions stay callable directly.
    """

    #: The spec class this rule runs (the registry's key).
    spec_type: ClassVar[type]

    def init_state(self, state, ops, rule, rng: np.random.Generator) -> None:
        """Create the rule's own parameters in ``state.extra`` (none by default)."""

    def train_batch(self, state, ops, rule, x, y, lr: float, counts, device=None) -> None:
        """One update step of every layer on the mini-batch ``(x, y)``.

        ``x`` is in the backend's input representation, ``y`` holds class indices; the step adds
        what it executed to ``counts`` and advances ``state.update_step``.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement train_batch")

    def train_chunk(self, state, ops, rule, x, y, lr: float, batch_size: int, counts, device=None) -> None:
        """Consecutive steps of ``batch_size`` samples over the chunk ``(x, y)``, in order (by
        default :meth:`train_batch` on each slice; a rule may run the whole chunk at once)."""
        for s0 in range(0, len(y), batch_size):
            self.train_batch(state, ops, rule, x[s0:s0 + batch_size], y[s0:s0 + batch_size], lr, counts,
                             device=device)

    def state_arrays(self, state) -> dict[str, np.ndarray]:
        """The rule's own parameters as named arrays for a model file (none by default)."""
        return {}

    def restore_state(self, state, arrays: dict) -> None:
        """Inverse of :meth:`state_arrays`, after :meth:`init_state` (nothing by default)."""

    def logit_readout(self, rule) -> bool:
        """Whether the last layer is read out by the argmax of its logits (its pre-activation)."""
        return False

    def readout_layers(self, rule, n_layers: int) -> tuple[int, ...]:
        """Layers (0-based) whose read-out the rule trains (every layer by default)."""
        return tuple(range(n_layers))

    readout_predictions = staticmethod(class_vector_readout)


_RULES: dict[type, Rule] = {}


def register(*rules: Rule) -> None:
    """Make each rule the implementation of its :attr:`~Rule.spec_type`."""
    for r in rules:
        _RULES[r.spec_type] = r


def rule_for(rule) -> Rule:
    """The implementation of a rule spec; :class:`~spela_hw.errors.ConfigError` for anything else."""
    impl = _RULES.get(type(rule))
    if impl is None:
        raise ConfigError("rule", f"no trainer for rule {rule!r}")
    return impl
