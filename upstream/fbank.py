"""Kaldi-compatible log-mel filterbank (torchaudio), exposed as a one-layer upstream."""
from __future__ import annotations

import torch
import torchaudio
from torch import Tensor

from .hub import register_upstream
from .interface import SAMPLE_RATE, Upstream, UpstreamOutput

NUM_MEL_BINS = 80
FRAME_LENGTH_MS = 25.0
FRAME_SHIFT_MS = 10.0
_WINDOW = int(SAMPLE_RATE * FRAME_LENGTH_MS / 1000)
_SHIFT = int(SAMPLE_RATE * FRAME_SHIFT_MS / 1000)


def fbank_frames(num_samples: Tensor) -> Tensor:
    """Frames that Kaldi's fbank (snip_edges=True) yields for `num_samples`; at least 1."""
    return (torch.div(num_samples - _WINDOW, _SHIFT, rounding_mode="floor") + 1).clamp(min=1).long()


class FbankUpstream(Upstream):
    """80 log-mel bins, 25 ms window, 10 ms shift, computed per utterance on its valid samples only.

    No per-utterance mean normalisation: followed by mean pooling and a linear layer it would make
    every pooled vector identical (the constant-classifier trap of s3prl's `fbank`).
    """

    modality = "audio"
    num_layers = 1
    hidden_size = NUM_MEL_BINS
    downsample_rate = _SHIFT
    receptive_field = _WINDOW

    def forward(self, wavs: Tensor, wav_lens: Tensor) -> UpstreamOutput:
        lengths = fbank_frames(wav_lens)
        feats = wavs.new_zeros(wavs.shape[0], int(lengths.max()), NUM_MEL_BINS)
        for row, (wav, n) in enumerate(zip(wavs, wav_lens.tolist())):
            valid = wav[:n]
            if n < _WINDOW:  # too short for one window: pad so one frame exists
                valid = torch.nn.functional.pad(valid, (0, _WINDOW - n))
            mel = torchaudio.compliance.kaldi.fbank(
                valid.unsqueeze(0) * 32768.0,  # Kaldi's convention: int16 sample scale
                num_mel_bins=NUM_MEL_BINS,
                frame_length=FRAME_LENGTH_MS,
                frame_shift=FRAME_SHIFT_MS,
                sample_frequency=SAMPLE_RATE,
                dither=0.0,
                energy_floor=0.0,
            )
            feats[row, : mel.shape[0]] = mel
        return UpstreamOutput(hidden_states=[feats], lengths=lengths.to(wavs.device))


@register_upstream(
    "fbank",
    backend="fbank",
    source="torchaudio.compliance.kaldi.fbank",
    hidden_size=NUM_MEL_BINS,
    num_layers=1,
    downsample_rate=_SHIFT,
    reference="Kaldi-compatible log-mel filterbank, 80 bins, 25 ms / 10 ms",
    input_pipeline=(("features", "kaldi fbank, snip_edges, int16 scale"), ("num_mel_bins", NUM_MEL_BINS),
                    ("frame_length_ms", FRAME_LENGTH_MS), ("frame_shift_ms", FRAME_SHIFT_MS), ("dither", 0.0),
                    ("energy_floor", 0.0)),
    architecture=lambda: FbankUpstream(),
)
def build_fbank() -> FbankUpstream:
    return FbankUpstream()
