"""Chip-level periphery, pipelining and area: a NeuroSim V1.4-style model calibrated on its Table VII.

The array model of :mod:`sim.tiling` counts what NeuroSim counts (arrays, bit-serial input cycles,
partial-parallel read phases, column conversions); this module adds what a chip needs around the
arrays, in NeuroSim's structure (``Chip.cpp`` -> ``Tile.cpp`` -> ``ProcessingUnit.cpp`` ->
``SubArray.cpp``), reduced to a few lumped, calibrated coefficients per memory and node
(``sim/tables/neurosim_v14.toml``):

==========================  ================================================================
per-read periphery energy   ``e_read`` per column conversion: sense amplifier / multilevel
                            S/A (the "ADC"), bit-line precharge, word-line drive of the active
                            rows, column mux, shift-and-add of the partial sum (NeuroSim's
                            "ADC" and "accumulation" groups scale with the number of reads)
per-MAC energy              ``e_mac`` per multiply-accumulate: cell array (``C V^2`` of the word
                            and bit lines, not ``V^2 G t``), tile and global buffers, interconnect,
                            adder trees across arrays, pooling/activation, leakage over the
                            pipeline cycle
pipelining                  NeuroSim duplicates the weights of early layers so every stage
                            handles about the same number of input vectors: speed-up of layer
                            ``l`` = ``ceil((IFM_l / bound)^2)``, ``bound = IFM_max / s``,
                            ``s = min(speedUpDegree, IFM_max / IFM_min)`` (``Chip.cpp``,
                            ``ChipDesignInitialize``); the image period is the slowest stage
stage time                  ``ceil(positions / dup) * (b_x * phases * columns_per_ADC * t_read
                            + t_mvm)``: bit-serial input cycles x read phases x multiplexed
                            columns share one converter, plus a per-vector overhead (buffer,
                            interconnect and tile accumulation latency)
area                        duplicated arrays x (``R C`` cells x cell area in F^2 at the node
                            + per-array periphery area: converters, shift-add, drivers, mux,
                            switch matrices, and the array's share of tile/global buffers,
                            accumulation and interconnect)
==========================  ================================================================

TOPS = ``2 * MACs / image period``; TOPS/W = ``2 * MACs / energy``; energy per image =
``N_conversions * e_read + MACs * e_mac``. NeuroSim's post-layout factor (``zeta = 1.22``) and its
leakage are inside the calibrated coefficients.

:func:`calibrate` derives the coefficients from the published rows (how, per coefficient, is in
the table's ``basis`` fields); the shipped table stores its output and a test checks they agree.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import lru_cache
from importlib import resources

from spela_hw.errors import ConfigError

from .config import HardwareConfig
from .tiling import tile_workload
from .tomlfile import read_toml
from .units import parse_quantity
from .workload import Workload

__all__ = [
    "TOLERANCE",
    "ChipCoefficients",
    "ChipEstimate",
    "PublishedRow",
    "calibrate",
    "chip_estimate",
    "compare_with_published",
    "neurosim_table",
    "pipeline_duplication",
]

#: Relative tolerance the calibrated presets claim against the published Table VII numbers.
TOLERANCE = 0.25

_TABLE = "neurosim_v14.toml"


@dataclass(frozen=True)
class ChipCoefficients:
    """Lumped periphery coefficients of one memory technology at one node.

    Attributes
    ----------
    name : str
        ``"<memory>-<node>nm"``, e.g. ``"sram-22nm"``.
    read_energy_pj : float
        Energy per column conversion (``e_read``).
    mac_energy_fj : float
        Energy per MAC of everything that does not scale with the number of reads (``e_mac``).
    read_time_ns : float
        Time of one converter cycle (one input bit, one read phase, one multiplexed column).
    mvm_overhead_ns : float
        Per input vector per pipeline stage (buffers, interconnect, tile accumulation).
    periphery_area_um2 : float
        Periphery and shared chip area per (duplicated) array.
    source, basis : str
        Where the numbers come from and how they were derived.
    """

    name: str
    read_energy_pj: float
    mac_energy_fj: float
    read_time_ns: float
    mvm_overhead_ns: float
    periphery_area_um2: float
    source: str
    basis: str


@dataclass(frozen=True)
class PublishedRow:
    """One row of NeuroSim V1.4's Table VII (VGG-8 on CIFAR-10 inference, 8-bit weights/inputs)."""

    name: str
    memory: str
    node_nm: float
    rows_read_at_once: int
    area_mm2: float
    tops: float
    tops_per_w: float
    accuracy: float
    source: str

    def energy_uj(self, ops: float) -> float:
        """Energy per image ``ops / (TOPS/W)`` (the manual gives no energy column)."""
        return ops / (self.tops_per_w * 1e12) * 1e6


