"""ECAPA-TDNN aggregator: speechbrain's `ECAPA_TDNN`, made padding-invariant.

speechbrain's model masks padding in its SE blocks and its attentive statistics pooling, given
*relative* lengths. Two more things are needed for "the same utterance alone or padded in a batch
gives the same embedding" (eval mode):

1. Relative lengths that round-trip. speechbrain rebuilds each mask as ``arange(T) < rel * T`` in
   float32; with ``rel = n / T`` the product can round above n and admit one padding frame (it does
   for about 5 % of the (n, T) pairs with n <= T < 1500). We pass ``rel = (n - 0.5) / T``, half a frame
   below the boundary, which recovers exactly n valid frames.
2. Convolutions that do not see padding. Its temporal convolutions (kernel 5, then 3 with dilation
   2, 3, 4, chained through Res2Net) use "same" padding in *reflect* mode, so the last ~65 frames of
   an utterance see either a reflection (alone) or the batch's padding frames (padded). With
   `EcapaConfig.mask_padding` (default) each such convolution pads with zeros instead, and a forward
   pre-hook zeroes the input's padding frames, so both cases see zeros past the end. Nothing of
   speechbrain's model is re-implemented; its forward runs unchanged.

In train mode BatchNorm uses batch statistics, which include padding frames; invariance is an
eval-mode property. The BatchNorm after the pooling sees one value per utterance and channel, so a
training batch must hold at least two utterances.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from speechbrain.lobes.models.ECAPA_TDNN import ECAPA_TDNN
from speechbrain.nnet.CNN import Conv1d as SpeechbrainConv1d
from torch import Tensor, nn

from .pooling import length_mask


@dataclass(frozen=True)
class EcapaConfig:
    """Sizes of the ECAPA-TDNN aggregator; defaults are those of speechbrain's `ECAPA_TDNN` class.

    channels: width C of the first TDNN layer and of the three SE-Res2Net blocks (the multi-layer
    feature aggregation has 3·C); embedding_size: output dimension; attention_size: hidden size of
    the attentive statistics pooling; se_channels: squeeze-excitation bottleneck; res2net_scale:
    Res2Net split count (must divide `channels`); mask_padding: zero padding frames before every
    temporal convolution (padding-invariant); False runs speechbrain's stock reflect padding.
    """

    channels: int = 512
    embedding_size: int = 192
    attention_size: int = 128
    se_channels: int = 128
    res2net_scale: int = 8
    mask_padding: bool = True

    def summary(self) -> str:
        c = self.channels
        return (
            f"channels {c}, MFA {3 * c}, attention {self.attention_size}, SE {self.se_channels}, "
            f"Res2Net scale {self.res2net_scale}, embedding {self.embedding_size}"
        )

    def __post_init__(self) -> None:
        for name in ("channels", "embedding_size", "attention_size", "se_channels", "res2net_scale"):
            if getattr(self, name) < 1:
                raise ValueError(f"ecapa.{name} must be positive, got {getattr(self, name)}")
        if self.channels % self.res2net_scale:
            raise ValueError(
                f"ecapa.channels ({self.channels}) must be a multiple of ecapa.res2net_scale "
                f"({self.res2net_scale})"
            )


def relative_lengths(lengths: Tensor, max_len: int) -> Tensor:
    """(B,) valid frame counts → (B,) float32 relative lengths in (0, 1) of a `max_len` padded axis.

    Half a frame below n/max_len, so that speechbrain's ``arange(T) < rel * T`` keeps exactly n
    frames despite float rounding (see the module docstring).
    """
    return (lengths.clamp(min=1).to(torch.float32) - 0.5) / max_len


class EcapaAggregator(nn.Module):
    """(B, T, H) features + (B,) frame lengths → (B, embedding_size) utterance embeddings."""

    def __init__(self, input_size: int, config: EcapaConfig = EcapaConfig()) -> None:
        super().__init__()
        self.config = config
        self.output_size = config.embedding_size
        c = config.channels
        self.ecapa = ECAPA_TDNN(
            input_size,
            lin_neurons=config.embedding_size,
            channels=[c, c, c, c, 3 * c],
            attention_channels=config.attention_size,
            se_channels=config.se_channels,
            res2net_scale=config.res2net_scale,
        )
        self._frame_mask: Tensor | None = None  # (B, 1, T), set only during forward
        if config.mask_padding:
            for module in self.ecapa.modules():
                if isinstance(module, SpeechbrainConv1d) and module.kernel_size > 1:
                    module.padding_mode = "constant"  # zero "same" padding, as past a padded end
                    # A bound method, not a closure: copy.deepcopy then rebinds it to the copy.
                    module.register_forward_pre_hook(self._zero_padding_frames)

    def _zero_padding_frames(self, module: nn.Module, args: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        """Pre-hook of a temporal convolution: its input (B, C, T) with padding frames set to zero."""
        if self._frame_mask is None:
            raise RuntimeError("EcapaAggregator's convolutions must be called through its forward")
        (x,) = args
        return (x * self._frame_mask.to(x.dtype),)

    def forward(self, features: Tensor, lengths: Tensor) -> Tensor:
        if self.training and features.shape[0] < 2:
            raise ValueError(
                "ECAPA-TDNN's BatchNorm needs at least 2 utterances per training batch; "
                "drop or merge batches of one utterance"
            )
        max_len = features.shape[1]
        if not self.config.mask_padding and max_len < 5:
            raise ValueError(
                f"stock ECAPA-TDNN (reflect padding) needs at least 5 frames, got {max_len}; "
                "set ecapa.mask_padding: true for short inputs"
            )
        lengths = lengths.to(features.device)
        self._frame_mask = length_mask(lengths, max_len).unsqueeze(1)
        try:
            embeddings = self.ecapa(features, relative_lengths(lengths, max_len))  # (B, 1, E)
        finally:
            self._frame_mask = None
        return embeddings.squeeze(1)
