"""The options of the perception audit: one declaration for Python, sweep configs and the ``vlbias perception``
flags."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from vlbias.datasets.spec import DatasetSpec, fold_dataset_options
from vlbias.utils.options import Options, option, preset_option

ANALYSES = ("factors", "regression", "curves", "markedness", "skew", "group_means", "level_correlations")
SUBSETS = ("age", "lighting", "pose", "smiling")


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
    pair_sampler: Literal["per-dimension", "hausladen2025"] = option(
        "per-dimension",
        "per-dimension: each dimension's pairs from its own seeded stream, images without a partner "
        "never drawn first; hausladen2025: the study's sampler (one legacy numpy RandomState(seed) for the dimensions "
        "in the order lighting, pose, smiling, identity, age, gender, race; every draw the first of a permutation); "
        "its exact pairs also need the study's row order (docs/deviations.md)",
    )
    min_level_gap: Mapping[str, float] = option(
        {"age": 1.1, "smiling": 1.1}, "smallest level difference of a pair, per attribute (the study: age 1.1, "
        "smiling 1.1); given values merge over these", min=0, metavar="ATTR=GAP",
    )
    group_subsets: tuple[str, ...] | Literal["all"] = option(
        "all",
        "CausalFace folders whose images markedness, skew and group_means use (the study: age), or all",
        choices=SUBSETS,
        metavar="LIST",
    )
    races: tuple[str, ...] | None = option(
        None,
        "the races every analysis keeps, after merge_races (the study: white,black,asian) [default: all]",
        metavar="LIST",
    )
    merge_races: Mapping[str, str] = option(
        {},
        "race labels the analyses count as another race, e.g. east_asian=asian (the study merges East and "
        "Southeast Asian into asian); the scores table keeps the dataset's labels",
        metavar="LABEL=RACE",
    )
    min_age: float | None = option(
        None,
        "observational data: the analyses keep people at least this old (an age bin by its lower edge: 20 "
        "keeps FairFace's 20-29 and older; the study: 20); people of unknown age are left out [default: everyone]",
        min=0,
    )
    k: int = option(1000, "top k of each ranking for MaxSkew@k and NDKL", min=1)
    ndkl_depth: Literal["k", "all"] = option(
        "k", "how far down each ranking NDKL sums: k (the top k, as MaxSkew@k) or all (the whole ranking, the study)"
    )
    balance: Literal["per-grouping", "hausladen2025"] = option(
        "per-grouping",
        "the image set skew ranks: per-grouping: an exactly balanced random subsample for each "
        "grouping (race, gender, race x gender); hausladen2025: the study's one set for all groupings (per race x "
        "gender cell, min(n // cells, cell size) images drawn as pandas' sample(random_state=seed), before the "
        "min_age filter; CausalFace unbalanced)",
    )
    level_words: Literal["exact", "abc-suffix"] = option(
        "exact",
        "the words level_correlations pools for a list of scales: exact (the scales' own words) or "
        "abc-suffix (the study: every abc word that ends with one of them, so untrustworthy counts as trustworthy)",
    )
    n_bootstrap: int = option(1000, "bootstrap resamples for every interval (of identities; of pairs for the pooled "
                              "factor effects) (0: none)",
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
        bad = [k for k, v in values["merge_races"].items() if not v.strip()]
        if bad:
            raise ctx.error(cls.field("merge_races"), dict(values["merge_races"]), f"{bad[0]} maps to no race")
        if values["races"] is not None and not values["races"]:
            raise ctx.error(cls.field("races"), "", "names no race; give some, or leave it out for all")
        if values["group_subsets"] != "all":
            if not values["group_subsets"]:
                raise ctx.error(cls.field("group_subsets"), "", "names no folder; give some, or all")
            values["group_subsets"] = tuple(a for a in SUBSETS if a in values["group_subsets"])
        if values["analyses"] != "all":
            if not values["analyses"]:
                raise ctx.error(cls.field("analyses"), "", "names no analysis; give some, or all")
            values["analyses"] = tuple(a for a in ANALYSES if a in values["analyses"])  # the canonical order
        return values
