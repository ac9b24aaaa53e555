from __future__ import annotations

from pathlib import Path

import click

from vlbias.cli._common import console, file_kind, model_options, out_option
from vlbias.cli.stimuli import STIMULI_DIR

ORDER_CHOICES = ("all-text", "all-image", "image-as-target", "text-as-target")


def _permutations(value: str) -> int | str:
    if value == "exact":
        return value
    try:
        n = int(value.replace("_", ""))
    except ValueError:
        raise click.BadParameter(f"{value!r} is neither a number nor 'exact'") from None
    if n < 1:
        raise click.BadParameter("must be at least 1")
    return n


def _orders(values: tuple[str, ...]) -> list[str] | None:
    out = [o.strip() for v in values for o in v.split(",") if o.strip()]
    bad = [o for o in out if o not in ORDER_CHOICES]
    if bad:
        raise click.BadParameter(f"unknown order(s) {', '.join(bad)}; use {', '.join(ORDER_CHOICES)}")
    return out or None


def _image_sets(values: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for v in values:
        key, sep, path = v.partition("=")
        if not sep or not key or not path:
            raise click.BadParameter(f"{v!r} must be KEY=DIR, e.g. instruments=/data/instruments")
        out[key] = path
    return out


@click.command()
@model_options
@click.option(
    "--test",
    "tests",
    multiple=True,
    metavar="NAME",
    help="Packaged test (weat1 ... weat10, weat3b, sent-weat1, ...; see `vlbias stimuli list`).",
)
@click.option(
    "--test-file",
    "test_files",
    multiple=True,
    metavar="FILE",
    help="Test file: vlbias YAML, SEAT JSON, or WEFE word sets as FILE#x,y,a,b.",
)
@click.option(
    "--battery",
    type=click.Choice(["standard"]),
    default=None,
    help="The 26-row cross-modal battery of Ghate et al. 2025 [default when no test is given].",
)
@click.option(
    "--orders",
    "orders",
    multiple=True,
    metavar="ORDER[,ORDER]",
    help=f"Orders to run: {', '.join(ORDER_CHOICES)} [default: all a test supports].",
)
@click.option(
    "--permutations",
    default="1000000",
    show_default=True,
    metavar="N|exact",
    help="Permutation budget: exact when C(|X|+|Y|,|X|) <= N, else N sampled; or 'exact'.",
)
@click.option(
    "--alternative", type=click.Choice(["greater", "less", "two-sided"]), default="greater", show_default=True
)
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Seed of the permutations and the bootstrap.",
)
@click.option(
    "--bootstrap",
    "n_bootstrap",
    type=click.IntRange(min=0),
    default=2000,
    show_default=True,
    help="Bootstrap resamples for the interval of d (0: none).",
)
@click.option(
    "--confidence", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.95, show_default=True
)
@click.option("--item-tests", is_flag=True, help="Also test each target item alone (SC-EAT vs A and B): items table.")
@click.option(
    "--item-permutations",
    type=click.IntRange(min=1),
    default=10_000,
    show_default=True,
    help="Permutation budget of each item's SC-EAT.",
)
@click.option(
    "--drop-missing",
    is_flag=True,
    help="Drop texts/images a vectors: model lacks (and undecodable images) and report how many.",
)
@click.option("--skip-bad-images", is_flag=True, help="Skip undecodable images instead of failing.")
@STIMULI_DIR
@click.option(
    "--image-set",
    "image_sets",
    multiple=True,
    metavar="KEY=DIR",
    help="Supply an image set: one the battery lacks (instruments=DIR) or your own for an iEAT set (ieat/age/old=DIR).",
)
@click.option(
    "--valence",
    type=click.Choice(["default", "nrc-oasis"]),
    default="default",
    show_default=True,
    help="Battery valence stimuli: test words + iEAT images, or NRC-VAD words + OASIS images.",
)
@click.option(
    "--nrc-vad",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="NRC-VAD lexicon file (--valence nrc-oasis).",
)
@click.option(
    "--oasis",
    type=click.Path(path_type=Path),
    default=None,
    help="OASIS folder with OASIS.csv and Images/ (--valence nrc-oasis).",
)
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
def eat(
    model,
    tests,
    test_files,
    battery,
    orders,
    permutations,
    alternative,
    seed,
    n_bootstrap,
    confidence,
    item_tests,
    item_permutations,
    drop_missing,
    skip_bad_images,
    stimuli_dir,
    image_sets,
    valence,
    nrc_vad,
    oasis,
    out,
    overwrite,
    fmt,
    encoder_kwargs,
):
    """Run embedding association tests (WEAT, SEAT, iEAT, cross-modal) on a model.

    \b
    vlbias eat --model st:all-MiniLM-L6-v2 --test sent-weat1 --test sent-weat3
    vlbias eat --model openclip:ViT-B-32/laion2b_s34b_b79k --battery standard --out results.parquet
    vlbias eat --model vectors:glove.txt --test-file WEAT.json#flowers,insects,pleasant_5,unpleasant_5 --drop-missing
    """
    from vlbias.audits.eat import AUDIT
    from vlbias.models import load_model

    perms = _permutations(permutations)
    options = {
        "tests": list(tests),
        "test_files": list(test_files),
        "battery": battery,
        "orders": _orders(orders),
        "permutations": perms,
        "alternative": alternative,
        "seed": seed,
        "n_bootstrap": n_bootstrap,
        "confidence": confidence,
        "item_tests": item_tests,
        "item_permutations": item_permutations,
        "drop_missing": drop_missing,
        "skip_bad_images": skip_bad_images,
        "stimuli_dir": str(stimuli_dir) if stimuli_dir else None,
        "image_sets": _image_sets(image_sets),
        "valence": valence,
        "nrc_vad": str(nrc_vad) if nrc_vad else None,
        "oasis": str(oasis) if oasis else None,
    }
    encoder = load_model(model, **encoder_kwargs)
    result = AUDIT.run(encoder, options)
    if out is not None:
        _write(result, out, overwrite)
    table = result.stamped("results")
    if fmt == "json":
        click.echo(table.to_json(orient="records", indent=2, double_precision=15))
    elif fmt == "csv":
        click.echo(table.to_csv(index=False), nl=False)
    else:
        render_table(result)
    dropped = int(result.results["dropped"].sum())
    if dropped:
        click.echo(f"dropped {dropped} stimuli the model lacks or could not decode (see skipped)", err=True)
    if out is not None:
        click.echo(f"wrote {len(table)} rows to {out}", err=True)


