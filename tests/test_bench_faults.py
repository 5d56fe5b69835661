"""The fault harness (`python -m bench.faults`) that measures docs/RELIABILITY.md's figures.

A smoke run with one kill of `train` and three bad inputs keeps the harness from rotting; no time
is asserted. The full campaign (20 kills per command, every bad input) is a benchmark, not a test.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SMOKE_CASES = ("model-truncated", "report-toml-malformed", "data-truncated-images")


def test_catalogue_cases_are_unique_and_each_checks_something():
    from bench.faults import catalogue

    cases = catalogue()
    names = [c.name for c in cases]
    assert len(names) == len(set(names))
    assert set(SMOKE_CASES) <= set(names)
    assert all(c.custom or (c.argv and c.expect) for c in cases)


def test_judge_needs_a_named_refusal_without_traceback():
    from bench.faults import Run, judge

    def run(rc, stderr):
        return Run(rc, False, False, 0.1, "", stderr, 0)

    assert judge(run(2, "spela-hw train: error: limit-train: must be >= 1, got 0\n"), [r"limit[-_]train"]).ok
    assert not judge(run(0, "saved m.npz\n"), [r"limit[-_]train"]).ok
    assert not judge(run(1, "Traceback (most recent call last):\nKeyError: 'limit_train'\n"), ["limit"]).ok
    assert not judge(run(2, "spela-hw train: error: bad value\n"), [r"limit[-_]train"]).ok


def test_write_sections_replaces_only_the_measured_sections(tmp_path):
    from bench.faults import write_sections

    doc = tmp_path / "RELIABILITY.md"
    doc.write_text("# R\n\nprose\n<!-- faults-kill:begin -->\n<<KILL TABLE>>\n<!-- faults-kill:end -->\n"
                   "more\n<!-- faults-badinput:begin -->\nold\n<!-- faults-badinput:end -->\n")
    write_sections(doc, {"kill": "| kills |"}, "whole")
    text = doc.read_text()
    assert "<<KILL TABLE>>" not in text and "| kills |" in text
    assert "prose" in text and "more" in text and "\nold\n" in text
    write_sections(tmp_path / "new.md", {"kill": "| kills |"}, "whole")
    assert (tmp_path / "new.md").read_text() == "whole"


@pytest.mark.slow
def test_smoke_run_kills_train_once_and_checks_three_bad_inputs(tmp_path):
    md, js = tmp_path / "faults.md", tmp_path / "faults.json"
    r = subprocess.run([sys.executable, "-m", "bench.faults", "--quick", "--kills", "1", "--commands", "train",
                        "--cases", ",".join(SMOKE_CASES), "--numba-cache", "default", "--grace", "1",
                        "--write", str(md), "--json", str(js)],
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert js.exists(), r.stderr[-3000:]
    figures = json.loads(js.read_text())
    (train,) = figures["kills"]
    assert (train["command"], train["kills"], train["resumed"]) == ("train", 1, 1), train["notes"]
    # resumed after kill -9: loads, all epochs, bit-identical to the uninterrupted run
    assert train["lost"] == train["duplicated"] == train["mismatches"] == train["orphans"] == 0, train["notes"]
    cases = {c["case"]: c for c in figures["badinput"]}
    assert set(cases) == set(SMOKE_CASES)
    for case in cases.values():
        assert case["ok"] and case["rc"] == 2 and not case["traceback"], case
    text = md.read_text()
    assert "### kill -9 at random moments" in text and "| `train` | 1 | 1 | 0 | 0 | 0 |" in text
    assert "3 of 3 bad inputs rejected by name." in text
    assert r.returncode == (1 if train["stray"] else 0), r.stderr[-3000:]
