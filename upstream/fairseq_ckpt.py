"""Read fairseq wav2vec 2.0 / HuBERT checkpoints without fairseq, onto transformers' architectures.

fairseq 0.12.2 does not import on Python 3.11 and transformers 5 dropped its conversion scripts, so
this module maps fairseq's config fields and state-dict keys itself. Accepted layouts:
- fairseq (hydra): `{"cfg": {"model": {...}, "task": {...}}, "model": state_dict}`;
- fairseq (legacy): `{"args": argparse.Namespace(...), "model": state_dict}`;
- fine-tuned fairseq (`w2v_encoder.w2v_model.*` keys, config under `cfg.model.w2v_args`);
- s3prl's converted files: `{"task_cfg", "model_cfg", "model_weight"}`.
Reading is strict: a tensor the model has no place for is an error, except the pre-training-only
ones in `PRETRAINING_ONLY`.
"""
from __future__ import annotations

import argparse
import ast
import pickle
import re
import types
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from .checkpoints import UntrustedCheckpointError

if TYPE_CHECKING:
    from transformers import PreTrainedModel

DEFAULT_CONV_LAYERS = "[(512,10,5)] + [(512,3,2)] * 4 + [(512,2,2)] * 2"
_FINETUNED_PREFIX = "w2v_encoder.w2v_model."
# Pre-training-only tensors (targets, quantiser, prediction heads, the mask embedding): not part of
# the encoder, dropped. Any other tensor the model has no place for is an error naming it.
PRETRAINING_ONLY = re.compile(
    r"^(quantizer\.|project_q\.|final_proj\.|label_embs_concat$|target_glu\.|project_inp\.|mask_emb$)")
_KEY_MAP = [  # fairseq key (regex) -> transformers key; `{g}`/`{v}` = the model's weight-norm names
    (r"^feature_extractor\.conv_layers\.(\d+)\.0\.(weight|bias)$", r"feature_extractor.conv_layers.\1.conv.\2"),
    (r"^feature_extractor\.conv_layers\.(\d+)\.2\.(?:1\.)?(weight|bias)$", r"feature_extractor.conv_layers.\1.layer_norm.\2"),
    (r"^layer_norm\.(weight|bias)$", r"feature_projection.layer_norm.\1"),
    (r"^post_extract_proj\.(weight|bias)$", r"feature_projection.projection.\1"),
    (r"^encoder\.pos_conv\.0\.bias$", "encoder.pos_conv_embed.conv.bias"),
    (r"^encoder\.pos_conv\.0\.(?:weight_g|parametrizations\.weight\.original0)$", "{g}"),
    (r"^encoder\.pos_conv\.0\.(?:weight_v|parametrizations\.weight\.original1)$", "{v}"),
    (r"^encoder\.layer_norm\.(weight|bias)$", r"encoder.layer_norm.\1"),
    (r"^encoder\.layers\.(\d+)\.self_attn\.(q|k|v|out)_proj\.(weight|bias)$", r"encoder.layers.\1.attention.\2_proj.\3"),
    (r"^encoder\.layers\.(\d+)\.self_attn_layer_norm\.(weight|bias)$", r"encoder.layers.\1.layer_norm.\2"),
    (r"^encoder\.layers\.(\d+)\.fc1\.(weight|bias)$", r"encoder.layers.\1.feed_forward.intermediate_dense.\2"),
    (r"^encoder\.layers\.(\d+)\.fc2\.(weight|bias)$", r"encoder.layers.\1.feed_forward.output_dense.\2"),
    (r"^encoder\.layers\.(\d+)\.final_layer_norm\.(weight|bias)$", r"encoder.layers.\1.final_layer_norm.\2"),
]
_ACTIVATIONS = {"gelu": "gelu", "gelu_accurate": "gelu_new", "gelu_fast": "gelu_new", "relu": "relu", "swish": "swish"}


