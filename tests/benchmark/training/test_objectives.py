"""The losses and checkpoint selection of the three tasks."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from benchmark.reporting.dimensional import ccc
from benchmark.reporting.metrics import score
from benchmark.training.objectives import Objective, batch_ccc, loss_sum, selection_score
from downstream.model import DownstreamConfig, split_outputs


def _batch(rows: int = 6, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    return (torch.randn(rows, 4, generator=generator), torch.rand(rows, 3, generator=generator),
            torch.randint(0, 4, (rows,), generator=generator), torch.rand(rows, 3, generator=generator))


def test_each_task_has_its_loss_and_both_weighs_the_attributes():
    logits, attributes, labels, targets = _batch()
    ce = nn.functional.cross_entropy(logits, labels, reduction="sum")
    assert loss_sum(Objective("categorical"), logits, None, labels, None) == pytest.approx(ce.item())
    ccc_loss = (1 - ccc(targets.numpy(), attributes.numpy()).mean()) * 6
    assert loss_sum(Objective("dimensional"), None, attributes, labels, targets) == pytest.approx(ccc_loss, rel=1e-5)
    mse = ((attributes - targets) ** 2).mean(-1).sum()
    assert loss_sum(Objective("dimensional", loss="mse"), None, attributes, labels, targets) == pytest.approx(mse.item())
    both = loss_sum(Objective("both", weight=0.5), logits, attributes, labels, targets)
    assert both == pytest.approx(ce.item() + 0.5 * ccc_loss, rel=1e-5)
    assert batch_ccc(attributes, targets).item() == pytest.approx(ccc(targets.numpy(), attributes.numpy()).mean(), rel=1e-5)
    alone = loss_sum(Objective("dimensional"), None, attributes[:1], labels[:1], targets[:1])  # a 1-row rank share
    assert alone.item() == 0.0
    with pytest.raises(ValueError, match="ratings on every utterance"):
        loss_sum(Objective("dimensional"), None, attributes, labels, None)


def test_the_ccc_loss_gradient_moves_predictions_toward_the_targets():
    _, attributes, labels, targets = _batch(rows=32, seed=1)
    attributes.requires_grad_(True)
    optimizer = torch.optim.SGD([attributes], lr=0.5)
    before = batch_ccc(attributes, targets).item()
    for _ in range(20):
        optimizer.zero_grad()
        loss_sum(Objective("dimensional"), None, attributes, labels, targets).backward()
        optimizer.step()
    assert batch_ccc(attributes, targets).item() > before + 0.3


def test_checkpoints_are_ranked_by_wa_ccc_or_their_mean():
    logits, attributes, labels, targets = (t.numpy() for t in _batch(rows=40, seed=2))
    wa = score(labels, logits.argmax(-1), 4).wa
    mean_ccc = float(ccc(targets, attributes).mean())
    assert selection_score(Objective("categorical"), labels, logits, None, None, 4)[0] == pytest.approx(wa)
    assert selection_score(Objective("dimensional"), labels, None, targets, attributes, 4) == (
        pytest.approx(mean_ccc), None, None, pytest.approx(mean_ccc))
    chosen, got_wa, _, got_ccc = selection_score(Objective("both"), labels, logits, targets, attributes, 4)
    assert chosen == pytest.approx((wa + mean_ccc) / 2) and got_wa == pytest.approx(wa) and got_ccc == pytest.approx(mean_ccc)


@pytest.mark.parametrize("task, width", [("categorical", 4), ("dimensional", 3), ("both", 7)])
def test_one_head_gives_class_logits_then_attributes(task, width):
    config = DownstreamConfig(num_classes=4, task=task)
    outputs = torch.arange(2 * width, dtype=torch.float32).reshape(2, width)
    logits, attributes = split_outputs(outputs, config)
    assert config.outputs == width
    assert (logits is None) == (task == "dimensional") and (attributes is None) == (task == "categorical")
    if logits is not None and attributes is not None:
        assert torch.equal(torch.cat([logits, attributes], -1), outputs)
    with pytest.raises(ValueError, match="unknown task"):
        DownstreamConfig(task="ordinal")
    assert np.isfinite(outputs.numpy()).all()
