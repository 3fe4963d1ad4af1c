"""Scoped randomness: library code never leaves the global RNG reseeded."""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch


@contextlib.contextmanager
def isolated_rng(seed: int) -> Iterator[torch.Generator]:
    """Run a block with torch's global RNG seeded to `seed`, restoring the caller's state afterwards.

    Module constructors and dropout draw from torch's global generator; forking it makes them
    reproducible from `seed` without changing the randomness seen outside the block. The yielded
    generator (seeded from `seed` too) is for everything that takes one explicitly.
    """
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield torch.Generator().manual_seed(seed + 1)
