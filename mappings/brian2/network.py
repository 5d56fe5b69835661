"""Build the explicit Brian2 ``Network`` of a spiking SPELA model and run a schedule on it.

This is the only module that touches Brian2 objects; everything it returns is NumPy. The code
strings come from :mod:`mappings.brian2.codegen`. Per layer the network holds:

* a ``NeuronGroup`` of LIF neurons (``layer{k}``) with the output trace, the error ``delta`` set
  every step by a ``run_regularly`` operation, and its class code per neuron;
* a one-neuron normaliser (``norm{k}``) whose ``S_ye``/``S_yy`` are summed variables of an
  all-to-one ``Synapses`` (``sum{k}``); its norm and cosine are linked back into the layer;
* the plastic feed-forward ``Synapses`` (``syn{k}``) from the previous layer (or the input);
* a ``StateMonitor`` sampling the per-sample spike count once per sample.

A whole schedule is one ``run()`` (``driver="timed"``): pixels, labels, the envelope and the gate
are ``TimedArray`` s. :func:`run_per_sample_loop` is the straightforward alternative (Python sets
the inputs, then ``run()`` for each phase of each sample), kept for the benchmark.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field

import numpy as np

from spela_hw.errors import MappingError

from . import codegen
from .buildcache import cached_build_dir
from .config import SpikingConfig
from .schedule import Schedule

__all__ = ["LayerPlan", "RawRun", "resolve_target", "compiler_available", "run_schedule",
           "run_per_sample_loop", "merge_runs"]

log = logging.getLogger(__name__)


def compiler_available() -> bool:
    """Whether a C++ compiler is on the PATH (``$CXX``, ``g++``, ``c++`` or ``clang++``)."""
    names = [os.environ.get("CXX", ""), "g++", "c++", "clang++"]
    return any(n and shutil.which(n) for n in names)


def resolve_target(target: str) -> str:
    """``auto`` -> ``cpp_standalone`` with a compiler, else the runtime ``numpy`` target."""
    if target == "auto":
        return "cpp_standalone" if compiler_available() else "numpy"
    if target in ("cython", "cpp_standalone") and not compiler_available():
        raise MappingError(f"backend.target={target!r} needs a C++ compiler and none was found; "
                           f"use 'numpy' or 'auto'")
    return target


@dataclass
class LayerPlan:
    """What one layer needs to be built: sizes in neurons and its initial state.

    ``weights`` is ``(n_neurons, n_pre_neurons)`` in threshold units per spike; ``codes`` is
    ``(n_classes, n_units)`` (``n_units = n_neurons``, or half of it for ON/OFF pairs).
    """

    weights: np.ndarray
    biases: np.ndarray
    codes: np.ndarray
    eta: float = 0.0
    eta_b: float = 0.0

    @property
    def n_neurons(self) -> int:
        return self.weights.shape[0]


@dataclass
class RawRun:
    """Everything read back from one simulation, as NumPy arrays.

    ``counts[k]``: (n_samples, n_neurons) spikes of layer k in each presentation window.
    ``spikes``: per group (``"input"``, ``"layer1"``, ...) the totals ``train``, ``test`` and
    ``gated`` (spikes while the learning gate was open).
    """

    counts: list[np.ndarray]
    weights: list[np.ndarray]
    biases: list[np.ndarray]
    spikes: dict[str, dict[str, float]]
    target: str
    wall_s: float
    sim_s: float | None = None
    build_s: float | None = None
    extra: dict = field(default_factory=dict)


def merge_runs(parts: list[RawRun]) -> RawRun:
    """Consecutive runs as one: counts concatenated, spikes and times summed, last parameters."""
    spikes = {g: {k: sum(p.spikes[g][k] for p in parts) for k in parts[0].spikes[g]} for g in parts[0].spikes}

    def total(attr):
        values = [getattr(p, attr) for p in parts]
        return None if any(v is None for v in values) else float(sum(values))

    return RawRun([np.concatenate([p.counts[k] for p in parts]) for k in range(len(parts[0].counts))],
                  parts[-1].weights, parts[-1].biases, spikes, parts[0].target, total("wall_s"),
                  total("sim_s"), total("build_s"), {"chunks": len(parts),
                                                     "first_build_s": parts[0].build_s})


@contextlib.contextmanager
def _device(target: str, config: SpikingConfig, cache_key: dict | None = None):
    """Activate the requested Brian2 target for one build; always restore the runtime device.

    The standalone project goes to ``config.backend.build_dir`` if given, else (with
    ``backend.build_cache`` and a ``cache_key``) to the persistent folder of that key, else to a
    temporary folder."""
    import brian2 as b2

    if target != "cpp_standalone":
        old = b2.prefs.codegen.target
        b2.prefs.codegen.target = target
        try:
            yield None
        finally:
            b2.prefs.codegen.target = old
        return
    # Brian2 suffixes the names of code objects while earlier ones are alive (_1, _2, ...),
    # which changes the generated code of a second build in one process: free them first
    gc.collect()
    use_cache = config.backend.build_dir is None and config.backend.build_cache and cache_key is not None
    with (cached_build_dir(dict(cache_key, openmp_threads=config.backend.openmp_threads)) if use_cache
          else contextlib.nullcontext(None)) as cached:
        build_dir = config.backend.build_dir or cached
        tmp = None
        if build_dir is None:
            tmp = build_dir = tempfile.mkdtemp(prefix="spela_brian2_")
        b2.set_device("cpp_standalone", directory=build_dir, build_on_run=True, with_output=False)
        b2.prefs.devices.cpp_standalone.openmp_threads = config.backend.openmp_threads
        try:
            yield b2.get_device()
        finally:
            b2.get_device().reinit()
            from brian2.devices.device import reset_device

            reset_device("runtime")
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)


def _namespace(config: SpikingConfig, schedule: Schedule | None, quant_consts: dict) -> dict:
    import brian2 as b2

    neu, enc, pl = config.neuron, config.encoding, config.plasticity
    ns = {
        "tau_m": neu.tau_m_ms * b2.ms,
        "tau_y": neu.tau_y_ms * b2.ms,
        "t_ref": neu.t_ref_ms * b2.ms,
        "rate_max": enc.rate_max_hz * b2.Hz,
        "ttfs_T": enc.present_ms * enc.ttfs_span * b2.ms,
        "gate_thr": pl.gate_threshold,
        "gate_eps": pl.gate_floor,
        "norm_floor": pl.norm_floor,
        "w_max": pl.w_max,
    }
    ns.update(quant_consts)
    if schedule is not None:
        dt = config.backend.dt_ms
        env, gate = schedule.envelope_rows(enc, dt)
        slot = schedule.slot_ms(enc, dt) * b2.ms
        per_sample = enc.sample_ms * b2.ms
        # fixed names: Brian2 numbers unnamed TimedArrays per process, which would change the
        # generated code (and force a rebuild) at every run of one process
        ns["img"] = b2.TimedArray(schedule.images, dt=per_sample, name="ta_img")
        ns["label"] = b2.TimedArray(schedule.labels.astype(np.float64), dt=per_sample, name="ta_label")
        ns["is_train"] = b2.TimedArray(schedule.train.astype(np.float64), dt=per_sample, name="ta_is_train")
        ns["env"] = b2.TimedArray(env, dt=slot, name="ta_env")
        ns["gate"] = b2.TimedArray(gate, dt=slot, name="ta_gate")
    return ns


def _quant_constants(config: SpikingConfig) -> dict:
    q = config.plasticity.quantization
    if q is None:
        return {}
    levels = 2 ** (q.weight_bits - 1) - 1
    return {

        "wq_max": float(levels),
        "tq": q.trace_max / (2**q.trace_bits - 1),
        "tmax": q.trace_max,
        "err_scale": q.error_scale,
        "err_max": float(2 ** (q.error_bits - 1) - 1),
    }


def _build(config: SpikingConfig, n_inputs: int, plans: list[LayerPlan], loss: str, learn: bool,
           n_samples: int | None, driver: str, quant: dict):
    """Create every Brian2 object; return ``(objects, handles)``."""
    import brian2 as b2

    enc, neu, pl = config.encoding, config.neuron, config.plasticity
    sample = enc.sample_ms * b2.ms
    onoff = pl.sign_policy == "on_off_differential"
    quantized = pl.quantization is not None and learn
    objs, h = [], {"layers": [], "syn": [], "mon": []}

    ic = codegen.input_group_code(enc.code, driver)
    inp = b2.NeuronGroup(n_inputs, ic.model, threshold=ic.threshold, reset=ic.reset,
                         method=ic.method, name="inp")
    if ic.onset:
        inp.run_regularly(ic.onset, dt=sample, when="start", order=1, name="inp_onset")
    if enc.code == "regular":
        phase0 = np.random.default_rng(config.backend.seed).random(n_inputs)
        inp.phase0 = phase0
        inp.phase = phase0  # standalone cannot read state before the run
    objs.append(inp)
    h["inp"] = inp

    pre = inp
    for k, plan in enumerate(plans, start=1):
        n_classes = plan.codes.shape[0]
        lc = codegen.layer_group_code(n_classes, loss, pl.sign_policy, neu.reset, neu.leak,
                                      enc.reset_at_onset, quantized, driver, learn=learn,
                                      error_rounding=pl.quantization.error_rounding if quantized else "nearest")
        layer = b2.NeuronGroup(plan.n_neurons, lc.model, threshold=lc.threshold, reset=lc.reset,
                               refractory=lc.refractory, method=lc.method, name=f"layer{k}")
        layer.b = plan.biases
        layer.run_regularly(lc.onset, dt=sample, when="start", order=1, name=f"layer{k}_onset")
        objs.append(layer)
        if learn:
            m = plan.codes.shape[1]
            unit = np.arange(plan.n_neurons) % m
            for c in range(n_classes):
                setattr(layer, f"cv_{c}", plan.codes[c, unit])
            layer.eta_l = plan.eta
            layer.eta_b_l = plan.eta_b
            if onoff:
                layer.sgn = np.where(np.arange(plan.n_neurons) < m, 1.0, -1.0)
                partner = (np.arange(plan.n_neurons) + m) % (2 * m)
                layer.yp = b2.linked_var(layer, "y", index=partner)
            nc = codegen.normaliser_code()
            norm = b2.NeuronGroup(1, nc.model, name=f"norm{k}")
            norm.run_regularly(nc.per_step, when="before_groups", order=0, name=f"norm{k}_step")
            layer.ny = b2.linked_var(norm, "ny", index=np.zeros(plan.n_neurons, dtype=int))
            layer.cosv = b2.linked_var(norm, "cosv", index=np.zeros(plan.n_neurons, dtype=int))
            sc = codegen.summing_synapse_code(pl.sign_policy)
            summing = b2.Synapses(layer, norm, model=sc.model, name=f"sum{k}")
            summing.connect()
            layer.run_regularly(lc.per_step, when="before_groups", order=1, name=f"layer{k}_delta")
            objs += [norm, summing]
            syn_code = codegen.plastic_synapse_code(quantized, driver)
        else:
            syn_code = codegen.static_synapse_code()
        syn = b2.Synapses(pre, layer, model=syn_code.model, on_pre=syn_code.on_pre, name=f"syn{k}")
        n_pre = pre.N
        jj, ii = np.divmod(np.arange(plan.n_neurons * n_pre), n_pre)
        syn.connect(i=ii.astype(np.int32), j=jj.astype(np.int32))
        w = np.ascontiguousarray(plan.weights, dtype=np.float64).ravel()
        if quantized:
            step = weight_step(config, n_pre)
            syn.wl = step
            syn.wq = np.clip(np.round(w / step), -quant["wq_max"], quant["wq_max"])
        else:
            syn.w = w
        objs.append(syn)
        if n_samples is not None:
            mon = b2.StateMonitor(layer, "count", record=True, dt=sample, when="start", order=0,
                                  name=f"mon{k}")
            objs.append(mon)
            h["mon"].append(mon)
        h["layers"].append(layer)
        h["syn"].append(syn)
        pre = layer
    return objs, h


def weight_step(config: SpikingConfig, fan_in: int) -> float:
    """Grid step of a quantised synapse group (its shared exponent), see QuantizationConfig."""
    q, w_max = config.plasticity.quantization, config.plasticity.w_max
    levels = 2 ** (q.weight_bits - 1) - 1
    if q.weight_range is not None:
        return q.weight_range / levels
    rng = min(2.0 ** np.ceil(np.log2(4 * np.sqrt(6.0 / fan_in))), w_max)
    return float(rng) / levels


def _read_weights(syn, shape, config: SpikingConfig) -> np.ndarray:
    """The weight matrix placed by each synapse's own indices (no ordering assumed)."""
    if "wq" in syn.variables:
        values = np.asarray(syn.wq[:]) * weight_step(config, shape[1])
    else:
        values = np.asarray(syn.w[:])
    w = np.zeros(shape)
    w[np.asarray(syn.j[:]), np.asarray(syn.i[:])] = values
    return w


