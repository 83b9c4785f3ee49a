"""Run benchmark children in fresh processes that take turns holding one baton.

Each configuration runs in its own spawned process, so peak RSS is never polluted by another
configuration. The processes of a group pass a baton around a ring: only the holder computes,
so they never compete for the two cores, and their steps alternate in time, which makes the
per-step ratios between configurations robust to background load on a shared machine.
"""

from __future__ import annotations

import importlib
import multiprocessing as mp
import os
import queue as queue_module
import time
import traceback
from typing import Any


class Baton:
    """One process's handle on the ring: wait for its turn, pass the turn on, say it is ready."""

    def __init__(self, turns, index: int, messages) -> None:
        self.turns = turns
        self.index = index
        self.messages = messages

    def ready(self) -> None:
        """Tell the parent this process finished its setup (the first turn starts when all are)."""
        self.messages.put(("ready", self.index, None))

    def take(self) -> None:
        """Block until it is this process's turn."""
        self.turns[self.index].acquire()

    def give(self) -> None:
        """Hand the turn to the next process of the ring."""
        self.turns[(self.index + 1) % len(self.turns)].release()


class NoBaton:
    """For children that run alone (nothing to alternate with)."""

    def ready(self) -> None:
        """Nothing to announce."""

    def take(self) -> None:
        """Always this process's turn."""

    def give(self) -> None:
        """Nobody to hand over to."""


def _child(target: str, spec: dict[str, Any], threads: int, turns, index: int, messages):
    """Entry point of a spawned child: set threads, import `module:function`, run it on `spec`."""
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = str(threads)
    baton = Baton(turns, index, messages) if turns is not None else NoBaton()
    try:
        import _perf_setup

        _perf_setup.set_threads(threads)
        _perf_setup.quiet_libraries()
        module, function = target.split(":")
        run = getattr(importlib.import_module(module), function)
        messages.put(("result", index, run(spec, baton)))
    except BaseException:  # report anything, including a KeyboardInterrupt in the child
        messages.put(("error", index, traceback.format_exc()))


def run_group(
    target: str,
    specs: list[dict[str, Any]],
    *,
    threads: int,
    lockstep: bool = True,
    timeout: float = 3600.0,
) -> list[dict[str, Any]]:
    """Run `target` ('module:function', called as f(spec, baton)) per spec in its own process.

    Results come back in spec order.

    With `lockstep`, the first turn is given once every process has called `baton.ready()`.
    Without it the processes run at the same time (for memory-only measurements). A child that
    fails yields `{"error": traceback}` and stops the rest of the group.
    """
    ctx = mp.get_context("spawn")
    turns = [ctx.Semaphore(0) for _ in specs] if lockstep else None
    messages = ctx.Queue()
    procs = [
        ctx.Process(target=_child, args=(target, spec, threads, turns, i, messages), daemon=True)
        for i, spec in enumerate(specs)
    ]
    for proc in procs:
        proc.start()
    results: dict[int, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout
    try:
        _collect(messages, procs, turns, results, len(specs), deadline)
    except (RuntimeError, TimeoutError) as exc:
        for index in range(len(specs)):
            results.setdefault(index, {"error": str(exc)})
    finally:
        _stop(procs, failed=any("error" in r for r in results.values()))
    return [
        results.get(i, {"error": "stopped after another child failed"}) for i in range(len(specs))
    ]


def _collect(messages, procs: list, turns, results: dict, count: int, deadline: float) -> None:
    """Read the children's messages: start the ring when all are ready, gather results."""
    ready = 0
    while len(results) < count:
        try:
            kind, index, payload = messages.get(timeout=2.0)
        except queue_module.Empty:
            _check_alive(procs, results, deadline)
            continue
        if kind == "ready":
            ready += 1
            if turns is not None and ready == count:
                turns[0].release()
        elif kind == "result":
            results[index] = payload
        else:
            results[index] = {"error": payload}
            return


def _check_alive(procs: list, results: dict, deadline: float) -> None:
    """Raise when a child died without a result or the group ran past its deadline."""
    for index, proc in enumerate(procs):
        if index not in results and proc.exitcode is not None:
            raise RuntimeError(f"benchmark child {index} exited with code {proc.exitcode}")
    if time.monotonic() > deadline:
        raise TimeoutError("benchmark group ran past its timeout")


def _stop(procs: list, failed: bool) -> None:
    """Join our children; terminate (by their own handle) any still running or, after a failure, waiting."""
    for proc in procs:
        proc.join(timeout=1 if failed else 60)
        if proc.is_alive():
            proc.terminate()
            proc.join(timeout=10)
