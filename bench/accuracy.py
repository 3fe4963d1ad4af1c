"""Accuracy side by side: a plain speechbrain ECAPA-TDNN loop vs our fbank → ECAPA recipe, same folds.

The plain loop is what a speechbrain user writes by hand: Kaldi fbank features (the same as our
`fbank` upstream), speechbrain's `InputNormalization(norm_type="sentence", std_norm=False)` as in
its ECAPA recipes, speechbrain's `ECAPA_TDNN` of the profile's sizes + a linear layer, fixed-size
shuffled batches, Adam at a constant rate, the final epoch's model tested. Ours is
`run_benchmark.py --upstream fbank --downstream ecapa` with the profile's frozen-stage settings and
the same number of epochs (best and top-k averaged checkpoints). Both on the demo corpus by default,
or on any `--data` folder; `--variant` runs ours with one setting changed, to find what makes a
difference.

    python -m bench.accuracy [--data DIR] [--profile demo] [--epochs 4] [--folds 1,2,3,4,5]
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch
from speechbrain.lobes.models.ECAPA_TDNN import ECAPA_TDNN
from speechbrain.processing.features import InputNormalization

from benchmark.common.io import atomic_write_text
from benchmark.common.seeding import isolated_rng
from benchmark.data import iemocap, splits
from benchmark.data.iemocap import LABELS
from benchmark.experiments.definitions import Profile, load_profile
from benchmark.reporting.metrics import score
from benchmark.request import corpus_dir
from benchmark.runner import RunRequest, run
from benchmark.training.batching import AudioStore
from downstream.ecapa import EcapaConfig
from upstream import build_upstream

REPO = Path(__file__).resolve().parents[1]


def fbank_features(utterances: list, store: AudioStore) -> dict[str, torch.Tensor]:
    """(T, 80) Kaldi fbank of every utterance, computed alone (no padding)."""
    fbank = build_upstream("fbank")
    out = {}
    with torch.no_grad():
        for u in utterances:
            wav = store.get(u)
            output = fbank(wav[None], torch.tensor([len(wav)]))
            out[u.id] = output.hidden_states[0][0, : int(output.lengths[0])]
    return out


def _padded(items: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T, 80) zero-padded features and (B,) relative lengths as speechbrain takes them."""
    longest = max(len(x) for x in items)
    batch = torch.zeros(len(items), longest, items[0].shape[1])
    for row, x in enumerate(items):
        batch[row, : len(x)] = x
    return batch, torch.tensor([len(x) / longest for x in items])


def plain_loop(fold: splits.Fold, features: dict[str, torch.Tensor], ecapa: EcapaConfig, epochs: int,
               batch_size: int = 16, lr: float = 1e-3, seed: int = 0) -> dict[str, float]:
    """Train speechbrain's ECAPA-TDNN + linear on `fold.train` by hand; test the last epoch's model."""
    with isolated_rng(seed) as generator:
        c = ecapa.channels
        model = torch.nn.ModuleDict({
            "norm": InputNormalization(norm_type="sentence", std_norm=False),
            "ecapa": ECAPA_TDNN(80, lin_neurons=ecapa.embedding_size, channels=[c, c, c, c, 3 * c],
                                attention_channels=ecapa.attention_size, se_channels=ecapa.se_channels,
                                res2net_scale=ecapa.res2net_scale),
            "classifier": torch.nn.Linear(ecapa.embedding_size, len(LABELS))})

        def logits(utterances: list) -> torch.Tensor:
            x, lengths = _padded([features[u.id] for u in utterances])
            x = model["norm"](x, lengths)
            return model["classifier"](model["ecapa"](x, lengths).squeeze(1))

        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        train = list(fold.train)
        for _ in range(epochs):
            model.train()
            order = torch.randperm(len(train), generator=generator).tolist()
            for start in range(0, len(order) - 1, batch_size):  # a last batch of one would break BatchNorm
                batch = [train[i] for i in order[start:start + batch_size]]
                if len(batch) < 2:
                    continue
                loss = torch.nn.functional.cross_entropy(logits(batch), torch.tensor([u.label_index for u in batch]))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        model.eval()
        with torch.no_grad():
            predicted = torch.cat([logits(fold.test[i:i + 32]).argmax(-1) for i in range(0, len(fold.test), 32)])
    s = score([u.label_index for u in fold.test], predicted.numpy(), len(LABELS))
    return {"wa": 100 * s.wa, "ua": 100 * s.ua}


