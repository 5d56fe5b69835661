"""Faults of sweep and report: huge grids, failed runs, resumes, two writers, killed parents, bad --out, leftovers."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import reports.report as report_mod
import reports.runner as runner
from reports.cli import main
from reports.config import ReportConfig
from reports.files import atomic_write_bytes, exclusive_lock, read_json_lines
from reports.report import MANIFEST_NAME, _report_lock, build_report
from reports.sweep import RESULTS_NAME, SweepConfig, expand_points, load_results, results_frame, run_sweep
from spela_hw.errors import ConfigError

TINY_SWEEP = {"dataset": "mnist-bundled", "train_samples": 150, "test_samples": 60, "energy_samples": 20, "epochs": 1}
TINY_REPORT = dict(dims=(784, 16, 10), bits=(8,), rules=("spela", "backprop"), presets=("mcu-256kb",), epochs=1,
                   train_samples=100, test_samples=50, few_shot_trials=0, energy_samples=10, spiking="off",
                   workers=1)


def _sweep_config(tmp_path, grid, **sweep):
    return SweepConfig.from_dict({"sweep": {**TINY_SWEEP, "out": str(tmp_path / "out"), **sweep}, "grid": grid})


def _write_toml(path, grid, **sweep):
    lines = ["[sweep]"] + [f"{k} = {json.dumps(v)}" for k, v in {**TINY_SWEEP, **sweep}.items()]
    lines += ["[grid]"] + [f"{k} = {json.dumps(v)}" for k, v in grid.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def _no_work(*args, **kwargs):
    raise AssertionError("work started")


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# -- grid size ----------------------------------------------------------------------------------------

BIG_GRID = {"dims": [[784, 16, 10]], "bits": [8], "presets": ["mcu-256kb"], "rules": ["spela"],
            "seeds": list(range(200)), "batch_size": list(range(1, 101))}  # 20,000 points


def test_a_grid_over_the_limit_is_refused_before_a_point_is_built(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "run_tasks", _no_work)
    huge = SweepConfig.from_dict({"sweep": {"out": str(tmp_path / "out")},
                                  "grid": {**BIG_GRID, "epochs": list(range(1, 201))}})  # 4 million points
    assert huge.n_points == 4_000_000
    with pytest.raises(ConfigError) as e:
        expand_points(huge)  # refused from the axis lengths, nothing expanded
    assert e.value.field == "sweep.max_points" and "4,000,000 points" in str(e.value)
    cfg = _sweep_config(tmp_path, BIG_GRID)
    with pytest.raises(ConfigError, match="20,000 points.*--max-points"):
        run_sweep(cfg, workers=1, report=False)
    assert not (tmp_path / "out" / RESULTS_NAME).exists()


def test_max_points_raises_the_limit_and_the_count_and_an_estimate_are_announced(tmp_path, monkeypatch, capsys):
    seen = {}

    def record(fn, tasks, on_result, **kw):
        seen["tasks"] = len(list(tasks))

    monkeypatch.setattr(runner, "run_tasks", record)
    toml = _write_toml(tmp_path / "big.toml", BIG_GRID, out=str(tmp_path / "out"))
    assert main(["sweep", str(toml), "--no-report"]) == 2
    assert "--max-points 20000" in capsys.readouterr().err
    assert main(["sweep", str(toml), "--no-report", "--max-points", "0"]) == 2
    assert "sweep.max_points" in capsys.readouterr().err
    assert main(["sweep", str(toml), "--no-report", "--max-points", "20000"]) == 0
    assert seen["tasks"] == 20_000  # every batch size and seed is its own training run
    err = capsys.readouterr().err
    assert "20000 points" in err and "estimated time about" in err and "rough estimate" in err
    # the same limit from the file
    toml = _write_toml(tmp_path / "big2.toml", BIG_GRID, out=str(tmp_path / "out2"), max_points=20_000)
    assert main(["sweep", str(toml), "--no-report"]) == 0


def test_a_repeated_axis_value_is_refused(tmp_path):
    with pytest.raises(ConfigError) as e:
        _sweep_config(tmp_path, {"seeds": [0, 1, 0]})
    assert e.value.field == "grid.seeds"


# -- resume never duplicates a point --------------------------------------------------------------------

def test_resume_never_reruns_a_recorded_point_whatever_its_status(tmp_path, monkeypatch, backprop_fails):
    import reports.experiments as ex

    real = backprop_fails
    # fp32 on a crossbar preset is not applicable; backprop fails; SPELA on the MCU is ok.
    cfg = _sweep_config(tmp_path, {"dims": [[784, 16, 10]], "bits": ["fp32"], "presets": ["sram-cim-22nm", "mcu-256kb"],
                                   "rules": ["spela", "backprop"]})
    first = run_sweep(cfg, workers=1, report=False)
    lines = read_json_lines(first.results_path)
    assert sorted(r["status"] for r in lines) == ["error", "error", "not_applicable", "ok"]
    again = run_sweep(cfg, workers=1, resume=True, report=False)
    assert again.ran == 0 and again.skipped == 4 and len(read_json_lines(first.results_path)) == 4
    assert len(again.failures) == 2  # still failed: reported, not forgotten
    # --retry-failed runs the failed points again: their new record supersedes the old one
    monkeypatch.setattr(ex, "train_task", real)
    retried = run_sweep(cfg, workers=1, resume=True, retry_failed=True, report=False)
    assert retried.ran == 2 and retried.failures == []
    assert len(read_json_lines(first.results_path)) == 6
    latest = load_results(first.results_path)
    # (backprop fp32 on the crossbar preset failed with its group, and now does not apply)
    assert sorted(r["status"] for r in latest.values()) == ["not_applicable", "not_applicable", "ok", "ok"]
    assert run_sweep(cfg, workers=1, resume=True, retry_failed=True, report=False).ran == 0
    # a results list with repeated points (an older writer) is read as one row per point, the latest
    df = results_frame(read_json_lines(first.results_path))
    assert len(df) == 4 and df["point_id"].is_unique and (df["status"] != "error").all()


def test_resume_on_dask_never_duplicates_a_point(tmp_path):
    import distributed

    cfg = _sweep_config(tmp_path, {"dims": [[784, 16, 10]], "bits": ["fp32"], "presets": ["sram-cim-22nm", "mcu-256kb"],
                                   "rules": ["spela"]})
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None) as client:
        first = run_sweep(cfg, scheduler=client, report=False)
        again = run_sweep(cfg, scheduler=client, resume=True, report=False)
    assert first.ran == 2 and again.ran == 0 and len(read_json_lines(first.results_path)) == 2


def test_sweep_exits_1_and_lists_the_failed_points(tmp_path, monkeypatch, capsys):
    import reports.experiments as ex

    def broken(task):
        raise FloatingPointError("simulated divergence")

    monkeypatch.setattr(ex, "train_task", broken)
    toml = _write_toml(tmp_path / "s.toml", {"dims": [[784, 16, 10]], "bits": [8], "presets": ["mcu-256kb"],
                                             "rules": ["spela"]}, out=str(tmp_path / "out"))
    assert main(["sweep", str(toml), "--workers", "1"]) == 1
    err = capsys.readouterr().err
    assert "failed: spela int8 784-16-10 mcu-256kb seed 0: FloatingPointError: simulated divergence" in err
    assert (tmp_path / "out" / "report" / "index.html").exists()


# -- report: failures are not success -------------------------------------------------------------------

@pytest.mark.parametrize("failing", [("backprop",), ("spela", "backprop")])
def test_report_with_failed_runs_exits_1_lists_them_and_is_marked_incomplete(tmp_path, monkeypatch, capsys, failing):
    real = report_mod.run_task

    def flaky(task):
        if task.get("rule") in failing:
            raise FloatingPointError("simulated divergence")
        return real(task)

    monkeypatch.setattr(report_mod, "run_task", flaky)  # workers=1 runs the tasks in this process
    out = tmp_path / "rep"
    args = ["report", "--dims", "784,16,10", "--bits", "8", "--rules", "spela,backprop", "--presets", "mcu-256kb", "--seeds", "0",
            "--epochs", "1", "--train-samples", "100", "--test-samples", "50", "--few-shot-trials", "0",
            "--energy-samples", "10", "--spiking", "off", "--workers", "1", "--out", str(out)]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "failed: " in err and "FloatingPointError: simulated divergence" in err and "incomplete" in err
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert manifest["complete"] is False and len(manifest["failures"]) == len(failing)
    assert "Incomplete report" in (out / "index.html").read_text()


# -- one report writer per --out ------------------------------------------------------------------------

def test_a_second_report_on_the_same_out_is_refused_naming_the_holder(tmp_path, monkeypatch):
    monkeypatch.setattr(report_mod, "run_tasks", _no_work)
    out = (tmp_path / "rep").resolve()
    with _report_lock(out):
        with pytest.raises(ConfigError) as e:
            build_report(ReportConfig(**TINY_REPORT, out=str(out)))
    assert e.value.field == "out" and f"another report is writing {out} (pid {os.getpid()})" in str(e.value)


def test_sweep_and_report_share_one_lock_helper(tmp_path):
    with exclusive_lock(tmp_path / "out" / ".lock", "sweep", tmp_path / "out"):
        cfg = _sweep_config(tmp_path, {"rules": ["spela"], "bits": [8], "presets": ["mcu-256kb"]})
        with pytest.raises(ConfigError, match=r"another sweep is writing .*\(pid \d+\)"):
            run_sweep(cfg, workers=1, report=False)


# -- bad --out ---------------------------------------------------------------------------------------------

def test_a_bad_out_fails_before_any_work_naming_the_path(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(report_mod, "run_tasks", _no_work)
    monkeypatch.setattr(runner, "run_tasks", _no_work)
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    for out in (a_file, a_file / "sub"):
        with pytest.raises(ConfigError) as e:
            build_report(ReportConfig(**TINY_REPORT, out=str(out)))
        assert e.value.field == "out" and str(a_file) in str(e.value)
        toml = _write_toml(tmp_path / "s.toml", {"rules": ["spela"], "bits": [8], "presets": ["mcu-256kb"]})
        assert main(["sweep", str(toml), "--out", str(out), "--workers", "1"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("spela-hw sweep: error: out: ") and str(a_file) in err and "Traceback" not in err


# -- leftovers of killed runs; durable renames ----------------------------------------------------------------

def test_stale_staging_folders_of_dead_reports_are_removed_live_ones_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(report_mod, "run_task", lambda task: (_ for _ in ()).throw(RuntimeError("skip")))
    dead, live = _dead_pid(), os.getppid()
    for name in (f".rep.partial-{dead}", f".rep.old-{dead}", f".rep.partial-{live}", f".other.partial-{dead}"):
        (tmp_path / name / "tables").mkdir(parents=True)
    build_report(ReportConfig(**TINY_REPORT, out=str(tmp_path / "rep")))
    left = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("."))
    assert left == [".other.partial-" + str(dead), ".rep.lock", f".rep.partial-{live}"]


def test_a_report_killed_between_its_renames_gets_its_previous_report_back(tmp_path):
    dead = _dead_pid()
    old = tmp_path / f".rep.old-{dead}"
    old.mkdir()
    (old / MANIFEST_NAME).write_text(json.dumps({"generator": "spela-hw report"}))
    with pytest.raises(ConfigError):  # stops before any run: only the recovery happened
        build_report(ReportConfig(**{**TINY_REPORT, "dims": (700, 16, 10)}, out=str(tmp_path / "rep")))
    assert (tmp_path / "rep" / MANIFEST_NAME).is_file() and not old.exists()


def test_stale_temporaries_of_dead_writers_are_removed_live_ones_kept(tmp_path):
    cfg = _sweep_config(tmp_path, {"dims": [[784, 16, 10]], "bits": [8], "presets": ["mcu-256kb"], "rules": ["spela"]})
    run_sweep(cfg, workers=1)
    out = tmp_path / "out"
    dead, live = _dead_pid(), os.getppid()
    stale = [out / f".sweep.json.{dead}.abc123.tmp", out / "report" / "tables" / f".results.csv.{dead}.x_y9.tmp"]
    kept = [out / f".sweep.json.{live}.abc123.tmp", out / "notes.tmp"]
    for p in stale + kept:
        p.write_text("partial")
    run_sweep(cfg, workers=1, resume=True, report=False)
    assert not any(p.exists() for p in stale) and all(p.exists() for p in kept)


def test_replacements_fsync_their_directory(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync

    def fsync(fd):
        synced.append(os.fstat(fd))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    atomic_write_bytes(tmp_path / "sub" / "x.bin", b"data")
    assert any(os.path.samestat(st, os.stat(tmp_path / "sub")) for st in synced)
    assert not list((tmp_path / "sub").glob("*.tmp"))
    staging, out = tmp_path / ".rep.partial-1", tmp_path / "rep"
    staging.mkdir()
    synced.clear()
    report_mod._swap_in(staging, out)
    assert any(os.path.samestat(st, os.stat(tmp_path)) for st in synced)


# -- workers end with their parent ----------------------------------------------------------------------------

def _children(pid: int) -> list[int]:
    kids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
                cmd = (d / "cmdline").read_bytes()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid and b"spawn_main" in cmd:
                kids.append(int(d.name))
    return kids


def _gone(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_pool_workers_end_when_the_sweep_is_killed(tmp_path, sig):
    grid = {"dims": [[784, 64, 10]], "bits": [8], "presets": ["mcu-256kb"], "rules": ["backprop"],
            "seeds": [0, 1, 2, 3]}
    toml = _write_toml(tmp_path / "s.toml", grid, train_samples=8000, epochs=3, out=str(tmp_path / "out"))
    proc = subprocess.Popen([sys.executable, "-c", "import sys; from reports.cli import main; sys.exit(main())",
                             "sweep", str(toml), "--workers", "2", "--no-report"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    workers = []
    try:
        deadline = time.monotonic() + 120
        while len(workers) < 2 and time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail("the sweep ended before its workers could be seen: " + proc.stderr.read().decode()[-2000:])
            workers = _children(proc.pid)
            time.sleep(0.05)
        assert len(workers) == 2
        time.sleep(0.5)  # let the workers start their tasks
        os.kill(proc.pid, sig)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 5
        while not all(_gone(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert all(_gone(w) for w in workers), "pool workers outlived their parent"
        if sig == signal.SIGTERM:  # handled: the pool was torn down on the way out
            assert proc.returncode == 128 + signal.SIGTERM
    finally:
        for w in workers:  # never leave them behind, even when the test fails
            if not _gone(w):
                os.kill(w, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_the_portable_watchdog_alone_ends_an_orphaned_worker():
    # The worker skips prctl (as off Linux) and must notice on its own that its parent is gone.
    worker = ("import sys, time; import reports.runner as r; r.sys = type('S', (), {'platform': 'other'}); "
              "r._die_with_parent(int(sys.argv[1])); print('ready', flush=True); time.sleep(60)")
    parent = ("import os, subprocess, sys; "
              f"p = subprocess.Popen([sys.executable, '-c', {worker!r}, str(os.getpid())], stdout=subprocess.PIPE, "
              "stderr=subprocess.DEVNULL); "
              "print(p.pid, p.stdout.readline().decode(), flush=True)")  # exits once the worker watches it
    out = subprocess.run([sys.executable, "-c", parent], capture_output=True, text=True, timeout=60)
    assert "ready" in out.stdout, out.stderr
    pid = int(out.stdout.split()[0])
    deadline = time.monotonic() + 5
    while not _gone(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        assert _gone(pid), "an orphaned worker outlived its parent"
    finally:
        if not _gone(pid):
            os.kill(pid, signal.SIGKILL)


def test_a_model_save_removes_the_temporary_a_killed_save_left(tmp_path):
    """``train`` killed inside a checkpoint write leaves ``.m.npz.<pid>.<random>.tmp``; the next save
    removes it (its writer is dead) and never a live writer's."""
    import numpy as np

    from spela_hw import SpelaClassifier

    X = np.random.default_rng(0).random((20, 6)).astype(np.float32)
    clf = SpelaClassifier((4, 3), random_state=0).fit(X, np.arange(20) % 3)
    stale, live = tmp_path / f".m.npz.{_dead_pid()}.k1ll3d_.tmp", tmp_path / f".m.npz.{os.getppid()}.w0rk1ng.tmp"
    other = tmp_path / f".other.npz.{_dead_pid()}.abc.tmp"
    for p in (stale, live, other):
        p.write_bytes(b"partial")
    clf.save(tmp_path / "m.npz")
    assert not stale.exists() and live.exists() and other.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["m.npz", live.name, other.name])
