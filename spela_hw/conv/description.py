"""One description of a convolutional network, for the trainers and for the hardware model.

A :class:`ConvNetSpec` is what a user writes (``ConvNetSpec.parse("c32k5p2-c64k5p2-d10",
input_shape=(1, 28, 28))``), what the SPELA and backprop trainers build, what a model file stores
(:meth:`ConvNetSpec.to_dict`) and what ``sim`` sizes (:meth:`ConvNetSpec.shapes`,
:meth:`ConvNetSpec.parameter_counts`): one description, so a user sizes exactly what they trained.

Spec strings
------------
Layers are separated by ``-``; a conv block must come before every dense layer.

``c<F>k<K>[s<S>][z<Z>][p<P>]``
    A conv block: ``F`` filters of ``K x K``, stride ``S`` (default 1), zero padding ``Z``
    (default 0), then the normalisation (``ConvNetSpec.norm``), LeakyReLU and a ``P x P``
    max-pool of stride ``P`` (default 1: no pool; the pool floors odd sizes).
``d<N>``
    A dense layer of ``N`` units on the flattened output of the layer before.

The last layer is the classifier: with backprop it needs one unit per class.

SPELA's read-out of a conv block (``ConvNetSpec.conv_target``)
--------------------------------------------------------------
``projection`` (the paper's)
    Each output channel ``c`` is flattened (``H W`` values) and projected by its own trainable
    matrix ``P_c`` (``H W x projection_dim``, init N(0, 1)) onto class vectors of the channel's
    class groups. Memory: ``C H W projection_dim`` trainable values per block.
``fixed_projection``
    The same with ``P_c`` fixed, N(0, 1) regenerated from the seed: nothing stored, nothing
    trained, the same compute.
``pooled``
    No projection: the channel means (global average pool, ``C`` values) are compared with one
    class vector per class in ``R^C``; nothing but the class vectors (``N C`` values, also
    regenerable from the seed).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..errors import ConfigError

__all__ = ["CONV_TARGETS", "NORMS", "ConvBlock", "ConvNetSpec", "DenseLayer", "parse_layers"]

NORMS = ("batch", "none")
CONV_TARGETS = ("projection", "fixed_projection", "pooled")
_CONV = re.compile(r"c(\d+)k(\d+)(?:s(\d+))?(?:z(\d+))?(?:p(\d+))?")
_DENSE = re.compile(r"d(\d+)")
#: Most class groups per channel of a projection target (the paper draws 2..9).
MAX_GROUPS = 9
#: Largest single number a spec string may hold (a guard against absurd allocations).
MAX_SIZE = 1 << 20


def _positive(field_name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum or value > MAX_SIZE:
        raise ConfigError(field_name, f"must be an integer from {minimum} to {MAX_SIZE}, got {value!r}")
    return value


@dataclass(frozen=True)
class ConvBlock:
    """Conv ``kernel x kernel`` (``filters`` outputs) -> norm -> LeakyReLU -> max-pool ``pool``."""

    filters: int
    kernel: int = 5
    stride: int = 1
    padding: int = 0
    pool: int = 2

    kind = "conv"

    def __post_init__(self):
        _positive("filters", self.filters)
        _positive("kernel", self.kernel)
        _positive("stride", self.stride)
        _positive("padding", self.padding, 0)
        _positive("pool", self.pool)

    def token(self) -> str:
        """The spec-string token of this block (the inverse of the parser)."""
        s = f"c{self.filters}k{self.kernel}"
        s += f"s{self.stride}" if self.stride != 1 else ""
        s += f"z{self.padding}" if self.padding else ""
        return s + (f"p{self.pool}" if self.pool != 1 else "")


@dataclass(frozen=True)
class DenseLayer:
    """A dense layer of ``units`` on the flattened input."""

    units: int

    kind = "dense"

    def __post_init__(self):
        _positive("units", self.units)

    def token(self) -> str:
        return f"d{self.units}"


def parse_layers(text: str) -> tuple:
    """The layers of a spec string such as ``"c32k5p2-c64k5p2-d10"`` (see the module docstring)."""
    if not isinstance(text, str) or not text.strip():
        raise ConfigError("net", f"must be a non-empty spec string such as 'c32k5p2-d10', got {text!r}")
    layers = []
    for i, tok in enumerate(text.strip().lower().split("-")):
        m = _CONV.fullmatch(tok)
        if m:
            f, k, s, z, p = (None if g is None else int(g) for g in m.groups())
            try:
                layers.append(ConvBlock(f, k, 1 if s is None else s, 0 if z is None else z,
                                        1 if p is None else p))
            except ConfigError as exc:
                raise ConfigError(f"net[{i}].{exc.field}", f"{tok!r}: {exc.message}") from None
            continue
        m = _DENSE.fullmatch(tok)
        if m:
            try:
                layers.append(DenseLayer(int(m.group(1))))
            except ConfigError as exc:
                raise ConfigError(f"net[{i}].{exc.field}", f"{tok!r}: {exc.message}") from None
            continue
        raise ConfigError(f"net[{i}]", f"{tok!r} is neither a conv block 'c<filters>k<kernel>[s<stride>]"
                                       f"[z<padding>][p<pool>]' nor a dense layer 'd<units>'")
    return tuple(layers)


@dataclass(frozen=True)
class ConvNetSpec:
    """A convolutional network: conv blocks, then dense layers, on ``(C, H, W)`` inputs.

    Parameters
    ----------
    input_shape : tuple of int
        ``(channels, height, width)`` of one input (``(1, 28, 28)`` for MNIST).
    layers : tuple of ConvBlock and DenseLayer
        Conv blocks first, then at least one dense layer (the classifier).
    n_classes : int
    norm : {"batch", "none"}
        After every convolution: BatchNorm (batch statistics in training, running statistics
        folded into one per-channel scale and shift at inference, as an accelerator runs it) or
        none (the conv bias only).
    slope : float
        Negative slope of every LeakyReLU.
    conv_target : {"projection", "fixed_projection", "pooled"}
        SPELA's read-out of each conv block (module docstring); backprop has none.
    projection_dim : int
        Dimension of the per-channel projections (the paper's 100).
    """

    input_shape: tuple[int, int, int]
    layers: tuple = field(default=())
    n_classes: int = 10
    norm: str = "batch"
    slope: float = 1e-3
    conv_target: str = "projection"
    projection_dim: int = 100

    def __post_init__(self):
        shape = self.input_shape
        if isinstance(shape, (str, bytes)) or not hasattr(shape, "__len__") or len(shape) != 3:
            raise ConfigError("input_shape", f"must be (channels, height, width), got {shape!r}")
        object.__setattr__(self, "input_shape", tuple(shape))
        for i, d in enumerate(self.input_shape):
            _positive(f"input_shape[{i}]", d)
        layers = self.layers
        if isinstance(layers, str):
            layers = parse_layers(layers)
        object.__setattr__(self, "layers", tuple(layers))
        if not self.layers or not isinstance(self.layers[-1], DenseLayer):
            raise ConfigError("layers", "must end with at least one dense layer (the classifier)")
        seen_dense = False
        for i, layer in enumerate(self.layers):
            if not isinstance(layer, (ConvBlock, DenseLayer)):
                raise ConfigError(f"layers[{i}]", f"must be a ConvBlock or DenseLayer, got {type(layer).__name__}")
            if isinstance(layer, ConvBlock) and seen_dense:
                raise ConfigError(f"layers[{i}]", "a conv block cannot follow a dense layer")
            seen_dense |= isinstance(layer, DenseLayer)
        _positive("n_classes", self.n_classes, 2)
        if self.norm not in NORMS:
            raise ConfigError("norm", f"must be one of {NORMS}, got {self.norm!r}")
        if isinstance(self.slope, bool) or not isinstance(self.slope, (int, float)) or not 0 <= self.slope <= 1:
            raise ConfigError("slope", f"must be a number in [0, 1], got {self.slope!r}")
        if self.conv_target not in CONV_TARGETS:
            raise ConfigError("conv_target", f"must be one of {CONV_TARGETS}, got {self.conv_target!r}")
        _positive("projection_dim", self.projection_dim, 1)
        self.shapes()  # every block must leave a non-empty map

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def parse(cls, net: str, input_shape, **kw) -> ConvNetSpec:
        """A spec from a spec string, e.g. ``ConvNetSpec.parse("c32k5p2-d10", (1, 28, 28))``."""
        return cls(input_shape=input_shape, layers=parse_layers(net), **kw)

    @property
    def net(self) -> str:
        """The spec string of the layers."""
        return "-".join(layer.token() for layer in self.layers)

    @property
    def conv_blocks(self) -> tuple[ConvBlock, ...]:
        return tuple(layer for layer in self.layers if isinstance(layer, ConvBlock))

    @property
    def dense_layers(self) -> tuple[DenseLayer, ...]:
        return tuple(layer for layer in self.layers if isinstance(layer, DenseLayer))

    # -- shapes ------------------------------------------------------------------------------
    def shapes(self) -> list[dict]:
        """Per layer: its input and output shapes (conv blocks also the map before pooling).

        Raises ConfigError naming the layer when a kernel or pool does not fit its input.
        """
        out, shape = [], self.input_shape
        for i, layer in enumerate(self.layers):
            if isinstance(layer, ConvBlock):
                _c, h, w = shape
                hc = (h + 2 * layer.padding - layer.kernel) // layer.stride + 1
                wc = (w + 2 * layer.padding - layer.kernel) // layer.stride + 1
                if hc < 1 or wc < 1:
                    raise ConfigError(f"layers[{i}].kernel", f"{layer.token()}: a {layer.kernel}x{layer.kernel} "
                                                             f"kernel does not fit its {h}x{w} input")
                hp, wp = hc // layer.pool, wc // layer.pool
                if hp < 1 or wp < 1:
                    raise ConfigError(f"layers[{i}].pool", f"{layer.token()}: a {layer.pool}x{layer.pool} pool "
                                                           f"does not fit the {hc}x{wc} map")
                new = (layer.filters, hp, wp)
                out.append({"layer": layer.token(), "input": shape, "conv": (layer.filters, hc, wc), "output": new})
            else:
                n = shape[0] if len(shape) == 1 else shape[0] * shape[1] * shape[2]
                new = (layer.units,)
                out.append({"layer": layer.token(), "input": (n,), "output": new})
            shape = new
        return out

    @property
    def flat_features(self) -> int:
        """Input width of the first dense layer (the flattened last conv map)."""
        s = self.shapes()[len(self.conv_blocks)]["input"]
        return s[0]

    # -- memory ------------------------------------------------------------------------------
    def parameter_counts(self, rule: str = "spela") -> list[dict]:
        """Parameters per layer by tensor class (values, not bytes), for ``rule``.

        ``conv_weights``, ``conv_biases``, ``norm_params`` (BatchNorm's scale and shift; its two
        running statistics are ``norm_stats``), ``dense_weights``, ``dense_biases``,
        ``projections`` (SPELA's trainable per-channel matrices, ``projection`` target only),
        ``class_vectors`` (SPELA: the values one would store; regenerable from the seed) and
        ``groups`` (SPELA ``projection`` targets: one group index per class and channel).
        Backprop has no projections and no class vectors.
        """
        if rule not in ("spela", "backprop"):
            raise ConfigError("rule", f"must be 'spela' or 'backprop', got {rule!r}")
        spela = rule == "spela"
        rows = []
        for layer, s in zip(self.layers, self.shapes()):
            row = {"layer": layer.token()}
            if isinstance(layer, ConvBlock):
                cin = s["input"][0]
                f, hp, wp = s["output"]
                row["conv_weights"] = f * cin * layer.kernel**2
                row["conv_biases"] = f
                row["norm_params"] = 2 * f if self.norm == "batch" else 0
                row["norm_stats"] = 2 * f if self.norm == "batch" else 0
                if spela:
                    proj = self.conv_target != "pooled"
                    row["projections"] = f * hp * wp * self.projection_dim if self.conv_target == "projection" else 0
                    # projection targets: at most MAX_GROUPS group vectors of projection_dim per channel
                    row["class_vectors"] = (f * min(MAX_GROUPS, self.n_classes) * self.projection_dim if proj
                                            else self.n_classes * f)
                    row["groups"] = f * self.n_classes if proj else 0
            else:
                n, m = s["input"][0], layer.units
                row["dense_weights"] = m * n
                row["dense_biases"] = m
                if spela:
                    row["class_vectors"] = self.n_classes * m
            rows.append(row)
        return rows

    def trainable_parameters(self, rule: str = "spela") -> int:
        """Total trainable values (weights, biases, norm parameters, SPELA's projections)."""
        keys = ("conv_weights", "conv_biases", "norm_params", "dense_weights", "dense_biases", "projections")
        return sum(row.get(k, 0) for row in self.parameter_counts(rule) for k in keys)

    # -- files -------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"input_shape": list(self.input_shape), "net": self.net, "n_classes": self.n_classes,
                "norm": self.norm, "slope": self.slope, "conv_target": self.conv_target,
                "projection_dim": self.projection_dim}

    @classmethod
    def from_dict(cls, d: dict) -> ConvNetSpec:
        if not isinstance(d, dict):
            raise ConfigError("network", f"must be a table, got {d!r}")
        known = {"input_shape", "net", "n_classes", "norm", "slope", "conv_target", "projection_dim"}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(min(map(str, unknown)), "unknown field of ConvNetSpec")
        for required in ("input_shape", "net"):
            if required not in d:
                raise ConfigError(required, "missing")
        kw = {k: v for k, v in d.items() if k not in ("net", "input_shape")}
        shape = d["input_shape"]
        if not isinstance(shape, (list, tuple)):
            raise ConfigError("input_shape", f"must be a list (channels, height, width), got {shape!r}")
        return cls(input_shape=tuple(shape), layers=parse_layers(d["net"]), **kw)
