"""On-device transfer learning: a frozen conv extractor trained off-device, a head learned on device.

The edge scenario of SPELA v2's transfer-learning section and of tiny on-device training:

1. **Off-device**: a :class:`~spela_hw.conv.ConvBackpropClassifier` is trained on a *source* task
   (``split="classes"``: the training images of the first half of the classes, MNIST 0-4;
   ``split="half"``: the first half of the training set, every class; ``split="dataset"``: all of
   one dataset, the target being another, e.g. MNIST -> Fashion-MNIST).
2. **Frozen and quantised**: the conv blocks are evaluated once in float32 (BatchNorm folded into
   a per-channel scale and shift, as at inference) and the flattened output of the last block is
   quantised to 8-bit unsigned codes with one scale calibrated on the source data (its maximum),
   like pixels. The extractor's dense layers only serve its off-device training and are dropped.
3. **On device**: dense heads learn the *target* task (the other classes, the second half, or the
   other dataset) from those codes with the package's dense estimators, each in float32 and in
   bit-true fixed point: a SPELA head and a backprop head (:func:`default_heads`).

:func:`transfer` returns tidy records, one per head x precision x trial, with the head's accuracy,
its dims and trainable parameters; ``sim.memory_ledger`` sizes the on-device part from them
(``spela-hw train --protocol transfer`` does, against a 256 KB budget).
"""

from __future__ import annotations

import logging
import time

import numpy as np

from .conv import model as M
from .conv.description import DenseLayer, parse_layers
from .conv.estimator import ConvBackpropClassifier
from .errors import ConfigError
from .estimator import BackpropClassifier, SpelaClassifier
from .specs import Adam, Backprop, PrecisionSpec, Sgd, Spela, spec_to_dict

__all__ = ["SPLITS", "DEFAULT_EXTRACTOR", "HEAD_WEIGHT_RANGES", "default_heads", "default_precisions",
           "head_precision", "transfer_split",
           "train_extractor", "extract_features", "transfer"]

log = logging.getLogger(__name__)

SPLITS = ("classes", "half", "dataset")
#: Two conv blocks: 512 features of a 28 x 28 image, trained in seconds per epoch.
DEFAULT_EXTRACTOR = "c16k5p2-c32k5p2"
_CHUNK = 1000
#: Each head's fixed-point weight range. Backprop's softmax weights grow to |w| = 2 on MNIST 5-9
#: codes (float32, 3 epochs): at range 0.25 the 8-bit head saturated and trailed float32 by 0.8
#: points on MNIST 5-9 and 7.0 on Fashion-MNIST, at 2.0 by 0.03 and 0.2 (3 seeds). SPELA's inputs
#: are L2-normalised and its weights stay near their He init: the package's default 0.25 (0.125
#: did no better: 1.0 against 0.95 points on Fashion-MNIST; 0.5 lost 3 points, seed 2).
HEAD_WEIGHT_RANGES = {"spela": 0.25, "backprop": 2.0}


def default_precisions() -> dict:
    """The head's two precisions: float32 and 8-bit fixed-point weights at each head's own range
    (:data:`HEAD_WEIGHT_RANGES`)."""
    return {"fp32": None, "w8": 8}


def head_precision(head: str, precision):
    """``precision`` as a PrecisionSpec (or None): an int is that many weight bits at the head's
    range in :data:`HEAD_WEIGHT_RANGES`, anything else is used as given."""
    if isinstance(precision, (int, np.integer)) and not isinstance(precision, bool):
        return PrecisionSpec.fixed(int(precision), HEAD_WEIGHT_RANGES[head])
    return precision


