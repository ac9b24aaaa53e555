"""Retrieval audits: which groups a model's text queries retrieve, on datasets built for it.

- ``socialcounterfactuals``: intersectional retrieval skew on SocialCounterfactuals (Howard et al., CVPR 2024):
  per subject and attribute-type pair, the images of its counterfactual sets ranked by their similarity to a
  neutral query; MaxSkew@k (the paper's measure), MinSkew@k and NDKL over each attribute and their intersection,
  summarised over subjects, with intervals from resampling counterfactual sets.
- ``pata``: caption association on PATA (Seth et al., CVPR 2023): each scene's images against its positive and
  negative captions per protected attribute (race, gender, age); per group the association with the negative
  captions, and the skew of the images each caption retrieves.
- a protocol file of the same form (:mod:`vlbias.stimuli.retrieval`).

Texts are embedded once per run (and cached per model); image embeddings come from the embedding cache.
"""

from __future__ import annotations

from vlbias.audits.registry import AuditSpec
from vlbias.audits.retrieval.options import RetrievalOptions

AUDIT = AuditSpec(
    name="retrieval",
    description=(
        "retrieval skew and caption association by group (SocialCounterfactuals, Howard et al. 2024; PATA, Seth et "
        "al. 2023)"
    ),
    options=RetrievalOptions,
    execute="vlbias.audits.retrieval.run:run",
    presentation="vlbias.report.audits.retrieval",
    modalities=("text", "image"),
)

__all__ = ["AUDIT", "RetrievalOptions"]
