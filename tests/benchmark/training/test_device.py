"""Precision on CPUs: bf16 only pays off where the CPU computes it natively; elsewhere a warning."""
from __future__ import annotations

from benchmark.training.device import cpu_has_native_bf16, emulated_bf16_warning


def test_native_bf16_is_read_from_the_cpu_flags(tmp_path):
    with_flag, without, missing = tmp_path / "a", tmp_path / "b", tmp_path / "none"
    with_flag.write_text("flags\t: fpu sse avx2 avx512f avx512_bf16 amx_tile\n")
    without.write_text("flags\t: fpu sse avx2 avx512f avx512_vnni\n")
    assert cpu_has_native_bf16(with_flag) is True
    assert cpu_has_native_bf16(without) is False
    assert cpu_has_native_bf16(missing) is None


def test_a_bf16_profile_on_an_emulating_cpu_is_warned_about_once_in_one_line():
    message = emulated_bf16_warning(["float32", "bf16"], "cpu", native=False)
    assert message is not None and "\n" not in message and "15x slower" in message
    assert emulated_bf16_warning(["bf16"], "cpu", native=True) is None
    assert emulated_bf16_warning(["bf16"], "cuda", native=False) is None  # GPUs compute bf16 natively
    assert emulated_bf16_warning(["float32"], "cpu", native=False) is None
    assert emulated_bf16_warning(["bf16"], "cpu", native=None) is None  # unknown CPU: no claim


def test_the_run_prints_the_warning_before_anything_else(tone_corpus, tmp_path, monkeypatch, capsys):
    from dataclasses import replace

    import benchmark.runner as runner
    from benchmark.experiments.definitions import load_profile

    monkeypatch.setattr(runner, "cpu_has_native_bf16", lambda: False)
    profile = load_profile("demo").with_training(lambda c: replace(c, precision="bf16"))
    runner.run(runner.RunRequest(experiments=(9,), table=1, folds=(1,), data=tone_corpus, out=tmp_path, profile=profile,
                                 strict=False, estimate=True, device="cpu"))
    assert "no native bf16" in capsys.readouterr().err
