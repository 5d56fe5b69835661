"""Running many independent tasks: in-process, on a local process pool, or on a Dask cluster.

Tasks and results are JSON-ready dicts and the task function never raises (it returns an error
record), so a failed point never stops the others. Results are handed to ``on_result`` in the
order they finish; the caller decides what to do with them (the sweep appends each one to its
log before accepting the next).

Pool workers end with the process that started them (killed, or ended by SIGTERM): a worker
whose parent is gone has nobody to hand its result to, and would otherwise hold its memory forever.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
import traceback
from contextlib import contextmanager
from typing import Callable, Iterable

from spela_hw.errors import ConfigError

__all__ = ["run_tasks", "default_workers", "worker_thread_env", "threads_per_worker"]

log = logging.getLogger(__name__)

# Worker processes share the cores out: each library's thread pool gets the worker's share.
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


def default_workers() -> int:
    """Cores available to this process."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not on Linux
        return max(os.cpu_count() or 1, 1)


def threads_per_worker(processes: int) -> int:
    """Kernel threads of each of ``processes`` workers, so that together they occupy the cores
    once (two processes of two threads on two cores would wait for each other at every barrier)."""
    return max(1, default_workers() // max(1, processes))


@contextmanager
def worker_thread_env(threads: int = 1):
    """Temporarily set the thread-count variables to ``threads`` (inherited by spawned workers);
    a variable the user set already is kept."""
    saved = {k: os.environ.get(k) for k in _THREAD_VARS}
    for k in _THREAD_VARS:
        os.environ.setdefault(k, str(threads))
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


_PR_SET_PDEATHSIG = 1  # linux/prctl.h
_WATCH_PARENT_SECONDS = 1.0


def _die_with_parent(parent_pid: int) -> None:
    """Pool initializer: end this worker when ``parent_pid`` ends.

    On Linux the kernel kills the worker when its parent dies (``PR_SET_PDEATHSIG``; it fires when
    the parent *thread* that started the worker ends, which is the thread waiting on the pool).
    Everywhere, a daemon thread also watches the parent id, which changes when the parent is gone.
    """
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):  # no libc prctl: the watchdog below still works
            pass
    if os.getppid() != parent_pid:  # the parent died before the request took effect
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent_pid,), name="watch-parent", daemon=True).start()


def _watch_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(_WATCH_PARENT_SECONDS)
    os._exit(1)


@contextmanager
def _sigterm_raises():
    """In the main thread, turn SIGTERM into ``SystemExit`` so the pool is torn down on the way out."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _failure(task: dict, exc: BaseException) -> dict:
    return {"task": task, "error": f"{type(exc).__name__}: {exc}",
            "traceback": "".join(traceback.format_exception(exc, limit=20)), "seconds": float("nan"),
            "pid": None}


def run_tasks(fn: Callable[[dict], dict], tasks: Iterable[dict], on_result: Callable[[dict, dict], None],
              workers: int = 0, scheduler=None, local_cluster: int | None = None) -> None:
    """Run ``fn(task)`` for every task and call ``on_result(task, result)`` as each finishes.

    Parameters
    ----------
    fn : callable
        A module-level function (it is sent to worker processes by reference).
    tasks : iterable of dict
    on_result : callable
        Called in this process, one result at a time.
    workers : int
        Local processes (0: one per core; 1: run in this process, no pool). The cores are shared
        out: each process's kernels get :func:`threads_per_worker` threads.
    scheduler : str or dask.distributed.Client, optional
        Run on an existing Dask cluster (``"tcp://host:8786"``) or client.
    local_cluster : int, optional
        Start a local Dask cluster with this many single-threaded worker processes.
    """
    tasks = list(tasks)
    if not tasks:
        return
    if scheduler is not None or local_cluster:
        _run_dask(fn, tasks, on_result, scheduler, local_cluster)
        return
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise ConfigError("workers", f"must be an integer >= 0, got {workers!r}")
    n = workers or default_workers()
    n = min(n, len(tasks))
    if n <= 1:
        for t in tasks:
            try:
                res = fn(t)
            except Exception as exc:  # fn should not raise; keep going if it does
                res = _failure(t, exc)
            on_result(t, res)
        return
    ctx = multiprocessing.get_context("spawn")  # no fork: the parent may hold threads and locks
    with worker_thread_env(threads_per_worker(n)), _sigterm_raises(), cf.ProcessPoolExecutor(
            max_workers=n, mp_context=ctx, initializer=_die_with_parent, initargs=(os.getpid(),)) as pool:
        futures = {pool.submit(fn, t): t for t in tasks}
        try:
            for fut in cf.as_completed(futures):
                t = futures[fut]
                try:
                    res = fut.result()
                except Exception as exc:  # a worker died (e.g. out of memory): record, continue
                    res = _failure(t, exc)
                on_result(t, res)
        except BaseException:  # interrupted or terminated: stop the workers, do not wait for their tasks
            for f in futures:
                f.cancel()
            for proc in list((getattr(pool, "_processes", None) or {}).values()):  # private, stable since 3.2
                proc.terminate()
            raise


def _run_dask(fn, tasks, on_result, scheduler, local_cluster):
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise ConfigError("scheduler", "Dask is not installed: pip install 'spela-hw[dask]'") from None
    if logging.getLogger().getEffectiveLevel() > logging.INFO:
        logging.getLogger("distributed").setLevel(logging.WARNING)  # its INFO chatter is not progress
    cluster = None
    own_client = False
    if scheduler is not None and not isinstance(scheduler, str):
        client = scheduler  # an existing Client (tests, notebooks)
    else:
        if scheduler is not None:
            try:
                client = Client(scheduler, timeout="20s")
            except (OSError, TimeoutError) as exc:
                raise ConfigError("scheduler", f"cannot connect to {scheduler}: {exc}") from None
        else:
            if isinstance(local_cluster, bool) or not isinstance(local_cluster, int) or local_cluster < 1:
                raise ConfigError("local_cluster", f"must be a positive number of workers, got {local_cluster!r}")
            with worker_thread_env(threads_per_worker(local_cluster)):
                cluster = LocalCluster(n_workers=local_cluster, threads_per_worker=1, processes=True,
                                       dashboard_address=None)
            client = Client(cluster)
        own_client = True
    try:
        t0 = time.perf_counter()
        futures = client.map(fn, tasks, pure=False)
        index = {f.key: t for f, t in zip(futures, tasks)}
        for fut in as_completed(futures):
            t = index[fut.key]
            try:
                res = fut.result()
            except Exception as exc:  # the worker process died or the task was lost
                res = _failure(t, exc)
            on_result(t, res)
            fut.release()
        log.debug("dask: %d tasks in %.1f s", len(tasks), time.perf_counter() - t0)
    finally:
        if own_client:
            client.close()
        if cluster is not None:
            cluster.close()
