"""Convolutional networks: one description (:class:`ConvNetSpec`) for training and sizing, the
float32 NumPy reference of the conv block, the SPELA and backprop training steps and the estimator.

See ``docs/conv.md``.
"""

from .description import (
    CONV_TARGETS,
    NORMS,
    ConvBlock,
    ConvNetSpec,
    DenseLayer,
    parse_layers,
)

__all__ = ["CONV_TARGETS", "NORMS", "ConvBlock", "ConvNetSpec", "DenseLayer", "parse_layers"]
