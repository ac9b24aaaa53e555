from __future__ import annotations

from pathlib import Path

import click

from vlbias.cli._common import OVERWRITE_HELP
from vlbias.errors import plural

DIR = click.argument("out_dir", metavar="DIR", type=click.Path(path_type=Path))
OVERWRITE = click.option("--overwrite", is_flag=True, help=OVERWRITE_HELP.replace("--out", "DIR"))


@click.group()
def demo() -> None:
    """Write small demo datasets to try every audit offline.

    The pictures are synthetic (flat colours and a block; no real faces, nothing downloaded) in the layouts vlbias
    reads, so the whole code path runs; the numbers they give mean nothing. DIR must be new (or empty, or an earlier
    demo with --overwrite).
    """


def _write(out_dir: Path, overwrite: bool, writer) -> int:
    """Write a demo folder under the output rule (whole or not at all); returns the number of images."""
    from vlbias.utils.io import atomic_dir, check_out

    check_out(out_dir, "demo", overwrite, option="DIR")
    with atomic_dir(out_dir, "demo", overwrite) as tmp:
        writer(tmp)
        return sum(1 for p in tmp.rglob("*.png"))


@demo.command()
@DIR
@click.option(
    "--seeds",
    type=click.IntRange(1, 100),
    default=2,
    show_default=True,
    help="Synthetic identities (seed_<n> folders).",
)
@click.option("--all-levels", is_flag=True, help="Every level of the release, not three per attribute (2 or 3).")
@OVERWRITE
def causalface(out_dir, seeds, all_levels, overwrite):
    """A CausalFace folder (final_picked_<attribute>/seed_<n>/, the release's file names) for causalface:DIR.

    Each identity in six race x gender versions, at a few levels of age, lighting, pose and smiling (all 33 with
    --all-levels), 512 x 512 PNGs; then e.g. `vlbias perception -m openclip:ViT-B-32/random -d causalface:DIR`.
    """
    from vlbias.datasets.demo import FEW_LEVELS, write_causalface

    levels = None if all_levels else FEW_LEVELS
    n = _write(out_dir, overwrite, lambda tmp: write_causalface(tmp, seeds=tuple(range(1, seeds + 1)), levels=levels))
    click.echo(f"wrote {plural(n, 'image')} to {out_dir}; use it as causalface:{out_dir}", err=True)


@demo.command()
@DIR
@click.option(
    "--per-group", type=click.IntRange(1, 100), default=3, show_default=True, help="People per race x gender."
)
@OVERWRITE
def faces(out_dir, per_group, overwrite):
    """Faces with race, gender and age: DIR/faces.csv and DIR/images/, for manifest:DIR/faces.csv.

    Four races (white, black, east_asian, indian) x two genders x --per-group people, one 224 x 224 PNG each; then
    e.g. `vlbias zeroshot -m openclip:ViT-B-32/random -d manifest:DIR/faces.csv`.
    """
    from vlbias.datasets.demo import write_faces

    n = _write(out_dir, overwrite, lambda tmp: write_faces(tmp, per_group=per_group))
    click.echo(
        f"wrote {plural(n, 'image')} and faces.csv to {out_dir}; use it as manifest:{out_dir / 'faces.csv'}", err=True
    )
