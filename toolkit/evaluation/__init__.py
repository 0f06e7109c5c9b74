"""Benchmark scores as the published pysot toolkit computes them: pure functions over arrays + thin benchmarks.

One-pass (`ope`), VOT reset-based accuracy/robustness (`ar`) and EAO (`eao`), long-term F1 (`longterm`),
GOT-10k AO/SR (`got10k`); `runner` evaluates a result folder's trackers and formats pysot's tables.
Only numpy is needed (no torch).
"""
from toolkit.evaluation.ar import AccuracyRobustnessBenchmark, accuracy_robustness
from toolkit.evaluation.common import MissingResultWarning
from toolkit.evaluation.eao import EAO_INTERVALS, EAO_TAGS, EAOBenchmark, expected_overlap_curves
from toolkit.evaluation.got10k import GOT10kBenchmark, ao_sr
from toolkit.evaluation.longterm import F1Benchmark, determine_thresholds, f1_curves
from toolkit.evaluation.ope import OPEBenchmark, ope_curves

__all__ = [
    "OPEBenchmark", "AccuracyRobustnessBenchmark", "EAOBenchmark", "F1Benchmark", "GOT10kBenchmark",
    "MissingResultWarning", "EAO_INTERVALS", "EAO_TAGS", "ope_curves", "accuracy_robustness",
    "expected_overlap_curves", "determine_thresholds", "f1_curves", "ao_sr",
]
