from __future__ import annotations

from pathlib import Path

import click

from vlbias.cli._common import OVERWRITE_HELP, file_kind, out_option
from vlbias.errors import plural


def db_option(fn):
    return click.option(
        "--db",
        "db",
        type=click.Path(path_type=Path),
        required=True,
        envvar="VLBIAS_DB",
        show_envvar=True,
        help="A sweep's output folder, or its results.duckdb file.",
    )(fn)


@click.group()
def results():
    """Query and export a sweep's results database (DuckDB).

    Each audit is a schema with one table per result table (eat.results); <audit>.<table>_with_models views add
    each model's catalogue facts; `tasks`, `models` and `accuracy` are tables; schema `analysis` holds the tables
    of `vlbias analyze`. New parts are ingested before every command; a folder that cannot be written (a read-only
    copy) is read as it is, with a warning when its database is older than its parts.
    """


@results.command()
@click.argument("sql")
@db_option
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@out_option(file_kind, short=False, help="Write to .parquet or .csv.")
def query(sql, db, fmt, out, overwrite):
    """Run a SQL query, e.g. "select model, test, effect_size from eat.results_with_models"."""
    from vlbias.errors import VlbiasError
    from vlbias.utils.io import atomic_path, write_parquet
    from vlbias.zoo.store import ResultsStore

    kind = file_kind(out) if out is not None else None
    if out is not None and kind is None:
        raise VlbiasError(f"--out {out}: write a .parquet or .csv file")
    df = ResultsStore.open(db).query(sql)
    if out is not None:
        if kind == "parquet":
            write_parquet(df, out, {"query": sql}, overwrite)
        else:
            with atomic_path(out, suffix=out.suffix, kind=kind, overwrite=overwrite) as tmp:
                df.to_csv(tmp, index=False)
        click.echo(f"wrote {plural(len(df), 'row')} to {out}", err=True)
        return
    if fmt == "csv":
        click.echo(df.to_csv(index=False), nl=False)
    elif fmt == "json":
        click.echo(df.to_json(orient="records", indent=1, default_handler=str))
    else:
        import pandas as pd

        with pd.option_context("display.max_rows", 200, "display.max_columns", 50, "display.width", 200):
            click.echo(df.to_string(index=False) if len(df) else "(no rows)")


@results.command()
@db_option
def tables(db):
    """List the tables and views with their row counts."""
    from vlbias.zoo.store import ResultsStore

    click.echo(ResultsStore.open(db).tables().to_string(index=False))


@results.command()
@click.argument("out_dir", type=click.Path(path_type=Path))
@db_option
@click.option("--format", "fmt", type=click.Choice(["parquet", "csv"]), default="parquet", show_default=True)
@click.option("--table", "names", multiple=True, help="Only this table (schema.table); repeatable.")
@click.option("--overwrite", is_flag=True, help=OVERWRITE_HELP.replace("--out", "OUT_DIR"))
def export(out_dir, db, fmt, names, overwrite):
    """Write every table (or the chosen ones) to the new folder OUT_DIR as <schema>.<table>.parquet or .csv."""
    from vlbias.utils.io import atomic_dir, check_out
    from vlbias.zoo.store import ResultsStore

    check_out(out_dir, "export", overwrite, option="OUT_DIR")
    store = ResultsStore.open(db)
    with atomic_dir(out_dir, "export", overwrite) as tmp:
        written = store.export(tmp, fmt, list(names) or None)
    click.echo(f"wrote {plural(len(written), 'table')} to {out_dir}", err=True)


@results.command()
@db_option
@click.option("--force", is_flag=True, help="Rebuild even if no part changed.")
def ingest(db, force):
    """Rebuild the database from the parts (done automatically by the other commands)."""
    from vlbias.zoo.store import ResultsStore

    summary = ResultsStore.open(db).ingest(force=force)
    if summary is None:
        click.echo("results database is up to date", err=True)
    else:
        click.echo(
            f"ingested {plural(summary.parts, 'part')} into {plural(len(summary.tables), 'table')} "
            f"({summary.seconds:.1f} s)",
            err=True,
        )


@results.command()
@db_option
@click.option(
    "--catalogue",
    "catalogues",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="A model catalogue file (CSV: spec and any facts) whose rows replace the models' facts; repeatable.",
)
def facts(db, catalogues):
    """Refresh the models' facts (architecture, parameters, pretraining data) from the model catalogue: the shipped
    rows, $VLBIAS_CATALOGUE and --catalogue files, made before or after the sweep. Facts stored before are kept
    where the catalogue is silent; a file's rows replace them. The models table and its *_with_models views take
    them at once (with, where every catalogue is silent, what the loaded encoders reported)."""
    from vlbias.zoo.store import ResultsStore

    store = ResultsStore.open(db)
    changed = store.refresh_model_facts(catalogues=catalogues)
    store.ingest()
    for model, names in changed.items():
        if names:
            click.echo(f"{model}: {', '.join(names)}", err=True)
    n = sum(bool(v) for v in changed.values())
    click.echo(f"facts of {n} model(s) changed; the models table is up to date", err=True)


@results.command("import-accuracy")
@click.argument("source")
@db_option
@click.option("--metric", "metrics", multiple=True, help="Only this metric (e.g. average, imagenet1k); repeatable.")
@click.option("--name", default=None, help="Name of this import in the database [default: the file's name].")
def import_accuracy(source, db, metrics, name):
    """Import downstream accuracy: open_clip's openclip_results.csv, CLIP_benchmark JSON (a file or a folder) or
    its built CSV, any CSV with model and metric columns, or `openclip` for open_clip's table at a pinned commit
    (downloaded once)."""
    from vlbias.zoo.accuracy import load_accuracy
    from vlbias.zoo.store import ResultsStore

    store = ResultsStore.open(db)
    df = load_accuracy(source, list(metrics) or None)
    label = name or ("openclip" if source == "openclip" else Path(source).stem)
    store.write_accuracy(df, label)
    store.ingest()
    click.echo(
        f"imported {plural(len(df), 'value')} ({plural(df['spec'].nunique(), 'model')}, "
        f"{plural(df['metric'].nunique(), 'metric')}) as {label!r}",
        err=True,
    )
