"""Retrieval skew of a ranking over groups: Skew@k, MaxSkew@k, MinSkew@k and NDKL.

Definitions of Geyik, Ambler & Kenthapadi (KDD 2019), as used for CLIP by Berg et al. (AACL 2022, "A prompt array
keeps the bias away"). A ranking tau lists items best first; each item belongs to one of G groups; the target
distribution q over groups is uniform unless given.

- ``Skew_g@k = ln(p_g(k) / q_g)``, where p_g(k) is the share of group g among the top k. Positive: g is
  over-represented in the top k; 0: represented as the target says; -inf: absent.
- ``MaxSkew@k = max_g Skew_g@k`` (>= 0 whenever q sums to 1), ``MinSkew@k = min_g Skew_g@k``.
- ``NDKL = (1/Z) sum_{i=1..k} KL(p(i) || q) / log2(i + 1)``, ``Z = sum_{i=1..k} 1 / log2(i + 1)``: the divergence
  of every prefix's group distribution from the target, discounted by rank (natural logarithm, 0 ln 0 = 0).
  vlbias evaluates it over the top k by default, the same k as MaxSkew; Hausladen et al. (2025) sum the whole
  ranking (``ndkl_depth=None`` in :func:`ranking_skew`).

Both are 0 for a ranking that follows the target exactly and grow with its bias. Because even a random ranking
of a balanced set deviates from the target by chance, :func:`ranking_skew` also reports the distribution of both
statistics under random rankings of the same set (the null), and the share of random rankings at least as skewed.
"""

from __future__ import annotations

import warnings

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


def cell_subsample(first: np.ndarray, second: np.ndarray, seed: int) -> np.ndarray:
    """Hausladen et al.'s balanced set (``analysis/tab_S3_skew_gen.py:22-34`` and ``tab_S3_ndkl_gen.py:16-28`` of
    carinahausladen/clip-face-bias at a2daa85): row positions, in the study's order.

    m = n // (number of values of ``first`` x number of values of ``second``); for every cell (each value of
    ``first`` in order of first appearance, then each value of ``second`` in order of first appearance over all
    rows) the rows that pandas' ``cell.sample(n=min(m, len(cell)), random_state=seed)`` picks: a fresh
    ``numpy.random.RandomState(seed)``'s ``permutation(len(cell))[:size]`` of the cell's rows in row order. Cells
    follow each other; within a cell, rows come in drawn order. A cell smaller than m gives all its rows, so the
    set is balanced only as far as the cells allow.
    """
    first, second = np.asarray(first, dtype=object), np.asarray(second, dtype=object)
    a_values, b_values = pd.unique(first), pd.unique(second)
    m = len(first) // (len(a_values) * len(b_values)) if len(first) else 0
    out = []
    for a in a_values:
        for b in b_values:
            cell = np.flatnonzero((first == a) & (second == b))
            if len(cell):
                out.append(cell[np.random.RandomState(seed).permutation(len(cell))[: min(m, len(cell))]])
    return np.concatenate(out) if out else np.empty(0, dtype=np.int64)


