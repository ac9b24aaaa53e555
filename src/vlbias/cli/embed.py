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
    help="Output Parquet file (key, kind, vector, …; with --layer a layer column); usable as vectors:FILE.",
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
    from vlbias.models import load_layers
    from vlbias.stimuli.imagesets import image_source
    from vlbias.utils.io import write_parquet

    if (texts is None) == (images is None):
        raise VlbiasError("give exactly one of --texts FILE or --images DIR_OR_MANIFEST")
    if out.suffix.lower() not in (".parquet", ".pq"):
        raise VlbiasError(f"--out {out} must be a .parquet file")
    encoders = load_layers(model, **encoder_kwargs)
    if texts is not None:
        lines = embeddings.read_text_lines(texts)
        table = embeddings.layers_table(encoders, lambda enc: embeddings.texts_table(enc, lines), "text")
    else:
        source = image_source(images)
        table = embeddings.layers_table(
            encoders, lambda enc: embeddings.images_table(enc, source, skip_bad=skip_bad_images), "image"
        )
    encoder = encoders[0]
    meta = {"model": str(encoder.spec), "identity": getattr(encoder, "base", encoder).identity}
    if getattr(encoder, "reading", None):
        meta["reading"] = encoder.reading
    write_parquet(table, out, meta, overwrite)
    skipped = table.column("vector").null_count
    note = f" ({skipped} skipped: see the 'error' column)" if skipped else ""
    if "layer" in table.column_names:
        held = sorted(set(table.column("layer").to_pylist()))
        left = [e.layer for e in encoders if e.layer not in held]
        note += f" at layers {', '.join(map(str, held))}" + (
            f" (layers {', '.join(map(str, left))} left out: that tower has fewer blocks)" if left else ""
        )
    click.echo(f"wrote {plural(table.num_rows - skipped, 'embedding')} to {out}{note}", err=True)
