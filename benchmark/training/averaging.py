"""Top-k checkpoint bookkeeping and weight averaging (the paper's "AVG" rows)."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Mapping, Sequence

import torch
from torch import Tensor


def average_state_dicts(states: Sequence[Mapping[str, Tensor]]) -> dict[str, Tensor]:
    """Element-wise mean of floating-point entries (computed in float64, cast back to each dtype).

    Non-float entries (e.g. BatchNorm's integer `num_batches_tracked` counter) cannot be averaged
    meaningfully; they are taken from the first state, which callers pass as the best checkpoint.
    """
    if not states:
        raise ValueError("no state dicts to average")
    keys = list(states[0])
    for index, state in enumerate(states[1:], 1):
        if set(state) != set(keys):
            missing = set(keys) ^ set(state)
            raise ValueError(f"state dict {index} has different entries from state dict 0 (e.g. {sorted(missing)[:3]})")
    averaged: dict[str, Tensor] = {}
    for key in keys:
        first = states[0][key]
        if first.is_floating_point():
            total = torch.stack([state[key].detach().to(torch.float64) for state in states]).mean(dim=0)
            averaged[key] = total.to(first.dtype)
        else:
            averaged[key] = first.detach().clone()
    return averaged


@dataclass(frozen=True)
class RankedCheckpoint:
    epoch: int
    accuracy: float
    file: str
    sha256: str

    def to_dict(self) -> dict:
        return asdict(self)


def rank_key(entry: RankedCheckpoint) -> tuple[float, int]:
    """Higher validation accuracy first; on ties the earlier epoch ranks higher (it is kept)."""
    return (-entry.accuracy, entry.epoch)


def update_top_k(kept: Sequence[RankedCheckpoint], candidate: RankedCheckpoint, k: int) -> tuple[list[RankedCheckpoint], bool]:
    """The k best of `kept` + `candidate`, best first, and whether the candidate is among them.

    A candidate that only ties the k-th kept checkpoint does not displace it (earlier wins).
    """
    if k < 1:
        raise ValueError(f"top-k needs k >= 1, got {k}")
    ranked = sorted([*kept, candidate], key=rank_key)[:k]
    return ranked, candidate in ranked
