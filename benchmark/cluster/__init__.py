"""A run's units as cluster jobs through submitit (`launch`): SLURM with dependencies, or local waves.

May import: `benchmark.common`, `benchmark.data`, `benchmark.reporting`, `benchmark.training`,
`benchmark.experiments`. What a job runs comes from the caller (the runner) as callables.
"""
