"""The table behind `run_benchmark.py --list-upstreams`: every registered upstream and namespace."""
from __future__ import annotations

from typing import Any

from .hub import get_spec, list_namespaces, list_upstreams

COLUMNS = (
    ("name", "name"),
    ("backend", "backend"),
    ("source", "source"),
    ("hidden_size", "hidden"),
    ("num_layers", "layers"),
    ("frame_rate", "frames/s"),
    ("available_offline", "offline"),
)


def upstream_table() -> list[dict[str, Any]]:
    """One row per registered name, then one per namespace (`s3prl:<name>`, sizes unknown until built).

    `available_offline` probes local files only (HF cache, installed packages): it loads nothing.
    """
    rows = []
    for name in list_upstreams():
        spec = get_spec(name)
        rows.append({
            "name": name, "backend": spec.backend, "source": spec.source, "hidden_size": spec.hidden_size,
            "num_layers": spec.num_layers, "frame_rate": spec.frame_rate, "modality": spec.modality,
            "available_offline": spec.available(),
        })
    for namespace in list_namespaces():
        rows.append({
            "name": namespace.pattern, "backend": namespace.backend,
            "source": (f"any {namespace.prefix} upstream (offline without download: e.g. {namespace.example_name})"
                       if namespace.example else namespace.reference),
            "hidden_size": None, "num_layers": None, "frame_rate": None, "modality": "audio",
            "available_offline": namespace.available(),
        })
    return rows


def _cell(key: str, value: Any, modality: str) -> str:
    if value is None:
        return "-"
    if key == "available_offline":
        return "yes" if value else "no"
    if key == "frame_rate":
        return "text" if modality == "text" else f"{value:g}"
    return str(value)


def format_upstream_table() -> str:
    """`upstream_table()` as an aligned plain-text table."""
    header = [title for _, title in COLUMNS]
    lines = [[_cell(key, row[key], row["modality"]) for key, _ in COLUMNS] for row in upstream_table()]
    widths = [max(len(cells[i]) for cells in [header, *lines]) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(cells, widths)).rstrip() for cells in [header, *lines])
