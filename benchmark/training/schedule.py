"""How much each optimizer step learns: the learning-rate schedule and the weight of each utterance.

Both are functions of the plan, not of running state (fvcore-style stateless schedules), so a
resumed run takes exactly the steps an uninterrupted one takes.
"""
from __future__ import annotations

import math


def lr_factor(progress: float, step: float, warmup_fraction: float) -> float:
    """Linear warm-up to 1 over the first `warmup_fraction` of training, then linear decay towards 0.

    `progress`: share of training done before this optimizer step (epoch − 1 + steps so far / steps
    this epoch, over the epochs); `step`: the share this step takes. A function of progress rather
    than of a step count, because jittered batches give each epoch a slightly different number of steps.
    """
    reached = progress + step
    if warmup_fraction > 0 and reached <= warmup_fraction:
        return reached / warmup_fraction
    return max(0.0, min(1.0, 1.0 - (progress - warmup_fraction) / (1.0 - warmup_fraction)))


def utterances_per_step(num_utterances: int, num_batches: int, grad_accumulation: int) -> float:
    """The nominal number of training utterances an optimizer step sees: the epoch's utterances over its steps.

    Each utterance's loss is divided by this fixed number (not by its own batch's size), so every
    utterance weighs the same in the gradient whichever batch it lands in. With duration batches a
    batch of long utterances holds few of them: a per-batch mean would weigh a 10 s utterance about
    10× a 1 s one. On average a step's gradient keeps the size of a mean-loss step, so learning rates
    mean what they meant.
    """
    steps = math.ceil(num_batches / grad_accumulation)
    return num_utterances / max(steps, 1)
