"""Block-by-block decoding and resampling equals the whole file's, for any rate and channel count."""
from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile
import soxr
import torch
import torchaudio

from benchmark.data.audio import AudioError, load_wav
from benchmark.deploy.audio_stream import AudioFile, chunk_sizes


def _chirp(rate: int, seconds: float) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return np.sin(2 * np.pi * (80 + 400 * t) * t).astype(np.float32)


@pytest.mark.parametrize("rate, channels", [(48_000, 2), (44_100, 1), (22_050, 2), (8_000, 1), (16_000, 2), (24_414, 1)])
def test_pieces_concatenate_to_the_whole_file_resampled_at_once(rate, channels, tmp_path):
    chirp = _chirp(rate, 7.3)
    data = np.stack([chirp, 0.5 * chirp[::-1]], 1)[:, :channels]
    path = tmp_path / "chirp.wav"
    soundfile.write(str(path), data, rate, subtype="FLOAT")
    audio = AudioFile(path, block_seconds=1.0)  # 8 blocks: 7 boundaries inside the file
    pieces = list(audio.pieces())
    assert len(pieces) == 8
    streamed = torch.cat(pieces)
    reference = torch.from_numpy(data.mean(axis=1))
    if rate == 24_414:  # TESS' rate: soxr (torchaudio's kernel for 12207 → 8000 samples per period is too slow)
        reference = torch.from_numpy(soxr.resample(reference.numpy(), rate, 16_000, quality="HQ"))
    elif rate != 16_000:
        reference = torchaudio.functional.resample(reference, rate, 16_000)
    assert len(streamed) == audio.samples == len(reference) == len(load_wav(path))
    assert torch.allclose(streamed, reference, atol=1e-6)
    window = 16_000 * 2
    expected = torch.tensor_split(reference, math.ceil(len(reference) / window))
    got = list(audio.chunks(window))
    assert [len(c) for c in got] == [len(c) for c in expected] == chunk_sizes(len(reference), window)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(got, expected))


def test_bad_audio_is_an_error_naming_the_file(tmp_path):
    (tmp_path / "not.wav").write_bytes(b"RIFF junk")
    with pytest.raises(AudioError, match=r"not\.wav: unreadable audio"):
        AudioFile(tmp_path / "not.wav")
    soundfile.write(str(tmp_path / "empty.wav"), np.zeros((0, 1), np.float32), 16_000)
    with pytest.raises(AudioError, match=r"empty\.wav: empty audio"):
        AudioFile(tmp_path / "empty.wav")
    broken = _chirp(16_000, 3.0)
    broken[40_000] = np.nan
    soundfile.write(str(tmp_path / "nan.wav"), broken, 16_000, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"nan\.wav: audio contains NaN"):
        list(AudioFile(tmp_path / "nan.wav", block_seconds=1.0).chunks(16_000))
