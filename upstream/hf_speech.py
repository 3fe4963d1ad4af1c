"""transformers SSL speech encoders of the wav2vec 2.0 family as upstreams, fed as they were pre-trained.

A checkpoint is a transformers model directory, a cached hub id, or a `.pt` file (fairseq or
Microsoft's original WavLM, read by `pt_checkpoints` without either toolkit). Loading never touches
the network (`local_files_only=True`). Named releases are registered by `releases`.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from .checkpoints import locate_checkpoint
from .interface import Upstream, UpstreamOutput

if TYPE_CHECKING:
    from transformers import PreTrainedModel

# Fine-tuning must not draw masks or drop layers from the global RNG behind the trainer's back.
NO_STOCHASTIC_STRUCTURE = {"layerdrop": 0.0, "apply_spec_augment": False}
# data2vec-audio's positional embedding is a stack of convs; padded frames become non-zero after the
# first and reach valid ones through the next (the mask zeroes them only once, before the stack).
STACKED_POSITION_CONVS = ("data2vec-audio",)
HF_NORM_EPS = 1e-7  # transformers' Wav2Vec2FeatureExtractor
FAIRSEQ_NORM_EPS = 1e-5  # fairseq's F.layer_norm(wav, wav.shape)


def normalize_valid(wavs: Tensor, wav_lens: Tensor, eps: float = HF_NORM_EPS) -> Tensor:
    """Zero-mean unit-variance per row over its valid samples only, padding set to 0. (B, S) -> (B, S).

    Same formula as transformers' Wav2Vec2FeatureExtractor (`do_normalize`) and, with eps 1e-5, as
    fairseq's per-utterance `F.layer_norm`, so batches match what each checkpoint was trained with.
    """
    mask = torch.arange(wavs.shape[1], device=wavs.device)[None, :] < wav_lens[:, None]
    count = wav_lens.clamp(min=1)[:, None].to(wavs.dtype)
    mean = (wavs * mask).sum(1, keepdim=True) / count
    var = (((wavs - mean) * mask) ** 2).sum(1, keepdim=True) / count
    return (wavs - mean) / torch.sqrt(var + eps) * mask


def receptive_field(kernels: tuple[int, ...], strides: tuple[int, ...]) -> int:
    """Samples the conv stack needs to emit one frame (400 for the standard wav2vec 2.0 encoder)."""
    field = 1
    for kernel, stride in zip(reversed(kernels), reversed(strides)):
        field = (field - 1) * stride + kernel
    return field


class SpeechModelUpstream(Upstream):
    """A transformers wav2vec 2.0-family encoder (HuBERT, wav2vec 2.0, WavLM, data2vec-audio, UniSpeech)
    returning all its hidden states.

    forward: wavs (B, S), wav_lens (B,) -> num_hidden_layers + 1 states of (B, T, H), lengths (B,)
    from the model's own `_get_feat_extract_output_lengths` of the true lengths. The last state is
    the encoder output (after the final layer norm in pre-LN models), as fairseq and s3prl define it.
    Rows shorter than the conv receptive field are zero-padded to it (one frame), as if processed alone.

    Fed as pre-trained (transformers' guidance for this family): a group-norm conv encoder
    (`feat_extract_norm == "group"`, the Base models) was trained on unpadded, unmasked batches, so it
    gets zero padding and no attention mask; a layer-norm one (the Large models) gets the mask.
    `attention_mask` overrides the rule (releases.yaml). Where padding reaches the valid frames (group
    norm over time, no mask, data2vec-audio's stacked positional convs), eval mode runs each group of
    equal-length rows on its own: validation, test, the feature cache and prediction never depend on
    batch-mates. Training pads (duration batching keeps the padding to a few percent).
    """

    def __init__(
        self,
        model: PreTrainedModel,
        *,
        do_normalize: bool = False,
        norm_eps: float = HF_NORM_EPS,
        attention_mask: bool | None = None,
    ) -> None:
        super().__init__()
        config = model.config
        self.model: Any = model  # typed loosely: transformers' private helpers are used below
        self.do_normalize = do_normalize
        self.norm_eps = norm_eps
        self.num_layers = config.num_hidden_layers + 1
        self.hidden_size = config.hidden_size
        self.downsample_rate = math.prod(config.conv_stride)
        self.receptive_field = receptive_field(tuple(config.conv_kernel), tuple(config.conv_stride))
        self.group_norm_encoder = getattr(config, "feat_extract_norm", "layer") == "group"
        self.stacked_position_convs = config.model_type in STACKED_POSITION_CONVS
        self.use_attention_mask = not self.group_norm_encoder if attention_mask is None else attention_mask
        # eval mode runs equal-length groups when padding could leak into a row (see the class docstring)
        self.padding_invariant = True

    def forward(self, wavs: Tensor, wav_lens: Tensor) -> UpstreamOutput:
        wav_lens = wav_lens.to(wavs.device).long()
        if self.training or not self.padding_reaches_outputs:
            return self.forward_padded(wavs, wav_lens)
        return self._forward_in_equal_length_groups(wavs, wav_lens)

    @property
    def padding_reaches_outputs(self) -> bool:
        """Whether a padded batch changes a row's valid frames (group norm over time, or no attention mask)."""
        return self.group_norm_encoder or self.stacked_position_convs or not self.use_attention_mask

    def forward_padded(self, wavs: Tensor, wav_lens: Tensor) -> UpstreamOutput:
        """The whole zero-padded batch in one call (with the attention mask where the rule gives one)."""
        wav_lens = wav_lens.to(wavs.device).long()
        if wavs.shape[1] < self.receptive_field:
            wavs = torch.nn.functional.pad(wavs, (0, self.receptive_field - wavs.shape[1]))
        positions = torch.arange(wavs.shape[1], device=wavs.device)[None, :]
        if self.do_normalize:
            wavs = normalize_valid(wavs, wav_lens, self.norm_eps)
        else:
            wavs = wavs * (positions < wav_lens[:, None])  # padding must be zeros whatever the caller used
        lens = wav_lens.clamp(min=self.receptive_field)
        attention_mask = (positions < lens[:, None]).long() if self.use_attention_mask else None
        out = self.model(wavs, attention_mask=attention_mask, output_hidden_states=True)
        hidden_states = list(out.hidden_states)
        hidden_states[-1] = out.last_hidden_state
        lengths = self.model._get_feat_extract_output_lengths(lens).clamp(1, hidden_states[0].shape[1])
        return UpstreamOutput(hidden_states=hidden_states, lengths=lengths.long())

    def _forward_in_equal_length_groups(self, wavs: Tensor, wav_lens: Tensor) -> UpstreamOutput:
        groups = [torch.nonzero(wav_lens == n).flatten() for n in torch.unique(wav_lens).tolist()]
        parts = [(rows, self.forward_padded(wavs[rows, : int(wav_lens[rows[0]])], wav_lens[rows])) for rows in groups]
        frames = max(part.hidden_states[0].shape[1] for _, part in parts)
        lengths = torch.zeros(len(wav_lens), dtype=torch.long, device=wavs.device)
        states = [part_state.new_zeros(len(wav_lens), frames, part_state.shape[-1])
                  for part_state in parts[0][1].hidden_states]
        for rows, part in parts:
            lengths[rows] = part.lengths
            for layer, state in enumerate(part.hidden_states):
                states[layer][rows, : state.shape[1]] = state
        return UpstreamOutput(hidden_states=states, lengths=lengths)

    def freeze_feature_encoder(self) -> None:
        """No gradients into the conv waveform encoder (as transformers' `freeze_feature_encoder`)."""
        encoder = self.model.feature_extractor
        if hasattr(encoder, "_freeze_parameters"):  # also stops it from making the input require grad
            encoder._freeze_parameters()
        else:
            encoder.requires_grad_(False)


def read_do_normalize(model_dir: Path, config: Any) -> bool:
    """The checkpoint's `do_normalize` (preprocessor_config.json). Without one: True for layer-norm conv
    encoders, whose fairseq recipes (the Large models) normalise the waveform, False for group-norm ones.
    Only for directories no release pins (releases.yaml): hub preprocessor files are not always right."""
    preprocessor = model_dir / "preprocessor_config.json"
    if not preprocessor.is_file():
        return getattr(config, "feat_extract_norm", "layer") == "layer"  # data2vec-audio: layer-norm convs, no field
    return bool(json.loads(preprocessor.read_text()).get("do_normalize", True))


def load_model_dir(path: Path) -> PreTrainedModel:
    """A transformers model directory as float32, without stochastic structure, never the network."""
    from transformers import AutoModel

    return AutoModel.from_pretrained(path, local_files_only=True, dtype=torch.float32, **NO_STOCHASTIC_STRUCTURE)


def load_speech_upstream(
    name: str,
    candidates: tuple[str, ...],
    *,
    override: bool = False,
    trust_checkpoint: bool = False,
    normalize: bool | None = None,
    attention_mask: bool | None = None,
) -> SpeechModelUpstream:
    """Load the first of `candidates` found locally (directory, hub id, fairseq or original WavLM .pt file).

    `normalize` None: the checkpoint's own flag (fairseq/WavLM task config, else preprocessor_config.json);
    `attention_mask` None: the family rule of `SpeechModelUpstream`.
    """
    path = locate_checkpoint(name, candidates, override=override)
    if path.is_file():
        from .pt_checkpoints import load_pt_model

        model, do_normalize = load_pt_model(path, trust_checkpoint=trust_checkpoint)
        eps = FAIRSEQ_NORM_EPS
    else:
        model = load_model_dir(path)
        do_normalize, eps = read_do_normalize(path, model.config), HF_NORM_EPS
    do_normalize = do_normalize if normalize is None else normalize
    return SpeechModelUpstream(model, do_normalize=do_normalize, norm_eps=eps, attention_mask=attention_mask)
