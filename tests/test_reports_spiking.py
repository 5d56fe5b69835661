"""The report's spiking section from a real (tiny, runtime-target) Brian2 run."""

import pytest

from reports.config import ReportConfig
from reports.document import Document, render_html, render_markdown
from reports.experiments import run_task
from reports.hardware import HardwareTables
from reports.report import _spiking_section
from reports.spiking import spiking_available
from reports.tables import COLUMNS

FAST = {"present_ms": 40.0, "rest_ms": 10.0, "gate_start_ms": 10.0, "gate_stop_ms": 40.0}


@pytest.fixture(scope="module")
def spike_result():
    res = run_task({"kind": "spike", "dataset": "mnist-bundled", "dims": [784, 16, 10], "train_samples": 30,
                    "test_samples": 10, "seed": 0, "target": "numpy", "dt_ms": 1.0, "encoding": FAST})
    assert res["error"] is None, res.get("traceback")
    return res


def test_spiking_section_has_accuracy_events_and_energy(spike_result):
    r = spike_result
    assert len(r["layer_accuracy"]) == 2 and all(0 <= a <= 1 for a in r["layer_accuracy"])
    assert r["counts"]["train"]["samples"] == 30 and r["counts"]["test"]["samples"] == 10
    assert r["counts"]["train"]["total"]["synaptic_ops"] > 0
    sec = _spiking_section(ReportConfig(), [r], "", HardwareTables())
    assert sec.status == "ok"
    names = {t.name: t for t in sec.tables}
    assert set(names) == {"spiking_accuracy", "spiking_counts", "spiking_energy", "spiking_energy_items"}
    for name, t in names.items():
        assert list(t.df.columns) == list(COLUMNS[name]), name
        assert len(t.df) > 0
    energy = names["spiking_energy"].df
    assert set(energy["convention"]) >= {"loihi_measured", "accumulate_45nm"}
    assert (energy["energy_pj"] > 0).all()
    # training also pays for plasticity: it costs more per sample than testing under Loihi's table
    loihi = energy[energy["convention"] == "loihi_measured"].set_index("phase")["energy_pj"]
    assert loihi["train"] > loihi["test"]
    doc = Document("t", "s", [sec])
    assert "Spiking SPELA" in render_html(doc) and "| loihi_measured |" in render_markdown(doc)


def test_spiking_not_run_is_explained():
    target, reason = spiking_available("off")
    assert target is None and "disabled" in reason
    sec = _spiking_section(ReportConfig(spiking="off"), [], reason, HardwareTables())
    assert sec.status == "not run" and "not run: disabled" in render_html(Document("t", "s", [sec]))
    failed = _spiking_section(ReportConfig(), [{"task": {"kind": "spike"}, "error": "MappingError: boom"}], "",
                              HardwareTables())
    assert failed.status == "unavailable" and "boom" in failed.reason
