"""Tables, exit policy and result files from hand-made inputs (no training)."""

import json
import os

import numpy as np
import pandas as pd
import pytest

from reports.document import Document, Note, Section, Table, format_value, render_html, render_markdown
from reports.experiments import confidence_exit, confidence_margin
from reports.files import append_json_line, atomic_write_text, read_json_lines, repair_json_lines, write_table
from reports.tables import final_accuracy, few_shot, few_shot_verdicts, learning_curves, one_epoch, ordered


def _run(rule, bits, seed, accs_per_epoch):
    L = len(accs_per_epoch[-1])
    return {"task": {"kind": "train", "rule": rule, "bits": bits, "seed": seed, "dims": [784] + [16] * (L - 1) + [10]},
            "history": [{"epoch": e + 1, **{f"layer{k + 1}_accuracy": a for k, a in enumerate(accs)}}
                        for e, accs in enumerate(accs_per_epoch)],
            "final_accuracy": list(accs_per_epoch[-1])}


def test_final_accuracy_spread_over_seeds_and_backprop_output_only():
    runs = [_run("spela", 8, 0, [[0.5, 0.4], [0.80, 0.70]]), _run("spela", 8, 1, [[0.5, 0.4], [0.90, 0.74]]),
            _run("backprop", 8, 0, [[0.2, 0.6], [0.3, 0.95]]), _run("backprop", 8, 1, [[0.2, 0.6], [0.3, 0.97]])]
    fa = final_accuracy(runs).set_index(["rule", "layer"])
    assert fa.loc[("spela", 1), "accuracy_mean"] == pytest.approx(0.85)
    assert fa.loc[("spela", 1), "accuracy_std"] == pytest.approx(np.std([0.8, 0.9], ddof=1))
    assert fa.loc[("spela", 1), "accuracy_min"] == 0.8 and fa.loc[("spela", 1), "accuracy_max"] == 0.9
    assert fa.loc[("spela", 2), "exit"] == "output" and fa.loc[("spela", 1), "exit"] == "hidden"
    assert fa.loc[("backprop", 2), "n_seeds"] == 2
    assert ("backprop", 1) not in fa.index  # backprop's hidden layers are not exits
    curves = learning_curves(runs)
    assert len(curves) == 2 * 2 * 2 + 2 * 2 * 1
    one = one_epoch(runs).set_index(["rule", "seed"])
    assert one.loc[("spela", 0), "epoch1_best_layer"] == 1 and one.loc[("spela", 0), "epoch1_output_accuracy"] == 0.4
    assert one.loc[("backprop", 1), "final_output_accuracy"] == 0.97


def test_few_shot_aggregates_and_verdicts():
    runs = []
    for rule, accs in (("spela", [0.90, 0.92, 0.91]), ("backprop", [0.80, 0.81, 0.79])):
        for t, a in enumerate(accs):
            runs.append({"task": {"kind": "few_shot", "rule": rule, "test_fraction": 0.99, "trial": t},
                         "accuracy": [0.5, a], "n_train": 100, "n_test": 900})
    fs, raw = few_shot(runs)
    assert len(raw) == 12
    row = fs.set_index("rule").loc["spela"]
    assert row["accuracy_mean"] == pytest.approx(0.91) and row["n_trials"] == 3 and row["n_train"] == 100
    (note,) = few_shot_verdicts(fs)
    assert "SPELA wins" in note.text and "100 training samples" in note.text
    close = fs.copy()
    close.loc[close["rule"] == "backprop", "accuracy_mean"] = 0.905
    assert "no clear winner" in few_shot_verdicts(close)[0].text


def test_confidence_margin_and_exit_policy_by_hand():
    scores = np.array([[1.0, 0.0, -1.0], [0.5, 0.5, 0.0], [-0.2, -0.4, -1.0]])
    np.testing.assert_allclose(confidence_margin(scores), [1.0, 0.0, 0.2])
    margins = np.array([[0.9, 0.1, 0.5, 0.0],    # layer 1
                        [0.2, 0.2, 0.2, 0.2]])   # layer 2 (always answers)
    correct = np.array([[True, True, False, False],
                        [False, False, True, True]])
    pol = {p["threshold"]: p for p in confidence_exit(margins, correct, [0.0, 0.4, 1.0])}
    assert pol[0.0]["accuracy"] == 0.5 and pol[0.0]["exit_fraction"] == [1.0, 0.0]
    # threshold 0.4: samples 0 and 2 leave at layer 1 (right, wrong); 1 and 3 go on (wrong, right)
    assert pol[0.4]["accuracy"] == 0.5 and pol[0.4]["exit_fraction"] == [0.5, 0.5]
    assert pol[0.4]["mean_exit_layer"] == 1.5
    assert pol[1.0]["accuracy"] == 0.5 and pol[1.0]["exit_fraction"] == [0.0, 1.0]


