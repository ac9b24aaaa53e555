from __future__ import annotations

from pathlib import Path

import click

from vlbias.cli._common import out_option
from vlbias.errors import plural


@click.command()
@click.argument("results", type=click.Path(path_type=Path))
@out_option(
    "report", short=False, help="Report folder [default: RESULTS/report, or RESULTS/report-md for --format md]."
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["html", "md"]),
    default="html",
    show_default=True,
    help="html: pages to open in a browser; md: one Markdown summary (report.md) for papers and issues.",
)
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    help="Processes drawing the figures [default: the CPU count, at most 8].",
)
@click.option(
    "--self-contained",
    is_flag=True,
    help="Copy every table into the report; by default a run's table over 64 kB (perception's pairs and curve grid) "
    "is linked where the results keep it, which keeps a report of ten models under 5 MB.",
)
def report(results, out, overwrite, fmt, jobs, self_contained):
    """Write a static report of RESULTS: a sweep folder, its results.duckdb, or one audit's output folder.

    \b
    The HTML report opens offline (no server, no network): a summary of models, audits, datasets and what was
    skipped; the association tests as a heat map and forest plots; zero-shot group bar charts and model-group
    comparisons; perception level curves and factor effects; the upstream analysis of `vlbias analyze`; one page per
    model; and a methods page with a sweep config that runs it all again. Every figure links the CSV it draws.
    """
    from vlbias.report import build_report

    summary = build_report(results, out, fmt=fmt, workers=jobs, overwrite=overwrite, self_contained=self_contained)
    for e in summary.errors:
        click.echo(f"vlbias: warning: {e}", err=True)
    main = "index.html" if fmt == "html" else "report.md"
    click.echo(
        f"report: {plural(len(summary.pages), 'page')}, {plural(summary.figures, 'figure')}, "
        f"{plural(summary.csv, 'data file')} in "
        f"{summary.seconds:.1f} s; open {summary.out / main}",
        err=True,
    )
    click.echo(str(summary.out / main))
