"""Learning rules as backend-agnostic orchestration of the ops primitives.

Every rule module exposes ``train_batch(state, ops, rule, x, y, lr, counts, device=None)``
(one update step on one mini-batch, ``x`` already in the backend's input representation) and the
rules share inference and counting from :mod:`spela_hw.rules.common`.
"""

from __future__ import annotations

from ..errors import ConfigError
from . import backprop, spela

_TRAINERS = {"spela": spela.train_batch}
_TRAINERS["backprop"] = backprop.train_batch


def trainer_for(rule):
    """The ``train_batch`` function of a rule spec."""
    try:
        return _TRAINERS[rule.name]
    except (KeyError, AttributeError):
        raise ConfigError("rule", f"no trainer for rule {rule!r}") from None