def ours(data: Path | None, profile: Profile, folds: tuple[int, ...], out: Path,
         input_norm: str = "auto", seed: int = 0) -> dict[int, dict[str, float]]:
    """Per fold, test UA/WA of our fbank → ECAPA recipe's best and averaged checkpoints."""
    csv_path = run(RunRequest(upstream="fbank", downstream="ecapa", data=data, folds=folds, out=out, profile=profile,
                              input_norm=input_norm, seed=seed))
    assert csv_path is not None
    record = json.loads(csv_path.with_suffix(".json").read_text())
    return {r["fold"]: {f"{m}_{kind}": r["scores"][kind][m] for kind in ("best", "average") for m in ("wa", "ua")}
            for r in record["folds"]}


VARIANTS = {  # one setting of ours changed at a time (frozen stage, or the input normalisation)
    "default": {},
    "no_jitter": {"batch_jitter": 0.0},
    "no_warmup": {"warmup_fraction": 0.0},
    "top_k_1": {"top_k": 1},
    "sentence_mean_norm": {"input_norm": "sentence_mean"},
}


def _row(name: str, per_seed: list[dict[int, float]], folds: tuple[int, ...]) -> list[str]:
    """Fold UAs averaged over seeds, their mean, and the std over seeds of the fold-mean UA."""
    means = [float(np.mean([run[k] for k in folds])) for run in per_seed]
    return [name, *(f"{np.mean([run[k] for run in per_seed]):.2f}" for k in folds), f"{np.mean(means):.2f}",
            f"{np.std(means):.2f}" if len(means) > 1 else ""]


def compare(data: Path | None, profile_name: str, folds: tuple[int, ...], out: Path, epochs: int | None = None,
            variants: list[str] | None = None, seeds: int = 1) -> tuple[str, dict]:
    """The markdown table (UA per fold, averaged over `seeds` training seeds, their mean, and the std over
    seeds of that mean) of the plain loop and our variants, and the figures (`results[name][seed][fold]`).

    Single runs on a small corpus move by several points with the seed (or the thread count), so
    differences between rows mean something only beside that spread."""
    profile = load_profile(profile_name)
    epochs = epochs or profile.frozen.epochs
    profile = replace(profile, frozen=replace(profile.frozen, epochs=epochs))
    utterances = iemocap.load(corpus_dir(RunRequest(data=data, folds=folds)), strict=False)
    split_folds = splits.folds(utterances, "superb", folds)
    started = time.perf_counter()
    features = fbank_features([u for f in split_folds for u in (*f.train, *f.test)], AudioStore())
    plain = [{f.index: plain_loop(f, features, profile.ecapa, epochs, seed=s) for f in split_folds}
             for s in range(seeds)]
    results: dict = {"plain": plain, "epochs": epochs, "seeds": seeds, "profile": asdict(profile),
                     "plain_seconds": time.perf_counter() - started}
    rows = [_row("plain speechbrain loop (last epoch)", [{k: r[k]["ua"] for k in folds} for r in plain], folds)]
    for name in variants or ["default"]:
        changes = dict(VARIANTS[name])
        input_norm = changes.pop("input_norm", "auto")
        variant = replace(profile, frozen=replace(profile.frozen, **changes))
        scores = [ours(data, variant, folds, out / name / f"seed{s}", input_norm, s) for s in range(seeds)]
        results[name] = scores
        for kind in ("best", "average"):
            rows.append(_row(f"ours [{name}] ({kind})", [{k: r[k][f"ua_{kind}"] for k in folds} for r in scores],
                             folds))
    header = ["UA %", *(f"fold {k}" for k in folds), "mean", "std over seeds"]
    table = "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
                       *("| " + " | ".join(r) + " |" for r in rows)])
    atomic_write_text(out / "accuracy.json", json.dumps(results, indent=1, default=str) + "\n")
    atomic_write_text(out / "accuracy.md", table + "\n")
    return table, results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="corpus folder (default: the demo corpus)")
    parser.add_argument("--profile", default="demo", help="profile whose frozen-stage settings and ECAPA sizes are used")
    parser.add_argument("--epochs", type=int, default=None, help="epochs of both loops (default: the profile's)")
    parser.add_argument("--folds", default="1,2,3,4,5")
    parser.add_argument("--out", type=Path, default=REPO / "results" / "bench" / "accuracy")
    parser.add_argument("--variant", action="append", default=None, choices=sorted(VARIANTS),
                        help="settings of ours to compare (repeatable; default: default)")
    parser.add_argument("--seeds", type=int, default=1, help="training seeds of every row (0 .. N-1)")
    args = parser.parse_args(argv)
    folds = tuple(int(k) for k in args.folds.split(","))
    table, _ = compare(args.data, args.profile, folds, args.out, args.epochs, args.variant, args.seeds)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
