"""Tiny random transformers speech encoders saved with `save_pretrained`, one per model_type of `hf:`."""
from __future__ import annotations

from pathlib import Path

import torch

from upstream.tiny import TINY_ARCHITECTURE

MODEL_TYPES = ("hubert", "wav2vec2", "wavlm", "data2vec-audio", "unispeech", "unispeech-sat", "whisper")
TINY_HF_PREFIX = "hf:tiny-"  # contract-test names: `hf:tiny-<model_type>` = `hf:<dir>` of `save_tiny`
WHISPER_WINDOW_SECONDS = 1  # tiny whisper: max_source_positions 50 -> 100 mel frames = 1 s per window


def tiny_config(model_type: str):
    from transformers import AutoConfig

    if model_type == "whisper":
        return AutoConfig.for_model(
            "whisper", d_model=32, encoder_layers=2, decoder_layers=1, encoder_attention_heads=2,
            decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, num_mel_bins=80,
            max_source_positions=50 * WHISPER_WINDOW_SECONDS, max_target_positions=16, vocab_size=64,
            pad_token_id=0, bos_token_id=1, eos_token_id=2, decoder_start_token_id=1)
    fields = dict(TINY_ARCHITECTURE)
    if model_type == "data2vec-audio":  # layer-normalised convs only; no such switches
        fields.pop("feat_extract_norm"), fields.pop("do_stable_layer_norm")
        fields["conv_pos_kernel_size"] = 5
    if model_type == "wavlm":
        fields.update(num_buckets=32, max_bucket_distance=100)
    return AutoConfig.for_model(model_type, **fields)


def save_tiny(model_type: str, directory: Path, seed: int = 0) -> Path:
    """A tiny random `model_type` model (and, for whisper, its feature extractor) saved in `directory`."""
    from transformers import AutoModel, WhisperFeatureExtractor

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModel.from_config(tiny_config(model_type))
    model.save_pretrained(directory)
    if model_type == "whisper":
        WhisperFeatureExtractor(feature_size=80, chunk_length=WHISPER_WINDOW_SECONDS).save_pretrained(directory)
    return directory
