"""Named releases of the wav2vec 2.0 family (releases.yaml), each registered as one upstream.

A release pins how its checkpoint is fed: `do_normalize` comes from the model's pre-training recipe
(cited in releases.yaml), not from the hub's preprocessor file, which is wrong for some releases
(facebook/wav2vec2-base's says True; its fairseq recipe trained on unnormalised audio).
`attention_mask` (optional) overrides the family rule of `SpeechModelUpstream`, with the reason.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .checkpoints import hf_snapshot
from .hf_speech import FAIRSEQ_NORM_EPS, HF_NORM_EPS, SpeechModelUpstream, load_speech_upstream
from .hub import register_upstream

RELEASES_FILE = Path(__file__).with_name("releases.yaml")


@dataclass(frozen=True)
class Release:
    """A published checkpoint registered under `name` (one entry of releases.yaml)."""

    name: str
    repo_id: str
    hidden_size: int
    num_layers: int
    reference: str
    do_normalize: bool
    normalize_source: str
    licence: str = ""
    downsample_rate: int = 320
    attention_mask: bool | None = None
    attention_mask_reason: str = ""
    # the checkpoint's transformers config (model_type + the fields that differ from its defaults),
    # for sizing a run offline (`upstream.architecture`); never used to load weights
    architecture: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.do_normalize, bool):
            raise TypeError(f"do_normalize must be true or false, got {self.do_normalize!r}")
        if self.architecture and "model_type" not in self.architecture:
            raise TypeError("architecture needs a model_type (e.g. hubert)")
        if self.attention_mask is not None and not self.attention_mask_reason:
            raise TypeError("attention_mask overrides the family rule and needs an attention_mask_reason")


def read_releases(path: Path = RELEASES_FILE) -> list[Release]:
    """releases.yaml validated into `Release`s (an unknown, missing or bad field is an error naming the entry)."""
    entries = yaml.safe_load(path.read_text()) or []
    releases = []
    for index, entry in enumerate(entries):
        try:
            releases.append(Release(**entry))
        except TypeError as err:
            raise ValueError(f"{path} entry {index + 1} ({entry.get('name', '?')}): {err}") from None
    return releases


def build_release(
    release: Release, ckpt: str | None = None, trust_checkpoint: bool = False, normalize: bool | None = None
) -> SpeechModelUpstream:
    """`release` fed as pinned; `ckpt` (directory, hub id or .pt) replaces its checkpoint and is then fed
    as that checkpoint says; `normalize` overrides do_normalize either way."""
    if ckpt:
        return load_speech_upstream(release.name, (ckpt,), override=True, trust_checkpoint=trust_checkpoint,
                                    normalize=normalize, attention_mask=release.attention_mask)
    return load_speech_upstream(release.name, (release.repo_id,), attention_mask=release.attention_mask,
                                normalize=release.do_normalize if normalize is None else normalize)


def _register(release: Release) -> None:
    def factory(
        ckpt: str | None = None, trust_checkpoint: bool = False, normalize: bool | None = None
    ) -> SpeechModelUpstream:
        """`ckpt`: directory, hub id or .pt overriding the release; `normalize` overrides do_normalize."""
        return build_release(release, ckpt, trust_checkpoint, normalize)

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
        input_pipeline=(
            ("waveform", "16 kHz mono float"), ("do_normalize", release.do_normalize),
            ("norm_eps", f"{HF_NORM_EPS} (hub directory) / {FAIRSEQ_NORM_EPS} (.pt file)"),
            ("normalized_over", "valid samples"),
            ("attention_mask", "family rule" if release.attention_mask is None else release.attention_mask),
            ("eval_batches", "equal-length groups where padding reaches the outputs"),
        ),
        architecture=(lambda: skeleton(release.architecture)) if release.architecture else None,
    )(factory)


def skeleton(architecture: dict[str, Any]) -> SpeechModelUpstream:
    """The release's model with random weights (sized by `upstream.architecture` on the meta device)."""
    from transformers import AutoConfig, AutoModel

    fields = dict(architecture)
    return SpeechModelUpstream(AutoModel.from_config(AutoConfig.for_model(fields.pop("model_type"), **fields)))


for _release in read_releases():
    _register(_release)
