"""Subprocess measurement and the perf.csv writer."""
from __future__ import annotations

import csv
import sys
from pathlib import Path

import pytest

from bench.measure import CSV_COLUMNS, Row, failed_row, format_table, run_measured, write_csv


def test_peak_rss_and_exit_status_of_one_child(tmp_path: Path) -> None:
    allocate = "import sys; block = bytearray(300 * 1024 * 1024); block[::4096] = b'x' * len(block[::4096]); sys.exit(3)"
    result = run_measured([sys.executable, "-c", allocate], tmp_path / "child.log")
    assert result.returncode == 3
    assert result.peak_rss_mb >= 300
    small = run_measured([sys.executable, "-c", "print('hi')"], tmp_path / "small.log")
    assert small.returncode == 0 and small.peak_rss_mb < 300  # not the earlier child's peak
    assert small.log.read_text().strip() == "hi"


def test_peak_rss_covers_grandchildren(tmp_path: Path) -> None:
    inner = "block = bytearray(200 * 1024 * 1024); block[::4096] = b'x' * len(block[::4096])"
    outer = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {inner!r}], check=True)"
    assert run_measured([sys.executable, "-c", outer], tmp_path / "outer.log").peak_rss_mb >= 200


def test_timeout_kills_the_child(tmp_path: Path) -> None:
    with pytest.raises(TimeoutError):
        run_measured([sys.executable, "-c", "import time; time.sleep(60)"], tmp_path / "slow.log", timeout_s=1)


def test_csv_has_the_issue_columns_and_ratio_is_reference_over_ours(tmp_path: Path) -> None:
    rows = [Row("step_s", 0.5, 5.0, "ratio >= 2", True), Row("rss_mb", 900.0, None, "ours <= 4096", True),
            failed_row("demo_s", "ours <= 900", "make demo failed")]
    path = tmp_path / "perf.csv"
    write_csv(path, rows)
    with open(path) as stream:
        table = list(csv.reader(stream))
    assert tuple(table[0]) == CSV_COLUMNS
    assert table[1] == ["step_s", "0.5", "5", "10.00", "ratio >= 2", "yes"]
    assert table[2] == ["rss_mb", "900", "", "", "ours <= 4096", "yes"]
    assert table[3] == ["demo_s", "", "", "", "ours <= 900", "no"]
    assert [p.name for p in tmp_path.iterdir()] == ["perf.csv"]  # no temporary file left
    text = format_table(rows)
    assert "make demo failed" in text and text.splitlines()[0].split()[:2] == ["metric", "ours"]
