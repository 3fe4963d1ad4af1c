"""Experiments (one Table 1 row each) and profiles (which models and settings a run uses), as data."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Literal

from downstream.ecapa import EcapaConfig
from downstream.normalization import INPUT_NORMS

from ..common.config import ConfigError, load_config
from ..training.config import TrainConfig
from ..training.device import resolve_precision

EXPERIMENTS_DIR = Path(__file__).parent  # table<N>/*.yaml rows and profiles/*.yaml beside this module
PROFILES_DIR = EXPERIMENTS_DIR / "profiles"


@dataclass(frozen=True)
class ExperimentConfig:
    """One row: branches (paper upstream names) → [fusion] → aggregator → linear, and what it reports.

    A row with one fine-tuned branch and `mean` is read from that branch's fine-tuning unit (stage 1);
    every other row trains its aggregator on frozen features (stage 2), taken from each branch's
    averaged fine-tuned upstream where `finetune` is true, else from the upstream as it is.

    `input_norm`: per branch (one mode for all, or a list), a mode of `downstream.normalization`
    ("none" | "global" | "sentence" | "sentence_mean") or "auto": what the branch's features need
    (`plan.branch_norms`: fbank normalised, SSL and text models not). true/false mean "global"/"none"
    for every branch, as before per-branch modes existed.
    """

    id: int
    description: str
    branches: tuple[str, ...]
    finetune: tuple[bool, ...]
    aggregator: Literal["mean", "ecapa"]
    fusion: Literal["none", "early", "late"] = "none"
    checkpoint: Literal["best", "average"] = "average"
    featurizer: str | int = "last"
    input_norm: str | tuple[str, ...] | bool = "auto"
    set: str = ""
    task: Literal["categorical", "dimensional", "both"] = "categorical"  # `training.objectives`

    def __post_init__(self) -> None:
        if not self.branches or len(self.finetune) != len(self.branches):
            raise ValueError(f"finetune lists {len(self.finetune)} flags for {len(self.branches)} branches; give one per branch")
        if (self.fusion == "none") != (len(self.branches) == 1):
            raise ValueError(f"fusion {self.fusion!r} does not fit {len(self.branches)} branch(es): use none for one, early/late for more")
        norms = self.input_norm if isinstance(self.input_norm, tuple) else (self.input_norm,)
        bad = [m for m in norms if not isinstance(m, bool) and m not in ("auto", *INPUT_NORMS)]
        if bad or (isinstance(self.input_norm, tuple) and len(norms) != len(self.branches)):
            raise ValueError(f"input_norm: expected 'auto', {', '.join(map(repr, INPUT_NORMS))} or a list of them, "
                             f"one per branch ({len(self.branches)}); got {self.input_norm!r}")
        if self.featurizer not in ("last", "weighted") and not (isinstance(self.featurizer, int) and self.featurizer >= 0):
            raise ValueError(f"featurizer: expected 'last', 'weighted' or a layer index >= 0, got {self.featurizer!r}")

    @property
    def is_finetune_row(self) -> bool:
        return self.aggregator == "mean" and len(self.branches) == 1 and self.finetune[0]


@dataclass(frozen=True)
class Profile:
    """How paper names map to registered upstreams, and the training settings of both stages.

    `finetune_per_upstream`: complete stage-1 settings for particular registered upstreams (keys not
    given take `TrainConfig`'s defaults), e.g. a random-initialised stand-in that needs a higher rate
    than a pretrained model; every other upstream is fine-tuned with `finetune`.
    """

    name: str
    upstreams: dict[str, str] = field(default_factory=dict)
    finetune: TrainConfig = field(default_factory=lambda: TrainConfig(finetune_upstream=True))
    finetune_per_upstream: dict[str, TrainConfig] = field(default_factory=dict)
    frozen: TrainConfig = field(default_factory=TrainConfig)
    ecapa: EcapaConfig = field(default_factory=EcapaConfig)
    cache_dtype: Literal["float16", "float32"] = "float16"
    # What a finished unit keeps: "reported" the average, and the best epoch where a row of the run
    # reports it (what reports and export read), "average" only the average, "all" every top-k
    # checkpoint too; resume.pt never stays.
    keep: Literal["all", "reported", "average"] = "reported"
    dimensional_loss: Literal["ccc", "mse"] = "ccc"  # of the attributes (tasks dimensional and both)
    dimensional_weight: float = 1.0  # the attributes' loss weight beside cross-entropy in task both
    dimensional_epochs: int | None = None  # epochs of a dimensional/both unit (regression converging slower); None: the stage's
    keep_cache: bool = False  # a feature cache is deleted once every unit of the run reading it finished; True keeps it
    note: str = ""  # opens every table of the profile (the demo's: stand-in models, not the paper's method)

    def __post_init__(self) -> None:
        if not self.finetune.finetune_upstream or self.frozen.finetune_upstream:
            raise ValueError("finetune.finetune_upstream must be true and frozen.finetune_upstream false")
        for name, config in self.finetune_per_upstream.items():
            if not config.finetune_upstream:
                raise ValueError(f"finetune_per_upstream.{name}.finetune_upstream must be true")

    def resolve(self, name: str) -> str:
        return self.upstreams.get(name, name)

    def finetune_for(self, upstream: str) -> TrainConfig:
        """Stage-1 settings of the registered upstream `upstream`."""
        return self.finetune_per_upstream.get(upstream, self.finetune)

    def for_task(self, config: TrainConfig, task: str) -> TrainConfig:
        """`config` as a unit of `task` trains it (`dimensional_epochs` for the tasks with attributes)."""
        if task == "categorical" or self.dimensional_epochs is None:
            return config
        return replace(config, epochs=self.dimensional_epochs)

    def with_training(self, change: Callable[[TrainConfig], TrainConfig]) -> Profile:
        """This profile with `change` applied to every training config (both stages, per-upstream ones too)."""
        return replace(self, finetune=change(self.finetune), frozen=change(self.frozen),
                       finetune_per_upstream={k: change(v) for k, v in self.finetune_per_upstream.items()})

    def resolved_for(self, device_type: str) -> Profile:
        """This profile with "auto" precisions made concrete for the device the units run on, so that a
        unit's key says whether it trains in float32 or bf16."""
        return self.with_training(lambda c: replace(c, precision=resolve_precision(c.precision, device_type)))


def load_profile(name: str) -> Profile:
    """A shipped profile by name (`demo`, `paper`) or a profile YAML file of the user's."""
    path = Path(name) if name.endswith((".yaml", ".yml")) else PROFILES_DIR / f"{name}.yaml"
    if not path.is_file():
        if path.suffix in (".yaml", ".yml"):
            raise ConfigError(f"--profile: {path}: profile file does not exist")
        known = ", ".join(sorted(p.stem for p in PROFILES_DIR.glob("*.yaml")))
        raise ConfigError(f"--profile: unknown profile {name!r} (known: {known})")
    return load_config(Profile, path)


def load_table(table: int | str) -> list[ExperimentConfig]:
    """Every experiment of `experiments/table<table>/`, by id; ids must be unique."""
    folder = EXPERIMENTS_DIR / f"table{table}"
    files = sorted(folder.glob("*.yaml"))
    if not files:
        raise ConfigError(f"--table: no experiment files in {folder}")
    experiments = [load_config(ExperimentConfig, path) for path in files]
    seen: dict[int, str] = {}
    for path, experiment in zip(files, experiments):
        if experiment.id in seen:
            raise ConfigError(f"{path.name}: id {experiment.id} is also used by {seen[experiment.id]}")
        seen[experiment.id] = path.name
    return sorted(experiments, key=lambda e: e.id)


def select(experiments: list[ExperimentConfig], ids: tuple[int, ...]) -> list[ExperimentConfig]:
    by_id = {e.id: e for e in experiments}
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise ConfigError(f"--experiment: no experiment {missing[0]} (known: {', '.join(map(str, by_id))})")
    return [by_id[i] for i in ids]
