"""The hook through which a hardware model takes part in training (device effects).

``spela_hw`` knows nothing about crossbars; :mod:`sim` implements this protocol (conductance
levels, variation, stuck-at faults, non-linear updates, endurance) and the training loop calls it,
so that accuracy under device effects is measured rather than assumed. Only the float32 path of
the reference backend supports a device (the functional model is real-valued by nature).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["DeviceModel"]


@runtime_checkable
class DeviceModel(Protocol):
    """What a training loop needs from a functional device model.

    Layer ``k``'s weights ``W`` have shape ``(fan_out, fan_in)``; ``b`` has shape ``(fan_out,)``.
    """

    def program(self, layer: int, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Write initial weights to the device; return what the device actually holds."""

    def read(self, layer: int, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The effective weights a forward pass sees (read noise, stuck cells, ADC effects)."""

    def update(
        self, layer: int, w: np.ndarray, b: np.ndarray, dw: np.ndarray, db: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Apply a requested increment; return the stored weights after the device's response."""
