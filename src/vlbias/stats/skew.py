"""Retrieval skew of a ranking over groups: Skew@k, MaxSkew@k, MinSkew@k and NDKL.

Definitions of Geyik, Ambler & Kenthapadi (KDD 2019), as used for CLIP by Berg et al. (AACL 2022, "A prompt array
keeps the bias away"). A ranking tau lists items best first; each item belongs to one of G groups; the target
distribution q over groups is uniform unless given.

- ``Skew_g@k = ln(p_g(k) / q_g)``, where p_g(k) is the share of group g among the top k. Positive: g is
  over-represented in the top k; 0: represented as the target says; -inf: absent.
- ``MaxSkew@k = max_g Skew_g@k`` (>= 0 whenever q sums to 1), ``MinSkew@k = min_g Skew_g@k``.
- ``NDKL = (1/Z) sum_{i=1..k} KL(p(i) || q) / log2(i + 1)``, ``Z = sum_{i=1..k} 1 / log2(i + 1)``: the divergence
  of every prefix's group distribution from the target, discounted by rank (natural logarithm, 0 ln 0 = 0).
  vlbias evaluates it over the top k, the same k as MaxSkew.

Both are 0 for a ranking that follows the target exactly and grow with its bias. Because even a random ranking
of a balanced set deviates from the target by chance, :func:`ranking_skew` also reports the distribution of both
statistics under random rankings of the same set (the null), and the share of random rankings at least as skewed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def _target(n_groups: int, target: np.ndarray | None) -> np.ndarray:
    if target is None:
        return np.full(n_groups, 1.0 / n_groups)
    q = np.asarray(target, dtype=np.float64)
    if q.shape != (n_groups,) or np.any(q <= 0) or not np.isclose(q.sum(), 1.0):
        raise ValueError(f"target must be {n_groups} positive shares summing to 1")
    return q


def prefix_counts(ranked: np.ndarray, n_groups: int, k: int) -> np.ndarray:
    """(..., k, G) counts of each group among the top 1..k of each ranking in ``ranked`` (..., n) of group codes."""
    top = np.asarray(ranked)[..., :k]
    onehot = top[..., None] == np.arange(n_groups)
    return np.cumsum(onehot, axis=-2, dtype=np.int64)


def skew_at_k(ranked: np.ndarray, n_groups: int, k: int, target: np.ndarray | None = None) -> np.ndarray:
    """(..., G) Skew_g@k of rankings given as group codes best first (-inf for a group absent from the top k)."""
    q = _target(n_groups, target)
    k = min(k, np.asarray(ranked).shape[-1])
    counts = prefix_counts(ranked, n_groups, k)[..., -1, :]
    with np.errstate(divide="ignore"):
        return np.log(counts / k / q)


def ndkl(ranked: np.ndarray, n_groups: int, k: int | None = None, target: np.ndarray | None = None) -> np.ndarray:
    """Normalised discounted KL divergence of the top k of each ranking (group codes, best first)."""
    q = _target(n_groups, target)
    n = np.asarray(ranked).shape[-1]
    k = n if k is None else min(k, n)
    counts = prefix_counts(ranked, n_groups, k)
    p = counts / np.arange(1, k + 1)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p / q), 0.0)
    kl = terms.sum(axis=-1)  # (..., k)
    disc = 1.0 / np.log2(np.arange(2, k + 2))
    return (kl * disc).sum(axis=-1) / disc.sum()


def balanced_subsample(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Indices of an equal-size random subsample of every group (the smallest group's size), in index order."""
    labels = np.asarray(labels)
    groups, counts = np.unique(labels, return_counts=True)
    m = int(counts.min())
    keep = [np.sort(rng.choice(np.flatnonzero(labels == g), size=m, replace=False)) for g in groups]
    return np.sort(np.concatenate(keep))


def ranking_skew(
    scores: np.ndarray,
    labels: np.ndarray,
    *,
    k: int = 1000,
    names: list[str] | None = None,
    target: np.ndarray | None = None,
    n_perm: int = 1000,
    rng: np.random.Generator | None = None,
) -> pd.DataFrame:
    """Skew of the rankings that sort items by each column of ``scores`` (highest first) over ``labels``' groups.

    ``scores`` is (n,) or (n, w): one ranking per column (named by ``names``). Ties keep the input order.
    Returns one row per ranking: ``k`` (the k used, at most n), ``max_skew`` and its group, ``min_skew`` and its
    group, ``ndkl``, and from ``n_perm`` random rankings of the same items: the null mean and 95th percentile of
    each statistic and the permutation p-value ``(1 + #{null >= observed}) / (1 + n_perm)``.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim == 1:
        scores = scores[:, None]
    labels = np.asarray(labels)
    if len(labels) != scores.shape[0]:
        raise ValueError("labels and scores differ in length")
    groups, codes = np.unique(labels, return_inverse=True)
    n_groups, n = len(groups), len(labels)
    if n_groups < 2:
        raise ValueError("skew needs at least two groups")
    q = _target(n_groups, target)
    k = min(k, n)
    names = names or [str(i) for i in range(scores.shape[1])]
    order = np.argsort(-scores, axis=0, kind="stable")  # (n, w)
    ranked = codes[order].T  # (w, n)
    sk = skew_at_k(ranked, n_groups, k, q)  # (w, G)
    nd = ndkl(ranked, n_groups, k, q)
    out = pd.DataFrame(
        {
            "ranking": names,
            "k": k,
            "n_items": n,
            "n_groups": n_groups,
            "max_skew": sk.max(axis=1),
            "max_skew_group": groups[sk.argmax(axis=1)],
            "min_skew": sk.min(axis=1),
            "min_skew_group": groups[sk.argmin(axis=1)],
            "ndkl": nd,
        }
    )
    if n_perm:
        rng = rng or np.random.default_rng(0)
        null_max = np.empty(n_perm)
        null_nd = np.empty(n_perm)
        for start in range(0, n_perm, 100):  # bounded memory: 100 x n x G booleans at a time
            stop = min(n_perm, start + 100)
            perms = np.argsort(rng.random((stop - start, n)), axis=1)
            r = codes[perms]
            null_max[start:stop] = skew_at_k(r, n_groups, k, q).max(axis=1)
            null_nd[start:stop] = ndkl(r, n_groups, k, q)
        for stat, null in (("max_skew", null_max), ("ndkl", null_nd)):
            obs = out[stat].to_numpy()
            out[f"{stat}_null_mean"] = null.mean()
            out[f"{stat}_null_p95"] = np.quantile(null, 0.95)
            out[f"{stat}_p"] = (1 + (null[None, :] >= obs[:, None] - 1e-12).sum(axis=1)) / (1 + n_perm)
    return out