def _spike_totals(h) -> dict[str, dict[str, float]]:
    out = {}
    for name, g in [("input", h["inp"])] + [(f"layer{k}", g) for k, g in enumerate(h["layers"], 1)]:
        out[name] = {"train": float(np.sum(g.n_train[:])), "test": float(np.sum(g.n_test[:])),
                     "gated": float(np.sum(g.n_gated[:]))}
    return out


#: Wall time between two progress reports of a running simulation.
PROGRESS_PERIOD_S = 10.0


def _report(target: str, config: SpikingConfig, progress):
    """Brian2's ``report`` argument that hands the simulation's progress to ``progress(text)``:
    C++ code printing to stderr on the standalone device (the binary cannot call Python), a
    Python function on the runtime targets; ``None`` without ``progress``."""
    if progress is None:
        return None
    sample_s = config.encoding.sample_ms / 1000.0
    if target == "cpp_standalone":
        return codegen.progress_report_code(config.encoding.sample_ms)

    def report(elapsed, completed, start, duration):
        total = int(round(float(duration) / sample_s))
        if completed == 0:
            progress(f"simulating {total} samples")
            return
        left = f", about {(1 - completed) / completed * float(elapsed):.0f} s left" if completed < 1 else ""
        progress(f"simulated {int(completed * total)}/{total} samples in {float(elapsed):.0f} s{left}")

    return report


