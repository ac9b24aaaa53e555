"""Statistics of the social-perception probe (Hausladen, Knott, Camerer & Perona, FAccT 2025), on plain arrays.

Scores
    :func:`template_mean` averages cosine similarities over prompt templates (an average of similarities, as the
    study does, not the similarity to an averaged text embedding); :func:`delta` turns them into Delta scores,
    ``100 * (cos(image, word) - cos(image, neutral))``, or the relative variant
    ``100 * (cos - neutral) / neutral`` (percent of the neutral similarity).

Factor effects (the study's experiment)
    :func:`sample_pairs` draws random pairs of images that differ in one dimension only; the absolute change of a
    score within such pairs measures how much that dimension moves it. :func:`effect_summary` ranks dimensions by
    the median change, with an interval for the median (distribution-free per scale; a bootstrap of pairs where
    a pair gives several values, as when the scales are pooled); :func:`pairwise_mannwhitney` compares
    dimensions with two-sided Mann-Whitney U tests.

Variance shares (beyond the study)
    :func:`variance_shares` regresses each score on categorical factors (the six face attributes and the identity)
    by least squares and splits the explained variance among them with the LMG / Shapley decomposition: a factor's
    share is its increase in R^2 when it joins the model, averaged over every order in which the factors can
    enter (Lindeman, Merenda & Gold 1980; Groemping 2006). The shares are non-negative, do not depend on an
    arbitrary order (unlike sequential sums of squares), add up to the model's R^2, and in a balanced orthogonal
    design equal each factor's own sum of squares; correlated factors split what they explain together equally.
    Intervals are percentile intervals of a cluster bootstrap that resamples identities (never images).

Level curves, markedness
    :func:`level_curves` (group means per level with t intervals across identities, quadratic fits with
    cluster-robust intervals, and which group is most extreme, with its bootstrap probability) and
    :func:`group_shares` (a share per group with a cluster-bootstrap interval).
"""

from __future__ import annotations

import itertools
import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse, stats

from vlbias.errors import VlbiasError
from vlbias.stats.bootstrap import count_chunks, percentile_interval

# ---------------------------------------------------------------------------------------------------- scores