class _Missing:
    """Stand-in for a class of an absent package (fairseq's Dictionary, enums...): keeps its state, runs nothing."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        self.args = args

    def __setstate__(self, state: object) -> None:
        self.__dict__["state"] = state


class _FairseqFreeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if module == "fairseq" or module.startswith("fairseq."):
            return type(name, (_Missing,), {"__module__": module})
        return super().find_class(module, name)


# torch.load(pickle_module=...) wants a module-like object with `Unpickler` and `load`.
_FAIRSEQ_FREE_PICKLE = types.ModuleType("fairseq_free_pickle")
_FAIRSEQ_FREE_PICKLE.Unpickler = _FairseqFreeUnpickler  # type: ignore[attr-defined]
_FAIRSEQ_FREE_PICKLE.load = lambda file, **kwargs: _FairseqFreeUnpickler(file, **kwargs).load()  # type: ignore[attr-defined]


def read_checkpoint(path: Path, *, trust_checkpoint: bool = False) -> dict[str, Any]:
    """torch.load with `weights_only=True`; full unpickling (fairseq classes stubbed) only if trusted."""
    with path.open("rb") as handle:
        head = handle.read(2)
    if not zipfile.is_zipfile(path) and not head.startswith(b"\x80"):  # neither torch's zip nor legacy pickle
        raise ValueError(f"{path}: not a PyTorch checkpoint (corrupt or truncated file?); expected a file "
                         "written by torch.save, e.g. a fairseq .pt release")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        if not trust_checkpoint:
            raise UntrustedCheckpointError(
                f"{path} holds pickled Python objects besides tensors (fairseq stores its config and "
                "dictionaries that way) and unpickling can run arbitrary code; if you trust this file, "
                "pass --trust-checkpoint (trust_checkpoint=True)"
            ) from None
    try:
        return torch.load(path, map_location="cpu", weights_only=False, pickle_module=_FAIRSEQ_FREE_PICKLE)
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError(f"reading {path} needs the package {err.name!r}; pip install it") from None


def _plain(cfg: Any) -> dict[str, Any]:
    """A config object (dict, omegaconf DictConfig, argparse Namespace) as a plain dict."""
    if cfg is None:
        return {}
    if isinstance(cfg, dict):
        return cfg
    if type(cfg).__module__.startswith("omegaconf"):
        from omegaconf import OmegaConf

        return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    return dict(vars(cfg))


def split_checkpoint(state: dict[str, Any]) -> tuple[str, dict[str, Any], dict[str, Any], dict[str, Tensor]]:
    """(architecture "hubert"|"wav2vec2", model cfg, task cfg, encoder state dict with fairseq key names)."""
    if "model_weight" in state:  # s3prl converted
        model_cfg, task_cfg, weights = _plain(state["model_cfg"]), _plain(state.get("task_cfg")), state["model_weight"]
    elif state.get("cfg") is not None:
        cfg = _plain(state["cfg"])
        model_cfg, task_cfg, weights = _plain(cfg.get("model")), _plain(cfg.get("task")), state["model"]
    elif state.get("args") is not None:
        model_cfg = task_cfg = _plain(state["args"])
        weights = state["model"]
    else:
        raise ValueError("not a fairseq checkpoint: expected keys 'cfg' or 'args' with 'model', or s3prl's 'model_weight'")
    if any(key.startswith(_FINETUNED_PREFIX) for key in weights):
        model_cfg, task_cfg = finetuned_encoder_cfg(model_cfg, task_cfg)
        weights = {k[len(_FINETUNED_PREFIX):]: v for k, v in weights.items() if k.startswith(_FINETUNED_PREFIX)}
    arch = str(model_cfg.get("_name") or model_cfg.get("arch") or "")
    if arch.startswith("hubert") or "label_embs_concat" in weights:
        arch = "hubert"
    elif arch.startswith("wav2vec2") or arch == "" or "quantizer.vars" in weights:
        arch = "wav2vec2"
    else:
        raise ValueError(f"unsupported fairseq architecture {arch!r} (supported: hubert, wav2vec2)")
    return arch, model_cfg, task_cfg, weights


def finetuned_encoder_cfg(model_cfg: dict[str, Any], task_cfg: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(encoder model cfg, encoder task cfg) of a fine-tuned checkpoint, read as fairseq's Wav2VecEncoder does.

    `w2v_args` is the pre-training config: hydra-era files nest it (`model`, `task`); older ones store
    an `argparse.Namespace` with every field flat, which fairseq converts to one config holding both.
    `normalize` falls back to the fine-tuning config's own (fairseq asserts the two agree).
    """
    raw = model_cfg.get("w2v_args")
    inner = _plain(raw)
    if not inner:
        raise ValueError("fine-tuned fairseq checkpoint without 'w2v_args': its encoder config is unknown")
    if isinstance(raw, argparse.Namespace) or "model" not in inner:  # legacy: one flat namespace
        encoder_model, encoder_task = dict(inner), dict(inner)
    else:
        encoder_model, encoder_task = _plain(inner.get("model")), dict(_plain(inner.get("task")))
    if "normalize" not in encoder_task:
        for fallback in (task_cfg, model_cfg):
            if "normalize" in fallback:
                encoder_task["normalize"] = fallback["normalize"]
                break
    return encoder_model, encoder_task


