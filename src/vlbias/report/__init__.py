"""Static reports of audit results (`vlbias report`): HTML pages with figures and the data behind them, or Markdown.

A report is made from a sweep's results (its folder or its results.duckdb) or from one audit's output folder, and is
a folder: pages, figures (PNG) and data (CSV; compressed Parquet for long tables) side by side, no server, no
network, no JavaScript. A run's table over 64 kB is linked where the results keep it; ``self_contained`` copies it
too, so that the folder travels alone.
"""

from vlbias.report.build import FORMATS, ReportSummary, build_report

__all__ = ["FORMATS", "ReportSummary", "build_report"]
