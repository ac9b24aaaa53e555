"""Two-sample permutation tests whose statistic is a subset sum, exact or sampled, fast and reproducible.

Every association-test statistic vlbias computes reduces to one shape. Each item ``i`` of a pooled set of ``n``
items carries a score ``v[i]`` (for a WEAT, ``s(w, A, B)`` of each target word ``w`` in ``X ∪ Y``); the first
``k`` items are the observed group (``X``), and a re-partition of the pool into groups of ``k`` and ``n - k``
items is scored by the sum of ``v`` over its first group. Caliskan's statistic
``S(X_i, Y_i) = Σ_{X_i} s - Σ_{Y_i} s = 2 Σ_{X_i} s - Σ s`` and the difference of group means are both
increasing functions of that subset sum, so the permutation work is counting ``k``-subsets by their sum.

Two ways to count:

- **exact**: all ``C(n, k)`` partitions. The pool is cut into at most two blocks; every subset sum of each
  block is tabulated once by popcount, and for each split ``(c, k - c)`` of the group between the blocks the
  second block's sums are sorted so that each first-block sum counts its partners with one binary search
  (meet in the middle). The count is the one that enumerating every partition gives.
- **sampled**: ``N`` uniformly random partitions, with ``p = (1 + #extreme) / (1 + N)``. A uniform ``k``-subset
  is drawn as one uniform integer rank in ``[0, C(n, k))`` (``numpy.random.Generator.integers``, exact) and
  decoded into per-block subsets through tabulated block subset sums, so each sample costs a handful of
  vectorised operations whatever ``k`` is, instead of a shuffle. Pools larger than fits a 64-bit rank are cut into
  super-blocks whose shares of the group are drawn from their exact (hypergeometric) distribution first.

Ties count as extreme. Sums of the same items in another order can differ in the last bits, so comparisons allow
a relative tolerance of ``max(1e-12, 4 n eps) * Σ|v - mean(v)|``, far below any real difference of two
partitions. The same seed gives the same p-value on any machine: all randomness comes from
``Generator(PCG64(seed))`` through integer-exact methods.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import lru_cache
from math import comb

import numpy as np

ALTERNATIVES = ("greater", "less", "two-sided")
#: largest pool the exact counter accepts: two blocks of at most 2**22 tabulated subset sums
EXACT_MAX_BLOCK = 22
#: sampling: items per tabulated block (2**17 sums, 1 MiB) and per super-block (ranks below 2**57)
SAMPLE_BLOCK = 17
SUPER_BLOCK = 60
_SHIFT = np.uint64(57)
_CHUNK = 1 << 14


@dataclass(frozen=True)
class PermutationResult:
    p_value: float
    n_permutations: int  # partitions counted: C(n, k) when exact, else the number sampled
    n_extreme: int  # partitions at least as extreme as the observed one (sampled: without the +1)
    exact: bool
    alternative: str


def n_partitions(n: int, k: int) -> int:
    return comb(n, k)


def check_alternative(alternative: str) -> str:
    if alternative not in ALTERNATIVES:
        raise ValueError(f"unknown alternative {alternative!r}; use one of {', '.join(ALTERNATIVES)}")
    return alternative


def exact_feasible(n: int) -> bool:
    return n <= 2 * EXACT_MAX_BLOCK


def subset_sum_test(
    values,
    k: int,
    *,
    permutations: int | str = 1_000_000,
    alternative: str = "greater",
    seed: int | np.random.SeedSequence | None = 0,
) -> PermutationResult:
    """Permutation p-value of the observed group ``values[:k]`` against re-partitions of ``values``.

    ``alternative="greater"``: Pr[Σ_{X_i} v >= Σ_X v]; ``"less"``: Pr[Σ_{X_i} v <= Σ_X v]; ``"two-sided"``:
    Pr[|D_i| >= |D|] where D is the difference of group means (centred at 0 under every re-partition).
    ``permutations``: a budget N (exact when ``C(n, k) <= N``, else N sampled partitions) or ``"exact"``.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    n = v.size
    check_alternative(alternative)
    if not 0 < k < n:
        raise ValueError(f"the observed group must hold between 1 and {n - 1} of the {n} items (got {k})")
    if not np.all(np.isfinite(v)):
        raise ValueError("scores must be finite")
    total = comb(n, k)
    if permutations == "exact":
        if not exact_feasible(n):
            raise ValueError(
                f"an exact test of {k} + {n - k} items has {total:.3g} partitions, too many to count; "
                f"give a permutation budget instead"
            )
        exact = True
    else:
        budget = int(permutations)
        if budget < 1:
            raise ValueError(f"the permutation budget must be at least 1 (got {permutations})")
        exact = total <= budget and exact_feasible(n)
    v = v - v.mean()  # shifts every subset sum by the same k * mean: ranks unchanged, rounding smaller
    tol = max(1e-12, 4 * n * np.finfo(np.float64).eps) * float(np.abs(v).sum())
    t_obs = float(v[:k].sum())
    # counted: #{t >= hi} (upper tail) and #{t <= lo} (lower tail)
    if alternative == "greater":
        hi, lo = t_obs - tol, -np.inf
    elif alternative == "less":
        hi, lo = np.inf, t_obs + tol
    else:
        # the mean difference is 0 where the subset sum is k * mean(v) = 0 (v is centred)
        dev = abs(t_obs) - tol
        if dev <= 0:
            n_perm = total if exact else budget
            return PermutationResult(1.0, n_perm, n_perm, exact, alternative)
        hi, lo = dev, -dev
    if exact:
        count = _exact_count(v, k, hi, lo)
        return PermutationResult(count / total, total, count, True, alternative)
    rng = np.random.Generator(np.random.PCG64(seed))
    count = 0
    for sums in sample_subset_sums(v, k, budget, rng):
        count += int(np.count_nonzero(sums >= hi)) + int(np.count_nonzero(sums <= lo))
    return PermutationResult((1 + count) / (1 + budget), budget, count, False, alternative)


