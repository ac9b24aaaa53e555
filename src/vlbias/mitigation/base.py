"""Fitted transforms and the encoder that applies one.

A :class:`Transform` is what fitting a mitigation method leaves: per tower (``text``, ``image``) one operation on
L2-normalised embeddings, followed by renormalisation:

- :class:`Linear`: ``v -> v M^T`` (the projections of Chuang et al. 2023 and the hard-debias neutralisation of
  Bolukbasi et al. 2016);
- :class:`Impute`: ``v[:, index] = values`` (SFID's imputation of the important features, Jung et al. 2024; CLIP-clip's
  removal of dimensions, Wang et al. 2021, with values 0).

Applying a transform needs nothing but these arrays: a saved transform (``mitigation.npz``) is applied by any vlbias
without the method's code or its fit data, and gives the same vectors bit for bit. Beside the arrays it records what
it was fitted on (the fit set: prompt texts, labelled images with their people; ``fit``), the hash of that fit set
(``fit_hash``), the model it was fitted with, and the images it holds out of evaluation (``holdout``: every image of
every person whose images were used for fitting, by content key).

:class:`Mitigated` wraps any :class:`~vlbias.models.base.Encoder`: embeddings come from the model and its cache (the
cache keeps the raw embeddings; nothing mitigated is ever cached), the transform is applied after, and the images of
the fit set never reach an audit: :meth:`Mitigated.try_encode_images` leaves them out and lists them as skipped, so
fit set and evaluation set are disjoint by construction, by person. Texts cannot be held out the same way (an audit's
prompts are its stimuli); evaluation texts that are also fit texts are counted (``text_overlap`` in the run record)
and warned about.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from vlbias.errors import StimulusError, VlbiasError, VlbiasWarning, plural
from vlbias.models.base import ImageEncoding, l2_normalise
from vlbias.models.images import as_ref, describe
from vlbias.utils.io import atomic_path, stable_hash
from vlbias.utils.threads import one_blas_thread

TOWERS = ("text", "image")
FILE_FORMAT = 1
#: the method name of a transform that changes no vector and only holds the fit set's images out (the "before" run)
NONE = "none"


@dataclass(frozen=True)
class Linear:
    """``v -> v M^T`` (M: d x d; kept in float64, applied in float32 on one BLAS thread: the embeddings' own precision,
    and a few milliseconds for a thousand 512-d vectors where several busy threads took ten times that)."""

    matrix: np.ndarray

    @cached_property
    def _applied(self) -> np.ndarray:
        return np.ascontiguousarray(self.matrix.T, dtype=np.float32)

    def __call__(self, v: np.ndarray) -> np.ndarray:
        with one_blas_thread():
            return v @ self._applied

    def arrays(self) -> dict[str, np.ndarray]:
        return {"matrix": self.matrix}

    @property
    def dim(self) -> int:
        return int(self.matrix.shape[1])


@dataclass(frozen=True)
class Impute:
    """``v[:, index] = values``: features replaced by fixed values (0 removes them)."""

    index: np.ndarray  # (k,) int
    values: np.ndarray  # (k,) float
    dim: int

    def __call__(self, v: np.ndarray) -> np.ndarray:
        out = v.copy()
        out[:, self.index] = self.values.astype(v.dtype)
        return out

    def arrays(self) -> dict[str, np.ndarray]:
        return {"index": self.index, "values": self.values, "dim": np.array(self.dim)}


_OPS = {"Linear": Linear, "Impute": Impute}


def _op_from(kind: str, arrays: dict[str, np.ndarray]):
    if kind == "Linear":
        return Linear(np.asarray(arrays["matrix"], dtype=np.float64))
    if kind == "Impute":
        return Impute(np.asarray(arrays["index"], dtype=np.int64), np.asarray(arrays["values"], np.float64),
                      int(arrays["dim"]))  # fmt: skip
    raise VlbiasError(f"unknown transform operation {kind!r}; the file was written by a newer vlbias")


@dataclass(frozen=True)
class Transform:
    """A fitted mitigation (see the module docstring)."""

    method: str
    label: str  # NAME[:KEY=VALUE,...]: the method and the options that differ from its defaults
    options: dict[str, Any]  # every option of the method, canonical
    ops: dict[str, Linear | Impute]  # tower -> operation
    fit: dict[str, Any]  # the fit set: {"prompts": {...}, "images": {...}} as each part was used
    fit_hash: str  # hash of the fit set (texts, image keys with their labels, the split)
    holdout: frozenset[str] = frozenset()  # image keys (content sha256, or a vectors: file's key) never evaluated
    model: dict[str, Any] = field(default_factory=dict)  # spec and identity of the model it was fitted with
    details: dict[str, Any] = field(default_factory=dict)  # what the fit found (dimensions, directions, counts)

    @property
    def towers(self) -> tuple[str, ...]:
        return tuple(t for t in TOWERS if t in self.ops)

    @cached_property
    def transform_hash(self) -> str:
        """Hash of the operations themselves (two fits that give the same arrays give the same hash)."""
        payload = {t: {k: np.ascontiguousarray(a).tobytes().hex() for k, a in op.arrays().items()}
                   for t, op in sorted(self.ops.items())}  # fmt: skip
        return stable_hash(payload, n=16)

    def apply(self, vectors: np.ndarray, tower: str) -> np.ndarray:
        """Debiased, L2-normalised float32 vectors of one tower (unchanged if the transform leaves that tower),
        computed in float32 like the embeddings themselves."""
        op = self.ops.get(tower)
        if op is None:
            return vectors
        v = np.asarray(vectors, dtype=np.float32)
        if v.shape[1] != op.dim:
            raise VlbiasError(
                f"mitigation {self.label} was fitted on {op.dim}-dimensional {tower} embeddings, these have "
                f"{v.shape[1]}; fit it with this model"
            )
        return l2_normalise(op(v), f"debiased {tower} embedding")

    def record(self) -> dict[str, Any]:
        """What a run record keeps of the mitigation (the arrays are in the saved transform)."""
        return {
            "method": self.method,
            "label": self.label,
            "options": self.options,
            "fit_hash": self.fit_hash,
            "transform_hash": self.transform_hash,
            "towers": list(self.towers),
            # the fit set as recorded, less its list of texts (in the saved transform; here their hash and count)
            "fit": {
                k: ({kk: vv for kk, vv in v.items() if kk != "texts"} if isinstance(v, dict) else v)
                for k, v in self.fit.items()
            },  # fmt: skip
            "fitted_with": self.model,
            "held_out_people_images": len(self.holdout),
        }

    def holdout_only(self) -> Transform:
        """The same fit set held out of evaluation, no vector changed: the "before" of a paired comparison."""
        return replace(self, method=NONE, label=f"{NONE} (holding out the fit set of {self.label})", ops={},
                       details={})  # fmt: skip

    # ------------------------------------------------------------------ files
    def save(self, path: str | os.PathLike) -> Path:
        """Write the transform as one ``.npz`` file (arrays plus a JSON header; read without pickle), atomically."""
        path = Path(path)
        header = {
            "vlbias_mitigation": FILE_FORMAT,
            "method": self.method,
            "label": self.label,
            "options": self.options,
            "fit": self.fit,
            "fit_hash": self.fit_hash,
            "model": self.model,
            "details": self.details,
            "ops": {t: type(op).__name__ for t, op in self.ops.items()},
        }
        arrays = {"header": np.array(json.dumps(header, default=str, sort_keys=True))}
        arrays["holdout"] = np.array(sorted(self.holdout), dtype=str)
        for tower, op in self.ops.items():
            for k, a in op.arrays().items():
                arrays[f"op.{tower}.{k}"] = a
        with atomic_path(path, suffix=".npz") as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)
        return path


def load_transform(path: str | os.PathLike) -> Transform:
    """A transform saved by :meth:`Transform.save` (the ``mitigation.npz`` of an audit output folder or sweep part)."""
    path = Path(path)
    if path.is_dir():
        path = path / "mitigation.npz"
    if not path.is_file():
        raise VlbiasError(f"mitigation file not found: {path}; give a mitigation.npz that vlbias wrote")
    try:
        with np.load(path, allow_pickle=False) as z:
            header = json.loads(str(z["header"]))
            if header.get("vlbias_mitigation") != FILE_FORMAT:
                raise ValueError("not a vlbias mitigation file")
            ops = {}
            for tower, kind in header["ops"].items():
                prefix = f"op.{tower}."
                ops[tower] = _op_from(kind, {k[len(prefix) :]: z[k] for k in z.files if k.startswith(prefix)})
            holdout = frozenset(str(k) for k in z["holdout"])
    except (OSError, ValueError, KeyError) as e:
        raise VlbiasError(
            f"{path} is not a vlbias mitigation file ({e}); give a mitigation.npz that vlbias wrote"
        ) from None
    return Transform(
        method=header["method"],
        label=header["label"],
        options=header["options"],
        ops=ops,
        fit=header["fit"],
        fit_hash=header["fit_hash"],
        holdout=holdout,
        model=header.get("model") or {},
        details=header.get("details") or {},
    )


class Mitigated:
    """An encoder whose embeddings pass through a fitted transform (see the module docstring). Everything an audit
    uses of an encoder is here; anything else is the wrapped encoder's."""

    def __init__(self, encoder, transform: Transform):
        if isinstance(encoder, Mitigated):
            raise VlbiasError("this encoder is mitigated already; apply one mitigation at a time")
        fitted = transform.model.get("identity")
        if fitted and fitted != encoder.identity:
            raise VlbiasError(
                f"mitigation {transform.label} was fitted with {transform.model.get('spec')} (identity {fitted}), not "
                f"{encoder.spec} (identity {encoder.identity}); fit it with this model"
            )
        self.encoder = encoder
        self.transform = transform
        self.held_out: set[str] = set()  # the holdout keys an audit asked for (and did not get)
        self.text_overlap: set[str] = set()  # evaluation texts that are fit texts
        self._fit_texts = frozenset(transform.fit.get("prompts", {}).get("texts", ()))

    # ------------------------------------------------------------------ what audits use
    @property
    def spec(self):
        return self.encoder.spec

    @property
    def identity(self) -> str:
        """The model's identity: a mitigation changes no weights (rows carry the mitigation beside the model)."""
        return self.encoder.identity

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(self.encoder.modalities)

    def record(self) -> dict[str, Any]:
        return self.encoder.record()

    @property
    def info(self):
        return self.encoder.info

    def _require(self, modality: str) -> None:
        self.encoder._require(modality)

    def missing_texts(self, texts) -> list[str]:
        return self.encoder.missing_texts(texts)

    def missing_images(self, images, root=None) -> list[str]:
        return self.encoder.missing_images(images, root=root)

    @property
    def mitigation_record(self) -> dict[str, Any]:
        """The transform's record plus what this encoder saw: fit images held out of the run, evaluation texts that
        were fit texts."""
        return {
            **self.transform.record(),
            "held_out_images": len(self.held_out),
            "text_overlap": len(self.text_overlap),
        }

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        vectors = self.encoder.encode_texts(texts)
        overlap = self._fit_texts.intersection(texts) - self.text_overlap
        if overlap:
            self.text_overlap |= overlap
            example = sorted(overlap)[0]
            warnings.warn(
                f"{plural(len(overlap), 'evaluated text')} (e.g. {example!r}) {'is' if len(overlap) == 1 else 'are'} "
                f"also in the fit set of mitigation {self.transform.label}; its effect on them is not a held-out "
                f"measurement (run records count them as text_overlap)",
                VlbiasWarning,
                stacklevel=2,
            )
        return self.transform.apply(vectors, "text")

    def try_encode_images(self, images, *, root=None, skip_bad: bool = False) -> ImageEncoding:
        """The wrapped encoder's images, less those of the fit set (skipped, with the reason), transformed."""
        enc = self.encoder.try_encode_images(images, root=root, skip_bad=skip_bad)
        keys = list(enc.keys) or [None] * len(enc.ok)
        held = [i for i, k in enumerate(keys) if enc.ok[i] and k is not None and k in self.transform.holdout]
        vectors = enc.vectors
        ok = enc.ok.copy()
        skipped = list(enc.skipped)
        if held:
            rows = np.cumsum(ok) - 1  # each ok input's row in vectors
            ok[held] = False
            keep = np.ones(len(vectors), dtype=bool)
            keep[rows[held]] = False
            vectors = vectors[keep]
            refs = list(images)
            why = f"held out: a fit-set person's image (mitigation {self.transform.label})"
            skipped = sorted(skipped + [(i, describe(as_ref(refs[i])), why) for i in held])
            self.held_out |= {keys[i] for i in held}
            if not ok.any():
                raise StimulusError(
                    f"every image given is in the fit set of mitigation {self.transform.label}; evaluate on other "
                    f"people (fit_fraction below 1 leaves some) or on another dataset"
                )
        return ImageEncoding(self.transform.apply(vectors, "image"), ok, skipped, keys)

    def encode_images(self, images, *, root=None) -> np.ndarray:
        enc = self.try_encode_images(images, root=root, skip_bad=False)
        if not enc.ok.all():
            raise StimulusError(
                f"image {enc.skipped[0][1]} is in the fit set of mitigation {self.transform.label}; audits leave such "
                f"images out (try_encode_images), encode_images refuses them"
            )
        return enc.vectors

    # ------------------------------------------------------------------ everything else is the model's
    def __getattr__(self, name: str):
        if name in ("encoder", "transform"):  # not set yet (during construction or unpickling)
            raise AttributeError(name)
        if name.startswith(("encode", "try_encode", "_embed", "_compute")):  # would hand out untransformed vectors
            raise AttributeError(
                f"a mitigated encoder has no {name}; embeddings come from encode_texts/try_encode_images"
            )
        return getattr(self.encoder, name)

    def __repr__(self) -> str:
        return f"Mitigated({self.encoder.spec}, {self.transform.label})"
