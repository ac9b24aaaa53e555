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
  is drawn as one uniform integer rank in ``[0, C(n, k))`` (rejection sampling on the generator's raw 64-bit
  outputs, exact) and decoded into one subset per block of at most 17 items, whose subset sums are tabulated once:
  a guide table finds how many items each block contributes, and a mixed-radix split of the rank picks each
  block's subset. Each sample then costs a few vectorised operations per block whatever ``k`` is, instead of a
  shuffle. Pools of more than 56 items (whose ranks would not be exact in doubles) are cut into super-blocks whose
  shares of the group are drawn first, by inverting their hypergeometric distribution (tabulated with basic IEEE
  arithmetic, so identically on every machine).

Ties count as extreme. Sums of the same items in another order can differ in the last bits, so comparisons allow
a relative tolerance of ``max(1e-12, 4 n eps) * Σ|v - mean(v)|``, far below any real difference of two
partitions. The same seed gives the same p-value on any machine: all randomness comes from
``Generator(PCG64(seed))``: raw 64-bit outputs and uniform doubles, turned into partitions by integer-exact or
IEEE-basic arithmetic only.
"""

from __future__ import annotations

import itertools
import numbers
from dataclasses import dataclass
from functools import lru_cache
from math import comb

import numpy as np

ALTERNATIVES = ("greater", "less", "two-sided")
#: largest pool the exact counter accepts: two blocks of at most 2**22 tabulated subset sums
EXACT_MAX_BLOCK = 22
#: sampling: items per tabulated block (2**17 sums, 1 MiB) and per super-block (ranks below C(56, 28) < 2**53)
SAMPLE_BLOCK = 17
SUPER_BLOCK = 56
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
        if isinstance(permutations, bool) or not isinstance(permutations, numbers.Integral) or permutations < 1:
            raise ValueError(f"the permutation budget must be a whole number of at least 1 (got {permutations!r})")
        budget = int(permutations)  # never rounds: 2.5 is refused above
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


@lru_cache(maxsize=32)
def _size_order(m: int) -> tuple[np.ndarray, np.ndarray]:
    """The bitmasks 0 .. 2**m - 1 grouped by popcount (increasing within a group), and the group offsets."""
    sizes = np.zeros(1, dtype=np.int8)
    for _ in range(m):
        sizes = np.concatenate([sizes, sizes + 1])
    order = np.argsort(sizes, kind="stable")
    return order, np.searchsorted(sizes[order], np.arange(m + 2))


def block_sums(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sums of all 2**m subsets of ``values``, grouped by size: (sums, offsets) with the subsets of size c at
    ``sums[offsets[c]:offsets[c + 1]]``, each group in increasing bitmask order."""
    sums = np.zeros(1)
    for x in values:
        sums = np.concatenate([sums, sums + x])
    order, offsets = _size_order(len(values))
    return sums[order], offsets


# ---------------------------------------------------------------------------------------------------- exact
def _exact_count(v: np.ndarray, k: int, hi: float, lo: float) -> int:
    n = v.size
    if n <= 12:
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
    """Decoding tables of one super-block (at most SUPER_BLOCK items, cut into blocks of at most SAMPLE_BLOCK).

    Ranks of the ``c``-subsets of the super-block are ordered by composition (how many items each block
    contributes), then by the index of each block's subset, mixed-radix. A composition is found from a rank in
    a guide table (the composition holding the first rank of each bucket of ranks) plus a short forward scan."""

    size: int
    tables: list[tuple[np.ndarray, np.ndarray]]  # per block: (subset sums by size, offsets)
    cum: np.ndarray  # per composition: first rank
    cum_next: np.ndarray  # per composition: first rank of the next composition of the same total (or the total)
    radix: list[np.ndarray]  # per block: C(m_b, c_b) of each composition
    offset: list[np.ndarray]  # per block: where each composition's c_b-subsets start in the block's table
    guide: np.ndarray  # bucket -> composition holding the bucket's first rank
    guide_base: np.ndarray  # per total c: first bucket of c
    guide_shift: np.ndarray  # per total c: rank >> shift is the bucket within c
    n_subsets: np.ndarray  # C(size, c) for c = 0..size

    def __post_init__(self):
        # decoding runs in doubles: every rank, radix and offset is an integer below 2**53, so exact
        if self.n_subsets.max() >= 2**53:
            raise ValueError(f"a super-block of {self.size} items has ranks beyond 2**53")
        self.cum_f = self.cum.astype(np.float64)
        self.cum_next_f = self.cum_next.astype(np.float64)
        self.radix_f = [r.astype(np.float64) for r in self.radix]
        self.offset_f = [o.astype(np.float64) for o in self.offset]