def _energy(value, where):
    return parse_quantity(value, "energy", where) * 1e12  # pJ


@lru_cache(maxsize=1)
def neurosim_table() -> tuple[dict[str, PublishedRow], dict[str, ChipCoefficients]]:
    """The published Table VII rows and the calibrated coefficients (``sim/tables/neurosim_v14.toml``)."""
    path = resources.files("sim").joinpath("tables", _TABLE)
    doc = read_toml(path, _TABLE.removesuffix(".toml"))
    rows, coeffs = {}, {}
    try:
        for name, r in doc["published"].items():
            w = f"published.{name}"
            rows[name] = PublishedRow(
                name, r["memory"], round(parse_quantity(r["node"], "length", f"{w}.node") * 1e9, 9),
                int(r["rows_read_at_once"]), parse_quantity(r["area"], "area", f"{w}.area") * 1e6,
                float(r["tops"]), float(r["tops_per_w"]), float(r["accuracy"]), r["source"])
        for name, c in doc.get("calibration", {}).items():
            w = f"calibration.{name}"
            coeffs[name] = ChipCoefficients(
                name, _energy(c["read_energy"], f"{w}.read_energy"), _energy(c["mac_energy"], f"{w}.mac_energy") * 1e3,
                parse_quantity(c["read_time"], "time", f"{w}.read_time") * 1e9,
                parse_quantity(c["mvm_overhead"], "time", f"{w}.mvm_overhead") * 1e9,
                parse_quantity(c["periphery_area"], "area", f"{w}.periphery_area") * 1e12, c["source"], c["basis"])
    except KeyError as exc:
        raise ConfigError(f"{_TABLE}.{exc.args[0]}", "missing") from None
    return rows, coeffs


