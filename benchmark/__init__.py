"""The benchmark: corpora → training units → tables, one folder per layer of the data flow.

    common/       foundations: atomic files, typed YAML config, run lock, scoped RNG, fault injection
    data/         corpus readers (IEMOCAP), folds and SUPERB's split, audio reading, the demo corpus
    reporting/    metrics (WA, UA, F1), the unit result record, statistics, tables, figures
    training/     batching, the emotion model, the training loop, checkpoints, top-k averaging,
                  the feature cache, data parallelism, device and precision
    experiments/  Table 1 rows and profiles as YAML, their validation, the unit planner, unit execution
    deploy/       a trained model as a folder (bundle), export from a run, predict on new audio
    cluster/      one SLURM (submitit) job per unit
    runner.py     plans, runs and reports a request (what `run_benchmark.py` calls), `--seeds N` too;
    request.py    the request (RunRequest) and how it resolves into a profile, experiments and the data read;
    outputs.py    the tables / recipe CSV a finished run writes, with their provenance
    cli_model.py  `run_benchmark.py export|predict`;  errors.py  the errors shown as one line
    predict.py    `from benchmark.predict import load_model`, the public entry point of deploy/

Each folder imports only the folders listed above it (reporting sits below training because
validation scores with its metrics); `tests/test_layout.py` checks this, and that no modules import
each other, from the source's imports.
"""
