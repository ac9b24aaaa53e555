"""The options of the perception audit: one declaration for Python, sweep configs and the ``vlbias perception``
flags."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from vlbias.datasets.spec import DatasetSpec, fold_dataset_options
from vlbias.utils.options import Options, option, preset_option

ANALYSES = ("factors", "regression", "curves", "markedness", "skew")


class PerceptionOptions(Options):
    """The options of the perception audit (one declaration: Python, sweep configs and ``vlbias perception``)."""

    OWNER = "perception"
    PRESETS = "perception"
    DEPRECATED = {"bootstrap": "n_bootstrap", "permutations": "n_random_rankings"}

    preset: str | None = preset_option()
    dataset: DatasetSpec | None = option(
        None, "face dataset: causalface:PATH (the folder holding final_picked_*), cfd:, fairface:, utkface:, "
        "manifest:CSV", short="-d", metavar="NAME:PATH",
    )
    dataset_options: Mapping[str, Any] = option(
        {}, "the dataset loader's options, e.g. background=removed or smiling_corrected=false (CausalFace)",
        flag="--dataset-option", metavar="KEY=VALUE",
    )
    lexicons: tuple[str, ...] = option(
        ("scm", "abc"), "lexicons whose scales are scored: scm, abc, or YAML/CSV files", flag="--lexicon",
        metavar="NAME|FILE", path="maybe",
    )
    control: str = option("control", "control-word list (the neutral word and the race/gender/age words): "
                          "packaged control or a YAML file", metavar="NAME|FILE", path="maybe")
    templates: str = option("hausladen2025", "prompt templates: packaged hausladen2025 or a YAML/text file with {w}",
                            metavar="NAME|FILE", path="maybe")
    article: Literal["as-written", "grammatical"] = option(
        "as-written", "as-written keeps the study's 'a' before every word; grammatical writes 'an' before vowel sounds"
    )
    delta: Literal["absolute", "relative"] = option(
        "absolute", "absolute: 100 (cos - neutral); relative: 100 (cos - neutral) / neutral"
    )
    analyses: tuple[str, ...] | Literal["all"] = option(
        "all", f"analyses to run, some of {', '.join(ANALYSES)}, or all (those the dataset allows)",
        choices=ANALYSES, metavar="LIST",
    )
    pairs: int = option(1000, "random image pairs per dimension for the factor effects (the study: 1000)", min=1)
    min_level_gap: Mapping[str, float] = option(
        {"age": 1.1, "smiling": 1.1}, "smallest level difference of a pair, per attribute (the study: age 1.1, "
        "smiling 1.1); given values merge over these", min=0, metavar="ATTR=GAP",
    )
    k: int = option(1000, "top k of each ranking for MaxSkew@k and NDKL", min=1)
    n_bootstrap: int = option(1000, "cluster-bootstrap resamples (of identities) for every interval (0: none)",
                              min=0, old_flags=("--bootstrap",))
    n_random_rankings: int = option(1000, "random rankings for the skew null distribution (0: none)", min=0,
                                    old_flags=("--permutations",))
    confidence: float = option(0.95, "level of every interval", min=0, max=1, min_open=True, max_open=True)
    seed: int = option(0, "seed of every random draw (pairs, bootstrap, balanced subsets, random rankings)", min=0)
    skip_bad_images: bool = option(False, "skip images that cannot be decoded (listed in skipped.csv)")

    @classmethod
    def _finish(cls, values, ctx):
        values = fold_dataset_options(cls, values, ctx)
        if not values["lexicons"]:
            raise ctx.error(cls.field("lexicons"), "", "names no lexicon; give at least one (scm, abc or a file)")
        if values["analyses"] != "all":
            if not values["analyses"]:
                raise ctx.error(cls.field("analyses"), "", "names no analysis; give some, or all")
            values["analyses"] = tuple(a for a in ANALYSES if a in values["analyses"])  # the canonical order
        return values