def parse_conv_layers(spec: str) -> list[tuple[int, int, int]]:
    """fairseq's `conv_feature_layers` string, e.g. "[(512,10,5)] + [(512,3,2)] * 4", without eval()."""

    def value(node: ast.AST) -> Any:
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, (ast.List, ast.Tuple)):
            return [value(element) for element in node.elts]
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mult)):
            left, right = value(node.left), value(node.right)
            return left + right if isinstance(node.op, ast.Add) else left * right
        raise ValueError(f"unsupported conv_feature_layers expression: {spec!r}")

    return [tuple(layer) for layer in value(ast.parse(spec, mode="eval").body)]  # type: ignore[misc]


def transformers_config(arch: str, cfg: dict[str, Any]) -> Any:
    """The transformers config equivalent to fairseq (or original WavLM) model config `cfg` of `arch`
    ("hubert" | "wav2vec2" | "wavlm"), dropouts kept, layer drop off."""
    from transformers import HubertConfig, Wav2Vec2Config, WavLMConfig

    if cfg.get("layer_type", "transformer") != "transformer" or cfg.get("pos_conv_depth", 1) != 1:
        raise ValueError("only fairseq's standard transformer encoder is supported (no conformer, pos_conv_depth 1)")
    conv = parse_conv_layers(cfg.get("conv_feature_layers") or DEFAULT_CONV_LAYERS)
    fields = {
        "hidden_size": cfg.get("encoder_embed_dim", 768),
        "num_hidden_layers": cfg.get("encoder_layers", 12),
        "num_attention_heads": cfg.get("encoder_attention_heads", 12),
        "intermediate_size": cfg.get("encoder_ffn_embed_dim", 3072),
        "hidden_act": _ACTIVATIONS[str(cfg.get("activation_fn", "gelu"))],
        "conv_dim": [d for d, _, _ in conv],
        "conv_kernel": [k for _, k, _ in conv],
        "conv_stride": [s for _, _, s in conv],
        "conv_bias": bool(cfg.get("conv_bias", False)),
        "feat_extract_norm": "layer" if cfg.get("extractor_mode", "default") == "layer_norm" else "group",
        "feat_extract_activation": "gelu",
        "do_stable_layer_norm": bool(cfg.get("layer_norm_first", False)),
        "num_conv_pos_embeddings": cfg.get("conv_pos", 128),
        "num_conv_pos_embedding_groups": cfg.get("conv_pos_groups", 16),
        "hidden_dropout": cfg.get("dropout", 0.1),
        "attention_dropout": cfg.get("attention_dropout", 0.1),
        "activation_dropout": cfg.get("activation_dropout", 0.0),
        "feat_proj_dropout": cfg.get("dropout_input", 0.0),
        "layer_norm_eps": 1e-5,
        "layerdrop": 0.0,
        "apply_spec_augment": False,
    }
    if arch == "wavlm":
        if not cfg.get("relative_position_embedding", False) or not cfg.get("gru_rel_pos", False):
            raise ValueError("only WavLM with gated relative position bias is supported (as released)")
        return WavLMConfig(**fields, num_buckets=cfg.get("num_buckets", 320), max_bucket_distance=cfg.get("max_distance", 1280))
    return {"hubert": HubertConfig, "wav2vec2": Wav2Vec2Config}[arch](**fields)