def template_mean(sims: np.ndarray, n_templates: int) -> np.ndarray:
    """(n, w*t) similarities laid out word-major (word 0 with every template, then word 1, ...) -> (n, w) means."""
    sims = np.asarray(sims, dtype=np.float64)
    n, wt = sims.shape
    if wt % n_templates:
        raise ValueError(f"{wt} prompt columns are not a whole number of {n_templates} templates")
    return sims.reshape(n, wt // n_templates, n_templates).mean(axis=2)


def delta(cos_words: np.ndarray, cos_neutral: np.ndarray, relative: bool = False) -> np.ndarray:
    """Delta scores in percent: 100 (cos - neutral), or 100 (cos - neutral) / neutral with ``relative``."""
    cos_words = np.asarray(cos_words, dtype=np.float64)
    neutral = np.asarray(cos_neutral, dtype=np.float64).reshape(-1, *([1] * (cos_words.ndim - 1)))
    diff = cos_words - neutral
    return 100.0 * (diff / neutral if relative else diff)


# ---------------------------------------------------------------------------------------------------- pairs


def dimension_rng(seed: int, dimension: str) -> np.random.Generator:
    """A generator for one dimension: the same pairs for a dimension whatever other dimensions are drawn."""
    return np.random.default_rng([int(seed), zlib.crc32(dimension.encode())])


@dataclass
class Pairs:
    first: np.ndarray  # row positions
    second: np.ndarray
    n_candidates: int  # rows that vary in the dimension
    n_without_partner: int  # candidates that no image differs from in this dimension only (never drawn first)


def _codes(frame: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """One integer per row for the combination of ``columns`` (missing values equal each other)."""
    if not columns:
        return np.zeros(len(frame), dtype=np.int64)
    parts = [pd.factorize(frame[c], use_na_sentinel=False)[0].astype(np.int64) for c in columns]
    codes = parts[0]
    for p in parts[1:]:
        codes = codes * (int(p.max()) + 1) + p
    return pd.factorize(codes)[0].astype(np.int64)


def _partners(
    design: pd.DataFrame, dimension: str, match: Sequence[str], min_gap: float | None
) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """The candidates (rows where ``dimension`` is set, in row order) and, for each that has any, its partners in
    row order: the candidates that agree with it on ``match`` (missing equals missing) and differ from it in the
    dimension, by more than ``min_gap`` when given."""
    values = design[dimension]
    cand = np.flatnonzero(values.notna().to_numpy())
    if len(cand) == 0:
        return cand, {}
    vcodes = pd.factorize(values, use_na_sentinel=True)[0]
    numeric = min_gap is not None
    vnum = values.to_numpy(dtype=np.float64) if numeric else None
    groups = _codes(design.iloc[cand], list(match))
    order = np.argsort(groups, kind="stable")
    bounds = np.flatnonzero(np.diff(groups[order])) + 1
    partner_lists: dict[int, np.ndarray] = {}
    for members in np.split(cand[order], bounds):
        vc = vcodes[members]
        ok = vc[:, None] != vc[None, :]
        if numeric:
            ok &= np.abs(vnum[members][:, None] - vnum[members][None, :]) > min_gap
        for i, row in enumerate(members):
            partners = members[ok[i]]
            if len(partners):
                partner_lists[int(row)] = partners
    return cand, partner_lists


def sample_pairs(
    design: pd.DataFrame,
    dimension: str,
    match: Sequence[str],
    n: int,
    rng: np.random.Generator,
    min_gap: float | None = None,
) -> Pairs:
    """Random pairs of rows that differ in ``dimension`` and agree on every column of ``match``.

    As in the study: the first image is drawn uniformly from the rows where ``dimension`` is set (not missing),
    the second uniformly from the rows that agree with it on ``match`` (missing equals missing), have the
    dimension set and differ from it there, by more than ``min_gap`` when given (numeric dimensions). Rows that
    no row can pair with are not drawn first (the study's code would fail on them); their number is returned.
    Pairs are drawn with replacement: ``n`` pairs, each independent.
    """
    if n < 1:
        raise ValueError("n must be at least 1")
    cand, partner_lists = _partners(design, dimension, match, min_gap)
    if len(cand) == 0:
        return Pairs(np.empty(0, int), np.empty(0, int), 0, 0)
    eligible = np.array(sorted(partner_lists), dtype=np.int64)
    if len(eligible) == 0:
        return Pairs(np.empty(0, int), np.empty(0, int), len(cand), len(cand))
    first = rng.choice(eligible, size=n, replace=True)
    u = rng.random(n)
    second = np.array([partner_lists[int(f)][int(x * len(partner_lists[int(f)]))] for f, x in zip(first, u)])
    return Pairs(first, second, len(cand), len(cand) - len(eligible))


def sample_pairs_hausladen2025(
    design: pd.DataFrame,
    plan: Sequence[tuple[str, Sequence[str], float | None]],
    n: int,
    seed: int,
    keys: Sequence[str] | None = None,
) -> dict[str, Pairs]:
    """The study's pair sampler (Hausladen et al. 2025, ``analysis/fig_2.py:49-106`` of carinahausladen/clip-face-bias
    at a2daa85): for each ``(dimension, match, min_gap)`` of ``plan`` in turn, ``n`` pairs from one legacy
    ``numpy.random.RandomState(seed)`` shared by all dimensions.

    Each pair: the first row is ``candidates[permutation(len(candidates))[0]]`` (what pandas' ``DataFrame.sample()``
    draws from numpy's global legacy generator: ``choice(len, 1, replace=False)``, which is the first element of a
    permutation); the second is drawn the same way from its partners in row order (the candidates that agree with
    it on ``match``, missing equal to missing, and differ in the dimension, by more than ``min_gap`` when given).
    The pairs depend on the row order as well as on the seed: the same images in another order give other pairs.
    A first row without a partner stops the study's code; here it raises a VlbiasError naming it (``keys``).
    """
    if n < 1:
        raise ValueError("n must be at least 1")
    rs = np.random.RandomState(seed)
    out: dict[str, Pairs] = {}
    for dimension, match, min_gap in plan:
        cand, partner_lists = _partners(design, dimension, match, min_gap)
        if len(cand) == 0:
            out[dimension] = Pairs(np.empty(0, int), np.empty(0, int), 0, 0)
            continue
        first = np.empty(n, dtype=np.int64)
        second = np.empty(n, dtype=np.int64)
        for i in range(n):
            f = int(cand[rs.permutation(len(cand))[0]])
            partners = partner_lists.get(f)
            if partners is None:
                name = keys[f] if keys is not None else f"row {f}"
                raise VlbiasError(
                    f"the study's pair sampler drew {name} for {dimension}, and no image differs from it in "
                    f"{dimension} alone (the study's code stops there too); complete the dataset, or use "
                    "pair_sampler: per-dimension"
                )
            first[i], second[i] = f, partners[rs.permutation(len(partners))[0]]
        out[dimension] = Pairs(first, second, len(cand), len(cand) - len(partner_lists))
    return out


# ---------------------------------------------------------------------------------------------------- effects


def median_ci(x: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Distribution-free confidence interval for a median from order statistics (binomial, at least the level)."""
    x = np.sort(np.asarray(x, dtype=np.float64))
    x = x[np.isfinite(x)]
    n = len(x)
    if n == 0:
        return (np.nan, np.nan)
    alpha = 1 - confidence
    lo = int(stats.binom.ppf(alpha / 2, n, 0.5))  # P(B <= lo) >= alpha/2
    # the interval [x_(lo), x_(n-lo+1)] (1-based) covers the median with probability 1 - 2 P(B <= lo - 1)
    lo = max(lo, 1)
    hi = n - lo + 1
    if lo > hi:
        return (float(x[0]), float(x[-1]))
    return (float(x[lo - 1]), float(x[hi - 1]))


def effect_summary(
    changes: pd.DataFrame,
    value: str = "abs_change",
    confidence: float = 0.95,
    *,
    cluster: str | None = "pair",
    n_bootstrap: int = 1000,
    rng: np.random.Generator | None = None,
) -> pd.DataFrame:
    """Per (scale, dimension): n, median with interval, quartiles, mean; rank 1 = largest median within a scale.

    The interval for the median depends on what is independent. Pairs are independent draws of the sampler, so
    where every pair (``cluster``) gives one value (one scale) it is the distribution-free order-statistic interval
    of :func:`median_ci`. Where a pair gives several values (the pooled "all scales" rows: a pair's eight scale
    changes, which move together) that interval would count every value as independent and be too narrow (over 30
    seeds it covered 84% at nominal 95%); there it is the percentile interval of a bootstrap that resamples pairs,
    each with all its values (:func:`cluster_median_ci`; ``n_bootstrap`` resamples, none when 0). ``median_ci_method``
    says which. The target is the median over the sampler's pairs of the images at hand.
    """
    rows = []
    for (scale, dim), g in changes.groupby(["scale", "dimension"], sort=False):
        x = g[value].to_numpy(dtype=np.float64)
        clustered = cluster is not None and cluster in g.columns and g[cluster].duplicated().any()
        if clustered:
            lo, hi = cluster_median_ci(x, g[cluster].to_numpy(), confidence, n_bootstrap, rng)
            method = f"bootstrap of {cluster}s ({n_bootstrap})" if n_bootstrap else "none (n_bootstrap 0)"
        else:
            lo, hi = median_ci(x, confidence)
            method = "order statistics"
        rows.append(
            {
                "scale": scale,
                "dimension": dim,
                "n": len(x),
                "n_clusters": int(g[cluster].nunique()) if cluster is not None and cluster in g.columns else len(x),
                "median": float(np.median(x)),
                "median_ci_low": lo,
                "median_ci_high": hi,
                "median_ci_method": method,
                "q1": float(np.quantile(x, 0.25)),
                "q3": float(np.quantile(x, 0.75)),
                "mean": float(x.mean()),
            }
        )
    out = pd.DataFrame(rows)
    out["rank"] = out.groupby("scale")["median"].rank(ascending=False, method="min").astype(int)
    return out.sort_values(["scale", "rank"], kind="stable").reset_index(drop=True)


def cluster_median_ci(
    x: np.ndarray,
    clusters: np.ndarray,
    confidence: float = 0.95,
    n_bootstrap: int = 1000,
    rng: np.random.Generator | None = None,
) -> tuple[float, float]:
    """Percentile interval for the median of ``x`` from a bootstrap that resamples ``clusters`` with all their values.

    Each resample draws the clusters with replacement (multinomial counts); its median is that of the values it
    holds, each repeated as often as its cluster was drawn (the mean of the two middle order statistics when their
    number is even, as :func:`numpy.median`), computed from the sorted values and cumulative counts without
    building the resample. (nan, nan) when ``n_bootstrap`` is 0.
    """
    x = np.asarray(x, dtype=np.float64)
    if not n_bootstrap or len(x) == 0:
        return (np.nan, np.nan)
    codes, n_cl = cluster_codes(clusters, len(x))
    order = np.argsort(x, kind="stable")
    xs, cs = x[order], codes[order]
    rng = rng or np.random.default_rng(0)
    per_cluster = max(1, len(x) // n_cl)
    medians = []
    chunk = max(1, min(n_bootstrap, 4_000_000 // per_cluster // max(n_cl, 1)))  # cells of (b, n) bounded
    for w in count_chunks(rng, n_cl, n_bootstrap, chunk=chunk):
        cum = np.cumsum(w[:, cs], axis=1)  # (b, n): resampled values up to each sorted value
        total = cum[:, -1]
        lo_k, hi_k = np.floor((total + 1) / 2), np.ceil((total + 1) / 2)  # 1-based middle order statistics
        lo = (cum < lo_k[:, None]).sum(axis=1)  # position of the first sorted value reaching them
        hi = (cum < hi_k[:, None]).sum(axis=1)
        medians.append((xs[lo] + xs[hi]) / 2)
    lo_ci, hi_ci = percentile_interval(np.concatenate(medians), confidence)
    return (float(lo_ci), float(hi_ci))


def pairwise_mannwhitney(samples: dict[str, np.ndarray]) -> pd.DataFrame:
    """Two-sided Mann-Whitney U test for every pair of samples, with Holm-adjusted p-values over the family.

    ``prob_superiority`` is U / (n1 n2) = P(X > Y) + P(X = Y) / 2 for X from the first sample and Y from the
    second (0.5: no difference); ``rank_biserial`` = 2 prob_superiority - 1.
    """
    rows = []
    for a, b in itertools.combinations(samples, 2):
        x, y = np.asarray(samples[a], float), np.asarray(samples[b], float)
        res = stats.mannwhitneyu(x, y, alternative="two-sided")
        ps = float(res.statistic) / (len(x) * len(y))
        rows.append(
            {
                "dimension_a": a,
                "dimension_b": b,
                "n_a": len(x),
                "n_b": len(y),
                "median_a": float(np.median(x)),
                "median_b": float(np.median(y)),
                "u": float(res.statistic),
                "p": float(res.pvalue),
                "prob_superiority": ps,
                "rank_biserial": 2 * ps - 1,
            }
        )
    out = pd.DataFrame(rows)
    if len(out):
        out["p_holm"] = holm(out["p"].to_numpy())
    return out


def level_correlation(
    levels: np.ndarray,
    values: np.ndarray,
    clusters: np.ndarray | None = None,
    *,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    rng: np.random.Generator | None = None,
) -> dict:
    """Pearson's r between an attribute's level and scores pooled over several words, as the study's table S4.

    ``levels`` (n,) gives each image's level and ``values`` (n, m) its scores on m words. As the study's
    ``analysis/tab_S4.py`` (melt, then ``scipy.stats.pearsonr``), the n * m pairs (level_i, value_ij) are one
    sample: ``r`` and ``p`` are pearsonr's on them, and that p counts the pairs as independent (the study's). The
    interval is a percentile interval of a bootstrap that resamples ``clusters`` (identities), each with all its
    images and words, computed from per-cluster sums; none when ``n_bootstrap`` is 0 or there is one cluster.
    """
    import warnings

    x = np.asarray(levels, dtype=np.float64)
    y = np.asarray(values, dtype=np.float64)
    if y.ndim == 1:
        y = y[:, None]
    n, m = y.shape
    cl, n_cl = cluster_codes(clusters, n)
    out = {"n_images": n, "n_words": m, "n_clusters": n_cl, "r": np.nan, "p": np.nan}
    out.update(r_ci_low=np.nan, r_ci_high=np.nan)
    if n < 2 or np.unique(x).size < 2 or np.ptp(y) == 0:
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = stats.pearsonr(np.repeat(x, m), y.reshape(-1))
    out["r"], out["p"] = float(res.statistic), float(res.pvalue)
    if n_bootstrap and n_cl > 1:
        sy = y.sum(axis=1)
        per_image = np.column_stack([np.full(n, float(m)), m * x, m * x * x, sy, (y * y).sum(axis=1), x * sy])
        sums = np.zeros((n_cl, 6))
        np.add.at(sums, cl, per_image)
        boot = []
        for w in count_chunks(rng or np.random.default_rng(0), n_cl, n_bootstrap):
            c, sx, sxx, s_y, syy, sxy = (w @ sums).T
            with np.errstate(invalid="ignore", divide="ignore"):
                boot.append((sxy - sx * s_y / c) / np.sqrt((sxx - sx * sx / c) * (syy - s_y * s_y / c)))
        lo, hi = percentile_interval(np.concatenate(boot), confidence)
        out["r_ci_low"], out["r_ci_high"] = float(lo), float(hi)
    return out


def holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error control; Holm 1979)."""
    p = np.asarray(p, dtype=np.float64)
    m = len(p)
    order = np.argsort(p, kind="stable")
    adj = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out = np.empty(m)
    out[order] = np.minimum(adj, 1.0)
    return out


# ---------------------------------------------------------------------------------------------------- bootstrap


def cluster_codes(clusters: np.ndarray | None, n: int) -> tuple[np.ndarray, int]:
    if clusters is None:
        return np.arange(n), n
    codes = pd.factorize(pd.Series(clusters), use_na_sentinel=False)[0]
    return codes.astype(np.int64), int(codes.max()) + 1


def _cluster_sums(clusters: np.ndarray, n_clusters: int, cells: np.ndarray, n_cells: int, values: np.ndarray):
    """Sparse (n_clusters, n_cells * m) sums of ``values`` (n, m) per cluster and cell."""
    n, m = values.shape
    rows = np.repeat(clusters, m)
    cols = (cells[:, None] * m + np.arange(m)[None, :]).reshape(-1)
    return sparse.csr_matrix((values.reshape(-1), (rows, cols)), shape=(n_clusters, n_cells * m))


def _weighted(w: np.ndarray, mat) -> np.ndarray:
    """(b, n_clusters) weights times a (n_clusters, k) sparse or dense matrix -> (b, k) dense."""
    if sparse.issparse(mat):
        return np.asarray((mat.T @ w.T).T)
    return w @ mat


# ---------------------------------------------------------------------------------------------------- shares


def _dummies(labels, name: str) -> tuple[np.ndarray, list[str]]:
    """Treatment dummies of a categorical (missing = all zero, i.e. at the reference); reference = first level."""
    s = pd.Series(labels)
    levels = [v for v in sorted(s.dropna().unique(), key=_sort_key)]
    cols = [(s == lv).to_numpy(dtype=np.float64) for lv in levels[1:]]
    mat = np.column_stack(cols) if cols else np.zeros((len(s), 0))
    return mat, [f"{name}={_fmt(lv)}" for lv in levels[1:]]


def _sort_key(v):
    return (0, float(v), "") if isinstance(v, (int, float, np.integer, np.floating)) else (1, 0.0, str(v))


def _fmt(v) -> str:
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v)) if abs(v) >= 1 or v == 0 else f"{v:g}"
    return f"{v:g}" if isinstance(v, (float, np.floating)) else str(v)


