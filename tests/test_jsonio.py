"""The project's one JSON writer (``spela_hw.jsonio``): strict JSON from every command."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from reports.cli import main
from spela_hw import jsonio


def strict_loads(text: str):
    """``json.loads`` that refuses the non-JSON tokens NaN, Infinity and -Infinity."""
    def refuse(token):
        raise ValueError(f"not JSON: {token}")

    return json.loads(text, parse_constant=refuse)


def test_non_finite_floats_have_an_explicit_representation():
    doc = {"nan": math.nan, "np_nan": np.float32("nan"), "inf": math.inf, "ninf": -np.inf, "x": np.float64(0.5),
           "n": np.int64(3), "flag": np.bool_(True), "arr": np.array([1.0, np.nan]), "path": Path("a/b"),
           np.int64(7): (1, 2)}
    back = strict_loads(jsonio.dumps(doc))
    assert back == {"nan": None, "np_nan": None, "inf": "inf", "ninf": "-inf", "x": 0.5, "n": 3, "flag": True,
                    "arr": [1.0, None], "path": "a/b", "7": [1, 2]}
    assert float(back["inf"]) == math.inf


def test_unknown_objects_are_refused_not_guessed():
    with pytest.raises(TypeError, match="object"):
        jsonio.dumps({"x": object()})


def test_size_json_of_a_rule_without_energy_is_strict_json(capsys):
    # drtp has a memory ledger but no energy model: its energies are "not computed" (null), and were
    # printed as bare NaN tokens before the one writer
    assert main(["size", "--rule", "drtp", "--json"]) == 0
    doc = strict_loads(capsys.readouterr().out)
    summary = doc["design_points"][0]["summary"][0]
    assert summary["algorithm"] == "drtp" and summary["train_energy_pj"] is None
