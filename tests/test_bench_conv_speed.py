"""``python -m bench.conv_speed``: its section of RESULTS.md, its ratios and its options."""

import pytest

from bench import conv_speed as C


def _meta(**kw):
    return {"quick": False, "date": "2026-01-01 00:00", "command": "python -m bench.conv_speed",
            "machine": {"cpu": "cpu", "cores": 2}, "uptime_before": "load 1", "uptime_after": "load 1",
            "load_before": 0.5, "load_after": 0.7,
            "budget_s": 1.0, "threads": 2, "batches": [1, 64], "min_batch": 8, "torch_threads": [2, 1], "notes": [], "data": "mnist",
            "torch_note": "PyTorch x (CPU)", **kw}


def test_render_compares_each_configuration_with_its_peer():
    ours = [{"precision": p, "norm": n, "batch": b, "samples": 64, "samples_per_s": 300.0, "first_fit_s": 1.0,
             "one_thread_per_s": 240.0} for p, n in C.CONFIGS for b in (1, C.DEFAULT_BATCH)]
    peer = [{"norm": n, "batch": b, "threads": t, "samples": 32, "samples_per_s": 100.0 * t}
            for n in ("batch", "none") for b in (1, C.DEFAULT_BATCH) for t in (1, 2)]
    text = C.render(ours, peer, _meta())
    assert text.startswith(C.BEGIN) and text.endswith(C.END) and "## Conv speed (issue 16)" in text
    rows = [line for line in text.splitlines() if line.startswith(("| fp32", "| w8"))]
    assert len(rows) == 6
    assert all("1.50×" in r and "3.00×" in r for r in rows)  # 300/s against 200/s (2 threads) and 100/s (1)
    assert all("| 240 | 1.25× |" in r for r in rows)  # two threads against one, in the same run
    assert "load 1" in text  # the machine's load is on record
    assert "otherwise idle" in text and "shared with other jobs" not in text


def test_a_loaded_machine_is_said_to_be_shared(monkeypatch):
    monkeypatch.setattr(C.os, "cpu_count", lambda: 2)
    text = C.render([], [], _meta(load_after=7.5))
    assert "shared with other jobs" in text and "otherwise idle" not in text


@pytest.mark.slow
def test_quick_run_writes_and_replaces_its_section(tmp_path):
    out = tmp_path / "RESULTS.md"
    out.write_text("# Benchmark results\n\n## Someone else's section\n\nkept\n")
    for _ in range(2):
        assert C.main(["--quick", "--no-torch", "--out", str(out)]) == 0
    text = out.read_text()
    assert text.count(C.BEGIN) == 1 and text.count(C.END) == 1 and "kept" in text
    assert "PyTorch peer not run" in text and "| w8 | none | 64 |" in text


@pytest.mark.parametrize("argv", [["--budget", "0"], ["--reps", "0"], ["--torch-threads", "two"], ["--batches", "0"],
                                  ["--batches", "1,x"], ["--min-batch", "0"]])
def test_bad_options_are_refused(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        C.main(argv)
    assert exc.value.code == 2
    assert "error" in capsys.readouterr().err
