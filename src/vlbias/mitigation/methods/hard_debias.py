"""Hard debiasing (Bolukbasi et al. 2016), the reference point: neutralisation along a bias subspace found by PCA.

Bolukbasi, T., Chang, K.-W., Zou, J., Saligrama, V., & Kalai, A. (2016). Man is to computer programmer as woman is to
homemaker? Debiasing word embeddings. NeurIPS 2016.

Fit: each definitional pair of the prompt set (one prompt per group, the same words otherwise: "a photo of a
woman." / "a photo of a man.") is centred on its own mean; the top ``components`` principal directions of the
stacked centred embeddings span the bias subspace B (the paper's step 1, with k = 1 by default as in the paper).
Apply: v -> v - B^T B v, then renormalise (the paper's "neutralize"; its "equalize" step, for equality sets, is not
applied: an audit's stimuli are not equality sets). Guarantee: the result has no component in the subspace, so a
direction planted along B is removed exactly, and a vector orthogonal to B is unchanged.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from vlbias.errors import StimulusError
from vlbias.mitigation.base import Linear
from vlbias.mitigation.options import PromptFit
from vlbias.mitigation.registry import MethodSpec
from vlbias.utils.options import option


class HardDebiasOptions(PromptFit):
    OWNER = "mitigation hard_debias"

    components: int = option(1, "dimensions of the bias subspace (principal components of the centred pairs)", min=1)
    towers: Literal["text", "both"] = option("text", "towers to neutralise: text (the paper's words) or both")


def bias_subspace(groups: np.ndarray, k: int) -> np.ndarray:
    """(k, d) orthonormal rows: the top k principal directions of the pairs (n, g, d) each centred on its mean."""
    centred = (groups - groups.mean(axis=1, keepdims=True)).reshape(-1, groups.shape[-1])
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    if k > int((s > 1e-12 * max(1.0, s[0] if len(s) else 0)).sum()):
        raise StimulusError(f"the prompt set's pairs span fewer than {k} directions; ask for fewer components")
    return vt[:k]


def neutraliser(basis: np.ndarray) -> np.ndarray:
    """I - B^T B for orthonormal rows B: the projection onto the complement of their span."""
    return np.eye(basis.shape[1]) - basis.T @ basis


def fit(data, opts: HardDebiasOptions):
    prompts = data.prompt_set()
    pairs = prompts.definitional_pairs()
    vectors = data.texts([t for pair in pairs for t in pair]).reshape(len(pairs), len(prompts.groups), -1)
    basis = bias_subspace(vectors, opts.components)
    op = Linear(neutraliser(basis))
    towers = ("text", "image") if opts.towers == "both" else ("text",)
    return {t: op for t in towers}, {"pairs": len(pairs), "components": opts.components}


METHOD = MethodSpec(
    name="hard_debias",
    description="Bolukbasi et al. 2016: neutralise along the PCA direction(s) of definitional pairs (the baseline)",
    citation="Bolukbasi et al. (2016), Man is to computer programmer as woman is to homemaker? NeurIPS",
    options=HardDebiasOptions,
    fit=fit,
)
