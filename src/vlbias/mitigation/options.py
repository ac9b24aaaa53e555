"""Options shared by the mitigation methods: what they are fitted on (one declaration each; see
:mod:`vlbias.utils.options`). A method's options derive from one or both of these."""

from __future__ import annotations

from vlbias.datasets.spec import DatasetSpec
from vlbias.utils.options import Options, option


class PromptFit(Options):
    """Fitted on a prompt set (texts that differ only in the protected attribute, :mod:`vlbias.mitigation.prompts`)."""

    prompts: str = option(
        "gender",
        "prompt set the text tower is fitted on: a packaged set (gender) or a prompt-set YAML file",
        path="maybe",
        metavar="NAME|FILE",
    )


class ImageFit(Options):
    """Fitted on labelled face images: the people of a dataset, split by person into a fit part and an evaluation
    part (see :func:`vlbias.mitigation.fit.split_people`)."""

    dataset: DatasetSpec | None = option(None, "labelled face images to fit on, NAME:PATH", metavar="NAME:PATH")
    attribute: str = option("gender", "the dataset column of the protected attribute")
    fit_fraction: float = option(
        0.5,
        "share of the dataset's people whose images fit the transform (never evaluated; the rest are)",
        min=0,
        max=1,
        min_open=True,
    )
    seed: int = option(0, "seed of the split into fit and evaluation people (and of the method's randomness)", min=0)
    skip_bad_images: bool = option(False, "skip undecodable fit images instead of failing")
