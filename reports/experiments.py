"""Training experiments: one run of one rule at one precision and seed, measured for the report.

A run is described by a JSON-ready dict (a *task*) and returns a JSON-ready dict (its *result*),
so that the same functions run in-process, in a local process pool or on a Dask worker, and their
results can be appended to a log as they finish. Nothing here prices energy: runs return
:class:`~spela_hw.Counts` (as dicts) that :mod:`reports.hardware` prices with ``sim``.

Task kinds
----------
``"train"``
    Train ``rule`` at precision ``bits`` with ``seed`` for ``epochs`` epochs, evaluating every
    layer's read-out on the test split after each epoch; then measure inference counts per exit
    layer and the confidence-exit policy.
``"few_shot"``
    The few-shot protocol of the SPELA paper (docs/spela.md §2.2): merge train and
    test, re-split at random with ``test_fraction`` held out (split seed ``seed * 1000 + trial``
    as in :func:`spela_hw.protocols.few_shot`), train
    ``epochs`` epochs, score on the held-out part.
``"transfer"``
    The on-device transfer-learning protocol (:func:`spela_hw.transfer.transfer`, one trial
    seeded by ``seed``): a backprop conv extractor trained on the lower half of the classes,
    frozen with 8-bit features, then SPELA and backprop heads learned on the upper half in
    float32 and at ``bits``, for ``epochs`` epochs.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
import traceback

import numpy as np

from spela_hw import load_dataset
from spela_hw.errors import ConfigError
from spela_hw.specs import RULES

from .config import precision_for, precision_label, weight_bits_of

__all__ = [
    "run_task",
    "train_task",
    "few_shot_task",
    "transfer_task",
    "confidence_margin",
    "confidence_exit",
    "make_classifier",
    "dataset_arrays",
]

log = logging.getLogger(__name__)


# Runs in threads of one process (a threaded Dask worker) take turns: the numba kernels are not
# guaranteed to be thread-safe (two concurrent float32 fused training calls crash the process).
# Processes, the default, are not affected.
_TRAIN_LOCK = threading.Lock()


@functools.lru_cache(maxsize=4)
def _dataset(name: str):
    return load_dataset(name)


def dataset_arrays(name: str, train_samples=None, test_samples=None):
    """``(X_train, y_train, X_test, y_test, n_classes)`` with optional leading-sample limits."""
    d = _dataset(name)
    Xtr, ytr = d.features("train"), np.asarray(d.y_train)
    Xte, yte = d.features("test"), np.asarray(d.y_test)
    if train_samples:
        Xtr, ytr = Xtr[:train_samples], ytr[:train_samples]
    if test_samples:
        Xte, yte = Xte[:test_samples], yte[:test_samples]
    return Xtr, ytr, Xte, yte, int(d.n_classes)


def make_classifier(rule: str, bits, dims, seed: int, epochs: int, batch_size: int = 1,
                    class_vectors: str = "auto"):
    """An unfitted :class:`spela_hw.Classifier` for a rule name and precision token (SPELA with
    ``class_vectors``)."""
    from spela_hw import Classifier

    if rule not in RULES:
        raise ConfigError("rule", f"must be one of {tuple(RULES)}, got {rule!r}")
    spec = RULES[rule](class_vectors=class_vectors) if rule == "spela" else RULES[rule]()
    return Classifier(tuple(dims[1:]), rule=spec, precision=precision_for(bits),
                      batch_size=batch_size, epochs=epochs, random_state=seed)


def confidence_margin(scores: np.ndarray) -> np.ndarray:
    """Relative margin of the two best read-out scores, in ``[0, 1]``.

    ``(s_1 - s_2) / max_c |s_c|``: the read-out scores are ``cos * |h|``, so the ratio depends
    only on the cosines; 0 means a tie, 1 a clear winner. Package extension (not in the paper).
    """
    s = np.sort(np.asarray(scores, np.float64), axis=1)
    top, second = s[:, -1], s[:, -2]
    scale = np.max(np.abs(s), axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        m = np.where(scale > 0, (top - second) / scale, 0.0)
    return np.clip(m, 0.0, 1.0)


def confidence_exit(margins: np.ndarray, correct: np.ndarray, thresholds) -> list[dict]:
    """Evaluate the confidence-exit policy: leave at the first layer whose margin >= threshold.

    Parameters
    ----------
    margins, correct : array (n_layers, n_samples)
        Read-out margin and correctness of every sample at every layer.
    thresholds : iterable of float

    Returns
    -------
    list of dict
        Per threshold: ``threshold``, ``accuracy``, ``exit_fraction`` (list per layer),
        ``mean_exit_layer`` (1-based).
    """
    margins = np.asarray(margins)
    correct = np.asarray(correct, bool)
    L, n = margins.shape
    out = []
    for t in thresholds:
        confident = margins >= t
        confident[-1] = True  # the last layer always answers
        exit_at = np.argmax(confident, axis=0)
        acc = float(np.mean(correct[exit_at, np.arange(n)])) if n else float("nan")
        frac = np.bincount(exit_at, minlength=L) / max(n, 1)
        out.append({"threshold": float(t), "accuracy": acc, "exit_fraction": [float(f) for f in frac],
                    "mean_exit_layer": float(np.mean(exit_at) + 1) if n else float("nan")})
    return out


def train_task(task: dict) -> dict:
    """Run a ``"train"`` task (see the module docstring) and return its result dict."""
    Xtr, ytr, Xte, yte, n_classes = dataset_arrays(task["dataset"], task.get("train_samples"),
                                                   task.get("test_samples"))
    dims = tuple(task["dims"])
    if dims[0] != Xtr.shape[1]:
        raise ConfigError("dims", f"the input width {dims[0]} does not match the {Xtr.shape[1]} features "
                                  f"of {task['dataset']}")
    clf = make_classifier(task["rule"], task["bits"], dims, task["seed"], task["epochs"],
                          task.get("batch_size", 1), task.get("class_vectors", "auto"))
    with _TRAIN_LOCK:
        t0 = time.perf_counter()
        clf.fit(Xtr, ytr, eval_set=(Xte, yte))
        fit_seconds = time.perf_counter() - t0
        return _measure(task, clf, Xtr, ytr, Xte, yte, n_classes, dims, fit_seconds)


def _measure(task, clf, Xtr, ytr, Xte, yte, n_classes, dims, fit_seconds) -> dict:
    L = len(dims) - 1
    history = [dict(h) for h in clf.history_]
    final = [float(history[-1][f"layer{k + 1}_accuracy"]) for k in range(L)] if history else clf.score_layers(Xte, yte)

    # Inference counts per exit layer, on a fixed slice of the test set. Sweeps ask only for the
    # output (exit_analysis = False) to save time.
    exit_analysis = bool(task.get("exit_analysis", True))
    n_energy = min(int(task.get("energy_samples", 500)), len(Xte))
    Xe = Xte[:n_energy]
    infer_counts = {}
    for k in (range(L) if exit_analysis else [L - 1]):
        infer_counts[str(k)] = {"exit": clf.inference_counts(Xe, exit_layer=k, readout="exit").to_dict()}
        if exit_analysis:
            infer_counts[str(k)]["all"] = clf.inference_counts(Xe, exit_layer=k, readout="all").to_dict()

    # Read-out margins at every layer drive the confidence-exit policy.
    policy = []
    if exit_analysis:
        margins = np.empty((L, len(Xte)))
        correct = np.empty((L, len(Xte)), bool)
        for k in range(L):
            scores = clf.decision_function(Xte, layer=k)
            margins[k] = confidence_margin(scores)
            correct[k] = clf.classes_[np.argmax(scores, axis=1)] == yte
        policy = confidence_exit(margins, correct, task.get("exit_thresholds", ()))

    counts = clf.train_counts_
    return {
        "history": history,
        "final_accuracy": final,
        "train_counts": counts.to_dict(),
        "infer_counts": infer_counts,
        "confidence_exit": policy,
        "fit_seconds": fit_seconds,
        "train_samples": int(len(Xtr)),
        "test_samples": int(len(Xte)),
        "n_classes": n_classes,
        "saturations_per_sample": float(counts.totals()["saturations"] / max(counts.samples, 1)),
    }


def few_shot_task(task: dict) -> dict:
    """Run a ``"few_shot"`` task: merged data re-split with ``test_fraction`` held out."""
    from spela_hw.protocols import few_shot_split

    d = _dataset(task["dataset"])
    X = np.concatenate([d.features("train"), d.features("test")])
    y = np.concatenate([np.asarray(d.y_train), np.asarray(d.y_test)])
    # Same split seeds as spela_hw.protocols.few_shot: seed * 1000 + trial.
    split_seed = int(task["seed"]) * 1000 + int(task.get("trial", 0))
    x_tr, y_tr, x_te, y_te = few_shot_split(X, y, float(task["test_fraction"]), split_seed)
    max_test = task.get("max_test_samples")
    if max_test:
        x_te, y_te = x_te[:max_test], y_te[:max_test]
    clf = make_classifier(task["rule"], task["bits"], task["dims"], task["seed"], task["epochs"],
                          task.get("batch_size", 1), task.get("class_vectors", "auto"))
    with _TRAIN_LOCK:
        t0 = time.perf_counter()
        clf.fit(x_tr, y_tr)
        fit_seconds = time.perf_counter() - t0
        acc = clf.score_layers(x_te, y_te)
    return {"accuracy": [float(a) for a in acc], "n_train": int(len(y_tr)), "n_test": int(len(y_te)),
            "fit_seconds": fit_seconds}


def _spike_task(task: dict) -> dict:
    from .spiking import spike_task  # imports Brian2: only when a spiking task runs

    return spike_task(task)


def transfer_task(task: dict) -> dict:
    """Run a ``"transfer"`` task: one trial of the transfer protocol, its records as the result."""
    from spela_hw.transfer import transfer

    limit = task.get("train_samples")
    records = transfer(_dataset(task["dataset"]), "classes", head_epochs=task["epochs"], seed=task["seed"],
                       precisions={"fp32": None, precision_label(task["bits"]): int(task["bits"])},
                       limit_source=limit, limit_target=limit)
    return {"records": records}


_KINDS = {"train": train_task, "few_shot": few_shot_task, "spike": _spike_task, "transfer": transfer_task}


def run_task(task: dict) -> dict:
    """Run any task; never raises: failures come back as ``{"error": ..., "traceback": ...}``.

    The result always carries the task itself, the wall-clock and CPU seconds and the process id.
    """
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        fn = _KINDS[task["kind"]]
        result = fn(task)
        result["error"] = None
    except Exception as exc:  # one failed run must not sink the report or the sweep
        log.debug("task failed: %s", task, exc_info=True)
        result = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(limit=20)}
    result["task"] = task
    result["seconds"] = time.perf_counter() - t0
    result["cpu_seconds"] = time.process_time() - c0  # this process only (not a compiler it starts)
    result["pid"] = os.getpid()
    return result


def task_label(task: dict) -> str:
    """Short human label of a task for progress lines."""
    if task["kind"] == "spike":
        return f"spike spela {'-'.join(map(str, task['dims']))} ({task['train_samples']} samples)"
    if task["kind"] == "transfer":
        return f"transfer heads spela, backprop fp32 and {precision_label(task['bits'])} seed {task['seed']}"
    extra = f" held-out {task['test_fraction']} trial {task.get('trial', 0)}" if task["kind"] == "few_shot" else ""
    return f"{task['kind']} {task['rule']} {precision_label(task['bits'])} seed {task['seed']}{extra}"


def describe_bits(bits) -> dict:
    """Columns describing a precision token for tidy tables."""
    return {"precision": precision_label(bits), "weight_bits": weight_bits_of(bits)}
