"""Make `s3prl` 0.4.18 importable with torchaudio ≥ 2.9, which removed two APIs it touches at import time.

s3prl calls `torchaudio.set_audio_backend(...)` and imports `torchaudio.sox_effects` in modules that
`s3prl.hub` star-imports, although no upstream we use needs either. The shim adds a no-op
`set_audio_backend` and a `torchaudio.sox_effects` stand-in whose functions raise a clear error if
ever called; it only fills what is missing, so it is a no-op with an older torchaudio.
"""
from __future__ import annotations

import importlib
import sys
import types
from typing import Any, NoReturn

import torchaudio

_SHIM_NAME = "torchaudio.sox_effects"


def _sox_removed(*args: object, **kwargs: object) -> NoReturn:
    raise RuntimeError("torchaudio.sox_effects was removed in torchaudio 2.9; this s3prl feature is unavailable")


def install() -> None:
    """Idempotently add the missing torchaudio attributes that s3prl needs at import time."""
    if not hasattr(torchaudio, "set_audio_backend"):
        torchaudio.set_audio_backend = lambda backend=None: None  # type: ignore[attr-defined]
    try:
        importlib.import_module(_SHIM_NAME)
    except (ImportError, OSError):
        stub = types.ModuleType(_SHIM_NAME, "stand-in for the removed torchaudio.sox_effects (see upstream/_s3prl_compat.py)")
        stub.apply_effects_tensor = _sox_removed  # type: ignore[attr-defined]
        stub.apply_effects_file = _sox_removed  # type: ignore[attr-defined]
        stub.effect_names = list  # type: ignore[attr-defined]
        sys.modules[_SHIM_NAME] = stub
        torchaudio.sox_effects = stub  # type: ignore[attr-defined]


def import_s3prl_upstream() -> Any:
    """`s3prl.nn.S3PRLUpstream`, imported with the shim in place (slow: s3prl imports all its hubs)."""
    install()
    from s3prl.nn import S3PRLUpstream

    return S3PRLUpstream
