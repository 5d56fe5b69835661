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
    append_json_line(log, {"point_id": "e", "x": float("nan")})  # JSON has no NaN: "not computed" is null
    assert read_json_lines(log)[-1] == {"point_id": "e", "x": None}
    with pytest.raises(TypeError):
        append_json_line(log, {"x": object()})  # not JSON: refused, nothing written
    assert len(log.read_text().splitlines()) == 4
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


# -- the verdict -------------------------------------------------------------------------------------

def _verdict_inputs(spela_accs, backprop_accs):
    from reports.tables import output_accuracy_by_seed

    runs = [_run("spela", 8, s, [[0.5, a]]) for s, a in enumerate(spela_accs)]
    runs += [_run("backprop", 8, s, [[0.5, a]]) for s, a in enumerate(backprop_accs)]
    acc = output_accuracy_by_seed(runs, "int8")
    summary = pd.DataFrame([{"preset": "p", "rule": r, "precision": "int8", "train_on_chip_bytes": b,
                             "train_peak_bytes": b + 1024} for r, b in (("spela", 2048), ("backprop", 4096))])
    energy = {"train": {"spela": (80.0, 100.0, 150.0), "backprop": (150.0, 200.0, 300.0),
                        "difference": (-150.0, -100.0, -70.0)}}
    return acc, summary, energy


SOURCES = {"accuracy": "runs (tables/final_accuracy.csv)", "memory": "ledger", "energy": "model"}


def test_verdict_table_is_spela_minus_backprop_with_seed_statistics():
    from reports.tables import COLUMNS, verdict_display, verdict_sentence, verdict_table

    acc, summary, energy = _verdict_inputs([0.90, 0.92, 0.94], [0.95, 0.96, 0.97])
    v = verdict_table(acc, summary, energy, "p", "int8", SOURCES)
    assert list(v.columns) == list(COLUMNS["verdict"])
    v = v.set_index("quantity")
    a = v.loc["accuracy at the output"]
    assert a["spela"] == pytest.approx(92.0) and a["backprop"] == pytest.approx(96.0)
    assert a["difference"] == pytest.approx(92.0 - 96.0)  # SPELA mean minus backprop mean
    assert a["spela_std"] == pytest.approx(2.0) and a["backprop_std"] == pytest.approx(1.0)
    assert a["difference_std"] == pytest.approx(np.std([-5, -4, -3], ddof=1))  # of the per-seed differences
    assert a["n_seeds"] == 3 and a["confidence"] == "measured" and a["source"] == SOURCES["accuracy"]
    m = v.loc["training memory on chip"]
    assert (m["spela"], m["backprop"], m["difference"]) == (2.0, 4.0, -2.0)  # KiB
    assert v.loc["training memory, total", "difference"] == -2.0
    e = v.loc["energy per training sample"]
    assert (e["spela_low"], e["spela"], e["spela_high"]) == (80.0, 100.0, 150.0)
    assert (e["difference_low"], e["difference"], e["difference_high"]) == (-150.0, -100.0, -70.0)
    assert e["confidence"] == "placeholder-dependent"
    assert "energy per inference" not in v.index  # not priced: left out, not invented
    shown = verdict_display(v.reset_index()).set_index("quantity")
    assert list(shown.columns) == ["SPELA", "backprop", "SPELA \u2212 backprop", "confidence", "source"]
    assert shown.loc["accuracy at the output", "SPELA"] == "92.00 \u00b1 2.00 %"
    assert shown.loc["accuracy at the output", "SPELA \u2212 backprop"] == "\u22124.00 \u00b1 1.00 points"
    assert shown.loc["energy per training sample", "SPELA"] == "100 pJ (80 to 150 pJ)"
    assert shown.loc["energy per training sample", "SPELA \u2212 backprop"] == \
        "\u2212100 pJ (\u221250.0 %); range \u2212150 to \u221270 pJ"
    assert shown.loc["training memory on chip", "SPELA \u2212 backprop"] == "\u22122.0 KiB (\u221250.0 %)"
    # 4 +- 1 points less accurate, 50 % less memory and energy over the whole range: a trade-off
    assert "trade-off" in verdict_sentence(v.reset_index())


def test_verdict_with_one_seed_shows_no_spread():
    from reports.tables import verdict_display, verdict_sentence, verdict_table

    acc, summary, energy = _verdict_inputs([0.90], [0.95])
    v = verdict_table(acc, summary, energy, "p", "int8", SOURCES)
    a = v.set_index("quantity").loc["accuracy at the output"]
    assert a["n_seeds"] == 1 and np.isnan(a["spela_std"]) and np.isnan(a["difference_std"])
    shown = verdict_display(v).set_index("quantity").loc["accuracy at the output"]
    assert shown["SPELA"] == "90.00 % (one seed)" and shown["SPELA \u2212 backprop"] == "\u22125.00 points (one seed)"
    assert "one seed: no spread to judge by" in verdict_sentence(v)


def test_verdict_sentence_cases():
    from reports.tables import verdict_sentence, verdict_table

    def sentence(spela, backprop, mem=(2048, 4096), energy=(-150.0, -100.0, -70.0)):
        acc, summary, en = _verdict_inputs(spela, backprop)
        summary["train_on_chip_bytes"] = mem
        en["train"]["difference"] = energy
        return verdict_sentence(verdict_table(acc, summary, en, "p", "int8", SOURCES))

    same = ([0.90, 0.95, 0.92], [0.91, 0.93, 0.93])  # difference within the seed spread
    assert "learn with SPELA" in sentence(*same)
    assert "learn with backprop (SPELA saves nothing" in sentence(*same, mem=(4096, 4096), energy=(1.0, 5.0, 9.0))
    worse = ([0.80, 0.81, 0.82], [0.95, 0.96, 0.97])
    assert "learn with backprop." in sentence(*worse, mem=(4000, 4096), energy=(-20.0, -5.0, 10.0))
    assert "-50.0 % training memory" in sentence(*worse)


