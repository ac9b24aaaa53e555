from __future__ import annotations

from pathlib import Path

import click

from vlbias.cli._common import file_kind, model_options, out_option
from vlbias.errors import plural


@click.command()
@model_options
@click.option("--texts", type=click.Path(dir_okay=False, path_type=Path), help="UTF-8 file, one text per line.")
@click.option("--images", type=click.Path(path_type=Path), help="Image folder (recursive) or CSV manifest.")
@out_option(
    lambda p: "parquet" if file_kind(p) == "parquet" else None,
    required=True,
    help="Output Parquet file (key, kind, vector, …); usable as vectors:FILE.",
)
@click.option(
    "--skip-bad-images",
    is_flag=True,
    help="Skip images that cannot be decoded (recorded in the output's error column) instead of failing.",
)
def embed(model, texts, images, out, overwrite, skip_bad_images, encoder_kwargs):
    """Embed texts or images with a model into a Parquet file.

    \b
    vlbias embed --model st:all-MiniLM-L6-v2 --texts words.txt --out words.parquet
    vlbias embed --model openclip:ViT-B-32/laion2b_s34b_b79k --images faces/ --out faces.parquet
    """
    from vlbias import embeddings
    from vlbias.errors import VlbiasError
    from vlbias.models import load_model
    from vlbias.stimuli.imagesets import image_source
    from vlbias.utils.io import write_parquet

    if (texts is None) == (images is None):
        raise VlbiasError("give exactly one of --texts FILE or --images DIR_OR_MANIFEST")
    if out.suffix.lower() not in (".parquet", ".pq"):
        raise VlbiasError(f"--out {out} must be a .parquet file")
    encoder = load_model(model, **encoder_kwargs)
    if texts is not None:
        table = embeddings.texts_table(encoder, embeddings.read_text_lines(texts))
    else:
        table = embeddings.images_table(encoder, image_source(images), skip_bad=skip_bad_images)
    write_parquet(table, out, {"model": str(encoder.spec), "identity": encoder.identity}, overwrite)
    skipped = table.column("vector").null_count
    note = f" ({skipped} skipped: see the 'error' column)" if skipped else ""
    click.echo(f"wrote {plural(table.num_rows - skipped, 'embedding')} to {out}{note}", err=True)
