"""Every Brian2 code string of the spiking SPELA mapping: equations, thresholds, resets, synaptic
statements and the per-step operations of the layer normaliser.

Nothing here imports Brian2: functions return plain strings and the names of the constants they
use, so the generated model can be read, diffed and tested on its own. The builder
(:mod:`mappings.brian2.network`) passes every constant explicitly in the run namespace.

Time-varying inputs are written with placeholders that :func:`signals` fills in:

* ``driver="timed"`` (the fast path): everything comes from ``TimedArray`` s, so a whole training
  and test schedule is one ``run()``: ``img(t, i)`` (pixels, one row per sample), ``env(t)``
  (1 while a sample is shown), ``gate(t)`` (learning gate times the learning-rate schedule),
  ``label(t)`` (-1 for test samples) and ``is_train(t)``;
* ``driver="params"``: the same signals are plain (shared) parameters set from Python between
  short runs, the straightforward one-``run()``-per-sample loop the benchmark compares against.

Layer variables are dimensionless: ``v`` in threshold units, ``y`` the output trace (+1 per spike),
``delta`` the post-synaptic error, ``b`` the bias (a constant drive), ``w`` a jump of ``v`` per
input spike. Rule (docs/spiking.md §2–3)::

    c = S_ye/|y|,  |y| = sqrt(S_yy) + norm_floor     (one normaliser neuron per layer)
    delta = g(c) * (e - c*y/|y|)/|y| * (int(y > gate_threshold) + gate_floor)
    on every pre-synaptic spike:  w <- clip(w + eta*G(t)*delta_post, -w_max, w_max)
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "GroupCode",
    "SynapseCode",
    "signals",
    "input_group_code",
    "layer_group_code",
    "normaliser_code",
    "summing_synapse_code",
    "plastic_synapse_code",
    "static_synapse_code",
    "progress_report_code",
]


@dataclass(frozen=True)
class GroupCode:
    """Strings of one ``NeuronGroup``; empty strings mean "not used"."""

    model: str
    threshold: str
    reset: str
    refractory: str = ""
    onset: str = ""       # run_regularly at every sample onset (slot 'start', after monitors)
    per_step: str = ""    # run_regularly every step in slot 'before_groups'
    method: str = "euler"


@dataclass(frozen=True)
class SynapseCode:
    model: str
    on_pre: str = ""


def signals(driver: str, where: str) -> dict[str, str]:
    """Expressions of the time-varying inputs in a group (``where="group"``) or a synapse."""
    if driver == "timed":
        return {"IMG": "img(t, i)", "ENV": "env(t)", "GATE": "gate(t)", "LABEL": "label(t)",
                "TRAIN": "is_train(t)"}
    if driver == "params":
        suffix = "_post" if where == "synapse" else ""
        return {"IMG": "x_in", "ENV": f"env_s{suffix}", "GATE": f"gate_s{suffix}",
                "LABEL": f"label_s{suffix}", "TRAIN": f"train_s{suffix}"}
    raise ValueError(f"unknown driver {driver!r}")


def _fill(text: str, sig: dict[str, str]) -> str:
    for key, expr in sig.items():
        text = text.replace(key, expr)
    return "\n".join(line.strip() for line in text.strip().splitlines() if line.strip())


def _param_lines(driver: str, with_img: bool) -> str:
    """Declarations of the signals when they are parameters (``driver="params"``)."""
    if driver != "params":
        return ""
    lines = ["env_s : 1 (shared)", "gate_s : 1 (shared)", "label_s : 1 (shared)", "train_s : 1 (shared)"]
    if with_img:
        lines.append("x_in : 1")
    return "\n".join(lines)


_COUNTERS = """
n_train : 1
n_test : 1
n_gated : 1
"""

_COUNT_ON_SPIKE = "n_train += TRAIN\nn_test += 1 - TRAIN\nn_gated += int(GATE > 0)"


def input_group_code(code: str, driver: str = "timed") -> GroupCode:
    """The input layer: pixels in [0, 1] to spikes (``poisson``, ``regular`` or ``ttfs``).

    Constants: ``rate_max`` (Hz) for rate codes, ``ttfs_T`` (time) for ``ttfs``.
    """
    sig = signals(driver, "group")
    params = _param_lines(driver, with_img=True)
    if code == "poisson":
        model = _COUNTERS + params
        return GroupCode(_fill(model, sig), _fill("rand() < rate_max*IMG*ENV*dt", sig),
                         _fill(_COUNT_ON_SPIKE, sig))
    if code == "regular":
        model = "dphase/dt = rate_max*IMG*ENV : 1\nphase0 : 1 (constant)\n" + _COUNTERS + params
        return GroupCode(_fill(model, sig), "phase >= 1",
                         _fill("phase -= 1\n" + _COUNT_ON_SPIKE, sig), onset="phase = phase0")
    if code == "ttfs":
        model = "fired : 1\nt_on : second\n" + _COUNTERS + params
        threshold = "ENV > 0.5 and fired < 0.5 and IMG > 0 and t - t_on >= (1 - IMG)*ttfs_T"
        return GroupCode(_fill(model, sig), _fill(threshold, sig),
                         _fill("fired = 1\n" + _COUNT_ON_SPIKE, sig), onset="fired = 0\nt_on = t")
    raise ValueError(f"unknown input code {code!r}")


def _quantized_trace(expr: str, quantized: bool) -> str:
    """The trace as the learning rule reads it: raw, or on the unsigned grid ``tq`` up to ``tmax``."""
    if not quantized:
        return expr
    return f"clip(floor({expr}/tq + 0.5)*tq, 0, tmax)"


def layer_group_code(
    n_classes: int,
    loss: str,
    sign_policy: str = "nonnegative",
    reset: str = "subtract",
    leak: bool = True,
    reset_at_onset: bool = True,
    quantized: bool = False,
    driver: str = "timed",
    learn: bool = True,
    error_rounding: str = "stochastic",
) -> GroupCode:
    """One SPELA layer of LIF neurons with its error ``delta`` computed inside the simulation.

    Per-neuron constants: ``cv_0..cv_{N-1}`` (the neuron's entry of every class code), and under
    ``on_off_differential`` ``sgn`` (+1 ON, -1 OFF) plus the partner's trace linked as ``yp``.
    Per-layer shared constants: ``eta_b_l`` (bias learning rate). Namespace constants: ``tau_m``,
    ``tau_y``, ``gate_thr``, ``gate_eps``; with quantisation ``tq``, ``tmax``, ``err_scale``,
    ``err_max``.
    """
    sig = signals(driver, "group")
    drive = "(-v + b)/tau_m" if leak else "b/tau_m"
    reset_stmt = "v -= 1" if reset == "subtract" else "v = 0"
    onset = "count = 0" + ("\nv = 0\ny = 0" if reset_at_onset else "")
    if not learn:  # inference only: no error, no normaliser, static synapses
        model = (f"dv/dt = {drive} : 1 (unless refractory)\nb : 1 (constant)\ncount : 1\n"
                 + _COUNTERS + _param_lines(driver, with_img=False))
        onset = "count = 0" + ("\nv = 0" if reset_at_onset else "")
        return GroupCode(_fill(model, sig), "v > 1", _fill(f"{reset_stmt}\ncount += ENV\n" + _COUNT_ON_SPIKE, sig),
                         refractory="t_ref", onset=onset)
    emb = " + ".join(f"cv_{c}*int(abs(LABEL - {c}.0) < 0.5)" for c in range(n_classes))
    yr = _quantized_trace("y", quantized)
    lines = [
        f"dv/dt = {drive} : 1 (unless refractory)",
        "dy/dt = -y/tau_y : 1",
        "db/dt = eta_b_l*GATE*delta/second : 1",
        "delta : 1",
        "ny : 1 (linked)",
        "cosv : 1 (linked)",
        f"emb = {emb} : 1",
        f"yr = {yr} : 1",
        "eta_l : 1 (shared, constant)",
        "eta_b_l : 1 (shared, constant)",
        "count : 1",
    ] + [f"cv_{c} : 1 (constant)" for c in range(n_classes)]
    if sign_policy == "on_off_differential":
        # u is a state variable set every step: a summed variable cannot resolve a subexpression
        # that depends on a linked variable (docs/spiking.md §3.3)
        lines += ["sgn : 1 (constant)", "yp : 1 (linked)", "u : 1"]
        signal, sign = "u", "sgn*"
        u_update = f"u = sgn*(yr - {_quantized_trace('yp', quantized)})\n"
    elif sign_policy == "nonnegative":
        signal, sign, u_update = "yr", "", ""
    else:
        raise ValueError(f"unknown sign policy {sign_policy!r}")
    model = "\n".join(lines) + _COUNTERS + _param_lines(driver, with_img=False)
    g = "1/(2 - cosv)" if loss == "log_2_minus_cos" else "1"
    delta = (f"{sign}({g})*(emb - cosv*{signal}/ny)/ny"
             f"*(int(yr > gate_thr) + gate_eps)")
    if quantized:  # Brian2 has no round(): floor(x + 0.5), or floor(x + rand()) (stochastic)
        dither = "rand()" if error_rounding == "stochastic" else "0.5"
        per_step = f"delta = clip(floor(({delta})*err_scale + {dither}), -err_max, err_max)/err_scale"
    else:
        per_step = f"delta = {delta}"
    per_step = u_update + per_step
    on_spike = f"{reset_stmt}\ny += 1\ncount += ENV\n" + _COUNT_ON_SPIKE
    return GroupCode(_fill(model, sig), "v > 1", _fill(on_spike, sig), refractory="t_ref",
                     onset=onset, per_step=_fill(per_step, sig))


def normaliser_code() -> GroupCode:
    """One neuron per layer holding the two layer-wide sums and the norm and cosine built from
    them (constant ``norm_floor``). The sums are summed variables written by
    :func:`summing_synapse_code` at every step."""
    model = "S_ye : 1\nS_yy : 1\nny : 1\ncosv : 1"
    per_step = "ny = sqrt(S_yy) + norm_floor\ncosv = S_ye/ny"
    return GroupCode(model, "", "", per_step=per_step)


def summing_synapse_code(sign_policy: str = "nonnegative") -> SynapseCode:
    """All-to-one synapses from a layer to its normaliser forming ``sum y*e`` and ``sum y^2``.

    Under ``on_off_differential`` both members of a pair carry ``u``, hence the factor 1/2.
    """
    if sign_policy == "on_off_differential":
        return SynapseCode("S_ye_post = 0.5*u_pre*emb_pre : 1 (summed)\n"
                           "S_yy_post = 0.5*u_pre**2 : 1 (summed)")
    return SynapseCode("S_ye_post = yr_pre*emb_pre : 1 (summed)\nS_yy_post = yr_pre**2 : 1 (summed)")


def static_synapse_code() -> SynapseCode:
    """Feed-forward synapses of an inference-only network (converted or frozen weights)."""
    return SynapseCode("w : 1", "v_post += w")


def plastic_synapse_code(quantized: bool = False, driver: str = "timed") -> SynapseCode:
    """Feed-forward synapses whose weight follows the three-factor rule at each pre spike.

    Per-synapse ``w`` (float) or ``wq`` (integer level, the weight is ``wq*wl``; stochastic rounding
    of the update with ``rand()``); per-layer ``eta_l`` is a shared constant of the post-synaptic group.
    Namespace constants: ``w_max``; with quantisation ``wq_max`` (``wl``, the grid step, is a
    shared constant of each synapse group: its exponent).
    """
    sig = signals(driver, "synapse")
    if quantized:
        model = "wq : 1\nwl : 1 (shared, constant)"
        on_pre = ("v_post += wq*wl\n"
                  "wq = clip(floor(wq + eta_l_post*GATE*delta_post/wl + rand()), -wq_max, wq_max)")
    else:
        model = "w : 1"
        on_pre = "v_post += w\nw = clip(w + eta_l_post*GATE*delta_post, -w_max, w_max)"
    return SynapseCode(model, _fill(on_pre, sig))


def progress_report_code(sample_ms: float, what: str = "samples") -> str:
    """Body of the standalone binary's ``report_progress(elapsed, completed, start, duration)``
    (C++; Brian2 calls it every ``report_period`` of wall time): samples simulated so far and the
    time left, on stderr (stdout may carry a command's JSON)."""
    return f"""
    const double _sample_s = {sample_ms / 1000.0!r};
    const long _total = (long)(duration / _sample_s + 0.5);
    const long _done = (long)(completed * _total);
    if (completed == 0.0)
        std::cerr << "spike: built; simulating " << _total << " {what}";
    else
        std::cerr << "spike: simulated " << _done << "/" << _total << " {what} in " << (long)elapsed << " s";
    if (completed > 0.0 && completed < 1.0)
        std::cerr << ", about " << (long)((1.0 - completed) / completed * elapsed + 0.5) << " s left";
    std::cerr << std::endl << std::flush;
    """
