"""Memory ledger: the accounting rules and worked examples of docs/hardware.md §9."""

import pytest

from sim import (ALGORITHMS, BitWidths, Conventions, MemoryBudget, Workload, largest_batch, load_preset, memory_ledger, vgg8,
                 widest_network, widest_weight_bits)
from spela_hw.errors import ConfigError
from spela_hw.specs import Adam, Backprop, PrecisionSpec, Sgd, Spela

INT8 = BitWidths(weight=8, activation=8, class_vector=8, gradient=32)
KIB, MIB = 1024, 1024 * 1024


def by_class(led):
    return led.by_class()


# -- 784-1024-10 at batch 1 and 50: SPELA vs backprop, every row by hand ------------------------

W, BIAS = 784 * 1024 + 1024 * 10, 1024 + 10       # 813 056 weights, 1034 biases (int8: 1 byte each)
IO = 784                                          # next input sample staged


@pytest.mark.parametrize("B", [1, 50])
def test_spela_784_1024_10(B):
    led = memory_ledger((784, 1024, 10), "spela", INT8, B)
    c = by_class(led)
    hand = {
        "weights": W, "biases": BIAS,
        "gradient_buffer": 0,                       # B = 1: rank-1 update as formed; B > 1: from the rows
        "optimizer_state": 0,                       # plain SGD
        "activations_in_flight": B * (784 + 1024),  # B * max_k (a_k + o_k): layer 1 in + out
        "activation_masks": B * 1024 // 8,          # 1-bit sigma' mask of one layer
        "error_buffers": 0,                         # delta overwrites h
        "rng_state": 16,                            # 64-bit key + 64-bit step
        "class_vectors": 10 * (1024 + 10),          # sum_k C * d_k at int8
        "io_staging": IO,
    }
    assert c == hand
    assert led.peak_bytes == sum(hand.values()) == {1: 827_166, 50: 922_030}[B]


BUFFERED = Conventions(bp_gradient="buffered")


@pytest.mark.parametrize("B", [1, 50])
def test_backprop_784_1024_10(B):
    led = memory_ledger((784, 1024, 10), Backprop(), INT8, B, conventions=BUFFERED)
    c = by_class(led)
    hand = {
        "weights": W, "biases": BIAS,
        "gradient_buffer": (W + BIAS) * 4,          # int32 gradient of every parameter
        "optimizer_state": 0,
        "stored_activations": B * (784 + 1024),     # B * sum_l a_l
        "activation_masks": B * 1024 // 8,          # hidden layers only (the output feeds the softmax)
        "error_buffers": 2 * B * 1024,              # 2 * B * max_l o_l
        "rng_state": 16,
        "io_staging": IO,
    }
    assert c == hand
    assert led.peak_bytes == sum(hand.values()) == {1: 4_075_234, 50: 4_270_450}[B]
    # two-layer MLP: both rules hold the same per-sample activation volume (784 + 1024)
    spela = memory_ledger((784, 1024, 10), "spela", INT8, B)
    assert c["stored_activations"] == by_class(spela)["activations_in_flight"]
    # the difference is the gradient and error buffers, minus SPELA's class vectors
    assert led.peak_bytes - spela.peak_bytes == (W + BIAS) * 4 + 2 * B * 1024 - 10 * 1034


def test_backprop_fused_gradient_and_optimisers():
    fused = memory_ledger((784, 1024, 10), "backprop", INT8, 1)  # the default, as spela_hw's loop does
    assert by_class(fused)["gradient_buffer"] == 0
    assert fused.peak_bytes == 4_075_234 - (W + BIAS) * 4
    n = W + BIAS
    assert by_class(memory_ledger((784, 1024, 10), Backprop(Adam()), INT8, 1))["optimizer_state"] == 2 * n * 4
    assert by_class(memory_ledger((784, 1024, 10), Backprop(Sgd(momentum=0.9)), INT8, 1))["optimizer_state"] == n * 4
    assert by_class(memory_ledger((784, 1024, 10), "backprop", INT8, 1, optimizer="adam"))["optimizer_state"] == 2 * n * 4
    assert memory_ledger((784, 1024, 10), Backprop(Adam()), INT8, 1).conventions["optimizer"] == "adam"


# -- worked example A: MLP 784-512-512-10 ------------------------------------------------------

