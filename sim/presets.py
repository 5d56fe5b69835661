"""Named hardware presets shipped as TOML (``sim/presets/*.toml``), each citing its sources.

* ``rram-22nm``: RRAM crossbar training chip with NeuroSim V2.1 defaults;
* ``sram-cim-22nm``: SRAM compute-in-memory edge chip after NeuroSim V1.4 Table VII;
* ``neurosim-{sram,rram}-{22,5,1}nm-{32,64}r``: one per row of NeuroSim V1.4's Table VII, with a
  ``[chip]`` section naming the calibrated chip model (:mod:`sim.periphery`) and the row;
* ``mcu-256kb``: digital microcontroller with 256 KB SRAM and 1 MB flash (Lin et al. 2022).
"""

from __future__ import annotations

import functools
from importlib import resources

from spela_hw.errors import ConfigError

from .config import HardwareConfig, hardware_from_dict
from .tomlfile import read_toml

__all__ = ["list_presets", "load_preset", "preset_dict", "resolve_hardware"]


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


def resolve_hardware(hardware) -> HardwareConfig:
    """A :class:`HardwareConfig` from a config, a preset name, or a path to a ``.toml`` file."""
    if isinstance(hardware, HardwareConfig):
        return hardware
    if isinstance(hardware, str):
        if hardware.endswith(".toml"):
            from .config import load_hardware_toml

            return load_hardware_toml(hardware)
        return load_preset(hardware)
    raise ConfigError("hardware", f"must be a HardwareConfig, a preset name or a .toml path, got {hardware!r}")
