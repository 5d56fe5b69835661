"""Each conv block's update beside the forward passes of the layers after it.

Under SPELA a block learns from its own input, output and state only, and the next layer takes
the block's output from *before* its step. So once block ``k`` has computed its output, its
update (loss, the backward pass inside the block, the optimiser step) and everything downstream
(block ``k + 1``'s forward pass and update, the dense layers) are independent: they touch
disjoint arrays. :class:`BlockUpdates` runs the updates on worker threads while the caller goes
on down the network. Each update performs exactly the operations it performs when run in line,
on the same values, so the results are the same bits on any number of threads; the kernels and
BLAS release the GIL, which is what lets two cores share one training step.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor, wait

__all__ = ["BlockUpdates"]


class BlockUpdates:
    """Runs ``submit``-ted updates in line (``threads`` 1) or on ``threads`` worker threads;
    :meth:`join` waits for all of them and returns their results in submission order."""

    def __init__(self, threads: int = 1):
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="spela-conv") if threads > 1 else None
        self._pending: list = []

    def submit(self, update) -> None:
        self._pending.append(self._pool.submit(update) if self._pool else update())

    def join(self) -> list:
        """The results of every update since the last join (an update's error is raised only
        after all of them have finished, so no update is left running)."""
        pending, self._pending = self._pending, []
        if self._pool is None:
            return pending
        wait(pending)
        return [f.result() for f in pending]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
