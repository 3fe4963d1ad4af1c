"""What the command line asks for (`RunRequest`) and how it resolves into a profile, the experiments
to run (a table's rows, or the one-row experiment of a recipe `--upstream X --downstream Y`) and the
data they read (`read_corpus`: a corpus recipe's folds, restricted classes, or a cross-corpus pair)."""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from upstream import get_spec

from .cluster.launch import SlurmOptions
from .common.config import ConfigError
from .data import iemocap, splits
from .data.corpus import load_corpus
from .data.cross import cross_folds
from .data.fingerprint import data_fingerprint, fold_fingerprint
from .data.labels import parse_label_spec, restrict
from .experiments.definitions import ExperimentConfig, Profile, load_profile, load_table, select
from .experiments.published import PREFIX, is_published
from .outputs import CorpusRead, recorded_corpus
from .reporting.sections import check_compare
from .training.device import default_device

DEFAULT_DATA_ROOT = Path("data")
DOWNSTREAMS: tuple[str, ...] = ("mean", "ecapa")

@dataclass(frozen=True)
class RunRequest:
    """What the command line asked for."""

    upstream: str = "fbank"
    downstream: str = "mean"
    table: int | None = None
    experiments: tuple[int, ...] = ()
    data: Path | None = None  # None: the demo corpus under DEFAULT_DATA_ROOT, generated when missing
    folds: tuple[int, ...] = ()  # empty: every fold of the corpus
    corpus: str = "iemocap"  # a registered corpus recipe (`benchmark.data.corpus`)
    test_corpus: str = ""  # `--test-corpus B`: train on `corpus`'s folds, test each on all of B (`data.cross`)
    corpora: tuple[str, ...] = ()  # `--corpora`: the recipe on each of these corpora (`runner.run_corpora`)
    emobox_meta: Path | None = None  # `--corpus emobox:<dataset>`: the EmoBox checkout (or its data/) to read folds from
    task: str = "categorical"  # `--task`: categorical | dimensional | both (`training.objectives`)
    labels: str = ""  # `--labels`: classes kept, with merges (`benchmark.data.labels`); empty: all of the corpus'
    out: Path = Path("results")
    seed: int = 0
    split: str = "superb"
    strict: bool | None = None
    profile: str | Profile | None = None  # name, YAML path or Profile; None: "demo" without --data, else "paper"
    epochs: int | None = None
    upstream_ckpt: str | None = None
    trust_checkpoint: bool = False
    report_only: bool = False
    estimate: bool = False  # print the run's cost (`experiments.estimate`) and stop before training
    disk_check: bool = True  # refuse to start when the projected peak disk exceeds the free space of `out`
    compare: tuple[int, ...] = ()  # experiments of the table whose pairwise matrix is printed
    threads: int | None = None  # torch CPU threads, set by the CLI here and by each cluster job for itself
    launcher: str = "local"  # "local": units run in this process (or torchrun's); "slurm": one job per unit
    slurm: SlurmOptions | None = None
    device: str | None = None  # where the units run ("cuda" | "cpu"); None: this machine's (CUDA when present)
    input_norm: str = "auto"  # one recipe: normalisation of the upstream's features (ExperimentConfig.input_norm)
    jobs: int = 1  # units trained at once, each in its own worker process (`cluster.pool`)
    seeds: int = 1  # train everything with seeds seed … seed + seeds − 1 and report the spread (`reporting.seeds`)
    label_map: str = ""  # `--label-map`: an `hfcls:` model's labels → the corpus' classes (`experiments.published`)


def resolve_profile(request: RunRequest) -> Profile:
    """The profile asked for, with --epochs applied, precisions resolved for the device the units run
    on, and no stand-in for an upstream given an explicit --upstream-ckpt (the checkpoint means that
    architecture in any profile)."""
    if isinstance(request.profile, Profile):
        profile = request.profile
    else:
        profile = load_profile(request.profile or ("demo" if request.data is None else "paper"))
    if request.epochs is not None:  # --epochs wins over the profile's, the dimensional tasks' too
        epochs = request.epochs
        profile = replace(profile.with_training(lambda c: replace(c, epochs=epochs)), dimensional_epochs=None)
    if request.upstream_ckpt and request.upstream in profile.upstreams:
        profile = replace(profile, upstreams={k: v for k, v in profile.upstreams.items() if k != request.upstream})
    return profile.resolved_for(request.device or default_device().type)


def recipe_experiment(request: RunRequest, profile: Profile, trainable: bool) -> ExperimentConfig:
    """The one-row experiment behind `--upstream X --downstream Y`."""
    name = profile.resolve(request.upstream)
    return ExperimentConfig(id=0, description=f"{name} → {request.downstream} + linear", branches=(request.upstream,),
                            finetune=(trainable,), aggregator=request.downstream,  # type: ignore[arg-type]
                            input_norm=request.input_norm, task=request.task)  # type: ignore[arg-type]


