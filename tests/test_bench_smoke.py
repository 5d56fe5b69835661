"""Smoke run of the benchmark harness (`python -m bench --quick`): tiny sizes, no time asserted.

It checks that the harness runs end to end, that the numba kernels it times are bit-exact with
the reference backend, and that it only replaces the speed section of RESULTS.md. The PyTorch
peer runs when an interpreter with torch is found (see bench/README.md) and is skipped otherwise.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_quick_run_writes_only_the_speed_section(tmp_path):
    out = tmp_path / "RESULTS.md"
    out.write_text("# Results\n\nAccuracy section written by someone else.\n\n"
                   "<!-- speed:begin -->\nstale numbers\n<!-- speed:end -->\n\nTrailing notes.\n")
    js = tmp_path / "rows.json"
    r = subprocess.run([sys.executable, "-m", "bench", "--quick", "--out", str(out), "--json",
                        str(js), "--only", "train,torch"], cwd=ROOT, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    text = out.read_text()
    assert "Accuracy section written by someone else." in text and "Trailing notes." in text
    assert "stale numbers" not in text
    assert text.count("<!-- speed:begin -->") == 1 and text.count("<!-- speed:end -->") == 1
    section = text[text.index("<!-- speed:begin -->"):]
    for heading in ("### Training throughput", "### Bit-exactness", "### Inference",
                    "### Roofline", "### Numba compile", "### Peak memory"):
        assert heading in section
    rows = json.loads(js.read_text())["rows"]
    numba = [x for x in rows if x.get("bench") == "train" and x.get("impl") == "numba"
             and "samples_per_s" in x]
    assert {x["recipe"] for x in numba} >= {"spela-per-sample", "spela-minibatch"}
    assert all(x["samples_per_s"] > 0 and len(x["accuracy"]) == 2 for x in numba
               if x["kind"] == "spela")
    exact = [x for x in rows if x.get("bench") == "exactness"]
    assert {x["precision"] for x in exact} == {"fp32", "w8"}
    for x in exact:
        if x["precision"] == "fp32":  # float32 agrees to rounding
            assert max(x["max_abs_weight_diff"]) < 1e-4 * max(x["max_abs_weight"])
        else:
            assert x["weights_identical"] and x["counts_identical"]
    torch_rows = [x for x in rows if x.get("impl") == "pytorch"]
    if torch_rows:  # peer found: it ran the same recipes
        assert {x["recipe"] for x in torch_rows if "recipe" in x} >= {"spela-per-sample"}


def test_write_section_creates_and_replaces(tmp_path):
    from bench.__main__ import BEGIN, END, write_section

    path = tmp_path / "R.md"
    write_section(path, f"{BEGIN}\none\n{END}")
    assert path.read_text().count(BEGIN) == 1
    path.write_text(path.read_text() + "\nlater text\n")
    write_section(path, f"{BEGIN}\ntwo\n{END}")
    text = path.read_text()
    assert "two" in text and "one" not in text and "later text" in text


def test_command_timer_times_a_command_and_refuses_a_failed_one(tmp_path):
    """bench.commands (user-facing wall times) measures real runs and never a failed one."""
    import os

    import pytest

    from bench.commands import run_timed

    r = run_timed(["train", "--dims", "784,16,10", "--epochs", "1", "--limit-train", "100", "--jobs", "1",
                   "--out", str(tmp_path / "m.npz")], dict(os.environ), tmp_path)
    assert r["wall_s"] > 0 and r["cpu_s"] > 0 and 0 < r["first_line_s"] <= r["wall_s"]
    with pytest.raises(SystemExit, match="exited 2"):
        run_timed(["train", "--epochs", "-1"], dict(os.environ), tmp_path)
