"""Social perception of faces: how close a model puts a face to words of social perception, and what moves it.

Reproduces Hausladen, Knott, Camerer & Perona, "Social perception of faces in a vision-language model" (FAccT
2025) on CausalFace (synthetic faces that vary age, lighting, pose or smiling one at a time, each identity in six
race x gender versions), and runs the same probe on observational face datasets (CFD, FairFace, UTKFace, any
manifest) through :func:`vlbias.datasets.load_dataset`.

Scores. Each word is put into every template ("A photo of a {w} person.", ...); an image's similarity to a word is
the cosine similarity to each prompt, averaged over the templates. Delta = 100 (cos(image, word) -
cos(image, neutral)), the neutral similarity being the mean over the four templates without a word ("A photo of a
person.", "A person.", ...); the relative variant is 100 (cos - neutral) / neutral. A scale's score (warm, competent, agency+, agency-, beliefs+,
beliefs-, communion+, communion-) is the mean Delta over its words. All in percent ("Delta points").

Analyses (``analyses``):

- ``factors`` (CausalFace): for each dimension (lighting, pose, smiling, identity, age, gender, race), ``pairs``
  seeded random pairs of images that differ in that dimension only (age and smiling pairs by more than 1.1 in
  level), the absolute change of every scale score, dimensions ranked by the median change (per scale and pooled
  over all scales, as the study's figure; the pooled interval resamples pairs), and two-sided Mann-Whitney U tests
  between dimensions. ``pair_sampler: hausladen2025`` draws the pairs with the study's sampler.
- ``regression``: each scale score on the face attributes with identity effects; each attribute's LMG share of
  the explained variance with a cluster-bootstrap interval (see :func:`vlbias.stats.perception.variance_shares`),
  and every level's coefficient with a cluster-robust interval.
- ``curves``: mean score per race x gender group at each level of age and of smiling (CausalFace) or of age
  (observational data), quadratic fits with intervals, and the most extreme group, computed from the data.
- ``markedness``: per group, the share of images for which the neutral prompt is closer than the prompt naming
  the image's own race (or gender).
- ``skew``: for every word's prompts (and every scale), rank a group-balanced image set and report MaxSkew@k and
  NDKL against a uniform target, with their distribution under random rankings, and their means over the scales.
- ``group_means``: the mean raw cosine similarity per group, per scale and over the positive scales.
- ``level_correlations`` (CausalFace): Pearson r of the lighting, pose and smiling levels with Delta (the study's
  table S4), per list of scales, scale and word.

``races``, ``merge_races`` and ``min_age`` choose the people the analyses use; ``preset: hausladen2025`` is the
study's protocol (docs/deviations.md).

Tables: ``results`` (headline numbers, one row each), ``scores`` (one row per image: its metadata, the neutral
similarity, the eight scale scores and every word's Delta), and one or more tables per analysis.
"""

from __future__ import annotations

from vlbias.audits.perception.options import PerceptionOptions
from vlbias.audits.registry import AuditSpec

AUDIT = AuditSpec(
    name="perception",
    description=(
        "Social perception of faces (Hausladen et al., FAccT 2025): Delta scores of face images against warmth/"
        "competence and ABC words, what moves them (CausalFace), markedness and retrieval skew"
    ),
    options=PerceptionOptions,
    execute="vlbias.audits.perception.run:run",
    presentation="vlbias.report.audits.perception",
    modalities=("text", "image"),
)

__all__ = ["AUDIT", "PerceptionOptions"]
