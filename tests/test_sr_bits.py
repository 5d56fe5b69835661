"""Issue 18: the stochastic-rounding unit's random bits per synapse are one parameter,
``PrecisionSpec.sr_bits``, shared by the trainer (both backends, bit for bit), model files and
the hardware model (``sim``, ``spela-hw size``).

The kernels' bit-exactness for every width is drawn by the hypothesis tests of
``test_core_bitexact.py``, ``test_backprop.py`` (``strategies.fixed_precisions``) and
``test_fast_kernels.py`` (``SR_WIDTHS``).
"""

import json

import numpy as np
import pytest

from reports.cli import main
from sim import BitWidths
from spela_hw import PrecisionSpec, SpelaClassifier
from spela_hw._kernels import fixed as kfixed
from spela_hw._kernels import sr_unit
from spela_hw.errors import ConfigError, ModelFileError
from spela_hw.io import load_model, save_model
from spela_hw.rng import SR_BITS, lowbias32, sr_half16, sr_key32, sr_mask32, sr_offsets
from spela_hw.specs import DEFAULT_SR_BITS, Adam, Spela

KEY = 0x0123_4567_89AB_CDEF


def _data(n=60, n_in=20, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, n_in)) * (rng.random((n, n_in)) < 0.5), rng.integers(0, 3, n)


# -- the rounding itself ---------------------------------------------------------------------------

@pytest.mark.parametrize("b", [1, 2, 4, 7, 8, 12, 16])
@pytest.mark.parametrize("shift", [28, 16, 9, 3])
def test_b_random_bits_round_the_sum_to_b_bits_then_add_b_random_bits(b, shift):
    """(S + r) >> shift with the unit's offsets is what an SR unit of ``b`` random bits does: the
    sum rounded to the nearest ``b`` bits below the LSB (half up) plus ``b`` random bits (the top
    ``b`` of the 16-bit half); with fewer discarded bits than ``b`` the top ``shift`` random bits
    and nothing rounded first. 16 bits: the unit as it always was."""
    rng = np.random.default_rng(b * 100 + shift)
    S = rng.integers(-2**40, 2**40, 3000)
    words, halves = np.arange(3000), np.arange(3000) % 2
    r = sr_offsets(KEY, words, halves, shift, b)
    r16 = sr_offsets(KEY, words, halves, 16)  # the full 16-bit halves
    if b < shift:
        want = (((S + (1 << (shift - b - 1))) >> (shift - b)) + (r16 >> (16 - b))) >> b
    else:
        want = (S + (r16 >> (16 - shift))) >> shift
    np.testing.assert_array_equal((S + r) >> shift, want)
    if b == SR_BITS:  # the default is the unit as it always was: the full 16-bit halves
        z = lowbias32(((sr_key32(KEY) + words) % 2**32).astype(np.uint32)).astype(np.int64)
        full = (z >> (16 * halves)) & 0xFFFF
        np.testing.assert_array_equal(r, full << (shift - 16) if shift >= 16 else full >> (16 - shift))


@pytest.mark.parametrize("b", [1, 3, 8, 16])
def test_the_kernels_draw_the_reference_bits_of_every_width(b):
    z = np.zeros(64, np.uint32)
    sr_unit.sr_words(z, 64, np.uint64(0xFFFFFFF0), 5, np.uint32(sr_mask32(b)))
    want = lowbias32(((0xFFFFFFF0 + 5 * np.arange(64)) % 2**32).astype(np.uint32)) & np.uint32(sr_mask32(b))
    np.testing.assert_array_equal(z, want | np.uint32(sr_half16(b) * 0x10001))
    for w, h, shift in ((5, 0, 28), (2**32 + 5, 1, 28), (77, 1, 5), (77, 0, 16)):
        assert kfixed.sr_offset(np.uint64(KEY), np.uint64(w), h, shift, np.uint32(sr_mask32(b))) == \
            sr_offsets(KEY, np.array([w]), np.array([h]), shift, b)[0]