def _write(result, out: Path, overwrite: bool) -> None:
    from vlbias.utils.io import write_parquet

    if file_kind(out) == "parquet":
        record = result.record
        meta = {"audit": result.audit, "model": record.model.get("spec"), "config_hash": record.config_hash}
        write_parquet(result.stamped("results"), out, meta, overwrite)
    else:
        result.write(out, overwrite=overwrite)


def _fmt_p(p: float) -> str:
    if p != p:
        return ""
    return f"{p:.2e}" if p < 1e-3 else f"{p:.3f}"


def render_table(result) -> None:
    from rich.table import Table
    from rich.text import Text

    df = result.results
    ok = df[df["status"] == "ok"]
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
        ("", "left"),
    ):
        table.add_column(col, justify=just, overflow="fold")
    for _, r in df.iterrows():
        pair = f"{r.x_name} vs {r.y_name}", f"{r.a_name} vs {r.b_name}"
        if r.status != "ok":
            table.add_row(r.test, r.order, *pair, "", "", "", "", Text(f"skipped: {r.reason}", style="dim"))
            continue
        big, sig = abs(r.effect_size) >= 0.2, r.p_value < 0.05
        d = f"{r.effect_size:+.2f}"
        ci = "" if r.ci_low != r.ci_low else f"[{r.ci_low:+.2f}, {r.ci_high:+.2f}]"
        p = _fmt_p(r.p_value)
        table.add_row(
            r.test,
            r.order,
            *pair,
            f"{r.x_size}/{r.y_size}/{r.a_size}/{r.b_size}",
            Text(d, style="bold" if big else ""),
            ci,
            Text(p, style="bold" if sig else ""),
            Text("✓", style="bold") if big and sig else "",
        )
    con = console()
    con.print(table)
    n_skip = int((df["status"] != "ok").sum())
    exact = int(ok["exact"].astype(bool).sum())
    con.print(
        f"{len(ok)} tests, {n_skip} skipped; p: permutation test, alternative {result.record.options.get('alternative')}, "
        f"exact in {exact}, sampled ({result.record.options.get('permutations')}) in {len(ok) - exact}; "
        f"✓: |d| ≥ 0.2 and p < 0.05 (bold: either); sizes |X|/|Y|/|A|/|B|"
    )
