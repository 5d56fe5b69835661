"""Each conv block's update beside the forward passes of the layers after it.

Under SPELA a block learns from its own input, output and state only, and the next layer takes
the block's output from *before* its step. So once block ``k`` has computed its output, its
update (loss, the backward pass inside the block, the optimiser step) and everything downstream
(block ``k + 1``'s forward pass and update, the dense layers) touch disjoint arrays.
:class:`BlockUpdates` runs the updates on worker threads while the caller goes on down the
network, and on into the next batch: block ``k``'s next forward pass waits only for block ``k``'s
own update (:meth:`BlockUpdates.wait`). Every block still sees the sequence forward, update,
forward, ... on the same values as when run in line, so the results are the same bits on any
number of threads; the kernels and BLAS release the GIL, which is what lets two cores share the
work.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor, wait

__all__ = ["BlockUpdates"]


class BlockUpdates:
    """Runs each block's ``submit``-ted update in line (``threads`` 1) or on ``threads`` worker
    threads; :meth:`wait` returns a block's pending result, :meth:`join` all of them."""

    def __init__(self, threads: int = 1):
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="spela-conv") if threads > 1 else None
        self._pending: dict = {}

    def submit(self, block: int, update) -> None:
        """Run ``update()``, block ``block``'s step (whose previous step must have been waited for)."""
        if block in self._pending:
            raise RuntimeError(f"block {block} has an update pending: wait for it before its next forward pass")
        self._pending[block] = self._pool.submit(update) if self._pool else update()

    def wait(self, block: int):
        """Block ``block``'s pending update finished: its result (``None`` when none was pending)."""
        r = self._pending.pop(block, None)
        return r.result() if isinstance(r, Future) else r

    def join(self) -> list:
        """Every pending update finished (an error is raised only after all of them have, so none
        is left running): their results in block order."""
        if self._pool is not None:
            wait([f for f in self._pending.values() if isinstance(f, Future)])
        return [self.wait(k) for k in sorted(self._pending)]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