def map_state_dict(
    weights: dict[str, Tensor], target_keys: set[str], key_map: list[tuple[str, str]] | None = None
) -> dict[str, Tensor]:
    """Rename fairseq encoder keys to transformers keys (`key_map`, default fairseq's); unknown keys are an
    error, pre-training-only tensors are dropped."""
    pos = "encoder.pos_conv_embed.conv."
    g, v = (pos + "parametrizations.weight.original0", pos + "parametrizations.weight.original1")
    if g not in target_keys:
        g, v = pos + "weight_g", pos + "weight_v"
    mapped: dict[str, Tensor] = {}
    for key, tensor in weights.items():
        if PRETRAINING_ONLY.match(key):
            continue
        for pattern, replacement in key_map or _KEY_MAP:
            if re.match(pattern, key):
                mapped[re.sub(pattern, replacement, key).format(g=g, v=v)] = tensor
                break
        else:
            raise ValueError(f"checkpoint tensor {key!r} has no place in the transformers model (and is not a "
                             "known pre-training-only tensor)")
    return mapped


def load_mapped(model: PreTrainedModel, mapped: dict[str, Tensor], path: Path) -> PreTrainedModel:
    """Load `mapped` into `model` strictly: every model tensor filled (the mask embedding may stay
    random: unused without masking), no tensor without a place, every shape as the model's."""
    target = model.state_dict()
    if "feature_projection.projection.weight" not in mapped and model.config.conv_dim[-1] == model.config.hidden_size:
        # fairseq has no post_extract_proj when conv and encoder widths agree: an identity projection
        mapped["feature_projection.projection.weight"] = torch.eye(model.config.hidden_size)
        mapped["feature_projection.projection.bias"] = torch.zeros(model.config.hidden_size)
    unexpected = sorted(set(mapped) - set(target))
    if unexpected:
        raise ValueError(f"{path}: checkpoint tensor(s) with no place in the model: {', '.join(unexpected[:5])}")
    missing = sorted(set(target) - set(mapped) - {"masked_spec_embed"})
    if missing:
        raise ValueError(f"{path}: checkpoint lacks weights for {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
    for key, tensor in mapped.items():
        if tensor.shape != target[key].shape:
            raise ValueError(f"{path}: tensor {key!r} has shape {tuple(tensor.shape)}, the model expects "
                             f"{tuple(target[key].shape)}")
    model.load_state_dict(mapped, strict=False)
    return model.eval()


def new_model(model_class: Any, config: Any) -> PreTrainedModel:
    with torch.random.fork_rng(devices=[]):  # random init is overwritten; leave the global RNG untouched
        return model_class(config)


def load_fairseq_model(state: dict[str, Any], path: Path) -> tuple[PreTrainedModel, bool]:
    """(transformers HubertModel | Wav2Vec2Model with the checkpoint's weights, task `normalize` flag)."""
    from transformers import HubertModel, Wav2Vec2Model

    arch, model_cfg, task_cfg, weights = split_checkpoint(state)
    config = transformers_config(arch, model_cfg)
    model = new_model(HubertModel if arch == "hubert" else Wav2Vec2Model, config)
    mapped = map_state_dict(weights, set(model.state_dict()))
    return load_mapped(model, mapped, path), bool(task_cfg.get("normalize", False))
