"""Bootstrap resamples as counts, and percentile intervals: the one implementation behind every interval vlbias reports.

Resamples as counts
    A bootstrap resample draws ``n`` units (people, identities, words) from ``n`` with replacement. A statistic that
    is a weighted sum over units sees only how often each unit was drawn, so a resample is a vector of counts
    ``c ~ Multinomial(n; 1/n, ..., 1/n)`` and the resample's statistic is the statistic with unit weights ``c``: a
    mean is ``Σ c_i x_i / Σ c_i``; with clusters (a person's several images: value sums ``s_i``, row counts
    ``m_i``) the ratio estimator ``Σ c_i s_i / Σ c_i m_i``. One matrix product of ``b`` count vectors with the
    per-unit sums gives ``b`` replicates at once. :func:`count_chunks` yields ``B`` count vectors as ``(b, n)`` float
    arrays a chunk at a time, so memory stays bounded (``b * n <= MAX_CELLS`` by default) however many units and
    replicates there are.

    Two samplers draw this same distribution: ``"multinomial"`` (the generator's multinomial sampler, one vector
    per replicate) and ``"indices"`` (``n`` uniform indices per replicate, counted: what resampling rows literally
    does). They consume the generator differently, so each statistic keeps the sampler and chunk size it has always
    used and a seed gives the numbers it gave before. Multinomial counts do not depend on the chunk size.

Cluster and stratified resampling
    The unit is the cluster, never the row: callers sum rows per cluster first and resample the clusters.
    :func:`stratified_count_chunks` resamples several strata independently, each from its own units and with its
    own size (the four sets X, Y, A, B of an association test), drawing one chunk of every stratum in turn.

Percentile interval
    :func:`percentile_interval` gives the ``alpha/2`` and ``1 - alpha/2`` quantiles (``alpha = 1 - confidence``) of
    the replicates along an axis, interpolating linearly between order statistics (Hyndman & Fan's type 7, numpy's
    default). NaN replicates (resamples in which the statistic is undefined: a group that drew no rows, a spread of
    zero) are left out, and with fewer than two replicates left both ends are NaN. Where a column holds infinite
    replicates (a ratio over zero), its ends are observed replicates (inverted empirical CDF, type 1), so an end is
    infinite only when at least that share of the replicates is, never by interpolating towards infinity.

Guarantee: for a smooth function of means of ``n`` independent units (a mean, a ratio of means, a difference of
group means), the percentile interval's coverage tends to ``confidence`` as ``n`` grows, with an error of order
``1 / sqrt(n)`` (Hall 1992, ch. 3; Efron & Tibshirani 1993, ch. 13); with few units it covers less than the level
(for a mean of 50 normal values about 94% at 95%: ``tests/test_bootstrap.py`` measures it). A generator in a given
state gives the same counts on every run (numpy fixes the streams of ``Generator`` per bit generator and version).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence

import numpy as np

#: at most this many counts (replicates x units) per chunk unless a caller fixes the chunk size
MAX_CELLS = 4_000_000
SAMPLERS = ("multinomial", "indices")


def resample_counts(rng: np.random.Generator, n: int, size: int, *, sampler: str = "multinomial") -> np.ndarray:
    """(size, n) float counts: how often each of ``n`` units is drawn in each of ``size`` resamples of size ``n``."""
    if sampler == "multinomial":
        return rng.multinomial(n, np.full(n, 1.0 / n), size=size).astype(np.float64)
    if sampler == "indices":
        draws = rng.integers(0, n, size=(size, n)) + (np.arange(size) * n)[:, None]
        return np.bincount(draws.ravel(), minlength=size * n).reshape(size, n).astype(np.float64)
    raise ValueError(f"unknown sampler {sampler!r}; use one of {', '.join(SAMPLERS)}")


def _chunk(chunk: int | None, n_boot: int, cells_per_replicate: int) -> int:
    if chunk is None:
        return max(1, min(n_boot, MAX_CELLS // max(cells_per_replicate, 1)))
    if chunk < 1:
        raise ValueError(f"chunk must be at least 1 (got {chunk})")
    return chunk


def count_chunks(
    rng: np.random.Generator, n: int, n_bootstrap: int, *, chunk: int | None = None, sampler: str = "multinomial"
) -> Iterator[np.ndarray]:
    """Yield ``(b, n)`` resample counts of ``n`` units, ``n_bootstrap`` rows in all, ``chunk`` rows at a time
    (None: as many as keep ``b * n`` within :data:`MAX_CELLS`)."""
    step = _chunk(chunk, n_bootstrap, n)
    for start in range(0, n_bootstrap, step):
        yield resample_counts(rng, n, min(step, n_bootstrap - start), sampler=sampler)


def stratified_count_chunks(
    rng: np.random.Generator,
    sizes: Sequence[int],
    n_bootstrap: int,
    *,
    chunk: int | None = None,
    sampler: str = "multinomial",
) -> Iterator[tuple[np.ndarray, ...]]:
    """Yield, ``chunk`` replicates at a time, one ``(b, sizes[s])`` array of counts per stratum ``s``: every stratum
    resampled independently within itself, ``n_bootstrap`` replicates in all (chunk None: as many as keep
    ``b * sum(sizes)`` within :data:`MAX_CELLS`)."""
    step = _chunk(chunk, n_bootstrap, sum(sizes))
    for start in range(0, n_bootstrap, step):
        b = min(step, n_bootstrap - start)
        yield tuple(resample_counts(rng, n, b, sampler=sampler) for n in sizes)


def percentile_interval(replicates, confidence: float, *, axis: int = 0):
    """The percentile interval ``(low, high)`` of ``replicates`` along ``axis`` at level ``confidence``.

    NaN replicates are left out; fewer than two left give NaN ends; a column with infinite replicates takes its ends
    from observed replicates (see the module's docstring). Returns arrays of the replicates' shape without ``axis``
    (floats for one-dimensional replicates).
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie between 0 and 1 (got {confidence})")
    reps = np.moveaxis(np.asarray(replicates, dtype=np.float64), axis, 0)
    alpha = (1 - confidence) / 2
    if reps.shape[0] == 0:
        nan = np.full(reps.shape[1:], np.nan)
        return _out(nan), _out(nan.copy())
    usable = (~np.isnan(reps)).sum(axis=0) >= 2
    infinite = np.isinf(reps).any(axis=0)
    ends = []
    with warnings.catch_warnings(), np.errstate(invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: NaN, set below anyway
        for q in (alpha, 1 - alpha):
            end = np.nanquantile(reps, q, axis=0)
            if infinite.any():
                end = np.where(infinite, np.nanquantile(reps, q, axis=0, method="inverted_cdf"), end)
            ends.append(_out(np.where(usable, end, np.nan)))
    return ends[0], ends[1]


def _out(a: np.ndarray):
    return float(a) if a.ndim == 0 else a
