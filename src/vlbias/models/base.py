"""The encoder interface that every audit uses, and the machinery every backend shares.

An :class:`Encoder` turns texts and images into L2-normalised float32 vectors, in input order. Backends supply
only what differs between libraries (how to load, how to run one batch, which preprocessing belongs to the
weights); batching, the parallel image loader, normalisation, progress and the embedding cache live here, once.

Loading is lazy: constructing an encoder parses and validates its spec and computes its *identity* (a hash of
everything that determines its vectors: weights, preprocessing, precision) without importing torch. Weights load
on the first batch that the cache cannot answer, so a fully cached rerun never loads the model.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from vlbias.cache.store import EmbeddingCache, ModelCache
from vlbias.errors import ImageDecodeError, LayerError, ModalityError, StimulusError, VlbiasError, plural
from vlbias.models.images import ImageDataset, ImageInput, as_ref, collate, content_keys, describe
from vlbias.models.spec import ModelSpec
from vlbias.utils.io import stable_hash
from vlbias.utils.options import whole_number
from vlbias.utils.progress import progress

IDENTITY_FORMAT = 1
PRECISIONS = ("fp32", "fp16", "bf16")
#: the facts of a model's catalogue row that :class:`ModelInfo` carries
CATALOGUE_FACTS = (
    "architecture_family",
    "pretraining_dataset",
    "dataset_family",
    "dataset_size",
    "samples_seen",
    "fine_tuned",
)

#: the model facts an encoder knows itself (for the catalogue's columns of the same names, where it is silent)
ENCODER_FACTS = ("architecture", "embed_dim", "n_params", "n_params_image", "n_params_text")


def check_encoder_options(
    device: Any = "auto", batch_size: Any = None, precision: Any = "fp32", num_workers: Any = None
) -> None:
    """The options every encoder takes, checked; a user error names the first bad one and what it may be."""
    if not isinstance(device, str) or (device not in ("auto", "cpu", "cuda") and not device.startswith("cuda:")):
        raise VlbiasError(f"encoder option device={device!r} is unknown; use auto, cpu, cuda or cuda:N")
    if not isinstance(precision, str) or precision not in PRECISIONS:
        raise VlbiasError(f"encoder option precision={precision!r} is unknown; use one of {', '.join(PRECISIONS)}")
    if batch_size is not None:
        whole_number("encoder", "batch_size", batch_size, 1)
    if num_workers is not None:
        whole_number("encoder", "workers", num_workers)


@dataclass(frozen=True)
class ModelInfo:
    """Typed metadata of a loaded model, as it appears beside every result row."""

    spec: str
    backend: str
    identity: str
    modalities: tuple[str, ...]
    architecture: str | None = None
    pretrained: str | None = None
    embed_dim: int | None = None
    n_params: int | None = None
    n_params_image: int | None = None
    n_params_text: int | None = None
    precision: str = "fp32"
    preprocessing: dict[str, Any] | None = None
    logit_scale: float | None = None
    logit_bias: float | None = None
    # pretraining-data metadata from the model catalogue (vlbias.models.catalogue); None where unknown
    architecture_family: str | None = None
    pretraining_dataset: str | None = None
    dataset_family: str | None = None
    dataset_size: int | None = None
    samples_seen: int | None = None
    fine_tuned: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["modalities"] = list(self.modalities)
        return d


@dataclass
class ImageEncoding:
    """Result of :meth:`Encoder.try_encode_images`: vectors of the images that decoded, and what was skipped."""

    vectors: np.ndarray  # (n_ok, d), rows in input order of the ok images
    ok: np.ndarray  # (n,) bool
    skipped: list[tuple[int, str, str]]  # (input index, image, reason)
    keys: list[str | None] = field(default_factory=list)  # content key (sha256[@crop]) per input, None if unread

    def full(self, fill: float = np.nan) -> np.ndarray:
        """(n, d) array with skipped rows filled with ``fill``."""
        out = np.full((len(self.ok), self.vectors.shape[1]), fill, dtype=np.float32)
        out[self.ok] = self.vectors
        return out


def l2_normalise(v: np.ndarray, what: str = "embedding") -> np.ndarray:
    v = np.asarray(v, dtype=np.float32)
    norms = np.linalg.norm(v.astype(np.float64), axis=1, keepdims=True)
    if np.any(norms == 0) or not np.all(np.isfinite(norms)):
        bad = int(np.flatnonzero((norms[:, 0] == 0) | ~np.isfinite(norms[:, 0]))[0])
        raise VlbiasError(f"{what} {bad} is zero or not finite and cannot be normalised; check the model or file")
    return (v / norms).astype(np.float32)


class Encoder(ABC):
    """Base class of all backends. Subclasses implement the ``_`` hooks below."""

    #: what the backend can encode; instances may narrow it
    modalities: tuple[str, ...] = ("text", "image")
    #: whether embeddings go through the on-disk cache (precomputed vectors do not)
    uses_cache: ClassVar[bool] = True
    default_batch_size: ClassVar[int] = 64

    def __init__(
        self,
        spec: ModelSpec | str,
        *,
        device: str = "auto",
        batch_size: int | None = None,
        precision: str = "fp32",
        num_workers: int | None = None,
        cache: EmbeddingCache | str | os.PathLike | bool | None = None,
        facts: Callable[[str], Mapping[str, Any]] | None = None,
    ):
        """``facts``: a spec's row of model facts (load_model passes the model catalogue's,
        :func:`vlbias.models.catalogue.model_facts`); without it :class:`ModelInfo`'s pretraining facts are None."""
        self.spec = spec if isinstance(spec, ModelSpec) else ModelSpec.parse(spec)
        self._facts = facts
        check_encoder_options(device, batch_size, precision, num_workers)
        self.requested_device = device
        self.batch_size = int(batch_size) if batch_size is not None else self.default_batch_size
        self.precision = precision
        self.num_workers = int(num_workers) if num_workers is not None else None
        if cache is False:
            self._cache_store = None
        elif isinstance(cache, EmbeddingCache):
            self._cache_store = cache
        else:
            self._cache_store = EmbeddingCache(cache if cache not in (None, True) else None)
        self._loaded = False
        self._model_cache: ModelCache | None = None
        self._parse()

    # ------------------------------------------------------------------ backend hooks
    def _parse(self) -> None:
        """Validate ``self.spec.target`` cheaply (no deep-learning imports); raise SpecError if bad."""

    @abstractmethod
    def _identity_payload(self) -> dict[str, Any]:
        """Everything that determines this model's vectors (weights, preprocessing, precision), cheaply."""

    @abstractmethod
    def _load(self) -> None:
        """Load weights and preprocessing onto ``self.device``."""

    def _info(self) -> dict[str, Any]:
        """Metadata fields for :class:`ModelInfo` (called after loading)."""
        return {}

    def _embed_texts(self, texts: list[str]) -> np.ndarray:
        raise ModalityError(f"{self.spec} cannot encode texts")

    def _image_preprocess(self) -> Callable:
        raise ModalityError(f"{self.spec} cannot encode images")

    def _embed_images(self, batch) -> np.ndarray:
        raise ModalityError(f"{self.spec} cannot encode images")

    def prefetch(self) -> None:
        """Make the weights local (download them) without loading them; safe to call from a thread."""

    # ------------------------------------------------------------------ identity, loading, metadata
    @cached_property
    def identity(self) -> str:
        payload = {"backend": self.spec.backend, "format": IDENTITY_FORMAT, **self._identity_payload()}
        return stable_hash(payload)

    @property
    def memo_root(self) -> Path | None:
        return self._cache_store.root if self._cache_store is not None else None

    @cached_property
    def device(self) -> str:
        if self.requested_device != "auto":
            if self.requested_device.startswith("cuda"):
                import torch

                if not torch.cuda.is_available():
                    raise VlbiasError("--device cuda was requested but no CUDA GPU is available; use --device cpu")
            return self.requested_device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"

    def load(self) -> Encoder:
        if not self._loaded:
            if self.precision != "fp32" and not self.device.startswith("cuda"):
                raise VlbiasError(f"--precision {self.precision} needs a GPU; use --precision fp32 on the CPU")
            self._load()
            self._loaded = True
        return self

    @property
    def is_loaded(self) -> bool:
        """Whether the weights are in memory (a fully cached run never loads them)."""
        return self._loaded

    def record(self) -> dict[str, Any]:
        """The model's metadata for a run record: the full :class:`ModelInfo` when the weights are loaded anyway,
        else spec, backend and identity, so recording provenance never loads weights a warm cache made unneeded."""
        if self._loaded:
            return self.info.to_dict()
        return {"spec": str(self.spec), "backend": self.spec.backend, "identity": self.identity}

    @property
    def info(self) -> ModelInfo:
        self.load()
        fields = {"architecture": None, "pretrained": None, **self._info(), **self._catalogue_facts()}
        return ModelInfo(
            spec=str(self.spec),
            backend=self.spec.backend,
            identity=self.identity,
            modalities=tuple(self.modalities),
            precision=self.precision,
            **fields,
        )

    def settings(self) -> dict[str, Any]:
        """The options this encoder was made with (device, batch size, precision, workers, cache): another model
        made with ``load_model(spec, **enc.settings())`` encodes alike and shares the cache."""
        return {
            "device": self.requested_device,
            "batch_size": self.batch_size,
            "precision": self.precision,
            "num_workers": self.num_workers,
            "cache": self._cache_store if self._cache_store is not None else False,
        }

    def random_copies(self, n: int) -> list[str]:
        """Specs of ``n`` copies of this model's architecture with seeded random weights, for an empirical null of
        what an untrained network of the same shape gives; [] where the backend cannot make them."""
        return []

    def facts(self) -> dict[str, Any]:
        """The model facts the encoder knows itself (:data:`ENCODER_FACTS`; unknown ones left out), never loading
        weights for them: a loaded model's own architecture, embedding size and parameter counts (kept in its
        embedding cache), else what its cache kept from an earlier load, else nothing. So a sweep served from the
        cache records the same facts as the run that loaded the model (open_clip architectures have theirs in the
        model catalogue, computed on the meta device)."""
        cache = self._cache()
        if cache is None:  # without a cache the facts would depend on whether this run loaded the model
            return {}
        if self._loaded:
            info = self.info
            facts = {k: getattr(info, k) for k in ENCODER_FACTS if getattr(info, k) is not None}
            if facts:
                cache.set_meta("facts", facts)
            return facts
        stored = cache.meta().get("facts")
        return dict(stored) if isinstance(stored, dict) else {}

    def _catalogue_facts(self) -> dict[str, Any]:
        """Pretraining-data metadata of this model from its facts (the model catalogue's shipped and user rows)."""
        row = self._facts(str(self.spec)) if self._facts is not None else {}
        return {k: row.get(k) for k in CATALOGUE_FACTS}

    def _require(self, modality: str) -> None:
        if modality not in self.modalities:
            other = "image" if modality == "text" else "text"
            raise ModalityError(
                f"{self.spec} is a {other}-only model and cannot encode {modality}s; choose a model with both "
                f"towers (e.g. openclip:ViT-B-32/laion2b_s34b_b79k)"
            )

    def _cache(self) -> ModelCache | None:
        if not self.uses_cache or self._cache_store is None:
            return None
        if self._model_cache is None:
            self._model_cache = self._cache_store.for_model(
                self.identity, {"spec": str(self.spec), "backend": self.spec.backend, "precision": self.precision}
            )
        return self._model_cache

    def missing_texts(self, texts: Sequence[str]) -> list[str]:
        """Texts this model cannot encode (only lookup backends such as ``vectors:`` have any)."""
        return []

    def missing_images(self, images: Sequence[ImageInput], root: str | os.PathLike | None = None) -> list[str]:
        return []

    # ------------------------------------------------------------------ texts
    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """(n, d) float32, L2-normalised, in input order."""
        self._require("text")
        texts = _check_texts(texts)
        unique = list(dict.fromkeys(texts))
        cache = self._cache()
        found = cache.get_many("text", unique) if cache else {}
        # batches of similar length: backends that pad to the batch's longest text then pad little
        todo = sorted((t for t in unique if t not in found), key=len)
        if todo:
            self.load()
            with progress(f"encoding texts ({self.spec})", len(todo), "texts") as bar:
                for i in range(0, len(todo), self.batch_size):
                    chunk = todo[i : i + self.batch_size]
                    vecs = self._encode_text_batch(chunk, cache)
                    found.update(zip(chunk, vecs))
                    bar.advance(len(chunk))
        return _stack([found[t] for t in texts])

    def _encode_text_batch(self, texts: list[str], cache: ModelCache | None) -> np.ndarray:
        """One batch's vectors, normalised and stored in the cache as they come (layer encoders fill every layer of
        their model from the one pass, :mod:`vlbias.models.layers`)."""
        vecs = l2_normalise(self._embed_texts(texts), "text embedding")
        if cache:
            cache.put_many("text", texts, vecs)
        return vecs

    # ------------------------------------------------------------------ images
    def encode_images(self, images: Sequence[ImageInput], *, root: str | os.PathLike | None = None) -> np.ndarray:
        """(n, d) float32, L2-normalised, in input order; raises ImageDecodeError on any bad image."""
        return self.try_encode_images(images, root=root, skip_bad=False).vectors

    def try_encode_images(
        self, images: Sequence[ImageInput], *, root: str | os.PathLike | None = None, skip_bad: bool = False
    ) -> ImageEncoding:
        """Encode images; with ``skip_bad`` undecodable or missing images are skipped and reported."""
        self._require("image")
        refs = [as_ref(x) for x in images]
        if not refs:
            raise StimulusError("no images to encode; the image list or folder is empty")
        keys = content_keys(refs)
        bad: dict[int, str] = {}
        for i, k in enumerate(keys):
            if isinstance(k, Exception):
                bad[i] = "file not found" if isinstance(k, FileNotFoundError) else f"cannot read: {k}"
        if bad and not skip_bad:
            _raise_bad(refs, bad)
        good = {i: k for i, k in enumerate(keys) if i not in bad}
        cache = self._cache()
        found = cache.get_many("image", list(good.values())) if cache else {}
        first_pos: dict[str, int] = {}
        for i, k in good.items():
            if k not in found:
                first_pos.setdefault(k, i)
        if first_pos:
            failed = self._compute_images(refs, first_pos, found, cache, skip_bad)
            for k, reason in failed.items():
                for i, kk in good.items():
                    if kk == k:
                        bad[i] = reason
        ok = np.array([i not in bad for i in range(len(refs))], dtype=bool)
        rows = [found[keys[i]] for i in range(len(refs)) if ok[i]]
        if not rows:
            raise ImageDecodeError(f"none of the {len(refs)} images could be decoded", [])
        skipped = [(i, describe(refs[i]), bad[i]) for i in sorted(bad)]
        content = [k if isinstance(k, str) else None for k in keys]
        return ImageEncoding(vectors=_stack(rows), ok=ok, skipped=skipped, keys=content)

    def _loader_workers(self, n: int) -> int:
        if self.num_workers is not None:
            return max(0, self.num_workers)
        if n <= self.batch_size:
            return 0  # worker start-up costs more than it saves
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        return min(8, max(1, cpus - 1)) if self.device.startswith("cuda") else min(4, max(1, cpus // 2))

    def _compute_images(
        self,
        refs: list,
        first_pos: dict[str, int],
        found: dict[str, np.ndarray],
        cache: ModelCache | None,
        skip_bad: bool,
    ) -> dict[str, str]:
        """Decode, preprocess and embed the cache misses; returns {key: reason} for images that failed."""
        from torch.utils.data import DataLoader

        self.load()
        todo_keys = list(first_pos)
        todo_refs = [refs[first_pos[k]] for k in todo_keys]
        dataset = ImageDataset(todo_refs, list(range(len(todo_keys))), self._image_preprocess())
        workers = self._loader_workers(len(todo_refs))
        loader = DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=False,
            num_workers=workers,
            collate_fn=collate,
            pin_memory=self.device.startswith("cuda"),
            prefetch_factor=4 if workers else None,
        )
        failed: dict[str, str] = {}
        with progress(f"encoding images ({self.spec})", len(todo_refs), "images") as bar:
            for positions, batch, bad in loader:
                if bad and not skip_bad:
                    _raise_bad(refs, {first_pos[todo_keys[p]]: reason for p, reason in bad})
                for p, reason in bad:
                    failed[todo_keys[p]] = reason
                if batch is not None:
                    batch_keys = [todo_keys[p] for p in positions]
                    vecs = self._encode_image_batch(batch, batch_keys, cache)
                    found.update(zip(batch_keys, vecs))
                bar.advance(len(positions) + len(bad))
        return failed

    def _encode_image_batch(self, batch, keys: list[str], cache: ModelCache | None) -> np.ndarray:
        """One batch of images' vectors (``keys``: their content keys), normalised and cached as they come."""
        vecs = l2_normalise(self._embed_images(batch), "image embedding")
        if cache:
            cache.put_many("image", keys, vecs)
        return vecs

    # ------------------------------------------------------------------ layers (vlbias.models.layers)
    def tower_depths(self) -> dict[str, int]:
        """Transformer blocks per tower (``{"image": 12, "text": 12}``), read cheaply (a config, not the weights)
        by backends that give layer features; others refuse in one line."""
        raise LayerError(
            f"{self.spec}: the {self.spec.backend} backend gives no layer features (they come from open_clip ViT "
            f"models, Hugging Face CLIP and SigLIP models and vectors: files with a layer column); run it without "
            f"--layer"
        )

    def _embed_text_layers(self, texts: list[str], blocks: dict[int, int], reading: str) -> dict[int, np.ndarray]:
        """Layer -> (n, d) vectors of ``texts`` after block ``blocks[layer]`` (1-based) of the text tower, read
        ``raw`` or ``lens``, all from one forward pass; not normalised."""
        raise LayerError(f"{self.spec} gives no layer features")

    def _embed_image_layers(self, batch, blocks: dict[int, int], reading: str) -> dict[int, np.ndarray]:
        raise LayerError(f"{self.spec} gives no layer features")


def _check_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise StimulusError("pass a list of texts, not a single string")
    texts = list(texts)
    if not texts:
        raise StimulusError("no texts to encode; the text list is empty")
    for t in texts:
        if not isinstance(t, str):
            raise StimulusError(f"texts must be strings; got {type(t).__name__} {t!r}")
    return texts


def _stack(rows: list[np.ndarray]) -> np.ndarray:
    dims = {r.shape[0] for r in rows}
    if len(dims) > 1:
        raise VlbiasError(f"embeddings of different dimensions {sorted(dims)}; clear the cache entry for this model")
    return np.stack(rows).astype(np.float32, copy=False)


def _raise_bad(refs: list, bad: dict[int, str]) -> None:
    first = min(bad)
    more = f" (and {plural(len(bad) - 1, 'other bad image')})" if len(bad) > 1 else ""
    raise ImageDecodeError(
        f"cannot decode image {describe(refs[first])}: {bad[first]}{more}; remove or replace it, or pass "
        f"--skip-bad-images to skip undecodable images",
        [(describe(refs[i]), r) for i, r in sorted(bad.items())],
    )
