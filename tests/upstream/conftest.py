"""Fixtures of the upstream tests: fake waveforms, and registry upstreams built once per session."""
from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import Tensor

from upstream import CheckpointNotFoundError, Upstream, build_upstream

FakeWavs = Callable[..., tuple[Tensor, Tensor]]


def _fake_wavs(lengths: list[int], seed: int = 0) -> tuple[Tensor, Tensor]:
    generator = torch.Generator().manual_seed(seed)
    wavs = torch.zeros(len(lengths), max(lengths))
    for row, n in enumerate(lengths):
        t = torch.arange(n) / 16_000
        tone = 0.3 * torch.sin(2 * torch.pi * (120 + 40 * row) * t)
        wavs[row, :n] = tone + 0.05 * torch.randn(n, generator=generator)
    return wavs, torch.tensor(lengths)


@pytest.fixture(scope="module", autouse=True)
def one_intra_op_thread():
    """Tiny models run ~50x slower with 2 intra-op threads on a busy 2-core machine (spin-waiting)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def fake_wavs() -> FakeWavs:
    """`fake_wavs(lengths, seed=0)`: zero-padded tone + noise, wavs (B, max(lengths)) and wav_lens (B,)."""
    return _fake_wavs


@pytest.fixture(scope="session")
def built(tmp_path_factory) -> Callable[[str], Upstream]:
    """`built(name)`: the registry's upstream, built once per session (eval mode, no grads);
    skips, with the reason, names whose checkpoint or package is not available offline.
    `hf:tiny-<model_type>` builds `hf:<dir>` of a tiny random model saved with save_pretrained."""
    from tiny_hf import TINY_HF_PREFIX, save_tiny

    cache: dict[str, Upstream | str] = {}

    def get(name: str) -> Upstream:
        if name not in cache:
            try:
                if name.startswith(TINY_HF_PREFIX):
                    model_type = name[len(TINY_HF_PREFIX):]
                    directory = save_tiny(model_type, tmp_path_factory.mktemp(model_type))
                    cache[name] = build_upstream(f"hf:{directory}")
                else:
                    cache[name] = build_upstream(name)
            except (CheckpointNotFoundError, ModuleNotFoundError) as err:
                cache[name] = f"{name} is not buildable offline: {err}"
        entry = cache[name]
        if isinstance(entry, str):
            pytest.skip(entry)
        entry.eval().zero_grad(set_to_none=True)
        return entry

    return get