# ---------------------------------------------------------------------------------------------------- tables
def _split(n: int, parts: int) -> list[int]:
    return [n // parts + (1 if i < n % parts else 0) for i in range(parts)]


def block_sums(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sums of all 2**m subsets of ``values``, grouped by size: (sums, offsets) with the subsets of size c at
    ``sums[offsets[c]:offsets[c + 1]]``, each group in increasing bitmask order."""
    sums = np.zeros(1)
    sizes = np.zeros(1, dtype=np.int64)
    for x in values:
        sums = np.concatenate([sums, sums + x])
        sizes = np.concatenate([sizes, sizes + 1])
    order = np.argsort(sizes, kind="stable")
    offsets = np.searchsorted(sizes[order], np.arange(len(values) + 2))
    return sums[order], offsets


# ---------------------------------------------------------------------------------------------------- exact
def _exact_count(v: np.ndarray, k: int, hi: float, lo: float) -> int:
    n = v.size
    if n <= EXACT_MAX_BLOCK:
        sums, off = block_sums(v)
        group = sums[off[k] : off[k + 1]]
        return int(np.count_nonzero(group >= hi) + np.count_nonzero(group <= lo))
    m0 = (n + 1) // 2
    s0, o0 = block_sums(v[:m0])
    s1, o1 = block_sums(v[m0:])
    m1 = n - m0
    count = 0
    for c0 in range(max(0, k - m1), min(k, m0) + 1):
        first = s0[o0[c0] : o0[c0 + 1]]
        second = np.sort(s1[o1[k - c0] : o1[k - c0 + 1]])
        if hi != np.inf:
            count += int(second.size * first.size - np.searchsorted(second, hi - first, side="left").sum())
        if lo != -np.inf:
            count += int(np.searchsorted(second, lo - first, side="right").sum())
    return count


# ---------------------------------------------------------------------------------------------------- sampled
@dataclass
class _SuperBlock:
    start: int
    size: int
    tables: list[tuple[np.ndarray, np.ndarray]]  # per block: (sums, offsets)
    keys: np.ndarray  # (need << 57) | cum, sorted: one entry per (need, composition of need over blocks)
    cum: np.ndarray  # ranks before the composition
    radix: list[np.ndarray]  # per block: C(m_b, c_b) of the composition
    offset: list[np.ndarray]  # per block: where the c_b-subsets start in the block's table
    n_subsets: np.ndarray  # C(size, c) for c = 0..size


@lru_cache(maxsize=64)
def _compositions(sizes: tuple[int, ...]) -> tuple[np.ndarray, ...]:
    """All count vectors (c_0..c_{B-1}), 0 <= c_b <= m_b, sorted by their total, then lexicographically, with
    the number of subsets each one covers and the cumulative rank at which it starts among equal totals."""
    counts = np.array(list(itertools.product(*(range(m + 1) for m in sizes))), dtype=np.int64).reshape(-1, len(sizes))
    need = counts.sum(axis=1)
    order = np.lexsort(tuple(counts[:, b] for b in reversed(range(len(sizes)))) + (need,))
    counts, need = counts[order], need[order]
    binom = [np.array([comb(m, c) for c in range(m + 1)], dtype=np.uint64) for m in sizes]
    ways = np.ones(len(counts), dtype=np.uint64)
    for b in range(len(sizes)):
        ways *= binom[b][counts[:, b]]
    cum = np.zeros(len(counts), dtype=np.uint64)
    for t in np.unique(need):
        sel = np.flatnonzero(need == t)
        cum[sel[1:]] = np.cumsum(ways[sel[:-1]], dtype=np.uint64)
    return counts, need, cum, binom


def _super_block(v: np.ndarray, start: int, size: int) -> _SuperBlock:
    sizes = tuple(_split(size, -(-size // SAMPLE_BLOCK)))
    counts, need, cum, binom = _compositions(sizes)
    tables, pos = [], start
    for m in sizes:
        tables.append(block_sums(v[pos : pos + m]))
        pos += m
    keys = (need.astype(np.uint64) << _SHIFT) | cum
    return _SuperBlock(
        start=start,
        size=size,
        tables=tables,
        keys=keys,
        cum=cum,
        radix=[binom[b][counts[:, b]] for b in range(len(sizes))],
        offset=[tables[b][1][counts[:, b]].astype(np.int64) for b in range(len(sizes))],
        n_subsets=np.array([comb(size, c) for c in range(size + 1)], dtype=np.uint64),
    )


def _decode(sb: _SuperBlock, need: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """Sum of the ``rank``-th ``need``-subset of the super-block (ranks in [0, C(size, need)))."""
    pos = np.searchsorted(sb.keys, (need.astype(np.uint64) << _SHIFT) | rank, side="right") - 1
    r = rank - sb.cum[pos]
    out = np.zeros(rank.size)
    last = len(sb.tables) - 1
    for b, (sums, _) in enumerate(sb.tables):
        if b < last:
            radix = sb.radix[b][pos]
            q = r // radix
            idx = r - q * radix
            r = q
        else:
            idx = r
        out += sums[sb.offset[b][pos] + idx.astype(np.int64)]
    return out


def sample_subset_sums(
    values: np.ndarray,
    k: int,
    n_samples: int,
    rng: np.random.Generator,
    *,
    chunk: int = _CHUNK,
    super_block: int = SUPER_BLOCK,
):
    """Yield, chunk by chunk, Σ values over ``n_samples`` independent uniformly random ``k``-subsets."""
    v = np.asarray(values, dtype=np.float64)
    n = v.size
    n_super = -(-n // super_block)
    sizes = _split(n, n_super)
    starts = np.cumsum([0] + sizes[:-1])
    blocks = [_super_block(v, int(s), m) for s, m in zip(starts, sizes)]
    rest = [n - int(s) - m for s, m in zip(starts, sizes)]  # items after each super-block
    total = np.uint64(comb(n, k)) if n_super == 1 else None
    done = 0
    while done < n_samples:
        c = min(chunk, n_samples - done)
        if n_super == 1:
            rank = rng.integers(0, total, size=c, dtype=np.uint64)
            sums = _decode(blocks[0], np.full(c, k, dtype=np.uint64), rank)
        else:
            sums = np.zeros(c)
            need = np.full(c, k, dtype=np.int64)
            for sb, after in zip(blocks, rest):
                if after:
                    share = rng.hypergeometric(sb.size, after, need)
                else:
                    share = need
                rank = rng.integers(0, sb.n_subsets[share], dtype=np.uint64)
                sums += _decode(sb, share.astype(np.uint64), rank)
                need = need - share
        done += c
        yield sums
