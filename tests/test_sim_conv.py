"""``sim`` sizes exactly the conv network that was trained: one :class:`ConvNetSpec` for both."""

import pytest

from sim import BitWidths, Conventions, closed_form_counts, conv_workload, design_point, memory_ledger
from sim.workload import as_workload, spec_workload
from spela_hw.conv import ConvNetSpec
from spela_hw.errors import ConfigError

INT8 = BitWidths(weight=8, activation=8, class_vector=8)
#: The paper's CIFAR conv net (spela.md: input 3x64x64, two 5x5 blocks of 128, projections to 100).
CIFAR = ConvNetSpec.parse("c128k5p2-c128k5p2-d10", (3, 64, 64), projection_dim=100)
MNIST = ConvNetSpec.parse("c32k5p2-c64k5p2-d10", (1, 28, 28))


def rows(led):
    return {(r.tensor_class, r.level == "register"): r for r in led.rows}


def test_paper_cifar_net_itemises_its_projection_matrices():
    wl = spec_workload(CIFAR)
    assert [L.projection_params for L in wl.layers] == [11_520_000, 2_163_200, 0]  # 128*30*30*100, 128*13*13*100
    led = memory_ledger(CIFAR, "spela", INT8, 1)
    proj = rows(led)["projections", False]
    assert proj.values == 13_683_200 and proj.bytes == 13_683_200
    assert "11520000 + 2163200 = 13683200" in proj.formula
    # far more than the conv and dense weights the paper's net trains
    assert led.bytes_of("weights") == 128 * 3 * 25 + 128 * 128 * 25 + 10 * 128 * 13 * 13 == 635_520
    assert led.bytes_of("projections") > 20 * led.bytes_of("weights")
    assert memory_ledger(CIFAR, "backprop", INT8, 1).bytes_of("projections") == 0


@pytest.mark.parametrize("target", ["projection", "fixed_projection", "pooled"])
@pytest.mark.parametrize("norm", ["batch", "none"])
def test_ledger_counts_what_the_description_counts(target, norm):
    spec = ConvNetSpec.parse("c8k3z1p2-c16k3p2-d32-d10", (3, 16, 16), norm=norm, conv_target=target,
                             projection_dim=7)
    counts = spec.parameter_counts("spela")

    def total(*keys):
        return sum(row.get(k, 0) for row in counts for k in keys)

    led = memory_ledger(spec, "spela", INT8, 1)
    r = {row.tensor_class: row for row in led.rows if row.level != "register"}
    assert r["weights"].values == total("conv_weights", "dense_weights")
    assert r["biases"].values == total("conv_biases", "dense_biases")
    assert r.get("norm_params", None) is None if norm == "none" else r["norm_params"].values == total("norm_params")
    if norm == "batch":
        assert r["norm_statistics"].values == total("norm_stats")
    assert r["class_vectors"].values == total("class_vectors")
    assert r.get("class_groups") is None if target == "pooled" else r["class_groups"].values == total("groups")
    seeds = {row.tensor_class for row in led.rows if row.level == "register"}
    if target == "projection":
        assert r["projections"].values == total("projections") > 0 and "projections" not in seeds
    elif target == "fixed_projection":  # nothing stored but the seed it is regenerated from
        assert "projections" not in r and "projections" in seeds
    else:
        assert "projections" not in r and "projections" not in seeds
    trainable = spec.trainable_parameters("spela")
    assert f"x {trainable} (adam)" in rows(memory_ledger(spec, "spela", INT8, 1, optimizer="adam"))[
        "optimizer_state", False].formula


def test_seeded_class_vectors_regenerate_the_group_tables_too():
    led = memory_ledger(MNIST, "spela", INT8, 1, conventions=Conventions(class_vector_storage="seed"))
    assert led.bytes_of("class_groups") == 0 and rows(led)["class_vectors", True].values == 1


def test_fixed_projection_saves_exactly_the_projection_bytes():
    fixed = ConvNetSpec.parse(MNIST.net, MNIST.input_shape, conv_target="fixed_projection")
    a, b = memory_ledger(MNIST, "spela", INT8, 1), memory_ledger(fixed, "spela", INT8, 1)
    p = 32 * 12 * 12 * 100 + 64 * 4 * 4 * 100
    assert a.peak_bytes - b.peak_bytes == p - 8  # minus the 64-bit seed that replaces them
    # the same compute, but nothing read from memory, updated or written
    ca, cb = closed_form_counts(MNIST, "spela", 4, samples=8), closed_form_counts(fixed, "spela", 4, samples=8)
    assert (ca["loss_macs"] == cb["loss_macs"]).all()
    assert (ca["update_macs"] - cb["update_macs"]).tolist() == [8 * 32 * 144 * 100, 8 * 64 * 16 * 100, 0]
    assert (ca["weight_writes"] - cb["weight_writes"]).tolist() == [2 * 32 * 144 * 100, 2 * 64 * 16 * 100, 0]


def test_a_spec_and_the_same_layers_written_by_hand_give_the_same_workload():
    spec = ConvNetSpec.parse("c32k5z2p2-c64k5z2p2-d10", (1, 28, 28), norm="batch")
    by_hand = conv_workload([(28, 28, 1, 5, 32, 1, 1), (14, 14, 32, 5, 64, 1, 1), (1, 1, 7 * 7 * 64, 1, 10, 0, 1)],
                            10, projection_dim=100, norm=True)
    assert spec_workload(spec).layers == by_hand.layers
    assert as_workload(spec).layers == by_hand.layers
    pooled = ConvNetSpec.parse(spec.net, spec.input_shape, norm="none", conv_target="pooled")
    assert spec_workload(pooled).layers == conv_workload(
        [(28, 28, 1, 5, 32, 1, 1), (14, 14, 32, 5, 64, 1, 1), (1, 1, 3136, 1, 10, 0, 1)], 10, target="pooled").layers


def test_valid_padding_strides_and_odd_pools_floor_as_the_trainer_does():
    spec = ConvNetSpec.parse("c4k3s2p3-d5", (2, 15, 15), projection_dim=3)  # 15 -> 7 -> 2
    (c, d) = spec_workload(spec).layers
    assert (c.positions, c.pooled_values, c.pool, c.projection_params) == (49, 4 * 2 * 2, 9, 4 * 4 * 3)
    assert d.fan_in == spec.flat_features == 16


def test_bad_descriptions_name_the_field():
    with pytest.raises(ConfigError) as e:
        as_workload(MNIST, n_classes=7)
    assert e.value.field == "n_classes"
    with pytest.raises(ConfigError) as e:
        conv_workload([(8, 8, 1, 3, 4, 1, 1)], 10, target="fixed_projection")
    assert e.value.field == "projection_dim"


@pytest.mark.parametrize("preset", ["rram-22nm", "sram-cim-22nm"])
def test_a_description_prices_through_design_point(preset):
    dps = {r: design_point(MNIST, preset, r, weight_bits=8, batch_size=8) for r in ("spela", "backprop")}
    for dp in dps.values():
        assert dp.network == "1x28x28:c32k5p2-c64k5p2-d10"
        assert dp.energy_train.total_pj > dp.energy_infer.total_pj > 0
    # backprop stores every layer's input (and BatchNorm's normalised values) for its backward pass
    assert dps["backprop"].ledger_train.bytes_of("stored_activations") == 8 * (784 + 4608 + 1024 + 18432 + 4096)
    assert dps["spela"].ledger_train.bytes_of("stored_activations") == 0
