"""``spela-hw presets``: list the shipped hardware presets with their sources."""

from __future__ import annotations

import sys

from sim import list_presets, load_preset
from sim.units import format_bytes
from spela_hw import jsonio


def register(sub) -> None:
    p = sub.add_parser("presets", help="list hardware presets with their sources")
    p.add_argument("name", nargs="?", help="show one preset in full (TOML-form fields)")
    p.add_argument("--json", action="store_true", help="print JSON on stdout")
    p.set_defaults(func=run)


def _describe(hw) -> dict:
    d = {"name": hw.name, "description": hw.description, "sources": list(hw.sources),
         "node_nm": hw.technology.node_nm, "vdd_v": hw.technology.vdd_v, "clock_hz": hw.technology.clock_hz,
         "crossbar": None, "buffers": [{"name": b.name, "kind": b.kind, "size_bytes": b.size_bytes}
                                       for b in hw.buffers],
         "dram": hw.dram.present, "conventions": hw.conventions.describe(), "calibrated_on": _calibrated_on(hw)}
    if hw.crossbar is not None:
        x, p = hw.crossbar, hw.periphery
        d["crossbar"] = {"rows": x.rows, "cols": x.cols, "cell_bits": x.cell_bits, "device": x.device.kind,
                         "adc_bits": p.adc_bits, "columns_per_adc": p.columns_per_adc,
                         "input_encoding": p.input_encoding}
    return d


def _calibrated_on(hw) -> dict | None:
    """The published row a calibrated preset reproduces, with its source."""
    if hw.chip is None:
        return None
    from sim.periphery import neurosim_table

    row = neurosim_table()[0].get(hw.chip.published_row)
    return {"row": hw.chip.published_row, "calibration": hw.chip.calibration,
            "source": row.source if row is not None else None}


def run(args) -> int:
    names = [args.name] if args.name else list_presets()
    hws = [load_preset(n) for n in names]
    if args.json:
        print(jsonio.dumps({"presets": [(_describe(h) | ({"config": h.to_dict()} if args.name else {})) for h in hws]}))
        return 0
    for h in hws:
        t = h.technology
        if h.crossbar is not None:
            x, p = h.crossbar, h.periphery
            arch = (f"{x.device.kind.upper()} crossbar {x.rows}x{x.cols}, {x.cell_bits} bit/cell, "
                    f"{p.adc_bits}-bit ADC per {p.columns_per_adc} columns, {p.input_encoding} inputs")
        else:
            arch = "digital, no crossbar"
        mem = ", ".join(f"{b.name} {format_bytes(b.size_bytes)} {b.kind}" for b in h.buffers)
        print(f"{h.name}: {t.node_nm:g} nm, {t.vdd_v:g} V, {t.clock_hz / 1e6:g} MHz; {arch}; {mem}; "
              f"DRAM {'yes' if h.dram.present else 'no'}")
        print(f"  {h.description}")
        cal = _calibrated_on(h)
        if cal is not None:
            print(f"  calibrated: chip totals within 25 % of {cal['row']} ({cal['source']})")
        for s in h.sources:
            print(f"  source: {s}")
        if args.name:
            for section, body in h.to_dict().items():
                print(f"  {section} = {body}")
        print()
    sys.stdout.flush()
    return 0
