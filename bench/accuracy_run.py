"""Accuracy runs recorded in bench/RESULTS.md (per-epoch test accuracy as JSON lines).

    SPELA_HW_DATA=../shared/data python -m bench.accuracy_run NAME DATASET PRESET|none "dict(...)" [TRAIN [TEST]]

``dict(...)`` holds estimator parameters (``cls=BackpropClassifier`` selects another estimator);
spela_hw's public names are in scope. ``TRAIN`` and ``TEST``: use only the first so many images of
each split (probes on subsets). Writes ``NAME.jsonl`` in the current directory.
"""
import json
import sys
import time

from spela_hw import (Adam, Backprop, BackpropClassifier, ConvBackpropClassifier,  # noqa: F401
                      ConvSpelaClassifier, PrecisionSpec, Sgd, Spela, SpelaClassifier, load_dataset)


def main(argv):
    name, ds, preset, kw = argv[0], argv[1], argv[2], eval(argv[3])  # a trusted command line
    d = load_dataset(ds)
    n_train, n_test = ([int(a) for a in argv[4:6]] + [None, None])[:2]
    x_tr, y_tr = d.features("train")[:n_train], d.y_train[:n_train]
    x_te, y_te = d.features("test")[:n_test], d.y_test[:n_test]
    cls = kw.pop("cls", SpelaClassifier)
    clf = cls.from_preset(preset, **kw) if preset != "none" else cls(**kw)
    with open(f"{name}.jsonl", "a") as out:
        def record(model, r):
            out.write(json.dumps(r) + "\n")
            out.flush()

        t = time.time()
        clf.fit(x_tr, y_tr, eval_set=(x_te, y_te), callback=record)
        out.write(json.dumps({"done": True, "seconds": time.time() - t,
                              "final": clf.score_layers(x_te, y_te)}) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
