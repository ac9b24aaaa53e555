from __future__ import annotations

from pathlib import Path

import click

from vlbias.cli._common import console
from vlbias.errors import plural

STIMULI_DIR = click.option(
    "--stimuli-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    envvar="VLBIAS_STIMULI",
    show_envvar=True,
    help="Folder of fetched stimuli (`vlbias stimuli fetch ieat`) [default: the platform's user data folder].",
)


@click.group()
def stimuli() -> None:
    """Fetch, verify and list stimuli: association tests and the iEAT image sets."""


@stimuli.command()
@click.argument("name", type=click.Choice(["ieat"]))
@STIMULI_DIR
@click.option(
    "--from",
    "from_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Copy from a local folder (the stimuli's <test>/<category>/ layout, or a clone of the repository); only "
    "regular files inside it are read, never symbolic links.",
)
@click.option("--url", "base_url", default=None, help="Download from this base URL instead of GitHub (a mirror).")
def fetch(name, stimuli_dir, from_dir, base_url):
    """Download (or copy) the iEAT image sets the battery uses and verify every file.

    The images (Steed & Caliskan 2021, CC BY-NC-SA 4.0) come from github.com/ryansteed/ieat at commit 4d7639b and
    are checked against the sha256 manifest that ships with vlbias.
    """
    from vlbias.stimuli import ieat
    from vlbias.utils.progress import progress

    with progress("fetching iEAT stimuli", len(ieat.manifest()), "files") as bar:
        report = ieat.fetch(stimuli_dir, from_dir=from_dir, base_url=base_url, progress_bar=bar)
    click.echo(
        f"iEAT stimuli in {report.dest}: {report.fetched} fetched ({report.bytes / 1e6:.1f} MB), "
        f"{report.already} already present, all verified (licence: {ieat.IEAT_LICENSE})",
        err=True,
    )


@stimuli.command()
@click.argument("name", type=click.Choice(["ieat"]))
@STIMULI_DIR
def verify(name, stimuli_dir):
    """Check the fetched iEAT images against the manifest."""
    from vlbias.errors import VlbiasError
    from vlbias.stimuli import ieat

    report = ieat.verify(stimuli_dir)
    if not report.complete:
        first = (report.missing + report.bad)[0]
        raise VlbiasError(
            f"iEAT stimuli in {report.dest}: {len(report.missing)} missing and {len(report.bad)} changed "
            f"(e.g. {first}); run `vlbias stimuli fetch ieat`"
        )
    every = "" if report.ok == 1 else "all "
    click.echo(f"iEAT stimuli in {report.dest}: {every}{plural(report.ok, 'file')} verified", err=True)


@stimuli.command(name="list")
@STIMULI_DIR
def list_(stimuli_dir):
    """List the packaged association tests, the battery and the state of the iEAT sets."""
    from rich.table import Table

    from vlbias.stimuli import ieat
    from vlbias.stimuli.eat_tests import get_test, packaged_test_names

    con = console()
    table = Table(title="Packaged association tests (sent-NAME: sentence version)", title_justify="left")
    for col in ("name", "X vs Y", "A vs B", "sizes (sentences)"):
        table.add_column(col, overflow="fold")
    for name in packaged_test_names():
        if name.startswith("sent-"):
            continue
        t, s = get_test(name), get_test(f"sent-{name}")
        sizes = "/".join(str(len(x.texts)) for x in t.sets().values())
        sent = "/".join(str(len(x.texts)) for x in s.sets().values())
        table.add_row(name, f"{t.X.name} vs {t.Y.name}", f"{t.A.name} vs {t.B.name}", f"{sizes} ({sent})")
    con.print(table)
    report = ieat.verify(stimuli_dir)
    state = (
        "complete"
        if report.complete
        else f"{report.ok} of {plural(report.ok + len(report.missing) + len(report.bad), 'file')}"
    )
    con.print(f"iEAT image sets in {report.dest}: {state}; sets: {', '.join(ieat.manifest_sets())}")
    con.print(
        "battery: standard (26 rows: 8 all-text, 5 all-image, 5 image-as-target, 8 text-as-target; 24 run unless you "
        "supply instrument images, which neither Ghate et al. nor iEAT released: --image-set instruments=DIR)"
    )