def variance_shares(
    y: np.ndarray,
    factors: dict[str, np.ndarray],
    *,
    covariates: dict[str, np.ndarray] | None = None,
    clusters: np.ndarray | None = None,
    absorb: str | None = None,
    outcomes: Sequence[str] | None = None,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    rng: np.random.Generator | None = None,
) -> pd.DataFrame:
    """LMG (Shapley) shares of explained variance of each outcome among categorical ``factors``.

    y: (n,) or (n, m) outcomes. factors: name -> (n,) labels, dummy-coded (a missing label counts as the
    factor's reference level: in CausalFace an attribute outside its own folder is at its reference).
    covariates: categorical blocks that are always in the model (e.g. which CausalFace folder an image is from);
    the shares divide the R^2 gained over them. clusters: the bootstrap unit (identity). absorb: the factor whose
    levels are the clusters (the identity effects), which is eliminated exactly by block elimination instead of
    being expanded into dummy columns, so that hundreds of identities cost nothing.

    Returns one row per (outcome, factor): ``r2`` (the factor's LMG contribution to R^2), ``share`` (r2 divided
    by the R^2 all factors add), their bootstrap percentile intervals, ``r2_model`` (R^2 of the full model),
    ``r2_covariates``, ``n`` and ``n_clusters``.
    """
    y = np.asarray(y, dtype=np.float64)
    if y.ndim == 1:
        y = y[:, None]
    n, m = y.shape
    outcomes = list(outcomes) if outcomes is not None else [f"y{j}" for j in range(m)]
    names = list(factors)
    if absorb is not None and absorb not in factors:
        raise ValueError(f"absorb={absorb!r} is not a factor")
    cl, n_cl = cluster_codes(clusters if absorb is None else factors[absorb], n)
    if absorb is not None and clusters is not None:
        other, n_other = cluster_codes(clusters, n)
        n_pairs = len(np.unique(cl * n_other + other))
        if not n_pairs == n_cl == n_other:
            raise ValueError("the absorbed factor must have the clusters as its levels")

    # design of the non-absorbed blocks: intercept, covariates, factors
    blocks: list[tuple[str, np.ndarray]] = [("(intercept)", np.ones((n, 1)))]
    for name, labels in (covariates or {}).items():
        blocks.append((name, _dummies(labels, name)[0]))
    for name in names:
        if name != absorb:
            blocks.append((name, _dummies(factors[name], name)[0]))
    cols: dict[str, np.ndarray] = {}
    start = 0
    for name, mat in blocks:
        cols[name] = np.arange(start, start + mat.shape[1])
        start += mat.shape[1]
    design = np.hstack([mat for _, mat in blocks])
    cells_design, cells = np.unique(design, axis=0, return_inverse=True)
    cells = cells.reshape(-1)
    n_cells = len(cells_design)

    # per-cluster sufficient statistics
    cnt = _cluster_sums(cl, n_cl, cells, n_cells, np.ones((n, 1)))  # (n_cl, n_cells)
    ysum_cell = _cluster_sums(cl, n_cl, cells, n_cells, y)  # (n_cl, n_cells * m)
    cl_n = np.bincount(cl, minlength=n_cl).astype(np.float64)
    cl_y = np.zeros((n_cl, m))
    np.add.at(cl_y, cl, y)
    cl_yy = np.zeros((n_cl, m))
    np.add.at(cl_yy, cl, y * y)
    n_p = cells_design.shape[1]
    dd = np.einsum("kp,kq->kpq", cells_design, cells_design).reshape(n_cells, n_p * n_p)
    if absorb is not None:
        # identity blocks are linear in the cluster weights w: with MD = (cluster x cell counts) D,
        # G_IJ' G_II^-1 G_IJ = sum_c (w_c / n_c) MD_c MD_c', and likewise for the cross products with y
        md = cnt.toarray() @ cells_design  # (n_cl, P)
        h_c = np.einsum("cp,cq->cpq", md, md).reshape(n_cl, n_p * n_p) / cl_n[:, None]
        hy_c = np.einsum("cp,cm->cpm", md, cl_y).reshape(n_cl, n_p * m) / cl_n[:, None]
        s_c = cl_y**2 / cl_n[:, None]

    base_cols = np.concatenate([cols[c] for c in ["(intercept)", *(covariates or {})]])
    n_f = len(names)
    subsets = list(range(1 << n_f))

    def r2_table(w: np.ndarray) -> np.ndarray:
        """(b, 2^F, m) R^2 of every subset of factors (always with the covariates), for weights w (b, n_cl)."""
        b = w.shape[0]
        cc = _weighted(w, cnt)  # (b, n_cells)
        cy = _weighted(w, ysum_cell).reshape(b, n_cells, m)
        yy = w @ cl_yy
        ys = w @ cl_y
        nn = w @ cl_n
        tss = yy - ys**2 / nn[:, None]
        gram = (cc @ dd).reshape(b, n_p, n_p)
        xy = np.einsum("kp,bkm->bpm", cells_design, cy, optimize=True)
        if absorb is not None:
            h = (w @ h_c).reshape(b, n_p, n_p)
            hy = (w @ hy_c).reshape(b, n_p, m)
            s_i = w @ s_c
        out = np.empty((b, len(subsets), m))
        for s in subsets:
            members = [names[i] for i in range(n_f) if s >> i & 1]
            absorbed = absorb in members
            j = [base_cols] + [cols[f] for f in members if f != absorb]
            jj = np.concatenate(j)
            if absorbed:
                jj = jj[jj != 0]  # the identity effects span the intercept
                a = gram[:, jj][:, :, jj] - h[:, jj][:, :, jj]
                c = xy[:, jj] - hy[:, jj]
                explained = s_i.copy()
            else:
                a = gram[:, jj][:, :, jj]
                c = xy[:, jj]
                explained = np.zeros((b, m))
            if len(jj):
                sol = np.linalg.pinv(a, rcond=1e-10, hermitian=True) @ c
                explained = explained + np.einsum("bjm,bjm->bm", c, sol)
            with np.errstate(invalid="ignore", divide="ignore"):
                out[:, s] = 1 - (yy - explained) / tss  # a resample without variance gives NaN
        return out

    weights = {s: _shapley_weights(s, n_f) for s in subsets}

    def lmg(r2: np.ndarray) -> np.ndarray:
        """(b, F, m) contributions from a (b, 2^F, m) R^2 table."""
        contrib = np.zeros((r2.shape[0], n_f, m))
        for i in range(n_f):
            for s in subsets:
                if not s >> i & 1:
                    with np.errstate(invalid="ignore"):
                        contrib[:, i] += weights[s] * (r2[:, s | 1 << i] - r2[:, s])
        return contrib

    point_r2 = r2_table(np.ones((1, n_cl)))
    point = lmg(point_r2)[0]  # (F, m)
    gain = point.sum(axis=0)  # (m,)
    boot_c, boot_s = [], []
    if n_bootstrap:
        rng = rng or np.random.default_rng(0)
        for w in count_chunks(rng, n_cl, n_bootstrap):
            c = lmg(r2_table(w))
            boot_c.append(c)
            with np.errstate(invalid="ignore", divide="ignore"):
                boot_s.append(c / c.sum(axis=1, keepdims=True))
    rows = []
    for j, outcome in enumerate(outcomes):
        for i, name in enumerate(names):
            row = {
                "outcome": outcome,
                "factor": name,
                "r2": point[i, j],
                "share": point[i, j] / gain[j] if gain[j] > 0 else np.nan,
                "r2_model": point_r2[0, -1, j],
                "r2_covariates": point_r2[0, 0, j],
                "n": n,
                "n_clusters": n_cl,
            }
            if boot_c:
                bc = np.concatenate(boot_c)[:, i, j]
                bs = np.concatenate(boot_s)[:, i, j]
                row["r2_ci_low"], row["r2_ci_high"] = (float(v) for v in percentile_interval(bc, confidence))
                row["share_ci_low"], row["share_ci_high"] = (float(v) for v in percentile_interval(bs, confidence))
            rows.append(row)
    out = pd.DataFrame(rows)
    out["rank"] = out.groupby("outcome")["share"].rank(ascending=False, method="min").astype(int)
    return out


