"""The downstream assembled from a typed config: featurizer → [fusion] → aggregator → classifier.

    fusion "none":  one branch     featurizer → aggregator                       → classifier
    fusion "early": branches (+)   featurizer_i → align + concat → aggregator    → classifier
    fusion "late":  branches (&)   featurizer_i → aggregator_i → concat          → classifier

Every field of `DownstreamConfig` is a plain value (str, int, float, tuple) or a nested frozen
dataclass, so an experiment file describes any Table 1 row.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence, TypeVar

from torch import Tensor, nn

from upstream.interface import UpstreamOutput

from .catalog import AGGREGATORS, build_aggregator, output_size
from .classifier import Classifier
from .ecapa import EcapaConfig
from .featurizer import LayerSpec, WeightedLayerSum, build_featurizer, check_layer_spec
from .fusion import FRAME_RATES, EarlyFusion, LateFusion
from .normalization import INPUT_NORMS, build_input_norm

FUSIONS: tuple[str, ...] = ("none", "early", "late")
TASKS: tuple[str, ...] = ("categorical", "dimensional", "both")
NUM_ATTRIBUTES = 3  # arousal, valence, dominance, each regressed on [0, 1]


@dataclass(frozen=True)
class BranchSpec:
    """What the downstream needs to know of one upstream feeding it (downsample_rate 0: text tokens)."""

    num_layers: int
    hidden_size: int
    downsample_rate: int


@dataclass(frozen=True)
class DownstreamConfig:
    """Typed description of a downstream.

    featurizer: "last" | "weighted" | layer index, or a tuple of those, one per branch.
    aggregator: "mean" | "ecapa"; with fusion "late", optionally a tuple, one per branch.
    fusion: "none" (exactly one branch) | "early" (`+`) | "late" (`&`).
    classifier_hidden: 0 = linear classifier, else the hidden width of a one-hidden-layer MLP.
    dropout: dropout before the classifier's layers.
    fusion_frame_rate: early fusion's common frame rate, "coarsest" or "finest" (see `fusion`).
    input_norm: normalisation of each branch's features (`normalization.INPUT_NORMS`: "none", "global",
        "sentence", "sentence_mean"), one mode or one per branch; true/false (older configs) mean
        "global"/"none".
    ecapa: sizes of every ECAPA aggregator.
    """

    featurizer: LayerSpec | tuple[LayerSpec, ...] = "last"
    aggregator: str | tuple[str, ...] = "mean"
    fusion: str = "none"
    classifier_hidden: int = 0
    dropout: float = 0.0
    num_classes: int = 4
    task: str = "categorical"  # "categorical" (class logits) | "dimensional" (arousal, valence, dominance) | "both"
    fusion_frame_rate: str = "coarsest"
    input_norm: str | tuple[str, ...] | bool = "none"
    ecapa: EcapaConfig = field(default_factory=EcapaConfig)

    def __post_init__(self) -> None:
        if isinstance(self.input_norm, bool):  # configs written before per-branch modes
            object.__setattr__(self, "input_norm", "global" if self.input_norm else "none")
        for name in ("featurizer", "aggregator", "input_norm"):  # accept YAML lists; store hashable tuples
            if isinstance(getattr(self, name), list):
                object.__setattr__(self, name, tuple(getattr(self, name)))
        featurizers = self.featurizer if isinstance(self.featurizer, tuple) else (self.featurizer,)
        for spec in featurizers:
            check_layer_spec(spec)
        aggregators = self.aggregator if isinstance(self.aggregator, tuple) else (self.aggregator,)
        for name in aggregators:
            if name not in AGGREGATORS:
                raise ValueError(f"unknown aggregator {name!r}; expected one of {', '.join(AGGREGATORS)}")
        norms = self.input_norm if isinstance(self.input_norm, tuple) else (self.input_norm,)
        for mode in norms:
            if mode not in INPUT_NORMS:
                raise ValueError(f"input_norm: unknown mode {mode!r}; expected one of {', '.join(INPUT_NORMS)}")
        if self.fusion not in FUSIONS:
            raise ValueError(f"unknown fusion {self.fusion!r}; expected one of {', '.join(FUSIONS)}")
        if len(aggregators) > 1 and self.fusion != "late":
            raise ValueError("one aggregator per branch needs fusion: late; give a single aggregator name")
        if self.fusion_frame_rate not in FRAME_RATES:
            raise ValueError(
                f"unknown fusion_frame_rate {self.fusion_frame_rate!r}; expected one of {', '.join(FRAME_RATES)}"
            )
        if self.task not in TASKS:
            raise ValueError(f"unknown task {self.task!r}; expected one of {', '.join(TASKS)}")
        if self.classifier_hidden < 0 or self.num_classes < 2 or not 0.0 <= self.dropout < 1.0:
            raise ValueError(
                "need classifier_hidden >= 0, num_classes >= 2 and 0 <= dropout < 1, got "
                f"{self.classifier_hidden}, {self.num_classes}, {self.dropout}"
            )


    @property
    def class_outputs(self) -> int:
        """Class logits among the outputs (first), 0 for the dimensional task."""
        return 0 if self.task == "dimensional" else self.num_classes

    @property
    def outputs(self) -> int:
        """Width of the head's output: class logits, then the attributes for dimensional tasks."""
        return self.class_outputs + (NUM_ATTRIBUTES if self.task != "categorical" else 0)