def published_experiment(name: str) -> ExperimentConfig:
    return ExperimentConfig(id=0, description=f"published {name[len(PREFIX):]}, as it is (no training)", branches=(name,),
                            finetune=(False,), aggregator="mean", set="published")


def check_published(request: RunRequest) -> None:
    """What an `hfcls:` model, scored as it is, cannot do."""
    for given, what in ((request.task != "categorical", f"--task {request.task}"),
                        (bool(request.upstream_ckpt), "--upstream-ckpt"), (request.input_norm != "auto", "--input-norm"),
                        (request.downstream != "mean", f"--downstream {request.downstream}"),
                        (bool(request.test_corpus), "--test-corpus (nothing is trained on a corpus: give --corpus B)"),
                        (request.seeds > 1, "--seeds (no training, no seed)")):
        if given:
            raise ConfigError(f"--upstream {request.upstream}: a published audio-classification model is scored as it "
                              f"is (its own head, categorical); {what} does not apply")


def check_published_rows(request: RunRequest, experiments: list[ExperimentConfig]) -> None:
    """A table's `hfcls:` rows are whole classifiers: one branch, categorical; `--label-map` needs one."""
    rows = [e for e in experiments if any(is_published(b) for b in e.branches)]
    for e in rows:
        if len(e.branches) != 1 or e.task != "categorical":
            raise ConfigError(f"experiment {e.id}: an hfcls: model is a whole classifier scored as it is; its row has "
                              f"that one branch and task categorical (got {', '.join(e.branches)}, task {e.task})")
    if rows and request.seeds > 1:
        raise ConfigError(f"experiment {rows[0].id}: a published model is not trained; --seeds does not apply")
    if request.label_map and not rows:
        raise ConfigError("--label-map maps a published model's labels: add one with --upstream hfcls:<hub id or dir>")


def _is_trainable(name: str, request: RunRequest) -> bool:
    """Whether the upstream has trainable parameters (fine-tuned) or none (fbank: frozen features).
    Building it here also checks its checkpoint before anything is written; `--estimate` reads only
    the architecture instead, so the paper profile is sized without its checkpoints."""
    from upstream import build_upstream
    from upstream.architecture import architecture_size

    size = architecture_size(name) if request.estimate else None
    if size is not None:
        return size.parameters > 0
    upstream = build_upstream(name, ckpt=request.upstream_ckpt, trust_checkpoint=request.trust_checkpoint or None)
    return any(p.requires_grad for p in upstream.parameters())


def corpus_dir(request: RunRequest) -> Path:
    if request.data is not None:
        return request.data
    if request.corpus != "iemocap":
        from .data.corpus import corpus_info

        raise ConfigError(f"--corpus {request.corpus} needs --data DIR: {corpus_info(request.corpus).layout} "
                          "(the offline demo corpus is IEMOCAP-shaped)")
    from .data.demo import ensure_demo_corpus

    return ensure_demo_corpus(DEFAULT_DATA_ROOT)


def experiments_of(request: RunRequest, profile: Profile) -> tuple[str, list[ExperimentConfig]]:
    if request.table is not None or request.experiments or request.compare:
        if request.upstream_ckpt:
            raise ConfigError("--upstream-ckpt applies to one upstream: use it with --upstream, not with a table")
        if request.input_norm != "auto":
            raise ConfigError("--input-norm applies to one recipe: a table's rows set input_norm in their files")
        experiments = load_table(request.table or 1)
        experiments = select(experiments, request.experiments) if request.experiments else experiments
        if is_published(request.upstream):  # a published model as row 0, beside the table's
            check_published(request)
            experiments = [published_experiment(request.upstream), *experiments]
        check_compare(request.compare, [e.id for e in experiments])
        if request.task != "categorical":  # --task applies to every row of the table
            experiments = [replace(e, task=request.task) for e in experiments]  # type: ignore[arg-type]
        check_published_rows(request, experiments)
        task = table_task(experiments)
        if task == "dimensional" and request.compare:
            raise ConfigError("--compare tests WA/UA; rows of task dimensional have none (their paired CCC "
                              "differences are in the table's _pairwise_ccc.csv)")
        return f"table{request.table or 1}", experiments
    name = profile.resolve(request.upstream)
    if is_published(name):
        check_published(request)
        return "", [published_experiment(name)]
    if request.label_map:
        raise ConfigError("--label-map maps a published model's labels: use it with --upstream hfcls:<hub id or dir>")
    get_spec(name)  # unknown names fail before any data is read
    if request.downstream not in DOWNSTREAMS:
        raise ValueError(f"--downstream: unknown downstream {request.downstream!r}; expected one of {', '.join(DOWNSTREAMS)}")
    return "", [recipe_experiment(request, profile, _is_trainable(name, request))]


