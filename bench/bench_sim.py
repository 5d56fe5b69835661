"""Speed of the hardware model: one VGG-8 design point and a 1,000-point design-space grid.

Targets (issue 3): one VGG-8 design point (ledger + tiling + energy) in under 50 ms; a 1,000-point
grid in under a minute on 2 cores. Run ``python -m bench.bench_sim`` (``--quick`` for a short run).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor

__all__ = ["run", "grid_points"]


def _vgg8_point(rule: str) -> None:
    from sim import design_point, vgg8

    design_point(vgg8(), "rram-22nm", rule, weight_bits=8, batch_size=200, budget="256KB")


def grid_points(quick: bool = False) -> list[tuple]:
    """The grid: 784-h-10 x rule x weight bits x batch x preset (1,000 points; 100 when quick)."""
    widths = [32 * (i + 1) for i in range(25)] if not quick else [64, 256, 1024, 2048, 4096]
    rules = ["spela", "backprop"]
    bits = [2, 4, 6, 8] if not quick else [4, 8]
    batches = [1, 10, 50, 100, 200] if not quick else [1, 50, 200, 500, 1000]
    return list(itertools.product(widths, rules, bits, batches, ["rram-22nm"]))


def _eval_chunk(points: list[tuple]) -> int:
    from sim import design_point

    for h, rule, wb, b, hw in points:
        design_point((784, h, 10), hw, rule, weight_bits=wb, batch_size=b, budget="256KB")
    return len(points)


def _time(fn, repeat: int) -> tuple[float, float]:
    """(best, median) seconds of ``repeat`` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[0], times[len(times) // 2]


def run(quick: bool) -> list[dict]:
    """Time the VGG-8 design point and the grid; one record per measurement."""
    rows = []
    for rule in ("spela", "backprop"):
        best, med = _time(lambda: _vgg8_point(rule), 3 if quick else 20)
        rows.append({"bench": "sim_design_point_vgg8", "case": rule, "points": 1, "seconds": med,
                     "best_seconds": best, "per_point_ms": med * 1e3, "target": "< 50 ms per point"})
    pts = grid_points(quick)
    t0 = time.perf_counter()
    _eval_chunk(pts)
    serial = time.perf_counter() - t0
    rows.append({"bench": "sim_grid", "case": "1 process", "points": len(pts), "seconds": serial,
                 "per_point_ms": serial / len(pts) * 1e3, "target": "< 60 s for 1,000 points on 2 cores"})
    workers = min(2, os.cpu_count() or 1)
    if workers > 1:
        chunks = [pts[i::workers] for i in range(workers)]
        t0 = time.perf_counter()
        with ProcessPoolExecutor(workers) as ex:
            done = sum(ex.map(_eval_chunk, chunks))
        par = time.perf_counter() - t0
        rows.append({"bench": "sim_grid", "case": f"{workers} processes", "points": done, "seconds": par,
                     "per_point_ms": par / done * 1e3, "target": "< 60 s for 1,000 points on 2 cores"})
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    for row in run(args.quick):
        print(json.dumps(row))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
