"""Layer features: what a dual encoder's towers hold after any transformer block, as encoders every audit can use.

A *layer* is a block number of a tower: 1 is the first transformer block, L the tower's last; negative numbers count
from the top (-1 is the last block, -2 the one below it). Each tower reads one token of the block's output, the one
its own head pools: the image tower's class token (the mean of the patch tokens where the tower average-pools; the
whole sequence through the attention pooler where it has one), the text tower's end-of-text token (or the token the
tower pools: the last, the first). Two readings:

- ``raw``: that token as the block outputs it, in the tower's width. The two towers' raw vectors live in different
  spaces (of different widths, often), so ``raw`` suits audits within one modality: all-text and all-image
  association tests, image-image analyses.
- ``lens``: that block output passed through the tower's own head (its final norm, pooling and projection), the
  function that makes the model's embedding from the last block's output. Text and image then share the embedding
  space at every depth, so cross-modal tests, zero-shot classification and the perception audit run too. At the
  last block it *is* the model's embedding; below it, it is an approximation: the head was trained on the last
  block's output only, and an earlier block's output is not what it expects.

A layer is part of the model's identity: :func:`layer_encoders` makes one :class:`LayerEncoder` per layer, whose
identity is the model's identity plus layer and reading, so its vectors have their own cache file and its results
their own identity and config hash. The encoders made together share the loaded model and fill all their layers
from one forward pass: each batch's vectors of every layer go to that layer's cache as the batch comes (with no
cache, to memory for the run), so memory stays bounded and reading every layer costs about one pass.

Layer features come from open_clip ViT models and Hugging Face CLIP and SigLIP models (the backends implement
``tower_depths``, ``_embed_text_layers`` and ``_embed_image_layers``), and from ``vectors:`` files with a ``layer``
column. Everything else is refused in one line (ResNet and ConvNeXt towers have no transformer blocks).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from vlbias.errors import LayerError, OptionError
from vlbias.models.base import IDENTITY_FORMAT, Encoder, ModelInfo, l2_normalise
from vlbias.utils.io import stable_hash

READINGS = ("lens", "raw")
ALL = "all"


@dataclass(frozen=True)
class Layers:
    """Which layers of a model to read, and how (``--layer``/``--reading``, a sweep's ``layers:``), parsed once.

    ``select``: None for the model's own embedding (no layer), ``"all"`` for every block, else block numbers
    (negative: counted from the top). ``reading``: ``lens`` or ``raw`` (None without a layer)."""

    select: tuple[int, ...] | str | None = None
    reading: str | None = None

    @classmethod
    def parse(cls, layer: Any = None, reading: Any = None, what: str = "--layer") -> Layers:
        """A selection from what a user wrote: ``None``, ``"all"``, a block number (``6``, ``-1``, ``"-1"``), a
        comma list (``"1,6,-1"``) or a list; and ``reading`` (``lens``, the default, or ``raw``). One line naming
        ``what`` (a flag or a config key) for anything else."""
        if isinstance(layer, Layers):
            if reading is not None and _reading(reading, what) != layer.reading:
                raise OptionError(f"{what}: the layers already say reading {layer.reading}; give the reading once")
            return layer
        select = _select(layer, what)
        if select is None:
            if reading is not None:
                raise OptionError(
                    f"--reading {reading}: a reading applies to a layer; give a layer too (e.g. {what} -1 for the "
                    f"last block)"
                )
            return cls()
        return cls(select, _reading(reading, what) if reading is not None else "lens")

    @property
    def chosen(self) -> bool:
        """Whether layers were chosen (else: the model's own embedding)."""
        return self.select is not None

    def resolve(self, numbers: Sequence[int]) -> tuple[int, ...]:
        """The layers chosen, given the block numbers a model has (what ``all`` means for it)."""
        if self.select == ALL:
            return tuple(numbers)
        return tuple(self.select or ())

    def __str__(self) -> str:
        if self.select is None:
            return "final"
        return self.select if isinstance(self.select, str) else ",".join(map(str, self.select))


def _reading(value: Any, what: str) -> str:
    text = str(value).strip().lower()
    if text not in READINGS:
        raise OptionError(f"--reading {value!r}: use lens (the tower's head, shared space) or raw (the token as is)")
    return text


def _select(value: Any, what: str) -> tuple[int, ...] | str | None:
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "final", "none", "null")):
        return None
    if isinstance(value, str) and value.strip().lower() == ALL:
        return ALL
    items = value.split(",") if isinstance(value, str) else value if isinstance(value, (list, tuple)) else [value]
    out: list[int] = []
    for item in items:
        if isinstance(item, str) and item.strip().lower() == ALL:
            raise OptionError(f"{what} {value!r}: 'all' stands alone (every block); or list block numbers")
        n = _block_number(item)
        if n is None or n == 0:
            raise OptionError(
                f"{what} {value!r}: a layer is a transformer block number, 1 (the first) to the tower's depth, or "
                f"counted from the top, -1 (the last) down; or 'all'"
            )
        out.append(n)
    if not out:
        return None
    return tuple(dict.fromkeys(out))


