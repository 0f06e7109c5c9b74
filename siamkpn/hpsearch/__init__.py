"""Hyper-parameter search for the SiamKPN tracker over training snapshots (``tools/hp_search_epoch.py``).

It needs both the tracker (``siamkpn``) and the benchmarks (``toolkit``), which never import each other,
hence its own package. ``grid`` (search space, names), ``study`` (the shared Optuna work queue), ``worker``
(one worker's loop), ``evaluate`` (batched tracking + scoring; imports torch), ``summary`` (tables, plots).
"""
from siamkpn.hpsearch.grid import Point, SearchSpace, parse_int_range, parse_range

__all__ = ["Point", "SearchSpace", "parse_range", "parse_int_range"]
