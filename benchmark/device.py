"""Where training runs: CUDA (bf16 autocast) when present, else CPU (float32)."""
from __future__ import annotations

import contextlib
from typing import ContextManager

import torch


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def autocast(device: torch.device) -> ContextManager:
    """bf16 autocast on CUDA (no loss scaling needed); full precision elsewhere."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