def test_energy_intervals_of_placeholder_line_items():
    from reports.report import PLACEHOLDER_FACTORS, _factor_interval

    assert PLACEHOLDER_FACTORS == (0.5, 2.0)
    items = pd.DataFrame({"action": ["adc", "cell_read", "cell_read", "write"],
                          "kind": ["published", "placeholder", "placeholder", "placeholder"],
                          "energy_pj": [100.0, 10.0, 10.0, 40.0]})
    assert _factor_interval(items) == (100 + 10 + 20, 160.0, 100 + 40 + 80)
    # a difference: the same placeholder value prices both rules, so a shared action cancels out
    diff = pd.concat([items, items.assign(energy_pj=-items["energy_pj"])])
    assert _factor_interval(diff) == (0.0, 0.0, 0.0)
    more = pd.DataFrame({"action": ["write"], "kind": ["placeholder"], "energy_pj": [-60.0]})
    # cell_read +20 and write -20 net: each end takes the worst case of each action's own sign
    assert _factor_interval(pd.concat([items, more])) == pytest.approx((100 - 10 - 20, 100.0, 100 + 20 + 10))


def test_energies_in_engineering_units():
    from reports.document import energy_unit, format_energy

    assert format_energy(501933.07) == "502 nJ" and format_energy(3.91e6) == "3.91 \u00b5J"
    assert format_energy(72.3) == "72.3 pJ" and format_energy(float("nan")) == ""
    assert energy_unit(5e4) == (1e3, "nJ") and energy_unit(2e6) == (1e6, "\u00b5J")
    df = pd.DataFrame({"rule": ["spela"], "train_energy_pj": [1234567.0]})
    html = render_html(Document("t", "s", [Section("x", "X", tables=[Table("e", "E", df, "", {
        "rule": "rule", "train_energy_pj": "energy (pJ)"})])]))
    assert ">1.23 \u00b5J</td>" in html and "1,234,567" not in html
    assert 'scope="col">train_energy</th>' in html and "the CSV column train_energy_pj holds pJ" in html


def test_heartbeat_says_what_runs_and_what_is_left():
    import time

    from reports.report import _heartbeat

    tasks = [{"kind": "spike", "dims": [784, 10, 10], "train_samples": 5},
             {"kind": "train", "rule": "spela", "bits": 8, "seed": 0},
             {"kind": "train", "rule": "backprop", "bits": 8, "seed": 0}]
    lines = []
    with _heartbeat(lines.append, tasks, {id(tasks[1])}, workers=1, every_s=0.05):
        time.sleep(0.3)
    assert lines and lines[0].startswith("1 of 3 runs done; running: spike spela 784-10-10 (5 samples) "
                                         "(Brian2 C++ build, then the spiking run); 1 waiting")


def test_brian2_build_cache_is_one_folder_per_shape_and_never_shared(tmp_path, monkeypatch):
    """The report keeps its spiking project in the mapping's build cache, one locked folder a shape."""
    from mappings.brian2.buildcache import build_cache_root
    from reports.spiking import _cached_build_dir

    monkeypatch.setenv("SPELA_HW_CACHE", str(tmp_path / "cache"))
    assert build_cache_root() == tmp_path / "cache" / "brian2"
    with _cached_build_dir({"dims": [784, 100, 10]}) as first:
        assert first is not None and first.startswith(str(tmp_path / "cache" / "brian2"))
        with _cached_build_dir({"dims": [784, 100, 10]}) as busy:
            assert busy is None  # in use by another run: that one builds in a temporary folder
        with _cached_build_dir({"dims": [784, 50, 10]}) as other:
            assert other is not None and other != first
    with _cached_build_dir({"dims": [784, 100, 10]}) as again:
        assert again == first  # the next report reuses the compiled project


def test_verdict_names_spelas_better_earlier_exit():
    from reports.tables import best_spela_exit, output_accuracy_by_seed, verdict_sentence, verdict_table

    runs = [_run("spela", 8, s, [[0.91, 0.80 + s / 100]]) for s in range(3)]
    runs += [_run("backprop", 8, s, [[0.5, 0.95]]) for s in range(3)]
    assert best_spela_exit(runs, "int8") == 1
    at1 = output_accuracy_by_seed(runs, "int8", spela_layer=1)
    assert sorted(at1.loc[at1["rule"] == "spela", "accuracy"]) == [0.91] * 3
    assert list(at1.loc[at1["rule"] == "backprop", "accuracy"]) == [0.95] * 3  # backprop: always its output
    acc, summary, energy = _verdict_inputs([0.80, 0.81, 0.82], [0.95] * 3)
    v = verdict_table(acc, summary, energy, "p", "int8", SOURCES, best_exit=(1, at1))
    row = v.set_index("quantity").loc["accuracy, SPELA exit at layer 1"]
    assert row["difference"] == pytest.approx(-4.0) and row["difference_std"] == pytest.approx(0.0)
    assert "read out at layer 1 (an earlier exit), -4.00 ± 0.00 points" in verdict_sentence(v)
    assert best_spela_exit([_run("spela", 8, 0, [[0.5, 0.9]])], "int8") is None  # the output is best
