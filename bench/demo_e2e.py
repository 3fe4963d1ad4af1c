"""End-to-end `make demo`: wall time and peak RSS, in a fresh copy of the working tree.

A copy, so the run starts as from a fresh clone (no demo corpus, no results, no feature cache: the
runner would otherwise skip finished units) and leaves the working tree's results/ alone. The copy
holds what git tracks plus untracked files that are not ignored; `.venv` is a symlink to this
checkout's environment, and make is told (`-o`) never to reinstall it from the copy.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .measure import Measured, log_tail, run_measured

REPO = Path(__file__).resolve().parents[1]


def working_tree_files(repo: Path = REPO) -> list[Path]:
    """Tracked and untracked-but-not-ignored files, relative to `repo` (deleted files left out)."""
    listing = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=repo,
                             check=True, capture_output=True).stdout.decode()
    return sorted({Path(name) for name in listing.split("\0") if name and (repo / name).is_file()})


def copy_tree(destination: Path, repo: Path = REPO, venv: Path | None = None) -> Path:
    if destination.exists():
        shutil.rmtree(destination)
    for relative in working_tree_files(repo):
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(repo / relative, target)  # keeps mtimes: make sees the venv stamp as up to date
    venv = venv or repo / ".venv"
    if venv.is_dir():
        (destination / ".venv").symlink_to(venv.resolve(), target_is_directory=True)
    return destination


@dataclass(frozen=True)
class DemoRun:
    command: str  # what `make demo` ran (make -n)
    result: Measured


def run(work: Path, timeout_s: float = 3600.0, make: str = "make") -> DemoRun:
    tree = copy_tree(work / "tree")
    stamp = ".venv/.installed"
    env = dict(os.environ)
    env.pop("MAKEFLAGS", None)  # a parent `make bench -j`/-n must not leak into the measured run
    env.pop("MAKELEVEL", None)
    dry = subprocess.run([make, "-s", "-n", "-o", stamp, "demo"], cwd=tree, env=env, capture_output=True, text=True)
    command = " && ".join(line.strip() for line in dry.stdout.splitlines() if line.strip()) or "make demo"
    result = run_measured([make, "-o", stamp, "demo"], work / "logs" / "make_demo.log", cwd=tree, env=env,
                          timeout_s=timeout_s)
    if result.returncode != 0:
        raise RuntimeError(f"make demo failed (exit {result.returncode}); log {result.log}:\n{log_tail(result.log)}")
    shutil.rmtree(tree, ignore_errors=True)
    return DemoRun(command, result)
