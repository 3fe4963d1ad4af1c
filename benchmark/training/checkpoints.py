"""Writing and reading training state on disk: atomic, checksummed, loadable without pickle."""
from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any, Mapping

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import Tensor

from ..common.io import atomic_write_bytes


class CorruptCheckpointError(ValueError):
    """A checkpoint file does not match what was recorded when it was written."""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def save_weights(path: Path, state: Mapping[str, Tensor]) -> str:
    """Write a state dict as safetensors atomically; returns the file's sha256 to record."""
    data = save_safetensors({k: v.detach().contiguous().cpu() for k, v in state.items()})
    atomic_write_bytes(path, data)
    return sha256_bytes(data)


def load_weights(path: Path, sha256: str | None = None) -> dict[str, Tensor]:
    """Read a safetensors state dict, refusing it when its checksum differs from the recorded one."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise CorruptCheckpointError(f"{path}: cannot read checkpoint ({error.strerror})") from None
    if sha256 is not None and sha256_bytes(data) != sha256:
        raise CorruptCheckpointError(f"{path}: checkpoint checksum differs from the one recorded at write (truncated or altered)")
    try:
        return load_safetensors(data)
    except Exception as error:  # safetensors raises its own error types for malformed files
        raise CorruptCheckpointError(f"{path}: not a readable safetensors checkpoint ({error})") from None


def save_training_state(path: Path, state: Mapping[str, Any]) -> None:
    """Resume state (tensors, numbers, strings, lists, dicts only) as one atomic file.

    Layout: the payload's sha256 in hex, a newline, then the `torch.save` payload, so a truncated or
    altered file is detected without a second file that could disagree with it after a crash.
    """
    buffer = io.BytesIO()
    torch.save(dict(state), buffer)
    payload = buffer.getvalue()
    atomic_write_bytes(path, sha256_bytes(payload).encode() + b"\n" + payload)


def load_training_state(path: Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    """Counterpart of `save_training_state`; `weights_only=True`, so nothing but data is unpickled."""
    data = path.read_bytes()
    recorded, _, payload = data.partition(b"\n")
    if recorded.decode(errors="replace") != sha256_bytes(payload):
        raise CorruptCheckpointError(f"{path}: resume state does not match its recorded checksum (truncated or altered)")
    return torch.load(io.BytesIO(payload), weights_only=True, map_location=device)
