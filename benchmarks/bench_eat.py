"""Permutation-test speed: vlbias's EAT vs plain per-permutation Python loops of the kind in published code.

All runs are measured in the same process on the same embeddings, so the ratios hold on a noisy machine.

Baselines (written here from the published descriptions, not copied):

- **loop, memoised** (sent-bias / iEAT style): ``s(w, A, B)`` is computed once per target; each permutation
  shuffles the pooled indices (``np.random.shuffle``), sums ``s`` over the first ``|X|`` and compares with the
  observed sum; the exact test iterates ``itertools.combinations`` the same way.
- **loop, recomputed** (WEFE style): each permutation recomputes ``s(w, A, B)`` of every target from the
  embeddings (cosine similarities to all attributes) before summing.

Cases (the issue's):

1. sampled: 1,000,000 permutations of a 25-vs-25 test with 150-vs-150 attributes at d=512. The loops cannot do a
   million permutations in reasonable time, so they run a fraction and their per-permutation throughput is
   reported (and extrapolated); their p-value on that fraction must agree with vlbias's within Monte-Carlo error.
2. exact: all 184,756 partitions of a 10-vs-10 test (same attributes), run fully by vlbias and by the memoised loop;
   the p-values must be identical.
3. (for information) a SEAT-sized 350-vs-350 test, 1,000,000 sampled permutations.

Every timing is the best of ``--repeat`` runs (the loops: of that many equal fractions), and BLAS runs on one
thread for all of them (tiny matrix products only lose to thread start-up on a shared machine).

    python benchmarks/bench_eat.py            # all cases
    python benchmarks/bench_eat.py --quick    # smaller loop fractions
"""

from __future__ import annotations

import argparse
import itertools
import os
import time
from math import comb

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

from vlbias.stats.eat import association, eat  # noqa: E402


def embeddings(nx: int, ny: int, na: int, nb: int, dim: int, seed: int = 0, effect: float = 0.04):
    """Random unit vectors with a weak planted association (X and A share a direction), so p is not trivial."""
    rng = np.random.default_rng(seed)
    direction = rng.standard_normal(dim)
    direction /= np.linalg.norm(direction)
    sets = []
    for n, sign in ((nx, 1), (ny, -1), (na, 1), (nb, -1)):
        v = rng.standard_normal((n, dim)) / np.sqrt(dim) + sign * effect * direction
        sets.append(v / np.linalg.norm(v, axis=1, keepdims=True))
    return sets


def loop_memoised_sampled(X, Y, A, B, n_perm: int, seed: int = 0) -> tuple[float, int]:
    s = association(np.vstack([X, Y]), A, B)
    k = len(X)
    observed = s[:k].sum()
    np.random.seed(seed)
    count = 0
    for _ in range(n_perm):
        idx = np.arange(len(s))
        np.random.shuffle(idx)
        if s[idx[:k]].sum() >= observed:
            count += 1
    return (1 + count) / (1 + n_perm), count


def loop_recomputed_sampled(X, Y, A, B, n_perm: int, seed: int = 0) -> tuple[float, int]:
    W = np.vstack([X, Y])
    k = len(X)

    def s_of(rows):
        return (rows @ A.T).mean(axis=1) - (rows @ B.T).mean(axis=1)

    def stat(xi, yi):
        return s_of(W[xi]).sum() - s_of(W[yi]).sum()

    observed = stat(np.arange(k), np.arange(k, len(W)))
    np.random.seed(seed)
    count = 0
    for _ in range(n_perm):
        idx = np.arange(len(W))
        np.random.shuffle(idx)
        if stat(idx[:k], idx[k:]) >= observed:
            count += 1
    return (1 + count) / (1 + n_perm), count


def loop_memoised_exact(X, Y, A, B) -> tuple[float, int]:
    s = association(np.vstack([X, Y]), A, B)
    k = len(X)
    observed = s[:k].sum()
    count = total = 0
    for xi in itertools.combinations(range(len(s)), k):
        if s[list(xi)].sum() >= observed:
            count += 1
        total += 1
    return count / total, total


