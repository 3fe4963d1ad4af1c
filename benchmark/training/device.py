"""Where training runs (CUDA when present, else CPU) and in which precision."""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import ContextManager, Literal, Sequence

import torch

# "auto": bf16 autocast on CUDA, float32 elsewhere. "bf16" also autocasts on CPU, which pays off on
# CPUs with native bf16 (AVX512-BF16 / AMX: ≈1.7× per ECAPA-512 step, bench/profile_step.py).
Precision = Literal["auto", "float32", "bf16"]


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_precision(precision: Precision, device_type: str) -> Precision:
    """The precision "auto" stands for on `device_type` ("cuda": bf16, else float32); others as given."""
    if precision != "auto":
        return precision
    return "bf16" if device_type == "cuda" else "float32"


def autocast(device: torch.device, precision: Precision = "auto") -> ContextManager:
    """bf16 autocast (no loss scaling needed) on CUDA unless "float32", on CPU only for "bf16"."""
    if precision == "bf16" or (precision == "auto" and device.type == "cuda"):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_has_native_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool | None:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX); None where /proc/cpuinfo is absent."""
    try:
        flags = cpuinfo.read_text()
    except OSError:
        return None
    return any(f" {flag}" in flags for flag in NATIVE_BF16_FLAGS)


def emulated_bf16_warning(precisions: Sequence[str], device_type: str, native: bool | None) -> str | None:
    """The warning for a profile that asks for bf16 on a CPU that can only emulate it, else None."""
    if device_type != "cpu" or "bf16" not in precisions or native is not False:
        return None
    return ("warning: the profile asks for precision bf16, but this CPU has no native bf16 (no AVX512-BF16 or "
            "AMX): it is emulated, about 15x slower than float32 here (bench row ecapa_bf16); set precision: "
            "float32 or auto for CPU runs")