def test_fewer_bits_are_unbiased_up_to_half_a_step_of_either_sign():
    """Mean over many synapses: the sum rounded to the nearest 2**-b LSB, within 2**-(b + 1) LSB
    of the exact value on either side (a comparator of truncated bits would lose 2**-(b + 1) on
    average, always downwards)."""
    shift, n, b = 20, 200_000, 2
    r = sr_offsets(KEY, np.arange(n), np.arange(n) % 2, shift, b)
    errors = []
    for frac in (0.1, 0.2, 0.3, 0.45, -0.3, -0.1, 0.7, 0.93):
        s = int(frac * 2**shift)
        mean = ((s + r) >> shift).mean()
        want = np.floor(s / 2**(shift - b) + 0.5) / 2**b
        assert abs(mean - want) < 5 * np.sqrt(0.25 / n), (frac, mean, want)
        assert abs(want - s / 2**shift) <= 2**-(b + 1)
        errors.append(want - s / 2**shift)
    assert min(errors) < 0 < max(errors)


# -- the parameter -----------------------------------------------------------------------------

def test_sr_bits_is_validated_on_construction():
    assert PrecisionSpec.fixed(8).sr_bits == DEFAULT_SR_BITS == 16
    assert PrecisionSpec.fixed(8, sr_bits=1).sr_bits == 1
    for bad in (0, 17, -3, 8.0, True, "8"):
        with pytest.raises(ConfigError) as e:
            PrecisionSpec.fixed(8, sr_bits=bad)
        assert e.value.field == "sr_bits"
    for rounding in ("nearest", "truncate"):
        with pytest.raises(ConfigError, match="stochastic") as e:
            PrecisionSpec.fixed(8, sr_bits=8, update_rounding=rounding)
        assert e.value.field == "sr_bits"
    with pytest.raises(ConfigError, match="float32"):
        PrecisionSpec(sr_bits=8)
    # per-layer formats keep the unit
    p = PrecisionSpec.fixed(8, weight_range=(0.25, 2.0), sr_bits=5)
    assert p.for_layer(1).sr_bits == 5


def test_sr_bits_round_trips_and_old_dicts_mean_16():
    p = PrecisionSpec.fixed(6, sr_bits=4)
    d = p.to_dict()
    assert d["sr_bits"] == 4 and PrecisionSpec.from_dict(d) == p
    old = {k: v for k, v in PrecisionSpec.fixed(6).to_dict().items() if k != "sr_bits"}
    assert PrecisionSpec.from_dict(old).sr_bits == 16
    assert "sr_bits" not in PrecisionSpec().to_dict()


def test_sr_bits_changes_training_and_both_backends_agree():
    X, y = _data()
    results = {}
    for b in (16, 4):
        w = []
        for backend in ("reference", "numba"):
            clf = SpelaClassifier((40, 6), precision=PrecisionSpec.fixed(8, sr_bits=b), backend=backend,
                                  epochs=2, random_state=2).fit(X, y)
            w.append(np.concatenate([a.ravel() for a in clf.state_.weights]))
        np.testing.assert_array_equal(*w)
        results[b] = w[0]
    assert not np.array_equal(results[16], results[4])


def test_stateful_optimisers_refuse_another_width():
    X, y = _data()
    clf = SpelaClassifier((8, 6), rule=Spela(optimizer=Adam(1e-3)), precision=PrecisionSpec.fixed(8, sr_bits=8))
    with pytest.raises(ConfigError) as e:
        clf.fit(X, y)
    assert e.value.field == "precision.sr_bits"


def _rewrite_meta(path, change):
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays["meta"]))
    change(meta)
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(path, **arrays)


