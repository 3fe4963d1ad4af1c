"""`s3prl:<name>`: any upstream of s3prl's hub (`s3prl.nn.S3PRLUpstream`) through our interface.

Named s3prl upstreams download their checkpoint on first use; offline, they work only from s3prl's
cache or with `ckpt=PATH` (e.g. `s3prl:hubert_local` with a converted checkpoint). Feature
baselines such as `s3prl:mfcc` or `s3prl:fbank` need no download.
"""
from __future__ import annotations

import difflib
import importlib.util
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence

from .checkpoints import CheckpointNotFoundError
from .hub import UnknownUpstreamError, register_namespace
from .interface import Upstream, UpstreamOutput

S3PRL_VERSION = "0.4.18"


class S3prlUpstream(Upstream):
    """Wraps an `S3PRLUpstream`-like module: `forward(wavs (B,S), wavs_len (B,)) -> ([B,T,H] * L, [(B,)] * L)`.

    By default each utterance runs alone (`per_utterance=True`): s3prl's batch path reports lengths
    `(n - 1) // stride + 1` and fills the frames past a row's real features with zeros in a batch but
    with copies of the last frame alone, so batched outputs depend on padding. `per_utterance=False`
    runs the batch at once (faster; `padding_invariant` is then False).
    """

    def __init__(self, inner: Any, *, per_utterance: bool = True) -> None:
        super().__init__()
        sizes, rates = set(inner.hidden_sizes), set(inner.downsample_rates)
        if len(sizes) != 1 or len(rates) != 1:
            raise ValueError(f"s3prl upstream with per-layer sizes {sizes} / rates {rates}: one of each is required")
        self.inner = inner
        self.per_utterance = per_utterance
        self.padding_invariant = per_utterance
        self.num_layers = inner.num_layers
        self.hidden_size = sizes.pop()
        self.downsample_rate = rates.pop()

    def forward(self, wavs: Tensor, wav_lens: Tensor) -> UpstreamOutput:
        wav_lens = wav_lens.to(wavs.device).long()
        if not self.per_utterance:
            hidden_states, lengths = self.inner(wavs, wav_lens)
            return UpstreamOutput(hidden_states=list(hidden_states), lengths=lengths[0].long())
        rows = [self.inner(wavs[i : i + 1, : int(n)], wav_lens[i : i + 1]) for i, n in enumerate(wav_lens.tolist())]
        hidden_states = [
            pad_sequence([states[layer][0, : int(lens[0][0])] for states, lens in rows], batch_first=True)
            for layer in range(self.num_layers)
        ]
        lengths = torch.cat([lens[0] for _, lens in rows]).long()
        return UpstreamOutput(hidden_states=hidden_states, lengths=lengths)


def s3prl_installed() -> bool:
    return importlib.util.find_spec("s3prl") is not None


@register_namespace(
    "s3prl",
    backend="s3prl",
    example="mfcc",
    reference=f"s3prl {S3PRL_VERSION} hub (Yang et al., SUPERB, Interspeech 2021)",
    available=s3prl_installed,
)
def build_s3prl(inner_name: str, ckpt: str | None = None, per_utterance: bool = True) -> S3prlUpstream:
    """`s3prl:<inner_name>`; `ckpt` is passed to s3prl as `path_or_url` (required by `*_local` upstreams)."""
    if not s3prl_installed():
        raise ModuleNotFoundError(f"upstream 's3prl:{inner_name}' needs s3prl: pip install s3prl=={S3PRL_VERSION}")
    from ._s3prl_compat import import_s3prl_upstream

    s3prl_upstream = import_s3prl_upstream()
    names = s3prl_upstream.available_names()
    if inner_name not in names:
        close = difflib.get_close_matches(inner_name, names, n=3, cutoff=0.5)
        raise UnknownUpstreamError(
            f"s3prl has no upstream {inner_name!r}" + (f"; did you mean {', '.join(close)}?" if close else "")
        )
    if ckpt and not ckpt.startswith(("http://", "https://")):
        if not Path(ckpt).expanduser().exists():
            raise CheckpointNotFoundError(f"upstream 's3prl:{inner_name}': --upstream-ckpt {ckpt!r} does not exist")
        ckpt = str(Path(ckpt).expanduser())
    try:
        inner = s3prl_upstream(inner_name, path_or_url=ckpt)
    except OSError as err:  # requests' ConnectionError is an OSError: the checkpoint was not cached
        raise CheckpointNotFoundError(
            f"upstream 's3prl:{inner_name}': s3prl could not fetch its checkpoint offline ({type(err).__name__}); "
            "pass --upstream-ckpt PATH to a local checkpoint, or run it once on a connected machine "
            "and copy s3prl's cache (~/.cache/s3prl) here"
        ) from None
    return S3prlUpstream(inner, per_utterance=per_utterance)
