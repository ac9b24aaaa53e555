from __future__ import annotations

from pathlib import Path

import click

from vlbias.cli._common import out_option
from vlbias.cli.results import db_option
from vlbias.errors import plural


@click.command()
@db_option
@click.option("--audit", default="eat", show_default=True, help="Audit whose results to analyse.")
@click.option("--table", default="results", show_default=True, help="Its result table.")
@click.option("--effect", default="effect_size", show_default=True, help="The bias measure column.")
@click.option("--by", default="test,order", show_default=True, help="Columns that name a test (the groups).")
@click.option("--where", default=None, metavar="SQL", help="Only result rows matching an SQL condition.")
@click.option(
    "--reference",
    multiple=True,
    metavar="FACTOR=LEVEL",
    help="Reference level of architecture_family or dataset_family [default: the most common]. Repeatable.",
)
@click.option("--size-column", default="n_params", show_default=True, help="Model size: n_params, n_params_image, ...")
@click.option("--accuracy", default=None, help="Downstream accuracy file, or `openclip` [default: the database's].")
@click.option("--metric", default=None, help="Downstream metric [default: average, else imagenet1k].")
@click.option("--fdr", type=float, default=0.05, show_default=True, help="False discovery rate of the BH correction.")
@click.option(
    "--term",
    "terms",
    multiple=True,
    type=click.Choice(["layer"]),
    help="More terms of the mixed model from the result rows: layer (depth, for a sweep with layers:; the layered "
    "rows are fitted) [default: none; results at several layers then use the models' embeddings].",
)
@click.option(
    "--compare-by",
    default=None,
    metavar="FACT",
    help="Model fact of the audits' own comparisons (zero-shot) [default: the named model set's, else "
    "pretraining_dataset].",
)
@click.option("--baseline", default=None, help="Baseline level of --compare-by [default: the set's, else the first].")
@click.option(
    "--pair-by",
    default=None,
    metavar="FACT",
    help="Difference within each value of this fact, averaged (architecture).",
)
@click.option(
    "--within", default=None, metavar="FACT", help="One comparison per value of this fact (family: Birhane et al.'s)."
)
@click.option(
    "--catalogue",
    "catalogues",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="A model catalogue file (CSV: spec and facts) whose facts the models get before the analysis; repeatable. "
    "Facts are refreshed from the catalogue at every analysis.",
)
@out_option("analysis", short=False, help="Folder for the tables and plots [default: DB/analysis, updated in place].")
@click.option("--no-plots", is_flag=True)
def analyze(
    db,
    audit,
    table,
    effect,
    by,
    where,
    reference,
    size_column,
    accuracy,
    metric,
    fdr,
    terms,
    compare_by,
    baseline,
    pair_by,
    within,
    catalogues,
    out,
    overwrite,
    no_plots,
):
    """Upstream analyses of a sweep: which model facts predict bias (mixed model), and bias vs accuracy.

    The mixed model is the 131-model study's: effect_size ~ log_params + architecture_family + dataset_family +
    log_dataset_size, random intercepts and slopes per test x order, REML, log10 terms standardised. Correlations
    of bias with downstream accuracy per test x order carry confidence intervals and Benjamini-Hochberg adjusted
    p-values.
    """
    import pandas as pd

    from vlbias.errors import VlbiasError
    from vlbias.zoo.analyze import AnalysisSettings
    from vlbias.zoo.analyze import analyze as run
    from vlbias.zoo.store import ResultsStore

    refs = {}
    for item in reference:
        factor, sep, level = item.partition("=")
        if not sep or factor not in ("architecture_family", "dataset_family"):
            raise VlbiasError(f"--reference {item!r}: write architecture_family=LEVEL or dataset_family=LEVEL")
        refs[factor] = level
    settings = AnalysisSettings(
        audit=audit,
        table=table,
        effect=effect,
        by=tuple(c.strip() for c in by.split(",") if c.strip()),
        size_column=size_column,
        reference=refs,
        accuracy=accuracy,
        metric=metric,
        where=where,
        fdr=fdr,
        terms=tuple(terms),
        compare={
            k: v for k, v in (("by", compare_by), ("baseline", baseline), ("pair_by", pair_by), ("within", within)) if v
        },
    )
    summary = run(ResultsStore.open(db), out, settings, plots=not no_plots, overwrite=overwrite, catalogues=catalogues)
    tables = summary["tables"]
    for model, facts in summary.get("facts_refreshed", {}).items():
        click.echo(f"facts of {model} refreshed: {', '.join(facts)}", err=True)
    with pd.option_context("display.width", 160, "display.max_columns", 20, "display.float_format", "{:.4g}".format):
        mm = summary["mixed_model"]
        if isinstance(mm, dict):
            click.echo(
                f"mixed model: {plural(mm['n_obs'], 'row')}, {plural(mm['models'], 'model')}, "
                f"{plural(mm['n_groups'], 'group')} ({plural(mm['rows_left_out'], 'row')} without the needed facts "
                f"left out: {plural(len(mm['models_left_out']), 'model')} entirely, "
                f"{len(mm.get('models_partly_left_out', []))} in part); REML, converged: {mm['converged']}; "
                "reference levels: " + ", ".join(f"{k}={v}" for k, v in mm["reference"].items())
            )
            click.echo(tables["mixed_model"].to_string(index=False))
            for w in mm["warnings"]:
                click.echo(f"  note: {w}")
        else:
            click.echo(f"mixed model: {mm}" if not str(mm).startswith("no ") else mm)
        corr = tables.get("bias_vs_accuracy")
        if corr is not None:
            click.echo(
                f"\nbias vs downstream accuracy ({settings.metric}), BH across {plural(len(corr) // 2, 'test')}:"
            )
            click.echo(corr.to_string(index=False))
        elif "bias_vs_accuracy" in summary:
            click.echo(f"\n{summary['bias_vs_accuracy']}")
        for w in summary.get("content_warning", []):  # each starts with "CONTENT WARNING:" itself
            click.echo(f"\n{w}")
        for name, table in tables.items():
            if name.endswith("_notes"):
                for note in table["note"]:
                    click.echo(f"  note ({name.removesuffix('_notes')}): {note}")
            elif name not in ("mixed_model",) and not name.startswith(("mixed_model", "bias_vs")):
                click.echo(f"{name}: {plural(len(table), 'row')}")
    click.echo(f"tables and plots in {summary['out']}", err=True)
