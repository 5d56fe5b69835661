"""``spela-hw size``: memory ledger, crossbar tiling and energy/latency of a design point.

Example::

    spela-hw size --dims 784,1024,10 --preset rram-22nm --weight-bits 8 \\
        --rule spela,backprop --batch-size 50 --budget 256KiB
    spela-hw size --net c32k5p2-c64k5p2-d10 --dataset fashion-mnist --conv-target fixed_projection
    spela-hw size --model runs/spela-mnist.npz      # exactly the network a model file was trained as

Plain aligned text by default (every table names the conventions in force); ``--json`` prints
one JSON object with tidy records for scripts (strict JSON: a value that was not computed, such
as the energy of a rule the hardware model does not price, is ``null``; see :mod:`spela_hw.jsonio`).
"""

from __future__ import annotations

import math
import sys
import tomllib

from reports.cli import dataset_help, model_file
from reports.cli.cmd_train import add_conv_options, conv_spec_options
from sim import (BitWidths, design_point, hardware_from_dict, load_hardware_toml, preset_dict, vgg8)
from sim.energy import CATEGORIES
from sim.units import BYTE_UNITS_HELP, format_bytes, format_si
from sim.workload import as_workload
from spela_hw import jsonio
from spela_hw.conv import ConvNetSpec
from spela_hw.errors import ConfigError
from spela_hw.specs import DEFAULT_SR_BITS, SR_BITS_RANGE

NETWORKS = {"vgg8": vgg8}


def register(sub) -> None:
    p = sub.add_parser("size", help="memory ledger, crossbar tiling and energy/latency of a design point",
                       description="Size memory, arrays and energy per sample for on-device learning.")
    net = p.add_mutually_exclusive_group()
    net.add_argument("--dims", help="layer widths, e.g. 784,1024,10 (default)")
    net.add_argument("--network", choices=sorted(NETWORKS), help="a named network (vgg8: NeuroSim's VGG-8)")
    net.add_argument("--net", help="a conv network as train --net takes it, e.g. c32k5p2-c64k5p2-d10 "
                                   "(with --input-shape or --dataset)")
    net.add_argument("--model", help="a saved model file (train --out): sizes the network it describes")
    p.add_argument("--classes", type=int, help="number of classes (default: the last width; --net: the "
                                               "dataset's, else 10)")
    add_conv_options(p, dataset=True)
    hw = p.add_mutually_exclusive_group()
    hw.add_argument("--preset", default=None, help="hardware preset (see `spela-hw presets`; default rram-22nm)")
    hw.add_argument("--hardware", help="hardware TOML file (may start from a preset with base = \"...\")")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a hardware field, e.g. periphery.adc_bits=6 or conventions.adc_energy=mnsim_cycles")
    p.add_argument("--rule", default="spela,backprop", help="comma-separated rules (spela, backprop, sigprop, "
                                                            "forward_forward, pepita, drtp)")
    p.add_argument("--optimizer", choices=("sgd", "momentum", "adam"),
                   help="optimiser state in the ledger (default sgd; --model: the model's, for a SPELA conv "
                        "network its conv blocks' optimiser)")
    p.add_argument("--weight-bits", type=int, default=8)
    p.add_argument("--activation-bits", type=int, default=8)
    p.add_argument("--update-bits", type=int, default=16)
    p.add_argument("--accumulator-bits", type=int, default=32)
    p.add_argument("--class-vector-bits", type=int, default=8)
    p.add_argument("--master-bits", type=int, default=0, help="master/accumulator copy width (0 = none)")
    p.add_argument("--gradient-bits", type=int, default=32)
    p.add_argument("--sr-bits", type=int, default=DEFAULT_SR_BITS,
                   help=f"random bits per synapse of the stochastic-rounding unit, as train --sr-bits "
                        f"(default {DEFAULT_SR_BITS}; 0 = no stochastic rounding)")
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--budget", help="memory budget: a bare size limits SRAM (256KiB; weights held in crossbar "
                                    "cells do not count against it); per level: sram=256KiB,crossbar=1MiB,"
                                    "nvm=1MiB,dram=2GiB; total=... caps the on-chip sum. Units: "
                                    + BYTE_UNITS_HELP.replace("%", "%%"))
    p.add_argument("--exit-layer", type=int, help="inference read-out layer (1-based; default the last)")
    p.add_argument("--samples-per-day", type=float, default=1000.0, help="for the device lifetime estimate")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=run)


