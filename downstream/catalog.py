"""The aggregators a downstream can use, by name, and the table `--list-downstreams` prints."""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Callable

from torch import nn

from .ecapa import EcapaAggregator, EcapaConfig
from .pooling import MeanPooling

AggregatorFactory = Callable[[int, EcapaConfig], nn.Module]
"""(input_size, ecapa config) → module taking (B, T, H), (B,) → (B, output_size), with `output_size`."""


@dataclass(frozen=True)
class AggregatorEntry:
    name: str
    description: str
    factory: AggregatorFactory


DEFAULT_ECAPA = EcapaConfig()
AGGREGATORS: dict[str, AggregatorEntry] = {}


def register_aggregator(entry: AggregatorEntry) -> None:
    """Add an aggregator under `entry.name`; a name already taken is an error."""
    if entry.name in AGGREGATORS:
        raise ValueError(f"aggregator {entry.name!r} is already registered")
    AGGREGATORS[entry.name] = entry


def _mean(input_size: int, _: EcapaConfig) -> nn.Module:
    return MeanPooling(input_size)


def _ecapa(input_size: int, config: EcapaConfig) -> nn.Module:
    return EcapaAggregator(input_size, config)


register_aggregator(AggregatorEntry("mean", "masked mean over valid frames", _mean))
register_aggregator(AggregatorEntry("ecapa", "speechbrain ECAPA-TDNN, attentive statistics pooling", _ecapa))


def list_aggregators() -> list[str]:
    return list(AGGREGATORS)


def build_aggregator(name: str, input_size: int, ecapa: EcapaConfig = DEFAULT_ECAPA) -> nn.Module:
    """The aggregator called `name` for `input_size` features; `ecapa` sizes ECAPA (others ignore it)."""
    if name not in AGGREGATORS:
        close = difflib.get_close_matches(name, AGGREGATORS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown aggregator {name!r}{hint} (known: {', '.join(AGGREGATORS)})")
    return AGGREGATORS[name].factory(input_size, ecapa)


def output_size(aggregator: nn.Module) -> int:
    """The embedding size E of an aggregator built here (its `output_size` attribute)."""
    size = aggregator.output_size
    if not isinstance(size, int):
        raise TypeError(f"aggregator {type(aggregator).__name__} must set an int `output_size`, got {size!r}")
    return size


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def format_downstream_table(input_size: int = 768, ecapa: EcapaConfig = DEFAULT_ECAPA) -> str:
    """One row per aggregator: output dimension and parameter count for `input_size` features."""
    rows = [("aggregator", "output dim", "parameters", "description")]
    for entry in AGGREGATORS.values():
        module = entry.factory(input_size, ecapa)
        description = entry.description
        if isinstance(module, EcapaAggregator):
            description += f" ({ecapa.summary()})"
        rows.append((entry.name, str(output_size(module)), f"{count_parameters(module):,}", description))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [f"Downstream aggregators for input size {input_size} (classifier and featurizer not counted):"]
    lines += ["  ".join([r[0].ljust(widths[0]), r[1].rjust(widths[1]), r[2].rjust(widths[2]), r[3]]) for r in rows]
    lines.append("featurizers: last | weighted | <layer index>    fusion: none | early (+) | late (&)")
    return "\n".join(lines)
