"""The options of the retrieval audit: one declaration for Python, sweep configs and the ``vlbias retrieval`` flags."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from vlbias.datasets.spec import DatasetSpec, fold_dataset_options
from vlbias.utils.options import Options, option


class RetrievalOptions(Options):
    """The options of the retrieval audit (one declaration: Python, sweep configs and ``vlbias retrieval``)."""

    OWNER = "retrieval"

    dataset: DatasetSpec | None = option(
        None, "dataset NAME:PATH (socialcounterfactuals:, pata:)", short="-d", metavar="NAME:PATH"
    )
    dataset_options: Mapping[str, Any] = option(
        {},
        "the dataset loader's options, e.g. attribute_types=race-gender (socialcounterfactuals)",
        flag="--dataset-option",
        metavar="KEY=VALUE",
    )
    protocol: str | None = option(
        None,
        "socialcounterfactuals, pata, or a retrieval protocol .yaml file [default: the protocol published on the "
        "dataset]",
        short="-p",
        path="maybe",
    )
    k: int | None = option(
        None, "top k of each ranking for MaxSkew@k, MinSkew@k and NDKL [default: the protocol's]", min=1
    )
    target: Literal["uniform", "pool"] | None = option(
        None,
        "the shares skew compares with: uniform (every group equally) or pool (the pool's own shares) "
        "[default: the protocol's]",
    )
    scale: float | None = option(
        None,
        "logit scale of the caption association's softmax (captions protocols) [default: the protocol's]",
        min=0,
        min_open=True,
    )
    n_bootstrap: int = option(
        1000, "bootstrap resamples of the clusters (counterfactual sets; images) for every interval (0: none)", min=0
    )
    n_random_rankings: int = option(0, "random rankings of each pool for the skew null distribution (0: none)", min=0)
    confidence: float = option(0.95, "level of every interval", min=0, max=1, min_open=True, max_open=True)
    seed: int = option(0, "seed of the bootstrap and the random rankings", min=0)
    skip_bad_images: bool = option(
        False, "skip undecodable images (or images a vectors: file lacks) instead of failing"
    )

    @classmethod
    def _finish(cls, values, ctx):
        return fold_dataset_options(cls, values, ctx)
