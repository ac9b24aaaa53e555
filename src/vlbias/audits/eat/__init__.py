"""The EAT audit: embedding association tests of a model, one test at a time or as the standard battery.

Tests come from :mod:`vlbias.stimuli.eat_tests` (packaged WEAT/SEAT tests, YAML, SEAT JSON, WEFE word sets); the
standard battery (``vlbias/data/eat/battery.yaml``) reproduces the 26 unimodal and cross-modal EATs per model of
Ghate et al. (2025). Each (test, order) becomes one row of ``tables["results"]``; rows whose stimuli are missing
(iEAT images not fetched, instrument images that are not public, image rows of a text-only model) stay in the table
with ``status = "skipped"`` and the reason, and are listed in ``skipped`` too. ``tables["items"]`` holds the
association ``s(w, A, B)`` of every target item of every row.

Statistics are :func:`vlbias.stats.eat.eat`: Caliskan's effect size, the permutation p-value (exact within the
budget, else sampled) and a bootstrap interval. Embeddings come from the encoder (and its cache); every text and
image is encoded once per run however many rows use it.
"""

from __future__ import annotations

from vlbias.audits.eat.options import EATOptions
from vlbias.audits.registry import AuditSpec

AUDIT = AuditSpec(
    name="eat",
    description="Embedding association tests (WEAT, SEAT, iEAT, cross-modal); the 26-row battery of Ghate et al. 2025",
    options=EATOptions,
    execute="vlbias.audits.eat.run:run",
    presentation="vlbias.report.audits.eat",
    modalities=("text",),
)

__all__ = ["AUDIT", "EATOptions"]