def test_worked_example_a():
    bits = BitWidths(weight=8, activation=8, master=16, gradient=32)
    bp1 = by_class(memory_ledger((784, 512, 512, 10), "backprop", bits, 1, conventions=BUFFERED))
    sp1 = by_class(memory_ledger((784, 512, 512, 10), "spela", bits, 1))
    assert bp1["weights"] == sp1["weights"] == 668_672                            # 653 KiB
    assert round(bp1["weights"] / KIB) == 653
    assert round(bp1["master_copy"] / MIB, 2) == round(sp1["master_copy"] / MIB, 2) == 1.28
    assert round(bp1["gradient_buffer"] / MIB, 2) == 2.55 and sp1["gradient_buffer"] == 0
    assert bp1["stored_activations"] == 1808 and bp1["activation_masks"] * 8 == 1024
    assert sp1["activations_in_flight"] == 1296 and sp1["activation_masks"] * 8 == 512
    assert bp1["error_buffers"] == 2 * 512 and sp1["error_buffers"] == 0          # delta in place
    assert sp1["class_vectors"] == 10_340 and round(sp1["class_vectors"] / KIB, 1) == 10.1
    bp200 = by_class(memory_ledger((784, 512, 512, 10), "backprop", bits, 200))
    sp200 = by_class(memory_ledger((784, 512, 512, 10), "spela", bits, 200))
    assert round(bp200["stored_activations"] / KIB) == 353
    assert round(sp200["activations_in_flight"] / KIB) == 253
    # at B = 1 the stored class vectors outweigh SPELA's activation + error saving (~1 KiB)
    saving = (bp1["stored_activations"] + bp1["error_buffers"]) - (sp1["activations_in_flight"] + sp1["error_buffers"])
    assert sp1["class_vectors"] > saving > 0


def test_worked_example_b_and_c():
    led = memory_ledger((784, 1000, 34), "spela", INT8, 1)
    assert led.bytes_of("weights") == 818_000
    w4 = memory_ledger((784, 1024, 10), "spela", BitWidths(weight=4), 1).bytes_of("weights")
    assert round(w4 / KIB) == 397  # "at 4 bits still about 400 KiB"
    head = Workload.dense((2048, 1024, 1024), n_classes=100)
    sp = by_class(memory_ledger(head, "spela", INT8, 1))
    assert sp["class_vectors"] == 204_800 and sp["class_vectors"] / KIB == 200
    assert sp["activations_in_flight"] == 3072
    assert by_class(memory_ledger(head, "backprop", INT8, 1))["stored_activations"] == 3072


def test_worked_example_d_vgg8():
    wl = vgg8()
    bp = by_class(memory_ledger(wl, "backprop", INT8, 1))
    assert bp["weights"] == 12_973_440
    assert bp["stored_activations"] == 290_816                       # 284 KiB per sample
    sp = by_class(memory_ledger(wl, "spela", INT8, 1))
    assert sp["activations_in_flight"] == 262_144                    # conv2 in + out
    assert 1.1 <= 290_816 / 262_144 <= 1.12
    outs = sum(L.out_values for L in wl.layers)
    assert 2.8 < (290_816 + outs) / 262_144 < 2.9                    # inputs + pre-activations ~750 K
    bp200 = by_class(memory_ledger(wl, "backprop", INT8, 200))
    assert round(bp200["stored_activations"] / MIB, 1) == 55.5
    assert bp200["pooling_indices"] == 200 * (32768 + 16384 + 8192) * 2 // 8  # 2 bits per pooled value
    proj = by_class(memory_ledger(vgg8(projection_dim=100), "spela", INT8, 1))
    assert round(proj["projections"] / 1e6, 1) == 28.7               # 2.2x the network's weights


# -- other algorithms (table rows) ----------------------------------------------------------------

def test_other_algorithm_rows():
    assert set(ALGORITHMS) >= {"backprop", "spela", "sigprop", "forward_forward", "pepita", "drtp"}
    B = 8
    sig = by_class(memory_ledger((784, 1024, 10), "sigprop", INT8, B, sigprop_target_rows="batch"))
    assert sig["activations_in_flight"] == (B + B) * 1808 and sig["front_projection"] == 10 * 1024
    sig_c = by_class(memory_ledger((784, 1024, 10), "sigprop", INT8, B, sigprop_target_rows="classes"))
    assert sig_c["activations_in_flight"] == (B + 10) * 1808
    ff = by_class(memory_ledger((784, 1024, 10), "forward_forward", INT8, B))
    assert ff["activations_in_flight"] == 2 * B * 1808 and "class_vectors" not in ff
    pep = by_class(memory_ledger((784, 1024, 10), "pepita", INT8, B))
    assert pep["stored_activations"] == B * (1024 + 10) and pep["feedback_matrices"] == 784 * 10
    assert pep["error_buffers"] == B * 10
    drtp = by_class(memory_ledger((784, 1024, 10), "drtp", INT8, B))
    assert drtp["feedback_matrices"] == 10 * 1024 and drtp["error_buffers"] == B * 1024
    with pytest.raises(ConfigError) as e:
        memory_ledger((784, 10), "hebbian", INT8, 1)
    assert e.value.field == "rule"


