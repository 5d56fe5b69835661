"""Few-shot and 1-epoch protocols and the presets."""

import numpy as np
import pytest

from spela_hw import ConfigError, Sgd, Spela, SpelaClassifier, load_dataset
from spela_hw.recipes import PRESETS, preset_params
from spela_hw.protocols import few_shot, few_shot_split, one_epoch


def test_few_shot_split_sizes_and_stratification():
    x = np.arange(1000)[:, None].astype(np.float32)
    y = np.repeat(np.arange(10), 100)
    xtr, ytr, xte, yte = few_shot_split(x, y, 0.95, seed=0)
    assert len(ytr) == 50 and len(yte) == 950
    assert not set(xtr[:, 0]) & set(xte[:, 0])
    _, ytr_s, _, _ = few_shot_split(x, y, 0.95, seed=0, stratified=True)
    assert np.bincount(ytr_s).tolist() == [5] * 10
    again = few_shot_split(x, y, 0.95, seed=0)[1]
    np.testing.assert_array_equal(ytr, again)
    with pytest.raises(ConfigError, match="test_fraction"):
        few_shot_split(x, y, 1.0, seed=0)


def _tiny(epochs):
    return {"spela": lambda seed: SpelaClassifier((64, 10), epochs=epochs, random_state=seed,
                                                  rule=Spela(optimizer=Sgd(0.05)))}


def test_few_shot_and_one_epoch_records():
    data = load_dataset("mnist-bundled")
    recs = few_shot(data, test_fractions=(0.95,), epochs=1, trials=2, competitors=_tiny(1))
    assert [r["trial"] for r in recs] == [0, 1]
    for r in recs:
        assert r["protocol"] == "few_shot" and r["n_train"] == 500 and r["n_test"] == 9500
        assert 0.5 < r["layer1_accuracy"] <= 1.0
    one = one_epoch(data, competitors=_tiny(3))
    assert one[0]["epochs"] == 1 and one[0]["n_train"] == 8000


def test_presets_match_the_reference_notes():
    off = PRESETS["official-code"]
    assert off["layer_sizes"] == (1024, 10) and off["batch_size"] == 50 and off["epochs"] == 200
    opt = off["rule"].optimizer
    assert [round(opt.lr_at(e), 6) for e in (0, 9, 10, 199)] == [2.5, 2.5, 2.4, 0.6]
    v2 = PRESETS["paper-v2"]
    assert v2["layer_sizes"] == (1000, 34) and v2["rule"].loss == "neg_cos"
    assert v2["rule"].input_norm == "every_layer" and v2["batch_size"] == 1
    assert preset_params("paper-v2", epochs=3)["epochs"] == 3
    with pytest.raises(ConfigError, match="preset"):
        preset_params("nope")
