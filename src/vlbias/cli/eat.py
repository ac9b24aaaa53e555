from __future__ import annotations

from pathlib import Path

import click

from vlbias.audits.eat import EATOptions
from vlbias.cli._common import (
    console,
    file_kind,
    mitigated_layers,
    mitigation_option,
    model_options,
    out_option,
    save_mitigation,
)
from vlbias.cli._options import options_flags
from vlbias.errors import plural


@click.command()
@model_options
@mitigation_option
@options_flags(EATOptions)
@out_option(
    lambda p: "parquet" if file_kind(p) == "parquet" else "audit",
    help="Write results: FILE.parquet (the results table) or a folder (all tables, CSV and record.json).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
    help="What to print on stdout.",
)
def eat(model, mitigation, raw_options, out, overwrite, fmt, encoder_kwargs):
    """Run embedding association tests (WEAT, SEAT, iEAT, cross-modal) on a model.

    \b
    vlbias eat --model st:all-MiniLM-L6-v2 --test sent-weat1 --test sent-weat3
    vlbias eat --model openclip:ViT-B-32/laion2b_s34b_b79k --battery standard --out results.parquet
    vlbias eat --model vectors:glove.txt --test-file WEAT.json#flowers,insects,pleasant_5,unpleasant_5 --drop-missing

    The battery (the default when no test is given) has 26 rows; 24 run unless you supply instrument images
    (--image-set instruments=DIR), which neither Ghate et al. nor iEAT released. --preset ghate2025 runs it as the
    study did (docs/deviations.md lists every difference from vlbias's defaults).

    Every option here is also an option of the eat audit in sweep configs and Python, with the same name (dashes
    for underscores), default and meaning.
    """
    from vlbias.audits.eat import AUDIT
    from vlbias.models import load_layers

    options = AUDIT.parse_options(raw_options, flags=True)
    encoders = mitigated_layers(load_layers(model, **encoder_kwargs), mitigation)
    result = AUDIT.run_layers(encoders, options)
    if out is not None:
        _write(result, out, overwrite, encoders[0])
    table = result.stamped("results")
    if fmt == "json":
        click.echo(table.to_json(orient="records", indent=2, double_precision=15))
    elif fmt == "csv":
        click.echo(table.to_csv(index=False), nl=False)
    elif len(result.layers) > 1:
        render_depth(result)
    else:
        render_table(result)
    dropped = int(result.results["dropped"].sum())
    if dropped:
        click.echo(f"dropped {dropped} stimuli the model lacks or could not decode (see skipped)", err=True)
    if out is not None:
        click.echo(f"wrote {plural(len(table), 'row')} to {out}", err=True)


def _write(result, out: Path, overwrite: bool, encoder=None) -> None:
    from vlbias.utils.io import write_parquet

    if file_kind(out) == "parquet":
        record = result.record
        meta = {"audit": result.audit, "model": record.model.get("spec"), "config_hash": record.config_hash}
        write_parquet(result.stamped("results"), out, meta, overwrite)
    elif len(result.layers) > 1:
        from vlbias.plots.depth import eat_depth

        def plots(tmp: Path) -> None:
            eat_depth(result.tables["results"], tmp / "plots" / "depth.png", model=result.record.model.get("spec"))

        result.write(out, extras=plots, overwrite=overwrite)
    else:
        result.write(out, overwrite=overwrite, extras=save_mitigation(encoder))


def render_depth(result) -> None:
    """The effect size of each test and order at each layer (a run with --layer over several layers)."""
    from rich.table import Table
    from rich.text import Text

    df = result.results
    layers = list(dict.fromkeys(df["layer"]))
    spec = result.record.model.get("spec")
    reading = result.record.model.get("reading")
    table = Table(title=f"Effect size d by layer ({reading}): {spec}", title_justify="left", header_style="bold")
    for col, just in (("test", "left"), ("order", "left"), *((str(k), "right") for k in layers)):
        table.add_column(col, justify=just, overflow="fold")
    for (test, order), rows in df.groupby(["test", "order"], sort=False):
        cells = []
        for k in layers:
            r = rows[rows["layer"] == k]
            if r.empty or r["status"].iloc[0] != "ok":
                cells.append(Text("–", style="dim"))
                continue
            d, p = float(r["effect_size"].iloc[0]), float(r["p_value"].iloc[0])
            cells.append(Text(f"{d:+.2f}", style="bold" if abs(d) >= 0.2 and p < 0.05 else ""))
        table.add_row(test, order, *cells)
    con = console()
    con.print(table)
    con.print(
        f"{len(layers)} layers (transformer blocks); bold: |d| ≥ 0.2 and p < 0.05; –: skipped; intervals and p-values "
        f"of every layer in the table (--out, --format csv: one row per test, order and layer)"
    )


