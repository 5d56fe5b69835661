"""A tiny ``spela-hw report`` end to end: files, HTML structure, documented columns, figures, browser."""

import base64
import html.parser
import io
import json
import re
import xml.etree.ElementTree as ET

import matplotlib.image
import numpy as np
import pandas as pd
import pytest

from reports.browser import find_chromium, open_in_browser
from reports.cli import main
from reports.config import ReportConfig
from reports.document import render_html
from reports.hardware import HardwareTables
from reports.report import _crossbar_section, build_report
from reports.tables import COLUMNS
from spela_hw.errors import ConfigError

TINY = dict(dims=(784, 24, 16, 10), bits=("fp32", 8, 4), rules=("spela", "backprop"),
            presets=("sram-cim-22nm", "mcu-256kb"), epochs=2, train_samples=300, test_samples=120,
            few_shot_test_fractions=(0.99,), few_shot_epochs=1, few_shot_trials=1, energy_samples=30,
            exit_thresholds=(0.1, 0.5), spiking="off", workers=2)

FIGURES = ("learning_curves", "accuracy_vs_bits", "few_shot", "memory_ledger", "energy", "crossbars", "early_exit")
SHOWN_TABLES = ("final_accuracy", "accuracy_vs_bits", "few_shot", "one_epoch", "memory_verdicts", "energy_summary",
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


def test_html_is_self_contained_and_well_formed(report):
    res, _ = report
    page = res.index_html.read_text()
    c = _Checker()
    c.feed(page)
    c.close()
    assert c.errors == [] and c.stack == []
    assert c.tags.get("script", 0) == 0 and c.tags.get("link", 0) == 0
    assert c.tags["section"] == 10
    assert len(c.imgs) == len(FIGURES)
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
    for path in sorted((res.out / "tables").glob("*.csv")):
        name = path.stem
        if name in ("memory_ledger_main", "memory_vs_batch_main"):
            name = name.removesuffix("_main")
        df = pd.read_csv(path)
        assert name in COLUMNS, f"{path.name} is not documented"
        doc = list(COLUMNS[name])
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
    seen = open_in_browser(res.index_html)
    assert seen.errors == []
    assert seen.title.startswith("SPELA vs backprop")
    assert seen.height > 3000 and 1000 <= seen.width <= 1400
    shot = matplotlib.image.imread(io.BytesIO(seen.screenshot_png), format="png")
    assert shot.shape[0] == min(seen.height, 16000) and len(seen.screenshot_png) > 100_000
    assert float(np.std(shot[..., :3])) > 0.05
    # The checker does see errors: a console.error and a missing image.
    bad = tmp_path / "bad.html"
    bad.write_text('<html><body><img src="missing.png"><script>console.error("boom")</script></body></html>')
    errors = open_in_browser(bad).errors
    assert any("boom" in e for e in errors) and any("missing.png" in e for e in errors)
