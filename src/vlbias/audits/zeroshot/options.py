"""The options of the zero-shot audit: one declaration for Python, sweep configs and the ``vlbias zeroshot`` flags."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from vlbias.datasets.spec import DatasetSpec, fold_dataset_options
from vlbias.utils.options import Options, option, preset_option


class ZeroshotOptions(Options):
    """The options of the zero-shot audit (one declaration: Python, sweep configs and ``vlbias zeroshot`` flags)."""

    OWNER = "zeroshot"
    PRESETS = "zeroshot"
    DEPRECATED = {"n_boot": "n_bootstrap", "ci": "confidence"}

    preset: str | None = preset_option()
    dataset: DatasetSpec | None = option(
        None, "face dataset NAME:PATH (cfd:, fairface:, utkface:, facet:, manifest:)", short="-d", metavar="NAME:PATH"
    )
    dataset_options: Mapping[str, Any] = option(
        {}, "the dataset loader's options, e.g. expressions=N,HC (cfd) or split=val margin=1.25 (fairface)",
        flag="--dataset-option", metavar="KEY=VALUE",
    )
    protocol: str = option(
        "birhane2024", "birhane2024, birhane2024-racegender, datacomp-fairface, facet, or a protocol .yaml file",
        short="-p", path="maybe",
    )
    classes: str | None = option(None, "class-names file (CLIP_benchmark convention): a custom audit", path=True,
                                 metavar="FILE")
    templates: str | None = option(None, "templates file with {c}, one per line or JSON (with classes)", path=True,
                                   metavar="FILE")
    group_by: tuple[tuple[str, ...], ...] | None = option(
        None, "grouping columns, e.g. race,gender; several groupings with ; (race;race,gender) [default: the "
        "protocol's]", metavar="COLS",
    )
    template_mode: Literal["ensemble", "each"] = option(
        "ensemble", "ensemble: average the prompt embeddings of a class; each: one result per template"
    )
    article: Literal["grammatical", "as-written"] | None = option(
        None, "a/an before the class name: grammatical, or as-written in the template [default: the protocol's]"
    )
    scale: float | Literal["model"] = option(
        100.0, "logit scale of the softmax: a number (the published protocols use 100) or model", min=0,
        min_open=True,
    )
    category_probability: Literal["sum", "mean"] = option(
        "sum",
        "how a category of classes (criminal or suspicious person) pools its classes' probabilities: sum (the "
        "probability of any of them) or mean (their average, Birhane et al.'s pooling); its top-1 share is always "
        "the share whose top-1 class is any of them",
    )
    n_bootstrap: int = option(2000, "bootstrap replicates over people for the intervals (0: none)", min=0,
                              old_flags=("--bootstrap",))
    confidence: float = option(0.95, "level of the intervals", min=0, max=1, min_open=True, max_open=True,
                               old_flags=("--ci",))
    seed: int = option(0, "seed of the bootstrap", min=0)
    skip_bad_images: bool = option(False, "skip undecodable images (or images a vectors: file lacks) instead of failing")

    @classmethod
    def _finish(cls, values, ctx):
        values = fold_dataset_options(cls, values, ctx)
        if values["templates"] and not values["classes"]:
            raise ctx.error(
                cls.field("templates"), values["templates"], "needs classes (a custom audit); the packaged protocols "
                "bring their own templates"
            )
        return values
