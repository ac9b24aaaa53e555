"""Fitting a mitigation: the fit data, the split that keeps it out of evaluation, and :func:`fit_transform`.

The fit data of a method is one or both of:

- a prompt set (:mod:`vlbias.mitigation.prompts`), embedded by the model's text tower;
- labelled face images: a dataset's people split in two by person (:func:`split_people`), the images of the fit
  people embedded by the image tower. Every image of every fit person is recorded in the transform's ``holdout``
  and never reaches an audit run on the mitigated encoder (:class:`~vlbias.mitigation.base.Mitigated` skips them,
  with the reason), so the evaluation set is disjoint from the fit set by construction, by person.

:func:`fit_transform` records the fit set (prompt texts and their hash; the dataset's provenance, the attribute, the
split's seed and fraction, the number and hash of the fit people) and hashes it (``fit_hash``), so a transform says
what it was fitted on and two fits on the same data are recognisably the same.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vlbias.errors import ModalityError, StimulusError, VlbiasError
from vlbias.mitigation.base import Mitigated, Transform, load_transform
from vlbias.mitigation.prompts import PromptSet, load_prompt_set
from vlbias.mitigation.registry import MethodSpec, label, parse_mitigation
from vlbias.utils.io import stable_hash
from vlbias.utils.options import Options


def split_people(identities, fit_fraction: float, seed: int) -> tuple[set, set]:
    """The people (distinct identities, sorted as strings) in a seeded random order; the first
    ``round(fit_fraction * n)`` (at least 1, and at most n - 1 while ``fit_fraction`` < 1) fit, the rest evaluate.
    The two sets are disjoint and cover every person; the same identities, fraction and seed give the same split."""
    people = sorted({str(i) for i in identities})
    if not people:
        raise StimulusError("the fit dataset has no people (no identity column values); give labelled images")
    n = len(people)
    k = int(round(fit_fraction * n))
    k = min(max(k, 1), n if fit_fraction >= 1 else n - 1)
    if k < 1:
        raise StimulusError(f"the fit dataset has {n} person; a split by person needs at least two")
    order = np.random.default_rng(seed).permutation(n)
    fit = {people[i] for i in order[:k]}
    return fit, set(people) - fit


@dataclass
class LabelledImages:
    vectors: np.ndarray  # (n, d) raw (unmitigated) image embeddings of the fit people's images that decoded
    labels: np.ndarray  # (n,) the attribute's value per row
    people: np.ndarray  # (n,) the identity per row


@dataclass
class FitData:
    """What a method is fitted on, embedded by the (unmitigated) encoder as the method asks for it."""

    encoder: Any
    options: Options
    record: dict[str, Any] = field(default_factory=dict)  # the fit set as used: {"prompts": ..., "images": ...}
    holdout: set[str] = field(default_factory=set)
    _prompts: PromptSet | None = None

    def prompt_set(self) -> PromptSet:
        if self._prompts is None:
            self._prompts = load_prompt_set(self.options.prompts)
            self.record["prompts"] = self._prompts.record()
        return self._prompts

    def texts(self, texts: list[str]) -> np.ndarray:
        """Raw text embeddings (float64, rows L2-normalised) of texts of the prompt set."""
        self.encoder._require("text")
        return np.asarray(self.encoder.encode_texts(list(texts)), dtype=np.float64)

    def images(self) -> LabelledImages:
        """The fit people's images, embedded, with their attribute values (see the module docstring)."""
        opts = self.options
        if opts.dataset is None:
            raise VlbiasError(
                "this mitigation is fitted on labelled images: give dataset=NAME:PATH (e.g. fairface:DIR)"
            )
        if "image" not in self.encoder.modalities:
            raise ModalityError(f"{self.encoder.spec} has no image encoder; fit this mitigation on a vision model")
        dataset = opts.dataset.load()
        table = dataset.table
        if opts.attribute not in table.columns:
            raise StimulusError(
                f"{dataset.spec} has no column {opts.attribute!r}; give attribute= one of {', '.join(table.columns)}"
            )
        fit_people, eval_people = split_people(table["identity"], opts.fit_fraction, opts.seed)
        rows = table[table["identity"].astype(str).isin(fit_people)]
        enc = self.encoder.try_encode_images(rows["path"].tolist(), root=dataset.root, skip_bad=opts.skip_bad_images)
        self.holdout |= {k for k in enc.keys if k is not None}
        labels = rows[opts.attribute].to_numpy(dtype=object)[enc.ok]
        people = rows["identity"].astype(str).to_numpy()[enc.ok]
        vectors = np.asarray(enc.vectors, dtype=np.float64)
        known = np.array([v is not None and v == v and str(v) != "" for v in labels], dtype=bool)
        vectors, labels, people = vectors[known], labels[known].astype(str), people[known]
        if len(set(labels)) < 2:
            raise StimulusError(
                f"the fit people of {dataset.spec} show {len(set(labels))} value(s) of {opts.attribute}; a mitigation "
                f"needs at least two (raise fit_fraction or use a larger dataset)"
            )
        self.record["images"] = {
            "dataset": dataset.provenance(),
            "attribute": opts.attribute,
            "split": f"by person: seeded permutation (seed {opts.seed}) of the sorted identities, the first "
            f"{len(fit_people)} of {len(fit_people) + len(eval_people)} fit (fit_fraction {opts.fit_fraction})",
            "fit_people": len(fit_people),
            "evaluation_people": len(eval_people),
            "fit_people_sha256": stable_hash(sorted(fit_people), 64),
            "fit_images": int(len(vectors)),
            "held_out_images": len(self.holdout),
            "labels": {str(k): int(v) for k, v in zip(*np.unique(labels, return_counts=True))},
        }
        return LabelledImages(vectors, labels, people)


