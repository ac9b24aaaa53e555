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
- **sampled**: ``N`` independent uniformly random partitions, with ``p = (1 + #extreme) / (1 + N)``. The pool
  is cut into two halves, and each half's part of a partition is a *random mask*: a string of independent bits,
  each set with probability ``ρ = a / 2**t`` (``t`` raw random words combined by ``&`` and ``|``; ``ρ = 1/2``, one
  raw word, whenever ``|X|`` and ``|Y|`` are close). Among the masks of one popcount every subset of that size is
  equally likely, so only the popcounts need steering. The first half's masks are thinned: a mask of popcount
  ``c`` is kept with probability proportional to ``h(c) / b(c)`` (``h``: the hypergeometric share of the group
  that falls in the first half; ``b``: the masks' binomial popcount), so the kept masks' popcounts follow ``h``.
  The second half's part is the next unused mask of popcount ``k - c`` (masks grouped by popcount with a stable
  sort, in drawing order; a popcount that runs short draws more). The two parts together are a uniform
  ``k``-subset, and every mask serves one partition only, so partitions are independent. A mask's subset sum is
  one lookup per 8 items in a table of the 256 sums of those items: a partition costs a few byte-sized operations
  per 8 items, whatever ``k`` is, instead of a shuffle; about 1.4 to 1.6 masks are drawn per half and partition.

Memory: every lookup table holds 256 sums (2 KiB, so an L1 cache holds it; 256 bytes per item and score vector in
all: 175 KiB for a 700-item pool), and a batch of random masks takes a few MiB: partitions are sampled 16,384 at a
time, fewer where a batch would need more than 2**19 random words per mask drawn (pools of more than 4,096 items
when ``ρ = 1/2``).

Several score vectors over pools of the same size can be tested at once (:func:`subset_sum_tests`): the random
partitions do not depend on the scores, so one set of draws serves them all, and each p-value is the one the
vector gets alone.

Ties count as extreme. Sums of the same items in another order can differ in the last bits, so comparisons allow
a relative tolerance of ``max(1e-12, 4 n eps) * Σ|v - mean(v)|``, far below any real difference of two
partitions. The same seed gives the same p-value on any machine: all randomness comes from
``Generator(PCG64(seed))``: raw 64-bit outputs (read as little-endian bytes) and uniform doubles, turned into
partitions by integer, bitwise or IEEE-basic arithmetic only, and every sum is added up in a fixed order.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from functools import lru_cache
from math import comb

import numpy as np

ALTERNATIVES = ("greater", "less", "two-sided")
#: largest pool the exact counter accepts: two blocks of at most 2**22 tabulated subset sums
EXACT_MAX_BLOCK = 22
#: sampling: items per lookup table (2**8 sums, 2 KiB), partitions per batch, random words per batch and mask use
SAMPLE_BLOCK = 8
_CHUNK = 1 << 14
_CHUNK_WORDS = 1 << 19


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
    return subset_sum_tests(v[None, :], k, permutations=permutations, alternative=alternative, seed=seed)[0]


def subset_sum_tests(
    rows,
    k: int,
    *,
    permutations: int | str = 1_000_000,
    alternative: str = "greater",
    seed: int | np.random.SeedSequence | None = 0,
) -> list[PermutationResult]:
    """:func:`subset_sum_test` of every row of ``rows`` (score vectors over pools of one size), with one set of
    drawn partitions for all of them: each result is the one ``subset_sum_test(row, k, ...)`` gives, bit for bit.
    """
    V = np.asarray(rows, dtype=np.float64)
    if V.ndim != 2 or V.shape[0] == 0:
        raise ValueError(f"expected one or more score vectors as rows of a 2-D array (got shape {V.shape})")
    n = V.shape[1]
    check_alternative(alternative)
    if not 0 < k < n:
        raise ValueError(f"the observed group must hold between 1 and {n - 1} of the {n} items (got {k})")
    if not np.all(np.isfinite(V)):
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
    n_perm = total if exact else budget
    results: list[PermutationResult | None] = [None] * len(V)
    sampled = []  # (row, centred scores, hi, lo)
    for r, row in enumerate(V):
        v = row - row.mean()  # shifts every subset sum by the same k * mean: ranks unchanged, rounding smaller
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
                results[r] = PermutationResult(1.0, n_perm, n_perm, exact, alternative)
                continue
            hi, lo = dev, -dev
        if exact:
            count = _exact_count(v, k, hi, lo)
            results[r] = PermutationResult(count / total, total, count, True, alternative)
        else:
            sampled.append((r, v, hi, lo))
    if sampled:
        rng = np.random.Generator(np.random.PCG64(seed))
        hi = np.array([s[2] for s in sampled])[:, None]
        lo = np.array([s[3] for s in sampled])[:, None]
        counts = np.zeros(len(sampled), dtype=np.int64)
        for sums in sample_subset_sums(np.stack([s[1] for s in sampled]), k, budget, rng):
            counts += np.count_nonzero(sums >= hi, axis=1) + np.count_nonzero(sums <= lo, axis=1)
        for (r, *_), count in zip(sampled, counts.tolist()):
            results[r] = PermutationResult((1 + count) / (1 + budget), budget, count, False, alternative)
    return results  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------------------- tables
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
def _weights(lo: int, hi: int, mode: int, ratio, size: int) -> list[float]:
    """Probabilities (up to a common factor) of 0..size, zero outside [lo, hi], from the ratios P(c + 1) / P(c)
    applied outward from the mode: IEEE basic arithmetic only (no log or gamma functions), so every machine
    computes the same numbers."""
    w = [0.0] * (size + 1)
    w[mode] = 1.0
    for c in range(mode, hi):
        w[c + 1] = w[c] * ratio(c)
    for c in range(mode - 1, lo - 1, -1):
        w[c] = w[c + 1] / ratio(c)
    return w


def _normalised(w: list[float]) -> np.ndarray:
    total = 0.0
    for x in w:
        total += x
    return np.array([x / total for x in w])


def _share(size: int, rest: int, need: int) -> np.ndarray:
    """Pr[c of a uniform ``need``-subset of ``size + rest`` items fall among the first ``size``], c = 0..size
    (hypergeometric)."""
    lo, hi = max(0, need - rest), min(size, need)
    mode = min(max((need + 1) * (size + 1) // (size + rest + 2), lo), hi)
    return _normalised(
        _weights(lo, hi, mode, lambda c: ((size - c) * (need - c)) / ((c + 1) * (rest - need + c + 1)), size)
    )


def _popcounts(size: int, a: int, t: int) -> np.ndarray:
    """Pr[a mask of ``size`` bits, each set with probability a / 2**t, has c bits set], c = 0..size (binomial)."""
    mode = min((size + 1) * a >> t, size)
    return _normalised(_weights(0, size, mode, lambda c: ((size - c) * a) / ((c + 1) * ((1 << t) - a)), size))


def _density(n: int, k: int) -> tuple[int, int]:
    """``(a, t)``: random mask bits are set with probability ``ρ = a / 2**t`` (``a`` odd), the dyadic fraction with
    the fewest bits whose popcount on a half of the pool centres within one standard deviation of the group's
    share of that half: ``(k/n - ρ)**2 * m <= ρ (1 - ρ)`` for the larger half's ``m`` items (integer arithmetic)."""
    m = (n + 1) // 2
    t = 1
    while True:
        scale = 1 << t
        base = k * scale // n
        for a in sorted((base, base + 1), key=lambda a: abs(k * scale - a * n)):
            if a % 2 and 0 < a < scale and (k * scale - a * n) ** 2 * m <= n * n * a * (scale - a):
                return a, t
        t += 1


def _popcount(words: np.ndarray) -> np.ndarray:
    """Set bits of each uint64."""
    if hasattr(np, "bitwise_count"):  # numpy >= 2.0
        return np.bitwise_count(words)
    x = words - ((words >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return (x * np.uint64(0x0101010101010101)) >> np.uint64(56)


def _assign(popcounts: np.ndarray, need: np.ndarray, n_values: int) -> np.ndarray:
    """For each ``need`` in order, the index of the next mask (in drawing order) whose popcount it is, or -1
    where the masks of that popcount have run out: the r-th need of a popcount gets that popcount's r-th mask."""
    have = np.bincount(popcounts, minlength=n_values)
    want = np.bincount(need, minlength=n_values)
    by_count = np.argsort(popcounts, kind="stable")
    order = np.argsort(need, kind="stable")
    wanted = need[order]
    first_have, first_want = np.cumsum(have) - have, np.cumsum(want) - want
    pos = np.arange(len(need)) + (first_have - first_want)[wanted]  # where the need's mask sits in by_count
    out = np.empty(len(need), dtype=np.intp)
    if np.all(want <= have):
        out[order] = by_count[pos]
    else:
        ok = pos - first_have[wanted] < have[wanted]
        out[order] = np.where(ok, by_count[np.where(ok, pos, 0)], -1)
    return out


class _Half:
    """One half of the pool: the subset sums of every 8 consecutive items (for every score vector), and its
    random masks: ``words`` 64-bit words per mask, item ``64 w + 8 i + j`` being bit ``j`` of byte ``i`` of word
    ``w`` (little-endian). ``share``: the distribution of the group's items in this half that the masks must
    follow; ``supply``: masks drawn per mask used, at least the largest ratio of ``share`` to the masks' own
    popcount distribution (about 1.41 when ``ρ = k / n``), plus 10%."""

    def __init__(self, values: np.ndarray, a: int, t: int, share: np.ndarray):
        n_rows, size = values.shape
        self.size, self.a, self.t = size, a, t
        self.words = -(-size // 64)
        self.blocks = -(-size // SAMPLE_BLOCK)
        tail = size - 64 * (self.words - 1)
        self.tail = np.uint64((1 << tail) - 1) if tail < 64 else None
        padded = np.zeros((n_rows, self.blocks * SAMPLE_BLOCK))
        padded[:, :size] = values
        items = padded.reshape(n_rows, self.blocks, SAMPLE_BLOCK)
        sums = np.zeros((n_rows, self.blocks, 1))
        for j in range(SAMPLE_BLOCK):  # sums[..., x] = Σ of the items whose bits are set in x
            sums = np.concatenate([sums, sums + items[:, :, j : j + 1]], axis=2)
        self.tables = np.ascontiguousarray(sums.transpose(1, 0, 2))  # (block, row, 256)
        own = _popcounts(size, a, t)
        ratio = np.divide(share, own, out=np.zeros_like(share), where=own > 0)
        peak = float(ratio.max())
        self.accept = ratio / peak  # thinning own popcounts down to ``share``: Pr[keep a mask of popcount c]
        self.supply = 1.1 * peak
        self.count_dtype = np.uint16 if size < 1 << 16 else np.int64

    def _draw(self, rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray]:
        """``count`` random masks (words × count) and their popcounts."""
        raw = rng.bit_generator.random_raw(self.t * self.words * count).reshape(self.t, self.words, count)
        bits = raw[0]
        for s in range(1, self.t):  # Pr[bit] = a / 2**t: fold in the numerator's bits from the lowest
            (np.bitwise_or if (self.a >> s) & 1 else np.bitwise_and)(raw[s], bits, out=bits)
        if self.tail is not None:
            bits[-1] &= self.tail
        counts = _popcount(bits[0]).astype(self.count_dtype)
        for w in range(1, self.words):
            counts += _popcount(bits[w])
        return bits, counts

    def _batch(self, count: int) -> int:
        return int(self.supply * count) + 64

    def thin(self, rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray]:
        """``count`` masks whose popcounts follow ``share``: each drawn mask is kept with probability
        ``accept[popcount]`` (a uniform double below it), the first ``count`` kept are used. Returns their bytes
        and popcounts."""
        pool, counts, kept = [], [], 0
        while kept < count:
            bits, c = self._draw(rng, self._batch(count - kept))
            keep = np.flatnonzero(rng.random(len(c)) < self.accept[c])[: count - kept]
            pool.append(bits[:, keep])
            counts.append(c[keep])
            kept += len(keep)
        return self._bytes(np.concatenate(pool, axis=1)), np.concatenate(counts)

    def pick(self, rng: np.random.Generator, need: np.ndarray) -> np.ndarray:
        """One mask of popcount ``need[i]`` for every i (the r-th need of a popcount gets the r-th mask of that
        popcount in drawing order), as bytes; a popcount that runs short draws more masks."""
        bits, counts = self._draw(rng, self._batch(len(need)))
        need = need.astype(self.count_dtype)
        sel = _assign(counts, need, self.size + 1)
        short = np.flatnonzero(sel < 0)
        if not short.size:
            return self._bytes(np.take(bits, sel, axis=1))
        chosen = np.empty((self.words, len(need)), dtype=np.uint64)
        found = sel >= 0
        chosen[:, found] = bits[:, sel[found]]
        extra = 1024
        while short.size:
            more, more_counts = self._draw(rng, extra)
            got = _assign(more_counts, need[short], self.size + 1)
            found = got >= 0
            chosen[:, short[found]] = more[:, got[found]]
            short = short[~found]
            extra = min(2 * extra, 1 << 16)
        return self._bytes(chosen)

    def _bytes(self, words: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(words).astype("<u8", copy=False).view(np.uint8).reshape(self.words, -1, 8)

    def add_sums(self, sums: np.ndarray, picked: np.ndarray) -> None:
        """sums[r] += Σ of row r's scores over each picked mask, block by block in order."""
        part = np.empty(sums.shape[1])
        for b in range(self.blocks):
            idx = picked[b >> 3, :, b & 7].astype(np.intp)
            for r in range(sums.shape[0]):
                np.take(self.tables[b, r], idx, out=part)
                sums[r] += part


def sample_subset_sums(values: np.ndarray, k: int, n_samples: int, rng: np.random.Generator, *, chunk: int = 0):
    """Yield, chunk by chunk, Σ values over ``n_samples`` independent uniformly random ``k``-subsets: an array of
    sums per chunk, or (rows × sums) when ``values`` has one score vector per row (the same subsets for all)."""
    v = np.asarray(values, dtype=np.float64)
    V = v[None, :] if v.ndim == 1 else v
    n = V.shape[1]
    a, t = _density(n, k)
    m0 = (n + 1) // 2
    first = _Half(V[:, :m0], a, t, _share(m0, n - m0, k))
    second = _Half(V[:, m0:], a, t, _share(n - m0, m0, k))
    if not chunk:
        chunk = _CHUNK
        while chunk > 1024 and chunk * t * first.words > _CHUNK_WORDS:
            chunk //= 2
    done = 0
    while done < n_samples:
        c = min(chunk, n_samples - done)
        sums = np.zeros((len(V), c))
        picked, counts = first.thin(rng, c)  # the first half's part of each subset, its size hypergeometric
        first.add_sums(sums, picked)
        second.add_sums(sums, second.pick(rng, k - counts.astype(np.intp)))
        done += c
        yield sums[0] if v.ndim == 1 else sums
