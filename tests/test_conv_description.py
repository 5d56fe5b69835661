"""The conv network description: spec strings, shapes, honest parameter counts, bad input."""

import pytest

from spela_hw.conv.description import ConvBlock, ConvNetSpec, DenseLayer, parse_layers
from spela_hw.errors import ConfigError


def test_parse_and_shapes_of_the_mnist_net():
    spec = ConvNetSpec.parse("c32k5p2-c64k5p2-d10", (1, 28, 28))
    assert spec.layers == (ConvBlock(32, 5, 1, 0, 2), ConvBlock(64, 5, 1, 0, 2), DenseLayer(10))
    outs = [s["output"] for s in spec.shapes()]
    assert outs == [(32, 12, 12), (64, 4, 4), (10,)]
    assert spec.flat_features == 64 * 16
    assert spec.net == "c32k5p2-c64k5p2-d10"


def test_stride_padding_and_no_pool_round_trip():
    spec = ConvNetSpec.parse("c8k3s2z1-c4k3p2-d16-d10", (3, 32, 32))
    assert spec.layers[0] == ConvBlock(8, 3, 2, 1, 1)
    assert spec.shapes()[0]["output"] == (8, 16, 16)
    assert ConvNetSpec.from_dict(spec.to_dict()) == spec


def test_paper_cifar_projection_matrices_are_counted():
    """The paper's CIFAR net: 3x64x64, two 128-filter blocks: 11.52 M + 2.16 M projection values."""
    spec = ConvNetSpec.parse("c128k5p2-c128k5p2-d10", (3, 64, 64))
    rows = spec.parameter_counts("spela")
    assert [r["projections"] for r in rows[:2]] == [11_520_000, 2_163_200]
    assert rows[0]["conv_weights"] == 128 * 3 * 25 and rows[1]["conv_weights"] == 128 * 128 * 25
    assert rows[2]["dense_weights"] == 10 * 128 * 13 * 13
    assert all("projections" not in r for r in spec.parameter_counts("backprop"))
    edge = ConvNetSpec.parse("c128k5p2-c128k5p2-d10", (3, 64, 64), conv_target="pooled")
    assert sum(r.get("projections", 0) for r in edge.parameter_counts()) == 0
    assert spec.trainable_parameters() - edge.trainable_parameters() == 11_520_000 + 2_163_200


@pytest.mark.parametrize("net, field", [
    ("", "net"), ("c32k5p2-x3-d10", "net[1]"), ("c0k5-d10", "net[0].filters"),
    ("c32k5", "layers"), ("d10-c8k3-d10", "layers[1]"), ("c8k29-d10", "layers[0].kernel"),
    ("c8k5p30-d10", "layers[0].pool"),
])
def test_bad_descriptions_name_the_field(net, field):
    with pytest.raises(ConfigError) as exc:
        ConvNetSpec.parse(net, (1, 28, 28))
    assert exc.value.field == field


@pytest.mark.parametrize("kw, field", [
    ({"input_shape": (28, 28)}, "input_shape"), ({"input_shape": (1, 0, 28)}, "input_shape[1]"),
    ({"norm": "layer"}, "norm"), ({"conv_target": "none"}, "conv_target"),
    ({"projection_dim": 0}, "projection_dim"), ({"n_classes": 1}, "n_classes"), ({"slope": 2}, "slope"),
])
def test_bad_fields_name_the_field(kw, field):
    args = {"input_shape": (1, 28, 28), "layers": parse_layers("c4k5p2-d10"), **kw}
    with pytest.raises(ConfigError) as exc:
        ConvNetSpec(**args)
    assert exc.value.field == field


def test_from_dict_refuses_unknown_and_missing_fields():
    with pytest.raises(ConfigError, match="colour"):
        ConvNetSpec.from_dict({"input_shape": [1, 28, 28], "net": "d10", "colour": 1})
    with pytest.raises(ConfigError) as exc:
        ConvNetSpec.from_dict({"input_shape": [1, 28, 28]})
    assert exc.value.field == "net"