def pipeline_duplication(workload: Workload, speedup_degree: int) -> list[int]:
    """Weight copies per layer that balance NeuroSim's layer pipeline.

    A layer's IFM side is ``sqrt(positions)`` (stride-1 'same' convolutions; 1 for dense layers).
    """
    side = [math.isqrt(L.positions) for L in workload.layers]
    convs = [s for s, L in zip(side, workload.layers) if L.kind == "conv"] or [1]
    s_max, s_min = max(side), min(convs)
    degree = max(1, min(speedup_degree, s_max // s_min))
    bound = math.ceil(s_max / degree)
    return [max(1, math.ceil((s / bound) ** 2)) for s in side]


@dataclass(frozen=True)
class ChipEstimate:
    """Chip totals of one inference (one image) in the calibrated model.

    ``energy_pj`` splits into ``read_periphery_pj`` (conversions x ``e_read``) and ``mac_pj``
    (MACs x ``e_mac``); ``area_mm2`` into ``cell_area_mm2`` and ``periphery_area_mm2``.
    """

    hardware: str
    calibration: str
    macs: int
    conversions: int
    arrays: int
    arrays_duplicated: int
    duplication: tuple[int, ...]
    cell_area_mm2: float
    periphery_area_mm2: float
    read_periphery_pj: float
    mac_pj: float
    period_ns: float
    bottleneck: str
    stage_mvms: int
    stage_reads: int

    @property
    def ops(self) -> float:
        return 2.0 * self.macs

    @property
    def area_mm2(self) -> float:
        return self.cell_area_mm2 + self.periphery_area_mm2

    @property
    def energy_pj(self) -> float:
        return self.read_periphery_pj + self.mac_pj

    @property
    def tops(self) -> float:
        return self.ops / (self.period_ns * 1e-9) / 1e12

    @property
    def tops_per_w(self) -> float:
        return self.ops / (self.energy_pj * 1e-12) / 1e12

    def to_dict(self) -> dict:
        d = asdict(self)
        d["duplication"] = list(self.duplication)
        d.update(ops=self.ops, area_mm2=self.area_mm2, energy_pj=self.energy_pj, energy_uj=self.energy_pj / 1e6,
                 tops=self.tops, tops_per_w=self.tops_per_w)
        return d


def _coefficients(hw: HardwareConfig) -> ChipCoefficients:
    if hw.chip is None:
        raise ConfigError("chip", f"hardware {hw.name!r} has no [chip] calibration section")
    coeffs = neurosim_table()[1]
    if hw.chip.calibration not in coeffs:
        raise ConfigError("chip.calibration", f"unknown calibration {hw.chip.calibration!r}; known: {', '.join(sorted(coeffs))}")
    return coeffs[hw.chip.calibration]


def chip_estimate(workload: Workload, hardware: HardwareConfig, weight_bits: int = 8, input_bits: int = 8,
                  coefficients: ChipCoefficients | None = None) -> ChipEstimate:
    """Area, image period and energy of one inference of ``workload`` on ``hardware``.

    ``hardware`` needs a crossbar and a ``[chip]`` section naming its calibration (or pass
    ``coefficients``).
    """
    hw = hardware
    if hw.crossbar is None:
        raise ConfigError("crossbar", f"hardware {hw.name!r} has no crossbar: the chip model needs arrays")
    c = coefficients or _coefficients(hw)
    degree = hw.chip.speedup_degree if hw.chip is not None else 8
    tiling = tile_workload(workload, hw, weight_bits, input_bits, class_vectors_on_arrays=False)
    dup = pipeline_duplication(workload, degree)
    mats = tiling.weights_tiling()
    arrays_dup = sum(t.arrays * d for t, d in zip(mats, dup))
    xb = hw.crossbar
    f_um = hw.technology.node_nm * 1e-3
    cell_um2 = xb.rows * xb.cols * xb.device.cell_area_f2 * f_um * f_um
    conversions = sum(t.conversions_per_mvm * t.positions for t in mats)
    macs = sum(L.macs for L in workload.layers)
    cpa = hw.periphery.columns_per_adc
    stage = {}  # layer -> (period ns, MVMs per stage, converter cycles per MVM)
    for t, d in zip(mats, dup):
        reads = t.input_cycles * t.read_phases * cpa
        mvms = math.ceil(t.positions / d)
        stage[t.layer] = (mvms * (reads * c.read_time_ns + c.mvm_overhead_ns), mvms, reads)
    bottleneck = max(stage, key=lambda k: stage[k][0])
    period, mvms, reads = stage[bottleneck]
    return ChipEstimate(hw.name, c.name, int(macs), int(conversions), tiling.arrays, int(arrays_dup), tuple(dup),
                        arrays_dup * cell_um2 * 1e-6, arrays_dup * c.periphery_area_um2 * 1e-6,
                        conversions * c.read_energy_pj, macs * c.mac_energy_fj * 1e-3, period, bottleneck,
                        mvms, reads)


def compare_with_published(estimate: ChipEstimate, row: PublishedRow) -> dict:
    """Ours, theirs and ours/theirs for energy per image, TOPS, TOPS/W and area."""
    pairs = {"energy_uj": (estimate.energy_pj / 1e6, row.energy_uj(estimate.ops)), "tops": (estimate.tops, row.tops),
             "tops_per_w": (estimate.tops_per_w, row.tops_per_w), "area_mm2": (estimate.area_mm2, row.area_mm2)}
    return {k: {"ours": a, "published": b, "ratio": a / b, "within_tolerance": abs(a / b - 1) <= TOLERANCE}
            for k, (a, b) in pairs.items()}


def calibrate(workload: Workload, hardware_of_row, rows: dict[str, PublishedRow] | None = None) -> dict[str, dict]:
    """Derive the lumped coefficients from the published rows (what the shipped table stores).

    Parameters
    ----------
    workload : Workload
        VGG-8 (:func:`sim.workload.vgg8`).
    hardware_of_row : callable
        ``row name -> HardwareConfig`` of that row's preset (tiling, cell area, speed-up degree).
    rows : dict, optional
        Default: the shipped published rows.

    Returns
    -------
    dict
        ``{calibration name: {read_energy_pj, mac_energy_fj, read_time_ns, mvm_overhead_ns,
        periphery_area_um2}}``.

    Rules: at 22 nm each memory has a 32-row and a 64-row row; their energy difference over
    their conversion difference gives ``e_read``, the rest of the 64-row energy over the MACs
    gives ``e_mac``. The two SRAM 22 nm image periods give ``t_read`` and ``t_mvm`` (RRAM shares
    them: its TOPS are a prediction). Nodes with one row (5 nm, 1 nm SRAM) scale the SRAM 22 nm
    energies by one factor and the times by another (the split is assumed to carry over). The
    periphery area per array is each memory/node's 64-row area minus its cells, over its arrays.
    """
    rows = rows or neurosim_table()[0]
    est = {n: chip_estimate(workload, hardware_of_row(n), coefficients=_UNIT) for n in rows}
    energy = {n: rows[n].energy_uj(est[n].ops) * 1e6 for n in rows}  # pJ
    per_mvm = {n: est[n].ops / (rows[n].tops * 1e12) * 1e9 / est[n].stage_mvms for n in rows}  # ns

    def row(mem, node, p):
        return next(n for n, r in rows.items() if (r.memory, r.node_nm, r.rows_read_at_once) == (mem, node, p))

    def split(r64, r32):
        e_read = (energy[r32] - energy[r64]) / (est[r32].conversions - est[r64].conversions)
        return e_read, (energy[r64] - e_read * est[r64].conversions) / est[r64].macs * 1e3

    def area(n):
        return (rows[n].area_mm2 - est[n].cell_area_mm2) * 1e6 / est[n].arrays_duplicated

    s64, s32 = row("sram", 22.0, 64), row("sram", 22.0, 32)
    e_read, e_mac = split(s64, s32)
    t_read = (per_mvm[s32] - per_mvm[s64]) / (est[s32].stage_reads - est[s64].stage_reads)
    t_mvm = per_mvm[s64] - est[s64].stage_reads * t_read
    out = {"sram-22nm": {"read_energy_pj": e_read, "mac_energy_fj": e_mac, "read_time_ns": t_read,
                         "mvm_overhead_ns": t_mvm, "periphery_area_um2": area(s64)}}
    r64, r32 = row("rram", 22.0, 64), row("rram", 22.0, 32)
    out["rram-22nm"] = dict(zip(("read_energy_pj", "mac_energy_fj"), split(r64, r32)), read_time_ns=t_read,
                            mvm_overhead_ns=t_mvm, periphery_area_um2=area(r64))
    for node in sorted({r.node_nm for r in rows.values() if r.memory == "sram"} - {22.0}):
        n = row("sram", node, 64)
        k_e = energy[n] / (e_read * est[s64].conversions + e_mac * 1e-3 * est[s64].macs)
        k_t = per_mvm[n] / per_mvm[s64]
        out[f"sram-{node:g}nm"] = {"read_energy_pj": e_read * k_e, "mac_energy_fj": e_mac * k_e,
                                   "read_time_ns": t_read * k_t, "mvm_overhead_ns": t_mvm * k_t,
                                   "periphery_area_um2": area(n)}
    return out


#: Unit coefficients: with them a chip estimate returns raw counts (energy = conversions + MACs/1000
#: pJ; period = stage MVMs x (reads + 1) ns; no periphery area): what :func:`calibrate` solves from.
_UNIT = ChipCoefficients("unit", 1.0, 1.0, 1.0, 1.0, 0.0, "", "")
