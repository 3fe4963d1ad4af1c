"""Foundations every layer uses: atomic file writes (`io`), typed YAML configs (`config`), the run
lock (`lock`), scoped randomness (`seeding`) and crash injection for tests (`faults`).

Imports no other part of `benchmark`.
"""
