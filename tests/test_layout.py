"""The package layout, checked from the source's imports: layers only import lower layers, no two
modules import each other (directly or through others), and every subpackage says what it does."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("benchmark", "upstream", "downstream")
# benchmark's subpackages from the bottom up; a module may import its own subpackage and those below.
LAYERS = ("common", "data", "reporting", "training", "experiments", ("deploy", "cluster"))
TOP_LAYER = len(LAYERS)  # benchmark's top-level modules (runner, CLI helpers) may import everything
MAX_LINES = 300


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def source_modules() -> dict[str, Path]:
    return {module_name(p): p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The project modules `path` imports anywhere in its code (functions and TYPE_CHECKING blocks too)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            # `from pkg import module` imports the submodule; `from module import name` the module
            targets = [f"{origin}.{a.name}" if f"{origin}.{a.name}" in known else origin for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:  # `import a.b.c` of a module a.b.c, or its package
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = source_modules()
    return {name: imports_of(name, path, set(modules)) for name, path in modules.items()}


def layer(module: str) -> tuple[int, str]:
    """(level, subpackage) of a benchmark module; top-level modules are above every subpackage."""
    parts = module.split(".")
    if len(parts) == 1 or (len(parts) == 2 and not (ROOT / "benchmark" / parts[1]).is_dir()):
        return TOP_LAYER, "benchmark"
    for level, names in enumerate(LAYERS):
        if parts[1] in ((names,) if isinstance(names, str) else names):
            return level, parts[1]
    raise AssertionError(f"{module}: subpackage benchmark.{parts[1]} is not in LAYERS; give it its place")


def test_the_graph_sees_the_imports_it_must(graph):
    """The checker itself: relative, function-level and `from package import module` imports count."""
    assert "benchmark.training.distributed" in graph["benchmark.experiments.stages"]  # from ..training import distributed
    assert "benchmark.deploy.export" in graph["benchmark.cli_model"]  # imported inside a function
    assert "upstream.hub" in graph["benchmark.errors"]


def test_benchmark_layers_import_only_lower_layers(graph):
    wrong = []
    for module, targets in graph.items():
        if not module.startswith("benchmark"):
            continue
        level, own = layer(module)
        for target in targets:
            if not target.startswith("benchmark."):
                continue
            target_level, target_package = layer(target)
            if target_package != own and target_level >= level:
                wrong.append(f"{module} imports {target}")
    assert not wrong, "imports against the layer order " + repr(LAYERS) + ":\n" + "\n".join(sorted(wrong))


def test_upstream_and_downstream_do_not_import_the_benchmark(graph):
    wrong = [f"{m} imports {t}" for m, targets in graph.items() for t in targets
             if (m.startswith("upstream") and t.split(".")[0] in ("benchmark", "downstream"))
             or (m.startswith("downstream") and t.split(".")[0] == "benchmark")]
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles_between_modules(graph):
    """Tarjan's strongly connected components: any component of more than one module is a cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    assert not cycles, "modules that import each other: " + "; ".join(" ↔ ".join(c) for c in cycles)


def test_cycle_detection_finds_a_planted_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    with pytest.raises(AssertionError, match="a ↔ b ↔ c"):
        test_no_import_cycles_between_modules(graph)


def test_every_subpackage_opens_with_a_docstring_of_what_it_may_import():
    for folder in sorted(p for p in (ROOT / "benchmark").iterdir() if (p / "__init__.py").is_file()):
        doc = ast.get_docstring(ast.parse((folder / "__init__.py").read_text(encoding="utf-8")))
        assert doc, f"benchmark/{folder.name}/__init__.py: no docstring saying what the subpackage does"
        if folder.name != "common":
            assert "May import" in doc, f"benchmark/{folder.name}/__init__.py: say which subpackages it may import"


def test_few_top_level_modules_and_none_too_long():
    top = sorted(p.name for p in (ROOT / "benchmark").glob("*.py") if p.name != "__init__.py")
    assert len(top) <= 6, f"benchmark/ has {len(top)} top-level modules: {top}; put them in a subpackage"
    long = []
    for path in source_modules().values():
        lines = len(path.read_text(encoding="utf-8").splitlines())
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        if lines > MAX_LINES and "lines because" not in doc:
            long.append(f"{path.relative_to(ROOT)}: {lines} lines")
    assert not long, f"modules over {MAX_LINES} lines without a reason in their docstring ('… lines because …'): {long}"