def ranking_skew(
    scores: np.ndarray,
    labels: np.ndarray,
    *,
    k: int = 1000,
    names: list[str] | None = None,
    target: np.ndarray | None = None,
    n_perm: int = 1000,
    rng: np.random.Generator | None = None,
    ndkl_depth: int | None = -1,
) -> pd.DataFrame:
    """Skew of the rankings that sort items by each column of ``scores`` (highest first) over ``labels``' groups.

    ``scores`` is (n,) or (n, w): one ranking per column (named by ``names``). Ties keep the input order.
    ``ndkl_depth``: how many positions NDKL sums: -1 the top k (as MaxSkew@k), None the whole ranking.
    Returns one row per ranking: ``k`` (as asked) and ``k_used`` (at most n: the top k of n < k items are all n),
    ``max_skew`` and its group, ``min_skew`` and its group, ``ndkl`` and ``ndkl_depth`` (the positions it sums),
    and from ``n_perm`` random rankings of the same items: the null mean and 95th percentile of each statistic and
    the permutation p-value ``(1 + #{null >= observed}) / (1 + n_perm)``. With ``k_used = n`` the top k is the whole
    set, the same for every ranking: MaxSkew then measures the set, not the ranking (0 for a balanced set).
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
    asked, k = k, min(k, n)
    depth = k if ndkl_depth == -1 else n if ndkl_depth is None else min(ndkl_depth, n)
    names = names or [str(i) for i in range(scores.shape[1])]
    order = np.argsort(-scores, axis=0, kind="stable")  # (n, w)
    ranked = codes[order].T  # (w, n)
    sk = skew_at_k(ranked, n_groups, k, q)  # (w, G)
    nd = ndkl(ranked, n_groups, depth, q)
    out = pd.DataFrame(
        {
            "ranking": names,
            "k": asked,
            "k_used": k,
            "n_items": n,
            "n_groups": n_groups,
            "max_skew": sk.max(axis=1),
            "max_skew_group": groups[sk.argmax(axis=1)],
            "min_skew": sk.min(axis=1),
            "min_skew_group": groups[sk.argmin(axis=1)],
            "ndkl": nd,
            "ndkl_depth": depth,
        }
    )
    if n_perm:
        rng = rng or np.random.default_rng(0)
        null_max = np.empty(n_perm)
        null_nd = np.empty(n_perm)
        chunk = max(1, min(100, 5_000_000 // (max(depth, k) * n_groups)))  # bounded memory (chunk x depth x G)
        for start in range(0, n_perm, chunk):
            stop = min(n_perm, start + chunk)
            perms = np.argsort(rng.random((stop - start, n)), axis=1)
            r = codes[perms]
            null_max[start:stop] = skew_at_k(r, n_groups, k, q).max(axis=1)
            null_nd[start:stop] = ndkl(r, n_groups, depth, q)
        for stat, null in (("max_skew", null_max), ("ndkl", null_nd)):
            obs = out[stat].to_numpy()
            out[f"{stat}_null_mean"] = null.mean()
            out[f"{stat}_null_p95"] = np.quantile(null, 0.95)
            out[f"{stat}_p"] = (1 + (null[None, :] >= obs[:, None] - 1e-12).sum(axis=1)) / (1 + n_perm)
    return out


def resampled_skew(
    scores: np.ndarray,
    labels: np.ndarray,
    clusters: np.ndarray,
    *,
    k: int,
    groups: np.ndarray | None = None,
    target: str = "uniform",
    ndkl_depth: int | None = -1,
    n_bootstrap: int = 1000,
    seed: int | None = 0,
    draws: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Bootstrap replicates of MaxSkew@k, MinSkew@k and NDKL of the ranking of items by ``scores`` (highest first)
    over ``labels``' groups, resampling ``clusters`` (a counterfactual set, a person) with replacement.

    A replicate draws as many clusters as there are, with replacement; every item of a cluster drawn c times enters
    the ranking c times (its copies adjacent, as equal scores keep their order), so the replicate ranks the items of
    the drawn clusters exactly as :func:`ranking_skew` ranks a pool that holds them. Its top k is the first k
    positions (all of them, when the replicate holds fewer); NDKL sums ``ndkl_depth`` positions (-1: k; None: the
    whole ranking). ``groups``: the groups of the estimate (default: those in ``labels``); ``target``: ``uniform``
    (every group 1/G) or ``pool`` (each group's share of the replicate's pool; a group the replicate lacks then
    takes no part in its MaxSkew and MinSkew). With every cluster drawn once, the values are :func:`ranking_skew`'s.

    ``draws``: the replicates' cluster counts, ``(B, n_clusters)`` in the order of the sorted cluster names,
    instead of random draws (for checks by hand).

    Returns arrays of ``n_bootstrap`` (or B) replicates: ``max_skew``, ``min_skew``, ``ndkl``.
    """
    from vlbias.stats.bootstrap import count_chunks

    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels)
    groups = np.unique(labels) if groups is None else np.asarray(groups)
    n_groups = len(groups)
    codes = np.searchsorted(groups, labels)
    _, cid = np.unique(np.asarray(clusters, dtype=object).astype(str), return_inverse=True)
    n, n_clusters = len(scores), int(cid.max()) + 1 if len(cid) else 0
    order = np.argsort(-scores, kind="stable")
    codes_s, cl_s = codes[order], cid[order]
    onehot = (codes_s[:, None] == np.arange(n_groups)).astype(np.float64)
    depth_max = k if ndkl_depth == -1 else n * n_clusters if ndkl_depth is None else ndkl_depth
    if draws is not None:
        draws = np.asarray(draws, dtype=np.float64)
        n_bootstrap = len(draws)
    out = {name: np.full(n_bootstrap, np.nan) for name in ("max_skew", "min_skew", "ndkl")}
    if not n_bootstrap or not n:
        return out
    start = 0
    chunk = max(1, 2_000_000 // (min(depth_max, 2 * n) * n_groups + n))
    if draws is None:
        chunks = count_chunks(np.random.default_rng(seed), n_clusters, n_bootstrap, chunk=chunk)
    else:
        chunks = (draws[i : i + chunk] for i in range(0, len(draws), chunk))
    for counts in chunks:
        b = len(counts)
        w = counts[:, cl_s]  # (b, n) copies of each ranked item
        cw = np.cumsum(w, axis=1)
        total = cw[:, -1]
        kb = np.minimum(k, total)
        take = np.clip(kb[:, None] - (cw - w), 0, w)  # copies of each item within the top k
        p = (take @ onehot) / kb[:, None]
        q = np.full((b, n_groups), 1.0 / n_groups) if target == "uniform" else (w @ onehot) / total[:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            sk = np.where(q > 0, np.log(p / q), np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            out["max_skew"][start : start + b] = np.nanmax(sk, axis=1)
            out["min_skew"][start : start + b] = np.nanmin(sk, axis=1)
        # NDKL: the group at each position 1..depth of each replicate (positions past its pool hold none)
        depth = int(min(depth_max, total.max()))
        db = np.minimum(depth_max, total)
        big = int(max(total.max(), depth)) + 1
        rows = np.arange(b)[:, None]
        flat = (cw + rows * big).ravel()
        at = np.searchsorted(flat, (np.arange(depth)[None, :] + rows * big).ravel(), side="right")
        item = at.reshape(b, depth) - rows * n
        valid = np.arange(depth)[None, :] < db[:, None]
        pos_codes = np.where(valid, codes_s[np.minimum(item, n - 1)], n_groups)
        prefix = np.cumsum(pos_codes[..., None] == np.arange(n_groups), axis=1) / np.arange(1, depth + 1)[:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            kl = np.where(prefix > 0, prefix * np.log(prefix / q[:, None, :]), 0.0).sum(axis=2)
        disc = (1.0 / np.log2(np.arange(2, depth + 2)))[None, :] * valid
        out["ndkl"][start : start + b] = (kl * disc).sum(axis=1) / disc.sum(axis=1)
        start += b
    return out
