"""The rule protocol: one registry from every rule spec to its implementation, and no import cycle
between the shared rule modules and the rules."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from spela_hw.backends import make_ops
from spela_hw.errors import ConfigError
from spela_hw.network import init_network
from spela_hw.rules import Rule, init_rule_state, rule_for, sigprop
from spela_hw.rules.base import class_vector_readout
from spela_hw.rules.common import readout_layers, readout_predictions, uses_logit_readout
from spela_hw.specs import RULES, Backprop, NetworkSpec, PrecisionSpec, Sigprop, Spela

RULES_DIR = Path(__file__).resolve().parents[1] / "spela_hw" / "rules"


def test_every_rule_spec_has_one_implementation():
    for name, spec_type in RULES.items():
        impl = rule_for(spec_type())
        assert isinstance(impl, Rule) and impl.spec_type is spec_type, name
    with pytest.raises(ConfigError) as e:
        rule_for("spela")
    assert e.value.field == "rule"


@pytest.mark.parametrize("module", ["base.py", "common.py"])
def test_shared_rule_modules_import_no_rule(module):
    """``base`` and ``common`` sit below the rules (common used to import sigprop, which imports it)."""
    tree = ast.parse((RULES_DIR / module).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            imported |= {node.module} if node.module else {a.name for a in node.names}
    assert not imported & {"spela", "backprop", "sigprop", "optim"}, imported


def test_read_out_layers_and_logits_come_from_the_rule():
    assert readout_layers(Spela(), 3) == (0, 1, 2) and readout_layers(Backprop(), 3) == (2,)
    assert readout_layers(Sigprop(), 3) == (0, 1, 2)
    assert not uses_logit_readout(Spela()) and uses_logit_readout(Backprop())
    assert uses_logit_readout(Sigprop()) and not uses_logit_readout(Sigprop(inference="target_matching"))


def test_a_state_is_read_out_by_the_rule_that_initialised_it():
    spec = NetworkSpec((6, 5, 3), n_classes=3, activation="tanh")
    h = np.random.default_rng(0).normal(size=(4, 5)).astype(np.float32)
    outs = {}
    for rule in (Spela(), Sigprop(inference="target_matching")):
        ops = make_ops("reference", PrecisionSpec(), spec)
        state = init_network(spec, PrecisionSpec(), ops, "auto", 1, 2, rng=np.random.default_rng(3))
        init_rule_state(state, ops, rule, np.random.default_rng(4))
        outs[rule.name] = (state, ops, readout_predictions(state, ops, 0, h)[1])
    state, ops, scores = outs["spela"]
    np.testing.assert_array_equal(scores, class_vector_readout(state, ops, 0, h)[1])
    state, ops, scores = outs["sigprop"]
    np.testing.assert_array_equal(scores, sigprop.readout_predictions(state, ops, 0, h)[1])
    assert not np.allclose(scores, class_vector_readout(state, ops, 0, h)[1])
