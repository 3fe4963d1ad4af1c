#!/usr/bin/env python
"""Speech emotion recognition benchmark on IEMOCAP (leave-one-session-out, WA/UA per fold)."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def parse_folds(text: str) -> tuple[int, ...]:
    try:
        folds = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected fold numbers separated by commas, e.g. 1,3") from None
    bad = [k for k in folds if k < 1]
    if bad or not folds:
        raise argparse.ArgumentTypeError(f"{text!r}: fold {bad[0] if bad else '?'} does not exist; folds are numbered from 1")
    return folds


def parse_ids(text: str) -> tuple[int, ...]:
    try:
        ids = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected experiment numbers separated by commas, e.g. 3,5") from None
    if not ids:
        raise argparse.ArgumentTypeError("expected at least one experiment number")
    return ids


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="subcommands (each with its own --help):\n"
               "  run_benchmark.py export --run DIR --experiment N --fold K --to FOLDER   a trained model as a folder\n"
               "  run_benchmark.py predict --model FOLDER FILE...                         emotions of recordings")
    parser.add_argument("--table", type=int, default=None, help="run every experiment of a table (1: the paper's Table 1)")
    parser.add_argument("--experiment", type=parse_ids, default=(), help="run only these experiments of the table, e.g. 3,5")
    parser.add_argument("--upstream", default="fbank",
                        help="one recipe: registered upstream name (see --list-upstreams); default fbank. "
                             "hfcls:<hub id or dir>: a published transformers audio-classification model scored as it "
                             "is on the folds (with --table: as row 0 beside the table's)")
    parser.add_argument("--label-map", default="",
                        help="hfcls: models: their labels → the corpus' classes where the names differ, e.g. "
                             "anger=ang,happiness=hap (the rest are matched by name; unmatched ones are reported)")
    parser.add_argument("--downstream", default="mean", help="one recipe: aggregator mean | ecapa; default mean")
    parser.add_argument("--input-norm", default="auto",
                        help="one recipe: normalisation of the upstream's features, auto | none | global | sentence | "
                             "sentence_mean (default auto: fbank standardised with global statistics, SSL and text "
                             "features as they are)")
    parser.add_argument("--profile", default=None,
                        help="demo | paper | a profile YAML file (default: demo on the demo corpus, paper with --data)")
    parser.add_argument("--report-only", action="store_true",
                        help="rebuild the tables from the saved per-fold results, without training")
    parser.add_argument("--estimate", action="store_true",
                        help="print what the run will cost (disk, host RAM, GPU memory per unit and in total) and exit "
                             "without training; works offline, from the architectures and the corpus' durations")
    parser.add_argument("--no-disk-check", action="store_true",
                        help="start even when the projected peak disk exceeds the free space of --out")
    parser.add_argument("--compare", type=parse_ids, default=(),
                        help="print the paired significance matrix of these experiments of the table, e.g. 3,5,7")
    parser.add_argument("--data", type=Path, default=None,
                        help="the corpus folder: IEMOCAP_full_release for iemocap (default: the demo corpus, generated "
                             "when missing); see --list-corpora for the others")
    parser.add_argument("--folds", type=parse_folds, default=(),
                        help="folds to run, e.g. 1,3 (default: all of the corpus; IEMOCAP has 5)")
    parser.add_argument("--corpus", default="iemocap",
                        help="registered corpus recipe (see --list-corpora; default iemocap); --data is its folder")
    parser.add_argument("--corpora", type=lambda text: tuple(p.strip() for p in text.split(",") if p.strip()),
                        default=(), help="run the recipe on every fold of each of these corpora (e.g. "
                                         "ravdess,cremad,emodb; --data holds one folder per corpus, named as it) and "
                                         "write corpora.csv / corpora.md")
    parser.add_argument("--train-corpus", default=None, help="cross-corpus: the corpus to train on (as --corpus)")
    parser.add_argument("--test-corpus", default="",
                        help="cross-corpus: test every fold's model of --train-corpus on all of this corpus, over the "
                             "classes both share (--data holds one folder per corpus); writes cross_<A>_<B>.csv")
    parser.add_argument("--emobox-meta", type=Path, default=None,
                        help="with --corpus emobox:<dataset>: an EmoBox checkout (or its data/ folder) holding the "
                             "dataset's label_map.json and fold_<k>/ jsonl files; --data is the audio")
    parser.add_argument("--task", choices=("categorical", "dimensional", "both"), default="categorical",
                        help="what the models learn: emotion classes (default), arousal/valence/dominance scored by "
                             "CCC, or both at once (one upstream and aggregator, two heads)")
    parser.add_argument("--labels", default="",
                        help="keep only these classes of the corpus, in this order, merging others into them: "
                             "e.g. angry,happy,neutral,sad,calm=neutral (default: all its classes)")
    parser.add_argument("--out", type=Path, default=Path("results"), help="folder for the results (default: results/)")
    parser.add_argument("--seed", type=int, default=0, help="run seed; same seed on CPU gives identical metrics")
    parser.add_argument("--seeds", type=int, default=1,
                        help="train everything with N seeds (--seed, --seed+1, ...) and write <table>_seeds.csv: "
                             "mean, std and interval over seeds beside the test-set interval (default 1)")
    parser.add_argument("--split", choices=("superb", "speaker"), default="superb",
                        help="train/valid split: SUPERB's exact split, or speaker-disjoint")
    parser.add_argument("--no-strict", action="store_true",
                        help="accept a copy of IEMOCAP that does not hold all 5531 utterances")
    parser.add_argument("--upstream-ckpt", default=None, help="checkpoint override: local path or hub id")
    parser.add_argument("--trust-checkpoint", action="store_true",
                        help="allow unpickling a checkpoint file that is not plain tensors (only for files you trust)")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs per fold (default: recipe's)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="units trained at once, each in its own worker process with --threads (default 1) torch "
                             "threads; on a few CPU cores small models finish sooner so (make demo uses 2)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's choice); results on CPU depend on it, run.json records it")
    cluster = parser.add_argument_group("cluster", "one job per unit through submitit (README: Running on a cluster)")
    cluster.add_argument("--launcher", choices=("local", "slurm"), default="local",
                         help="local: run the units here (under torchrun: data-parallel); slurm: submit them as jobs")
    cluster.add_argument("--slurm-partition", default=None, help="SLURM partition of the jobs")
    cluster.add_argument("--slurm-account", default=None, help="SLURM account to charge")
    cluster.add_argument("--gpus-per-job", type=int, default=1,
                         help="GPUs per unit job; more than 1 trains data-parallel, one task per GPU (default 1)")
    cluster.add_argument("--cpus-per-gpu", type=int, default=8, help="CPU cores per task (default 8)")
    cluster.add_argument("--mem-gb", type=int, default=64, help="memory per job in GB (default 64)")
    cluster.add_argument("--timeout-min", type=int, default=24 * 60,
                         help="time limit per job; a job that reaches it is requeued and resumes (default 1440)")
    cluster.add_argument("--slurm-cluster", choices=("slurm", "local", "debug"), default="slurm",
                         help="submitit executor: slurm, or local/debug to run the same jobs on this machine")
    cluster.add_argument("--wait", action="store_true", help="with slurm: stay until every job has ended")
    cluster.add_argument("--local-jobs", type=int, default=1,
                         help="with --slurm-cluster local: unit jobs run at once on this machine (default 1)")
    parser.add_argument("--list-upstreams", action="store_true", help="print the registered upstreams and exit")
    parser.add_argument("--list-corpora", action="store_true",
                        help="print the registered corpora (classes, folds, licence, where to obtain them) and exit")
    parser.add_argument("--list-downstreams", action="store_true",
                        help="print the aggregators with output size and parameter count, and exit")
    return parser


CLUSTER_OPTIONS = ("slurm_partition", "slurm_account", "gpus_per_job", "cpus_per_gpu", "mem_gb", "timeout_min",
                   "slurm_cluster", "wait", "local_jobs")


def cluster_option_problem(args: argparse.Namespace, parser: argparse.ArgumentParser) -> str | None:
    """What is wrong with the cluster options, if anything (one line)."""
    if args.launcher != "slurm":
        given = [name for name in CLUSTER_OPTIONS if getattr(args, name) != parser.get_default(name)]
        if given:
            return f"--{given[0].replace('_', '-')} applies to --launcher slurm only"
    for name, least in (("gpus_per_job", 0), ("cpus_per_gpu", 1), ("mem_gb", 1), ("timeout_min", 1), ("local_jobs", 1)):
        if getattr(args, name) < least:
            return f"--{name.replace('_', '-')} must be at least {least}, got {getattr(args, name)}"
    return None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("export", "predict"):  # use a trained model: see benchmark/cli_model.py
        from benchmark.cli_model import main as model_main

        return model_main(argv)
    args = build_parser().parse_args(argv)
    # Heavy imports after parsing, so --help answers at once.
    import torch

    torch.set_flush_denormal(True)  # tiny models' gradients reach denormal floats, which CPUs process very slowly
    from benchmark.cluster.launch import JobFailedError, SlurmOptions
    from benchmark.errors import USER_ERRORS
    from benchmark.runner import RunRequest, run
    from benchmark.training import distributed

    if args.list_corpora:
        from benchmark.data.corpus import format_corpus_table

        print(format_corpus_table())
        return 0
    if args.list_upstreams or args.list_downstreams:
        from downstream.catalog import format_downstream_table
        from upstream.catalog import format_upstream_table

        print(format_upstream_table() if args.list_upstreams else format_downstream_table())
        if args.list_upstreams:  # not an upstream of the hub: a whole published classifier, scored as it is
            print("\nhfcls:<hub id or dir>: a published transformers audio-classification model scored as it is on the "
                  "folds (no training; labels mapped by name, --label-map where they differ)")
        return 0

    if args.epochs is not None and args.epochs < 1:
        print("error: --epochs must be at least 1", file=sys.stderr)
        return 2
    if args.threads is not None and args.threads < 1:
        print("error: --threads must be at least 1", file=sys.stderr)
        return 2
    if args.seeds < 1:
        print("error: --seeds must be at least 1", file=sys.stderr)
        return 2
    if args.jobs < 1:
        print("error: --jobs must be at least 1", file=sys.stderr)
        return 2
    if args.jobs > 1 and args.launcher == "slurm":
        print("error: --jobs runs units in local worker processes; with --launcher slurm each unit is a job already",
              file=sys.stderr)
        return 2
    if args.jobs > 1:  # after a killed worker, multiprocessing's tracker would warn of its semaphores: noise
        os.environ.setdefault("PYTHONWARNINGS", "ignore:resource_tracker:UserWarning")
    problem = cluster_option_problem(args, build_parser())
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    slurm = SlurmOptions(args.slurm_partition, args.slurm_account, args.gpus_per_job, args.cpus_per_gpu, args.mem_gb,
                         args.timeout_min, args.slurm_cluster, args.wait, args.local_jobs)
    request = RunRequest(
        table=args.table,
        experiments=args.experiment,
        profile=args.profile,
        epochs=args.epochs,
        report_only=args.report_only,
        estimate=args.estimate,
        disk_check=not args.no_disk_check,
        compare=args.compare,
        upstream=args.upstream,
        downstream=args.downstream,
        data=args.data,
        folds=args.folds,
        corpus=args.train_corpus or args.corpus,
        test_corpus=args.test_corpus,
        labels=args.labels,
        label_map=args.label_map,
        task=args.task,
        emobox_meta=args.emobox_meta,
        corpora=args.corpora,
        out=args.out,
        seed=args.seed,
        seeds=args.seeds,
        split=args.split,
        strict=False if args.no_strict else None,
        upstream_ckpt=args.upstream_ckpt,
        trust_checkpoint=args.trust_checkpoint,
        threads=args.threads,
        launcher=args.launcher,
        slurm=slurm if args.launcher == "slurm" else None,
        input_norm=args.input_norm,
        jobs=args.jobs,
    )
    if not distributed.init_from_env().is_main:  # under torchrun rank 0 alone reports progress
        sys.stdout = open(os.devnull, "w")
    try:
        run(request)
    except USER_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except JobFailedError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        distributed.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