def fit_transform(encoder, mitigation: str | dict[str, Any] | tuple[MethodSpec, Options], **options: Any) -> Transform:
    """Fit a mitigation (``NAME[:KEY=VALUE,...]``, a mapping with ``method``, or a parsed pair; keyword options are
    merged over it) with an encoder's raw embeddings. The result is what :func:`mitigate` applies and
    :meth:`Transform.save` writes."""
    if isinstance(encoder, Mitigated):
        raise VlbiasError("fit a mitigation with the model itself, not with a mitigated encoder")
    if isinstance(mitigation, tuple):
        method, opts = mitigation
        if options:
            opts = opts.replace(**options)
    else:
        method, opts = parse_mitigation(mitigation)
        if options:
            opts = opts.replace(**options)
    data = FitData(encoder, opts)
    ops, details = method.fit(data, opts)
    fit = {k: data.record[k] for k in sorted(data.record)}
    hashed = {k: ({kk: vv for kk, vv in v.items() if kk != "texts"} if k == "prompts" else v) for k, v in fit.items()}
    return Transform(
        method=method.name,
        label=label(method, opts),
        options=opts.to_dict(),
        ops=ops,
        fit=fit,
        fit_hash=stable_hash({"method": method.name, "fit": hashed}, n=16),
        holdout=frozenset(data.holdout),
        model={"spec": str(encoder.spec), "identity": encoder.identity},
        details=details,
    )


def mitigate(encoder, mitigation: str | os.PathLike | Transform | dict[str, Any], **options: Any) -> Mitigated:
    """The encoder with a mitigation applied: a fitted :class:`Transform`, a saved ``mitigation.npz`` (a path ending
    in ``.npz`` or a folder holding one), or a method to fit now (``NAME[:KEY=VALUE,...]``; keyword options are
    merged over it). Every audit runs on the result unchanged; see :class:`Mitigated`."""
    if isinstance(mitigation, Transform):
        transform = mitigation
    elif isinstance(mitigation, os.PathLike) or (isinstance(mitigation, str) and _is_file(mitigation)):
        transform = load_transform(mitigation)
    else:
        transform = fit_transform(encoder, mitigation, **options)
    return Mitigated(encoder, transform)


def _is_file(text: str) -> bool:
    return text.endswith(".npz") or os.path.isdir(text)
