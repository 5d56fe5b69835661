"""PyTorch CPU peer of the conv SPELA speed benchmark (:mod:`bench.conv_speed`): the same recipe.

Run by the harness in whichever interpreter has torch (:func:`bench.torch_peer.torch_python`):
``python -m bench.conv_torch_peer CASES.json OUT.json``. ``CASES.json`` names an ``.npz`` with
the images, labels and, per case, the initial parameters of the spela-hw run it is paired with
(conv weights and biases, projections, group vectors and class-to-group maps, the dense layer and
its class vectors), so both sides start from the same state.

The recipe, as :mod:`spela_hw.conv.model` and the estimator run it: every conv block is
``Conv2d -> [BatchNorm2d] -> LeakyReLU -> MaxPool2d`` with its own loss, the mean over the batch
and the channels of ``(1 - cos(z_c P_c, t_c[g_c(y)]))^2`` (``z_c`` the flattened channel map,
``P_c`` its trainable projection), and its own Adam (lr 0.01) over its parameters and
projections; its output is detached before it feeds the next block. The dense layer: the
flattened map L2-normalised, ``Linear`` (no activation: the last layer), loss
``mean log(2 - cos(h, v_y))``, plain SGD (lr 20). One ``backward`` and ``step`` per block and
per step, as a PyTorch user writes local losses.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


class _ConvPeer:
    def __init__(self, arrays, case):
        import numpy as np
        import torch

        self.torch = torch
        z = np.load(arrays, allow_pickle=False)
        tag = case["tag"]
        self.x = torch.from_numpy(z["x_train"].astype("float32"))
        self.y = torch.from_numpy(z["y_train"].astype("int64"))
        self.n_blocks = int(z[f"{tag}.n_blocks"])
        self.slope = float(z["slope"])
        self.pools = [int(p) for p in z["pools"]]
        self.paddings = [int(p) for p in z["paddings"]]
        self.strides = [int(p) for p in z["strides"]]
        self.norm = case["norm"] == "batch"
        self.state = {k.removeprefix(tag + "."): torch.from_numpy(z[k]) for k in z.files if k.startswith(tag + ".")}

    def build(self):
        """Fresh modules and optimisers from the stored initial state."""
        torch = self.torch
        blocks = []
        for k in range(self.n_blocks):
            w = self.state[f"block{k}.w"]
            conv = torch.nn.Conv2d(w.shape[1], w.shape[0], w.shape[2], stride=self.strides[k],
                                   padding=self.paddings[k])
            with torch.no_grad():
                conv.weight.copy_(w)
                conv.bias.copy_(self.state[f"block{k}.b"])
            mods = [conv]
            if self.norm:
                mods.append(torch.nn.BatchNorm2d(w.shape[0]))
            proj = torch.nn.Parameter(self.state[f"block{k}.projection"].clone())
            params = [p for m in mods for p in m.parameters()] + [proj]
            blocks.append((mods, proj, self.state[f"block{k}.targets"], self.state[f"block{k}.groups"],
                           torch.optim.Adam(params, lr=0.01)))
        w = self.state["dense.w"]
        lin = torch.nn.Linear(w.shape[1], w.shape[0])
        with torch.no_grad():
            lin.weight.copy_(w)
            lin.bias.copy_(self.state["dense.b"])
        return blocks, (lin, self.state["dense.v"], torch.optim.SGD(lin.parameters(), lr=20.0))

    def step(self, blocks, dense, x, y):
        torch, F = self.torch, self.torch.nn.functional
        for k, (mods, proj, targets, groups, opt) in enumerate(blocks):
            h = x
            for m in mods:
                h = m(h)
            h = F.max_pool2d(F.leaky_relu(h, self.slope), self.pools[k])
            z = h.flatten(2).transpose(0, 1)  # (C, B, S)
            q = torch.bmm(z, proj)  # (C, B, d)
            t = targets[torch.arange(len(groups))[:, None], groups[:, y]]  # (C, B, d)
            cos = (F.normalize(q, dim=2) * t).sum(dim=2)
            loss = ((1 - cos) ** 2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            x = h.detach()
        lin, v, opt = dense
        h = lin(F.normalize(x.flatten(1), dim=1))
        loss = torch.log(2 - (F.normalize(h, dim=1) * v[y]).sum(dim=1)).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def epoch(self, n, batch) -> float:
        """Seconds of one epoch of ``n`` samples from the initial state (modules built untimed)."""
        blocks, dense = self.build()
        t0 = time.perf_counter()
        for s0 in range(0, n, batch):
            self.step(blocks, dense, self.x[s0:s0 + batch], self.y[s0:s0 + batch])
        return time.perf_counter() - t0


def run_case(arrays, case) -> dict:
    """One case: a warm-up epoch, then ``reps`` timed epochs of at most ``n`` samples (fewer when
    the warm-up's rate says that ``n`` would take longer than ``budget_s``)."""
    import torch

    torch.set_num_threads(int(case["threads"]))
    peer = _ConvPeer(arrays, case)
    batch, n = int(case["batch"]), int(case["n"])
    warm = min(n, int(case["warmup"]))
    peer.epoch(warm, batch)  # first calls allocate and pick kernels
    rate = warm / max(peer.epoch(warm, batch), 1e-9)
    n = min(n, max(warm, int(rate * float(case.get("budget_s", float("inf"))))))
    n -= n % batch
    times = [peer.epoch(n, batch) for _ in range(int(case["reps"]))]
    med = sorted(times)[len(times) // 2]
    return {**case, "impl": "pytorch", "torch": torch.__version__, "samples": n, "seconds_all": times,
            "seconds_median": med, "samples_per_s": n / med}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    spec = json.loads(Path(argv[0]).read_text())
    rows = [run_case(spec["arrays"], c) for c in spec["cases"]]
    tmp = Path(argv[1]).with_suffix(".tmp")
    tmp.write_text(json.dumps(rows))
    os.replace(tmp, argv[1])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
