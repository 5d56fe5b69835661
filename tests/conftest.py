"""Shared fixtures: real MNIST (a failure, not a skip, under CI when missing)."""

import os
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def mnist():
    """Full MNIST from SPELA_HW_DATA (or the sibling shared/data checkout)."""
    from spela_hw import load_dataset
    from spela_hw.errors import DataError

    root = os.environ.get("SPELA_HW_DATA") or (str(SHARED_DATA) if SHARED_DATA.exists() else None)
    try:
        if root is None:
            raise DataError("SPELA_HW_DATA is not set")
        return load_dataset("mnist", data_dir=root)
    except DataError as exc:
        if IN_CI:
            pytest.fail(f"real MNIST is required in CI: {exc}")
        pytest.skip(f"real MNIST not available: {exc}")


@pytest.fixture
def backprop_fails(monkeypatch):
    """Sweep training runs of backprop raise (a simulated divergence); SPELA's run as usual.

    Sweeps with ``workers=1`` run their groups in this process, so the patch reaches them. Returns
    the real ``train_task``, for a test that lets the failed points succeed on a retry."""
    import reports.experiments as ex

    real = ex.train_task

    def flaky(task):
        if task["rule"] == "backprop":
            raise FloatingPointError("simulated divergence")
        return real(task)

    monkeypatch.setattr(ex, "train_task", flaky)
    return real
