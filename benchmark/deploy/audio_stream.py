"""Audio as `predict` feeds it: mono 16 kHz, cut into equal chunks; long files read block by block.

`predict` cuts a recording into ⌈S / window⌉ equal chunks of its 16 kHz waveform. For an hour of
48 kHz stereo that waveform would first be 1.4 GB of float32 samples at the native rate; here the
file is decoded in blocks (soundfile), each mixed down and resampled on its own (torchaudio), so
memory holds two blocks and one chunk at a time. Per-block resampling is exact: every block is
resampled with `MARGIN_SECONDS` of its neighbours on both sides and only its own span is kept, and
blocks start on the resampler's period, so the pieces concatenate to the whole-file resampling
(equal up to float rounding; tested). Written here because neither soundfile nor torchaudio streams
a resampler over file blocks.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Iterator

import numpy as np
import soundfile
import soxr
import torch
import torchaudio
from torch import Tensor

from upstream.interface import SAMPLE_RATE

from ..data.audio import AudioError, notice_once, resample_to_16k, resampled_length, uses_soxr

BLOCK_SECONDS = 30.0
MARGIN_SECONDS = 0.05  # ≥ torchaudio's sinc filter (6 zero crossings of the lower rate: 0.4 ms at 16 kHz)


def to_model_audio(wav: np.ndarray | Tensor, sample_rate: int) -> Tensor:
    """(S,) float32 mono 16 kHz from (S,), (S, C) or (C, S) audio (the shorter axis is the channels)."""
    data = torch.as_tensor(np.asarray(wav, dtype=np.float32) if not isinstance(wav, Tensor) else wav).float()
    if data.ndim == 2:
        data = data.mean(dim=int(data.shape[0] > data.shape[1]))
    if data.ndim != 1 or data.numel() == 0:
        raise AudioError(f"expected non-empty audio of shape (S,), (S, C) or (C, S), got {tuple(data.shape)}")
    if not torch.isfinite(data).all():
        raise AudioError("audio contains NaN or infinite samples")
    return resample_to_16k(data, sample_rate)


def chunks(wav: Tensor, window_samples: int) -> list[Tensor]:
    """`wav` cut into ⌈S / window⌉ equal-length pieces (a 50 s file and a 20 s window: 3 × 16.7 s)."""
    return list(torch.tensor_split(wav, max(1, math.ceil(len(wav) / window_samples))))


def chunk_sizes(total: int, window: int) -> list[int]:
    """Sizes of `torch.tensor_split(wav, ⌈total / window⌉)`: the longer pieces first."""
    count = max(1, math.ceil(total / window))
    base, longer = divmod(total, count)
    return [base + 1] * longer + [base] * (count - longer)


class AudioFile:
    """An audio file's length at 16 kHz (from its header) and its mono 16 kHz samples block by block."""

    def __init__(self, path: Path, block_seconds: float = BLOCK_SECONDS) -> None:
        self.path = path
        try:
            info = soundfile.info(str(path))
        except Exception as error:  # soundfile raises several types for unreadable files
            raise AudioError(f"{path}: unreadable audio ({str(error).splitlines()[0]})") from None
        self.rate, self.frames, self.channels = int(info.samplerate), int(info.frames), int(info.channels)
        if self.frames <= 0:
            raise AudioError(f"{path}: empty audio (0 samples); expected speech")
        divisor = 1 if uses_soxr(self.rate) else math.gcd(self.rate, SAMPLE_RATE)  # soxr: no period to align to
        self._up, self._down = SAMPLE_RATE // divisor, self.rate // divisor  # output / input samples per period
        self._step = max(1, round(block_seconds * self.rate / self._down)) * self._down
        self._margin = 0 if self.rate == SAMPLE_RATE or uses_soxr(self.rate) else math.ceil(MARGIN_SECONDS * self.rate / self._down) * self._down
        if self.channels > 1:
            notice_once("stereo", f"{path} has {self.channels} channels: mixing down to mono")
        if self.rate != SAMPLE_RATE:
            notice_once(f"rate{self.rate}", f"{path} is sampled at {self.rate} Hz: resampling to {SAMPLE_RATE} Hz")

    @property
    def samples(self) -> int:
        """Samples at 16 kHz (the length resampling the whole file gives)."""
        return resampled_length(self.frames, self.rate)

    @property
    def seconds(self) -> float:
        return self.frames / self.rate

    def _mono_blocks(self) -> Iterator[Tensor]:
        with soundfile.SoundFile(str(self.path)) as handle:
            for data in handle.blocks(blocksize=self._step, dtype="float32", always_2d=True):
                if not np.isfinite(data).all():
                    raise AudioError(f"{self.path}: audio contains NaN or infinite samples")
                yield torch.from_numpy(np.ascontiguousarray(data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]))

    def pieces(self) -> Iterator[Tensor]:
        """Consecutive mono 16 kHz pieces; together, the whole file resampled at once."""
        if uses_soxr(self.rate):
            yield from self._soxr_pieces()
            return
        blocks = self._mono_blocks()
        current = next(blocks, None)
        before = torch.zeros(0)
        while current is not None:
            after = next(blocks, None)
            if self.rate == SAMPLE_RATE:
                yield current
            else:
                context = after[: self._margin] if after is not None else torch.zeros(0)
                out = torchaudio.functional.resample(torch.cat([before, current, context]), self.rate, SAMPLE_RATE)
                start = len(before) * self._up // self._down  # `before` spans whole periods
                yield out[start : start + math.ceil(len(current) * self._up / self._down)]
                before = torch.cat([before, current])[-self._margin :]
            current = after

    def _soxr_pieces(self) -> Iterator[Tensor]:
        """soxr's streaming resampler: block by block, equal to its whole-file resampling."""
        stream = soxr.ResampleStream(self.rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ")
        blocks = self._mono_blocks()
        current, emitted = next(blocks, None), 0
        while current is not None:
            after = next(blocks, None)
            out = torch.from_numpy(np.ascontiguousarray(stream.resample_chunk(current.numpy(), last=after is None)))
            if after is None:  # the stream's flush may differ from the rounded length by a sample
                out = torch.nn.functional.pad(out, (0, max(0, self.samples - emitted - len(out))))[: self.samples - emitted]
            emitted += len(out)
            yield out
            current = after

    def read(self) -> Tensor:
        """The whole mono 16 kHz waveform (for files short enough to hold)."""
        waveform = torch.cat(list(self.pieces()))
        if len(waveform) != self.samples:
            raise AudioError(f"{self.path}: decoded {len(waveform)} samples at 16 kHz where its header announces "
                             f"{self.samples}")
        return waveform

    def chunks(self, window: int) -> Iterator[Tensor]:
        """The file's 16 kHz waveform cut as `predict.chunks` cuts it, one chunk at a time."""
        sizes = chunk_sizes(self.samples, window)
        pending: list[Tensor] = []
        held = 0
        read = 0
        for piece in self.pieces():
            read += len(piece)
            pending.append(piece)
            held += len(piece)
            while sizes and held >= sizes[0]:
                joined = torch.cat(pending)
                yield joined[: sizes[0]]
                pending, held = [joined[sizes[0]:]], held - sizes[0]
                sizes.pop(0)
        if sizes or held:
            raise AudioError(f"{self.path}: decoded {read} samples at 16 kHz where its header announces {self.samples}")