def _block_number(item: Any) -> int | None:
    if isinstance(item, bool):
        return None
    if isinstance(item, (int, np.integer)):
        return int(item)
    if isinstance(item, float) and item.is_integer():
        return int(item)
    if isinstance(item, str):
        try:
            return int(item.strip())
        except ValueError:
            return None
    return None


def layer_identity(backend: str, model_identity: str, layer: int, reading: str) -> str:
    """The identity of one layer of a model: the model's identity with the layer and the reading (the identity of
    :class:`LayerEncoder`, computed without making one, e.g. for a sweep's check of finished tasks)."""
    payload = {"model": model_identity, "layer": int(layer), "reading": reading}
    return stable_hash({"backend": backend, "format": IDENTITY_FORMAT, **payload})


def block_of(layer: int, depth: int) -> int | None:
    """The block (1..depth) that ``layer`` names in a tower of ``depth`` blocks, or None if it has none."""
    block = layer if layer > 0 else depth + 1 + layer
    return block if 1 <= block <= depth else None


def layer_numbers(depths: Mapping[str, int]) -> tuple[int, ...]:
    """Every layer of a model: 1 to the depth of its deepest tower (a shallower tower lacks the top ones)."""
    return tuple(range(1, max(depths.values()) + 1)) if depths else ()


# ---------------------------------------------------------------------------------------------------- encoders
class MemoryCache:
    """The vectors of one layer held for the run, where there is no embedding cache (``--no-cache``): other
    layers of a pass wait here until their encoder asks. The interface of the cache's ``ModelCache``."""

    def __init__(self) -> None:
        self._vectors: dict[tuple[str, str], np.ndarray] = {}

    def get_many(self, kind: str, keys: Sequence[str]) -> dict[str, np.ndarray]:
        return {k: self._vectors[(kind, k)] for k in keys if (kind, k) in self._vectors}

    def put_many(self, kind: str, keys: Sequence[str], vectors: np.ndarray) -> None:
        for k, v in zip(keys, vectors):
            self._vectors[(kind, k)] = np.array(v, dtype=np.float32)


class LayerFamily:
    """The layer encoders of one loaded model made together: every forward pass fills all their layers."""

    def __init__(self, base: Encoder, layers: Sequence[int], reading: str, depths: Mapping[str, int]):
        self.base = base
        self.reading = reading
        self.depths = dict(depths)
        self.views = {k: LayerEncoder(self, k) for k in layers}

    def blocks(self, modality: str) -> dict[int, int]:
        """Layer -> block number in the tower of ``modality``, for the layers that tower has."""
        depth = self.depths.get(modality)
        if depth is None:
            return {}
        return {k: b for k in self.views if (b := block_of(k, depth)) is not None}

    def _store(self, kind: str, keys: list[str], raw: Mapping[int, np.ndarray]) -> dict[int, np.ndarray]:
        out = {}
        for layer, vectors in raw.items():
            v = l2_normalise(vectors, f"{kind} embedding at layer {layer}")
            cache = self.views[layer]._cache()
            if cache is not None:
                cache.put_many(kind, keys, v)
            out[layer] = v
        return out

    def fill_texts(self, texts: list[str]) -> dict[int, np.ndarray]:
        """Every layer's vectors of ``texts`` from one pass, each stored in its layer's cache as it comes."""
        raw = self.base._embed_text_layers(texts, self.blocks("text"), self.reading)
        return self._store("text", texts, raw)

    def fill_images(self, batch, keys: list[str]) -> dict[int, np.ndarray]:
        raw = self.base._embed_image_layers(batch, self.blocks("image"), self.reading)
        return self._store("image", keys, raw)


