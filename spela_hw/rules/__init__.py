"""Learning rules as backend-agnostic orchestration of the ops primitives.

Every rule implements the protocol :class:`~spela_hw.rules.base.Rule` (init its own state, train a
mini-batch, train a chunk, state arrays for model files and their restore, read-out) in its own
module (:mod:`~spela_hw.rules.spela`, :mod:`~spela_hw.rules.backprop`,
:mod:`~spela_hw.rules.sigprop`), registered here: :func:`~spela_hw.rules.base.rule_for` finds the
implementation of a rule spec. The functions below are what the estimator and the model files
call; the rules share inference and counting from :mod:`spela_hw.rules.common`.
"""

from __future__ import annotations

from . import backprop, sigprop, spela
from .base import RULE_KEY, Rule, register, rule_for

__all__ = ["Rule", "init_rule_state", "restore_rule_state", "rule_for", "rule_state_arrays", "train_chunk",
           "trainer_for"]

register(spela.SpelaRule(), backprop.BackpropRule(), sigprop.SigpropRule())


def trainer_for(rule):
    """The ``train_batch`` function of a rule spec."""
    return rule_for(rule).train_batch


def init_rule_state(state, ops, rule, rng) -> None:
    """Record the rule in ``state.extra`` and create its own parameters (nothing for rules
    without any)."""
    impl = rule_for(rule)
    state.extra[RULE_KEY] = rule
    impl.init_state(state, ops, rule, rng)


def rule_state_arrays(rule, state) -> dict:
    """A rule's own parameters as named arrays for a model file (empty for rules without any)."""
    return rule_for(rule).state_arrays(state)


def restore_rule_state(rule, state, arrays: dict) -> None:
    """Inverse of :func:`rule_state_arrays` (after :func:`init_rule_state`)."""
    rule_for(rule).restore_state(state, arrays)


def train_chunk(state, ops, rule, x, y, lr: float, batch_size: int, counts, device=None) -> None:
    """Consecutive update steps of ``batch_size`` samples over the chunk ``(x, y)``, in order."""
    rule_for(rule).train_chunk(state, ops, rule, x, y, lr, batch_size, counts, device=device)
