"""bench/gpu_check.py runs the same code on CPU with the tiny stand-in (the GPU figures are in the README)."""
from __future__ import annotations

import math

from bench import gpu_check


def test_the_gpu_check_runs_on_cpu_with_tiny_sizes_and_reports_consistent_figures():
    check = gpu_check.run_check("tiny", steps=1, batch_seconds=10.0, precision="float32")
    assert check.device == "cpu" and check.peak_tflops is None and check.mfu is None and check.peak_memory_gb is None
    assert math.isclose(check.audio_seconds_per_second * check.stage1_step_s, check.batch_seconds)
    assert check.parameters_m == 0.030592 and check.stage1_step_s > 0 and check.stage2_step_s > 0
    assert check.estimated_memory_gb * 1e9 >= 4 * 30_592  # at least the float32 weights


def test_training_flops_follow_the_documented_formula():
    upstream = gpu_check._model("tiny")
    upstream.requires_grad_(True)
    upstream.freeze_feature_encoder()
    trainable = sum(p.numel() for p in upstream.parameters() if p.requires_grad)
    tokens = 2 * (16_000 // 320)
    conv = 0
    length, channels = 16_000, 1
    for dim, kernel, stride in zip((16,) * 7, (10, 3, 3, 3, 3, 2, 2), (5, 2, 2, 2, 2, 2, 2)):
        length = (length - kernel) // stride + 1
        conv += 2 * channels * dim * kernel * length * 2
        channels = dim
    expected = 6 * trainable * tokens + 12 * 50 * 32 * 2 * tokens + conv
    assert gpu_check._training_flops(upstream, 16_000, 2) == expected
