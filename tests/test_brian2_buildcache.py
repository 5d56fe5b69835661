"""The standalone build cache: one locked project folder per network shape, reused by the next
run of that shape (nothing recompiled), never shared by two runs at once."""

from pathlib import Path

import numpy as np
import pytest

from mappings.brian2 import BackendConfig, EncodingConfig, SpikingConfig, SpikingSpela, compiler_available
from mappings.brian2.buildcache import cached_build_dir
from spela_hw import ConfigError, NetworkSpec, Spela


def test_same_key_same_folder_and_a_busy_folder_is_not_shared(tmp_path, monkeypatch):
    monkeypatch.setenv("SPELA_HW_CACHE", str(tmp_path))
    with cached_build_dir({"layers": [3]}) as a:
        assert a is not None and Path(a).is_dir() and Path(a).is_relative_to(tmp_path)
        with cached_build_dir({"layers": [3]}) as busy:
            assert busy is None  # locked by the outer run: build in a temporary folder
        with cached_build_dir({"layers": [4]}) as other:
            assert other not in (None, a)
    with cached_build_dir({"layers": [3]}) as again:
        assert again == a


def test_an_unwritable_cache_falls_back_to_a_temporary_build(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("SPELA_HW_CACHE", str(blocker))  # a file, so no folder can be made in it
    with cached_build_dir({"layers": [3]}) as folder:
        assert folder is None


def test_build_cache_must_be_a_bool():
    with pytest.raises(ConfigError, match="backend.build_cache"):
        BackendConfig(build_cache="yes")


@pytest.mark.slow
@pytest.mark.skipif(not compiler_available(), reason="needs a C++ compiler")
def test_a_second_run_of_the_same_shape_compiles_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("SPELA_HW_CACHE", str(tmp_path))
    rng = np.random.default_rng(0)
    X, y = rng.random((6, 16)), np.arange(6) % 2
    cfg = SpikingConfig(encoding=EncodingConfig(present_ms=20.0, rest_ms=5.0, gate_start_ms=5.0, gate_stop_ms=20.0),
                        backend=BackendConfig(target="cpp_standalone", dt_ms=1.0))

    def objects():
        return {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.o")}

    SpikingSpela(NetworkSpec((16, 8, 4), n_classes=2), Spela(), cfg).fit(X, y)
    first = objects()
    assert first  # the project was built inside the cache
    SpikingSpela(NetworkSpec((16, 8, 4), n_classes=2), Spela(), cfg).fit(X[::-1], y[::-1])
    second = objects()
    recompiled = [p.name for p in first if second[p] != first[p]]
    # Same generated code: nothing is recompiled but the few files whose statements Brian2 writes
    # in a hash-dependent order (main.cpp's clock initialisations), not a new project.
    assert len(recompiled) <= len(first) // 4, recompiled
