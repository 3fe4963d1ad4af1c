"""Every third-party package the toolkit's code imports is declared in setup.py's install_requires."""
from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("benchmark", "upstream", "downstream")
OPTIONAL = {"s3prl", "omegaconf", "submitit"}  # imported lazily by the features that need them (extras)


def _imported_top_levels() -> set[str]:
    names: set[str] = set()
    for path in [p for package in PACKAGES for p in (ROOT / package).rglob("*.py")] + [ROOT / "run_benchmark.py"]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {*PACKAGES, "__future__"}


def _declared() -> set[str]:
    setup = (ROOT / "setup.py").read_text()
    block = setup[setup.index("install_requires=[") : setup.index("],", setup.index("install_requires=["))]
    return {re.split(r"[<>=\[]", name)[0].lower().replace("_", "-") for name in re.findall(r'"([^"]+)"', block)}


def test_every_imported_package_is_a_declared_dependency():
    distributions = packages_distributions()
    declared = _declared()
    missing = []
    for name in sorted(_imported_top_levels() - OPTIONAL):
        dists = {d.lower().replace("_", "-") for d in distributions.get(name, [name])}
        if not dists & declared:
            missing.append(f"{name} (from {', '.join(sorted(dists))})")
    assert not missing, f"imported but not in install_requires: {missing}"