def test_class_vector_storage_and_placement():
    mcu = load_preset("mcu-256kb")
    led = memory_ledger((784, 64, 10), "spela", INT8, 1, hardware=mcu.with_conventions(class_vector_storage="nvm"))
    cv = [r for r in led.rows if r.tensor_class == "class_vectors"][0]
    assert cv.level == "nvm" and cv.bytes == 10 * (64 + 10)
    seed = memory_ledger((784, 64, 10), "spela", INT8, 1, hardware=mcu.with_conventions(class_vector_storage="seed"))
    cv = [r for r in seed.rows if r.tensor_class == "class_vectors"][0]
    assert cv.level == "register" and cv.bytes == 8
    rram = load_preset("rram-22nm")
    led = memory_ledger((784, 1024, 10), "spela", INT8, 1, hardware=rram)
    assert led.by_level()["crossbar"] == W
    inf = memory_ledger((784, 64, 10), "spela", INT8, 1, "infer", mcu)
    assert [r.level for r in inf.rows if r.tensor_class == "weights"] == ["nvm"]  # inference from flash
    with pytest.raises(ConfigError) as e:
        memory_ledger((784, 64, 10), "spela", INT8, 1, hardware=mcu.with_conventions(class_vector_storage="crossbar"))
    assert e.value.field == "conventions.class_vector_storage"


def test_inference_ledger_early_exit():
    full = memory_ledger((784, 1024, 10), "spela", INT8, 1, "infer", readouts="exit")
    early = memory_ledger((784, 1024, 10), "spela", INT8, 1, "infer", exit_layer=0, readouts="exit")
    assert early.bytes_of("weights") == 784 * 1024 and early.bytes_of("class_vectors") == 10 * 1024
    assert full.bytes_of("class_vectors") == 10 * 10
    assert memory_ledger((784, 1024, 10), "spela", INT8, 1, "infer").bytes_of("class_vectors") == 10 * 1034


def test_spill_to_dram_and_fits_reasons():
    rram = load_preset("rram-22nm")  # 1 MB SRAM + DRAM
    led = memory_ledger(vgg8(), "backprop", INT8, 200, hardware=rram)
    lv = led.by_level()
    assert lv["dram"] > 55 * MIB and lv["sram"] <= 1024 * KIB
    dram_rows = {r.tensor_class for r in led.rows if r.level == "dram"}
    assert "stored_activations" in dram_rows
    mcu = load_preset("mcu-256kb")  # no DRAM: nothing spills, the check says why
    fit = memory_ledger((784, 1024, 10), "spela", INT8, 1, hardware=mcu).fits("256KB")
    assert not fit and len(fit.reasons) == 2
    assert "exceeds the budget 256.0 KiB" in fit.reasons[0] and "weights 794.0 KiB" in fit.reasons[0]
    assert "SRAM capacity" in fit.reasons[1]
    ok = memory_ledger((784, 128, 10), "spela", INT8, 1, hardware=mcu).fits("256KB")
    assert ok.fits and ok.reasons == () and bool(ok)
    b = MemoryBudget.parse("sram=256KB, nvm=1MB")
    assert b.sram_bytes == 262144 and b.nvm_bytes == 1048576 and b.total_bytes is None
    with pytest.raises(ConfigError) as e:
        MemoryBudget.parse("sdram=1MB")
    assert e.value.field == "budget.sdram"
    with pytest.raises(ConfigError, match="needs a unit"):
        MemoryBudget.parse("256")


def test_solvers_match_brute_force():
    # widest 784-h-10 whose int8 weights alone fit 256 KiB: 794 h <= 262144 -> h = 330
    assert widest_network((784, None, 10), "256KB", "spela", INT8, include=("weights",)) == 330
    full = widest_network((784, None, 10), "256KB", "spela", INT8)
    brute = max(h for h in range(1, 400)
                if memory_ledger((784, h, 10), "spela", INT8, 1).fits("256KB").fits)
    assert full == brute < 330
    bp = widest_network((784, None, 10), "256KB", "backprop", INT8)
    # at B = 1 SPELA's stored class vectors (10 (h + 10) bytes) outweigh backprop's extra error and mask
    # buffers (2 h + h/8): backprop fits a slightly wider layer, unless the vectors come from a seed
    assert full < bp
    seeded = widest_network((784, None, 10), "256KB", "spela", INT8,
                            conventions=Conventions(class_vector_storage="seed"))
    assert seeded > bp
    bp_buf = widest_network((784, None, 10), "256KB", "backprop", INT8, conventions=BUFFERED)
    assert bp_buf < bp // 2  # an int32 gradient buffer costs backprop most of its width
    b = largest_batch((784, 64, 10), "256KB", "spela", INT8)
    assert memory_ledger((784, 64, 10), "spela", INT8, b).fits("256KB")
    assert not memory_ledger((784, 64, 10), "spela", INT8, b + 1).fits("256KB")
    bits = widest_weight_bits((784, 330, 10), "256KB", "spela", INT8)
    assert bits == 7  # 8-bit weights of 784-330-10 (262 020 B) alone fill 256 KiB; at 7 bits all fits
    assert widest_weight_bits((784, 4096, 10), "64KB", "spela", INT8) == 0
    with pytest.raises(ConfigError):
        widest_network((784, 100, 10), "256KB", "spela")


