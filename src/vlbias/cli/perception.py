from __future__ import annotations

from pathlib import Path

import click

from vlbias.cli._common import model_options, out_option


def _pairs(values: tuple[str, ...], option: str) -> dict[str, str]:
    from vlbias.errors import VlbiasError

    out = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise VlbiasError(f"{option} {item!r} must be KEY=VALUE")
        out[key.strip()] = value.strip()
    return out


@click.command()
@model_options
@click.option(
    "--dataset",
    "-d",
    required=True,
    metavar="NAME:PATH",
    help="Face dataset: causalface:PATH (folder holding final_picked_*), cfd:PATH, fairface:PATH, utkface:PATH.",
)
@click.option(
    "--dataset-option",
    multiple=True,
    metavar="KEY=VALUE",
    help="Loader option, repeatable, e.g. background=removed or smiling_corrected=false (CausalFace).",
)
@click.option(
    "--lexicon",
    "lexicons",
    multiple=True,
    metavar="NAME|FILE",
    help="Lexicon whose scales are scored, repeatable: scm, abc (default both) or a YAML/CSV file.",
)
@click.option("--control", default="control", show_default=True, metavar="NAME|FILE", help="Control-word list.")
@click.option("--templates", default="hausladen2025", show_default=True, metavar="NAME|FILE", help="Prompt templates.")
@click.option(
    "--article",
    type=click.Choice(["as-written", "grammatical"]),
    default="as-written",
    show_default=True,
    help="as-written keeps the study's 'a' before every word; grammatical writes 'an' before vowel sounds.",
)
@click.option(
    "--delta",
    type=click.Choice(["absolute", "relative"]),
    default="absolute",
    show_default=True,
    help="absolute: 100 (cos - neutral); relative: 100 (cos - neutral) / neutral.",
)
@click.option(
    "--analyses",
    default="all",
    show_default=True,
    metavar="LIST",
    help="Comma list of factors, regression, curves, markedness, skew (all: those the dataset allows).",
)
@click.option("--pairs", type=click.IntRange(min=1), default=1000, show_default=True, help="Image pairs per dimension.")
@click.option(
    "--min-level-gap",
    multiple=True,
    metavar="ATTR=GAP",
    help="Smallest level difference of a pair [default: age=1.1 smiling=1.1, as the study].",
)
@click.option("--k", type=click.IntRange(min=1), default=1000, show_default=True, help="Top k for MaxSkew@k and NDKL.")
@click.option(
    "--bootstrap",
    type=click.IntRange(min=0),
    default=1000,
    show_default=True,
    help="Resamples of identities for every interval (0: none).",
)
@click.option(
    "--permutations",
    type=click.IntRange(min=0),
    default=1000,
    show_default=True,
    help="Random rankings for the skew null (0: none).",
)
@click.option(
    "--confidence",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=0.95,
    show_default=True,
)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seed of every random draw.")
@click.option("--skip-bad-images", is_flag=True, help="Skip undecodable images (listed in skipped.csv).")
@click.option("--no-plots", is_flag=True, help="Write the tables only.")
@out_option(
    "audit",
    required=True,
    help="Output folder (written atomically; an earlier audit output there is replaced only with --overwrite).",
)
def perception(
    model,
    dataset,
    dataset_option,
    lexicons,
    control,
    templates,
    article,
    delta,
    analyses,
    pairs,
    min_level_gap,
    k,
    bootstrap,
    permutations,
    confidence,
    seed,
    skip_bad_images,
    no_plots,
    out,
    overwrite,
    encoder_kwargs,
):
    """Social perception of faces (Hausladen et al., FAccT 2025): Delta scores of face images against
    warmth/competence and ABC words, what moves them, markedness and retrieval skew.

    \b
    vlbias perception --model openclip:ViT-B-32/laion2b_s34b_b79k --dataset causalface:/data/causalface --out cf/
    vlbias perception -m openclip:ViT-B-32/random -d causalface:faces/ --analyses factors,regression -o out/

    Writes results (headline numbers), scores (one row per image), a table per analysis, record.json and plots/.
    """
    from vlbias.audits.perception import AUDIT, DEFAULTS
    from vlbias.errors import VlbiasError
    from vlbias.models import load_model
    from vlbias.plots.perception import draw_all

    gaps = dict(DEFAULTS["min_level_gap"])
    for key, value in _pairs(min_level_gap, "--min-level-gap").items():
        try:
            gaps[key] = float(value)
        except ValueError:
            raise VlbiasError(f"--min-level-gap {key}={value!r}: the gap must be a number") from None
    options = {
        "dataset": dataset,
        "dataset_options": _pairs(dataset_option, "--dataset-option"),
        "lexicons": list(lexicons) or DEFAULTS["lexicons"],
        "control": control,
        "templates": templates,
        "article": article,
        "delta": delta,
        "analyses": analyses,
        "pairs": pairs,
        "min_level_gap": gaps,
        "k": k,
        "bootstrap": bootstrap,
        "permutations": permutations,
        "confidence": confidence,
        "seed": seed,
        "skip_bad_images": skip_bad_images,
    }
    encoder = load_model(model, **encoder_kwargs)
    result = AUDIT.run(encoder, options)
    plots = None if no_plots else lambda tmp: draw_all(result.tables, tmp / "plots")
    result.write(out, extras=plots, overwrite=overwrite)
    _report(result, out)


def _report(result, out: Path) -> None:
    from vlbias.cli._common import console

    con = console(stderr=True)
    t = result.tables
    fe = t.get("factor_effects")
    if fe is not None and len(fe):
        pooled = fe[fe["scale"] == "all scales"].sort_values("rank")
        ranking = " > ".join(f"{r.dimension} {r.median:.2f}" for r in pooled.itertuples())
        con.print(f"factor effects (median |change|, Delta points, all scales): {ranking}")
    vs = t.get("variance_shares")
    if vs is not None and len(vs):
        mean = vs.groupby("attribute")["share"].mean().sort_values(ascending=False)
        con.print("explained-variance shares (mean over scales): " + ", ".join(f"{a} {v:.2f}" for a, v in mean.items()))
    ex = t.get("extreme_groups")
    if ex is not None and len(ex):
        for attr, g in ex[ex["rank"] == 1].groupby("attribute"):
            counts = g["group"].value_counts()
            con.print(
                f"most extreme group over {attr}: "
                + ", ".join(f"{k} ({v} of {len(g)} scales)" for k, v in counts.items())
            )
    n_skipped = len(result.skipped)
    note = f"; {n_skipped} note(s) in skipped.csv" if n_skipped else ""
    con.print(f"wrote {len(t)} tables for {len(t['scores'])} images to {out}{note}")
