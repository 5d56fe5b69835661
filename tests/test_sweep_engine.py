"""Sweeps: Pareto front, Dask execution, failures recorded, kill and resume without loss or duplicates."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from reports.files import read_json_lines
from reports.sweep import (RESULTS_NAME, SweepConfig, _exclusive, expand_points, load_results, pareto_mask,
                           results_frame, run_sweep)
from spela_hw.errors import ConfigError

TINY = {"dataset": "mnist-bundled", "train_samples": 150, "test_samples": 60, "energy_samples": 20, "epochs": 1}


def _config(tmp_path, grid, **sweep):
    return SweepConfig.from_dict({"sweep": {**TINY, "out": str(tmp_path / "out"), **sweep}, "grid": grid})


def test_pareto_mask_by_hand():
    # columns: -accuracy, energy, memory (all minimised)
    costs = np.array([
        [-0.90, 10.0, 100.0],  # 0: front (best accuracy)
        [-0.80, 5.0, 100.0],   # 1: front (less energy)
        [-0.80, 6.0, 100.0],   # 2: dominated by 1
        [-0.70, 5.0, 50.0],    # 3: front (least memory)
        [-0.70, 5.0, 50.0],    # 4: identical to 3: stays
        [-0.60, 20.0, 200.0],  # 5: dominated by everything
    ])
    assert pareto_mask(costs).tolist() == [True, True, False, True, True, False]


def test_sweep_on_an_in_process_dask_cluster_records_failures(tmp_path):
    import distributed  # the dask extra is part of the test setup (bootstrap installs dev,brian2,dask)
    cfg = _config(tmp_path, {"dims": [[784, 16, 10]], "bits": ["fp32", 8], "presets": ["sram-cim-22nm", "mcu-256kb"],
                             "rules": ["spela", "backprop"]})
    with distributed.Client(processes=False, n_workers=2, threads_per_worker=1, dashboard_address=None) as client:
        res = run_sweep(cfg, scheduler=client)
    assert res.n_points == 8 and res.ran == 8
    recs = read_json_lines(res.results_path)
    assert sorted(r["point_id"] for r in recs) == sorted(p["point_id"] for p in expand_points(cfg))
    failed = [r for r in recs if r["status"] != "ok"]
    # float32 weights cannot be stored in crossbar cells: recorded as not applicable; the rest priced.
    assert {(r["point"]["bits"], r["point"]["preset"]) for r in failed} == {("fp32", "sram-cim-22nm")}
    assert all(r["status"] == "not_applicable" and "crossbar" in r["error"] for r in failed)
    assert res.failed == 0
    ok = [r for r in recs if r["status"] == "ok"]
    assert all(r["metrics"]["train_energy_pj"] > 0 and 0 <= r["metrics"]["accuracy"] <= 1 for r in ok)
    # backprop's hidden layer has no trained read-out: its best layer is the output
    assert {r["metrics"]["best_layer"] for r in ok if r["point"]["rule"] == "backprop"} == {2}
    df = results_frame(load_results(res.results_path))
    assert df["pareto"].sum() >= 1 and not df.loc[df["status"] != "ok", "pareto"].any()
    html = (tmp_path / "out" / "report" / "index.html").read_text()
    assert "Pareto" in html and "not_applicable" in html
    assert (tmp_path / "out" / "report" / "figures" / "pareto_energy.svg").stat().st_size > 1000


def test_existing_results_need_resume_or_overwrite_and_one_writer(tmp_path):
    cfg = _config(tmp_path, {"dims": [[784, 16, 10]], "bits": [8], "presets": ["mcu-256kb"], "rules": ["spela"]})
    run_sweep(cfg, workers=1, report=False)
    with pytest.raises(ConfigError) as e:
        run_sweep(cfg, workers=1, report=False)
    assert e.value.field == "out"
    again = run_sweep(cfg, workers=1, resume=True, report=False)
    assert again.ran == 0 and again.skipped == 1
    fresh = run_sweep(cfg, workers=1, overwrite=True, report=False)
    assert fresh.ran == 1 and list((tmp_path / "out").glob("results.*.jsonl.bak"))
    with _exclusive(tmp_path / "out"):
        with pytest.raises(ConfigError, match="another sweep"):
            run_sweep(cfg, workers=1, resume=True, report=False)


def test_records_name_their_version_and_a_resume_never_mixes_versions(tmp_path, monkeypatch):
    import reports.sweep as sw

    cfg = _config(tmp_path, {"dims": [[784, 16, 10]], "bits": [8], "presets": ["mcu-256kb"], "rules": ["spela"]})
    res = run_sweep(cfg, workers=1, report=False)
    (rec,) = read_json_lines(res.results_path)
    assert rec["spela_hw_version"] == sw.package_version()
    monkeypatch.setattr(sw, "package_version", lambda: "99.0")  # an upgrade between the runs
    with pytest.raises(ConfigError) as e:
        run_sweep(cfg, workers=1, resume=True, report=False)
    assert e.value.field == "resume"
    assert f"spela-hw {rec['spela_hw_version']}" in str(e.value) and "spela-hw 99.0" in str(e.value)
    assert "--overwrite" in str(e.value) and "--out" in str(e.value)
    # records written before versions were recorded are from an unknown version: refused too
    del rec["spela_hw_version"]
    res.results_path.write_text(json.dumps(rec) + "\n")
    with pytest.raises(ConfigError, match="unrecorded"):
        run_sweep(cfg, workers=1, resume=True, report=False)
    fresh = run_sweep(cfg, workers=1, overwrite=True, report=False)
    assert fresh.ran == 1 and read_json_lines(res.results_path)[0]["spela_hw_version"] == "99.0"


def test_killed_sweep_resumes_without_loss_or_duplicates(tmp_path):
    grid = {"dims": [[784, 16, 10], [784, 20, 10], [784, 24, 10]], "bits": [8, 4], "presets": ["mcu-256kb"],
            "rules": ["spela"], "seeds": [0, 1]}
    cfg = _config(tmp_path, grid)
    toml = tmp_path / "sweep.toml"
    lines = ["[sweep]"] + [f"{k} = {json.dumps(v)}" for k, v in {**TINY, "out": str(tmp_path / "out")}.items()]
    lines += ["[grid]"] + [f"{k} = {json.dumps(v)}" for k, v in grid.items()]
    toml.write_text("\n".join(lines) + "\n")
    results = tmp_path / "out" / RESULTS_NAME
    proc = subprocess.Popen([sys.executable, "-c", "import sys; from reports.cli import main; sys.exit(main())",
                             "sweep", str(toml), "--workers", "1", "--no-report"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if results.exists() and len(read_json_lines(results)) >= 3:
                break
            if proc.poll() is not None:
                pytest.fail("the sweep finished before it could be killed: " + proc.stderr.read().decode()[-2000:])
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    before = read_json_lines(results)
    n_total = len(expand_points(cfg))
    assert 3 <= len(before) < n_total
    # A writer killed in the middle of a line leaves a partial line: the resume must cut it.
    with open(results, "ab") as fh:
        fh.write(b'{"point_id": "partial", "status": "ok", "metr')
    prefix = results.read_bytes()[: results.read_bytes().rindex(b"\n") + 1]
    res = run_sweep(cfg, resume=True, workers=1, report=False)
    after = read_json_lines(results)
    assert results.read_bytes().startswith(prefix)  # nothing already written was lost or rewritten
    ids = [r["point_id"] for r in after]
    assert len(ids) == len(set(ids)) == n_total  # no duplicates, nothing missing
    assert set(ids) == {p["point_id"] for p in expand_points(cfg)}
    assert all(r["status"] == "ok" for r in after)
    assert res.skipped == len(before) and res.ran == n_total - len(before)


def test_a_failing_point_is_recorded_and_the_others_finish(tmp_path, monkeypatch, backprop_fails):
    import reports.experiments as ex

    real = backprop_fails
    cfg = _config(tmp_path, {"dims": [[784, 16, 10]], "bits": [8], "presets": ["sram-cim-22nm", "mcu-256kb"],
                             "rules": ["spela", "backprop"]})
    res = run_sweep(cfg, workers=1)
    recs = {(r["point"]["rule"], r["point"]["preset"]): r for r in read_json_lines(res.results_path)}
    assert len(recs) == 4 and res.failed == 2
    for preset in ("sram-cim-22nm", "mcu-256kb"):
        assert recs[("backprop", preset)]["status"] == "error"
        assert "FloatingPointError: simulated divergence" in recs[("backprop", preset)]["error"]
        assert "Traceback" in recs[("backprop", preset)]["traceback"]
        assert recs[("spela", preset)]["status"] == "ok"
    # a resume skips the failed points unless asked to retry them
    monkeypatch.setattr(ex, "train_task", real)
    assert run_sweep(cfg, workers=1, resume=True, report=False).ran == 0
    again = run_sweep(cfg, workers=1, resume=True, retry_failed=True, report=False)
    assert again.ran == 2 and again.failed == 0
    latest = load_results(res.results_path)
    assert len(latest) == 4 and all(r["status"] == "ok" for r in latest.values())


def test_shapes_that_do_not_take_the_dataset_are_refused_before_running(tmp_path):
    cfg = _config(tmp_path, {"dims": [[784, 16, 10], [700, 16, 10]], "rules": ["spela"]})
    with pytest.raises(ConfigError) as e:
        run_sweep(cfg, workers=1)
    assert e.value.field == "grid.dims[1]"
    assert not (tmp_path / "out" / RESULTS_NAME).exists()


def _thread_settings(task: dict) -> dict:
    import numba

    return {"numba": numba.get_num_threads(), "omp": os.environ.get("OMP_NUM_THREADS")}


def test_pool_workers_share_the_cores_out_without_oversubscribing(monkeypatch):
    """Two workers on two cores get one kernel thread each; one worker on two cores would get two."""
    from reports import runner

    for k in runner._THREAD_VARS:
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setattr(runner, "default_workers", lambda: 2)
    assert runner.threads_per_worker(1) == 2 and runner.threads_per_worker(2) == 1
    assert runner.threads_per_worker(8) == 1
    seen = []
    runner.run_tasks(_thread_settings, [{"i": 0}, {"i": 1}], lambda t, r: seen.append(r), workers=2)
    assert seen == [{"numba": 1, "omp": "1"}] * 2