def test_model_files_keep_the_width_and_old_files_load_as_16(tmp_path):
    X, y = _data()
    for b in (16, 5):
        clf = SpelaClassifier((30, 6), precision=PrecisionSpec.fixed(8, sr_bits=b), epochs=1, random_state=1)
        clf.fit(X, y)
        path = save_model(clf, tmp_path / f"m{b}.npz")
        assert load_model(path).precision_.sr_bits == b
    # a file written before the field existed: trained with 16 random bits, resumes bit for bit
    path = tmp_path / "m16.npz"
    _rewrite_meta(path, lambda m: m["precision"].pop("sr_bits"))
    old, new = load_model(path), load_model(tmp_path / "m16.npz")
    assert old.precision_.sr_bits == 16
    ref = SpelaClassifier((30, 6), precision=PrecisionSpec.fixed(8), epochs=1, random_state=1).fit(X, y)
    for clf in (old, ref):
        clf.partial_fit(X, y)
    for a, b in zip(old.state_.weights, ref.state_.weights):
        np.testing.assert_array_equal(a, b)
    del new
    _rewrite_meta(path, lambda m: m["precision"].update(sr_bits=40))
    with pytest.raises(ModelFileError, match="sr_bits"):
        load_model(path)


# -- the hardware model and the CLI prices the same unit --------------------------------------

def test_sim_prices_the_trainers_unit():
    assert BitWidths.from_precision(PrecisionSpec.fixed(8, sr_bits=6)).sr_random_bits == 6
    assert BitWidths.from_precision(PrecisionSpec.fixed(8)).sr_random_bits == DEFAULT_SR_BITS
    assert BitWidths.from_precision(PrecisionSpec.fixed(8, update_rounding="nearest")).sr_random_bits == 0
    assert BitWidths().sr_random_bits == DEFAULT_SR_BITS


def _size(capsys, *args):
    rc = main(["size", "--dims", "784,64,10", "--rule", "spela", "--json", *args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def _sr_pj(res):
    return sum(i["energy_pj"] for i in res["design_points"][0]["energy"]
               if i["phase"] == "train" and i["action"] == "sr_random")


def test_size_sr_bits_defaults_to_the_trainers_and_scales_the_unit(capsys):
    rc, out, err = _size(capsys)
    assert rc == 0, err
    default = json.loads(out)
    assert default["design_points"][0]["bits"]["sr_random_bits"] == DEFAULT_SR_BITS
    rc, out, _ = _size(capsys, "--sr-bits", "4")
    four = json.loads(out)
    assert four["design_points"][0]["bits"]["sr_random_bits"] == 4
    assert 0 < _sr_pj(four) < _sr_pj(default)
    for bad in ("17", "-1"):
        rc, _, err = _size(capsys, "--sr-bits", bad)
        assert rc == 2 and "sr-bits" in err


def test_train_sr_bits_is_used_saved_and_fixed_on_resume(tmp_path, capsys):
    small = ["train", "--dims", "784,16,10", "--limit-train", "60", "--weight-bits", "8"]
    out = tmp_path / "m.npz"
    assert main([*small, "--epochs", "1", "--sr-bits", "4", "--out", str(out), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["config"]["precision"]["sr_bits"] == 4 and load_model(out).precision_.sr_bits == 4
    before = out.read_bytes()
    assert main(["train", "--out", str(out), "--resume", "--epochs", "2", "--sr-bits", "16"]) == 2
    assert "--sr-bits 16 but the checkpoint has 4" in capsys.readouterr().err
    assert out.read_bytes() == before
    assert main(["train", "--out", str(out), "--resume", "--epochs", "2", "--sr-bits", "4"]) == 0
    assert load_model(out).epochs_done_ == 2
    capsys.readouterr()
    for args, field in ((["train", "--sr-bits", "4"], "sr-bits"), ([*small, "--sr-bits", "0"], "sr-bits")):
        assert main([*args, "--out", str(tmp_path / "x.npz")]) == 2
        assert f"error: {field}" in capsys.readouterr().err
