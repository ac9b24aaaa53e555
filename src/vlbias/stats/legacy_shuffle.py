"""The permutation sampler of Ghate et al. (2025), draw for draw: numpy's legacy global generator, one shuffle per
sampled partition.

Ghate, Slaughter, Wilson, Diab & Caliskan (2025, NAACL) compute their p-values with the test of sent-bias (May et
al. 2019) as adapted in github.com/kshitishghate/CLIP_bias (commit 8dffa18): ``WEAT.p`` in
``measure_bias_and_performance/sc_weat.py`` with the budget ``min(10**6, C(|X| + |Y|, |X|))`` and
``np.random.seed(82804230)`` called immediately before every test (``perform_cross_modal.py``). Within the budget
every partition is counted (exact); beyond it the test counts the observed partition once and then draws
``budget - 1`` partitions, each by shuffling ``arange(|X| + |Y|)`` with the legacy Mersenne Twister and taking the
first ``|X|`` items as X_i; a draw counts if the sum of ``s`` over X_i is at least the observed sum (ties count).

:func:`legacy_shuffle_test` does the same with a ``RandomState(seed)`` of its own, so a seed gives the study's
partitions in the study's order and, on the same scores in the same item order, its count: the same sampled
p-value, bit for bit (each draw's sum is taken the way the study takes it, ``s[a[:k]].sum()``, and compared
exactly). With vlbias's budget convention (N sampled partitions, ``p = (1 + #) / (1 + N)``), N = 999,999 is the
study's 10**6. It is slow: one shuffle of ``|X| + |Y|`` items per partition, 10 to 20 s per million partitions of
700 items. Exact tests are vlbias's own exact count (:func:`vlbias.stats.permutation.subset_sum_test`): the same
partitions, with ties recognised up to rounding where the study compares sums exactly. Only the one-sided test the
study runs (``greater``) is offered.
"""

from __future__ import annotations

import numbers
from math import comb

import numpy as np

from vlbias.stats.permutation import PermutationResult, exact_feasible, subset_sum_test

#: the seed Ghate et al. set before every test
GHATE2025_SEED = 82804230
_CHUNK = 4096


def legacy_shuffle_test(values, k: int, *, permutations: int | str, alternative: str = "greater", seed=None):
    """Permutation p-value of ``values[:k]`` against re-partitions of ``values``, sampled as Ghate et al. sample
    them (see the module docstring): exact when ``C(n, k) <= permutations``, else ``permutations`` legacy shuffles
    of a ``RandomState(seed)``, ``p = (1 + #) / (1 + permutations)``."""
    if alternative != "greater":
        raise ValueError(
            f"the ghate2025-legacy sampler is the study's one-sided test (alternative greater), not {alternative}"
        )
    v = np.asarray(values, dtype=np.float64).ravel()
    n = v.size
    if not 0 < k < n:
        raise ValueError(f"the observed group must hold between 1 and {n - 1} of the {n} items (got {k})")
    if not np.all(np.isfinite(v)):
        raise ValueError("scores must be finite")
    if permutations == "exact" or (
        not isinstance(permutations, bool)
        and isinstance(permutations, numbers.Integral)
        and comb(n, k) <= permutations
        and exact_feasible(n)
    ):
        return subset_sum_test(v, k, permutations=permutations, alternative="greater")
    if isinstance(permutations, bool) or not isinstance(permutations, numbers.Integral) or permutations < 1:
        raise ValueError(f"the permutation budget must be a whole number of at least 1 (got {permutations!r})")
    if seed is not None and not (isinstance(seed, numbers.Integral) and 0 <= seed < 2**32):
        raise ValueError(f"the legacy generator takes a seed from 0 to 2**32 - 1 (got {seed!r})")
    budget = int(permutations)
    rs = np.random.RandomState(seed)
    observed = v[:k].sum()
    count, done = 0, 0
    chunk = np.empty((min(_CHUNK, budget), k), dtype=np.intp)
    while done < budget:
        m = min(len(chunk), budget - done)
        for i in range(m):
            a = np.arange(n)
            rs.shuffle(a)
            chunk[i] = a[:k]
        # each row's sum as the study takes it (v[a[:k]].sum(): the same pairwise summation, bit for bit)
        count += int(np.count_nonzero(v[chunk[:m]].sum(axis=1) >= observed))
        done += m
    return PermutationResult((1 + count) / (1 + budget), budget, count, False, alternative)


__all__ = ["GHATE2025_SEED", "legacy_shuffle_test"]
