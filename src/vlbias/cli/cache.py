from __future__ import annotations

import sys

import click

from vlbias.cli._common import cache_dir_option, console, human_bytes
from vlbias.errors import plural


@click.group()
def cache():
    """Inspect or clear the embedding cache."""


@cache.command()
@cache_dir_option
def info(cache_dir):
    """Entries, size and counts per model."""
    from rich.table import Table
    from rich.text import Text

    from vlbias.cache import EmbeddingCache

    store = EmbeddingCache(cache_dir)
    entries = store.entries()
    out = console()
    out.print(f"cache folder: {store.root}", markup=False, highlight=False)
    if not entries:
        out.print("empty")
        return
    table = Table("model", "identity", "texts", "images", "size", "created")
    for e in entries:
        table.add_row(
            "(damaged)" if e.damaged else Text(e.spec),  # user text: never rich markup
            Text(e.identity[:12]),
            str(e.counts.get("text", 0)),
            str(e.counts.get("image", 0)),
            human_bytes(e.size_bytes),
            e.created,
        )
    total = sum(e.size_bytes for e in entries)
    n = sum(sum(e.counts.values()) for e in entries)
    table.add_section()
    table.add_row(plural(len(entries), "model"), "", "", "", human_bytes(total), plural(n, "embedding"))
    out.print(table)
    for e in entries:
        if e.damaged:
            click.echo(
                f"vlbias: warning: {e.path} is damaged ({e.damaged}); `vlbias cache clear --yes` (or --model SPEC) "
                f"deletes it, or delete it by hand",
                err=True,
            )


@cache.command()
@click.option("--model", "-m", "models", multiple=True, metavar="SPEC", help="Clear only this model (repeatable).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask before clearing everything.")
@cache_dir_option
def clear(models, yes, cache_dir):
    """Delete cached embeddings (all, or those of --model SPEC)."""
    from vlbias.cache import EmbeddingCache
    from vlbias.errors import VlbiasError

    store = EmbeddingCache(cache_dir)
    if not models and not yes:
        if not sys.stdin.isatty():
            raise VlbiasError("clearing the whole cache needs --yes (or name models with --model SPEC)")
        click.confirm(f"delete every cached embedding in {store.root}?", abort=True)
    removed = store.clear(models or None)
    if models and not any(e.spec in models for e in removed):
        hint = "; `vlbias cache info` lists the cached models"
        if removed:  # only damaged files: say so, and that the model was not found
            click.echo(f"vlbias: warning: no cache entries for {', '.join(models)}{hint}", err=True)
        else:
            raise VlbiasError(f"no cache entries for {', '.join(models)}{hint}")
    freed = sum(e.size_bytes for e in removed)
    damaged = [e for e in removed if e.damaged]
    click.echo(
        f"removed {plural(len(removed), 'model cache file')}, {human_bytes(freed)}"
        + (f", {len(damaged)} of them damaged ({', '.join(str(e.path) for e in damaged)})" if damaged else ""),
        err=True,
    )