def run_schedule(config: SpikingConfig, n_inputs: int, plans: list[LayerPlan], schedule: Schedule,
                 loss: str = "log_2_minus_cos", learn: bool = True, seed_offset: int = 0,
                 progress=None) -> RawRun:
    """Build the network and run the whole schedule as one Brian2 ``run()``.

    ``seed_offset`` shifts Brian2's random stream only (consecutive chunks of one schedule); the
    network's own seeded constants (regular-code phases) stay those of ``config.backend.seed``.
    ``progress(text)``, when given, hears that the C++ project is being built and, every
    ``PROGRESS_PERIOD_S`` of wall time, how many samples are simulated (the standalone binary
    prints those lines to stderr itself).
    """
    import brian2 as b2

    target = resolve_target(config.backend.target)
    dt = config.backend.dt_ms
    quant = _quant_constants(config) if learn else {}
    t0 = time.perf_counter()
    shape = {"inputs": n_inputs, "layers": [p.n_neurons for p in plans], "learn": learn,
             "code": config.encoding.code, "sign_policy": config.plasticity.sign_policy}
    with _device(target, config, cache_key=shape) as dev:
        b2.defaultclock.dt = dt * b2.ms
        b2.seed(config.backend.seed + seed_offset)
        objs, h = _build(config, n_inputs, plans, loss, learn, schedule.n_samples, "timed", quant)
        net = b2.Network(*objs)
        ns = _namespace(config, schedule, quant)
        duration = schedule.n_samples * config.encoding.sample_ms + dt  # one more step: last count
        if progress is not None and target == "cpp_standalone":
            progress(f"building the C++ simulation of {schedule.n_samples} samples (code generation and g++, "
                     f"about 30-90 s on 2 cores; nothing more is printed until it runs)")
        net.run(duration * b2.ms, namespace=ns, report=_report(target, config, progress),
                report_period=PROGRESS_PERIOD_S * b2.second)
        sim_s = getattr(dev, "_last_run_time", None) if dev is not None else None
        n = schedule.n_samples
        counts = [np.asarray(mon.count[:, 1:n + 1]).T.copy() for mon in h["mon"]]
        weights = [_read_weights(s, p.weights.shape, config) for s, p in zip(h["syn"], plans)]
        biases = [np.asarray(g.b[:]).copy() for g in h["layers"]]
        spikes = _spike_totals(h)
    wall = time.perf_counter() - t0
    build_s = wall - sim_s if sim_s is not None else None
    return RawRun(counts, weights, biases, spikes, target, wall, sim_s, build_s)


