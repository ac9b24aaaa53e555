"""SFID, selective feature imputation (Jung et al. 2024): replace the features a classifier finds most telling of
the attribute by their mean over ambiguous samples, in either tower.

Jung, H., Jang, T., & Wang, X. (2024). A unified debiasing approach for vision-language models across modalities and
tasks. NeurIPS 2024 (SFID).

Fit, per tower: the labelled samples (image tower: the fit people's images with their attribute; text tower: the
prompt set's concept prompts, each labelled with its group) are split in half (images by person, half of the people
of each attribute value; prompts by concept); a random forest (``trees`` trees, seeded) trained on one half ranks the features by impurity importance and
the top ``k`` are chosen; the samples of the other half that the forest classifies with low confidence (largest class
probability below ``threshold``) give the imputation values, the mean of each chosen feature over them (over the whole
half if none is below the threshold; the transform records which). Apply: the chosen features are replaced by those
values, then the vector is renormalised. vlbias's defaults (k = 50, threshold 0.7, 100 trees) follow our reading of
the paper; every transform records them.
Guarantee: the chosen features hold exactly the imputation values before renormalisation; the others are unchanged.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from vlbias.errors import StimulusError
from vlbias.mitigation.base import Impute
from vlbias.mitigation.options import ImageFit, PromptFit
from vlbias.mitigation.registry import MethodSpec
from vlbias.utils.options import option


class SFIDOptions(PromptFit, ImageFit):
    OWNER = "mitigation sfid"

    k: int = option(50, "features to impute (the random forest's most important)", min=1)
    threshold: float = option(0.7, "low confidence: the forest's largest class probability below this", min=0, max=1)
    trees: int = option(100, "trees of the random forest", min=1)
    towers: Literal["both", "image", "text"] = option(
        "both", "towers to debias: image (fitted on the dataset), text (on the prompt set), or both"
    )


def impute(vectors: np.ndarray, labels: np.ndarray, halves: np.ndarray, k: int, threshold: float, trees: int,
           seed: int) -> tuple[Impute, dict]:  # fmt: skip
    """The imputation of one tower from labelled samples, ``halves`` (bool) marking the forest's training half."""
    from sklearn.ensemble import RandomForestClassifier

    d = vectors.shape[1]
    if k >= d:
        raise StimulusError(f"k={k} would impute every one of the {d} features; choose k below {d}")
    train, held = vectors[halves], vectors[~halves]
    if len(set(labels[halves])) < 2 or not len(held):
        raise StimulusError("SFID needs both halves of the fit samples, the training half with two attribute values")
    forest = RandomForestClassifier(n_estimators=trees, random_state=seed, n_jobs=1).fit(train, labels[halves])
    index = np.sort(np.argsort(-forest.feature_importances_, kind="stable")[:k])
    confidence = forest.predict_proba(held).max(axis=1)
    low = confidence < threshold
    source = held[low] if low.any() else held
    values = source[:, index].mean(axis=0)
    return Impute(index.astype(np.int64), values, d), {
        "features": index.tolist(), "low_confidence_samples": int(low.sum()), "held_samples": int(len(held)),
        "imputed_from": "low-confidence samples" if low.any() else "all held samples (none below the threshold)",
    }  # fmt: skip


def _person_halves(people: np.ndarray, labels: np.ndarray, seed: int) -> np.ndarray:
    """Rows of the forest's training half: per attribute value, a seeded half of the people showing it (at least
    one), so both halves hold every value wherever a value has two people."""
    rng = np.random.default_rng(seed)
    train: set[str] = set()
    for value in sorted(set(labels)):
        persons = sorted(set(people[labels == value]) - train)
        order = rng.permutation(len(persons))
        train |= {persons[i] for i in order[: max(1, len(persons) // 2)]}
    return np.array([p in train for p in people])


def _text_samples(data) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    prompts = data.prompt_set()
    concept = prompts.concept_pairs()
    if not concept:
        raise StimulusError(
            f"prompt set {prompts.name} has no concepts; SFID's text tower is fitted on concept prompts"
        )
    texts = [t for group, _ in concept for t in group]
    labels = np.array([g for _ in concept for g in prompts.groups])
    concepts = sorted({c for _, c in concept})
    train = set(concepts[::2])
    halves = np.array([c in train for _, c in concept for _ in prompts.groups])
    return data.texts(texts), labels, halves


def fit(data, opts: SFIDOptions):
    ops, details = {}, {}
    if opts.towers in ("both", "image"):
        images = data.images()
        halves = _person_halves(images.people, images.labels, opts.seed)
        ops["image"], details["image"] = impute(images.vectors, images.labels, halves, opts.k, opts.threshold,
                                                opts.trees, opts.seed)  # fmt: skip
    if opts.towers in ("both", "text"):
        vectors, labels, halves = _text_samples(data)
        ops["text"], details["text"] = impute(vectors, labels, halves, opts.k, opts.threshold, opts.trees, opts.seed)
    return ops, details


METHOD = MethodSpec(
    name="sfid",
    description="Jung et al. 2024: impute the random forest's most attribute-telling features with ambiguous means",
    citation="Jung, Jang & Wang (2024), A unified debiasing approach for vision-language models (SFID)",
    options=SFIDOptions,
    fit=fit,
)