def _fmt_p(p: float) -> str:
    if p != p:
        return ""
    return f"{p:.2e}" if p < 1e-3 else f"{p:.3f}"


def render_table(result) -> None:
    from rich.table import Table
    from rich.text import Text

    from vlbias.plots.eat import COVERS_ZERO, P_AND_INTERVAL, covers_zero

    df = result.results
    ok = df[df["status"] == "ok"]
    null = "null_d_low" in df.columns and df["null_d_low"].notna().any()
    title = f"Embedding association tests: {result.record.model.get('spec')}"
    table = Table(title=title, title_justify="left", header_style="bold")
    for col, just in (
        ("test", "left"),
        ("order", "left"),
        ("X vs Y", "left"),
        ("A vs B", "left"),
        ("sizes", "right"),
        ("d", "right"),
        ("95% CI" if (df["confidence"].dropna() == 0.95).all() else "CI", "right"),
        ("p", "right"),
        *((("random-init null", "right"),) if null else ()),
        ("", "left"),
    ):
        table.add_column(col, justify=just, overflow="fold")
    for _, r in df.iterrows():
        pair = f"{r.x_name} vs {r.y_name}", f"{r.a_name} vs {r.b_name}"
        if r.status != "ok":
            blank = [""] * (5 if null else 4)
            table.add_row(r.test, r.order, *pair, *blank, Text(f"skipped: {r.reason}", style="dim"))
            continue
        big, sig = abs(r.effect_size) >= 0.2, r.p_value < 0.05
        d = f"{r.effect_size:+.2f}"
        ci = "" if r.ci_low != r.ci_low else f"[{r.ci_low:+.2f}, {r.ci_high:+.2f}]"
        p = _fmt_p(r.p_value) + (COVERS_ZERO if covers_zero(r.p_value, r.ci_low, r.ci_high) else "")
        beyond = null and r.beyond_null is True
        shown_null = "" if r.null_d_low != r.null_d_low else f"[{r.null_d_low:+.2f}, {r.null_d_high:+.2f}]"
        table.add_row(
            r.test,
            r.order,
            *pair,
            f"{r.x_size}/{r.y_size}/{r.a_size}/{r.b_size}",
            Text(d, style="bold" if big else ""),
            ci,
            Text(p, style="bold" if sig else ""),
            *((Text(shown_null + (" beyond" if beyond else ""), style="bold" if beyond else ""),) if null else ()),
            Text("✓", style="bold") if big and sig else "",
        )
    con = console()
    con.print(table)
    n_skip = int((df["status"] != "ok").sum())
    exact = int(ok["exact"].astype(bool).sum())
    con.print(
        f"{plural(len(ok), 'test')}, {n_skip} skipped; p: permutation test, alternative {result.record.options.get('alternative')}, "
        f"exact in {exact}, sampled ({result.record.options.get('permutations')}) in {len(ok) - exact}; "
        f"✓: |d| ≥ 0.2 and p < 0.05 (bold: either); sizes |X|/|Y|/|A|/|B|"
    )
    n_covers = sum(covers_zero(p, lo, hi) for p, lo, hi in zip(ok["p_value"], ok["ci_low"], ok["ci_high"]))
    if n_covers:
        con.print(f"{n_covers} of them: {P_AND_INTERVAL}")
    if null:
        n_beyond = int(ok["beyond_null"].fillna(False).astype(bool).sum())
        seeds = result.record.options.get("null_seeds")
        con.print(
            f"random-init null: the smallest and largest d of {seeds} random-init copies of the architecture on the "
            f"same stimuli; {n_beyond} of {int(ok['null_d_low'].notna().sum())} rows beyond the largest |d| of them"
        )
    for item, reason in zip(result.skipped["item"], result.skipped["reason"]):
        if item == "null_seeds":
            con.print(f"note: {reason}")
