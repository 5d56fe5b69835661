"""The presentation schedule of a whole run as NumPy tables (the data behind the TimedArrays).

Tables are kept small (docs/spiking.md §5.2): the images and labels have one row per sample; the
envelope (is a sample shown) and the learning gate (open, times the learning-rate factor) have one
row per *schedule slot*, the greatest common divisor of the presentation, rest and gate times.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from spela_hw.errors import ConfigError, DataError

from .config import EncodingConfig

__all__ = ["Schedule", "make_schedule", "check_images"]


def check_images(x, n_inputs: int, name: str = "X") -> np.ndarray:
    """Pixels as float64 in [0, 1]: they become firing rates, which cannot be negative."""
    arr = np.asarray(x)
    if arr.ndim != 2 or arr.shape[1] != n_inputs:
        raise ConfigError(name, f"expected shape (n_samples, {n_inputs}) to match the network's "
                                f"input width, got {arr.shape}")
    if arr.dtype == np.uint8:
        return arr.astype(np.float64) / 255.0
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise DataError(f"{name}: contains NaN or infinity")
    if arr.size and arr.min() < 0:
        raise ConfigError(name, f"pixel values become firing rates and cannot be negative "
                                f"(min {arr.min():.3g}); scale inputs to [0, 1]")
    if arr.size and arr.max() > 1 + 1e-9:
        raise ConfigError(name, f"pixel values must lie in [0, 1] (max {arr.max():.3g}); "
                                f"divide uint8 images by 255")
    return arr


@dataclass(frozen=True)
class Schedule:
    """One run: training samples (epoch by epoch) followed by test samples.

    Attributes
    ----------
    images : (n, n_inputs) float64 in [0, 1]
    labels : (n,) int64, -1 where no label is shown (test samples)
    train : (n,) bool, whether learning is on for the sample
    gain : (n,) float64, learning-rate factor G of the sample (0 for test samples)
    epoch : (n,) int64, the epoch of a training sample (-1 for test samples)
    """

    images: np.ndarray
    labels: np.ndarray
    train: np.ndarray
    gain: np.ndarray
    epoch: np.ndarray

    @property
    def n_samples(self) -> int:
        return len(self.labels)

    @property
    def n_train(self) -> int:
        return int(self.train.sum())

    @property
    def n_test(self) -> int:
        return self.n_samples - self.n_train

    def slice(self, start: int, stop: int) -> "Schedule":
        """Samples ``start:stop`` as a schedule of their own."""
        sl = slice(start, stop)
        return Schedule(self.images[sl], self.labels[sl], self.train[sl], self.gain[sl], self.epoch[sl])

    def slot_ms(self, enc: EncodingConfig, dt_ms: float) -> float:
        """Length of one envelope/gate row: the gcd of the schedule's times, in whole steps."""
        steps = [int(round(v / dt_ms)) for v in
                 (enc.present_ms, enc.rest_ms, enc.gate_start_ms, enc.gate_stop_ms)]
        g = 0
        for s in steps:
            g = math.gcd(g, s)
        return g * dt_ms

    def envelope_rows(self, enc: EncodingConfig, dt_ms: float) -> tuple[np.ndarray, np.ndarray]:
        """``(env, gate)`` tables with one row per slot: 1 while shown; G while the gate is open."""
        slot = self.slot_ms(enc, dt_ms)
        per = int(round(enc.sample_ms / slot))
        start = np.arange(per) * slot
        shown = (start < enc.present_ms - 1e-9).astype(np.float64)
        open_ = ((start >= enc.gate_start_ms - 1e-9) & (start < enc.gate_stop_ms - 1e-9)).astype(np.float64)
        env = np.tile(shown, self.n_samples)
        gate = (self.gain[:, None] * open_[None, :]).ravel()
        return env, gate


def make_schedule(
    x_train=None,
    y_train=None,
    x_test=None,
    y_test=None,
    epochs: int = 1,
    n_inputs: int | None = None,
    n_classes: int = 10,
    schedule: str = "inverse_epoch",
    shuffle_seed: int | None = 0,
    decay_samples: float = 10000.0,
) -> Schedule:
    """Training samples for ``epochs`` epochs (reshuffled each epoch when ``shuffle_seed`` is
    given; epoch 0 keeps the given order), then the test samples with the gate closed.

    The learning-rate factor of a training sample is ``1/(1 + epoch)`` (``inverse_epoch``), 1
    (``constant``) or ``1/(1 + s/decay_samples)`` with ``s`` the training samples seen before it
    (``inverse_time``)."""
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise ConfigError("epochs", f"must be a non-negative integer, got {epochs!r}")
    parts_x, parts_y, parts_t, parts_g, parts_e = [], [], [], [], []
    if x_train is not None and epochs > 0:
        xt = check_images(x_train, n_inputs if n_inputs is not None else np.shape(x_train)[1], "X")
        yt = _check_labels(y_train, len(xt), n_classes, "y")
        rng = np.random.default_rng(shuffle_seed) if shuffle_seed is not None else None
        for ep in range(epochs):
            order = np.arange(len(xt)) if (ep == 0 or rng is None) else rng.permutation(len(xt))
            parts_x.append(xt[order])
            parts_y.append(yt[order])
            parts_t.append(np.ones(len(xt), bool))
            parts_g.append(_gains(schedule, ep, len(xt), decay_samples))
            parts_e.append(np.full(len(xt), ep))
    if x_test is not None:
        xs = check_images(x_test, n_inputs if n_inputs is not None else np.shape(x_test)[1], "X_test")
        ys = _check_labels(y_test, len(xs), n_classes, "y_test") if y_test is not None \
            else np.full(len(xs), -1)
        parts_x.append(xs)
        parts_y.append(np.full(len(xs), -1))
        parts_t.append(np.zeros(len(xs), bool))
        parts_g.append(np.zeros(len(xs)))
        parts_e.append(np.full(len(xs), -1))
        del ys  # test labels never enter the simulation
    if not parts_x:
        raise ConfigError("X", "no samples to present")
    return Schedule(np.ascontiguousarray(np.concatenate(parts_x)), np.concatenate(parts_y).astype(np.int64),
                    np.concatenate(parts_t), np.concatenate(parts_g), np.concatenate(parts_e).astype(np.int64))


def _gains(schedule: str, epoch: int, n: int, decay_samples: float) -> np.ndarray:
    """Learning-rate factors of the ``n`` training samples of one epoch."""
    if schedule == "inverse_epoch":
        return np.full(n, 1.0 / (1.0 + epoch))
    if schedule == "constant":
        return np.ones(n)
    if schedule == "inverse_time":
        seen = epoch * n + np.arange(n, dtype=np.float64)
        return 1.0 / (1.0 + seen / decay_samples)
    raise ConfigError("plasticity.schedule", f"unknown schedule {schedule!r}")


def _check_labels(y, n: int, n_classes: int, name: str) -> np.ndarray:
    arr = np.asarray(y)
    if arr.shape != (n,):
        raise ConfigError(name, f"expected {n} labels, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.equal(np.mod(arr, 1), 0)):
            raise ConfigError(name, "labels must be integers")
    arr = arr.astype(np.int64)
    if n and (arr.min() < 0 or arr.max() >= n_classes):
        raise ConfigError(name, f"labels must lie in 0..{n_classes - 1}, got {arr.min()}..{arr.max()}")
    return arr