def split_outputs(outputs: Tensor, config: DownstreamConfig) -> tuple[Tensor | None, Tensor | None]:
    """(class logits, attributes) of a head's (B, outputs) output; None where the task has none."""
    classes = config.class_outputs
    logits = outputs[:, :classes] if classes else None
    attributes = outputs[:, classes:] if config.task != "categorical" else None
    return logits, attributes


T = TypeVar("T")


def _per_branch(value: T | tuple[T, ...], count: int, name: str) -> list[T]:
    """A config value broadcast to `count` branches, or its tuple checked to hold one per branch."""
    if not isinstance(value, tuple):
        return [value] * count
    if len(value) == 1:
        return list(value) * count
    if len(value) != count:
        raise ValueError(f"{name} lists {len(value)} values for {count} branches; give one value or one per branch")
    return list(value)


class DownstreamModel(nn.Module):
    """Upstream outputs, one per branch in `branches` order → (B, num_classes) logits."""

    def __init__(self, config: DownstreamConfig, branches: Sequence[BranchSpec]) -> None:
        super().__init__()
        if not branches:
            raise ValueError("a downstream needs at least one branch")
        if config.fusion == "none" and len(branches) != 1:
            raise ValueError(f"{len(branches)} branches need fusion: early or late (got fusion: none)")
        self.config = config
        self.branches = tuple(branches)
        layer_specs: list[LayerSpec] = _per_branch(config.featurizer, len(branches), "featurizer")
        self.featurizers = nn.ModuleList(
            build_featurizer(spec, branch.num_layers) for spec, branch in zip(layer_specs, branches, strict=True)
        )
        norms = _per_branch(config.input_norm, len(branches), "input_norm")
        # one entry per branch (Identity for "none"); None when no branch is normalised, as before modes existed
        self.input_norms = (
            nn.ModuleList(build_input_norm(m, b.hidden_size) or nn.Identity() for m, b in zip(norms, branches))
            if any(m != "none" for m in norms) else None
        )
        self.early: EarlyFusion | None = None
        self.late: LateFusion | None = None
        self.aggregator: nn.Module | None = None
        if config.fusion == "late":
            names = _per_branch(config.aggregator, len(branches), "aggregator")
            self.late = LateFusion(
                [build_aggregator(n, b.hidden_size, config.ecapa) for n, b in zip(names, branches, strict=True)]
            )
            self.output_size = self.late.output_size
        else:
            if config.fusion == "early":
                self.early = EarlyFusion([b.downsample_rate for b in branches], config.fusion_frame_rate)
            (name,) = _per_branch(config.aggregator, 1, "aggregator")
            self.aggregator = build_aggregator(name, sum(b.hidden_size for b in branches), config.ecapa)
            self.output_size = output_size(self.aggregator)
        # one head for both tasks: its first rows are the class logits, the last three the attributes
        self.classifier = Classifier(self.output_size, config.outputs, config.classifier_hidden, config.dropout)

    def embed(self, outputs: Sequence[UpstreamOutput]) -> Tensor:
        """Upstream outputs → (B, output_size) utterance embeddings (the classifier's input)."""
        if len(outputs) != len(self.branches):
            raise ValueError(f"downstream built for {len(self.branches)} branches got {len(outputs)} upstream outputs")
        features = [f(o.hidden_states) for f, o in zip(self.featurizers, outputs, strict=True)]
        lengths = [o.lengths for o in outputs]
        if self.input_norms is not None:
            features = [f if isinstance(norm, nn.Identity) else norm(f, n)
                        for norm, f, n in zip(self.input_norms, features, lengths, strict=True)]
        if self.late is not None:
            return self.late(features, lengths)
        assert self.aggregator is not None
        if self.early is not None:
            fused, fused_lengths = self.early(features, lengths)
            return self.aggregator(fused, fused_lengths)
        return self.aggregator(features[0], lengths[0])

    def forward(self, outputs: Sequence[UpstreamOutput]) -> Tensor:
        return self.classifier(self.embed(outputs))

    def layer_weights(self) -> list[Tensor | None]:
        """Per branch, the (num_layers,) weights of a weighted featurizer, else None."""
        return [f.layer_weights if isinstance(f, WeightedLayerSum) else None for f in self.featurizers]
