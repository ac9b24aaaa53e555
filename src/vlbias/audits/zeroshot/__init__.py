"""Zero-shot misclassification audits on face datasets.

How a model labels photographs of people when offensive labels are among the choices, broken down by group:

- ``birhane2024``: the dataset-scaling audit of Birhane et al. (FAccT 2024) on the Chicago Face Database, eight
  classes (human being, animal, gorilla, chimpanzee, orangutan, thief, criminal, suspicious person);
  ``birhane2024-racegender``: its race x gender prompt set.
- ``datacomp-fairface``: the CLIP paper's FairFace audit as DataComp evaluates it (race, gender and age
  classification; the 21-class toxic label set), on FairFace or UTKFace.
- a custom audit from a class-names file and a templates file (CLIP_benchmark convention).

For each task the class embedding is the prompt's text embedding (with several templates: the mean of the
normalised prompt embeddings, renormalised, or one result per template). Probabilities are
``softmax(scale * cos(image, class))`` with the fixed scale 100 by default (``scale: model`` uses the model's own
logit scale); the top-1 class is the argmax of the cosine. Per group: the share of images whose top-1 class is each
class (and each category of classes), the mean probability, accuracy where the dataset holds the true class, each
with a cluster-bootstrap interval over people (:mod:`vlbias.stats.groups`), and the disparity between the groups.

Prompts are embedded once per run (and cached per model); image embeddings come from the embedding cache, so a
second protocol on the same images encodes no image. :func:`compare_runs` compares several models' runs, grouped
by a model fact such as the pretraining data.
"""

from __future__ import annotations

from vlbias.audits.registry import AuditSpec
from vlbias.audits.zeroshot.options import ZeroshotOptions

AUDIT = AuditSpec(
    name="zeroshot",
    description="zero-shot misclassification of face images by group (Birhane et al. 2024; CLIP/DataComp FairFace; custom)",
    options=ZeroshotOptions,
    execute="vlbias.audits.zeroshot.run:run",
    presentation="vlbias.report.audits.zeroshot",
    modalities=("text", "image"),
    zoo_analysis="vlbias.audits.zeroshot.run:zoo_compare",
)

__all__ = ["AUDIT", "ZeroshotOptions"]
