"""Measuring subprocesses (wall time, peak RSS) and recording results as rows of results/perf.csv."""
from __future__ import annotations

import csv
import io
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from benchmark.io import atomic_write_text

CSV_COLUMNS = ("metric", "ours", "reference", "ratio", "target", "met")


@dataclass(frozen=True)
class Measured:
    """One finished subprocess: exit status, wall seconds, peak resident set size in MiB."""

    returncode: int
    wall_s: float
    peak_rss_mb: float
    log: Path


def run_measured(
    command: Sequence[str],
    log: Path,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout_s: float | None = None,
) -> Measured:
    """Run `command`, its stdout and stderr into `log`; wall time and peak RSS of it and its children.

    The peak RSS is `ru_maxrss` of the rusage that `wait4` returns for this one child; Linux fills it
    with the largest of the child and of the descendants it waited for (so `make demo` → python is
    covered), without mixing in earlier children of this process as `RUSAGE_CHILDREN` would.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as stream:
        started = time.perf_counter()
        process = subprocess.Popen(list(command), cwd=cwd, env=dict(env) if env is not None else None,
                                   stdout=stream, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
        try:
            status, usage = _wait(process, timeout_s)
        except BaseException:
            _kill_group(process)
            raise
        wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    return Measured(process.returncode, wall, usage.ru_maxrss / 1024.0, log)


def _wait(process: subprocess.Popen, timeout_s: float | None) -> tuple[int, os.struct_rusage]:
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        pid, status, usage = os.wait4(process.pid, 0 if deadline is None else os.WNOHANG)
        if pid == process.pid:
            return status, usage
        if deadline is not None and time.monotonic() > deadline:
            _kill_group(process)
            raise TimeoutError(f"{' '.join(map(str, process.args))} ran past {timeout_s:.0f} s; killed")
        time.sleep(0.2)


def _kill_group(process: subprocess.Popen) -> None:
    """End the child and what it started (its own session, see `start_new_session`), then reap it."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    try:
        os.waitpid(process.pid, 0)
    except ChildProcessError:
        pass


def log_tail(path: Path, lines: int = 15) -> str:
    text = path.read_text(errors="replace").replace("\r", "\n") if path.is_file() else ""
    return "\n".join(line for line in text.splitlines() if line.strip()][-lines:]


@dataclass(frozen=True)
class Row:
    """One line of perf.csv. `higher_is_better` says which side of `threshold` meets the target:
    for a speed-up ratio or a reference/ours ratio, ratio >= threshold; for a budget, ours <= threshold."""

    metric: str
    ours: float | None
    reference: float | None = None
    target: str = ""
    met: bool | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        """reference / ours: above 1 means ours is faster / smaller / less padded."""
        if self.ours is None or self.reference is None or self.ours == 0:
            return None
        return self.reference / self.ours

    def cells(self) -> list[str]:
        met = "" if self.met is None else ("yes" if self.met else "no")
        return [self.metric, _fmt(self.ours), _fmt(self.reference), _fmt(self.ratio, ratio=True), self.target, met]


def failed_row(metric: str, target: str, error: str) -> Row:
    return Row(metric, None, None, target, False, note=f"error: {error}")


def _fmt(value: float | None, ratio: bool = False) -> str:
    if value is None:
        return ""
    if ratio:
        return f"{value:.2f}"
    return f"{value:.4g}" if abs(value) < 1000 else f"{value:.0f}"


def write_csv(path: Path, rows: Sequence[Row]) -> None:
    """All rows at once, atomically (a reader never sees half a table)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows(row.cells() for row in rows)
    atomic_write_text(path, buffer.getvalue())


def format_table(rows: Sequence[Row]) -> str:
    """A fixed-width text table of the rows, with each row's note under it."""
    cells = [list(CSV_COLUMNS)] + [row.cells() for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(CSV_COLUMNS))]
    out = []
    for index, line in enumerate(cells):
        out.append("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip())
        if index == 0:
            out.append("  ".join("-" * width for width in widths))
        elif rows[index - 1].note:
            out.append(f"    ↳ {rows[index - 1].note}")
    return "\n".join(out)