def run_per_sample_loop(config: SpikingConfig, n_inputs: int, plans: list[LayerPlan], schedule: Schedule,
                        loss: str = "log_2_minus_cos", learn: bool = True) -> RawRun:
    """The straightforward loop: Python sets each sample's inputs and calls ``run()`` per phase.

    Runtime targets only (``numpy`` or ``cython``); used as the benchmark's baseline.
    """
    import brian2 as b2

    target = resolve_target(config.backend.target)
    if target == "cpp_standalone":
        target = "cython" if compiler_available() else "numpy"
    enc = config.encoding
    quant = _quant_constants(config) if learn else {}
    t0 = time.perf_counter()
    with _device(target, config):
        b2.defaultclock.dt = config.backend.dt_ms * b2.ms
        b2.seed(config.backend.seed)
        objs, h = _build(config, n_inputs, plans, loss, learn, None, "params", quant)
        net = b2.Network(*objs)
        ns = _namespace(config, None, quant)
        groups = [h["inp"]] + h["layers"]
        n = schedule.n_samples
        counts = [np.zeros((n, g.N)) for g in h["layers"]]
        # phase boundaries inside one sample: (start, stop, shown, gate open)
        cuts = sorted({0.0, enc.gate_start_ms, enc.gate_stop_ms, enc.present_ms, enc.sample_ms})
        for s in range(n):
            h["inp"].x_in = schedule.images[s]
            for g in groups:
                g.label_s = float(schedule.labels[s])
                g.train_s = float(schedule.train[s])
            for a, b in zip(cuts[:-1], cuts[1:]):
                if b - a <= 0:
                    continue
                shown = 1.0 if a < enc.present_ms else 0.0
                open_ = schedule.gain[s] if enc.gate_start_ms <= a < enc.gate_stop_ms else 0.0
                for g in groups:
                    g.env_s = shown
                    g.gate_s = open_
                net.run((b - a) * b2.ms, namespace=ns)
            for k, g in enumerate(h["layers"]):
                counts[k][s] = g.count[:]
        weights = [_read_weights(sy, p.weights.shape, config) for sy, p in zip(h["syn"], plans)]
        biases = [np.asarray(g.b[:]).copy() for g in h["layers"]]
        spikes = _spike_totals(h)
    return RawRun(counts, weights, biases, spikes, target, time.perf_counter() - t0)
