from __future__ import annotations

from pathlib import Path

import click

from vlbias.audits.perception import PerceptionOptions
from vlbias.cli._common import (
    mitigated_layers,
    mitigation_option,
    model_options,
    note_figures,
    out_option,
    save_mitigation,
)
from vlbias.cli._options import options_flags
from vlbias.errors import plural


@click.command()
@model_options
@mitigation_option
@options_flags(PerceptionOptions, required=("dataset",))
@click.option("--no-plots", is_flag=True, help="Write the tables only.")
@out_option(
    "audit",
    required=True,
    help="Output folder (written atomically; an earlier audit output there is replaced only with --overwrite).",
)
def perception(model, mitigation, raw_options, no_plots, out, overwrite, encoder_kwargs):
    """Social perception of faces (Hausladen et al., FAccT 2025): Delta scores of face images against
    warmth/competence and ABC words, what moves them, markedness and retrieval skew.

    \b
    vlbias perception --model openclip:ViT-B-32/laion2b_s34b_b79k --dataset causalface:/data/causalface --out cf/
    vlbias perception -m openclip:ViT-B-32/random -d causalface:faces/ --analyses factors,regression -o out/

    Writes results (headline numbers), scores (one row per image), a table per analysis, record.json and plots/.
    Every option here is also an option of the perception audit in sweep configs and Python, with the same name,
    default and meaning.
    """
    from vlbias.audits.base import split_layers
    from vlbias.audits.perception import AUDIT
    from vlbias.models import load_layers
    from vlbias.plots.depth import perception_depth
    from vlbias.plots.perception import draw_all

    options = AUDIT.parse_options(raw_options, flags=True)
    encoders = mitigated_layers(load_layers(model, **encoder_kwargs), mitigation)
    result = AUDIT.run_layers(encoders, options)
    top = split_layers(result)[-1]  # the deepest layer read (the run itself without layers)

    def plots(tmp: Path) -> None:
        note_figures(result, tmp, draw_all(top.tables, tmp / "plots"))
        if len(result.layers) > 1 and "factor_effects" in result.tables:
            spec = result.record.model.get("spec")
            perception_depth(result.tables["factor_effects"], tmp / "plots" / "depth.png", model=spec)

    result.write(out, extras=save_mitigation(encoders[0], None if no_plots else plots), overwrite=overwrite)
    _report(top, out)


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
        mean = vs.groupby("attribute")["share_pct"].mean().sort_values(ascending=False)
        con.print(
            "explained-variance shares (mean over scales): " + ", ".join(f"{a} {v:.1f}%" for a, v in mean.items())
        )
    ex = t.get("extreme_groups")
    if ex is not None and len(ex):
        for attr, g in ex[ex["rank"] == 1].groupby("attribute"):
            counts = g["group"].value_counts()
            con.print(
                f"most extreme group over {attr}: "
                + ", ".join(f"{k} ({v} of {plural(len(g), 'scale')})" for k, v in counts.items())
            )
    n_skipped = len(result.skipped)
    note = f"; {plural(n_skipped, 'note')} in skipped.csv" if n_skipped else ""
    con.print(f"wrote {plural(len(t), 'table')} for {plural(len(t['scores']), 'image')} to {out}{note}")
