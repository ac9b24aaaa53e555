"""``vlbias zeroshot`` (one model, one dataset, one protocol) and ``vlbias zeroshot-compare`` (several runs)."""

from __future__ import annotations

import re
from pathlib import Path

import click

from vlbias.audits.zeroshot import ZeroshotOptions
from vlbias.cli._common import (
    console,
    mitigated_layers,
    mitigation_option,
    model_options,
    note_figures,
    out_option,
    save_mitigation,
)
from vlbias.cli._options import options_flags
from vlbias.errors import plural


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.+-]+", "-", text).strip("-")


def _echo_warning(warning: str | None) -> None:
    if warning:
        click.echo(warning, err=True)


@click.command()
@model_options
@mitigation_option
@options_flags(ZeroshotOptions, required=("dataset",))
@out_option("audit", help="Output folder [default: zeroshot-PROTOCOL-MODEL].")
@click.option("--no-plots", is_flag=True, help="Write the tables only.")
def zeroshot(model, mitigation, raw_options, out, overwrite, no_plots, encoder_kwargs):
    """Zero-shot misclassification audit of face images, by group.

    \b
    vlbias zeroshot -m openclip:ViT-B-32/laion2b_s34b_b79k -d "cfd:CFD Version 3.0" -p birhane2024
    vlbias zeroshot -m openclip:ViT-B-32/laion2b_s34b_b79k -d fairface:FairFace -p datacomp-fairface
    vlbias zeroshot -m SPEC -d manifest:faces.csv --classes classes.txt --templates templates.txt --group-by race

    Every option here is also an option of the zeroshot audit in sweep configs and Python, with the same name,
    default and meaning.

    CONTENT WARNING: the packaged label sets pair photographs of people with dehumanising and criminalising labels,
    by design.
    """
    from vlbias.audits.base import split_layers
    from vlbias.audits.zeroshot import AUDIT
    from vlbias.models import ModelSpec, load_layers
    from vlbias.plots.depth import zeroshot_depth
    from vlbias.plots.zeroshot import plot_audit
    from vlbias.utils.io import check_out

    options = AUDIT.parse_options(raw_options, flags=True)
    layer = encoder_kwargs["layer"]
    if out is None:
        name = "custom" if options.classes else Path(options.protocol).stem
        at = f"-layer-{_slug(str(layer))}" if layer.chosen else ""
        out = Path(f"zeroshot-{_slug(name)}-{_slug(str(ModelSpec.parse(model)))}{at}")
        check_out(out, "audit", overwrite)
    encoders = mitigated_layers(load_layers(model, **encoder_kwargs), mitigation)
    result = AUDIT.run_layers(encoders, options)
    top = split_layers(result)[-1]  # the deepest layer read (the run itself without layers)
    extras = None
    if not no_plots:

        def extras(tmp: Path) -> None:
            drawn = plot_audit(top.tables, tmp / "plots", result.content_warning, model=str(encoders[0].spec))
            note_figures(result, tmp, drawn)
            if len(result.layers) > 1:
                zeroshot_depth(result.tables["results"], tmp / "plots" / "depth", model=str(encoders[0].spec))

    result.write(out, extras=save_mitigation(encoders[0], extras), overwrite=overwrite)
    _summary(top, out)
    if len(result.layers) > 1:
        click.echo(
            f"{len(result.layers)} layers: the tables hold every layer's rows (column layer); the summary above and "
            f"the bar charts are layer {top.layers[0]}'s, plots/depth/ the shares over depth",
            err=True,
        )


def _print_pivot(con, df, value: str, title: str, fmt: str) -> None:
    """One value as a group x label table on the console."""
    from rich.table import Table

    pivot = df.pivot_table(index="group", columns="label", values=value, sort=False)
    t = Table(title=title, title_justify="left")
    t.add_column("group")
    for col in pivot.columns:
        t.add_column(str(col), justify="right")
    for group, row in pivot.iterrows():
        t.add_row(str(group), *(fmt.format(v) for v in row))
    con.print(t)


def _summary(result, out: Path) -> None:
    _echo_warning(result.content_warning)
    res = result.tables["results"]
    n_images = result.record.stimuli[0].get("n_images")
    con = console(stderr=True)
    for (task, template, grouping), df in res.groupby(["task", "template", "grouping"], sort=False):
        if grouping == "all" and res.loc[res["task"] == task, "grouping"].nunique() > 1:
            continue
        title = f"{task}: top-1 share (%) by {grouping.replace('+', ' × ')} — {template}"
        _print_pivot(con, df, "top1_pct", title, "{:.1f}")
    acc = result.tables.get("accuracy")
    if acc is not None:
        for grouping, df in acc.groupby("grouping", sort=False):
            df = df.assign(label=df["task"] + " (" + df["scoring"] + ")")
            _print_pivot(con, df, "accuracy_pct", f"accuracy (%) by {grouping.replace('+', ' × ')}", "{:.1f}")
    skipped = len(result.skipped)
    note = f"; {plural(skipped, 'item')} in skipped.csv" if skipped else ""
    click.echo(f"wrote {out} ({plural(n_images, 'image')}{note})", err=True)


