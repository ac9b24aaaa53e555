"""``vlbias zeroshot`` (one model, one dataset, one protocol) and ``vlbias zeroshot-compare`` (several runs)."""

from __future__ import annotations

import re
from pathlib import Path

import click

from vlbias.audits.zeroshot import ZeroshotOptions
from vlbias.cli._common import console, model_options, out_option
from vlbias.cli._options import options_flags
from vlbias.errors import plural


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.+-]+", "-", text).strip("-")


def _echo_warning(warning: str | None) -> None:
    if warning:
        click.echo(warning, err=True)


@click.command()
@model_options
@options_flags(ZeroshotOptions, required=("dataset",))
@out_option("audit", help="Output folder [default: zeroshot-PROTOCOL-MODEL].")
@click.option("--no-plots", is_flag=True, help="Write the tables only.")
def zeroshot(model, raw_options, out, overwrite, no_plots, encoder_kwargs):
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
    from vlbias.audits._zeroshot_plots import plot_audit
    from vlbias.audits.zeroshot import AUDIT
    from vlbias.models import ModelSpec, load_model
    from vlbias.utils.io import check_out

    options = AUDIT.parse_options(raw_options, flags=True)
    if out is None:
        name = "custom" if options.classes else Path(options.protocol).stem
        out = Path(f"zeroshot-{_slug(name)}-{_slug(str(ModelSpec.parse(model)))}")
        check_out(out, "audit", overwrite)
    encoder = load_model(model, **encoder_kwargs)
    result = AUDIT.run(encoder, options)
    extras = None
    if not no_plots:

        def extras(tmp: Path) -> None:
            plot_audit(result.tables, tmp / "plots", result.content_warning, model=str(encoder.spec))

    result.write(out, extras=extras, overwrite=overwrite)
    _summary(result, out)


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
@click.option("--pair-by", default=None, help="Compare within each value of this fact (e.g. architecture).")
@click.option(
    "--models-meta",
    type=click.Path(dir_okay=False, path_type=Path),
    help="CSV with a 'model' column (specs) and fact columns, for models no named set lists.",
)
@click.option(
    "--model-set",
    default=None,
    help="Named model set whose comparison defaults to use [default: the set that lists every run's model].",
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
    runs, by, baseline, pair_by, models_meta, model_set, print_set, n_bootstrap, confidence, seed, out, overwrite, no_plots
):
    """Compare zeroshot runs of several models, grouped by a model fact (e.g. pretraining data).

    \b
    for m in $(vlbias zeroshot-compare --print-set birhane2024); do
        vlbias zeroshot -m "$m" -d "cfd:CFD Version 3.0" -o "runs/${m//[:\\/]/_}"
    done
    vlbias zeroshot-compare runs/* --model-set birhane2024 -o scaling
    """
    from vlbias.errors import VlbiasError
    from vlbias.stimuli.zeroshot import model_set as get_set
    from vlbias.stimuli.zeroshot import model_set_of

    if print_set:
        for m in get_set(print_set)["models"]:
            click.echo(m["spec"])
        return
    from vlbias.audits._zeroshot_plots import plot_comparison
    from vlbias.audits.base import AuditResult
    from vlbias.audits.zeroshot.run import compare_runs
    from vlbias.utils.io import check_out

    if len(runs) < 2:
        raise VlbiasError("give the output folders of at least two zeroshot runs")
    if out is None:
        out = Path("zeroshot-compare")
        check_out(out, "audit", overwrite)
    results = [AuditResult.read(r) for r in runs]
    model_set = model_set or model_set_of([r.record.model.get("spec") for r in results])
    defaults = get_set(model_set).get("compare", {}) if model_set else {}
    facts = _read_meta(models_meta) if models_meta else {}
    result = compare_runs(
        results,
        by=by or defaults.get("by", "pretraining_data"),
        baseline=baseline or defaults.get("baseline"),
        pair_by=pair_by or defaults.get("pair_by"),
        facts=facts,
        n_bootstrap=n_bootstrap,
        confidence=confidence,
        seed=seed,
    )
    extras = None if no_plots else (lambda tmp: plot_comparison(result.tables, tmp / "plots", result.content_warning))
    result.write(out, extras=extras, overwrite=overwrite)
    _echo_warning(result.content_warning)
    comp = result.tables["results"]
    top = comp[(comp["metric"] == "top1_pct") & (comp["grouping"] != "all")]
    con = console(stderr=True)
    for (task, level), df in top.groupby(["task", "level"], sort=False):
        title = f"{task}: {level} minus {df['baseline'].iloc[0]}, top-1 share (pp)"
        _print_pivot(con, df, "difference", title, "{:+.1f}")
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
