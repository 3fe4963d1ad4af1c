"""Read Microsoft's original WavLM `.pt` files (unilm/wavlm; `{"cfg": WavLMConfig fields, "model": state
dict}`, as s3prl's WavLM expert loads them) onto transformers' `WavLMModel`, without their code.

Written here because transformers ships this conversion only as a one-off script, not as a loader.
WavLM's module tree is fairseq's plus the gated relative position bias of each attention layer
(`grep_linear`, `grep_a`; the bucket table `relative_attention_bias` in the first layer only).
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from .fairseq_ckpt import _KEY_MAP, _plain, load_mapped, map_state_dict, new_model, transformers_config

if TYPE_CHECKING:
    from transformers import PreTrainedModel

_WAVLM_KEY_MAP = [
    (r"^encoder\.layers\.(\d+)\.self_attn\.grep_linear\.(weight|bias)$", r"encoder.layers.\1.attention.gru_rel_pos_linear.\2"),
    (r"^encoder\.layers\.(\d+)\.self_attn\.grep_a$", r"encoder.layers.\1.attention.gru_rel_pos_const"),
    (r"^encoder\.layers\.(\d+)\.self_attn\.relative_attention_bias\.weight$", r"encoder.layers.\1.attention.rel_attn_embed.weight"),
    *_KEY_MAP,
]
_WAVLM_CFG_FIELDS = ("relative_position_embedding", "gru_rel_pos", "num_buckets", "max_distance")


def is_wavlm_checkpoint(state: dict[str, Any]) -> bool:
    """An original WavLM file: a flat `cfg` with WavLM's own fields and `model` (no fairseq model/task groups)."""
    cfg = state.get("cfg")
    if cfg is None or "model" not in state:
        return False
    cfg = _plain(cfg)
    return "model" not in cfg and any(name in cfg for name in _WAVLM_CFG_FIELDS)


def load_wavlm_model(state: dict[str, Any], path: Path) -> tuple[PreTrainedModel, bool]:
    """(transformers WavLMModel with the file's weights, its `cfg.normalize`)."""
    from transformers import WavLMModel

    cfg = _plain(state["cfg"])
    model = new_model(WavLMModel, transformers_config("wavlm", cfg))
    mapped = map_state_dict(state["model"], set(model.state_dict()), _WAVLM_KEY_MAP)
    return load_mapped(model, mapped, path), bool(cfg.get("normalize", False))
