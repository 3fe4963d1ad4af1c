"""How big an upstream is, from its architecture alone: no weights, no checkpoint file, no network.

A registered upstream may give `UpstreamSpec.architecture`, a callable building its modules; here it
runs on PyTorch's `meta` device (shapes without storage, milliseconds even for Large models), so the
sizes of the paper profile's checkpoints are known on a machine that has none of them.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .hub import get_spec
from .interface import Upstream


@dataclass(frozen=True)
class ArchitectureSize:
    """Sizes of one upstream. `state_bytes`: its float32 state dict (parameters and buffers);
    `frozen_when_finetuned`: parameters `freeze_feature_encoder` excludes from training (the conv
    waveform encoder); the transformer dimensions are 0 where there is no transformer (fbank)."""

    parameters: int
    state_bytes: int
    frozen_when_finetuned: int
    tensors: int = 0  # entries of the state dict
    key_chars: int = 0  # characters of their names (safetensors headers hold them)
    transformer_layers: int = 0
    hidden_size: int = 0
    intermediate_size: int = 0
    attention_heads: int = 0
    conv_channels: int = 0  # width of the first conv layer of a waveform encoder (its activations are the largest)

    @property
    def trainable_when_finetuned(self) -> int:
        return self.parameters - self.frozen_when_finetuned


def _config(module: nn.Module) -> Any:
    for owner in (module, getattr(module, "model", None), getattr(module, "encoder", None)):
        config = getattr(owner, "config", None)
        if config is not None:
            return config
    return None


def measure(build: Callable[[], nn.Module]) -> ArchitectureSize:
    """Build the modules on the meta device and measure them."""
    with torch.device("meta"), torch.random.fork_rng(devices=[]):
        module = build()
    parameters = sum(p.numel() for p in module.parameters())
    state = module.state_dict()
    state_bytes = sum(t.numel() * 4 if t.is_floating_point() else t.numel() * t.element_size() for t in state.values())
    frozen = 0
    if isinstance(module, Upstream):
        module.requires_grad_(True)
        module.freeze_feature_encoder()
        frozen = sum(p.numel() for p in module.parameters() if not p.requires_grad)
    config = _config(module)
    conv = getattr(config, "conv_dim", None)
    return ArchitectureSize(
        parameters=parameters,
        state_bytes=state_bytes,
        frozen_when_finetuned=frozen,
        tensors=len(state),
        key_chars=sum(len(key) for key in state),
        transformer_layers=int(getattr(config, "num_hidden_layers", getattr(config, "encoder_layers", 0)) or 0),
        hidden_size=int(getattr(config, "hidden_size", getattr(config, "d_model", 0)) or 0),
        intermediate_size=int(getattr(config, "intermediate_size", getattr(config, "encoder_ffn_dim", 0)) or 0),
        attention_heads=int(getattr(config, "num_attention_heads", getattr(config, "encoder_attention_heads", 0)) or 0),
        conv_channels=int(conv[0]) if conv else 0,
    )


def architecture_size(name: str) -> ArchitectureSize | None:
    """Sizes of registered upstream `name`, or None where its spec gives no architecture (e.g. `s3prl:`)."""
    spec = get_spec(name)
    return measure(spec.architecture) if spec.architecture is not None else None
