"""Fixtures of the search tests: the tiny bench (hp_bench.py)."""
from hp_bench import bench  # noqa: F401 - a session fixture shared by the end-to-end tests
