"""Named hardware presets shipped as TOML (``sim/presets/*.toml``), each citing its sources.

* ``rram-22nm``: RRAM crossbar training chip with NeuroSim V2.1 defaults;
* ``sram-cim-22nm``: SRAM compute-in-memory edge chip after NeuroSim V1.4 Table VII;
* ``neurosim-{sram,rram}-{22,5,1}nm-{32,64}r``: one per row of NeuroSim V1.4's Table VII, with a
  ``[chip]`` section naming the calibrated chip model (:mod:`sim.periphery`) and the row;
* ``mcu-256kb``: digital microcontroller with 256 KB SRAM and 1 MB flash (Lin et al. 2022).
"""

from __future__ import annotations

import copy
import functools
from importlib import resources
from pathlib import Path

from spela_hw.errors import ConfigError, naming_file

from .config import HardwareConfig, hardware_from_dict
from .tomlfile import read_toml

__all__ = ["list_presets", "load_hardware_toml", "load_preset", "preset_dict", "resolve_base", "resolve_hardware"]


def _preset_files() -> dict[str, object]:
    folder = resources.files("sim").joinpath("presets")
    return {p.name.removesuffix(".toml"): p for p in folder.iterdir() if p.name.endswith(".toml")}


def list_presets() -> list[str]:
    """Names of the shipped presets, sorted."""
    return sorted(_preset_files())


def preset_dict(name: str) -> dict:
    """The TOML-form dict of preset ``name`` (a copy)."""
    files = _preset_files()
    if name not in files:
        raise ConfigError("preset", f"unknown preset {name!r}; known: {', '.join(sorted(files))}")
    d = read_toml(files[name], f"preset {name}")
    if "base" in d:
        raise ConfigError(f"preset {name}.base", "shipped presets do not inherit")
    return d


@functools.lru_cache(maxsize=None)
def load_preset(name: str) -> HardwareConfig:
    """The validated :class:`HardwareConfig` of preset ``name`` (cached; configs are frozen)."""
    return hardware_from_dict(preset_dict(name), f"preset {name}")


def resolve_base(d: dict) -> dict:
    """The TOML-form dict ``d`` with ``base = "<preset>"`` resolved: that preset, overridden by what
    ``d`` gives (tables merge key by key; ``buffers`` replaces the list). ``d`` without ``base``
    is returned as it is."""
    if not isinstance(d, dict) or "base" not in d:
        return d
    if not isinstance(d["base"], str):
        raise ConfigError("base", f"must be a preset name, got {d['base']!r}")
    return _merge(preset_dict(d["base"]), {k: v for k, v in d.items() if k != "base"})


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def load_hardware_toml(path: str | Path) -> HardwareConfig:
    """Read a user hardware file (TOML; may start from a preset with ``base = "..."``).

    Every error is a :class:`ConfigError` naming the file and the field.
    """
    with naming_file(path):
        return hardware_from_dict(resolve_base(read_toml(path, "hardware")))


def resolve_hardware(hardware) -> HardwareConfig:
    """A :class:`HardwareConfig` from a config, a preset name, or a path to a ``.toml`` file."""
    if isinstance(hardware, HardwareConfig):
        return hardware
    if isinstance(hardware, str):
        if hardware.endswith(".toml"):
            return load_hardware_toml(hardware)
        return load_preset(hardware)
    raise ConfigError("hardware", f"must be a HardwareConfig, a preset name or a .toml path, got {hardware!r}")
