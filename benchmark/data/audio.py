"""Reading utterance audio as the upstreams expect it: float32, mono, 16 kHz."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile
import torch
import torchaudio
from torch import Tensor

from upstream.interface import SAMPLE_RATE

_NOTICES_SHOWN: set[str] = set()


class AudioError(ValueError):
    """An audio file cannot be used; the message names the file and why."""


def notice_once(kind: str, message: str) -> None:
    if kind not in _NOTICES_SHOWN:
        _NOTICES_SHOWN.add(kind)
        print(f"note: {message} (shown once)")


def load_wav(path: Path | str) -> Tensor:
    """(S,) float32 waveform at 16 kHz; stereo is mixed down, other rates are resampled."""
    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except Exception as error:  # soundfile raises several types for unreadable files
        raise AudioError(f"{path}: unreadable audio ({str(error).splitlines()[0]})") from None
    if data.shape[0] == 0:
        raise AudioError(f"{path}: empty audio (0 samples); expected speech")
    if not np.isfinite(data).all():
        raise AudioError(f"{path}: audio contains NaN or infinite samples")
    if data.shape[1] > 1:
        notice_once("stereo", f"{path} has {data.shape[1]} channels: mixing down to mono")
        data = data.mean(axis=1, keepdims=True)
    wav = torch.from_numpy(np.ascontiguousarray(data[:, 0]))
    if rate != SAMPLE_RATE:
        notice_once(f"rate{rate}", f"{path} is sampled at {rate} Hz: resampling to {SAMPLE_RATE} Hz")
        wav = torchaudio.functional.resample(wav, rate, SAMPLE_RATE)
    return wav
