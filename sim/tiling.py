"""Crossbar mapping: tile every weight matrix (and on-chip class vectors) onto R x C arrays.

Rules (docs/hardware.md §4, [derived]); for a matrix with fan-in ``n`` and fan-out ``m``, weight
bits ``b_w``, cell bits ``b_c``, input bits ``b_x``, arrays ``R x C`` reading ``p`` rows at once,
and ``s = 1`` (offset mapping, one reference column per array outside the ``C`` data columns) or
``s = 2`` (differential pair)::

    slices         = ceil(b_w / b_c)
    columns        = m * slices * s
    arrays         = ceil(n / R) * ceil(columns / C)
    read phases    = ceil(min(n, R) / p)                 (1 when fully parallel)
    input cycles   = b_x (bit-serial) or 1 (DAC)
    conversions    = input cycles * ceil(n / R) * columns * read phases      per MVM
    ADC time slots = input cycles * columns_per_adc * read phases            per MVM (arrays in parallel)

The transposed read of backprop's error path drives the columns with the error (``b_e`` bits)
and converts rows. The slices of one weight sit in adjacent columns of one array (NeuroSim's
layout), and a row current cannot weight them by significance, so each slice is read on its
own: the ``ceil(min(columns, C) / slices)`` columns of that slice in the array are driven (``p``
at a time) and every row is converted, then shift-add combines the slices (NeuroSim V2's
``shiftAddBPWeight`` over ``numCellPerSynapse``)::

    phases_T       = ceil(ceil(min(columns, C) / slices) / p)
    conversions_T  = b_e * slices * n * ceil(columns / C) * phases_T
    ADC slots_T    = b_e * slices * columns_per_adc * phases_T

Per array and input bit the forward read converts ``C`` columns and the transposed read
``slices * R`` rows: with ``R = C`` the error path converts ``slices`` times (8x at 8 one-bit
slices) as often as the forward path, each conversion summing ``C / slices`` products. That
factor is the interleaved layout's, not a counting artefact; a slice-major layout (one
significance per array) would remove it.

A convolution (im2col) runs ``positions`` MVMs per sample on the same arrays (no weight
duplication is modelled).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from spela_hw.errors import ConfigError

from .config import HardwareConfig
from .workload import Workload

__all__ = ["MatrixTiling", "TilingResult", "tile_matrix", "tile_workload"]


@dataclass(frozen=True)
class MatrixTiling:
    """How one matrix maps onto arrays (counts per matrix-vector product unless stated)."""

    layer: str
    matrix: str  # "weights" or "class_vectors"
    fan_in: int
    fan_out: int
    positions: int
    weight_bits: int
    input_bits: int
    slices: int
    signed_factor: int
    columns: int
    row_tiles: int
    col_tiles: int
    arrays: int
    cells_used: int
    cells_total: int
    utilisation: float
    reference_columns: int
    read_phases: int
    input_cycles: int
    conversions_per_mvm: int
    adc_slots_per_mvm: int
    conversions_t_per_mvm: int
    adc_slots_t_per_mvm: int

    @property
    def conversions_per_sample(self) -> int:
        return self.conversions_per_mvm * self.positions

    def to_record(self) -> dict:
        d = asdict(self)
        d["conversions_per_sample"] = self.conversions_per_sample
        return d


def tile_matrix(
    layer: str,
    fan_in: int,
    fan_out: int,
    hardware: HardwareConfig,
    weight_bits: int,
    input_bits: int,
    error_bits: int = 8,
    positions: int = 1,
    matrix: str = "weights",
) -> MatrixTiling:
    """Tile one ``fan_out x fan_in`` matrix of ``weight_bits`` onto ``hardware``'s arrays."""
    xb, pe = hardware.crossbar, hardware.periphery
    if xb is None:
        raise ConfigError("crossbar", f"hardware {hardware.name!r} has no crossbar to tile onto")
    for name, v in (("weight_bits", weight_bits), ("input_bits", input_bits), ("error_bits", error_bits)):
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 32:
            raise ConfigError(name, f"must be an integer from 1 to 32, got {v!r}")
    R, C, p = xb.rows, xb.cols, xb.parallel_rows
    n, m = int(fan_in), int(fan_out)
    slices = -(-weight_bits // xb.cell_bits)
    s = 2 if hardware.conventions.signed_weights == "differential" else 1
    columns = m * slices * s
    row_tiles, col_tiles = -(-n // R), -(-columns // C)
    arrays = row_tiles * col_tiles
    cells_used = n * columns
    phases = -(-min(n, R) // p)
    cycles = input_bits if pe.input_encoding == "bit_serial" else 1
    err_cycles = error_bits if pe.input_encoding == "bit_serial" else 1
    conversions = cycles * row_tiles * columns * phases
    slots = cycles * pe.columns_per_adc * phases
    # one slice's columns are driven per transposed read (not all C columns of the array)
    slice_cols = -(-min(columns, C) // slices)
    phases_t = -(-slice_cols // p)
    conversions_t = err_cycles * slices * n * col_tiles * phases_t
    # rows of one array share its ADCs in the transposed read: columns_per_adc rows per converter
    slots_t = err_cycles * slices * pe.columns_per_adc * phases_t
    return MatrixTiling(
        layer, matrix, n, m, int(positions), weight_bits, input_bits, slices, s, columns, row_tiles,
        col_tiles, arrays, cells_used, arrays * R * C, cells_used / (arrays * R * C),
        arrays if s == 1 else 0, phases, cycles, conversions, slots, conversions_t, slots_t)


@dataclass(frozen=True)
class TilingResult:
    """Tiling of a whole workload.

    Attributes
    ----------
    matrices : tuple of MatrixTiling
        Weight matrices in layer order, then class-vector matrices (when stored on arrays).
    array_area_mm2 : float
        Cell area of all arrays (``cells * cell_area_F2 * F^2``), without periphery.
    """

    hardware: str
    matrices: tuple[MatrixTiling, ...]
    array_area_mm2: float

    @property
    def arrays(self) -> int:
        return sum(t.arrays for t in self.matrices)

    @property
    def cells_used(self) -> int:
        return sum(t.cells_used for t in self.matrices)

    @property
    def cells_total(self) -> int:
        return sum(t.cells_total for t in self.matrices)

    @property
    def utilisation(self) -> float:
        return self.cells_used / self.cells_total if self.cells_total else 0.0

    def weights_tiling(self) -> list[MatrixTiling]:
        return [t for t in self.matrices if t.matrix == "weights"]

    def to_records(self) -> list[dict]:
        return [{"hardware": self.hardware, **t.to_record()} for t in self.matrices]

    def summary(self) -> dict:
        return {"hardware": self.hardware, "arrays": self.arrays, "cells_used": self.cells_used,
                "cells_total": self.cells_total, "utilisation": self.utilisation,
                "array_area_mm2": self.array_area_mm2}


def tile_workload(
    workload: Workload,
    hardware: HardwareConfig,
    weight_bits: int,
    input_bits: int,
    error_bits: int | None = None,
    class_vector_bits: int = 8,
    class_vectors_on_arrays: bool | None = None,
) -> TilingResult:
    """Tile every layer of ``workload``; class vectors too when they live on arrays.

    ``class_vectors_on_arrays`` defaults to ``conventions.class_vector_storage == "crossbar"``.
    A digital device (no crossbar) gives an empty result.
    """
    if hardware.crossbar is None:
        return TilingResult(hardware.name, (), 0.0)
    error_bits = input_bits if error_bits is None else error_bits
    mats = [tile_matrix(L.name, L.fan_in, L.fan_out, hardware, weight_bits, input_bits, error_bits,
                        L.positions) for L in workload.layers]
    if class_vectors_on_arrays is None:
        class_vectors_on_arrays = hardware.conventions.class_vector_storage == "crossbar"
    if class_vectors_on_arrays:
        mats += [tile_matrix(L.name, L.loss_dim, workload.n_classes, hardware, class_vector_bits,
                             input_bits, error_bits, 1, "class_vectors") for L in workload.layers]
    f_m = hardware.technology.node_nm * 1e-9
    area_mm2 = sum(t.cells_total for t in mats) * hardware.crossbar.device.cell_area_f2 * f_m * f_m * 1e6
    return TilingResult(hardware.name, tuple(mats), area_mm2)

