"""A tiny ``spela-hw report`` end to end: files, HTML structure, documented columns, figures, browser."""

import base64
import html.parser
import io
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest

from reports.browser import find_chromium, open_in_browser
from reports.cli import main
from reports.config import ReportConfig
from reports.document import render_html
from reports.hardware import HardwareTables
from reports.report import _check_against_data, _crossbar_section, _precision_text, build_report
from reports.tables import COLUMNS
from spela_hw import PrecisionSpec
from spela_hw.errors import ConfigError

TINY = dict(dims=(784, 24, 16, 10), bits=("fp32", 8, 4), rules=("spela", "backprop"),
            presets=("sram-cim-22nm", "mcu-256kb"), epochs=2, train_samples=300, test_samples=120,
            few_shot_test_fractions=(0.99,), few_shot_epochs=1, few_shot_trials=1, energy_samples=30,
            exit_thresholds=(0.1, 0.5), spiking="off", workers=2)  # seeds: the default three
REPO = Path(__file__).resolve().parents[1]

FIGURES = ("learning_curves", "accuracy_vs_bits", "few_shot", "memory_ledger", "energy", "crossbars", "early_exit")
SHOWN_TABLES = ("final_accuracy", "accuracy_vs_bits", "few_shot", "one_epoch", "transfer", "memory_verdicts",
                "energy_summary",
                "memory_vs_batch", "budget_solver",
                "crossbars", "early_exit", "confidence_exit", "presets", "conventions", "action_costs",
                "configuration", "versions", "runs")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("rep") / "report"
    lines = []
    res = build_report(ReportConfig(**TINY, out=str(out)), progress=lines.append)
    return res, lines


class _Checker(html.parser.HTMLParser):
    VOID = {"meta", "img", "br", "hr", "link", "input", "col"}

    def __init__(self):
        super().__init__()
        self.stack, self.errors, self.tags, self.imgs, self.ids = [], [], {}, [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags[tag] = self.tags.get(tag, 0) + 1
        if tag == "img":
            self.imgs.append(a)
        if "id" in a:
            self.ids.append(a["id"])
        for k in ("src", "href"):
            v = a.get(k) or ""
            if v.startswith(("http:", "https:", "//", "file:")):
                self.errors.append(f"external reference {k}={v[:60]}")
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if tag in self.VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1] if self.stack else 'nothing'}")
        else:
            self.stack.pop()


