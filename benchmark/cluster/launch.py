"""Fan the units of a run out as cluster jobs through submitit: one job per unit that has no result.

On SLURM every job is submitted at once; a stage-2 unit waits for the jobs of the stage-1 units whose
averaged upstreams it reads (`--dependency=afterok`), and a last CPU job writes the tables. A job that
SLURM preempts or times out is requeued by submitit (`UnitJob.checkpoint`) and continues from the
unit's resume state. With submitit's "local" or "debug" executors (tests, a workstation) the same
jobs run in waves, each wave's dependencies finished before it starts. A job with more than one GPU
runs one task per GPU and trains data-parallel (benchmark.training.distributed).
"""
from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

from ..experiments.plan import FrozenUnit, Unit
from ..reporting.results import UnitResult, load_result
from ..training import distributed

# What a job runs, given by the caller (the runner) as picklable callables, e.g. functools.partial of
# a module-level function: this layer knows units and jobs, not how a request is resolved.
RunUnit = Callable[[str, int], UnitResult]  # (unit key, fold) → the finished unit's result
Report = Callable[[], object]  # writes the tables from the units' results

JOBS_DIR = "jobs"
CLUSTERS = ("slurm", "local", "debug")


@dataclass(frozen=True)
class SlurmOptions:
    """What a job asks the scheduler for (`--slurm-*`, `--gpus-per-job`, `--timeout-min` on the command line)."""

    partition: str | None = None
    account: str | None = None
    gpus_per_job: int = 1
    cpus_per_gpu: int = 8
    mem_gb: int = 64
    timeout_min: int = 24 * 60
    cluster: str = "slurm"  # or submitit's "local" / "debug" executors
    wait: bool = False  # SLURM: stay until every job has ended (the local executors always wait)
    local_jobs: int = 1  # local executor: how many unit jobs run at once
    extra: dict[str, Any] = field(default_factory=dict)  # more sbatch options, e.g. {"qos": "high"}


class JobFailedError(RuntimeError):
    """A unit's job ended without a result."""


class UnitJob:
    """A submitit job: run one unit. Requeued on preemption or timeout; the unit resumes from its state."""

    def __init__(self, run_unit: RunUnit, unit: Unit, tasks: int) -> None:
        self.run_unit, self.key, self.fold, self.tasks = run_unit, unit.key, unit.fold, tasks

    def __call__(self) -> str:
        if self.tasks > 1:  # one task per GPU: torch.distributed's variables from SLURM's
            import submitit

            submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
            distributed.init_from_env()
        try:
            result = self.run_unit(self.key, self.fold)
        finally:
            distributed.shutdown()
        return f"{self.key} fold {self.fold}: test WA {result.scores['average'].wa:.2f}"

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        import submitit

        return submitit.helpers.DelayedSubmission(self)


class ReportJob:
    """The last SLURM job: write the tables from the units' results."""

    def __init__(self, report: Report) -> None:
        self.report = report

    def __call__(self) -> str:
        return str(self.report())


def check_slurm(options: SlurmOptions) -> None:
    """Fail before anything is read or written when SLURM cannot be reached from here."""
    if options.cluster not in CLUSTERS:
        raise ValueError(f"--slurm-cluster: unknown executor {options.cluster!r}; expected one of {', '.join(CLUSTERS)}")
    if options.cluster == "slurm" and (shutil.which("srun") is None or shutil.which("sbatch") is None):
        raise ValueError("--launcher slurm: SLURM's srun/sbatch not found on this machine; submit from a cluster "
                         "login node, or pass --slurm-cluster local to run the same jobs here")
    if options.cluster == "local":
        local_gpu_sets(options.gpus_per_job, options.local_jobs)


def job_device(options: SlurmOptions) -> str:
    """Where the unit jobs will train ("cuda" | "cpu"), known before submitting: the units' keys
    depend on it (the precision "auto" resolves per device)."""
    import torch

    if options.gpus_per_job == 0:
        return "cpu"
    if options.cluster == "slurm":
        return "cuda"
    return "cuda" if torch.cuda.is_available() else "cpu"


def local_gpu_sets(gpus: int, jobs: int) -> list[tuple[int, ...]]:
    """Disjoint GPU ids for `jobs` local jobs of `gpus` GPUs each, out of this process's visible ones
    (submitit sets each job's CUDA_VISIBLE_DEVICES to its set); empty sets on a machine without CUDA."""
    import torch

    if gpus == 0 or not torch.cuda.is_available():
        return [()] * jobs
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    try:
        ids = [int(x) for x in visible.split(",") if x.strip()] if visible else list(range(torch.cuda.device_count()))
    except ValueError:
        raise ValueError(f"CUDA_VISIBLE_DEVICES={visible!r}: expected GPU numbers for --slurm-cluster local") from None
    if len(ids) < gpus * jobs:
        raise ValueError(f"--local-jobs {jobs} × --gpus-per-job {gpus} needs {gpus * jobs} GPUs; {len(ids)} visible")
    return [tuple(ids[i * gpus:(i + 1) * gpus]) for i in range(jobs)]


