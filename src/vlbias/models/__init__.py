"""Models: one spec string names a model; :func:`load_model` returns its :class:`Encoder`.

>>> enc = load_model("openclip:ViT-B-32/laion2b_s34b_b79k")        # doctest: +SKIP
>>> enc.encode_texts(["a photo of a doctor"]).shape                 # doctest: +SKIP
(1, 512)
>>> [e.layer for e in load_layers("openclip:ViT-B-32/random", layer="all")]   # doctest: +SKIP
[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from vlbias.models.base import Encoder, ImageEncoding, ModelInfo
from vlbias.models.catalogue import model_facts
from vlbias.models.images import ImageRef
from vlbias.models.layers import LayerEncoder, Layers, layer_encoders
from vlbias.models.registry import backend_class, backend_names
from vlbias.models.spec import ModelSpec

if TYPE_CHECKING:
    from vlbias.cache import EmbeddingCache


def load_model(
    spec: str | ModelSpec,
    *,
    device: str = "auto",
    batch_size: int | None = None,
    precision: str = "fp32",
    num_workers: int | None = None,
    cache: EmbeddingCache | str | os.PathLike | bool | None = None,
    layer: Layers | int | str | None = None,
    reading: str | None = None,
) -> Encoder:
    """The encoder for a model spec, with the model catalogue's facts for its :class:`ModelInfo`. Weights load
    lazily, on the first embedding the cache does not have. ``layer`` (a block number, negative from the top) and
    ``reading`` (``lens`` or ``raw``) give one layer of the model instead of its embedding
    (:mod:`vlbias.models.layers`); for several layers from one pass use :func:`load_layers`."""
    encoders = load_layers(
        spec,
        device=device,
        batch_size=batch_size,
        precision=precision,
        num_workers=num_workers,
        cache=cache,
        layer=layer,
        reading=reading,
    )
    if len(encoders) > 1:
        from vlbias.errors import LayerError

        raise LayerError(f"layer {layer} names {len(encoders)} layers; load_model gives one (use load_layers)")
    return encoders[0]


def load_layers(
    spec: str | ModelSpec,
    *,
    device: str = "auto",
    batch_size: int | None = None,
    precision: str = "fp32",
    num_workers: int | None = None,
    cache: EmbeddingCache | str | os.PathLike | bool | None = None,
    layer: Layers | int | str | None = None,
    reading: str | None = None,
) -> list[Encoder]:
    """One encoder per chosen layer of a model (``layer``: ``"all"``, block numbers, or a parsed :class:`Layers`),
    sharing the model and filling every layer from one forward pass; the model's own encoder alone when no layer is
    chosen."""
    parsed = spec if isinstance(spec, ModelSpec) else ModelSpec.parse(spec)
    cls = backend_class(parsed.backend)
    base = cls(
        parsed,
        device=device,
        batch_size=batch_size,
        precision=precision,
        num_workers=num_workers,
        cache=cache,
        facts=model_facts,
    )
    return layer_encoders(base, Layers.parse(layer, reading))


__all__ = [
    "Encoder",
    "ImageEncoding",
    "ImageRef",
    "LayerEncoder",
    "Layers",
    "ModelInfo",
    "ModelSpec",
    "backend_names",
    "load_layers",
    "load_model",
]
