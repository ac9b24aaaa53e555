"""Mitigation A/B: post-hoc debiasing as encoder transforms, measured by every audit.

A mitigation method (:mod:`vlbias.mitigation.methods`, found by :mod:`vlbias.mitigation.registry`) is fitted on a
fit set with the model's raw embeddings (:func:`fit_transform`) and leaves a :class:`Transform`: per tower one
operation on embeddings. :func:`mitigate` wraps any encoder in it (:class:`Mitigated`): every audit runs on the
result unchanged, the embedding cache keeps raw embeddings, and the fit set's images never reach an audit. Run
records and every row carry the mitigation (``mitigation`` column; ``record.json``'s ``mitigation``).

    from vlbias import load_model, mitigate
    enc = mitigate(load_model("openclip:ViT-B-32/laion2b_s34b_b79k"), "projection:lam=500")
"""

from __future__ import annotations

from vlbias.mitigation.base import NONE, Mitigated, Transform, load_transform
from vlbias.mitigation.fit import fit_transform, mitigate, split_people
from vlbias.mitigation.registry import get_method, method_names, parse_mitigation

__all__ = [
    "NONE",
    "Mitigated",
    "Transform",
    "fit_transform",
    "get_method",
    "load_transform",
    "method_names",
    "mitigate",
    "parse_mitigation",
    "split_people",
]