def test_every_file_is_written(report):
    res, lines = report
    out = res.out
    for name in ("index.html", "report.md", "config.toml", "manifest.json"):
        assert (out / name).stat().st_size > 100, name
    for fig in FIGURES:
        assert (out / "figures" / f"{fig}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (out / "figures" / f"{fig}.svg").stat().st_size > 2000
    for t in SHOWN_TABLES + ("learning_curves", "memory_ledger", "energy_items", "energy_by_component", "latency",
                             "few_shot_runs", "energy_tables"):
        assert (out / "tables" / f"{t}.csv").exists(), t
        assert (out / "tables" / f"{t}.parquet").exists(), t  # pyarrow is installed in the dev setup
    # no staging folder left behind; the lock file stays (removing a lock file races with its next user)
    assert [p.name for p in out.parent.glob(".report.*")] == [".report.lock"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["generator"] == "spela-hw report" and manifest["failures"] == []
    assert manifest["versions"]["numpy"] != "not installed"
    assert any("train spela int8" in line for line in lines)  # progress lines name the runs
    assert lines[0].startswith("checking the configuration")  # said before the data is loaded
    assert any(re.match(r"\d+ of \d+ runs done", line) for line in lines)
    # The configuration written next to the report reproduces the report's settings.
    assert ReportConfig.from_toml(out / "config.toml") == ReportConfig(**TINY, out=str(out))


def test_sections_and_visible_degradation(report):
    res, _ = report
    assert res.sections.pop("spiking") == "not run"
    assert set(res.sections.values()) == {"ok"}
    page = res.index_html.read_text()
    assert "not run: disabled (spiking = &#x27;off&#x27;)" in page
    # A section without data says so instead of disappearing.
    sec = _crossbar_section(ReportConfig(**TINY), HardwareTables())
    assert sec.status == "unavailable"
    from reports.document import Document

    assert "section unavailable: no run could be sized" in render_html(Document("t", "s", [sec]))


def test_transfer_section_prices_every_head_from_its_run(report):
    """The transfer section: every head x precision x preset, accuracy from the runs' records, memory
    and energy from sim for that head; float32 has no energy on the crossbar preset and says why."""
    from reports.hardware import transfer_head_costs
    from reports.report import plan_tasks
    from spela_hw.specs import Sgd, Spela, spec_to_dict

    res, _ = report
    df = pd.read_csv(res.out / "tables" / "transfer.csv", keep_default_na=False, na_values=[""])
    assert len(df) == 2 * 2 * len(TINY["presets"])  # spela/backprop x fp32/int8 x presets
    assert set(df["precision"]) == {"fp32", "int8"} and set(df["n_seeds"]) == {3}
    fp32_cim = df[(df["precision"] == "fp32") & (df["preset"] == "sram-cim-22nm")]
    assert fp32_cim["energy_nj"].isna().all() and fp32_cim["energy_note"].str.contains("fixed-point").all()
    assert np.isfinite(df[df["preset"] == "mcu-256kb"]["energy_nj"]).all()
    # memory and energy are sim's for that head (the int8 SPELA head: 512-34, per sample)
    rec = {"rule": spec_to_dict(Spela(loss="neg_cos", input_norm="every_layer", optimizer=Sgd(0.01))),
           "precision_spec": PrecisionSpec.fixed(8, 0.25).to_dict(), "dims": [512, 34], "batch_size": 1, "n_classes": 5}
    want = transfer_head_costs(rec, ("mcu-256kb",), TINY.get("budget", "256 KB"))
    row = df[(df["head"] == "spela") & (df["precision"] == "int8") & (df["preset"] == "mcu-256kb")].iloc[0]
    assert row["train_memory_kib"] == pytest.approx(want["memory_bytes"] / 1024)
    assert row["energy_nj"] == pytest.approx(want["energy"]["mcu-256kb"]["nominal_pj"] / 1e3)
    # off: no transfer task is planned and the section says why
    assert not [t for t in plan_tasks(ReportConfig(**TINY, transfer="off"), 10) if t["kind"] == "transfer"]
    assert len([t for t in plan_tasks(ReportConfig(**TINY), 10) if t["kind"] == "transfer"]) == 3
    assert not [t for t in plan_tasks(ReportConfig(**TINY), 3) if t["kind"] == "transfer"]  # too few classes


def test_html_is_self_contained_and_well_formed(report):
    res, _ = report
    page = res.index_html.read_text()
    c = _Checker()
    c.feed(page)
    c.close()
    assert c.errors == [] and c.stack == []
    assert c.tags.get("script", 0) == 0 and c.tags.get("link", 0) == 0
    # the verdict (before the contents) and the numbered sections (with "Where SPELA pays off" when
    # reports.crossover is there: its own tests check it)
    sections = json.loads((res.out / "manifest.json").read_text())["sections"]
    crossover = "crossover" in sections
    assert c.tags["section"] == 1 + len(sections) and len(sections) == 11 + crossover
    assert page.index('id="verdict"') < page.index('class="toc"')
    assert len(c.imgs) == len(FIGURES) + crossover
    for img in c.imgs:
        prefix = "data:image/svg+xml;base64,"
        assert img["src"].startswith(prefix)
        root = ET.fromstring(base64.b64decode(img["src"][len(prefix):]))
        assert root.tag.endswith("svg")
        assert img["alt"]
    assert len(set(c.ids)) == len(c.ids)  # anchors of the table of contents are unique
    for anchor in re.findall(r'href="#([^"]+)"', page):
        assert anchor in c.ids
    md = res.report_md.read_text()
    for target in re.findall(r"\]\((figures/[^)]+)\)", md):
        assert (res.out / target).exists()


def test_tables_have_the_documented_columns(report):
    res, _ = report
    documented = dict(COLUMNS)
    if (res.out / "tables" / "crossover_data.csv").exists():  # documented by its own module (and tests)
        from reports.crossover import COLUMNS as CROSSOVER_COLUMNS

        documented.update(CROSSOVER_COLUMNS)
    for path in sorted((res.out / "tables").glob("*.csv")):
        name = path.stem
        if name in ("memory_ledger_main", "memory_vs_batch_main"):
            name = name.removesuffix("_main")
        df = pd.read_csv(path)
        assert name in documented, f"{path.name} is not documented"
        doc = list(documented[name])
        cols = list(df.columns)
        if name == "memory_ledger" and path.stem == "memory_ledger_main":
            doc.remove("preset")
        if name == "confidence_exit":
            assert [c for c in cols if c.startswith("exit_fraction_layer")] == \
                ["exit_fraction_layer1", "exit_fraction_layer2", "exit_fraction_layer3"]
            cols = [c for c in cols if not c.startswith("exit_fraction_layer")]
            doc.remove("exit_fraction_layerK")
        assert cols == doc, name
        assert len(df) > 0, name
    fa = pd.read_csv(res.out / "tables" / "final_accuracy.csv")
    assert set(fa["rule"]) == {"spela", "backprop"}
    assert fa["accuracy_mean"].between(0, 1).all()
    # backprop is read out at its output only; SPELA at every layer
    assert sorted(fa.loc[fa["rule"] == "spela", "layer"].unique()) == [1, 2, 3]
    assert list(fa.loc[fa["rule"] == "backprop", "layer"].unique()) == [3]
    v = pd.read_csv(res.out / "tables" / "memory_verdicts.csv")
    assert set(v["verdict"]) <= {"fits", "does not fit", "fits on chip only by spilling to DRAM"}
    en = pd.read_csv(res.out / "tables" / "energy_summary.csv")
    priced = en.dropna(subset=["train_energy_pj"])
    assert (priced["train_energy_pj"] > priced["infer_energy_pj"]).all()  # training costs more than inference
    # float32 weights cannot live in crossbar cells: not priced there, and the reason is given
    cim_fp32 = en[(en["preset"] == "sram-cim-22nm") & (en["precision"] == "fp32")]
    assert cim_fp32["train_energy_pj"].isna().all() and cim_fp32["note"].str.contains("crossbar").all()
    ex = pd.read_csv(res.out / "tables" / "early_exit.csv")
    for (_, _, _), g in ex.groupby(["preset", "rule", "precision"]):
        assert g.sort_values("exit_layer")["energy_pj"].is_monotonic_increasing  # exiting earlier costs less


def test_figures_are_not_blank(report):
    res, _ = report
    for fig in FIGURES:
        img = matplotlib.image.imread(io.BytesIO((res.out / "figures" / f"{fig}.png").read_bytes()), format="png")
        assert img.shape[0] > 200 and img.shape[1] > 300, fig
        assert float(np.std(img[..., :3])) > 0.05, fig  # not a blank canvas


def test_report_refuses_a_folder_that_is_not_a_report(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(ConfigError) as e:
        build_report(ReportConfig(**TINY, out=str(tmp_path / "mine")))
    assert e.value.field == "out"
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"
    assert main(["report", "--dims", "700,16,10", "--out", str(tmp_path / "x")]) == 2  # error names dims


def test_html_opens_in_headless_chromium_without_console_errors(report, tmp_path):
    if find_chromium() is None:
        pytest.fail("Chromium is needed for this test: apt-get install -y chromium chromium-driver")
    res, _ = report
    # A laptop screen: 1366 x 768. The verdict (paragraph and table, with its columns) is on the first
    # screen, and no table is wider than the page (wide ones scroll inside their own box).
    first = {
        "verdict_p": "document.querySelector('#verdict p').getBoundingClientRect().bottom",
        "verdict_table": "document.querySelector('#table-verdict').getBoundingClientRect().bottom",
        "columns": "Array.from(document.querySelectorAll('#table-verdict th')).map(t => t.textContent)",
        "first_row": "document.querySelector('#table-verdict tbody tr').innerText",
        "page_overflow": "document.documentElement.scrollWidth - window.innerWidth",
        "widest_box": "Math.max(...Array.from(document.querySelectorAll('div.scroll')).map("
                      "d => d.getBoundingClientRect().right))",
        "main_right": "document.querySelector('main').getBoundingClientRect().right",
        "tallest_row": "Math.max(...Array.from(document.querySelectorAll('tbody tr')).map("
                       "r => r.getBoundingClientRect().height))",
    }
    seen = open_in_browser(res.index_html, width=1366, height=768, expressions=first)
    assert seen.errors == []
    assert seen.title.startswith("SPELA vs backprop")
    assert seen.height > 3000 and 1000 <= seen.width <= 1400
    v = seen.values
    assert 0 < v["verdict_p"] < v["verdict_table"] <= 768, v
    assert v["columns"] == ["quantity", "SPELA", "backprop", "SPELA \u2212 backprop", "confidence", "source"]
    assert v["first_row"].startswith("accuracy at the output") and "\u00b1" in v["first_row"]
    assert v["page_overflow"] <= 0 and v["widest_box"] <= v["main_right"] + 1, v
    assert v["tallest_row"] < 150, v  # no row stretched by a long note (citations wrap to a few lines)
    shot = matplotlib.image.imread(io.BytesIO(seen.screenshot_png), format="png")
    assert shot.shape[0] == min(seen.height, 16000) and len(seen.screenshot_png) > 100_000
    assert float(np.std(shot[..., :3])) > 0.05
    # The checker does see errors: a console.error and a missing image.
    bad = tmp_path / "bad.html"
    bad.write_text('<html><body><img src="missing.png"><script>console.error("boom")</script></body></html>')
    errors = open_in_browser(bad).errors
    assert any("boom" in e for e in errors) and any("missing.png" in e for e in errors)


def test_verdict_compares_like_for_like_from_the_runs(report):
    """The verdict's numbers are the runs' numbers: SPELA minus backprop, same shape, 3 seeds."""
    res, _ = report
    v = pd.read_csv(res.out / "tables" / "verdict.csv").set_index("quantity")
    assert list(v.reset_index().columns) == list(COLUMNS["verdict"])
    exits = [q for q in v.index if q.startswith("accuracy, SPELA exit at layer ")]
    assert [q for q in v.index if q not in exits] == [
        "accuracy at the output", "training memory on chip", "training memory, total",
        "energy per training sample", "energy per inference"]
    assert list(v.drop(index=exits)["confidence"]) == ["measured", "modelled", "modelled",
                                                       "placeholder-dependent", "placeholder-dependent"]
    assert v["source"].str.contains("tables/").all()  # every number says where it comes from
    # accuracy at the design point (the first fixed-point precision, int8), from the runs themselves
    fa = pd.read_csv(res.out / "tables" / "final_accuracy.csv")
    out8 = fa[(fa["precision"] == "int8") & (fa["exit"] == "output")].set_index("rule")
    acc = v.loc["accuracy at the output"]
    assert acc["n_seeds"] == 3 and (out8["n_seeds"] == 3).all()
    assert acc["spela"] == pytest.approx(100 * out8.loc["spela", "accuracy_mean"])
    assert acc["backprop"] == pytest.approx(100 * out8.loc["backprop", "accuracy_mean"])
    assert acc["difference"] == pytest.approx(acc["spela"] - acc["backprop"])
    assert acc["spela_std"] == pytest.approx(100 * out8.loc["spela", "accuracy_std"])
    assert np.isfinite(acc["difference_std"])
    for q in exits:  # SPELA's best earlier exit, when it beats its output, against backprop's output
        layer = int(q.rsplit(" ", 1)[-1])
        at = fa[(fa["precision"] == "int8") & (fa["rule"] == "spela") & (fa["layer"] == layer)]
        assert v.loc[q, "spela"] == pytest.approx(100 * at["accuracy_mean"].iloc[0])
        assert v.loc[q, "backprop"] == pytest.approx(acc["backprop"])
    # memory from the ledger of the same design point, in KiB
    summ = pd.read_csv(res.out / "tables" / "energy_summary.csv")
    pt = summ[(summ["preset"] == "sram-cim-22nm") & (summ["precision"] == "int8")].set_index("rule")
    mem = v.loc["training memory on chip"]
    assert mem["spela"] == pytest.approx(pt.loc["spela", "train_on_chip_bytes"] / 1024)
    assert mem["difference"] == pytest.approx(mem["spela"] - mem["backprop"])
    # like for like: one network shape for both rules at every design point
    assert set(summ["network"]) == {"784-24-16-10"}
    # energies: an interval around the nominal value, and the difference is SPELA minus backprop
    for q in ("energy per training sample", "energy per inference"):
        e = v.loc[q]
        for k in ("spela", "backprop", "difference"):
            assert e[f"{k}_low"] <= e[k] + 1e-6 and e[k] <= e[f"{k}_high"] + 1e-6
        assert e["difference"] == pytest.approx(e["spela"] - e["backprop"])
    assert v.loc["energy per training sample", "spela"] == pytest.approx(pt.loc["spela", "train_energy_pj"], rel=1e-6)
    # the page shows the same table with units, the verdict sentence and the placeholder warning beside it
    page = res.index_html.read_text()
    lead = page[page.index('id="verdict"'):page.index('class="toc"')]
    assert "Verdict for this design point:" in lead and "same 784-24-16-10 network" in lead
    for col in ("quantity", "SPELA", "backprop", "SPELA \u2212 backprop", "confidence", "source"):
        assert f'scope="col">{col}</th>' in lead
    assert "\u00b1" in lead and " nJ" in lead and "placeholder-dependent" in lead
    assert "Energies are placeholder-dependent" in lead and "ADC conversions" in lead


def test_statistics_name_the_seeds_they_come_from(report, tmp_path):
    """Captions speak of a spread only when >= 2 seeds ran; one seed says so and shows none."""
    res, _ = report
    def prose(text):  # captions and paragraphs, without the column documentation
        return re.sub(r"<details>.*?</details>", "", text, flags=re.S)

    page = prose(res.index_html.read_text()) + res.report_md.read_text()
    assert "over seeds" not in page  # every spread names how many runs it comes from...
    assert set(re.findall(r"over (\w+) seeds", page)) == {"3"}  # ...and those ran
    one = build_report(ReportConfig(**{**TINY, "bits": (8,), "seeds": (0,), "presets": ("sram-cim-22nm",),
                                       "epochs": 1, "train_samples": 100, "few_shot_trials": 1,
                                       "out": str(tmp_path / "one")}))
    text = prose(one.index_html.read_text())
    assert not re.search(r"over \w+ seeds|over seeds|Shaded|Error bars: std over", text)
    assert "One seed" in text and "(one seed)" in text
    v = pd.read_csv(one.out / "tables" / "verdict.csv")
    assert v["spela_std"].isna().all() and v["difference_std"].isna().all() and v["n_seeds"].iloc[0] == 1
    fa = pd.read_csv(one.out / "tables" / "final_accuracy.csv")
    assert fa["accuracy_std"].isna().all()


def test_text_is_current_and_stays_inside_the_repository(report):
    res, _ = report
    page = res.index_html.read_text()
    w = PrecisionSpec.fixed(8).weight
    assert f"range \u00b1{w.max_value + w.lsb:g}," in _precision_text(ReportConfig(**TINY))
    assert "(range \u00b10.25," in page and "+-1" not in page and "\u00b11)" not in page
    assert "../" not in page and "shared/DESIGN" not in page and "reference/" not in page
    cited = set(re.findall(r"docs/[\w.-]+\.md", page + res.report_md.read_text()))
    assert cited and all((REPO / c).is_file() for c in cited), cited
    # energies in engineering units, never long pJ numbers; the accuracy table is shown once
    assert not re.search(r"\d{5,} ?pJ|\d{1,3}(,\d{3})+(\.\d*)? ?pJ", page)
    assert page.count("<h3>Final test accuracy per read-out</h3>") == 1
    assert "<h3>Final accuracy by weight precision</h3>" not in page


def test_like_for_like_shapes_are_required_with_backprop():
    with pytest.raises(ConfigError) as e:
        _check_against_data(ReportConfig(dims=(784, 24, 34)))
    assert e.value.field == "dims" and "like for like" in str(e.value) and "784-24-10" in str(e.value)
    assert _check_against_data(ReportConfig(dims=(784, 24, 34), rules=("spela",)))[1] == 10