def _shapley_weights(s: int, n_f: int) -> float:
    k = bin(s).count("1")
    return math.factorial(k) * math.factorial(n_f - k - 1) / math.factorial(n_f) if k < n_f else 0.0


def regression_coefficients(
    y: np.ndarray,
    factors: dict[str, np.ndarray],
    *,
    covariates: dict[str, np.ndarray] | None = None,
    clusters: np.ndarray | None = None,
    absorb: str | None = None,
    references: dict[str, object] | None = None,
    outcomes: Sequence[str] | None = None,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """OLS (statsmodels) of each outcome on the dummy-coded factors with identity effects (``absorb``).

    Returns every non-reference level's coefficient (the change from the reference level, in the outcome's units)
    with a cluster-robust (by ``clusters``) confidence interval.
    """
    y = np.asarray(y, dtype=np.float64)
    if y.ndim == 1:
        y = y[:, None]
    n, m = y.shape
    outcomes = list(outcomes) if outcomes is not None else [f"y{j}" for j in range(m)]
    references = references or {}
    mats, names, owner, ref_of = [], [], [], {}
    for kind, blocks in (("covariate", covariates or {}), ("factor", factors)):
        for name, labels in blocks.items():
            if name == absorb:
                continue
            s = pd.Series(labels)
            levels = sorted(s.dropna().unique(), key=_sort_key)
            ref = references.get(name, levels[0] if levels else None)
            ref_of[name] = ref
            for lv in levels:
                if lv == ref:
                    continue
                mats.append((s == lv).to_numpy(dtype=np.float64))
                names.append(f"{name}={_fmt(lv)}")
                owner.append((kind, name, lv))
    x = np.column_stack([np.ones(n), *mats])
    if absorb is not None:  # identity effects: demean within identity (Frisch-Waugh), drop the intercept
        codes = pd.factorize(pd.Series(factors[absorb]), use_na_sentinel=False)[0]
        counts = np.bincount(codes).astype(np.float64)

        def within(a):
            sums = np.zeros((counts.size, a.shape[1]))
            np.add.at(sums, codes, a)
            return a - (sums / counts[:, None])[codes]

        x = within(x[:, 1:])
        y_fit = within(y)
    else:
        y_fit = y
    rows = []
    for j, outcome in enumerate(outcomes):
        fit, interval = robust_ols(y_fit[:, j], x, clusters)
        params = np.asarray(fit.params)
        ci = np.asarray(fit.conf_int(alpha=1 - confidence))
        pvals = np.asarray(fit.pvalues)
        offset = 0 if absorb is not None else 1
        for i, (kind, name, lv) in enumerate(owner):
            if kind != "factor":
                continue
            k = i + offset
            rows.append(
                {
                    "outcome": outcome,
                    "factor": name,
                    "level": _fmt(lv),
                    "reference": _fmt(ref_of[name]),
                    "coef": params[k],
                    "ci_low": ci[k, 0],
                    "ci_high": ci[k, 1],
                    "p": pvals[k],
                    "n": n,
                    "interval": interval,
                }
            )
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------------- curves


#: fewest clusters for cluster-robust standard errors; below it they are unreliable (and can be undefined)
MIN_CLUSTERS = 10


def robust_ols(y: np.ndarray, x: np.ndarray, clusters: np.ndarray | None):
    """statsmodels OLS with cluster-robust covariance (by ``clusters``) when there are at least MIN_CLUSTERS
    clusters of which some hold several rows, else heteroskedasticity-robust HC1. Returns (fit, description);
    a rank-deficient design (attributes perfectly confounded in the data) is said so in the description."""
    import warnings

    import statsmodels.api as sm

    model = sm.OLS(y, x)
    groups = pd.factorize(pd.Series(clusters), use_na_sentinel=False)[0] if clusters is not None else None
    n_groups = len(np.unique(groups)) if groups is not None else 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # few clusters or a confounded design: said in the description
        if groups is not None and MIN_CLUSTERS <= n_groups < len(y):
            fit = model.fit(cov_type="cluster", cov_kwds={"groups": groups})
            what = f"cluster-robust ({n_groups} identities)"
        else:
            fit = model.fit(cov_type="HC1")
            few = groups is not None and n_groups < len(y)
            what = f"HC1 (only {n_groups} identities: too few to cluster)" if few else "HC1"
    if model.rank < x.shape[1]:
        what += "; rank-deficient: some attributes are confounded in these data, coefficients not identified"
    return fit, what


def quadratic_fit(x: np.ndarray, y: np.ndarray, clusters: np.ndarray | None, grid: np.ndarray, confidence: float):
    """OLS y = b0 + b1 x + b2 x^2 (statsmodels), cluster-robust; returns (coef table, fitted grid with intervals)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    design = np.column_stack([np.ones_like(x), x, x * x])
    fit, interval = robust_ols(y, design, clusters)
    ci = np.asarray(fit.conf_int(alpha=1 - confidence))
    coefs: dict = {f"b{i}": float(fit.params[i]) for i in range(3)}
    coefs["interval"] = interval
    coefs.update({f"b{i}_ci_low": float(ci[i, 0]) for i in range(3)})
    coefs.update({f"b{i}_ci_high": float(ci[i, 1]) for i in range(3)})
    g = np.column_stack([np.ones_like(grid), grid, grid * grid])
    pred = fit.get_prediction(g).summary_frame(alpha=1 - confidence)
    fitted = pd.DataFrame(
        {"x": grid, "fit": pred["mean"].to_numpy(), "ci_low": pred["mean_ci_lower"].to_numpy()}
    ).assign(ci_high=pred["mean_ci_upper"].to_numpy())
    return coefs, fitted


def level_curves(
    frame: pd.DataFrame,
    values: Sequence[str],
    *,
    x: str,
    group: str,
    cluster: str,
    confidence: float = 0.95,
    n_bootstrap: int = 1000,
    rng: np.random.Generator | None = None,
    grid_points: int = 25,
) -> dict[str, pd.DataFrame]:
    """Curves of each value column over the levels ``x`` per ``group``, and which group is most extreme.

    Returns three tables:

    - ``means``: per (value, group, level): the mean over clusters of each cluster's mean (t interval across
      clusters, so an identity with several images counts once), the number of clusters, and the quadratic fit
      at that level with its interval.
    - ``fits``: per (value, group): b0, b1, b2 of ``value ~ 1 + x + x^2`` (OLS on the images, cluster-robust
      intervals), the vertex, the fitted range over the observed levels, and a grid of fitted points
      (``grid`` holds x, fit, ci_low, ci_high) for plotting.
    - ``extremes``: per (value, group): the mean absolute deviation of the group's level means from the mean of
      all groups at the same levels (in the value's units), its sign (above/below the others on average), the
      rank, and ``p_most_extreme``: the share of cluster-bootstrap resamples in which this group has the largest
      deviation. The group ranked 1 is the most extreme one, found from the data.
    """
    data = frame[[x, group, cluster, *values]].dropna(subset=[x, group])
    levels = np.sort(data[x].unique())
    group_names = sorted(data[group].unique(), key=str)
    grid = np.linspace(levels.min(), levels.max(), grid_points) if len(levels) else np.empty(0)
    # level means: every cluster's mean first (an identity with several images counts once), then across clusters
    per_cluster = data.groupby([group, x, cluster], sort=True)[list(values)].mean()
    agg = per_cluster.groupby(level=[0, 1]).agg(["mean", "std", "count"])
    means_parts = []
    for v in values:
        m, sd, k = agg[(v, "mean")], agg[(v, "std")], agg[(v, "count")]
        half = stats.t.ppf(0.5 + confidence / 2, np.maximum(k - 1, 1)) * sd / np.sqrt(k)
        half = half.where(k >= 2)
        part = pd.DataFrame({"value": v, "mean": m, "ci_low": m - half, "ci_high": m + half, "n_clusters": k})
        means_parts.append(part.rename_axis(["group", "level"]).reset_index())
    means = pd.concat(means_parts, ignore_index=True)[
        ["value", "group", "level", "mean", "ci_low", "ci_high", "n_clusters"]
    ]
    fits_rows, grid_parts, at_levels = [], [], []
    for gname in group_names:
        gdata = data[data[group] == gname]
        if gdata[x].nunique() < 3:
            continue
        lo_x, hi_x = gdata[x].min(), gdata[x].max()
        for v in values:
            coefs, fitted = quadratic_fit(
                gdata[x], gdata[v], gdata[cluster], np.concatenate([levels, grid]), confidence
            )
            fl = fitted.iloc[: len(levels)]
            inside = fl.loc[(fl["x"] >= lo_x) & (fl["x"] <= hi_x), "fit"]
            b1, b2 = coefs["b1"], coefs["b2"]
            fits_rows.append(
                {
                    "value": v,
                    "group": gname,
                    **coefs,
                    "vertex": -b1 / (2 * b2) if b2 != 0 else np.nan,
                    "shape": "U" if b2 > 0 else "inverted U" if b2 < 0 else "line",
                    "fitted_range": float(inside.max() - inside.min()),
                    "n": len(gdata),
                }
            )
            grid_parts.append(fitted.iloc[len(levels) :].assign(value=v, group=gname))
            at_levels.append(
                fl.rename(columns={"x": "level", "ci_low": "fit_ci_low", "ci_high": "fit_ci_high"}).assign(
                    value=v, group=gname
                )
            )
    if at_levels:
        means = means.merge(pd.concat(at_levels), on=["value", "group", "level"], how="left")
    fits = pd.DataFrame(fits_rows)
    grid_frame = pd.concat(grid_parts, ignore_index=True) if grid_parts else pd.DataFrame()
    if len(grid_frame):
        grid_frame = grid_frame[["value", "group", "x", "fit", "ci_low", "ci_high"]]
    extremes = _extremes(
        data,
        values,
        x=x,
        group=group,
        cluster=cluster,
        levels=levels,
        groups=group_names,
        n_bootstrap=n_bootstrap,
        rng=rng,
    )
    return {"means": means, "fits": fits, "grid": grid_frame, "extremes": extremes}


def _deviation(means: np.ndarray) -> np.ndarray:
    """(..., G, L) group-by-level means -> (..., G) mean |mean - mean over groups| over the levels all groups have."""
    centre = np.nanmean(means, axis=-2, keepdims=True)
    with np.errstate(invalid="ignore"):
        return np.nanmean(np.abs(means - centre), axis=-1)


def _extremes(data, values, *, x, group, cluster, levels, groups, n_bootstrap, rng) -> pd.DataFrame:
    g_codes = pd.Categorical(data[group], categories=groups).codes.astype(np.int64)
    l_codes = np.searchsorted(levels, data[x].to_numpy())
    cells = g_codes * len(levels) + l_codes
    n_cells = len(groups) * len(levels)
    cl, n_cl = cluster_codes(data[cluster].to_numpy(), len(data))
    # every cluster's mean per cell counts once (as in the level means)
    vals = data[list(values)].to_numpy(dtype=np.float64)
    key = cl * n_cells + cells
    uniq, inv = np.unique(key, return_inverse=True)
    cell_mean = np.zeros((len(uniq), len(values)))
    np.add.at(cell_mean, inv, vals)
    cell_mean /= np.bincount(inv)[:, None]
    u_cl, u_cell = uniq // n_cells, uniq % n_cells
    sums = _cluster_sums(u_cl, n_cl, u_cell, n_cells, cell_mean)
    cnts = _cluster_sums(u_cl, n_cl, u_cell, n_cells, np.ones((len(uniq), 1)))
    shape = (len(groups), len(levels))

    def group_means(w):
        s = _weighted(w, sums).reshape(w.shape[0], n_cells, len(values))
        c = _weighted(w, cnts).reshape(w.shape[0], n_cells, 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            mu = s / c  # (b, cells, V)
        mu[np.broadcast_to(c == 0, mu.shape)] = np.nan
        return np.moveaxis(mu.reshape(w.shape[0], *shape, len(values)), -1, 1)  # (b, V, G, L)

    # only levels every group has enter the deviation (so a missing level cannot make a group look extreme)
    point_means = group_means(np.ones((1, n_cl)))[0]  # (V, G, L)
    common = ~np.isnan(point_means).any(axis=(0, 1))
    if not common.any():  # no level that every group has: no comparison to make
        return pd.DataFrame(
            columns=[
                "value",
                "group",
                "deviation",
                "direction",
                "mean_difference",
                "rank",
                "p_most_extreme",
                "n_levels",
            ]
        )
    point_dev = _deviation(point_means[..., common])  # (V, G)
    signed = np.nanmean(point_means[..., common] - np.nanmean(point_means[..., common], axis=1, keepdims=True), axis=2)
    wins = np.zeros_like(point_dev)
    n_done = 0
    if n_bootstrap and n_cl > 1:
        rng = rng or np.random.default_rng(0)
        for w in count_chunks(rng, n_cl, n_bootstrap):
            dev = _deviation(group_means(w)[..., common])  # (b, V, G)
            dev = np.where(np.isnan(dev), -np.inf, dev)
            best = dev.argmax(axis=2)  # (b, V)
            for vi in range(len(values)):
                wins[vi] += np.bincount(best[:, vi], minlength=len(groups))
            n_done += w.shape[0]
    rows = []
    for vi, v in enumerate(values):
        order = np.argsort(-point_dev[vi], kind="stable")
        rank = np.empty(len(groups), dtype=int)
        rank[order] = np.arange(1, len(groups) + 1)
        for gi, gname in enumerate(groups):
            rows.append(
                {
                    "value": v,
                    "group": gname,
                    "deviation": point_dev[vi, gi],
                    "direction": "above" if signed[vi, gi] > 0 else "below",
                    "mean_difference": signed[vi, gi],
                    "rank": int(rank[gi]),
                    "p_most_extreme": wins[vi, gi] / n_done if n_done else np.nan,
                    "n_levels": int(common.sum()),
                }
            )
    return pd.DataFrame(rows).sort_values(["value", "rank"], kind="stable").reset_index(drop=True)


# ---------------------------------------------------------------------------------------------------- shares per group


def group_shares(
    indicator: np.ndarray,
    groups: np.ndarray,
    *,
    clusters: np.ndarray | None = None,
    extra: dict[str, np.ndarray] | None = None,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    rng: np.random.Generator | None = None,
) -> pd.DataFrame:
    """Per group: n, the share of rows where ``indicator`` holds, and the mean of each ``extra`` column, each with a
    cluster-bootstrap percentile interval (resampling ``clusters``; rows when none)."""
    ind = np.asarray(indicator, dtype=np.float64)
    n = len(ind)
    labels, g = np.unique(np.asarray(groups).astype(str), return_inverse=True)
    cols = {"share": ind, **{k: np.asarray(v, dtype=np.float64) for k, v in (extra or {}).items()}}
    vals = np.column_stack([np.ones(n), *cols.values()])
    cl, n_cl = cluster_codes(clusters, n)
    sums = _cluster_sums(cl, n_cl, g, len(labels), vals)

    def means(w):
        s = _weighted(w, sums).reshape(w.shape[0], len(labels), vals.shape[1])
        with np.errstate(invalid="ignore", divide="ignore"):
            return s[..., 1:] / s[..., :1]

    point = means(np.ones((1, n_cl)))[0]
    boots = []
    if n_bootstrap:
        rng = rng or np.random.default_rng(0)
        boots = [means(w) for w in count_chunks(rng, n_cl, n_bootstrap)]
    boot = np.concatenate(boots) if boots else None
    counts = np.bincount(g, minlength=len(labels))
    rows = []
    for gi, label in enumerate(labels):
        row = {"group": label, "n": int(counts[gi])}
        for ci, name in enumerate(cols):
            row[name] = point[gi, ci]
            if boot is not None:
                lo, hi = percentile_interval(boot[:, gi, ci], confidence)
                row[f"{name}_ci_low"], row[f"{name}_ci_high"] = float(lo), float(hi)
        rows.append(row)
    return pd.DataFrame(rows)
