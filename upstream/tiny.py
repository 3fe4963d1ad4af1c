"""Tiny random-initialised HuBERT / wav2vec 2.0 / WavLM: the real transformers architectures, CPU-fast.

Hidden size 32, 2 transformer layers, 2 heads, a 7-layer 16-channel conv encoder with the real
kernels and strides (320 samples per frame, 50 frames/s). Two families, as the releases come:
`tiny_<kind>`: layer-normalised convs and pre-LN blocks (the Large models: attention mask);
`tiny_<kind>_groupnorm`: group norm in the first conv and post-LN blocks (the Base models: no mask,
evaluated in equal-length groups). Weights depend only on `seed`: initialisation runs inside
`torch.random.fork_rng`, so building one never changes the caller's global RNG state.
"""
from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import torch

from .hf_speech import NO_STOCHASTIC_STRUCTURE, SpeechModelUpstream
from .hub import register_upstream

if TYPE_CHECKING:
    from transformers import PreTrainedModel

TINY_ARCHITECTURE: dict[str, Any] = dict(
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=64,
    conv_dim=(16,) * 7,
    conv_kernel=(10, 3, 3, 3, 3, 2, 2),
    conv_stride=(5, 2, 2, 2, 2, 2, 2),
    conv_bias=True,
    num_conv_pos_embeddings=16,
    num_conv_pos_embedding_groups=2,
    feat_extract_norm="layer",
    do_stable_layer_norm=True,
    **NO_STOCHASTIC_STRUCTURE,
)
TINY_WAVLM_POSITIONS: dict[str, Any] = {"num_buckets": 32, "max_bucket_distance": 100}  # relative-position table
KINDS = ("hubert", "wav2vec2", "wavlm")
GROUP_NORM_FAMILY: dict[str, Any] = {"feat_extract_norm": "group", "do_stable_layer_norm": False}
FAMILIES: dict[str, dict[str, Any]] = {"": {}, "_groupnorm": GROUP_NORM_FAMILY}  # name suffix -> overrides


def tiny_config(kind: str, **overrides: Any) -> Any:
    """The transformers config of tiny `kind` ("hubert" | "wav2vec2" | "wavlm"), with `overrides` applied."""
    from transformers import HubertConfig, Wav2Vec2Config, WavLMConfig

    config_class = {"hubert": HubertConfig, "wav2vec2": Wav2Vec2Config, "wavlm": WavLMConfig}[kind]
    extra = TINY_WAVLM_POSITIONS if kind == "wavlm" else {}
    return config_class(**{**TINY_ARCHITECTURE, **extra, **overrides})


def build_tiny_model(kind: str, seed: int = 0, **overrides: Any) -> PreTrainedModel:
    """A tiny transformers model whose weights are a function of `seed` alone (eval mode), a new copy
    each call (transformers' initialisation takes ≈ 0.5 s; a benchmark builds the same one many times)."""
    key = (kind, seed, tuple(sorted(overrides.items())))
    if key not in _BUILT:
        model_class = _model_classes()[kind]
        config = tiny_config(kind, **overrides)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            _BUILT[key] = model_class(config).eval()
    return copy.deepcopy(_BUILT[key])


_BUILT: dict[tuple, PreTrainedModel] = {}


def _model_classes() -> dict[str, Any]:
    from transformers import HubertModel, Wav2Vec2Model, WavLMModel

    return {"hubert": HubertModel, "wav2vec2": Wav2Vec2Model, "wavlm": WavLMModel}


def _register(kind: str, suffix: str) -> None:
    overrides = FAMILIES[suffix]

    def factory(seed: int = 0) -> SpeechModelUpstream:
        return SpeechModelUpstream(build_tiny_model(kind, seed, **overrides))

    family = "; group-norm convs, post-LN" if overrides else ""
    register_upstream(
        f"tiny_{kind}{suffix}",
        backend="tiny",
        source=f"random init (seed 0), transformers {kind} architecture{family}",
        hidden_size=TINY_ARCHITECTURE["hidden_size"],
        num_layers=TINY_ARCHITECTURE["num_hidden_layers"] + 1,
        downsample_rate=320,
        reference="tests and the CPU demo; no pretraining",
        licence="n/a",
        input_pipeline=(("waveform", "16 kHz mono float"), ("do_normalize", False)),
        architecture=lambda: SpeechModelUpstream(_model_classes()[kind](tiny_config(kind, **overrides))),
    )(factory)


for _kind in KINDS:
    for _suffix in FAMILIES:
        _register(_kind, _suffix)
