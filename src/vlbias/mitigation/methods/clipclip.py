"""CLIP-clip (Wang, Liu & Wang 2021): drop the embedding dimensions that carry the most information about the
protected attribute.

Wang, J., Liu, Y., & Wang, X. E. (2021). Are gender-neutral queries really gender-neutral? Mitigating gender bias in
image search. EMNLP 2021.

Fit: on the image embeddings of the fit people's labelled images, the mutual information between each dimension and
the attribute is estimated (scikit-learn's ``mutual_info_classif``, the k-nearest-neighbour estimator of Ross 2014,
seeded); the ``m`` dimensions with the highest MI are clipped. Apply: those dimensions are set to 0 in both towers
(image and text live in one space; the paper clips them for the similarity of query and image), then renormalised.
The paper reports the trade-off over m; vlbias's default m = 100 of CLIP's 512 is one point on it.
Guarantee: the clipped dimensions are exactly 0 after the transform, the others only rescaled by renormalisation.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from vlbias.errors import StimulusError
from vlbias.mitigation.base import Impute
from vlbias.mitigation.options import ImageFit
from vlbias.mitigation.registry import MethodSpec
from vlbias.utils.options import option


class ClipClipOptions(ImageFit):
    OWNER = "mitigation clipclip"

    m: int = option(100, "dimensions to clip (those with the highest mutual information with the attribute)", min=1)
    towers: Literal["both", "image", "text"] = option("both", "towers the dimensions are clipped in")


def mutual_information(vectors: np.ndarray, labels: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.feature_selection import mutual_info_classif

    return mutual_info_classif(vectors, labels, random_state=seed)


def fit(data, opts: ClipClipOptions):
    images = data.images()
    d = images.vectors.shape[1]
    if opts.m >= d:
        raise StimulusError(f"m={opts.m} would clip every one of the {d} dimensions; choose m below {d}")
    mi = mutual_information(images.vectors, images.labels, opts.seed)
    index = np.sort(np.argsort(-mi, kind="stable")[: opts.m])
    op = Impute(index.astype(np.int64), np.zeros(opts.m), d)
    towers = ("image", "text") if opts.towers == "both" else (opts.towers,)
    details = {"clipped": index.tolist(), "mi_clipped_mean": float(mi[index].mean()), "mi_kept_mean":
               float(np.delete(mi, index).mean())}  # fmt: skip
    return {t: op for t in towers}, details


METHOD = MethodSpec(
    name="clipclip",
    description="Wang et al. 2021: zero the m dimensions of highest mutual information with the attribute",
    citation="Wang, Liu & Wang (2021), Are gender-neutral queries really gender-neutral? EMNLP",
    options=ClipClipOptions,
    fit=fit,
)
