"""``vlbias retrieval``: retrieval skew and caption association (SocialCounterfactuals, PATA, or a protocol file)."""

from __future__ import annotations

from pathlib import Path

import click

from vlbias.audits.retrieval import RetrievalOptions
from vlbias.cli._common import mitigated_layers, mitigation_option, model_options, out_option, save_mitigation
from vlbias.cli._options import options_flags


@click.command()
@model_options
@mitigation_option
@options_flags(RetrievalOptions, required=("dataset",))
@out_option(
    "audit",
    required=True,
    help="Output folder (written atomically; an earlier audit output there is replaced only with --overwrite).",
)
def retrieval(model, mitigation, raw_options, out, overwrite, encoder_kwargs):
    """Retrieval skew and caption association by group.

    \b
    vlbias retrieval -m openclip:ViT-B-32/laion2b_s34b_b79k -d socialcounterfactuals:/data/SocialCounterfactuals -o sc/
    vlbias retrieval -m openclip:ViT-B-32/laion2b_s34b_b79k -d pata:/data/pata_dataset -p pata -o pata/

    socialcounterfactuals (Howard et al., CVPR 2024): MaxSkew@k of each subject's counterfactual images retrieved by
    a neutral query, per attribute and their intersection, summarised over subjects. pata (Seth et al., CVPR 2023):
    each scene's images against its positive and negative captions; per group, the association with the negative
    captions. Every option here is also an option of the retrieval audit in sweep configs and Python, with the same
    name, default and meaning.

    CONTENT WARNING: PATA's negative captions are demeaning and criminalising, by design.
    """
    from vlbias.audits.retrieval import AUDIT
    from vlbias.models import load_layers

    options = AUDIT.parse_options(raw_options, flags=True)
    encoders = mitigated_layers(load_layers(model, **encoder_kwargs), mitigation)
    result = AUDIT.run_layers(encoders, options)  # one run, or one per --layer
    result.write(out, overwrite=overwrite, extras=save_mitigation(encoders[0]))
    _summary(result, out)


def _summary(result, out: Path) -> None:
    from vlbias.cli._common import console

    con = console(stderr=True)
    if result.content_warning:
        click.echo(result.content_warning, err=True)
    res = result.tables["results"]
    for row in res.itertuples(index=False):
        r = row._asdict()
        what = " / ".join(
            str(r[c]) for c in ("attribute_type", "attribute", "polarity", "measure", "grouping") if c in r
        ) + (f" at layer {r['layer']}" if "layer" in r else "")
        if "mean_max_skew" in r and r["mean_max_skew"] == r["mean_max_skew"]:
            con.print(
                f"{what}: mean MaxSkew {r['mean_max_skew']:.3f} [{r['mean_max_skew_low']:.3f}, "
                f"{r['mean_max_skew_high']:.3f}] over {r['n_rankings']} ranking(s)"
            )
    assoc = result.tables.get("association")
    if assoc is not None and len(assoc):
        pooled = assoc[assoc["scene"] == "all"]
        for attribute, part in pooled.groupby("attribute", sort=False):
            con.print(
                f"{attribute}: P(negative caption) "
                + ", ".join(f"{g} {v:.1f}%" for g, v in zip(part["group"], part["p_negative_pct"]))
            )
    n_skipped = len(result.skipped)
    note = f"; {n_skipped} item(s) in skipped.csv" if n_skipped else ""
    con.print(f"wrote {len(result.tables)} tables to {out}{note}")
