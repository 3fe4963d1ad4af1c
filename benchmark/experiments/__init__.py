"""What to train, as data: Table 1's rows (`table1/*.yaml`) and profiles (`profiles/*.yaml`) validated
into dataclasses (`definitions`), the units they need, each once and keyed by everything that decides
its result (`plan`), and the execution of a unit, stage 1 or stage 2 (`stages`).

May import: `benchmark.common`, `benchmark.data`, `benchmark.reporting`, `benchmark.training`.
"""