def _executor(folder: Path, options: SlurmOptions, gpus: int, after: Sequence[str] = (),
              visible_gpus: tuple[int, ...] = ()) -> Any:
    """submitit's executor for one job (explicit classes: AutoExecutor's plugin lookup needs pkg_resources)."""
    import submitit

    if options.cluster == "slurm":
        executor = submitit.SlurmExecutor(folder=folder)
        extra = dict(options.extra)
        if after:  # a job whose dependency failed is cancelled instead of pending forever
            extra["kill-on-invalid-dep"] = "yes"
        parameters: dict[str, Any] = dict(
            job_name="ser-unit", time=options.timeout_min, nodes=1, ntasks_per_node=max(gpus, 1),
            gpus_per_node=gpus or None, cpus_per_task=options.cpus_per_gpu, mem=f"{options.mem_gb}GB",
            partition=options.partition, account=options.account,
            dependency="afterok:" + ":".join(after) if after else None, additional_parameters=extra or None,
            srun_args=["--kill-on-bad-exit=1"])  # one failed task ends the job: the others would wait in a barrier
        executor.update_parameters(**{k: v for k, v in parameters.items() if v is not None})
        return executor
    if options.cluster == "debug":
        return submitit.DebugExecutor(folder=folder)
    executor = submitit.LocalExecutor(folder=folder)
    executor.update_parameters(timeout_min=options.timeout_min, tasks_per_node=1, gpus_per_node=len(visible_gpus),
                               visible_gpus=visible_gpus)
    return executor


def depends_on(unit: Unit, pending: Sequence[Unit]) -> list[Unit]:
    """The units among `pending` whose averaged upstreams `unit` reads."""
    if not isinstance(unit, FrozenUnit):
        return []
    return [s for s in unit.sources if s is not None and s in pending]


def _failure(job: Any, unit: Unit, out: Path) -> str | None:
    """Why `job` left `unit` without a result, or None when the result is on disk."""
    try:
        job.result()
    except Exception as error:  # submitit raises several types; the last line and the log say what happened
        last = (str(error).strip().splitlines() or [type(error).__name__])[-1]
        return f"{unit.directory(out)}: job {job.job_id} failed ({last[:200]}; log {job.paths.stderr})"
    if load_result(unit.directory(out)) is None:
        return f"{unit.directory(out)}: job {job.job_id} ended without a result (log {job.paths.stderr})"
    return None


def _raise_failures(failures: Sequence[str | None]) -> None:
    found = [f for f in failures if f]
    if found:
        more = f" (and {len(found) - 1} more job(s))" if len(found) > 1 else ""
        raise JobFailedError(f"{found[0]}{more}; run the same command again to resume")


def launch(out: Path, units: Sequence[Unit], options: SlurmOptions, run_unit: RunUnit, report: Report) -> bool:
    """Run the units of `out` without a result as jobs; True when they have all finished (False:
    submitted to SLURM without waiting, the report job writes the tables). `check_slurm(options)` has
    passed. `run_unit` and `report` are what the unit jobs and the last job call."""
    pending = [u for u in units if load_result(u.directory(out)) is None]
    folder = out / JOBS_DIR / time.strftime("%Y%m%d-%H%M%S") / "%j"  # one folder per submission: local ids repeat
    if options.cluster != "slurm":
        return _run_in_waves(out, pending, options, folder, run_unit)
    jobs: dict[Unit, Any] = {}
    for unit in pending:  # the plan lists a unit's sources before it
        after = [jobs[source].job_id for source in depends_on(unit, pending)]
        executor = _executor(folder, options, options.gpus_per_job, after)
        jobs[unit] = executor.submit(UnitJob(run_unit, unit, max(options.gpus_per_job, 1)))
        print(f"submitted job {jobs[unit].job_id}: {unit.directory(out).relative_to(out)}"
              + (f" (after {', '.join(after)})" if after else ""))
    report_executor = _executor(folder, replace(options, cpus_per_gpu=2, mem_gb=8, timeout_min=60), 0,
                       [j.job_id for j in jobs.values()])
    report_job = report_executor.submit(ReportJob(report))
    print(f"submitted job {report_job.job_id}: the tables, once the {len(jobs)} unit job(s) have succeeded")
    if not options.wait:
        return False
    _raise_failures([_failure(jobs[unit], unit, out) for unit in pending])
    report_job.result()
    return True


def _run_in_waves(out: Path, pending: list[Unit], options: SlurmOptions, folder: Path, run_unit: RunUnit) -> bool:
    """Local/debug executors know no dependencies: run the units whose sources are done, `local_jobs`
    at a time (each on its own GPUs, one process: no data parallelism inside a local job), wait for
    all of them, repeat. A failure stops before the next wave."""
    remaining = list(pending)
    while remaining:
        wave = [u for u in remaining if not depends_on(u, remaining)]
        failures: list[str | None] = []
        gpu_sets = local_gpu_sets(options.gpus_per_job, options.local_jobs) if options.cluster == "local" else []
        for start in range(0, len(wave), options.local_jobs):
            chunk = wave[start:start + options.local_jobs]
            jobs = [(unit, _executor(folder, options, options.gpus_per_job, visible_gpus=gpu_sets[i] if gpu_sets else ())
                     .submit(UnitJob(run_unit, unit, 1))) for i, unit in enumerate(chunk)]
            for unit, job in jobs:
                print(f"job {job.job_id}: {unit.directory(out).relative_to(out)}")
            failures += [_failure(job, unit, out) for unit, job in jobs]
        _raise_failures(failures)
        remaining = [u for u in remaining if u not in wave]
    return True
