"""Compatibility fixes for running s3prl 0.4.18's own recipe with today's torchaudio, huggingface_hub, torch.

Loaded only by the s3prl subprocesses of `bench/` (this folder is put first on their PYTHONPATH, so
Python imports this file at start-up, before s3prl). Each fix only fills what is missing:

1. torchaudio >= 2.9 removed `set_audio_backend` and `sox_effects`, which s3prl touches at import time:
   a no-op and a stub module whose functions raise a clear error.
2. `torchaudio.load` needs TorchCodec + FFmpeg (absent here): a soundfile reader returning a
   (channels, time) float32 tensor and the sample rate, as torchaudio did.
3. huggingface_hub >= 1.0 removed `HfFolder` and `Repository`, which s3prl imports at module level (only
   to push results to the hub): stand-ins that raise if ever used.
4. s3prl checkpoints pickle an `argparse.Namespace`; torch's `weights_only=True` default refuses it
   unless allow-listed.
"""
from __future__ import annotations

import argparse
import importlib
import sys
import types


def _unavailable(what: str):
    def fail(*args: object, **kwargs: object):
        raise RuntimeError(f"{what} is not available in the bench's s3prl environment (see {__file__})")

    return fail


def _patch_torchaudio() -> None:
    import soundfile
    import torch
    import torchaudio

    if not hasattr(torchaudio, "set_audio_backend"):
        torchaudio.set_audio_backend = lambda backend=None: None
    try:
        importlib.import_module("torchaudio.sox_effects")
    except (ImportError, OSError):
        stub = types.ModuleType("torchaudio.sox_effects", "stand-in for the removed torchaudio.sox_effects")
        stub.apply_effects_tensor = _unavailable("torchaudio.sox_effects.apply_effects_tensor")
        stub.apply_effects_file = _unavailable("torchaudio.sox_effects.apply_effects_file")
        stub.effect_names = list
        sys.modules["torchaudio.sox_effects"] = stub
        torchaudio.sox_effects = stub

    def load(path, frame_offset: int = 0, num_frames: int = -1, normalize: bool = True,
             channels_first: bool = True, **kwargs: object):
        """(channels, time) float32 in [-1, 1] and the sample rate, read with soundfile."""
        stop = None if num_frames is None or num_frames < 0 else frame_offset + num_frames
        data, rate = soundfile.read(str(path), start=frame_offset, stop=stop, dtype="float32", always_2d=True)
        wav = torch.from_numpy(data.T.copy())
        return (wav if channels_first else wav.T.contiguous()), rate

    torchaudio.load = load


def _patch_huggingface_hub() -> None:
    try:
        import huggingface_hub
    except ImportError:
        return
    if not hasattr(huggingface_hub, "HfFolder"):
        class HfFolder:  # noqa: D401 - stand-in
            get_token = staticmethod(lambda: None)
            save_token = staticmethod(_unavailable("huggingface_hub.HfFolder.save_token"))

        huggingface_hub.HfFolder = HfFolder
    if not hasattr(huggingface_hub, "Repository"):
        class Repository:
            def __init__(self, *args: object, **kwargs: object) -> None:
                _unavailable("huggingface_hub.Repository")()

        huggingface_hub.Repository = Repository


def _allow_namespace_checkpoints() -> None:
    import torch

    add = getattr(torch.serialization, "add_safe_globals", None)
    if add is not None:
        add([argparse.Namespace])


_patch_torchaudio()
_patch_huggingface_hub()
_allow_namespace_checkpoints()
