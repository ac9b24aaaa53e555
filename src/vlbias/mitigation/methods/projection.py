"""Projection of biased prompts (Chuang et al. 2023), calibrated or plain.

Chuang, C.-Y., Jampani, V., Li, Y., Torralba, A., & Jegelka, S. (2023). Debiasing vision-language models via biased
prompts. arXiv:2302.00070.

Fit: the attribute prompts of the prompt set ("a photo of a woman.", "a photo of a man.", ...) are embedded as the
rows of A; P0 = I - A^T (A A^T)^+ A projects onto the complement of their span (the paper's eq. 2). Calibration
(eq. 4, ``lam`` > 0) asks P to map prompts that differ only in the attribute ("a photo of a female doctor." / "a
photo of a male doctor.", the concept pairs S) to the same point while staying near P0:
min_P ||P - P0||^2 + lam / |S| sum_{(i, j) in S} ||P z_i - P z_j||^2, whose solution is P = P0 (I + lam M)^-1 with
M = 1/|S| sum (z_i - z_j)(z_i - z_j)^T. Apply: text embeddings v -> P v, renormalised (the paper debiases the text
classifier's or query's embedding; images are unchanged). ``lam = 0`` is the plain projection P0.

Guarantee (plain): every attribute prompt maps to 0 and anything orthogonal to their span is unchanged, so a
direction planted along their span is removed exactly. The calibrated P keeps P0's null space (P = P0 G^-1 with
P0 symmetric) only approximately. The default ``lam`` = 1000 is that of the authors' released code
(github.com/chingyaoc/debias_vl, discriminative/main.py: ``--lam`` 1000, P0 from a truncated SVD keeping every
component of the prompts, i.e. the same projection, ``P = P0 inv(lam M + I)``, text embeddings ``z P^T``
renormalised); the paper tunes it.
"""

from __future__ import annotations

import itertools

import numpy as np

from vlbias.errors import StimulusError
from vlbias.mitigation.base import Linear
from vlbias.mitigation.options import PromptFit
from vlbias.mitigation.registry import MethodSpec
from vlbias.utils.options import option


class ProjectionOptions(PromptFit):
    OWNER = "mitigation projection"

    lam: float = option(
        1000.0, "calibration weight lambda (0: the plain projection P0 of the attribute prompts)", min=0
    )


def span_complement(rows: np.ndarray) -> np.ndarray:
    """I - A^T (A A^T)^+ A: the orthogonal projection onto the complement of the span of the rows of A."""
    return np.eye(rows.shape[1]) - rows.T @ np.linalg.pinv(rows @ rows.T) @ rows


def calibrated(p0: np.ndarray, pairs: list[tuple[np.ndarray, np.ndarray]], lam: float) -> np.ndarray:
    """P0 (I + lam M)^-1, M the mean outer product of the pairs' differences (Chuang et al. 2023, eq. 4)."""
    d = p0.shape[0]
    if lam == 0 or not pairs:
        return p0
    diffs = np.stack([a - b for a, b in pairs])
    m = diffs.T @ diffs / len(pairs)
    return p0 @ np.linalg.inv(np.eye(d) + lam * m)


def fit(data, opts: ProjectionOptions):
    prompts = data.prompt_set()
    attribute = [t for t, _ in prompts.attribute_prompts()]
    p0 = span_complement(data.texts(attribute))
    pairs = []
    if opts.lam > 0:
        concept = prompts.concept_pairs()
        if not concept:
            raise StimulusError(
                f"prompt set {prompts.name} has no concepts; calibration (lam > 0) needs concept pairs, or use lam=0"
            )
        flat = [t for group, _ in concept for t in group]
        vecs = data.texts(flat).reshape(len(concept), len(prompts.groups), -1)
        pairs = [(row[i], row[j]) for row in vecs for i, j in itertools.combinations(range(len(row)), 2)]
    matrix = calibrated(p0, pairs, opts.lam)
    return {"text": Linear(matrix)}, {"attribute_prompts": len(attribute), "calibration_pairs": len(pairs)}


METHOD = MethodSpec(
    name="projection",
    description="Chuang et al. 2023: project the span of biased prompts out of text embeddings, calibrated (lam)",
    citation="Chuang et al. (2023), Debiasing vision-language models via biased prompts, arXiv:2302.00070",
    options=ProjectionOptions,
    fit=fit,
)