def _parse_scalar(text: str):
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def build_hardware(preset: str | None, path: str | None, sets: list[str]):
    """A HardwareConfig from a preset or file plus ``--set section.key=value`` overrides."""
    if path:
        hw = load_hardware_toml(path)
        if not sets:
            return hw
        d = hw.to_dict()
    else:
        d = preset_dict(preset or "rram-22nm")
    for item in sets:
        key, sep, value = item.partition("=")
        if not sep or "." not in key:
            raise ConfigError("--set", f"expected section.key=value, got {item!r}")
        section, field = key.split(".", 1)
        if section not in d or not isinstance(d[section], dict):
            if section in ("technology", "crossbar", "device", "periphery", "dram", "conventions"):
                d[section] = {}
            else:
                raise ConfigError(key, "unknown section")
        d[section][field] = _parse_scalar(value)
    return hardware_from_dict(d)


def _conv_network(args):
    """The ConvNetSpec of --net, its input shape from --input-shape or --dataset."""
    kw = conv_spec_options(args)
    info = None
    if args.dataset is not None:
        from spela_hw.datasets import DATASETS

        if args.dataset not in DATASETS:
            raise ConfigError("dataset", f"unknown dataset {args.dataset!r}; one of {sorted(DATASETS)}")
        info = DATASETS[args.dataset]
        if "input_shape" in kw and kw["input_shape"] != tuple(info.image_shape):
            raise ConfigError("input-shape", f"{kw['input_shape']} but {args.dataset} holds "
                                             f"{tuple(info.image_shape)} images: give one of the two")
    shape = kw.pop("input_shape", None) or (tuple(info.image_shape) if info else None)
    if shape is None:
        raise ConfigError("input-shape", "--net needs the input shape: give --input-shape C,H,W or --dataset")
    n_classes = args.classes or (info.n_classes if info else 10)
    return ConvNetSpec.parse(args.net, shape, n_classes=n_classes, **kw)


def _model_network(args):
    """The network description stored in a model file (a dense NetworkSpec or a ConvNetSpec)."""
    from spela_hw.io import load_model

    if args.classes is not None:
        raise ConfigError("classes", f"the model {args.model} fixes its classes: leave --classes out")
    clf = load_model(model_file(args.model))
    return getattr(clf, "spec_", None) or clf.network_spec_, model_optimizer(clf)


def model_optimizer(clf) -> str:
    """The optimiser whose state a trained model keeps: its rule's, or for a SPELA conv network the
    conv blocks' (they and their projections hold nearly all trainable values)."""
    opt = getattr(clf, "conv_optimizer_", None) if clf.rule_.name == "spela" else None
    opt = opt or clf.rule_.optimizer
    return "adam" if opt.kind == "adam" else ("momentum" if getattr(opt, "momentum", 0.0) > 0 else "sgd")


def _network(args):
    """The workload the options describe, and the optimiser of a model file (None otherwise)."""
    if args.model is None and args.net is None and args.dataset is not None:
        raise ConfigError("dataset", "gives the input shape of a conv network: give --net too")
    if args.net is not None:
        return as_workload(_conv_network(args)), None
    conv_spec_options(args)  # refuses conv options without --net
    if args.model is not None:
        network, optimizer = _model_network(args)
        return as_workload(network), optimizer
    if args.network:
        return NETWORKS[args.network](), None
    text = args.dims or "784,1024,10"
    try:
        dims = tuple(int(x) for x in text.split(","))
    except ValueError:
        raise ConfigError("--dims", f"must be comma-separated integers, got {text!r}") from None
    from sim import Workload

    return Workload.dense(dims, args.classes), None


def _check_numbers(args, n_layers: int) -> None:
    """Refuse numbers the model would otherwise reinterpret (0 classes = the default, exit layer
    0 = the last, a negative rate)."""
    if args.classes is not None and args.classes < 2:
        raise ConfigError("classes", f"must be an integer >= 2, got {args.classes}")
    if args.exit_layer is not None and not 1 <= args.exit_layer <= n_layers:
        raise ConfigError("exit-layer", f"must be a layer from 1 to {n_layers} (1-based), got {args.exit_layer}")
    if not 0.0 < args.samples_per_day < math.inf:
        raise ConfigError("samples-per-day", f"must be a positive finite number, got {args.samples_per_day}")
    lo, hi = SR_BITS_RANGE  # the trainer's SR unit (train --sr-bits), or none
    if args.sr_bits != 0 and not lo <= args.sr_bits <= hi:
        raise ConfigError("sr-bits", f"must be 0 (no stochastic rounding) or from {lo} to {hi} as "
                                     f"train --sr-bits, got {args.sr_bits}")