def test_ordered_puts_presets_precisions_and_rules_in_reading_order():
    df = pd.DataFrame({"preset": ["b", "a", "a", "a"], "rule": ["spela", "backprop", "spela", "spela"],
                       "weight_bits": [8, 8, 8, 32], "layer": [1, 1, 1, 1]})
    out = ordered(df, rules=("spela", "backprop"), presets=("a", "b"))
    assert out[["preset", "rule", "weight_bits"]].values.tolist() == [
        ["a", "spela", 32], ["a", "spela", 8], ["a", "backprop", 8], ["b", "spela", 8]]


def test_document_renders_escaped_text_and_notes():
    df = pd.DataFrame({"name": ["<b>x</b>", "y|z"], "value": [1234567.0, 0.5]})
    sec = Section("s1", "A & B", paragraphs=["2 < 3"], notes=[Note("bad", "does not fit")],
                  tables=[Table("t", "T", df, "cap")])
    doc = Document("Title", "sub", [sec, Section.unavailable("s2", "Missing", "sim not installed")])
    page = render_html(doc)
    assert "&lt;b&gt;x&lt;/b&gt;" in page and "<b>x</b>" not in page
    assert "A &amp; B" in page and "2 &lt; 3" in page and "1,234,567" in page
    assert "section unavailable: sim not installed" in page
    md = render_markdown(doc)
    assert "y\\|z" in md and "> **section unavailable:** sim not installed" in md
    assert format_value(float("nan")) == "" and format_value(True) == "yes"


def test_atomic_files_and_json_lines(tmp_path):
    p = atomic_write_text(tmp_path / "a" / "f.txt", "hello")
    assert p.read_text() == "hello" and oct(p.stat().st_mode & 0o777) == "0o644"
    assert [f.name for f in p.parent.iterdir()] == ["f.txt"]  # no temporary left behind
    paths = write_table(pd.DataFrame({"a": [1, 2]}), tmp_path, "t")
    assert {x.suffix for x in paths} == {".csv", ".parquet"}
    assert pd.read_parquet(tmp_path / "t.parquet")["a"].tolist() == [1, 2]
    log = tmp_path / "r.jsonl"
    append_json_line(log, {"point_id": "a", "x": np.float64(0.5), "n": np.int64(3)})
    append_json_line(log, {"point_id": "b"})
    with open(log, "ab") as fh:
        fh.write(b'{"point_id": "c", "x"')  # a writer killed mid-line
    assert [r["point_id"] for r in read_json_lines(log)] == ["a", "b"]
    assert repair_json_lines(log) > 0 and repair_json_lines(log) == 0
    append_json_line(log, {"point_id": "d"})
    assert [r["point_id"] for r in read_json_lines(log)] == ["a", "b", "d"]
    assert json.loads(log.read_text().splitlines()[0])["n"] == 3
    with pytest.raises(ValueError):
        append_json_line(log, {"x": float("nan")})  # JSON has no NaN: refused, nothing written
    assert len(log.read_text().splitlines()) == 3
    os.remove(log)
    assert read_json_lines(log) == [] and repair_json_lines(log) == 0


def test_a_new_report_replaces_an_old_one_and_nothing_else(tmp_path):
    from reports.report import GENERATOR, MANIFEST_NAME, _check_out, _swap_in
    from spela_hw.errors import ConfigError

    out = tmp_path / "report"
    out.mkdir()
    (out / MANIFEST_NAME).write_text(json.dumps({"generator": GENERATOR}))
    (out / "stale.csv").write_text("old")
    _check_out(out)  # an earlier report may be replaced
    new = tmp_path / ".report.partial"
    new.mkdir()
    (new / "index.html").write_text("new")
    _swap_in(new, out)
    assert sorted(p.name for p in out.iterdir()) == ["index.html"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]  # the old one is gone, no debris
    (out / MANIFEST_NAME).write_text(json.dumps({"generator": "something else"}))
    with pytest.raises(ConfigError):
        _check_out(out)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError):
        _check_out(tmp_path / "file")
    _check_out(tmp_path / "absent")  # a new folder is fine
