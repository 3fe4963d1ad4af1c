"""`run_benchmark.py export …` and `run_benchmark.py predict …`: use a trained model outside the benchmark.

Exit status: 0 when everything was exported / predicted; 1 when some audio files failed (the others
are still predicted and written); 2 on bad input (missing run or model, missing transcripts, ...).
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Sequence


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a positive number of seconds")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="run_benchmark.py", description="Use a trained model.")
    commands = parser.add_subparsers(dest="command", required=True)
    export = commands.add_parser("export", help="write one fold's trained model into a self-contained folder")
    export.add_argument("--run", type=Path, default=Path("results"),
                        help="the --out folder of a finished run, or its run.json / <upstream>_<downstream>.json")
    export.add_argument("--experiment", type=int, required=True,
                        help="Table 1 row (1-11), or 0 for a one-recipe run (--upstream X --downstream Y)")
    export.add_argument("--fold", type=int, required=True, help="fold whose model to export (its test session)")
    export.add_argument("--to", type=Path, required=True, help="model folder to write (new, empty or a model folder)")
    export.add_argument("--checkpoint", choices=("average", "best"), default="average",
                        help="top-k averaged weights (default) or the best epoch's")
    export.add_argument("--format", choices=("bundle", "transformers"), default="bundle",
                        help="bundle (default: every row, for `predict`) or transformers (an audio-classification "
                             "folder for AutoModelForAudioClassification / pipeline; fine-tuned mean-pooling rows)")
    export.add_argument("--window", type=_positive, default=None,
                        help="seconds per chunk when predicting long recordings (default 20)")
    predict = commands.add_parser("predict", help="predict the emotion of audio files or folders")
    predict.add_argument("--model", type=Path, required=True, help="a folder written by `export`")
    predict.add_argument("audio", type=Path, nargs="*",
                         help="audio files and/or folders (searched recursively); a text-only model reads no audio: "
                              "these name the --transcripts rows to classify (default: all of them)")
    predict.add_argument("--out", type=Path, default=None, help="also write the results to a .csv or .json file")
    predict.add_argument("--transcripts", type=Path, default=None,
                         help="CSV with columns file,text (needed by models with a text branch)")
    predict.add_argument("--batch-seconds", type=_positive, default=60.0,
                         help="padded seconds of audio per batch (default 60)")
    predict.add_argument("--window", type=_positive, default=None,
                         help="seconds per chunk for long recordings (default: the model's, 20 s)")
    predict.add_argument("--device", default=None, help="cpu, cuda, ... (default: CUDA when present)")
    return parser


def _export(args: argparse.Namespace) -> int:
    from .deploy.bundle import DEFAULT_WINDOW_SECONDS
    from .deploy.export import export_fold

    if args.format == "transformers":
        from .deploy.export import trained_model
        from .deploy.hf_export import check_expressible, export_transformers

        check_expressible(args.run, args.experiment)
        trained = trained_model(args.run, args.experiment, args.fold, args.checkpoint)
        export_transformers(trained, args.to)
        print(f"exported experiment {args.experiment} fold {args.fold} ({args.checkpoint} checkpoint) as a transformers "
              f"audio-classification model → {args.to}")
        return 0
    config = export_fold(args.run, args.experiment, args.fold, args.to, args.checkpoint,
                         args.window or DEFAULT_WINDOW_SECONDS)
    test = config.reference["test"]
    assert isinstance(test, dict)
    print(f"exported experiment {args.experiment} fold {args.fold} ({args.checkpoint} checkpoint; "
          f"upstream(s) {', '.join(u.name for u in config.upstreams)}; fold test WA {test['wa']:.2f} "
          f"UA {test['ua']:.2f}) → {args.to}")
    return 0


def _attribute_names(predictions: Sequence) -> list[str]:
    return list(predictions[0].attributes) if predictions and predictions[0].attributes else []


def format_table(labels: Sequence[str], predictions: Sequence) -> str:
    """One line per file: name, predicted emotion, probability of every label; arousal, valence and
    dominance (on [0, 1]) for dimensional models."""
    width = max([len(p.file) for p in predictions] + [4])
    attributes = _attribute_names(predictions)
    lines = [f"{'file':<{width}}  " + ("emotion  " if labels else "")
             + "  ".join(f"{name:>9}" if name in attributes else f"{name:>6}" for name in (*labels, *attributes))]
    for p in predictions:
        cells = [f"{p.probabilities[l]:6.3f}" for l in labels] + [f"{p.attributes[a]:9.3f}" for a in attributes]
        lines.append(f"{p.file:<{width}}  " + (f"{p.emotion:<7}  " if labels else "") + "  ".join(cells))
    return "\n".join(lines)


def results_text(path: Path, labels: Sequence[str], predictions: Sequence, failures: Sequence,
                 model: dict[str, object]) -> str:
    """CSV (one row per file, failed ones with `error`) or JSON (predictions, failures, model)."""
    if path.suffix.lower() == ".json":
        return json.dumps({"model": model, "labels": list(labels), "predictions": [asdict(p) for p in predictions],
                           "failures": [asdict(f) for f in failures]}, indent=1) + "\n"
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    attributes = _attribute_names(predictions)
    writer.writerow(["file", "emotion", *labels, *attributes, "seconds", "chunks", "error"])
    for p in predictions:
        seconds = "" if p.seconds is None else f"{p.seconds:.3f}"  # text-only models read no audio
        writer.writerow([p.file, p.emotion, *(f"{p.probabilities[l]:.6f}" for l in labels),
                         *(f"{p.attributes[a]:.6f}" for a in attributes), seconds, p.chunks, ""])
    for f in failures:
        writer.writerow([f.file, "", *[""] * (len(labels) + len(attributes)), "", "", f.reason])
    return buffer.getvalue()


def _predict(args: argparse.Namespace) -> int:
    from .common.io import atomic_write_text
    from .deploy.bundle import read_config
    from .deploy.predict import find_audio, load_model
    from .deploy.transcripts import check_transcript_keys, read_transcripts

    if args.out is not None and args.out.suffix.lower() not in (".csv", ".json"):
        raise ValueError(f"--out: {args.out}: expected a .csv or .json file name")
    config = read_config(args.model)  # cheap checks before the weights are read
    if config.needs_text and args.transcripts is None:
        names = ", ".join(u.name for u in config.upstreams if u.modality == "text")
        raise ValueError(f"--transcripts: model {args.model} reads transcripts (text upstream {names}); "
                         "pass --transcripts FILE.csv with columns file,text")
    transcripts = read_transcripts(args.transcripts) if args.transcripts is not None else None
    if config.text_only:  # names only: nothing needs to exist or be readable
        files, failures = [Path(key) for key in transcripts or {}] if not args.audio else list(args.audio), []
    elif not args.audio:
        raise ValueError("predict: give audio files or folders to classify")
    else:
        files, failures = find_audio(args.audio)
    if transcripts is not None and config.needs_text:
        check_transcript_keys(transcripts, files)  # before anything is printed: the error is the one line
    predictor = load_model(args.model, args.device)
    if args.window is not None:
        predictor.window_seconds = args.window
    print(f"model {args.model}: {', '.join(u.name for u in config.upstreams)} → {config.downstream.aggregator}; "
          f"long files in {predictor.window_seconds:g} s chunks", file=sys.stderr)
    with contextlib.redirect_stdout(sys.stderr):  # the audio reader's notes stay out of the printed table
        predictions, failed = predictor.predict_files(files, transcripts, args.batch_seconds,
                                                      progress=any(p.is_dir() for p in args.audio))
    failures += failed
    if predictions:
        print(format_table(predictor.labels, predictions))
    for failure in failures:
        print(f"failed: {failure.file}: {failure.reason}", file=sys.stderr)
    if args.out is not None:
        model = {"folder": str(args.model), **config.reference}
        atomic_write_text(args.out, results_text(args.out, predictor.labels, predictions, failures, model))
    print(f"{len(predictions)} file(s) predicted, {len(failures)} failed"
          + (f" → {args.out}" if args.out is not None else ""), file=sys.stderr)
    return 1 if failures or not predictions else 0


def main(argv: Sequence[str]) -> int:
    """Entry point for argv starting with `export` or `predict`."""
    args = build_parser().parse_args(list(argv))
    import torch

    torch.set_flush_denormal(True)
    from upstream.checkpoints import CheckpointNotFoundError

    from .errors import USER_ERRORS

    try:
        return _export(args) if args.command == "export" else _predict(args)
    except (*USER_ERRORS, CheckpointNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
