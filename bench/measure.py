"""Measuring subprocesses (wall time, peak RSS) and recording results as rows of results/perf.csv."""
from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from benchmark.common.io import atomic_write_text

CSV_COLUMNS = ("metric", "ours", "reference", "ratio", "target", "met")


@dataclass(frozen=True)
class Measured:
    """One finished subprocess: exit status, wall seconds, peak resident set size in MiB."""

    returncode: int
    wall_s: float
    peak_rss_mb: float
    log: Path


# A small interpreter between us and the measured command: a forked child's peak RSS starts at its
# parent's resident set (fork copies the page tables, vfork shares them, and exec keeps the peak), so
# a direct child of this torch-loaded bench process would report at least our own RSS. The launcher
# is a fresh `python -I -S` (≈ 10 MB) that forks the command and reports the command's rusage.
LAUNCHER = r"""
import json, os, sys
report, argv = sys.argv[1], sys.argv[2:]
pid = os.fork()
if pid == 0:
    try:
        os.execvp(argv[0], argv)
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
with open(report, "w") as stream:
    json.dump({"status": status, "maxrss_kb": usage.ru_maxrss}, stream)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_measured(
    command: Sequence[str],
    log: Path,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout_s: float | None = None,
) -> Measured:
    """Run `command`, its stdout and stderr into `log`; wall time and peak RSS.

    Peak RSS: `ru_maxrss` of the rusage that `wait4` returns for the command (what `/usr/bin/time -v`
    reports); Linux fills it with the largest of the command and of the descendants it waited for
    (`make demo` → python: the python), peaks reached while exiting included.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    report = log.with_name(log.name + ".rusage.json")
    report.unlink(missing_ok=True)
    launcher = [sys.executable, "-I", "-S", "-c", LAUNCHER, str(report), *map(str, command)]
    with open(log, "wb") as stream:
        started = time.perf_counter()
        process = subprocess.Popen(launcher, cwd=cwd, env=dict(env) if env is not None else None, stdout=stream,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            _wait(process, timeout_s)
        except BaseException:
            _kill_group(process)
            raise
        wall = time.perf_counter() - started
    if not report.is_file():
        raise RuntimeError(f"{command[0]}: the measuring launcher failed (exit {process.returncode}); see {log}")
    measured = json.loads(report.read_text())
    report.unlink()
    return Measured(os.waitstatus_to_exitcode(measured["status"]), wall, measured["maxrss_kb"] / 1024.0, log)


def _wait(process: subprocess.Popen, timeout_s: float | None) -> None:
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise TimeoutError(f"{' '.join(map(str, process.args[6:]))} ran past {timeout_s:.0f} s; killed") from None


def _kill_group(process: subprocess.Popen) -> None:
    """End the launcher and what it started (its own session, see `start_new_session`), then reap it."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def log_tail(path: Path, lines: int = 15) -> str:
    text = path.read_text(errors="replace").replace("\r", "\n") if path.is_file() else ""
    return "\n".join([line for line in text.splitlines() if line.strip()][-lines:])


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
