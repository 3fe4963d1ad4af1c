"""Where checkpoints come from: local paths or the local Hugging Face cache, never the network.

Errors here are one-line messages that say how to fix the problem; the CLI prints them as they are.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")


class CheckpointNotFoundError(FileNotFoundError):
    """A checkpoint is neither a local path nor in the local hub cache (the message says how to supply it)."""

    def __str__(self) -> str:
        return str(self.args[0])


class UntrustedCheckpointError(ValueError):
    """A checkpoint needs full unpickling (arbitrary code) and the caller did not say it trusts the file."""


def hf_cache_dir() -> str:
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


def is_model_dir(path: Path) -> bool:
    """A transformers model directory: config.json plus weights."""
    return (path / "config.json").is_file() and any((path / name).is_file() for name in WEIGHT_FILES)


def hf_snapshot(repo_id: str) -> Path | None:
    """The cached snapshot of hub model `repo_id` if it is complete, else None. Never touches the network."""
    if repo_id.count("/") > 1 or Path(repo_id).is_absolute():
        return None
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

    try:
        path = Path(snapshot_download(repo_id, local_files_only=True))
    except (LocalEntryNotFoundError, HFValidationError, OSError):
        return None
    return path if is_model_dir(path) else None


def find_checkpoint(candidates: Sequence[str]) -> Path | None:
    """The first candidate that exists locally: a path as is, or a hub id as its cached snapshot."""
    for candidate in candidates:
        path = Path(candidate).expanduser()
        if path.exists():
            return path
        snapshot = hf_snapshot(candidate)
        if snapshot is not None:
            return snapshot
    return None


def locate_checkpoint(name: str, candidates: Sequence[str], *, override: bool = False) -> Path:
    """Resolve `candidates` (paths or hub ids, preferred first) of upstream `name`, or raise CheckpointNotFoundError."""
    found = find_checkpoint(candidates)
    if found is not None:
        return found
    wanted = candidates[0]
    what = "the --upstream-ckpt value" if override else "its checkpoint"
    raise CheckpointNotFoundError(
        f"upstream {name!r}: {what} {wanted!r} was not found offline (not a local path, not in the "
        f"Hugging Face cache {hf_cache_dir()}); pass --upstream-ckpt PATH_OR_ID (a model directory, a "
        f"fairseq .pt file or a cached hub id), or fetch it on a connected machine with "
        f"`hf download {wanted}` and copy the cache here"
    )
