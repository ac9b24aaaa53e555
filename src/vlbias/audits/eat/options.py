"""The options of the EAT audit: one declaration for Python, sweep configs and the ``vlbias eat`` flags."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Literal

from vlbias.stats.eat import DEFAULT_BOOTSTRAP, DEFAULT_CONFIDENCE, DEFAULT_PERMUTATIONS
from vlbias.stimuli.eat_tests import ORDERS
from vlbias.utils.options import Options, option, preset_option

#: packaged NRC-VAD word lists (option nrc_vad): the packaged test whose A and B sets hold them
NRC_WORD_LISTS = {"ghate2025": "weat11"}


class EATOptions(Options):
    """The options of the EAT audit (one declaration: Python, sweep configs and ``vlbias eat`` flags)."""

    OWNER = "eat"
    PRESETS = "eat"

    preset: str | None = preset_option()
    tests: tuple[str, ...] = option(
        (), "packaged tests by name (weat1 ... weat10, weat3b, sent-weat1, ...; `vlbias stimuli list`)",
        flag="--test", metavar="NAME",
    )
    test_files: tuple[str, ...] = option(
        (), "test files: vlbias YAML, SEAT JSON, or WEFE word sets as FILE#x,y,a,b",
        flag="--test-file", metavar="FILE", path=True, fragment=True, split=False,
    )
    battery: Literal["standard", "mmbias"] | None = option(
        None, "standard: the 26-row cross-modal battery of Ghate et al. 2025 (the default when no test is given; 24 "
        "rows run unless you supply instrument images (--image-set instruments=DIR), which neither the study nor "
        "iEAT released); mmbias: MMBias's religion, nationality, disability and sexual-orientation tests (needs mmbias)",
    )
    mmbias: str | None = option(
        None, "the MMBias release folder (github.com/sepehrjng92/MMBias, images unzipped) for battery mmbias",
        path=True, metavar="DIR",
    )
    seat_sentences: Literal["all", "published"] = option(
        "all", "sentence versions of the packaged tests: all (every word's sentences) or published (as May et al. "
        "released them: sent-weat2 keeps 330 of its 350 instrument sentences, cut at random by their generator)",
    )
    orders: tuple[str, ...] | None = option(
        None, f"orders to run, some of {', '.join(ORDERS)} [default: every order a test supports]",
        choices=ORDERS, metavar="ORDER[,ORDER]",
    )
    permutations: int | Literal["exact"] = option(
        DEFAULT_PERMUTATIONS, "permutation budget N (exact when C(|X|+|Y|, |X|) <= N, else N sampled), or exact",
        min=1, metavar="N|exact",
    )
    alternative: Literal["greater", "less", "two-sided"] = option("greater", "the alternative hypothesis of the test")
    sampler: Literal["vlbias", "ghate2025-legacy"] = option(
        "vlbias", "how sampled partitions are drawn: vlbias (seeded PCG64, fast) or ghate2025-legacy (Ghate et al.'s "
        "legacy shuffles from RandomState(seed): their sampled p-values bit for bit; alternative greater only; slow, "
        "10 to 20 s per million partitions of 700 items)",
    )
    seed: int = option(0, "seed of the permutations and the bootstrap", min=0)
    equal_sizes: bool = option(
        False, "skip rows whose target sets differ in size, as the code of Ghate et al. and SEAT requires |X| = |Y|"
    )
    sign_convention: Literal["as-computed", "ghate2025"] = option(
        "as-computed", "ghate2025: add the columns reported_sign and effect_size_reported, the study's sign (minus d "
        "on gender rows, as its tables report); effect_size, its interval and p stay as computed",
    )
    n_bootstrap: int = option(
        DEFAULT_BOOTSTRAP, "bootstrap resamples for the interval of d (0: none)", min=0, old_flags=("--bootstrap",)
    )
    confidence: float = option(DEFAULT_CONFIDENCE, "level of the interval", min=0, max=1, min_open=True, max_open=True)
    null_seeds: int = option(
        0, "random-init copies of an open_clip model's architecture (openclip:ARCH/random-1 ... random-N, cached like "
        "any model) whose effect sizes bound each row: null_d_low/null_d_high and beyond_null (0: none; other "
        "models: a note)", min=0, metavar="N",
    )
    item_tests: bool = option(False, "also test each target item alone (SC-EAT vs A and B): the items table")
    item_permutations: int = option(10_000, "permutation budget of each item's SC-EAT", min=1)
    drop_missing: bool = option(
        False, "drop texts/images a vectors: model lacks (and undecodable images), and say how many"
    )
    skip_bad_images: bool = option(False, "skip undecodable images instead of failing")
    stimuli_dir: str | None = option(
        None, "folder of fetched stimuli (vlbias stimuli fetch ieat) [default: $VLBIAS_STIMULI or user data]",
        path=True, metavar="DIR",
    )
    image_sets: Mapping[str, str] = option(
        {}, "image sets you supply: one the battery lacks (instruments=DIR) or an iEAT set (ieat/age/old=DIR)",
        flag="--image-set", metavar="KEY=DIR", path=True,
    )
    valence: Literal["default", "nrc-oasis"] = option(
        "default", "battery valence stimuli: default (test words, iEAT images) or nrc-oasis (NRC-VAD words, OASIS)"
    )
    nrc_vad: str | None = option(
        None, "NRC-VAD words (valence nrc-oasis): a lexicon file (its 25 highest- and lowest-valence words) or "
        "ghate2025 (the 25 + 25 words of Ghate et al.'s test files, packaged)", path="maybe", metavar="FILE|ghate2025",
    )
    oasis: str | None = option(None, "OASIS folder with OASIS.csv and Images/ (valence nrc-oasis)", path=True,
                               metavar="DIR")
    oasis_ties: Literal["theme", "csv-order"] = option(
        "theme", "OASIS images tied in valence at the 25th place: by theme name, or csv-order (Ghate et al.'s stable "
        "sort: the earlier rows of OASIS.csv for the top 25, the later for the bottom 25)",
    )

    @classmethod
    def _finish(cls, values, ctx):
        if values["battery"] == "mmbias" and not values["mmbias"]:
            raise ctx.error(cls.field("battery"), "mmbias", "needs the MMBias release folder (mmbias)")
        standard = values["battery"] == "standard" or not (values["battery"] or values["tests"] or values["test_files"])
        if standard and values["valence"] == "nrc-oasis" and not (values["nrc_vad"] and values["oasis"]):
            raise ctx.error(
                cls.field("valence"), "nrc-oasis", "needs the NRC-VAD words (a lexicon file, or ghate2025) and the "
                "OASIS folder (OASIS.csv and Images/, from osf.io/6pnd7; not redistributable)"
            )
        nrc = values["nrc_vad"]
        if nrc and nrc not in NRC_WORD_LISTS and not os.path.isabs(nrc):  # a path is made absolute when parsed
            raise ctx.error(cls.field("nrc_vad"), nrc, f"must be a lexicon file or {' or '.join(NRC_WORD_LISTS)}")
        if values["sampler"] == "ghate2025-legacy":
            if values["alternative"] != "greater":
                raise ctx.error(
                    cls.field("sampler"), "ghate2025-legacy", "is the study's one-sided test: use alternative greater"
                )
            if values["seed"] >= 2**32:
                raise ctx.error(cls.field("seed"), values["seed"], "the ghate2025-legacy sampler takes seeds below 2**32")
        return values

