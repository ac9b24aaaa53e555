"""Embedding export: texts or an image source through an encoder into one Parquet table.

The table's columns are ``key``, ``kind``, ``vector`` (list<float32>), and for images ``path``, ``sha256`` and
``error``; read at layers of the model (:mod:`vlbias.models.layers`), a ``layer`` column and one row per key and
layer. A skipped image keeps its row with a null vector and the reason in ``error``, so the output says
what was left out. The file is itself a valid ``vectors:`` source.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from vlbias.errors import ImageDecodeError, StimulusError, plural
from vlbias.models.base import Encoder
from vlbias.stimuli.imagesets import ImageSource


def read_text_lines(path: str | os.PathLike) -> list[str]:
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise StimulusError(f"texts file not found: {p}; check the path") from None
    except UnicodeDecodeError:
        raise StimulusError(f"texts file {p} is not UTF-8 text; save it as UTF-8, one text per line") from None
    texts = list(dict.fromkeys(line.strip() for line in lines if line.strip()))
    if not texts:
        raise StimulusError(f"texts file {p} holds no texts; put one text per line")
    return texts


def _vector_array(vectors: np.ndarray, valid: np.ndarray | None = None):
    import pyarrow as pa

    n, d = vectors.shape
    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1), type=pa.float32())
    offsets = pa.array(np.arange(0, (n + 1) * d, d, dtype=np.int32))
    mask = None if valid is None else pa.array(~valid)
    return pa.ListArray.from_arrays(offsets, flat, mask=mask)


def texts_table(encoder: Encoder, texts: list[str]):
    import pyarrow as pa

    vecs = encoder.encode_texts(texts)
    return pa.table({"key": texts, "kind": ["text"] * len(texts), "vector": _vector_array(vecs)})


def layers_table(encoders: list[Encoder], table, modality: str):
    """``table(encoder)`` of each encoder of :func:`vlbias.models.load_layers`, one below the other, with a ``layer``
    column when the encoders read layers (the first fills every layer from one pass; the others read the cache).
    Layers whose ``modality`` tower is too shallow are left out (when others remain)."""
    import pyarrow as pa

    usable = [e for e in encoders if modality in e.modalities] or encoders[:1]  # none: the first says why
    tables = []
    for enc in usable:
        t = table(enc)
        layer = getattr(enc, "layer", None)
        if layer is not None:
            t = t.append_column("layer", pa.array([layer] * t.num_rows, type=pa.int32()))
        tables.append(t)
    return pa.concat_tables(tables) if len(tables) > 1 else tables[0]


def images_table(encoder: Encoder, source: ImageSource, skip_bad: bool = False):
    import pyarrow as pa

    paths = list(source.paths)
    bad_files = list(source.non_images)
    if bad_files and not skip_bad:
        more = f" (and {plural(len(bad_files) - 1, 'other')})" if len(bad_files) > 1 else ""
        raise ImageDecodeError(
            f"{bad_files[0]} is not an image file{more}; remove it from {source.root} or pass --skip-bad-images",
            [(str(p), "not an image file") for p in bad_files],
        )
    if not paths:
        raise StimulusError(f"no image files in {source.root}")
    result = encoder.try_encode_images(paths, root=source.root, skip_bad=skip_bad)
    full = np.zeros((len(paths), result.vectors.shape[1]), dtype=np.float32)
    full[result.ok] = result.vectors
    errors: list[str | None] = [None] * len(paths)
    for i, _, reason in result.skipped:
        errors[i] = reason
    keys = [source.key(p) for p in paths] + [source.key(p) for p in bad_files]
    shas = [
        k.split("@", 1)[0] if k and not k.startswith("pil:") else None for k in (result.keys or [None] * len(paths))
    ]
    n_bad = len(bad_files)
    valid = np.concatenate([result.ok, np.zeros(n_bad, dtype=bool)])
    vectors = np.concatenate([full, np.zeros((n_bad, full.shape[1]), dtype=np.float32)])
    return pa.table(
        {
            "key": keys,
            "kind": ["image"] * len(keys),
            "vector": _vector_array(vectors, valid),
            "path": [str(p) for p in paths] + [str(p) for p in bad_files],
            "sha256": shas + [None] * n_bad,
            "error": errors + ["not an image file"] * n_bad,
        }
    )
