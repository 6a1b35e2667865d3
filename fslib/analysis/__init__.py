"""Layer 4, the analyses of finished runs: tables, significance, claims, curves, plots, the task notebooks' views
and the reports. It does not import the batch layer.

`fslib.analysis.compare_methods` is the tables module's, re-exported where the README shows it."""

from fslib.analysis.tables import compare_methods

__all__ = ["compare_methods"]
