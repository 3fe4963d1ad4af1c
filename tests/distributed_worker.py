"""One training unit on fold 1 of a corpus, as the test of data parallelism runs it under torchrun.

Usage: python tests/distributed_worker.py CORPUS OUT finetune|finetune_small|frozen   (alone, or under torchrun)

Writes OUT/rank<R>.json: the unit's result, a hash of the whole model state (parameters and buffers)
at every evaluation, and the utterance ids this rank scored; rank 0 also writes OUT/final_state.pt,
the weights after the last epoch (before top-k averaging).
"""
from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import asdict, replace
from pathlib import Path

import torch

from benchmark.data import iemocap, splits
from benchmark.experiments.stages import frozen_feature_stores, run_unit
from benchmark.training import distributed
from benchmark.training import loop as train
from benchmark.training.batching import AudioStore
from benchmark.training.model import EmotionModel
from downstream.ecapa import EcapaConfig
from downstream.model import DownstreamConfig
from upstream import build_upstream
from upstream.hf_speech import SpeechModelUpstream
from upstream.tiny import build_tiny_model

NO_DROPOUT = dict(hidden_dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, feat_proj_dropout=0.0)


def state_hash(model: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def main(corpus: Path, out: Path, mode: str) -> None:
    torch.set_flush_denormal(True)
    world = distributed.init_from_env()
    fold = splits.folds(iemocap.load(corpus, strict=False), "superb", (1,))[0]
    store = AudioStore()
    models: list[EmotionModel] = []
    hashes: list[str] = []
    scored: list[str] = []

    def build_model() -> EmotionModel:
        if finetune:  # no dropout: one process and two see the same arithmetic
            upstream = SpeechModelUpstream(build_tiny_model("hubert", 0, **NO_DROPOUT))
            config = DownstreamConfig(featurizer="weighted", aggregator="mean")
            models.append(EmotionModel([upstream], config))
        else:
            ecapa = EcapaConfig(channels=16, embedding_size=8, attention_size=8, se_channels=8, res2net_scale=4)
            config = DownstreamConfig(aggregator="ecapa", input_norm="global", ecapa=ecapa)
            models.append(EmotionModel([build_upstream("fbank")], config, stored_layers=[1]))
        return models[-1]

    evaluate, logits_of = train.evaluate_outputs, train.logits_of

    def recording_evaluate(model, *args, **kwargs):
        hashes.append(state_hash(model))
        return evaluate(model, *args, **kwargs)

    def recording_logits_of(model, batch, *args, **kwargs):
        if not model.training:
            scored.extend(batch.ids)
        return logits_of(model, batch, *args, **kwargs)

    train.evaluate_outputs, train.logits_of = recording_evaluate, recording_logits_of
    final_states: list[dict] = []
    train_unit = train.train_unit

    def keeping_final_state(model, *args, **kwargs):
        outcome = train_unit(model, *args, **kwargs)
        final_states.append({k: v.clone() for k, v in model.state_dict().items()})
        return outcome

    import benchmark.experiments.scoring as scoring
    import benchmark.experiments.stages as stages

    stages.train_unit, scoring.evaluate_outputs = keeping_final_state, recording_evaluate
    finetune = mode.startswith("finetune")
    config = train.TrainConfig(epochs=2, head_lr=2e-3, upstream_lr=5e-4, finetune_upstream=finetune,
                               max_batch_seconds=16.0, eval_batch_seconds=8.0, top_k=2, warmup_fraction=0.2)
    if mode == "finetune_small":  # 2-3 rows per global batch: ranks get short shares; 2 micro-batches per step
        config = replace(config, max_batch_seconds=2.5, grad_accumulation=2)
    stores: list = []

    def features(model: EmotionModel) -> list:
        stores.extend(frozen_feature_stores(list(model.upstreams), store, out / "cache", "last", "float16", 8.0))
        return stores
    result = run_unit(out / "unit", build_model, fold, config, 0, store, None if finetune else features,
                      desc=f"rank {world.rank}")
    (out / f"rank{world.rank}.json").write_text(json.dumps({
        "rank": world.rank, "world_size": world.size, "result": asdict(result), "state_hashes": hashes,
        "scored": scored, "cache_hits": sum(s.cache_hits for s in stores), "valid_ids": [u.id for u in fold.valid], "test_ids": [u.id for u in fold.test],
    }))
    if world.is_main:
        torch.save(final_states[0], out / "final_state.pt")
    distributed.shutdown()


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3])
