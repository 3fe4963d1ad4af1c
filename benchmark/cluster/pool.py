"""A run's units in N worker processes on this machine (`--jobs N`), each unit as soon as its sources are done.

Small models on a few CPU cores leave cores idle: their many small operators barely use a second
intra-op thread, so two single-thread processes each training its own unit finish about 1.6×
sooner than one process with two threads. Workers are started with "spawn" (a forked process could
inherit a busy OpenMP pool) and live for the whole run, each running `run_unit(key, fold)` for one
unit at a time; the caller's process keeps the output folder's lock and writes the report. A
stage-2 unit waits until the stage-1 units whose averaged upstreams it reads have finished. A
failed unit stops the run once the units already running have ended.
"""
from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Sequence

from ..experiments.plan import Unit
from ..reporting.results import load_result
from .launch import JobFailedError, RunUnit, depends_on


def run_in_processes(
    out: Path, units: Sequence[Unit], jobs: int, run_unit: RunUnit, on_done: Callable[[Unit], None] | None = None
) -> None:
    """Run the units of `out` without a result, `jobs` at a time; `run_unit` must be picklable.
    `on_done(unit)` runs here, in the calling process, after each unit that finished."""
    pending = [u for u in units if load_result(u.directory(out)) is None]
    running: dict[Future, Unit] = {}
    first_error: BaseException | None = None
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        while pending or running:
            waiting = [u for u in pending if u not in running.values()]
            ready = [u for u in waiting if not depends_on(u, [*waiting, *running.values()])]
            if first_error is None:
                for unit in ready[: jobs - len(running)]:
                    print(f"[worker] {unit.directory(out).relative_to(out)}", flush=True)
                    running[pool.submit(run_unit, unit.key, unit.fold)] = unit
                    pending.remove(unit)
            if not running:
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            if any(isinstance(f.exception(), BrokenProcessPool) for f in done):  # a worker was killed
                names = ", ".join(str(u.directory(out)) for u in running.values())
                raise JobFailedError(f"a worker process ended abruptly (out of memory? a signal?) while running "
                                     f"{names}; run the same command again to resume")
            for future in done:
                unit = running.pop(future)
                error = future.exception()
                if error is not None and first_error is None:
                    first_error = error
                elif error is None and on_done is not None:
                    on_done(unit)
    if first_error is not None:
        raise first_error
