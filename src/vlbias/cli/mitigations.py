"""`vlbias mitigations`: the debiasing methods and their options (``--mitigation NAME[:KEY=VALUE,...]``)."""

from __future__ import annotations

import click

from vlbias.cli._common import console, model_options, out_option
from vlbias.zoo.mitigation import COMPARED


@click.command()
@click.argument("name", required=False)
def mitigations(name):
    """List the mitigation methods, or one method's options.

    \b
    vlbias mitigations
    vlbias mitigations projection
    vlbias eat -m st:all-MiniLM-L6-v2 --test sent-weat6 --mitigation projection:lam=0
    """
    from vlbias.mitigation.registry import get_method, method_names
    from vlbias.utils.options import option_table

    con = console()
    if name:
        method = get_method(name)
        con.print(f"{method.name}: {method.description}\n{method.citation}\n")
        con.print(option_table(method.options, flags=False))
        return
    for n in method_names():
        m = get_method(n)
        con.print(f"{m.name:<12} {m.description}")


@click.command("mitigation-compare")
@model_options
@click.option("--mitigation", "mitigations", multiple=True, required=True, metavar="NAME[:KEY=VALUE,...]|FILE",
              help="A mitigation to compare (repeat for several; each fitted on the model).")  # fmt: skip
@click.option("--audit", required=True, type=click.Choice(COMPARED), help="The audit run before and after.")
@click.option("--option", "options", multiple=True, metavar="KEY=VALUE",
              help="An option of the audit, as in a sweep config (test_files=FILE, dataset=NAME:PATH, ...).")  # fmt: skip
@click.option("--group-by", default=None, help="zeroshot, perception: the column whose groups' top-1 shares (scale "
              "scores) are compared; retrieval: the one attribute compared "
              "[default: the mitigation's attribute, else gender].")  # fmt: skip
@click.option("--n-bootstrap", type=click.IntRange(min=0), default=2000, show_default=True,
              help="Paired bootstrap replicates of the comparison.")  # fmt: skip
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@out_option(
    "audit",
    required=True,
    help="Output folder: results (one row per value and mitigation), tradeoff.png, transforms/ (`vlbias report` makes the mitigation page of it).",
)
def mitigation_compare(model, mitigations, audit, options, group_by, n_bootstrap, seed, out, overwrite, encoder_kwargs):
    """Measure mitigations before and after on one audit, paired: what each buys (bias) and costs (accuracy).

    \b
    vlbias mitigation-compare -m st:all-MiniLM-L6-v2 --audit eat --option tests=sent-weat6 \\
        --mitigation hard_debias --mitigation projection -o mit/
    vlbias mitigation-compare -m openclip:ViT-B-32/laion2b_s34b_b79k --audit zeroshot \\
        --option dataset=fairface:/data/FairFace --option protocol=datacomp-fairface \\
        --mitigation projection --mitigation clipclip:dataset=fairface:/data/FairFace -o mit/
    """
    from vlbias.models import load_model
    from vlbias.plots.mitigation import tradeoff
    from vlbias.zoo.mitigation import compare, comparison_result

    raw = {}
    for item in options:
        key, eq, value = item.partition("=")
        if not eq:
            raise click.UsageError(f"--option {item!r}: write KEY=VALUE")
        raw.setdefault(key.strip(), []).append(value.strip())
    raw = {k: v[0] if len(v) == 1 else v for k, v in raw.items()}
    encoder = load_model(model, **encoder_kwargs)
    results = [
        compare(encoder, m, audit, raw, group_by=group_by, n_bootstrap=n_bootstrap, seed=seed) for m in mitigations
    ]
    result = comparison_result(results)

    def extras(tmp) -> None:
        tradeoff(result.results, tmp / "tradeoff.png")
        (tmp / "transforms").mkdir()
        for i, c in enumerate(results, 1):
            c.transform.save(tmp / "transforms" / f"{i}-{c.transform.method}.npz")

    result.write(out, overwrite=overwrite, extras=extras)
    con = console()
    for c in results:
        for r in c.table[c.table["value"] == "overall"].itertuples():
            con.print(
                f"{c.transform.label}: {r.kind} overall {r.before:.3g} -> {r.after:.3g} "
                f"(change {r.abs_change:+.3g} [{r.abs_change_low:+.3g}, {r.abs_change_high:+.3g}])"
            )
    con.print(f"wrote {out}")