def test_bits_from_precision_and_validation():
    p = PrecisionSpec.fixed(weight_bits=6)
    b = BitWidths.from_precision(p)
    assert (b.weight, b.activation, b.accumulator, b.update, b.class_vector, b.sr_random_bits) == (
        6, p.activation.bits, p.accumulator.bits, p.update.bits, p.class_vector.bits, 16)  # spela_hw's SR unit
    assert BitWidths.from_precision(None).is_float
    with pytest.raises(ConfigError) as e:
        BitWidths(weight=0)
    assert e.value.field == "weight_bits"
    with pytest.raises(ConfigError) as e:
        BitWidths(weight=8, master=4)
    assert e.value.field == "master_bits"
    with pytest.raises(ConfigError) as e:
        memory_ledger((784, 10), Spela(), INT8, 0)
    assert e.value.field == "batch_size"


def test_dram_spill_does_not_count_as_fitting_on_chip():
    """SPELA w8a16 784-256-34 on sram-cim-22nm (256 KiB SRAM + DRAM), SRAM budget 256 KiB: batch 64
    fits, and batch 128 does not fit on chip although its in-flight rows (260 KiB) spill to DRAM
    (it used to "fit" because the spill lowered the on-chip bytes)."""
    hw = load_preset("sram-cim-22nm")
    bits = BitWidths.from_precision(PrecisionSpec.fixed(8))
    net = (784, 256, 34)
    led = lambda b: memory_ledger(net, "spela", bits, b, "train", hw)  # noqa: E731
    assert led(64).fits("256KB")
    spill = led(128)
    assert spill.spilled_bytes == 260 * KIB and spill.by_level()["dram"] == 260 * KIB
    fit = spill.fits("256KB")
    assert not fit and any("spill to DRAM" in r and "activations_in_flight" in r for r in fit.reasons)
    assert fit.used_bytes["sram"] == fit.sram_demand_bytes == spill.by_level()["sram"] + 260 * KIB
    assert fit.used_bytes["total"] == spill.on_chip_bytes + 260 * KIB  # spilled bytes counted on chip
    assert any("SRAM" in r and "exceeds the budget" in r for r in fit.reasons)
    assert not spill.fits()  # the hardware alone: SRAM is full
    # accepting DRAM is explicit (or implied by a budget that limits DRAM)
    ok = spill.fits("256KB", allow_dram_spill=True)
    assert ok and ok.spilled_bytes == 260 * KIB and ok.used_bytes["dram"] == 260 * KIB
    assert spill.fits(MemoryBudget(sram_bytes=256 * KIB, dram_bytes=1 << 30))
    assert not spill.fits(MemoryBudget(sram_bytes=256 * KIB, dram_bytes=256 * KIB))  # DRAM budget too small
    assert not spill.fits(MemoryBudget(sram_bytes=256 * KIB, dram_bytes=1 << 30), allow_dram_spill=False)
    # an SRAM budget below the hardware's SRAM: the check spills against the budget
    small = led(32).fits("64KiB", allow_dram_spill=True)
    assert small and 0 < small.spilled_bytes and small.used_bytes["sram"] <= 64 * KIB
    assert not led(32).fits("64KiB")
    # the solver: the answer fits, the next batch does not, and the answer is the on-chip brute force
    b = largest_batch(net, "256KB", "spela", bits, hw)
    assert 64 <= b < 128
    assert led(b).fits("256KB") and led(b).spilled_bytes == 0 and not led(b + 1).fits("256KB")
    assert b == max(x for x in range(1, 160) if led(x).fits("256KB"))
    # no budget: the hardware's SRAM is the limit, still on chip
    cap = largest_batch(net, None, "spela", bits, hw)
    assert led(cap).spilled_bytes == 0 and led(cap + 1).spilled_bytes > 0
    # with DRAM allowed the batch is a capacity question
    assert largest_batch(net, "256KB", "spela", bits, hw, allow_dram_spill=True, max_batch=4096) > 128
    with pytest.raises(ConfigError):
        spill.fits("256KB", allow_dram_spill="yes")
