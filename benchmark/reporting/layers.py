"""Learned layer weights of weighted featurizers: read from a unit's checkpoint, tabulated and plotted.

A `weighted` featurizer (`downstream.featurizer.WeightedLayerSum`) keeps free logits in its `weights`
parameter; the state dict of an `EmotionModel` stores them under `downstream.featurizers.<branch>.weights`
(the whole model when fine-tuning, the downstream alone otherwise, same key either way). The weights
the model used are their softmax, read from the checkpoint file the experiment reports (the best
epoch's or the top-k average, named by the caller: `benchmark.experiments.stages.checkpoint_file`).
"""
from __future__ import annotations

import re
import textwrap
from pathlib import Path

import numpy as np
from safetensors import safe_open

from ..common.io import atomic_write_figure

WEIGHTS_KEY = re.compile(r"(?:^|\.)featurizers\.(\d+)\.weights$")


def read_layer_weights(path: Path) -> dict[int, np.ndarray]:
    """Per branch with a weighted featurizer, its (num_layers,) softmax weights (sum to 1)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint missing, cannot read the layer weights; rerun the unit "
                                "(delete its folder) or report an experiment whose checkpoints are kept")
    out = {}
    with safe_open(str(path), framework="pt") as handle:
        for key in handle.keys():
            match = WEIGHTS_KEY.search(key)
            if match:
                logits = handle.get_tensor(key).double().numpy()
                exp = np.exp(logits - logits.max())
                out[int(match.group(1))] = exp / exp.sum()
    return dict(sorted(out.items()))


def fold_layer_weights(checkpoints: dict[int, Path]) -> dict[int, dict[int, np.ndarray]]:
    """fold → branch → (num_layers,) weights, from each fold's reported checkpoint file."""
    weights = {}
    for fold in sorted(checkpoints):
        path = checkpoints[fold]
        found = read_layer_weights(path)
        if not found:
            raise ValueError(f"{path}: no weighted featurizer in this checkpoint (no '...featurizers.<i>.weights' "
                             "key); was the unit trained with featurizer: weighted?")
        weights[fold] = found
    return weights


def layer_csv_rows(experiment: int, branches: tuple[str, ...], checkpoint: str,
                   weights: dict[int, dict[int, np.ndarray]]) -> list[list[object]]:
    """Rows of `exp, branch, upstream, fold, checkpoint, layer, weight`; fold "mean" averages the folds."""
    rows: list[list[object]] = []
    for branch in sorted({b for per_fold in weights.values() for b in per_fold}):
        name = branches[branch] if branch < len(branches) else ""
        per_fold = {k: w[branch] for k, w in weights.items() if branch in w}
        for fold, values in [*per_fold.items(), ("mean", mean_weights(per_fold))]:
            rows += [[experiment, branch, name, fold, checkpoint, layer, f"{v:.6f}"] for layer, v in enumerate(values)]
    return rows


def mean_weights(per_fold: dict[int, np.ndarray]) -> np.ndarray:
    """Average over folds of (num_layers,) weights, which must agree in length."""
    lengths = {len(w) for w in per_fold.values()}
    if len(lengths) != 1:
        raise ValueError(f"folds disagree on the number of layers ({sorted(lengths)}); were they trained on one upstream?")
    return np.mean(list(per_fold.values()), axis=0)


def layers_png(path: Path, weights: dict[int, dict[int, np.ndarray]], branches: tuple[str, ...], title: str) -> None:
    """One panel per weighted branch: a line per fold and the mean over folds (bold), weight vs layer."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    branch_ids = sorted({b for per_fold in weights.values() for b in per_fold})
    figure, axes = plt.subplots(1, len(branch_ids), figsize=(4.8 * len(branch_ids), 3.4), squeeze=False)
    for axis, branch in zip(axes[0], branch_ids):
        per_fold = {k: w[branch] for k, w in weights.items() if branch in w}
        for fold, values in per_fold.items():
            axis.plot(range(len(values)), values, marker="o", markersize=3, linewidth=1, alpha=0.6, label=f"fold {fold}")
        mean = mean_weights(per_fold)
        axis.plot(range(len(mean)), mean, color="black", linewidth=2.2, label="mean")
        axis.axhline(1 / len(mean), color="grey", linestyle=":", linewidth=1, label="uniform")
        axis.set_xlabel("layer (hidden state index)")
        axis.set_ylabel("weight")
        axis.set_xticks(range(0, len(mean), max(1, len(mean) // 12)))
        axis.set_title(branches[branch] if branch < len(branches) else f"branch {branch}", fontsize=9)
        axis.legend(fontsize=7)
    width = 4.8 * len(branch_ids)
    figure.suptitle(textwrap.fill(title, width=max(20, int(0.92 * width * 72 / (0.55 * 9)))), fontsize=9)
    figure.tight_layout()
    atomic_write_figure(path, figure)