class LayerEncoder(Encoder):
    """One layer of a model, read as ``lens`` or ``raw`` (see the module docstring): an encoder like any other, whose
    identity, cache file and results are the layer's. Made by :func:`layer_encoders`; shares the loaded model with
    the other layers of its family."""

    def __init__(self, family: LayerFamily, layer: int):
        base = family.base
        self.family = family
        self.base = base
        self.layer = int(layer)
        self.reading = family.reading
        self._memory = MemoryCache()
        super().__init__(
            base.spec,
            device=base.requested_device,
            batch_size=base.batch_size,
            precision=base.precision,
            num_workers=base.num_workers,
            cache=base._cache_store if base._cache_store is not None else False,
            facts=base._facts,
        )

    # ------------------------------------------------------------------ identity, loading, metadata
    def _identity_payload(self) -> dict[str, Any]:
        return {"model": self.base.identity, "layer": self.layer, "reading": self.reading}

    def _load(self) -> None:
        self.base.load()

    def load(self) -> Encoder:
        self.base.load()
        return self

    @property
    def is_loaded(self) -> bool:
        return self.base.is_loaded

    @property
    def device(self) -> str:  # the base's (the model runs there)
        return self.base.device

    @property
    def modalities(self) -> tuple[str, ...]:  # the towers that have this layer
        return tuple(m for m in self.base.modalities if self.layer in self.family.blocks(m))

    def layer_facts(self) -> dict[str, Any]:
        """What a record carries about the layer: layer, reading, and the identity of the model itself."""
        return {"layer": self.layer, "reading": self.reading, "base_identity": self.base.identity}

    def record(self) -> dict[str, Any]:
        return {**self.base.record(), "identity": self.identity, **self.layer_facts()}

    @property
    def info(self) -> ModelInfo:
        info = self.base.info
        return dataclasses.replace(info, identity=self.identity, extra={**info.extra, **self.layer_facts()})

    def _require(self, modality: str) -> None:
        self.base._require(modality)
        if modality not in self.modalities:
            depth = self.family.depths.get(modality)
            raise LayerError(
                f"{self.spec}: its {modality} tower has {depth} blocks, so it has no layer {self.layer}; choose a "
                f"layer from 1 to {depth} (or -{depth} to -1) for audits that encode {modality}s"
            )

    def _cache(self):
        if self._cache_store is None:
            return self._memory
        if self._model_cache is None:
            meta = {
                "spec": str(self.spec),
                "backend": self.spec.backend,
                "precision": self.precision,
                **self.layer_facts(),
            }
            self._model_cache = self._cache_store.for_model(self.identity, meta)
        return self._model_cache

    # ------------------------------------------------------------------ encoding: one pass fills every layer
    def _image_preprocess(self):
        return self.base._image_preprocess()

    def _encode_text_batch(self, texts: list[str], cache) -> np.ndarray:
        return self.family.fill_texts(texts)[self.layer]

    def _encode_image_batch(self, batch, keys: list[str], cache) -> np.ndarray:
        return self.family.fill_images(batch, keys)[self.layer]


def layer_encoders(base: Encoder, layers: Layers | None) -> list[Encoder]:
    """One encoder per chosen layer of ``base``'s model, sharing the model and filling every layer from one pass
    (``[base]`` itself when no layer is chosen). A backend may make its own (``layer_views``: ``vectors:`` files
    pick rows of their ``layer`` column); a layer beyond every tower is refused in one line."""
    if layers is None or not layers.chosen:
        return [base]
    own = getattr(base, "layer_views", None)
    if callable(own):
        return own(layers)
    depths = base.tower_depths()
    chosen = layers.resolve(layer_numbers(depths))
    deepest = max(depths.values())
    for k in chosen:
        if not any(block_of(k, d) is not None for d in depths.values()):
            towers = ", ".join(f"{m} {d}" for m, d in depths.items())
            raise LayerError(
                f"{base.spec} has no layer {k} (blocks per tower: {towers}); choose a layer from 1 to {deepest}, "
                f"-{deepest} to -1, or all"
            )
    family = LayerFamily(base, chosen, layers.reading or "lens", depths)
    return [family.views[k] for k in chosen]


__all__ = [
    "ALL",
    "READINGS",
    "LayerEncoder",
    "LayerFamily",
    "Layers",
    "MemoryCache",
    "block_of",
    "layer_encoders",
    "layer_identity",
    "layer_numbers",
]
