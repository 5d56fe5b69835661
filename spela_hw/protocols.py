"""The paper's data-scarce protocols, comparing SPELA with backprop on our own runs.

* :func:`few_shot`: merge the standard train and test sets, re-split at random with a large test
  fraction (0.95 leaves 3,500 MNIST training images, 0.99 leaves 700), train a few epochs, repeat
  over trials (v2 §4.2, Table 4).
* :func:`one_epoch`: a single epoch on the standard split.

Each returns tidy records (one dict per rule x trial) with the accuracy at every layer.
"""

from __future__ import annotations

import time

import numpy as np

from .errors import ConfigError
from .estimator import BackpropClassifier, SpelaClassifier
from .specs import Adam, Backprop

__all__ = ["few_shot_split", "few_shot", "one_epoch", "default_competitors"]


def default_competitors(epochs: int, **params) -> dict:
    """The paper's pair: SPELA ``paper-v2`` (784-1000-34) and BP 784-1024-10 with lr 5e-4 (Adam).

    ``params`` (estimator parameters such as ``layer_sizes``, ``precision``, ``backend``) apply to
    both, over their recipes.
    """
    bp = {"layer_sizes": (1024, 10), "rule": Backprop(optimizer=Adam(5e-4)), "batch_size": 32}
    return {
        "spela": lambda seed: SpelaClassifier.from_preset("paper-v2", **{"epochs": epochs, **params,
                                                                         "random_state": seed}),
        "backprop": lambda seed: BackpropClassifier(**{**bp, "epochs": epochs, **params, "random_state": seed}),
    }


def _check_trials(trials) -> None:
    if isinstance(trials, bool) or not isinstance(trials, (int, np.integer)) or trials < 1:
        raise ConfigError("trials", f"must be a positive integer, got {trials!r}")


def _check_test_fraction(test_fraction) -> None:
    if not 0.0 < test_fraction < 1.0:
        raise ConfigError("test_fraction", f"must lie in (0, 1), got {test_fraction!r}")


def few_shot_split(x, y, test_fraction: float, seed: int, stratified: bool = False):
    """Random (optionally per-class stratified) split; returns ``(x_tr, y_tr, x_te, y_te)``."""
    _check_test_fraction(test_fraction)
    rng = np.random.default_rng(seed)
    if stratified:
        train_idx = []
        for c in np.unique(y):
            idx = rng.permutation(np.flatnonzero(y == c))
            train_idx.append(idx[: max(1, round(len(idx) * (1 - test_fraction)))])
        train_idx = np.sort(np.concatenate(train_idx))
        mask = np.zeros(len(y), bool)
        mask[train_idx] = True
        return x[mask], y[mask], x[~mask], y[~mask]
    perm = rng.permutation(len(y))
    n_train = max(1, round(len(y) * (1 - test_fraction)))
    tr, te = perm[:n_train], perm[n_train:]
    return x[tr], y[tr], x[te], y[te]


def _evaluate(name, clf, x_tr, y_tr, x_te, y_te, extra):
    t0 = time.perf_counter()
    clf.fit(x_tr, y_tr)
    seconds = time.perf_counter() - t0
    accs = clf.score_layers(x_te, y_te)
    rec = {"rule": name, **extra, "n_train": len(y_tr), "n_test": len(y_te),
           "dims": list(clf.network_spec_.dims), "precision": clf.precision_.name,
           "accuracy": accs[-1], "train_seconds": seconds}
    rec.update({f"layer{k + 1}_accuracy": accs[k] for k in clf.readout_layers_})  # none at backprop's hidden layers
    return rec


def few_shot(dataset, test_fractions=(0.95, 0.99), epochs: int = 5, trials: int = 5,
             stratified: bool = False, competitors: dict | None = None, seed: int = 0) -> list[dict]:
    """Few-shot protocol on a :class:`~spela_hw.datasets.Dataset` (features scaled to [0, 1])."""
    _check_trials(trials)
    for frac in test_fractions:  # refuse a bad fraction before any training
        _check_test_fraction(frac)
    x = np.concatenate([dataset.features("train"), dataset.features("test")])
    y = np.concatenate([dataset.y_train, dataset.y_test])
    competitors = competitors or default_competitors(epochs)
    out = []
    for frac in test_fractions:
        for trial in range(trials):
            split_seed = seed * 1000 + trial
            x_tr, y_tr, x_te, y_te = few_shot_split(x, y, frac, split_seed, stratified)
            for name, make in competitors.items():
                out.append(_evaluate(name, make(split_seed), x_tr, y_tr, x_te, y_te,
                                     {"protocol": "few_shot", "test_fraction": frac, "trial": trial,
                                      "epochs": epochs}))
    return out


def one_epoch(dataset, trials: int = 1, competitors: dict | None = None, seed: int = 0) -> list[dict]:
    """Every competitor trained for exactly one epoch on the standard split."""
    _check_trials(trials)
    competitors = competitors or default_competitors(1)
    out = []
    for trial in range(trials):
        for name, make in competitors.items():
            clf = make(seed * 1000 + trial)
            clf.set_params(epochs=1)
            out.append(_evaluate(name, clf, dataset.features("train"), dataset.y_train,
                                 dataset.features("test"), dataset.y_test,
                                 {"protocol": "one_epoch", "trial": trial, "epochs": 1}))
    return out
