"""From predictions to numbers people read: metrics (`metrics`), the record a finished unit leaves
(`results`), bootstrap intervals and paired tests (`stats`), table rows (`rows`), the tables with their
statistics sections (`tables`, `sections`) and learned layer weights (`layers`).

May import: `benchmark.common`, `benchmark.data`. (Training imports its metrics for validation, so
nothing here knows how units are trained: rows carry their results and checkpoint files.)
"""
