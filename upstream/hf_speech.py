"""transformers SSL speech models (wav2vec 2.0, HuBERT, WavLM) as upstreams.

The registered names are the entries of releases.yaml. A checkpoint is a transformers model
directory, a cached hub id, or a fairseq `.pt` file (read by `fairseq_ckpt` without fairseq).
Loading never touches the network (`local_files_only=True`).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import yaml
from torch import Tensor

from .checkpoints import hf_snapshot, locate_checkpoint
from .hub import register_upstream
from .interface import Upstream, UpstreamOutput

if TYPE_CHECKING:
    from transformers import PreTrainedModel

# Fine-tuning must not draw masks or drop layers from the global RNG behind the trainer's back.
NO_STOCHASTIC_STRUCTURE = {"layerdrop": 0.0, "apply_spec_augment": False}
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
    """A transformers `HubertModel` / `Wav2Vec2Model` / `WavLMModel` returning all its hidden states.

    forward: wavs (B, S), wav_lens (B,) -> num_hidden_layers + 1 states of (B, T, H), lengths (B,)
    from the model's own `_get_feat_extract_output_lengths`. The last state is the encoder output
    (after the final layer norm in pre-LN models), as fairseq and s3prl define it. Rows shorter than
    the conv receptive field are zero-padded to it (one frame), as if processed alone.
    """

    def __init__(self, model: PreTrainedModel, *, do_normalize: bool = False, norm_eps: float = HF_NORM_EPS) -> None:
        super().__init__()
        config = model.config
        self.model: Any = model  # typed loosely: transformers' private helpers are used below
        self.do_normalize = do_normalize
        self.norm_eps = norm_eps
        self.num_layers = config.num_hidden_layers + 1
        self.hidden_size = config.hidden_size
        self.downsample_rate = math.prod(config.conv_stride)
        self.receptive_field = receptive_field(tuple(config.conv_kernel), tuple(config.conv_stride))
        # GroupNorm over time in the first conv layer sees the padding: batch != alone for such models.
        self.padding_invariant = getattr(config, "feat_extract_norm", "layer") != "group"

    def forward(self, wavs: Tensor, wav_lens: Tensor) -> UpstreamOutput:
        wav_lens = wav_lens.to(wavs.device).long()
        if wavs.shape[1] < self.receptive_field:
            wavs = torch.nn.functional.pad(wavs, (0, self.receptive_field - wavs.shape[1]))
        positions = torch.arange(wavs.shape[1], device=wavs.device)[None, :]
        if self.do_normalize:
            wavs = normalize_valid(wavs, wav_lens, self.norm_eps)
        else:
            wavs = wavs * (positions < wav_lens[:, None])  # padding must be zeros whatever the caller used
        lens = wav_lens.clamp(min=self.receptive_field)
        attention_mask = (positions < lens[:, None]).long()
        out = self.model(wavs, attention_mask=attention_mask, output_hidden_states=True)
        hidden_states = list(out.hidden_states)
        hidden_states[-1] = out.last_hidden_state
        lengths = self.model._get_feat_extract_output_lengths(lens).clamp(1, hidden_states[0].shape[1])
        return UpstreamOutput(hidden_states=hidden_states, lengths=lengths.long())

    def freeze_feature_encoder(self) -> None:
        """No gradients into the conv waveform encoder (as transformers' `freeze_feature_encoder`)."""
        encoder = self.model.feature_extractor
        if hasattr(encoder, "_freeze_parameters"):  # also stops it from making the input require grad
            encoder._freeze_parameters()
        else:
            encoder.requires_grad_(False)


def read_do_normalize(model_dir: Path, config: Any) -> bool:
    """The checkpoint's `do_normalize` (preprocessor_config.json). Without one: True for layer-norm conv
    encoders, whose fairseq recipes (the Large models) normalise the waveform, False for group-norm ones."""
    preprocessor = model_dir / "preprocessor_config.json"
    if not preprocessor.is_file():
        return getattr(config, "feat_extract_norm", "group") == "layer"
    return bool(json.loads(preprocessor.read_text()).get("do_normalize", True))


def load_speech_upstream(
    name: str,
    candidates: tuple[str, ...],
    *,
    override: bool = False,
    trust_checkpoint: bool = False,
    normalize: bool | None = None,
) -> SpeechModelUpstream:
    """Load the first of `candidates` found locally (directory, hub id or fairseq .pt file)."""
    path = locate_checkpoint(name, candidates, override=override)
    if path.is_file():
        from .fairseq_ckpt import load_fairseq_model

        model, do_normalize = load_fairseq_model(path, trust_checkpoint=trust_checkpoint)
        eps = FAIRSEQ_NORM_EPS
    else:
        from transformers import AutoModel

        model = AutoModel.from_pretrained(path, local_files_only=True, dtype=torch.float32, **NO_STOCHASTIC_STRUCTURE)
        do_normalize, eps = read_do_normalize(path, model.config), HF_NORM_EPS
    do_normalize = do_normalize if normalize is None else normalize
    return SpeechModelUpstream(model, do_normalize=do_normalize, norm_eps=eps)


RELEASES_FILE = Path(__file__).with_name("releases.yaml")


@dataclass(frozen=True)
class Release:
    """A published checkpoint registered under `name` (one entry of releases.yaml)."""

    name: str
    repo_id: str
    hidden_size: int
    num_layers: int
    reference: str
    licence: str = ""
    downsample_rate: int = 320


def read_releases(path: Path = RELEASES_FILE) -> list[Release]:
    """releases.yaml validated into `Release`s (an unknown or missing field is an error naming the entry)."""
    entries = yaml.safe_load(path.read_text()) or []
    releases = []
    for index, entry in enumerate(entries):
        try:
            releases.append(Release(**entry))
        except TypeError as err:
            raise ValueError(f"{path} entry {index + 1} ({entry.get('name', '?')}): {err}") from None
    return releases


def _register(release: Release) -> None:
    def factory(
        ckpt: str | None = None, trust_checkpoint: bool = False, normalize: bool | None = None
    ) -> SpeechModelUpstream:
        """`ckpt`: directory, hub id or fairseq .pt overriding the release; `normalize` overrides do_normalize."""
        candidates = (ckpt,) if ckpt else (release.repo_id,)
        return load_speech_upstream(
            release.name, candidates, override=bool(ckpt), trust_checkpoint=trust_checkpoint, normalize=normalize
        )

    register_upstream(
        release.name,
        backend="transformers",
        source=release.repo_id,
        hidden_size=release.hidden_size,
        num_layers=release.num_layers,
        downsample_rate=release.downsample_rate,
        reference=release.reference,
        licence=release.licence,
        available=lambda: hf_snapshot(release.repo_id) is not None,
        input_pipeline=(("waveform", "16 kHz mono float"), ("do_normalize", "checkpoint preprocessor_config.json"),
                        ("norm_eps", HF_NORM_EPS), ("normalized_over", "valid samples")),
    )(factory)


for _release in read_releases():
    _register(_release)
