"""Static reports of audit results (`vlbias report`): HTML pages with figures and the data behind them, or Markdown.

A report is made from a sweep's results (its folder or its results.duckdb) or from one audit's output folder, and is
a self-contained folder: pages, figures (PNG) and data (CSV; compressed Parquet for long tables) side by side, no
server, no network, no JavaScript.
"""

from vlbias.report.build import FORMATS, ReportSummary, build_report

__all__ = ["FORMATS", "ReportSummary", "build_report"]