@lru_cache(maxsize=64)
def _compositions(sizes: tuple[int, ...], needs: tuple[int, ...]) -> tuple:
    """Count vectors (c_0..c_{B-1}), 0 <= c_b <= m_b, summing to one of ``needs``: sorted by total, then
    lexicographically, with the first rank of each and the guide tables over ranks."""
    grid = np.array(list(itertools.product(*(range(m + 1) for m in sizes))), dtype=np.int64).reshape(-1, len(sizes))
    total = grid.sum(axis=1)
    grid, total = grid[np.isin(total, needs)], total[np.isin(total, needs)]
    order = np.lexsort(tuple(grid[:, b] for b in reversed(range(len(sizes)))) + (total,))
    counts, total = grid[order], total[order]
    binom = [np.array([comb(m, c) for c in range(m + 1)], dtype=np.uint64) for m in sizes]
    ways = np.ones(len(counts), dtype=np.uint64)
    for b in range(len(sizes)):
        ways *= binom[b][counts[:, b]]
    cum = np.zeros(len(counts), dtype=np.uint64)
    cum_next = np.zeros(len(counts), dtype=np.uint64)
    size = sum(sizes)
    guide_base = np.zeros(size + 1, dtype=np.int64)
    guide_shift = np.zeros(size + 1, dtype=np.uint64)
    guides = []
    n_buckets = 0
    for t in needs:
        sel = np.flatnonzero(total == t)
        cum[sel] = np.concatenate([[0], np.cumsum(ways[sel[:-1]], dtype=np.uint64)]).astype(np.uint64)
        n_t = comb(size, t)
        cum_next[sel] = np.concatenate([cum[sel[1:]], np.array([n_t], dtype=np.uint64)])
        # about four buckets per composition, so the forward scan is short
        bits = max(0, n_t.bit_length() - max(1, (4 * len(sel)).bit_length()))
        firsts = np.arange(((n_t - 1) >> bits) + 1, dtype=np.uint64) << np.uint64(bits)
        guides.append(sel[np.searchsorted(cum[sel], firsts, side="right") - 1])
        guide_base[t], guide_shift[t] = n_buckets, bits
        n_buckets += len(firsts)
    return counts, cum, cum_next, binom, np.concatenate(guides), guide_base, guide_shift