def default_heads(epochs: int, **params) -> dict:
    """A SPELA head (one layer to 34 output dimensions, the paper-v2 rule, per sample) and a
    backprop head (softmax regression, Adam 5e-3, batch 32), as ``name: make(seed, precision, n_classes)``.

    On 2000 bundled MNIST 5-9 images (codes of a c16k5p2-c32k5p2 extractor, 3 epochs) SPELA at lr
    0.05 fell to 30 % in float32 (0.01: 94 %); backprop at Adam 1e-3 reached 92 %, 5e-3 94 %.

    ``params`` (estimator parameters such as ``backend``, ``batch_size``) apply to both.
    ``precision``: None (float32), a PrecisionSpec, or an int (weight bits at the head's range,
    :func:`head_precision`).
    """
    spela = dict(layer_sizes=(34,), rule=Spela(loss="neg_cos", input_norm="every_layer", optimizer=Sgd(0.01)),
                 init="he_normal", batch_size=1)
    bp = dict(rule=Backprop(optimizer=Adam(5e-3)), batch_size=32)
    return {
        "spela": lambda seed, precision, n_classes: SpelaClassifier(
            **{**spela, "epochs": epochs, **params, "precision": head_precision("spela", precision),
               "random_state": seed}),
        "backprop": lambda seed, precision, n_classes: BackpropClassifier(
            **{**bp, "layer_sizes": (n_classes,), "epochs": epochs, **params,
               "precision": head_precision("backprop", precision), "random_state": seed}),
    }