@click.command("zeroshot-compare")
@click.argument("runs", nargs=-1, type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--by", default=None, help="Model fact to group models by [default: the model set's, else pretraining_data]."
)
@click.option("--baseline", default=None, help="The level the others are compared with (e.g. laion400m).")
@click.option(
    "--pair-by",
    default=None,
    metavar="FACT",
    help="Difference within each value of this fact present at both levels, averaged into one (e.g. architecture).",
)
@click.option(
    "--within",
    default=None,
    metavar="FACT",
    help="One comparison per value of this fact, all its models at each level (e.g. family: Birhane et al.'s; the "
    "birhane2024 set's default).",
)
@click.option(
    "--models-meta",
    type=click.Path(dir_okay=False, path_type=Path),
    help="CSV with a 'model' column (specs) and fact columns, for models no named set lists.",
)
@click.option(
    "--model-set",
    default=None,
    help="Named model set whose comparison defaults (by, baseline, pair_by or within) to use [default: the set "
    "that lists every run's model].",
)
@click.option("--print-set", default=None, metavar="NAME", help="Print the specs of a named model set and exit.")
@click.option(
    "--n-bootstrap",
    "--bootstrap",
    "n_bootstrap",
    type=click.IntRange(min=0),
    default=2000,
    show_default=True,
    help="Bootstrap replicates over people (--bootstrap: its old name).",
)
@click.option(
    "--confidence",
    "--ci",
    "confidence",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=0.95,
    show_default=True,
    help="Level of the intervals (--ci: its old name).",
)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@out_option("audit", help="Output folder [default: zeroshot-compare].")
@click.option("--no-plots", is_flag=True)
def zeroshot_compare(
    runs,
    by,
    baseline,
    pair_by,
    within,
    models_meta,
    model_set,
    print_set,
    n_bootstrap,
    confidence,
    seed,
    out,
    overwrite,
    no_plots,
):
    """Compare zeroshot runs of several models, grouped by a model fact (e.g. pretraining data).

    \b
    for m in $(vlbias zeroshot-compare --print-set birhane2024); do
        vlbias zeroshot -m "$m" -d "cfd:CFD Version 3.0" -o "runs/${m//[:\\/]/_}"
    done
    vlbias zeroshot-compare runs/* --model-set birhane2024 -o scaling
    vlbias zeroshot-compare runs/* --model-set birhane2024 --pair-by architecture -o scaling-paired

    The birhane2024 set compares LAION-2B with LAION-400M within each architecture family, as the study (ViT-B-32
    with its quickgelu variant, ViT-B-16 with plus-240, ViT-L-14); --pair-by architecture gives vlbias's one
    number: differences of the architectures trained on both, averaged.
    """
    from vlbias.errors import VlbiasError
    from vlbias.stimuli.zeroshot import comparison_settings
    from vlbias.stimuli.zeroshot import model_set as get_set

    if print_set:
        for m in get_set(print_set)["models"]:
            click.echo(m["spec"])
        return
    from vlbias.audits.base import AuditResult
    from vlbias.audits.zeroshot.run import compare_runs
    from vlbias.plots.zeroshot import plot_comparison
    from vlbias.utils.io import check_out

    if len(runs) < 2:
        raise VlbiasError("give the output folders of at least two zeroshot runs")
    if out is None:
        out = Path("zeroshot-compare")
        check_out(out, "audit", overwrite)
    results = [AuditResult.read(r) for r in runs]
    settings = comparison_settings(
        [r.record.model.get("spec") for r in results],
        {"by": by, "baseline": baseline, "pair_by": pair_by, "within": within},
        model_set_name=model_set,
    )
    facts = _read_meta(models_meta) if models_meta else {}
    result = compare_runs(results, **settings, facts=facts, n_bootstrap=n_bootstrap, confidence=confidence, seed=seed)
    within = settings["within"]
    comp = result.tables["results"]
    parts = [(None, comp)] if not within else [(v, df) for v, df in comp.groupby(within, sort=False)]

    def extras(tmp: Path) -> None:  # one folder of plots per value compared within
        for value, df in parts:
            folder = tmp / "plots" if value is None else tmp / "plots" / _slug(f"{within}-{value}")
            note_figures(result, tmp, plot_comparison({"results": df}, folder, result.content_warning))

    result.write(out, extras=None if no_plots else extras, overwrite=overwrite)
    _echo_warning(result.content_warning)
    con = console(stderr=True)
    for value, part in parts:
        top = part[(part["metric"] == "top1_pct") & (part["grouping"] != "all")]
        for (task, level), df in top.groupby(["task", "level"], sort=False):
            where = "" if value is None else f" ({within} {value})"
            title = f"{task}{where}: {level} minus {df['baseline'].iloc[0]}, top-1 share (pp)"
            _print_pivot(con, df, "difference", title, "{:+.1f}")
    for note in result.skipped.loc[result.skipped["reason"] == "notes", "item"]:
        click.echo(f"note: {note}", err=True)
    click.echo(f"wrote {out}", err=True)


def _read_meta(path: Path) -> dict:
    import pandas as pd

    from vlbias.errors import VlbiasError
    from vlbias.utils.io import check_columns, csv_header

    try:
        df = pd.read_csv(path, dtype=str)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise VlbiasError(f"cannot read --models-meta {path} ({type(e).__name__}); give a CSV file") from None
    check_columns(csv_header(path), f"--models-meta {path}")
    if "model" not in df.columns:
        raise VlbiasError(f"--models-meta {path} needs a 'model' column of model specs (found {', '.join(df.columns)})")
    return {r["model"]: {k: v for k, v in r.items() if k != "model" and pd.notna(v)} for r in df.to_dict("records")}
