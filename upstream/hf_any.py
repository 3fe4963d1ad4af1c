"""`hf:<hub id or local directory>`: any transformers speech encoder as an upstream, by its config's model_type.

wav2vec 2.0-family types (HuBERT, wav2vec 2.0 incl. XLS-R and MMS, WavLM, data2vec-audio,
UniSpeech, UniSpeech-SAT) become a `SpeechModelUpstream` (attention mask by the family rule,
`do_normalize` from the directory's preprocessor_config.json: no release pins it); `whisper` becomes
its encoder (`WhisperEncoderUpstream`). Hub ids are read from the local cache only.
"""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from .checkpoints import CheckpointNotFoundError, find_checkpoint, hf_cache_dir
from .hf_speech import HF_NORM_EPS, SpeechModelUpstream, load_model_dir, read_do_normalize
from .hub import register_namespace
from .interface import Upstream

WAV2VEC2_FAMILY = ("hubert", "wav2vec2", "wavlm", "data2vec-audio", "unispeech", "unispeech-sat")
SUPPORTED_TYPES = (*WAV2VEC2_FAMILY, "whisper")


def _config(path: Path) -> dict[str, Any]:
    config_file = path / "config.json"
    if not config_file.is_file():
        raise CheckpointNotFoundError(f"hf:{path}: no config.json there; expected a transformers model directory "
                                      "(save_pretrained output) or a cached hub id")
    return json.loads(config_file.read_text())


def _model_type(path: Path, config: dict[str, Any]) -> str:
    model_type = str(config.get("model_type", ""))
    if model_type not in SUPPORTED_TYPES:
        raise ValueError(f"hf:{path}: config.json model_type {model_type!r} is not a supported speech encoder "
                         f"(supported: {', '.join(SUPPORTED_TYPES)})")
    return model_type


def describe(inner: str) -> dict[str, object]:
    """Spec fields of `hf:<inner>` from its config.json alone (no weights), or {} when it is not found."""
    path = find_checkpoint((inner,))
    if path is None or not (path / "config.json").is_file():
        return {}
    config = _config(path)
    model_type = config.get("model_type", "")
    weights = next((path / name for name in ("model.safetensors", "pytorch_model.bin") if (path / name).is_file()), None)
    fields: dict[str, object] = {"source": f"transformers {model_type} from {path}"}
    if model_type == "whisper":
        fields.update(hidden_size=config.get("d_model", 0), num_layers=config.get("encoder_layers", -1) + 1,
                      downsample_rate=320, input_pipeline=(("features", "whisper log-mel (own feature extractor)"),
                                                           ("long_input", "chunked into encoder windows")))
    elif model_type in WAV2VEC2_FAMILY:
        rate = math.prod(int(stride) for stride in config.get("conv_stride", [5, 2, 2, 2, 2, 2, 2]))
        fields.update(hidden_size=config.get("hidden_size", 0), num_layers=config.get("num_hidden_layers", -1) + 1,
                      downsample_rate=rate, input_pipeline=(
                          ("waveform", "16 kHz mono float"),
                          ("do_normalize", read_do_normalize(path, SimpleNamespace(**config))), ("norm_eps", HF_NORM_EPS),
                          ("attention_mask", "family rule")))
    if model_type in SUPPORTED_TYPES:
        fields["architecture"] = lambda: _skeleton(path)
    if weights is not None:  # another checkpoint at the same path is another upstream
        stat = weights.stat()
        fields["input_pipeline"] = (*fields.get("input_pipeline", ()), ("weights", hashlib.sha256(  # type: ignore[misc]
            f"{weights.name}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:16]))
    return fields


def _skeleton(path: Path) -> Upstream:
    """The model of `path` with random weights, from its config.json alone (sized on the meta device)."""
    from transformers import AutoConfig, AutoModel

    config = AutoConfig.from_pretrained(path, local_files_only=True)
    if config.model_type == "whisper":
        from transformers import WhisperFeatureExtractor, WhisperModel

        from .whisper import WhisperEncoderUpstream

        extractor = WhisperFeatureExtractor(feature_size=config.num_mel_bins)
        return WhisperEncoderUpstream(WhisperModel(config).get_encoder(), extractor)
    return SpeechModelUpstream(AutoModel.from_config(config))


@register_namespace(
    "hf",
    backend="transformers",
    placeholder="<hub id or model dir>",
    reference="any transformers speech encoder: " + ", ".join(SUPPORTED_TYPES),
    describe=describe,
)
def build_hf(inner_name: str, normalize: bool | None = None) -> Upstream:
    """`normalize` overrides the directory's do_normalize (wav2vec 2.0 family only)."""
    path = find_checkpoint((inner_name,))
    if path is None:
        raise CheckpointNotFoundError(
            f"upstream 'hf:{inner_name}': {inner_name!r} is neither a local directory nor a hub id in the Hugging "
            f"Face cache {hf_cache_dir()} (this machine is offline); save the model there first (`hf download "
            f"{inner_name}` on a connected machine, or save_pretrained) and pass its directory")
    model_type = _model_type(path, _config(path))
    if model_type == "whisper":
        from .whisper import load_whisper_encoder

        return load_whisper_encoder(path)
    model = load_model_dir(path)
    do_normalize = read_do_normalize(path, model.config) if normalize is None else normalize
    return SpeechModelUpstream(model, do_normalize=do_normalize)
