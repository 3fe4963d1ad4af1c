"""Reading utterance audio as the upstreams expect it: float32, mono, 16 kHz."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import soundfile
import soxr
import torch
import torchaudio
from torch import Tensor

from upstream.interface import SAMPLE_RATE

_NOTICES_SHOWN: set[str] = set()
AWKWARD_PERIOD = 1_000  # input samples per resampling period beyond which soxr resamples (`uses_soxr`)


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
        wav = resample_to_16k(wav, rate)
    return wav


def uses_soxr(rate: int) -> bool:
    """torchaudio's polyphase kernel grows with rate / gcd(rate, 16 kHz): 48 kHz or 44.1 kHz reduce to
    3 or 441 input samples per period, TESS' 24414 Hz to 12207, which takes minutes per file. Rates
    beyond `AWKWARD_PERIOD` go through soxr (its high-quality setting), which handles any ratio."""
    return rate != SAMPLE_RATE and rate // math.gcd(rate, SAMPLE_RATE) > AWKWARD_PERIOD


def resampled_length(frames: int, rate: int) -> int:
    """Samples at 16 kHz that `resample_to_16k` gives for `frames` samples at `rate`."""
    if rate == SAMPLE_RATE:
        return frames
    if uses_soxr(rate):
        return math.floor(frames * SAMPLE_RATE / rate + 0.5)
    divisor = math.gcd(rate, SAMPLE_RATE)
    return math.ceil(frames * (SAMPLE_RATE // divisor) / (rate // divisor))


def resample_to_16k(wav: Tensor, rate: int) -> Tensor:
    """(S,) float32 at `rate` → 16 kHz (torchaudio's sinc resampler, or soxr for awkward rates)."""
    if rate == SAMPLE_RATE:
        return wav
    if uses_soxr(rate):
        out = soxr.resample(wav.numpy(), rate, SAMPLE_RATE, quality="HQ")
        return torch.from_numpy(np.ascontiguousarray(out, dtype=np.float32))
    return torchaudio.functional.resample(wav, rate, SAMPLE_RATE)