def compute(args) -> list:
    hw = build_hardware(args.preset, args.hardware, args.set)
    wl, model_opt = _network(args)
    optimizer = args.optimizer or model_opt or "sgd"
    _check_numbers(args, wl.n_layers)
    bits = BitWidths(weight=args.weight_bits, activation=args.activation_bits, update=args.update_bits,
                     accumulator=args.accumulator_bits, class_vector=args.class_vector_bits,
                     master=args.master_bits, gradient=args.gradient_bits, sr_random_bits=args.sr_bits)
    exit_layer = None if args.exit_layer is None else args.exit_layer - 1
    rules = [r.strip() for r in args.rule.split(",") if r.strip()]
    if not rules:
        raise ConfigError("--rule", "give at least one rule")
    return [design_point(wl, hw, r, bits, args.batch_size, budget=args.budget, exit_layer=exit_layer,
                         samples_per_day=args.samples_per_day, optimizer=optimizer) for r in rules]


# -- text rendering ---------------------------------------------------------------------------------


def _table(header: list[str], rows: list[list[str]], right: set[int] | None = None) -> list[str]:
    right = right if right is not None else set(range(1, len(header)))
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    out = []
    for r in [header] + rows:
        cells = [str(c).rjust(w) if i in right else str(c).ljust(w) for i, (c, w) in enumerate(zip(r, widths))]
        out.append("  ".join(cells).rstrip())
    out.insert(1, "  ".join("-" * w for w in widths))
    return out


def _energy(pj: float) -> str:
    return format_si(pj * 1e-12, "J") if pj else "0"


def _time(ns: float) -> str:
    return format_si(ns * 1e-9, "s") if ns else "0"


def render_text(results: list) -> str:
    r0 = results[0]
    lines = [f"spela-hw size: {r0.network} on {r0.hardware}; batch {r0.batch_size}; "
             f"counts: {r0.counts_source}"]
    b = r0.bits
    lines.append(f"bits: weight {b.weight}, bias {b.bias}, activation {b.activation}, error {b.error}, "
                 f"update {b.update}, accumulator {b.accumulator}, class vector {b.class_vector}, "
                 f"master {b.master or 'none'}, gradient {b.gradient}, optimiser state {b.optimizer_state}, "
                 f"SR random bits {b.sr_random_bits}")
    lines.append("conventions: " + ", ".join(f"{k}={v}" for k, v in r0.conventions.items()))
    names = [r.algorithm for r in results]

    # ledger
    lines += ["", f"Memory ledger, training at batch {r0.batch_size} (bytes @ level)"]
    classes: list[str] = []
    for r in results:
        for row in r.ledger_train.rows:
            if row.tensor_class not in classes:
                classes.append(row.tensor_class)
    rows = []
    for c in classes:
        cells = [c]
        for r in results:
            match = [x for x in r.ledger_train.rows if x.tensor_class == c]
            if not match:
                cells.append("-")
            else:
                by = sum(x.bytes for x in match)
                cells.append(f"{format_bytes(by)} @ {match[0].level}" if by else "0")
        rows.append(cells)
    rows.append(["peak (training)"] + [format_bytes(r.ledger_train.peak_bytes) for r in results])
    rows.append(["  of which on chip"] + [format_bytes(r.ledger_train.on_chip_bytes) for r in results])
    rows.append(["peak (inference, batch 1)"] + [format_bytes(r.ledger_infer.peak_bytes) for r in results])
    lines += _table(["tensor class"] + names, rows)
    lines += ["", "Formulas"]
    for r in results:
        for row in r.ledger_train.rows:
            if row.formula:
                note = f"  [{row.note}]" if row.note else ""
                lines.append(f"  {r.algorithm:<10} {row.tensor_class:<22} {row.formula}{note}")
    if r0.budget:
        lines += ["", f"Budget {r0.budget}"]
        for r in results:
            for tag, f in (("training", r.fit_train), ("inference", r.fit_infer)):
                verdict = "fits" if f.fits else "does NOT fit"
                lines.append(f"  {r.algorithm} {tag}: {verdict}")
                lines += [f"    - {why}" for why in f.reasons]

    # tiling
    t = r0.tiling
    if t.matrices:
        lines += ["", f"Crossbar tiling ({t.arrays} arrays, utilisation {100 * t.utilisation:.1f} %, "
                      f"cell area {t.array_area_mm2:.3g} mm2)"]
        rows = [[m.layer, m.matrix, m.fan_in, m.fan_out, m.positions, m.slices, m.columns,
                 f"{m.row_tiles}x{m.col_tiles}", m.arrays, f"{100 * m.utilisation:.1f}", m.conversions_per_mvm,
                 m.adc_slots_per_mvm, m.conversions_t_per_mvm] for m in t.matrices]
        lines += _table(["layer", "matrix", "n", "m", "MVMs", "slices", "columns", "tiles", "arrays", "util %",
                         "conv/MVM", "ADC slots", "conv^T/MVM"], rows, right=set(range(2, 13)))
    else:
        lines += ["", "Crossbar tiling: none (digital device)"]

    # energy
    for phase in ("train", "infer"):
        es = [r.energy_train if phase == "train" else r.energy_infer for r in results]
        label = "training sample" if phase == "train" else f"inference (exit at layer {r0.exit_layer + 1})"
        lines += ["", f"Energy per {label}"]
        rows = []
        for c in CATEGORIES:
            vals = [e.by_category()[c] if e is not None else math.nan for e in es]
            if all(v == 0 or math.isnan(v) for v in vals):
                continue
            rows.append([c] + [_energy(v) if not math.isnan(v) else "n/a" for v in vals])
        rows.append(["total"] + [_energy(e.total_pj) if e is not None else "n/a (no closed-form counts)" for e in es])
        lat_keys = ("forward", "error_path", "readout", "digital", "weight_write", "dram", "total")
        for k in lat_keys:
            vals = [e.latency_ns.get(k, 0.0) if e is not None else math.nan for e in es]
            if k != "total" and all(v == 0 or math.isnan(v) for v in vals):
                continue
            rows.append([f"latency {k}"] + [_time(v) if not math.isnan(v) else "n/a" for v in vals])
        if phase == "train":
            rows.append(["lifetime (days)"] + [
                ("n/a" if e is None or e.lifetime_days is None else
                 ("unlimited" if math.isinf(e.lifetime_days) else f"{e.lifetime_days:.4g}")) for e in es])
        lines += _table([f"category ({phase})"] + names, rows)
    e0 = next((r.energy_train for r in results if r.energy_train is not None), None)
    if e0 is not None:
        lines.append(f"lifetime at {e0.samples_per_day:g} samples/day until the most-written cell reaches its endurance")
    ph = sorted({p for r in results for e in (r.energy_train, r.energy_infer) if e is not None for p in e.placeholders})
    if ph:
        lines.append("placeholder numbers used (no measured basis): " + ", ".join(ph))
    notes = sorted({n for r in results for e in (r.energy_train, r.energy_infer) if e is not None for n in e.notes})
    lines += [f"note: {n}" for n in notes]
    return "\n".join(lines)


