"""Per-layer early-exit curve over seeds from `spela-hw train` checkpoints (issue 18,
bench/RESULTS.md "Per-layer early exit of the deep network").

    spela-hw train --dataset mnist --preset official-code \
        --dims 784,1024,1024,1024,1024,1024,1024,1024,1024,1024 --epochs 200 --seed S --out deep/sS.npz
    python -m bench.early_exit deep/s0.npz deep/s1.npz deep/s2.npz [--epochs 1,10,50] [--plot curve.png]
    python -m bench.early_exit deep/s0.npz --export bench/runs/deep-early-exit

Every checkpoint holds its per-epoch history (test accuracy at every layer's read-out);
``--export DIR`` writes it to ``DIR/<name>.json`` (a few kB, committed: a checkpoint of the deep
network is 38 MB), and such a ``.json`` file is read like the checkpoint it came from. The table
gives, at each requested epoch that every run has reached (default: 1, 5, 10, 25, 50, 100, 150,
200 and the last common epoch), the mean and sample standard deviation over the runs at every
layer; ``--plot`` draws accuracy against the exit layer, one line per epoch, with the spread.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

DEFAULT_EPOCHS = (1, 5, 10, 25, 50, 100, 150, 200)


def accuracy_table(histories: list[list[dict]]) -> tuple[list[int], np.ndarray]:
    """``(epochs, acc)``: ``acc[r, e, k]`` is run ``r``'s accuracy in % at layer ``k + 1`` after
    epoch ``epochs[e]``, for the epochs every run has reached."""
    common = min(len(h) for h in histories)
    layers = sorted(int(key[5:-9]) for key in histories[0][0] if key.startswith("layer") and key.endswith("_accuracy"))
    acc = np.array([[[100 * h[e][f"layer{k}_accuracy"] for k in layers] for e in range(common)] for h in histories])
    return list(range(1, common + 1)), acc


def shown_epochs(epochs: list[int], wanted: tuple[int, ...]) -> list[int]:
    """The wanted epochs every run has reached, and the last common one."""
    return sorted({e for e in wanted if e <= epochs[-1]} | {epochs[-1]})


def render(paths: list[Path], epochs: list[int], acc: np.ndarray, wanted: tuple[int, ...]) -> str:
    last = epochs[-1]
    rows = shown_epochs(epochs, wanted)
    n_layers = acc.shape[2]
    spread = len(paths) > 1
    lines = [f"{len(paths)} run{'s' if spread else ''} ({', '.join(p.name for p in paths)}), "
             f"every run at least {last} epochs; "
             f"test accuracy in %" + (", mean ± sample std over the runs" if spread else ""), "",
             "| epoch | " + " | ".join(f"layer {k}" for k in range(1, n_layers + 1)) + " |",
             "|---|" + "---|" * n_layers]
    for e in rows:
        a = acc[:, e - 1, :]
        if spread:
            cells = [f"{m:.2f} ± {s:.2f}" for m, s in zip(a.mean(axis=0), a.std(axis=0, ddof=1))]
        else:
            cells = [f"{m:.2f}" for m in a[0]]
        lines.append(f"| {e} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(path: Path, epochs: list[int], acc: np.ndarray, wanted: tuple[int, ...]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    layers = np.arange(1, acc.shape[2] + 1)
    for e in shown_epochs(epochs, wanted):
        a = acc[:, e - 1, :]
        mean = a.mean(axis=0)
        ax.plot(layers, mean, marker="o", label=f"epoch {e}")
        if len(a) > 1:
            sd = a.std(axis=0, ddof=1)
            ax.fill_between(layers, mean - sd, mean + sd, alpha=0.2)
    ax.set_xlabel("exit layer")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"Per-layer early exit, mean ± std over {len(acc)} runs" if len(acc) > 1
                 else "Per-layer early exit, one run")
    ax.legend(fontsize="small", loc="lower right")
    fig.tight_layout()
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=120)
    tmp.replace(path)  # atomic: never a half-written figure
    plt.close(fig)


def load_history(path: Path) -> list[dict]:
    """Per-epoch records of a ``spela-hw train`` checkpoint, or of its ``--export``ed ``.json``."""
    from spela_hw.errors import DataError
    from spela_hw.io import load_model

    if path.suffix != ".json":
        return load_model(path).history_
    try:
        history = json.loads(path.read_text())["history"]
    except FileNotFoundError:
        raise DataError(f"{path}: no such history file") from None
    except (ValueError, KeyError, TypeError) as e:
        raise DataError(f"{path}: not a history file from --export (field 'history': {e})") from None
    if not (isinstance(history, list) and all(isinstance(r, dict) for r in history)):
        raise DataError(f"{path}: field 'history' must be a list of epoch records")
    return history


def export(path: Path, out_dir: Path) -> Path:
    """Write ``path``'s history to ``out_dir/<stem>.json`` atomically; the written path."""
    from spela_hw.io import load_model
    from spela_hw.jsonio import dumps

    model = load_model(path)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{path.stem}.json"
    head = dumps({"source": path.name, "layer_sizes": list(model.layer_sizes), "seed": model.random_state,
                  "epochs_done": model.epochs_done_})
    epochs = ",\n".join(dumps(r) for r in model.history_)  # one line per epoch: readable diffs
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(f'{head[:-1]}, "history": [\n{epochs}\n]}}\n')
    os.replace(tmp, target)  # atomic: never a half-written file
    return target


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.early_exit", description=__doc__.split("\n\n")[0])
    p.add_argument("models", nargs="+", type=Path,
                   help="spela-hw train checkpoints (.npz) or their exported histories (.json), one per seed")
    p.add_argument("--export", type=Path, metavar="DIR",
                   help="write each checkpoint's history to DIR/<name>.json and stop")
    p.add_argument("--epochs", help="comma-separated epochs to show (default 1,5,10,25,50,100,150,200 and the last)")
    p.add_argument("--plot", type=Path, help="also draw the curve to this PNG")
    args = p.parse_args(argv)
    from spela_hw.errors import SpelaError

    try:
        wanted = tuple(int(t) for t in args.epochs.split(",")) if args.epochs else DEFAULT_EPOCHS
    except ValueError:
        p.error(f"--epochs must be comma-separated integers, got {args.epochs!r}")
    try:
        if args.export:
            for path in args.models:
                print(export(path, args.export))
            return 0
        histories = [load_history(path) for path in args.models]
    except SpelaError as e:
        p.error(str(e))
    if any(not h for h in histories):
        p.error("a checkpoint has no finished epoch: " +
                ", ".join(str(path) for path, h in zip(args.models, histories) if not h))
    epochs, acc = accuracy_table(histories)
    print(render(args.models, epochs, acc, wanted))
    if args.plot:
        plot(args.plot, epochs, acc, wanted)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
