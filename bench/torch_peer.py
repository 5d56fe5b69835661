"""PyTorch CPU peers of the training and inference benchmarks: same recipes, data and weights.

The project's interpreter may not have torch (PyPI's torch for Python 3.13 is a multi-GB CUDA
build), so the harness runs this module with whichever interpreter has it
(:func:`torch_python`): ``python -m bench.torch_peer CASES.json OUT.json``. ``CASES.json`` holds
the cases and the path of an ``.npz`` with the MNIST arrays and the initial weights, biases and
class vectors that the numba run starts from, so both sides learn from the same starting point.

The SPELA peer is written as the official code does it: one ``nn.Linear`` and one SGD optimiser
per layer, ``h = leaky_relu(W x + b)``, loss ``mean log(2 - cos(h, v_y))`` of the detached layer
input, ``loss.backward(); opt.step()`` layer after layer. The backprop peer is
``Linear -> LeakyReLU -> Linear``, cross-entropy, SGD.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["torch_python", "run_peer"]


def torch_python() -> str | None:
    """An interpreter that can ``import torch``: this one, ``$SPELA_HW_TORCH_PYTHON``, or the
    bench venv ``.venv-bench`` next to the project (see bench/README.md); ``None`` if none can."""
    candidates = [sys.executable, os.environ.get("SPELA_HW_TORCH_PYTHON")]
    root = Path(__file__).resolve().parent.parent
    candidates.append(str(root / ".venv-bench" / "bin" / "python"))
    for exe in candidates:
        if not exe or not (Path(exe).exists() or shutil.which(exe)):
            continue
        try:
            r = subprocess.run([exe, "-c", "import torch, numpy"], capture_output=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if r.returncode == 0:
            return exe
    return None


def run_peer(cases: list[dict], arrays_npz: str, timeout_s: float = 3600) -> tuple[list[dict], str]:
    """Run ``cases`` in a torch interpreter; returns (rows, note). No torch: ([], reason)."""
    exe = torch_python()
    if exe is None:
        return [], "PyTorch peer skipped: no interpreter with torch (see bench/README.md)"
    tmp = Path(arrays_npz).parent
    spec_path, out_path = tmp / "torch_cases.json", tmp / "torch_rows.json"
    spec_path.write_text(json.dumps({"arrays": arrays_npz, "cases": cases}))
    root = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([exe, "-m", "bench.torch_peer", str(spec_path), str(out_path)], env=env,
                       capture_output=True, text=True, timeout=timeout_s, cwd=root)
    if r.returncode != 0:
        return [], f"PyTorch peer failed ({exe}): {r.stderr.strip()[-2000:]}"
    rows = json.loads(out_path.read_text())
    probe = "import sys, torch; print(sys.version.split()[0], torch.__version__)"
    ver = subprocess.run([exe, "-c", probe],
                         capture_output=True, text=True).stdout.split()
    return rows, f"PyTorch peer: torch {ver[1]} (CPU) on Python {ver[0]}, run by `{_shown(exe, root)}`"


def _shown(exe: str, root: str) -> str:
    """``exe`` as the results may print it: relative to the repository, else its name only
    (no machine paths in committed files)."""
    path = Path(exe)
    try:
        return str(path.relative_to(root))
    except ValueError:
        return path.name


# ----------------------------------------------------------------------------------------------
# the peer itself (runs in the torch interpreter)
# ----------------------------------------------------------------------------------------------
def _median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else 0.5 * (xs[n // 2 - 1] + xs[n // 2])


class _Peer:
    def __init__(self, arrays):
        import numpy as np
        import torch

        self.torch = torch
        z = np.load(arrays, allow_pickle=False)
        self.x_train = torch.from_numpy(z["x_train"])
        self.y_train = torch.from_numpy(z["y_train"].astype("int64"))
        self.x_test = torch.from_numpy(z["x_test"])
        self.y_test = torch.from_numpy(z["y_test"].astype("int64"))
        self.n_layers = int(z["n_layers"])
        self.w = [z[f"w{k}"] for k in range(self.n_layers)]
        self.b = [z[f"b{k}"] for k in range(self.n_layers)]
        self.v = [torch.from_numpy(z[f"v{k}"].astype("float32")) for k in range(self.n_layers)]
        self.slope = float(z["slope"])

    def layers(self):
        torch = self.torch
        out = []
        for w, b in zip(self.w, self.b):
            lin = torch.nn.Linear(w.shape[1], w.shape[0])
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(w.astype("float32")))
                lin.bias.copy_(torch.from_numpy(b.astype("float32")))
            out.append(lin)
        return out

    # -- SPELA, as the official notebooks write it ----------------------------------------------
    def spela_epoch(self, layers, n, batch, lr):
        torch, F = self.torch, self.torch.nn.functional
        opts = [torch.optim.SGD(lin.parameters(), lr=lr) for lin in layers]
        X, Y = self.x_train[:n], self.y_train[:n]
        for s0 in range(0, n, batch):
            x, y = X[s0:s0 + batch], Y[s0:s0 + batch]
            for lin, opt, v in zip(layers, opts, self.v):
                h = F.leaky_relu(lin(x), self.slope)
                c = (F.normalize(h, dim=1) * v[y]).sum(dim=1)
                loss = torch.log(2 - c).mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                x = h.detach()

    def spela_accuracy(self, layers, upto=None):
        torch, F = self.torch, self.torch.nn.functional
        accs = []
        with torch.no_grad():
            x = self.x_test
            for k, (lin, v) in enumerate(zip(layers, self.v)):
                h = F.leaky_relu(lin(x), self.slope)
                accs.append(float(((h @ v.T).argmax(dim=1) == self.y_test).float().mean()))
                x = h
                if upto is not None and k == upto:
                    break
        return accs

    # -- backprop baseline ----------------------------------------------------------------------
    def bp_model(self, layers):
        torch = self.torch
        mods = []
        for k, lin in enumerate(layers):
            mods.append(lin)
            if k < len(layers) - 1:
                mods.append(torch.nn.LeakyReLU(self.slope))
        return torch.nn.Sequential(*mods)

    def bp_epoch(self, model, n, batch, lr):
        torch = self.torch
        opt = torch.optim.SGD(model.parameters(), lr=lr)
        loss_fn = torch.nn.CrossEntropyLoss()
        X, Y = self.x_train[:n], self.y_train[:n]
        for s0 in range(0, n, batch):
            loss = loss_fn(model(X[s0:s0 + batch]), Y[s0:s0 + batch])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    def bp_accuracy(self, model):
        with self.torch.no_grad():
            return [float((model(self.x_test).argmax(dim=1) == self.y_test).float().mean())]

    # -- one case ----------------------------------------------------------------------------------
    def run(self, case):
        torch = self.torch
        torch.set_num_threads(int(case["threads"]))
        kind, n, reps = case["kind"], int(case["n"]), int(case["reps"])
        times, cpu, acc = [], [], None
        if kind in ("spela", "backprop"):
            batch, lr = int(case["batch"]), float(case["lr"])
            epoch = self.spela_epoch if kind == "spela" else self.bp_epoch
            wrap = (lambda ls: ls) if kind == "spela" else self.bp_model
            warm = min(n, int(case.get("warmup", 100)))
            epoch(wrap(self.layers()), warm, batch, lr)
            t0 = time.perf_counter()
            epoch(wrap(self.layers()), warm, batch, lr)
            rate = warm / max(time.perf_counter() - t0, 1e-9)
            budget = float(case.get("budget_s", float("inf")))
            n = min(n, max(warm, int(rate * budget)))  # a loaded machine times fewer samples
            n -= n % batch if n > batch else 0
            for _ in range(reps):
                model = wrap(self.layers())
                t0, c0 = time.perf_counter(), time.process_time()
                epoch(model, n, batch, lr)
                times.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
            if case.get("accuracy", True):
                acc = self.spela_accuracy(model) if kind == "spela" else self.bp_accuracy(model)
        elif kind == "inference":
            layers = self.layers()
            upto = case.get("exit_layer")
            self.spela_accuracy(layers, upto)
            for _ in range(reps):
                t0, c0 = time.perf_counter(), time.process_time()
                acc = self.spela_accuracy(layers, upto)
                times.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
            n = len(self.y_test)
        else:
            raise ValueError(f"unknown case kind {kind!r}")
        med = _median(times)
        return {**case, "impl": "pytorch", "torch": torch.__version__, "samples": n,
                "seconds_median": med, "seconds_all": times, "samples_per_s": n / med,
                "samples_per_cpu_s": n / _median(cpu), "accuracy": acc}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    spec = json.loads(Path(argv[0]).read_text())
    peer = _Peer(spec["arrays"])
    rows = [peer.run(c) for c in spec["cases"]]
    tmp = Path(argv[1]).with_suffix(".tmp")
    tmp.write_text(json.dumps(rows))
    os.replace(tmp, argv[1])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
