"""Options shared by commands that load a model or write an output, and small output helpers."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path

import click

from vlbias.utils.io import check_out

DEVICES = ("auto", "cpu", "cuda")


def cache_dir_option(fn: Callable) -> Callable:
    return click.option(
        "--cache-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        envvar="VLBIAS_CACHE",
        show_envvar=True,
        help="Embedding cache folder [default: the platform's user cache folder].",
    )(fn)


def model_options(fn: Callable) -> Callable:
    """--model and the encoding options, the layer (:mod:`vlbias.models.layers`) included; the wrapped command
    receives ``encoder_kwargs`` (for :func:`vlbias.models.load_layers`, or ``load_model``), the layer parsed once."""

    @click.option(
        "--model",
        "-m",
        "model",
        required=True,
        metavar="SPEC",
        help="Model spec, e.g. openclip:ViT-B-32/laion2b_s34b_b79k (see `vlbias models`).",
    )
    @click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True)
    @click.option("--batch-size", type=click.IntRange(min=1), default=None, help="Batch size [default: 64].")
    @click.option(
        "--precision",
        type=click.Choice(["fp32", "fp16", "bf16"]),
        default="fp32",
        show_default=True,
        help="fp16/bf16 run on a GPU only; fp32 gives the same vectors (and cache) on every machine.",
    )
    @click.option(
        "--workers",
        type=click.IntRange(min=0),
        default=None,
        help="Image decoding processes [default: chosen from the CPU count].",
    )
    @click.option(
        "--layer",
        metavar="N|-N|all",
        default=None,
        help="Read the model after transformer block N of each tower (1: the first, -1: the last; a comma list; "
        "all: every block, from one forward pass) instead of its embedding; every result row carries layer and "
        "reading [default: the model's embedding].",
    )
    @click.option(
        "--reading",
        type=click.Choice(["lens", "raw"]),
        default=None,
        help="With --layer: lens (through the tower's final norm and projection: text and images share a space; an "
        "approximation below the last block) or raw (the token as the block outputs it: for audits within one "
        "modality) [default: lens].",
    )
    @click.option("--no-cache", is_flag=True, help="Do not read or write the embedding cache.")
    @cache_dir_option
    @functools.wraps(fn)
    def wrapper(*args, device, batch_size, precision, workers, layer, reading, no_cache, cache_dir, **kwargs):
        from vlbias.models.layers import Layers

        kwargs["encoder_kwargs"] = {
            "device": device,
            "batch_size": batch_size,
            "precision": precision,
            "num_workers": workers,
            "cache": False if no_cache else cache_dir,
            "layer": Layers.parse(layer, reading),
        }
        return fn(*args, **kwargs)

    return wrapper


OVERWRITE_HELP = "Replace an earlier vlbias output at --out (never anything vlbias did not write)."


def out_option(
    kind: str | Callable[[Path], str | None], *, help: str, required: bool = False, short: bool = True
) -> Callable[[Callable], Callable]:
    """--out PATH and --overwrite under vlbias's output rule (:func:`vlbias.utils.io.check_out`), checked before the
    command does any work. ``kind`` is the kind of output, or a function of the path giving it (None: not checked
    here, the command refuses the path itself). The command receives ``out`` and ``overwrite``."""

    def decorate(fn: Callable) -> Callable:
        @click.option(
            "--out", *(("-o",) if short else ()), "out", type=click.Path(path_type=Path), required=required, help=help
        )
        @click.option("--overwrite", is_flag=True, help=OVERWRITE_HELP)
        @functools.wraps(fn)
        def wrapper(*args, out, overwrite, **kwargs):
            the_kind = kind(out) if callable(kind) and out is not None else kind
            if out is not None and the_kind is not None:
                check_out(out, the_kind, overwrite)
            return fn(*args, out=out, overwrite=overwrite, **kwargs)

        return wrapper

    return decorate


def file_kind(path: Path) -> str | None:
    """The kind of a file output by its suffix: parquet, csv, or None."""
    suffix = path.suffix.lower()
    return "parquet" if suffix in (".parquet", ".pq") else "csv" if suffix == ".csv" else None


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def console(stderr: bool = False):
    """The rich console of every command. Markup and emoji codes are off: names from the user (test sets, labels,
    model files) are printed as written, so ``[/x]`` or ``:smile:`` in a name can neither fail nor change the
    output; style with :class:`rich.text.Text` instead."""
    from rich.console import Console

    width = None if os.isatty(1) else 120
    return Console(stderr=stderr, soft_wrap=True, width=width, markup=False, emoji=False)


def note_figures(result, folder: Path, figures) -> None:
    """The figures a command could not draw (``figures.not_drawn``, see :class:`vlbias.plots.style.Figures`) added
    to the result's notes and to the ``skipped.csv`` of the output being written in ``folder``."""
    notes = figures.notes() if hasattr(figures, "notes") else []
    if not notes:
        return
    import pandas as pd

    frames = [f for f in (result.skipped, pd.DataFrame(notes, columns=["item", "reason"])) if len(f)]
    result.skipped = pd.concat(frames, ignore_index=True)
    result.skipped.to_csv(Path(folder) / "skipped.csv", index=False)


MITIGATION_HELP = (
    "Debias the model's embeddings before the audit: a method NAME[:KEY=VALUE,...] fitted now (hard_debias, "
    "projection, clipclip, sfid; `vlbias mitigations`) or a saved mitigation.npz. The fit set's images are never "
    "evaluated; the fitted transform is saved in the output folder."
)


def mitigation_option(fn: Callable) -> Callable:
    """--mitigation SPEC; the wrapped command receives ``mitigation`` (None when not given)."""
    return click.option("--mitigation", "mitigation", metavar="NAME[:KEY=VALUE,...]|FILE", default=None,
                        help=MITIGATION_HELP)(fn)  # fmt: skip


def with_mitigation(encoder, mitigation: str | None):
    """The encoder, mitigated when ``--mitigation`` was given (fitted now, or loaded from a saved transform)."""
    if not mitigation:
        return encoder
    from vlbias.mitigation import mitigate

    return mitigate(encoder, mitigation)


def mitigated_layers(encoders: list, mitigation: str | None) -> list:
    """The encoders of :func:`vlbias.models.load_layers`, the one encoder mitigated when ``--mitigation`` was given.
    A mitigation transforms the model's own embedding; it is refused beside ``--layer``."""
    if not mitigation:
        return encoders
    if len(encoders) != 1 or getattr(encoders[0], "layer", None) is not None:
        from vlbias.errors import VlbiasError

        raise VlbiasError(
            f"--mitigation {mitigation} transforms the model's embedding, not a layer's; drop --layer (measure bias by "
            "depth and mitigation in separate runs)"
        )
    return [with_mitigation(encoders[0], mitigation)]


def save_mitigation(encoder, extras: Callable[[Path], None] | None = None) -> Callable[[Path], None] | None:
    """An ``extras`` for :meth:`AuditResult.write` that also saves a mitigated encoder's transform
    (``mitigation.npz``) in the output folder."""
    transform = getattr(encoder, "transform", None)
    if transform is None:
        return extras

    def write(tmp: Path) -> None:
        transform.save(tmp / "mitigation.npz")
        if extras is not None:
            extras(tmp)

    return write
