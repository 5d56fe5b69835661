"""design_point / resolve_bits: precision=None means float32 (as in spela_hw), never a silent int8."""

import pytest

from sim import BitWidths, design_point, resolve_bits
from spela_hw.errors import ConfigError
from spela_hw.specs import PrecisionSpec

NET = (784, 64, 10)


def test_precision_none_is_float32_not_int8():
    fp = resolve_bits(precision=None)
    assert fp.is_float and fp.weight == fp.activation == 32 and fp == BitWidths.from_precision(None)
    r = design_point(NET, "mcu-256kb", "spela", precision=None)
    assert r.bits.is_float and r.bits.weight == 32
    int8 = design_point(NET, "mcu-256kb", "spela", precision=PrecisionSpec.fixed(8))
    assert int8.bits.weight == 8 and not int8.bits.is_float
    # float32 storage is 4x the int8 weights, and float MACs cost more than int8 ones
    assert r.ledger_train.bytes_of("weights") == 4 * int8.ledger_train.bytes_of("weights")
    assert r.energy_train.total_pj > int8.energy_train.total_pj
    # crossbar cells cannot hold float32: explicit error instead of pricing int8
    with pytest.raises(ConfigError, match="fixed-point"):
        design_point(NET, "sram-cim-22nm", "spela", precision=None)


def test_widths_must_be_given_explicitly():
    with pytest.raises(ConfigError) as e:
        design_point(NET, "mcu-256kb", "spela")
    assert e.value.field == "precision" and "float32" in str(e.value)
    with pytest.raises(ConfigError):
        resolve_bits()
    with pytest.raises(ConfigError, match="not both"):
        resolve_bits(BitWidths(), precision=PrecisionSpec.fixed(8))
    with pytest.raises(ConfigError) as e:
        resolve_bits(precision=None, weight_bits=8)  # float32 and 8-bit weights contradict
    assert e.value.field == "weight_bits"
    with pytest.raises(ConfigError):
        resolve_bits(precision="int8")
    # the explicit ways
    assert resolve_bits(weight_bits=4).weight == 4 and not resolve_bits(weight_bits=4).is_float
    assert resolve_bits(precision=PrecisionSpec.fixed(6), weight_bits=4).weight == 4
    b = resolve_bits(BitWidths(activation=6), weight_bits=4)
    assert (b.weight, b.activation) == (4, 6)
