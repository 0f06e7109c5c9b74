"""Headless (Agg) PNG plots of evaluation results."""
from toolkit.visualization.plots import plot_curves, plot_eao_ranking, plot_got10k, plot_ope, plot_reports

__all__ = ["plot_curves", "plot_ope", "plot_eao_ranking", "plot_got10k", "plot_reports"]
