"""`vlbias mitigations`: the debiasing methods and their options (``--mitigation NAME[:KEY=VALUE,...]``)."""

from __future__ import annotations

import click

from vlbias.cli._common import console


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
