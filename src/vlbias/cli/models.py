from __future__ import annotations

from pathlib import Path

import click

from vlbias.cli._common import console
from vlbias.errors import plural


@click.command()
@click.option("--backend", "-b", default=None, help="Show only this backend's models.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv"]), default="table", show_default=True)
@click.option("--details", is_flag=True, help="Show the model catalogue: one row of facts per model.")
@click.option(
    "--where",
    default=None,
    metavar="EXPR",
    help="Only catalogue rows matching a filter: columns compared with == != < <= > >=, in [...], joined by "
    "and/or/not, e.g. \"dataset_family == 'laion' and n_params > 2e8\" (implies --details).",
)
@click.option("--columns", default=None, metavar="A,B,...", help="Catalogue columns to show (with --details).")
@click.option(
    "--catalogue",
    "catalogues",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Extra catalogue rows (CSV with a spec column), added to $VLBIAS_CATALOGUE's. Repeatable.",
)
@click.option(
    "--write-catalogue",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    metavar="PATH",
    help="Regenerate the open_clip catalogue from the installed open_clip into PATH (no weights are downloaded).",
)
def models(backend, fmt, details, where, columns, catalogues, write_catalogue):
    """List the backends, the known open_clip (architecture, tag) pairs and the model catalogue.

    Any pair prints as a spec: openclip:ARCH/TAG. Other backends take a Hugging Face id or a local path.
    `--details` prints the catalogue (architecture family, parameters, GFLOPs, pretraining data, samples seen);
    `--format csv` with it prints every column.
    """
    from rich.table import Table

    from vlbias.errors import VlbiasError
    from vlbias.models.backends.openclip import known_pairs
    from vlbias.models.registry import backend_description, backend_names

    if write_catalogue is not None:
        _write(write_catalogue)
        return
    names = backend_names()
    if backend is not None and backend not in names:
        raise VlbiasError(f"unknown backend {backend!r}; known backends: {', '.join(names)}")
    if details or where is not None or columns is not None or catalogues:
        _details(backend, fmt, where, columns, catalogues)
        return
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
            title=f"open_clip pretrained models ({plural(sum(len(v) for v in pairs.values()), 'pair')})",
            title_justify="left",
        )
        for arch, tags in pairs.items():
            t.add_row(arch, ", ".join(tags))
        out.print(t)
        click.echo("`vlbias models --details` shows the catalogue of facts per model.", err=True)


def _details(backend, fmt, where, columns, catalogues) -> None:
    from rich.table import Table

    from vlbias.errors import VlbiasError
    from vlbias.models.catalogue import DETAIL_COLUMNS, load_catalogue, select, to_csv_text

    df = load_catalogue(catalogues)
    if backend is not None:
        df = df[df["backend"] == backend].reset_index(drop=True)
    if where is not None:
        df = select(df, where)
    if columns is not None:
        cols = [c.strip() for c in columns.split(",") if c.strip()]
        unknown = [c for c in cols if c not in df.columns]
        if unknown:
            raise VlbiasError(f"unknown catalogue column(s) {', '.join(unknown)}; columns: {', '.join(df.columns)}")
        if "spec" not in cols:
            cols.insert(0, "spec")
    else:
        cols = list(df.columns) if fmt == "csv" else [c for c in DETAIL_COLUMNS if c in df.columns]
    if fmt == "csv":
        click.echo(to_csv_text(df[cols]), nl=False)
        return
    import os

    cells = df[cols].astype(object).map(_cell)
    if not os.isatty(1):  # piped: plain aligned text, never truncated
        click.echo(f"model catalogue ({plural(len(df), 'model')})")
        click.echo(cells.to_string(index=False) if len(cells) else "(no rows)")
        return
    t = Table(title=f"model catalogue ({plural(len(df), 'model')})", title_justify="left")
    for c in cols:
        t.add_column(c, no_wrap=c == "spec")
    for row in cells.itertuples(index=False):
        t.add_row(*row)
    console().print(t)


def _cell(v) -> str:
    from vlbias.models.catalogue import _py

    v = _py(v)
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int) and abs(v) >= 10**6:
        for unit, scale in (("B", 10**9), ("M", 10**6)):
            if abs(v) >= scale:
                return f"{v / scale:.3g}{unit}"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _write(path: Path) -> None:
    import open_clip

    from vlbias.models.backends.openclip import write_openclip_catalogue
    from vlbias.utils.progress import progress

    pairs = open_clip.list_pretrained()
    n_archs = len({a for a, _ in pairs})
    click.echo(
        f"profiling {plural(len(pairs), 'pretrained pair')} ({plural(n_archs, 'architecture')}) of open_clip "
        f"{open_clip.__version__} on PyTorch's meta device (no weights are downloaded); this takes a few minutes",
        err=True,
    )
    with progress("profiling open_clip models", len(pairs), "pairs") as bar:
        n = write_openclip_catalogue(path, on_arch=lambda arch: bar.advance(1))
    click.echo(f"wrote {plural(n, 'catalogue row')} to {path}", err=True)
