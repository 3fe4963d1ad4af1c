"""Atomic file writes: a reader sees the old file or the complete new one, never half of it."""
from __future__ import annotations

import io
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from .faults import fault_point


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        fault_point(f"write:{path.name}")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_figure(path: Path, figure: Any) -> None:
    """Save a matplotlib figure as PNG (100 dpi) atomically, then close it."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    atomic_write_bytes(path, buffer.getvalue())


def check_writable_dir(path: Path) -> None:
    """Fail early (before hours of training) when results could not be written under `path`."""
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise PermissionError(f"{path}: output folder is not writable (checked {existing})")


def path_label(name: str) -> str:
    """`name` (an upstream such as `s3prl:wavlm` or `hf:/models/tiny whisper`) as one path component:
    characters other than letters, digits, `.`, `-`, `+`, `&` become `_`, runs of them one `_`.
    `:` → `_` as before, so existing run folders keep their names."""
    return re.sub(r"[^A-Za-z0-9.+&-]+", "_", name).strip("_") or "_"


def free_bytes(path: Path) -> int | None:
    """Free bytes on the file system of `path` (its nearest existing parent), None if unknown."""
    folder = path.resolve()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None