def _super_block(v: np.ndarray, start: int, size: int, needs: tuple[int, ...]) -> _SuperBlock:
    sizes = tuple(_split(size, -(-size // SAMPLE_BLOCK)))
    counts, cum, cum_next, binom, guide, guide_base, guide_shift = _compositions(sizes, needs)
    tables, pos = [], start
    for m in sizes:
        tables.append(block_sums(v[pos : pos + m]))
        pos += m
    return _SuperBlock(
        size=size,
        tables=tables,
        cum=cum,
        cum_next=cum_next,
        radix=[binom[b][counts[:, b]] for b in range(len(sizes))],
        offset=[tables[b][1][counts[:, b]].astype(np.int64) for b in range(len(sizes))],
        guide=guide,
        guide_base=guide_base,
        guide_shift=guide_shift,
        n_subsets=np.array([comb(size, c) for c in range(size + 1)], dtype=np.uint64),
    )


def _decode(sb: _SuperBlock, need: np.ndarray | int, rank: np.ndarray) -> np.ndarray:
    """Sum of the ``rank``-th ``need``-subset of the super-block (ranks in [0, C(size, need))); ``need`` is one
    number for every row, or one per row."""
    if isinstance(need, (int, np.integer)):
        pos = sb.guide[(rank >> sb.guide_shift[need]).astype(np.intp) + sb.guide_base[need]]
    else:
        pos = sb.guide[sb.guide_base[need] + (rank >> sb.guide_shift[need]).astype(np.intp)]
    # ranks (< C(56, 28) < 2**53) and radices are exact doubles, so floor(r / radix) is the exact quotient
    rank = rank.astype(np.float64)
    cum, cum_next, radices, offsets = sb.cum_f, sb.cum_next_f, sb.radix_f, sb.offset_f
    active = np.flatnonzero(cum_next[pos] <= rank)
    while active.size:  # the bucket's first composition may end before the rank: scan forward
        pos[active] += 1
        active = active[cum_next[pos[active]] <= rank[active]]
    r = rank - cum[pos]
    out = None
    last = len(sb.tables) - 1
    for b, (sums, _) in enumerate(sb.tables):
        if b < last:
            radix = radices[b][pos]
            q = r / radix
            np.floor(q, out=q)
            idx = r - q * radix
            r = q
        else:
            idx = r
        idx += offsets[b][pos]
        part = sums[idx.astype(np.intp)]
        if out is None:
            out = part
        else:
            out += part
    return out


@dataclass
class _ShareTable:
    """How many of ``need`` items fall in a super-block of ``size`` items followed by ``rest`` others: the
    hypergeometric distribution, for every ``need`` in a range, as inverse-CDF tables with a guide.

    Probabilities come from ratios of consecutive terms, C(M, c+1) C(R, n-c-1) / (C(M, c) C(R, n-c)), computed
    outward from the mode with IEEE basic arithmetic only (no log or gamma functions), so every machine builds the
    same table; a uniform double picks the share."""

    first_need: int
    width: int  # size + 1 entries per need
    lo: np.ndarray  # flat (need, c): lower edge of c's interval in [0, 1)
    lo_next: np.ndarray  # lower edge of the next entry (2.0 after the last)
    guide: np.ndarray  # flat (need, bucket): last entry whose lower edge is at most the bucket's start
    buckets: int


def _share_table(size: int, rest: int, needs: range, buckets: int = 64) -> _ShareTable:
    nu = np.arange(needs.start, needs.stop, dtype=np.int64)
    c_lo, c_hi = np.maximum(0, nu - rest), np.minimum(size, nu)
    mode = np.clip(((nu + 1) * (size + 1)) // (size + rest + 2), c_lo, c_hi)
    rows = np.arange(len(nu))
    w = np.zeros((len(nu), size + 1))
    w[rows, mode] = 1.0

    def ratio(c: int) -> np.ndarray:  # P(c + 1) / P(c)
        num = ((size - c) * (nu - c)).astype(np.float64)
        den = ((c + 1) * (rest - nu + c + 1)).astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            return num / den

    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):  # masked-out entries only
        for c in range(size):  # upward from the mode
            up = (c >= mode) & (c + 1 <= c_hi)
            w[:, c + 1] = np.where(up, w[:, c] * ratio(c), w[:, c + 1])
        for c in range(size - 1, -1, -1):  # downward
            down = (c < mode) & (c >= c_lo)
            w[:, c] = np.where(down, w[:, c + 1] / np.where(down, ratio(c), 1.0), w[:, c])
    cum = np.cumsum(w, axis=1)
    lo = np.hstack([np.zeros((len(nu), 1)), cum[:, :-1]]) / cum[:, -1:]
    lo[w == 0] = 2.0  # impossible shares are never picked
    lo = np.minimum.accumulate(lo[:, ::-1], axis=1)[:, ::-1]  # keep the edges sorted within each need
    lo_next = np.hstack([lo[:, 1:], np.full((len(nu), 1), 2.0)])
    starts = np.arange(buckets) / buckets
    guide = np.stack([np.searchsorted(lo[i], starts, side="right") - 1 for i in rows])
    guide = (guide + (rows * (size + 1))[:, None]).ravel()
    return _ShareTable(int(nu[0]), size + 1, lo.ravel(), lo_next.ravel(), guide, buckets)


def _draw_share(t: _ShareTable, need: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    u = rng.random(need.size)
    row = need - t.first_need
    pos = t.guide[row * t.buckets + (u * t.buckets).astype(np.intp)]
    active = np.flatnonzero(t.lo_next[pos] <= u)
    while active.size:
        pos[active] += 1
        active = active[t.lo_next[pos[active]] <= u[active]]
    return pos - row * t.width


def _uniform_below(rng: np.random.Generator, bound: int, size: int) -> np.ndarray:
    """Exactly uniform integers in [0, bound) from the generator's raw 64-bit outputs: the top bits of each,
    with the (at most half) draws at or above the bound drawn again."""
    shift = np.uint64(64 - max(1, (bound - 1).bit_length()))
    limit = np.uint64(bound)
    out = rng.bit_generator.random_raw(size) >> shift
    bad = np.flatnonzero(out >= limit)
    while bad.size:
        out[bad] = rng.bit_generator.random_raw(bad.size) >> shift
        bad = bad[out[bad] >= limit]
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
    rest = [n - int(s) - m for s, m in zip(starts, sizes)]  # items after each super-block
    blocks, shares = [], []
    for s, m, after in zip(starts, sizes, rest):
        needs = (k,) if n_super == 1 else tuple(range(max(0, k - (n - m)), min(m, k) + 1))
        blocks.append(_super_block(v, int(s), m, needs))
        if n_super > 1 and after:
            before = int(s)  # items of the group still to place: between k - before and k
            shares.append(_share_table(m, after, range(max(0, k - before), min(k, m + after) + 1)))
    total = comb(n, k)
    done = 0
    while done < n_samples:
        c = min(chunk, n_samples - done)
        if n_super == 1:
            rank = _uniform_below(rng, total, c)
            sums = _decode(blocks[0], k, rank)
        else:
            sums = np.zeros(c)
            need = np.full(c, k, dtype=np.int64)
            for j, sb in enumerate(blocks):
                share = _draw_share(shares[j], need, rng) if j < len(shares) else need
                rank = rng.integers(0, sb.n_subsets[share], dtype=np.uint64)
                sums += _decode(sb, share, rank)
                need = need - share
        done += c
        yield sums
