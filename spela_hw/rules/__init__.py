"""Learning rules as backend-agnostic orchestration of the ops primitives.

Every rule module exposes ``train_batch(state, ops, rule, x, y, lr, counts, device=None)``
(one update step on one mini-batch, ``x`` already in the backend's input representation) and the
rules share inference and counting from :mod:`spela_hw.rules.common`.
"""

from __future__ import annotations

from ..errors import ConfigError
from . import backprop, sigprop, spela

_TRAINERS = {"spela": spela.train_batch}
_TRAINERS["backprop"] = backprop.train_batch
_TRAINERS["sigprop"] = sigprop.train_batch
# Rules with parameters of their own (sigprop's label front) create them at initialisation.
_INIT_EXTRA = {"sigprop": sigprop.init_extra}


def trainer_for(rule):
    """The ``train_batch`` function of a rule spec."""
    try:
        return _TRAINERS[rule.name]
    except (KeyError, AttributeError):
        raise ConfigError("rule", f"no trainer for rule {rule!r}") from None


def init_rule_state(state, ops, rule, rng) -> None:
    """Create a rule's own parameters in ``state.extra`` (nothing for rules without any)."""
    init = _INIT_EXTRA.get(getattr(rule, "name", None))
    if init is not None:
        init(state, ops, rule, rng)