def timed(fn, repeat: int = 1):
    """(best wall time, result of the last run)"""
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="run the loops on smaller fractions")
    ap.add_argument("--permutations", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    n_mem = 10_000 if args.quick else 50_000
    n_rec = 100 if args.quick else 300
    N, k = args.permutations, args.repeat
    rows = []

    # 1. sampled 25 vs 25, 150 vs 150 attributes, d = 512
    X, Y, A, B = embeddings(25, 25, 150, 150, 512)
    t_v, r = timed(lambda: eat(X, Y, A, B, permutations=N, n_bootstrap=0, seed=1), k)
    t_m, (p_m, _) = timed(lambda: loop_memoised_sampled(X, Y, A, B, n_mem), k)
    t_r, (p_r, _) = timed(lambda: loop_recomputed_sampled(X, Y, A, B, n_rec), k)
    per_v, per_m, per_r = t_v / N, t_m / n_mem, t_r / n_rec
    se = np.sqrt(r.p_value * (1 - r.p_value) / n_mem)
    print(f"\n1. sampled: |X|=|Y|=25, |A|=|B|=150, d=512, {N:,} permutations (vlbias p = {r.p_value:.5f})")
    print(f"   vlbias eat():             {t_v:8.3f} s   {per_v * 1e9:9.0f} ns/permutation")
    print(
        f"   loop, memoised:           {t_m:8.3f} s for {n_mem:,} ({per_m * 1e9:9.0f} ns/permutation; "
        f"{per_m * N:7.1f} s for {N:,})  p = {p_m:.5f}  |diff| = {abs(p_m - r.p_value) / se:.1f} SE   "
        f"vlbias is {per_m / per_v:6.0f}x faster"
    )
    print(
        f"   loop, recomputed:         {t_r:8.3f} s for {n_rec:,} ({per_r * 1e9:9.0f} ns/permutation; "
        f"{per_r * N / 3600:7.2f} h for {N:,})  p = {p_r:.4f}            vlbias is {per_r / per_v:6.0f}x faster"
    )
    rows.append(("sampled 25 vs 25", per_m / per_v, per_r / per_v))

    # 2. exact 10 vs 10 (184,756 partitions), run fully by both
    X, Y, A, B = embeddings(10, 10, 150, 150, 512, seed=2)
    t_v, r = timed(lambda: eat(X, Y, A, B, permutations=N, n_bootstrap=0), k)
    t_m, (p_m, total) = timed(lambda: loop_memoised_exact(X, Y, A, B), k)
    assert r.exact and r.n_permutations == total == comb(20, 10)
    same = "identical" if p_m == r.p_value else f"DIFFERENT ({p_m!r} vs {r.p_value!r})"
    print(f"\n2. exact: |X|=|Y|=10, |A|=|B|=150, d=512, all {total:,} partitions")
    print(f"   vlbias eat():             {t_v:8.3f} s   p = {r.p_value!r}")
    print(f"   loop, memoised:           {t_m:8.3f} s   p = {p_m!r}   ({same})   vlbias is {t_m / t_v:6.0f}x faster")
    rows.append(("exact 10 vs 10", t_m / t_v, float("nan")))

    # 3. SEAT-sized: 350 vs 350 sentences
    X, Y, A, B = embeddings(350, 350, 150, 150, 512, seed=3, effect=0.01)
    t_v, r = timed(lambda: eat(X, Y, A, B, permutations=N, n_bootstrap=0, seed=1), k)
    n_big = n_mem // 5
    t_m, (p_m, _) = timed(lambda: loop_memoised_sampled(X, Y, A, B, n_big), k)
    per_v, per_m = t_v / N, t_m / n_big
    print(f"\n3. SEAT-sized: |X|=|Y|=350, |A|=|B|=150, d=512, {N:,} permutations (vlbias p = {r.p_value:.5f})")
    print(f"   vlbias eat():             {t_v:8.3f} s   {per_v * 1e9:9.0f} ns/permutation")
    print(
        f"   loop, memoised:           {t_m:8.3f} s for {n_big:,} ({per_m * 1e9:9.0f} ns/permutation)  "
        f"p = {p_m:.5f}   vlbias is {per_m / per_v:6.0f}x faster"
    )
    rows.append(("sampled 350 vs 350", per_m / per_v, float("nan")))
    print("\nspeed-up of vlbias over   loop, memoised   loop, recomputed")
    for name, a, b in rows:
        print(f"  {name:22s}{a:12.0f}x   {'' if b != b else f'{b:12.0f}x'}")


if __name__ == "__main__":
    main()
