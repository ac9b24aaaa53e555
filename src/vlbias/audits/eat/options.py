"""The options of the EAT audit: one declaration for Python, sweep configs and the ``vlbias eat`` flags."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from vlbias.stats.eat import DEFAULT_BOOTSTRAP, DEFAULT_CONFIDENCE, DEFAULT_PERMUTATIONS
from vlbias.stimuli.eat_tests import ORDERS
from vlbias.utils.options import Options, option, preset_option


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
    battery: Literal["standard"] | None = option(
        None, "the 26-row cross-modal battery of Ghate et al. 2025 (the default when no test is given)",
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
    seed: int = option(0, "seed of the permutations and the bootstrap", min=0)
    n_bootstrap: int = option(
        DEFAULT_BOOTSTRAP, "bootstrap resamples for the interval of d (0: none)", min=0, old_flags=("--bootstrap",)
    )
    confidence: float = option(DEFAULT_CONFIDENCE, "level of the interval", min=0, max=1, min_open=True, max_open=True)
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
    nrc_vad: str | None = option(None, "NRC-VAD lexicon file (valence nrc-oasis)", path=True, metavar="FILE")
    oasis: str | None = option(None, "OASIS folder with OASIS.csv and Images/ (valence nrc-oasis)", path=True,
                               metavar="DIR")

    @classmethod
    def _finish(cls, values, ctx):
        if values["valence"] == "nrc-oasis" and not (values["nrc_vad"] and values["oasis"]):
            raise ctx.error(
                cls.field("valence"), "nrc-oasis", "needs both the NRC-VAD lexicon (nrc_vad) and OASIS (oasis)"
            )
        return values
