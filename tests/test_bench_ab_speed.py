"""bench.ab_speed refuses what it cannot time (the timing itself is a benchmark, not a test)."""
from pathlib import Path

import pytest

from bench import ab_speed

REPO = Path(__file__).resolve().parent.parent


def test_refuses_a_folder_that_is_not_a_checkout(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        ab_speed.main([str(tmp_path), str(REPO), "--rounds", "1"])
    assert e.value.code == 2
    assert f"{tmp_path}: not a spela-hw checkout" in capsys.readouterr().err


def test_refuses_a_malformed_config(capsys):
    with pytest.raises(SystemExit) as e:
        ab_speed.main([str(REPO), str(REPO), "--configs", "spela-per-sample:fp32"])
    assert e.value.code == 2
    assert "RECIPE:PRECISION:THREADS" in capsys.readouterr().err
