"""`.pt` checkpoint files of the wav2vec 2.0 family: fairseq (HuBERT, wav2vec 2.0) or original WavLM."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .fairseq_ckpt import load_fairseq_model, read_checkpoint
from .wavlm_ckpt import is_wavlm_checkpoint, load_wavlm_model

if TYPE_CHECKING:
    from transformers import PreTrainedModel


def load_pt_model(path: Path, *, trust_checkpoint: bool = False) -> tuple[PreTrainedModel, bool]:
    """(transformers model holding the file's encoder weights, whether pre-training normalised the waveform)."""
    state = read_checkpoint(path, trust_checkpoint=trust_checkpoint)
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a dict saved by torch.save (fairseq or WavLM checkpoint), got {type(state).__name__}")
    try:
        if is_wavlm_checkpoint(state):
            return load_wavlm_model(state, path)
        return load_fairseq_model(state, path)
    except ValueError as err:  # every message names the file once
        message = str(err)
        raise ValueError(message if message.startswith(str(path)) else f"{path}: {message}") from None
