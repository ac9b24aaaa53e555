from __future__ import annotations

import click

from vlbias.cli._common import console


@click.command()
@click.option("--backend", "-b", default=None, help="Show only this backend's models.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv"]), default="table", show_default=True)
def models(backend, fmt):
    """List the backends and the known open_clip (architecture, tag) pairs.

    Any pair prints as a spec: openclip:ARCH/TAG. Other backends take a Hugging Face id or a local path.
    """
    from rich.table import Table

    from vlbias.errors import VlbiasError
    from vlbias.models.backends.openclip import known_pairs
    from vlbias.models.registry import backend_description, backend_names

    names = backend_names()
    if backend is not None and backend not in names:
        raise VlbiasError(f"unknown backend {backend!r}; known backends: {', '.join(names)}")
    pairs = known_pairs()
    if fmt == "csv":
        click.echo("spec,backend,architecture,tag")
        for arch, tags in pairs.items():
            for tag in tags:
                click.echo(f"openclip:{arch}/{tag},openclip,{arch},{tag}")
        return
    out = console()
    if backend is None:
        t = Table("backend", "what it loads", title="backends", title_justify="left")
        for name in names:
            t.add_row(f"{name}:", backend_description(name))
        out.print(t)
    if backend in (None, "openclip"):
        t = Table(
            "architecture",
            "pretrained tags (spec: openclip:ARCH/TAG; TAG may also be 'random')",
            title=f"open_clip pretrained models ({sum(len(v) for v in pairs.values())} pairs)",
            title_justify="left",
        )
        for arch, tags in pairs.items():
            t.add_row(arch, ", ".join(tags))
        out.print(t)
