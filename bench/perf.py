"""`make bench`: our speed and memory, each beside a reference measured in the same run on this machine.

Sections (each a group of rows of results/perf.csv; `--skip` / `--only` choose):
  padding   padding ratio of duration batching vs fixed-count batching (demo corpus, IEMOCAP-like)
  cache     frozen-stage training step from the feature cache vs recomputing the upstream each step
            (tiny_hubert; base-sized randomly initialised HuBERT, 95M parameters)
  s3prl     ours vs s3prl's own emotion recipe: time per step, whole run, peak RSS
  demo      `make demo` end to end (in a fresh copy of the working tree): wall time, peak RSS
  accuracy  test UA of our fbank → ECAPA recipe vs a plain speechbrain ECAPA loop, demo corpus, 5 folds
  stage2    host time per stage-2 step (batch assembly + copy), before/after, beside the ECAPA-512 step

Columns: metric, ours, reference, ratio (= reference / ours: above 1, ours is faster / smaller /
less padded), target, met. Timings on shared machines are noisy: only the ratios of figures taken
in the same run are meaningful, and the load average is recorded beside them (results/perf.json).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import traceback
from dataclasses import asdict, replace
from pathlib import Path
from typing import Callable

import torch

from benchmark.common.io import atomic_write_text
from benchmark.training.device import cpu_has_native_bf16

from . import accuracy, cache_vs_recompute, demo_e2e, padding, s3prl_side_by_side, stage2_host
from .measure import Row, failed_row, format_table, write_csv

REPO = Path(__file__).resolve().parents[1]
SECTIONS = ("padding", "cache", "s3prl", "demo", "accuracy", "stage2")
STAGE2_TARGET_X = 2.0  # host assembly at least 2x faster than the loop was
CACHE_TARGET_X = 10.0  # base-sized upstream: cached step ≥ 10x faster
S3PRL_TARGET_X = 2.0
PADDING_TARGET_PCT = 15.0
DEMO_TARGET_S = 15 * 60.0
DEMO_TARGET_RSS_MB = 4096.0
ACCURACY_SEEDS = 3  # single runs of the small demo folds move by ±5 points with the seed


def _at_least(ratio: float | None, threshold: float) -> bool | None:
    return None if ratio is None else ratio >= threshold


def padding_rows(details: dict) -> list[Row]:
    fold = cache_vs_recompute.demo_fold()
    sets = {"demo_corpus": [u.duration for u in fold.train], "iemocap_like": padding.iemocap_like_durations()}
    rows = []
    for profile in ("demo", "paper"):
        settings = cache_vs_recompute.step_settings(profile)
        for name, durations in sets.items():
            result = padding.compare(durations, settings.max_batch_seconds)
            ours, fixed = 100 * result.by_duration, 100 * result.fixed
            rows.append(Row(f"padding_pct.{name}.{profile}", ours, fixed, f"ours <= {PADDING_TARGET_PCT:g}",
                            ours <= PADDING_TARGET_PCT,
                            note=f"{len(durations)} utterances, duration batches <= {settings.max_batch_seconds:g} s "
                                 f"({result.duration_batches} batches) vs {result.fixed_batch_size} per batch"))
            details.setdefault("padding", []).append({"set": name, "profile": profile, **asdict(result)})
    return rows


def cache_rows(details: dict, upstreams: list[str]) -> list[Row]:
    fold, store = cache_vs_recompute.demo_fold(), cache_vs_recompute.AudioStore()
    rows = []
    for name in upstreams:
        profile, steps, cached_passes, recompute_passes = cache_vs_recompute.PLAN.get(name, ("demo", 8, 3, 3))
        settings = cache_vs_recompute.step_settings(profile)
        base_model = name == cache_vs_recompute.BASE_HUBERT
        native_bf16 = cpu_has_native_bf16() is not False
        if base_model and not native_bf16:  # emulated bf16 (≈ 15x slower): the row would measure the emulation
            rows.append(Row(f"frozen_step_s.{name}.ecapa_bf16", None, None, "n/a", None,
                            note="not applicable: this CPU has no native bf16 (no AVX512-BF16 or AMX), so bf16 "
                                 "autocast is emulated; run it on a CPU with native bf16 or a GPU"))
        for t in cache_vs_recompute.measure(name, ("mean", "ecapa"), settings, fold, store, steps, cached_passes,
                                            recompute_passes, bf16_for=("ecapa",) if base_model and native_bf16 else ()):
            base = base_model and not t.downstream.endswith("_bf16")
            row = Row(f"frozen_step_s.{name}.{t.downstream}", t.cached_s, t.recompute_s,
                      f"ratio >= {CACHE_TARGET_X:g}" if base else "",
                      note=f"{t.parameters_m:.2f}M-parameter upstream, {profile} profile (batches <= "
                           f"{settings.max_batch_seconds:g} s, ECAPA {settings.ecapa.channels} channels); "
                           f"{t.steps} steps of {t.audio_s:.0f} s audio; cache built in {t.cache_build_s:.1f} s")
            if t.downstream.endswith("_bf16"):
                row = replace(row, target=f"ratio >= {CACHE_TARGET_X:g}", met=_at_least(row.ratio, CACHE_TARGET_X),
                              note=row.note + "; ours under bf16 autocast (profile precision: bf16), "
                                              "the reference recomputes in float32 as s3prl does")
            rows.append(replace(row, met=_at_least(row.ratio, CACHE_TARGET_X)) if base else row)
            details.setdefault("cache", []).append({**asdict(t), "speedup": t.speedup})
    return rows


def stage2_rows(details: dict) -> list[Row]:
    t = stage2_host.measure()
    details["stage2"] = {**asdict(t), "speedup": t.speedup}
    note = (f"base HuBERT features (768-dim, float16 cache), {t.batches} paper-profile batches on {t.device}; "
            "before = waveform batch + Python row-by-row padding, after = pad_sequence, no waveform")
    return [Row("stage2_host_ms_per_step.base_hubert_ecapa512", t.after_ms, t.before_ms,
                f"ratio >= {STAGE2_TARGET_X:g}", t.speedup >= STAGE2_TARGET_X, note=note),
            Row("stage2_model_step_ms.base_hubert_ecapa512", t.model_step_ms, None, "",
                note=f"ECAPA-512 forward + backward + AdamW on {t.device}; host share after: "
                     f"{100 * t.after_ms / (t.after_ms + t.model_step_ms):.1f} %")]


def s3prl_rows(details: dict, work: Path, steps: int) -> list[Row]:
    corpus = cache_vs_recompute.demo_corpus()
    fold = cache_vs_recompute.demo_fold(corpus)
    r = s3prl_side_by_side.run(Path(sys.executable), corpus, len(fold.train), work / "s3prl", steps)
    details["s3prl"] = {"steps": r.steps, "ours_epochs": r.ours_epochs, "n_train": r.n_train,
                        "ours_step_s": r.ours_step_s, "s3prl_step_s": r.s3prl_step_s,
                        "ours_run": asdict(r.ours), "s3prl_run": asdict(r.s3prl), "s3prl_short_run": asdict(r.s3prl_short),
                        "s3prl_upstream": s3prl_side_by_side.S3PRL_UPSTREAM}
    budget = f"{r.steps} steps x 32 utterances vs {r.ours_epochs} epochs x {r.n_train}"
    step = Row("s3prl_recipe.step_s_per_32_utts", r.ours_step_s, r.s3prl_step_s, f"ratio >= {S3PRL_TARGET_X:g}",
               note=f"fbank + mean + linear, fold 1 of the demo corpus; {budget}")
    rss = Row("s3prl_recipe.peak_rss_mb", r.ours.peak_rss_mb, r.s3prl.peak_rss_mb, "ratio > 1",
              note="whole training run of each, as one process")
    wall = Row("s3prl_recipe.run_s", r.ours.wall_s, r.s3prl.wall_s, "",
               note="whole run incl. start-up, data loading, feature cache (ours), final evaluation")
    return [replace(step, met=_at_least(step.ratio, S3PRL_TARGET_X)),
            replace(rss, met=None if rss.ratio is None else rss.ratio > 1), wall]


def demo_rows(details: dict, work: Path) -> list[Row]:
    d = demo_e2e.run(work / "demo")
    details["demo"] = {"command": d.command, **asdict(d.result)}
    note = f"`make demo` from a fresh copy of the working tree: {d.command}"
    return [Row("make_demo.wall_s", d.result.wall_s, None, f"ours <= {DEMO_TARGET_S:g}",
                d.result.wall_s <= DEMO_TARGET_S, note=note),
            Row("make_demo.peak_rss_mb", d.result.peak_rss_mb, None, f"ours <= {DEMO_TARGET_RSS_MB:g}",
                d.result.peak_rss_mb <= DEMO_TARGET_RSS_MB)]


def accuracy_rows(details: dict, work: Path) -> list[Row]:
    """Mean test UA over the 5 demo folds: ours (best and averaged checkpoints) vs the plain loop. Here the
    ratio (plain / ours) at or below 1 means ours is at least as accurate."""
    table, results = accuracy.compare(None, "demo", (1, 2, 3, 4, 5), work / "accuracy", seeds=ACCURACY_SEEDS)
    details["accuracy"] = {"table": table, **results}

    def mean_ua(runs: list[dict], key: str) -> float:  # over seeds and folds
        return sum(r[key] for run in runs for r in run.values()) / sum(len(run) for run in runs)

    plain = mean_ua(results["plain"], "ua")
    rows = []
    for kind in ("best", "average"):
        ours = mean_ua(results["default"], f"ua_{kind}")
        rows.append(Row(f"accuracy_ua.fbank_ecapa.{kind}", ours, plain, "ours >= plain loop", ours >= plain,
                        note=f"mean test UA %, 5 demo folds × {ACCURACY_SEEDS} seeds; reference: plain speechbrain "
                             "ECAPA loop, last epoch"))
    return rows


FAILED_ROWS = {
    "padding": [("padding_pct", f"ours <= {PADDING_TARGET_PCT:g}")],
    "cache": [("frozen_step_s", f"ratio >= {CACHE_TARGET_X:g}")],
    "s3prl": [("s3prl_recipe.step_s_per_32_utts", f"ratio >= {S3PRL_TARGET_X:g}"),
              ("s3prl_recipe.peak_rss_mb", "ratio > 1")],
    "demo": [("make_demo.wall_s", f"ours <= {DEMO_TARGET_S:g}"), ("make_demo.peak_rss_mb", f"ours <= {DEMO_TARGET_RSS_MB:g}")],
    "accuracy": [("accuracy_ua.fbank_ecapa.best", "ours >= plain loop"), ("accuracy_ua.fbank_ecapa.average",
                                                                          "ours >= plain loop")],
    "stage2": [("stage2_host_ms_per_step.base_hubert_ecapa512", f"ratio >= {STAGE2_TARGET_X:g}")],
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.perf", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=SECTIONS, help="run only these sections")
    parser.add_argument("--skip", nargs="+", choices=SECTIONS, default=[], help="leave these sections out")
    parser.add_argument("--out", type=Path, default=REPO / "results" / "perf.csv", help="the CSV (default: results/perf.csv)")
    parser.add_argument("--work", type=Path, default=REPO / "results" / "bench",
                        help="logs and scratch runs (default: results/bench)")
    parser.add_argument("--s3prl-steps", type=int, default=100, help="s3prl optimizer steps (32 utterances each)")
    parser.add_argument("--upstreams", nargs="+", default=["tiny_hubert", cache_vs_recompute.BASE_HUBERT],
                        help="upstreams of the cache section")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    sections = [s for s in (args.only or SECTIONS) if s not in args.skip]
    if "s3prl" in sections:
        try:
            s3prl_side_by_side.check_dependencies()
        except s3prl_side_by_side.MissingDependency as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    runners: dict[str, Callable[[dict], list[Row]]] = {
        "padding": padding_rows,
        "cache": lambda d: cache_rows(d, args.upstreams),
        "s3prl": lambda d: s3prl_rows(d, args.work, args.s3prl_steps),
        "demo": lambda d: demo_rows(d, args.work),
        "accuracy": lambda d: accuracy_rows(d, args.work),
        "stage2": stage2_rows,
    }
    rows: list[Row] = []
    details: dict = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "load_average_before": os.getloadavg(),
                     "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                     "versions": {"python": platform.python_version(), "torch": torch.__version__}, "sections": {}}
    failed = []
    if os.getloadavg()[0] > 0.5 * (os.cpu_count() or 1):
        print(f"warning: load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs: other processes are "
              "running; step times will be inflated (ratios less so)", flush=True)
    for section in sections:
        started = time.perf_counter()
        load = os.getloadavg()[0]
        print(f"== {section} (load average {load:.1f} on {os.cpu_count()} CPUs)", flush=True)
        try:
            new_rows = runners[section](details)
        except Exception as error:  # one broken section must not hide the others' figures
            traceback.print_exc()
            failed.append(section)
            message = str(error).splitlines()[0] if str(error) else type(error).__name__
            new_rows = [failed_row(metric, target, message) for metric, target in FAILED_ROWS[section]]
        rows.extend(new_rows)
        details["sections"][section] = {"seconds": time.perf_counter() - started, "load_average_at_start": load}
        print(format_table(new_rows), flush=True)
    details["load_average_after"] = os.getloadavg()
    write_csv(args.out, rows)
    atomic_write_text(args.out.with_suffix(".json"), json.dumps(details, indent=1, default=str) + "\n")
    print(f"\n{format_table(rows)}\n\n→ {args.out}  (details: {args.out.with_suffix('.json')})")
    total = sum(s["seconds"] for s in details["sections"].values())
    print(f"bench took {total / 60:.1f} min; load average before {details['load_average_before'][0]:.1f}, "
          f"after {details['load_average_after'][0]:.1f} on {os.cpu_count()} CPUs")
    if failed:
        print(f"error: section(s) {', '.join(failed)} failed (see above); their rows are marked met=no", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