def table_task(experiments: list[ExperimentConfig]) -> str:
    """The task the table's corpus is read for: dimensional (every rated utterance) when all its rows are,
    both when any row regresses attributes beside classes (all need ratings), else categorical."""
    tasks = {e.task for e in experiments}
    if "dimensional" in tasks and tasks != {"dimensional"}:
        one = next(e.id for e in experiments if e.task == "dimensional")
        other = next(e for e in experiments if e.task != "dimensional")
        raise ConfigError(f"experiment {one}: task dimensional tests every rated utterance, experiment {other.id} "
                          f"(task {other.task}) the classes' only; a table reads one set: give its rows one of the two")
    return "dimensional" if "dimensional" in tasks else "both" if "both" in tasks else "categorical"


def read_corpus(request: RunRequest, folds: tuple[int, ...], record: Path, quiet: bool = False) -> CorpusRead:
    """Labels, transcripts and folds of the corpus (file metadata only: no audio is decoded here).

    `--report-only` without the corpus (its folder absent, e.g. results copied to a laptop) reports
    the units of the data that `record` (the previous run's run.json / recipe JSON) was trained on.
    """
    if request.report_only and request.data is not None and not request.data.exists():
        print(f"note: {request.data} not found; reporting the data recorded in {record}")
        return recorded_corpus(record, folds)
    if request.test_corpus:
        return cross_corpus(request, folds, quiet)
    if request.corpus == "iemocap":  # read as before the corpus seam, fold by fold (the demo is IEMOCAP-shaped)
        # the dimensional task rates every turn, not only the four classes' (`iemocap.load`)
        utterances = iemocap.load(corpus_dir(request), request.strict, not quiet, every_turn=request.task == "dimensional")
        chosen = splits.folds(utterances, request.split, folds or splits.SESSIONS)  # type: ignore[arg-type]
        labels: tuple[str, ...] = iemocap.LABELS
    else:
        corpus = load_corpus(request.corpus, corpus_dir(request), request.strict, request.split, not quiet,
                             request.emobox_meta, every_rated=request.task == "dimensional")
        chosen, labels, utterances = [corpus.fold(k) for k in folds] if folds else list(corpus.folds), corpus.labels, \
            list(corpus.utterances)
    if request.labels:  # restricted (and merged) classes: the folds keep only those
        spec = parse_label_spec(request.labels)
        chosen, labels = restrict(chosen, labels, spec, request.corpus), spec.classes
        utterances = list({u.id: u for f in chosen for u in (*f.train, *f.valid, *f.test)}.values())
    check_task_data(request, [u for f in chosen for u in (*f.train, *f.valid, *f.test)])
    split_folds = {f.index: f for f in chosen}
    return CorpusRead({k: fold_fingerprint(f) for k, f in split_folds.items()}, split_folds,
                      data_fingerprint(utterances), labels)


def check_task_data(request: RunRequest, utterances: list) -> None:
    """Before anything is written: a task with attributes needs them on every utterance; `--labels`
    restricts classes, which the dimensional task (every rated utterance) does not use."""
    if request.task == "categorical":
        return
    if request.labels and request.task == "dimensional":
        raise ConfigError("--labels chooses classes; --task dimensional uses every rated utterance (give --task both)")
    unrated = [u.id for u in utterances if u.attributes is None]
    if unrated:
        raise ConfigError(f"--task {request.task}: {len(unrated)} utterance(s) of {request.corpus} have no arousal/"
                          f"valence/dominance ratings (first: {unrated[0]}); the corpora with ratings are IEMOCAP and "
                          "MSP-Podcast")


def cross_corpus(request: RunRequest, folds: tuple[int, ...], quiet: bool) -> CorpusRead:
    """`--train-corpus A --test-corpus B`: A's folds with all of B as every fold's test set, over their shared
    classes (`data.cross`); `--data` holds one folder per corpus, named as it."""
    if request.data is None:
        raise ConfigError("--test-corpus needs --data DIR holding one folder per corpus, named as it (DIR/ravdess, ...)")
    if request.table is not None or request.experiments or request.labels:
        raise ConfigError("--test-corpus runs one recipe (--upstream X --downstream Y) on the classes both corpora share")
    train, test = (load_corpus(name, request.data / name, request.strict, request.split, not quiet, request.emobox_meta)
                   for name in (request.corpus, request.test_corpus))
    labels, mapping, cross = cross_folds(train, test)
    if not quiet:
        print(f"cross-corpus {request.corpus} → {request.test_corpus}: classes {', '.join(labels)} (" +
              ", ".join(f"{k} → {v}" for k, v in mapping.items()) + ")")
    chosen = {f.index: f for f in cross if not folds or f.index in folds}
    utterances = list({u.id: u for f in chosen.values() for u in (*f.train, *f.valid, *f.test)}.values())
    return CorpusRead({k: fold_fingerprint(f) for k, f in chosen.items()}, chosen, data_fingerprint(utterances),
                      labels, mapping)
