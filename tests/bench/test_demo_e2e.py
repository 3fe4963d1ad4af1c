"""The copy of the working tree in which `make demo` is measured."""
from __future__ import annotations

from pathlib import Path

from bench.demo_e2e import REPO, copy_tree, working_tree_files


def test_working_tree_files_are_tracked_or_unignored() -> None:
    files = set(working_tree_files())
    assert Path("Makefile") in files and Path("run_benchmark.py") in files
    assert Path("bench/perf.py") in files
    assert not any(part in (".venv", "data", ".git") for f in files for part in f.parts[:1])
    assert not any(f.parts[0] == "results" and f.parts[1] != "reference" for f in files if len(f.parts) > 1)


def test_copy_links_the_environment_and_keeps_mtimes(tmp_path: Path) -> None:
    tree = copy_tree(tmp_path / "tree", venv=tmp_path / "venv-here")
    assert (tree / "Makefile").read_bytes() == (REPO / "Makefile").read_bytes()
    assert (tree / "setup.py").stat().st_mtime == (REPO / "setup.py").stat().st_mtime
    assert not (tree / ".venv").exists()  # no environment at that path: nothing linked
    (tmp_path / "venv-here").mkdir()
    tree = copy_tree(tmp_path / "tree", venv=tmp_path / "venv-here")
    assert (tree / ".venv").is_symlink() and (tree / ".venv").resolve() == (tmp_path / "venv-here").resolve()