def chip_summary(args) -> dict | None:
    """The calibrated chip model's inference totals (presets with a ``[chip]`` section), compared
    with the published row they are calibrated on when the design point is that row's (VGG-8,
    8-bit weights and activations)."""
    hw = build_hardware(args.preset, args.hardware, args.set)
    if hw.chip is None:
        return None
    from sim.periphery import chip_estimate, compare_with_published, neurosim_table

    wl = _network(args)[0]
    est = chip_estimate(wl, hw, args.weight_bits, args.activation_bits)
    out = {"calibration": hw.chip.calibration, "published_row": hw.chip.published_row, **est.to_dict()}
    rows = neurosim_table()[0]
    if wl.name == "vgg8" and args.weight_bits == args.activation_bits == 8 and hw.chip.published_row in rows:
        row = rows[hw.chip.published_row]
        out["comparison"] = compare_with_published(est, row)
        out["source"] = row.source
    return out


def render_chip(chip: dict) -> str:
    lines = ["", "", f"Calibrated chip model ({chip['calibration']}; inference, pipelined, weight copies per layer "
                 f"{chip['duplication']}, {chip['arrays_duplicated']} arrays; bottleneck {chip['bottleneck']})"]
    if "comparison" in chip:
        rows = [[k, f"{v['ours']:.4g}", f"{v['published']:.4g}", f"{v['ratio']:.3f}",
                 "yes" if v["within_tolerance"] else "NO"] for k, v in chip["comparison"].items()]
        lines += _table(["metric", "ours", "published", "ratio", "within 25 %"], rows, right={1, 2, 3})
        lines.append(f"published: {chip['source']}")
    else:
        lines.append(f"energy per image {chip['energy_uj']:.4g} uJ, {chip['tops']:.4g} TOPS, "
                     f"{chip['tops_per_w']:.4g} TOPS/W, area {chip['area_mm2']:.4g} mm2 (no published row for this design point)")
    return "\n".join(lines)


def run(args) -> int:
    results = compute(args)
    chip = chip_summary(args)
    if args.json:
        doc = {"design_points": [r.to_dict() for r in results]}
        if chip is not None:
            doc["chip"] = chip
        print(jsonio.dumps(doc))
    else:
        print(render_text(results) + (render_chip(chip) if chip is not None else ""))
    sys.stdout.flush()
    return 0
