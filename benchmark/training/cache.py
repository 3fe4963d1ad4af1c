"""Hidden states of frozen upstreams, computed once per utterance and kept on disk for reuse.

A cache file holds the selected layers of every utterance of a set (e.g. one fold's train, valid and
test) and is keyed by the upstream's weights, the layer selection, the storage dtype and a
fingerprint of the audio files, so different experiments on the same features share it, and
changed weights or audio never reuse stale features.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal, Sequence

import torch
from safetensors.torch import load_file, save
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence

from upstream.interface import Upstream, UpstreamOutput

from ..common.io import atomic_write_bytes
from ..data.fingerprint import data_fingerprint
from ..data.iemocap import Utterance
from .batching import AudioStore, duration_batches, make_batch
from .device import Precision, autocast

LayerSelection = Literal["all", "last"] | int
CACHE_DTYPES = {"float32": torch.float32, "float16": torch.float16}


def pad_outputs(
    per_utterance: Sequence[list[Tensor]], dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu"
) -> UpstreamOutput:
    """Stack per-utterance hidden states (each a list of (T_i, H) layers) into one zero-padded output on
    `device`, as `dtype`. Padding runs in C++ (`pad_sequence`) in the stored dtype; towards a GPU the
    batch goes through pinned memory with a non-blocking copy and is converted there (half the bytes
    for float16 caches), so the host does not wait for the transfer."""
    lengths = torch.tensor([layers[0].shape[0] for layers in per_utterance], dtype=torch.long)
    device = torch.device(device)
    hidden_states = []
    for layer in range(len(per_utterance[0])):
        padded = pad_sequence([layers[layer] for layers in per_utterance], batch_first=True)
        if device.type == "cuda":
            padded = padded.pin_memory().to(device, non_blocking=True)
        hidden_states.append(padded.to(device, dtype))
    return UpstreamOutput(hidden_states, lengths.to(device, non_blocking=True))


def weights_fingerprint(upstream: Upstream) -> str:
    digest = hashlib.sha256(f"{type(upstream).__qualname__}|{upstream.name}".encode())
    for key, value in sorted(upstream.state_dict().items()):
        digest.update(key.encode())
        digest.update(value.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def select_layers(hidden_states: Sequence[Tensor], layers: LayerSelection) -> list[Tensor]:
    if layers == "all":
        return list(hidden_states)
    if layers == "last":
        return [hidden_states[-1]]
    return [hidden_states[layers]]


class FrozenFeatures:
    """A frozen upstream's selected hidden states (valid frames only) by utterance id.

    With `cache_dir`, `precompute` reads them from (or writes them to) one safetensors file per
    utterance set and key; without, they are kept in memory only.
    """

    def __init__(
        self,
        upstream: Upstream,
        store: AudioStore,
        max_batch_seconds: float = 60.0,
        layers: LayerSelection = "all",
        cache_dir: Path | None = None,
        dtype: str = "float32",
        precision: Precision = "auto",
    ) -> None:
        if dtype not in CACHE_DTYPES:
            raise ValueError(f"cache dtype {dtype!r} is not one of {', '.join(CACHE_DTYPES)}")
        self.upstream, self.store, self.layers = upstream, store, layers
        self.max_batch_seconds, self.cache_dir, self.dtype = max_batch_seconds, cache_dir, CACHE_DTYPES[dtype]
        self.files: list[Path] = []  # the cache files this store read or wrote
        self.precision = precision  # of the upstream's forward pass (see device.autocast)
        self._features: dict[str, list[Tensor]] = {}
        self.cache_hits = 0

    def cache_file(self, utterances: Sequence[Utterance]) -> Path:
        assert self.cache_dir is not None
        identity = f"{weights_fingerprint(self.upstream)}|{self.layers}|{self.dtype}|{data_fingerprint(utterances)}"
        if self.precision != "auto":  # "auto" keeps the keys of caches written before the option existed
            identity += f"|{self.precision}"
        key = hashlib.sha256(identity.encode()).hexdigest()[:24]
        return self.cache_dir / f"{self.upstream.name.replace(':', '_')}-{key}.safetensors"

    @torch.no_grad()
    def precompute(self, utterances: Sequence[Utterance]) -> None:
        missing = [u for u in utterances if u.id not in self._features]
        if not missing:
            return
        path = self.cache_file(missing) if self.cache_dir is not None else None
        if path is not None:
            self.files.append(path)
        if path is not None and path.is_file():
            try:
                stored = load_file(str(path))
                for u in missing:
                    count = int(stored[f"{u.id}/layers"].item())
                    self._features[u.id] = [stored[f"{u.id}/{i}"] for i in range(count)]
                self.cache_hits += 1
                return
            except Exception as error:  # truncated or foreign file: recompute and overwrite
                print(f"note: feature cache {path} unreadable ({error}); recomputing")
        self.upstream.eval()
        device = next(self.upstream.parameters(), torch.empty(0)).device
        for indices in duration_batches([u.duration for u in missing], self.max_batch_seconds):
            batch = make_batch([missing[i] for i in indices], self.store).to(device)
            with autocast(device, self.precision):
                output = self.upstream.extract(batch)
            for row, uid in enumerate(batch.ids):
                n = int(output.lengths[row])
                selected = select_layers(output.hidden_states, self.layers)
                self._features[uid] = [layer[row, :n].float().to("cpu", self.dtype).clone() for layer in selected]
        if path is not None:
            tensors: dict[str, Tensor] = {}
            for u in missing:
                tensors[f"{u.id}/layers"] = torch.tensor(len(self._features[u.id]))
                tensors.update({f"{u.id}/{i}": t for i, t in enumerate(self._features[u.id])})
            atomic_write_bytes(path, save(tensors))

    @property
    def num_layers(self) -> int:
        return self.upstream.num_layers if self.layers == "all" else 1

    def outputs(self, utterance_ids: Sequence[str], device: torch.device | str = "cpu") -> UpstreamOutput:
        """Padded float32 hidden states of the given utterances (all precomputed), on `device`."""
        return pad_outputs([self._features[uid] for uid in utterance_ids], device=device)
