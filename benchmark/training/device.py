"""Where training runs (CUDA when present, else CPU) and in which precision."""
from __future__ import annotations

import contextlib
from typing import ContextManager, Literal

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
