"""The encoder of a transformers Whisper model as an upstream: log-mel input, all its hidden states.

Whisper's encoder only takes full windows (30 s for the released models: `max_source_positions` × 2
mel frames), so every utterance is cut into consecutive windows, each zero-padded to the window and
turned into log-mel by the model's own `WhisperFeatureExtractor`, and the valid frames of its
windows are concatenated: input longer than one window is chunked, never truncated. Each window is
computed on its own, so a row's output never depends on its batch-mates. Valid frames follow from
the true length: ceil(samples / hop) mel frames, halved (rounded up) by the second conv.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .interface import Upstream, UpstreamOutput


class WhisperEncoderUpstream(Upstream):
    """forward: wavs (B, S), wav_lens (B,) -> encoder_layers + 1 states of (B, T, d_model), lengths (B,).

    The last state is the encoder output after its final layer norm (as transformers returns it).
    """

    def __init__(self, encoder: Any, feature_extractor: Any) -> None:
        super().__init__()
        config = encoder.config
        self.encoder = encoder
        self.feature_extractor = feature_extractor
        self.num_layers = config.encoder_layers + 1
        self.hidden_size = config.d_model
        self.hop = int(feature_extractor.hop_length)
        self.window_frames = 2 * int(config.max_source_positions)  # mel frames per encoder call
        self.window_samples = self.window_frames * self.hop
        self.downsample_rate = 2 * self.hop
        self.receptive_field = int(feature_extractor.n_fft)

    def encoder_frames(self, samples: int) -> int:
        """Valid encoder frames of a window holding `samples` true samples."""
        mel = max(1, math.ceil(samples / self.hop))
        return (mel - 1) // 2 + 1

    def forward(self, wavs: Tensor, wav_lens: Tensor) -> UpstreamOutput:
        wav_lens = wav_lens.long().tolist()
        pieces: list[np.ndarray] = []  # every window of every row, in order
        owners: list[tuple[int, int]] = []  # (row, valid encoder frames of that window)
        audio = wavs.detach().float().cpu().numpy()
        for row, length in enumerate(wav_lens):
            for start in range(0, max(length, 1), self.window_samples):
                piece = audio[row, start : min(start + self.window_samples, length)]
                pieces.append(piece if piece.size else np.zeros(1, dtype=np.float32))
                owners.append((row, self.encoder_frames(max(piece.size, 1))))
        features = self.feature_extractor(
            pieces, sampling_rate=self.feature_extractor.sampling_rate, padding="max_length",
            max_length=self.window_samples, truncation=True, return_tensors="pt",
        ).input_features.to(device=wavs.device, dtype=next(self.encoder.parameters()).dtype)
        states = self.encoder(features, output_hidden_states=True).hidden_states
        lengths = [0] * len(wav_lens)
        for row, frames in owners:
            lengths[row] += frames
        longest = max(lengths)
        hidden_states = []
        for state in states:
            per_row: list[list[Tensor]] = [[] for _ in wav_lens]
            for window, (row, frames) in enumerate(owners):
                per_row[row].append(state[window, :frames])
            padded = state.new_zeros(len(wav_lens), longest, state.shape[-1])
            for row, parts in enumerate(per_row):
                joined = torch.cat(parts)
                padded[row, : joined.shape[0]] = joined
            hidden_states.append(padded)
        return UpstreamOutput(hidden_states=hidden_states, lengths=torch.tensor(lengths, device=wavs.device))

    def freeze_feature_encoder(self) -> None:
        """No gradients into the two convolutions in front of the transformer."""
        self.encoder.conv1.requires_grad_(False)
        self.encoder.conv2.requires_grad_(False)


def load_whisper_encoder(path: Any) -> WhisperEncoderUpstream:
    """The encoder of the Whisper model in directory `path`, with its feature extractor (or the default
    one for its mel bins when the directory has no preprocessor_config.json)."""
    from transformers import WhisperFeatureExtractor, WhisperModel

    model = WhisperModel.from_pretrained(path, local_files_only=True, dtype=torch.float32)
    if (path / "preprocessor_config.json").is_file():
        extractor = WhisperFeatureExtractor.from_pretrained(path, local_files_only=True)
    else:
        extractor = WhisperFeatureExtractor(feature_size=model.config.num_mel_bins)
    encoder = model.get_encoder()
    encoder.layerdrop = encoder.config.encoder_layerdrop = 0.0  # no stochastic structure behind the trainer's back
    return WhisperEncoderUpstream(encoder.eval(), extractor)
