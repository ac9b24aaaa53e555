"""Models: one spec string names a model; :func:`load_model` returns its :class:`Encoder`.

>>> enc = load_model("openclip:ViT-B-32/laion2b_s34b_b79k")        # doctest: +SKIP
>>> enc.encode_texts(["a photo of a doctor"]).shape                 # doctest: +SKIP
(1, 512)
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from vlbias.models.base import Encoder, ImageEncoding, ModelInfo
from vlbias.models.catalogue import model_facts
from vlbias.models.images import ImageRef
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
) -> Encoder:
    """The encoder for a model spec, with the model catalogue's facts for its :class:`ModelInfo`. Weights load
    lazily, on the first embedding the cache does not have."""
    parsed = spec if isinstance(spec, ModelSpec) else ModelSpec.parse(spec)
    cls = backend_class(parsed.backend)
    return cls(
        parsed,
        device=device,
        batch_size=batch_size,
        precision=precision,
        num_workers=num_workers,
        cache=cache,
        facts=model_facts,
    )


__all__ = ["Encoder", "ImageEncoding", "ImageRef", "ModelInfo", "ModelSpec", "backend_names", "load_model"]