def transfer_split(dataset, split: str = "classes", target_dataset=None):
    """``(source, target_train, target_test)``, each ``(x, y)`` with features in [0, 1].

    ``classes``: source = training images of the lower half of the classes, target = the upper half
    (train and test); ``half``: source = first half of the training set, target = second half and
    the test set; ``dataset``: source = all of ``dataset``'s training set, target = ``target_dataset``.
    """
    if split not in SPLITS:
        raise ConfigError("split", f"must be one of {SPLITS}, got {split!r}")
    if (split == "dataset") != (target_dataset is not None):
        raise ConfigError("target_dataset", "is needed by split='dataset' and only by it")
    x_tr, y_tr = dataset.features("train"), dataset.y_train
    if split == "dataset":
        return ((x_tr, y_tr), (target_dataset.features("train"), target_dataset.y_train),
                (target_dataset.features("test"), target_dataset.y_test))
    if split == "half":
        h = len(y_tr) // 2
        return (x_tr[:h], y_tr[:h]), (x_tr[h:], y_tr[h:]), (dataset.features("test"), dataset.y_test)
    classes = np.unique(y_tr)
    if len(classes) < 4:
        raise ConfigError("split", f"'classes' needs at least 4 classes to halve, the dataset has {len(classes)}")
    src = np.isin(y_tr, classes[: len(classes) // 2])
    te = ~np.isin(dataset.y_test, classes[: len(classes) // 2])
    return (x_tr[src], y_tr[src]), (x_tr[~src], y_tr[~src]), (dataset.features("test")[te], dataset.y_test[te])


def _extractor_net(net: str, n_classes: int) -> str:
    """The extractor's spec string: ``net``, with a ``d<n_classes>`` classifier appended when it has
    no dense layer (it is dropped after training)."""
    layers = parse_layers(net)
    if isinstance(layers[0], DenseLayer):
        raise ConfigError("net", f"the extractor needs at least one conv block first, got {net!r}")
    return net if isinstance(layers[-1], DenseLayer) else f"{net}-d{n_classes}"


def train_extractor(x, y, net: str = DEFAULT_EXTRACTOR, epochs: int = 1, seed: int = 0, **params):
    """Train the off-device extractor: backprop on the source data (float32)."""
    clf = ConvBackpropClassifier(net=_extractor_net(net, len(np.unique(y))), epochs=epochs, random_state=seed,
                                 **params)
    return clf.fit(x, y)


def extract_features(extractor, x, scale: float | None = None):
    """The frozen extractor's 8-bit codes of ``x`` (uint8) and the scale used.

    ``scale`` (the real value of code 255) defaults to the maximum output over ``x``: compute it
    on the source data once and pass it for any other data.
    """
    x = np.asarray(x, np.float32)
    chunks = [M.forward_blocks(extractor.state_, M.to_images(extractor.spec_, x[s:s + _CHUNK]))[-1]
              .reshape(min(_CHUNK, len(x) - s), -1) for s in range(0, len(x), _CHUNK)]
    f = np.concatenate(chunks)
    if scale is None:
        scale = float(f.max())
    if not scale > 0:
        raise ConfigError("scale", f"must be positive (the extractor's output is all zero?), got {scale!r}")
    codes = np.rint(np.clip(f / scale, 0.0, 1.0) * 255.0).astype(np.uint8)  # LeakyReLU's tiny negatives -> 0
    return codes, scale


def _check_positive(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(name, f"must be a positive integer, got {value!r}")


def transfer(dataset, split: str = "classes", target_dataset=None, net: str = DEFAULT_EXTRACTOR,
             extractor_epochs: int = 1, head_epochs: int = 3, trials: int = 1, heads: dict | None = None,
             precisions: dict | None = None, seed: int = 0, limit_source: int | None = None,
             limit_target: int | None = None) -> list[dict]:
    """Transfer-learning protocol: one extractor per trial, every head in every precision on it.

    Parameters
    ----------
    dataset, split, target_dataset :
        See :func:`transfer_split`.
    net : str
        The extractor's conv blocks (spec string; dense layers, if any, train it and are dropped).
    extractor_epochs, head_epochs, trials, seed :
        Trial ``t`` seeds the extractor and the heads with ``seed * 1000 + t``.
    heads : dict, optional
        ``name: make(seed, precision, n_classes)`` returning a dense estimator (:func:`default_heads`).
    precisions : dict, optional
        ``name: PrecisionSpec, int (weight bits at each head's range) or None``
        (:func:`default_precisions`).
    limit_source, limit_target : int, optional
        Use only the first N source / target training samples.

    Returns
    -------
    list of dict
        One record per trial x head x precision: ``accuracy`` on the target test set, ``dims``,
        ``trainable_parameters``, the extractor's source accuracy and the feature scale.
    """
    for name, v in (("extractor_epochs", extractor_epochs), ("head_epochs", head_epochs), ("trials", trials)):
        _check_positive(name, v)
    for name, v in (("limit_source", limit_source), ("limit_target", limit_target)):
        if v is not None:
            _check_positive(name, v)
    _extractor_net(net, 2)  # a bad spec refused before any training
    (xs, ys), (xt, yt), (xe, ye) = transfer_split(dataset, split, target_dataset)
    xs, ys, xt, yt = xs[:limit_source], ys[:limit_source], xt[:limit_target], yt[:limit_target]
    heads = heads or default_heads(head_epochs)
    precisions = default_precisions() if precisions is None else precisions
    n_classes = len(np.unique(yt))
    out = []
    for trial in range(trials):
        trial_seed = seed * 1000 + trial
        t0 = time.perf_counter()
        extractor = train_extractor(xs, ys, net, extractor_epochs, trial_seed)
        extractor_seconds = time.perf_counter() - t0
        source_codes, scale = extract_features(extractor, xs)
        source_acc = float(np.mean(extractor.predict(xs) == ys))
        ft, _ = extract_features(extractor, xt, scale)
        fe, _ = extract_features(extractor, xe, scale)
        log.info("trial %d: extractor %s trained in %.1f s, %d features", trial, extractor.spec_.net,
                 extractor_seconds, ft.shape[1])
        for head_name, make in heads.items():
            for prec_name, precision in precisions.items():
                clf = make(trial_seed, precision, n_classes)
                t1 = time.perf_counter()
                clf.fit(ft, yt)
                seconds = time.perf_counter() - t1
                dims = list(clf.network_spec_.dims)
                w = clf.precision_.weight
                out.append({
                    "protocol": "transfer", "split": split, "trial": trial, "head": head_name,
                    "precision": clf.precision_.name, "precision_label": prec_name,
                    "weight_range": None if w is None else w.lsb * 2 ** (w.bits - 1),
                    "extractor": extractor.spec_.net, "extractor_epochs": extractor_epochs,
                    "extractor_train_accuracy": source_acc, "feature_scale": scale,
                    "n_source": len(ys), "n_train": len(yt), "n_test": len(ye), "n_classes": n_classes,
                    "epochs": head_epochs,
                    "dims": dims, "batch_size": clf.batch_size,
                    "trainable_parameters": int(sum(a * b + b for a, b in zip(dims[:-1], dims[1:]))),
                    "accuracy": clf.score(fe, ye), "train_seconds": seconds,
                    "rule": spec_to_dict(clf.rule_), "precision_spec": clf.precision_.to_dict(),
                })
    return out
