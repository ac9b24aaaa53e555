"""Paired before/after comparisons: one statistic measured twice on the same units (a model's embeddings without and
with a debiasing transform), with bootstrap intervals for each and for their difference that resample the *same*
units for both.

The unit is what an audit samples: people (the clusters of a face dataset: several images of one person count once)
or stimuli (the target items of an association test). A replicate draws the units once, with replacement, and both
statistics are computed on that one draw, so the interval of the difference holds the units fixed across the two
conditions and describes what the transform changed, not how the two runs' people happened to differ (Efron &
Tibshirani 1993, ch. 13; the paired bootstrap). Draws are counts (:mod:`vlbias.stats.bootstrap`), intervals are
percentile intervals.

- :func:`paired_group_contrasts`: per value column, the mean over all rows, or per group the mean and then the range
  over groups (largest minus smallest group mean, the groups recomputed in each replicate), with clusters resampled
  jointly across groups; the disparity statistic of the zero-shot and perception comparisons.
- :func:`paired_eat`: the association-test effect size d from the per-target associations s(w, A, B), the targets X
  and Y resampled within themselves, the attribute sets held fixed.

Guarantee: with the statistic the same function of the same draw in both conditions, each percentile interval has
the bootstrap's usual coverage for smooth statistics (a mean, a difference of means); the range over groups is not
smooth where two groups tie, and at zero true disparity it is biased upwards (its estimate is at least 0), in both
conditions alike, so its before/after difference stays comparable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from vlbias.stats.bootstrap import count_chunks, percentile_interval, stratified_count_chunks

STATISTICS = ("mean", "range")


@dataclass(frozen=True)
class Paired:
    """Before, after and their difference (after minus before) for K values, each with its replicates."""

    names: list[str]
    before: np.ndarray  # (K,)
    after: np.ndarray  # (K,)
    before_reps: np.ndarray  # (B, K)
    after_reps: np.ndarray  # (B, K)
    confidence: float
    n_units: int

    @property
    def difference(self) -> np.ndarray:
        return self.after - self.before

    def frame(self, scale: float = 1.0) -> pd.DataFrame:
        """One row per value: before, after, difference (after - before), the change of the absolute value
        (``abs_change`` = |after| - |before|), each with its percentile interval (times ``scale``), and that change
        relative to |before| in percent (``relative_change_pct``, not scaled)."""
        out = {"value": self.names}
        pairs = {
            "before": (self.before, self.before_reps),
            "after": (self.after, self.after_reps),
            "difference": (self.after - self.before, self.after_reps - self.before_reps),
            "abs_change": (
                np.abs(self.after) - np.abs(self.before),
                np.abs(self.after_reps) - np.abs(self.before_reps),
            ),
        }
        for name, (est, reps) in pairs.items():
            low, high = percentile_interval(reps, self.confidence) if len(reps) else (np.full(len(est), np.nan),) * 2
            out[name] = est * scale
            out[f"{name}_low"] = np.asarray(low, dtype=float) * scale
            out[f"{name}_high"] = np.asarray(high, dtype=float) * scale
        with np.errstate(invalid="ignore", divide="ignore"):
            rel = 100 * (np.abs(self.after) - np.abs(self.before)) / np.abs(self.before)
            rel_reps = 100 * (np.abs(self.after_reps) - np.abs(self.before_reps)) / np.abs(self.before_reps)
        low, high = (
            percentile_interval(rel_reps, self.confidence) if len(rel_reps) else (np.full(len(rel), np.nan),) * 2
        )
        out["relative_change_pct"] = rel
        out["relative_change_pct_low"] = np.asarray(low, dtype=float)
        out["relative_change_pct_high"] = np.asarray(high, dtype=float)
        out["n_units"] = self.n_units
        return pd.DataFrame(out)

    def aggregate(self, name: str, columns: Sequence[int] | None = None) -> Paired:
        """The mean of the absolute values of some columns (all when None), as one paired value: how large the
        measured bias is overall, before and after, with replicates from the same draws."""
        cols = list(range(len(self.names))) if columns is None else list(columns)

        def agg(a: np.ndarray) -> np.ndarray:
            with np.errstate(invalid="ignore"):
                return np.nanmean(np.abs(a[..., cols]), axis=-1, keepdims=True) if cols else a[..., :0]

        return Paired(
            [name], agg(self.before), agg(self.after), agg(self.before_reps), agg(self.after_reps),
            self.confidence, self.n_units,
        )  # fmt: skip


def _check(before: np.ndarray, after: np.ndarray, confidence: float, n_bootstrap: int) -> None:
    if before.shape != after.shape:
        raise ValueError(f"before {before.shape} and after {after.shape} must have the same shape (the same units)")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie between 0 and 1 (got {confidence})")
    if n_bootstrap < 0:
        raise ValueError("n_bootstrap must be at least 0")


def paired_group_contrasts(
    before,
    after,
    clusters: Sequence | np.ndarray | pd.Series,
    groups: Sequence | np.ndarray | pd.Series | None = None,
    *,
    statistic: str = "range",
    names: Sequence[str] | None = None,
    n_bootstrap: int = 2000,
    confidence: float = 0.95,
    seed: int | None = 0,
) -> Paired:
    """Per value column of ``before`` and ``after`` (n rows x K, the same rows): the mean over all rows
    (``statistic="mean"``, groups ignored) or the range of the group means (``"range"``: max minus min over the
    groups present in the draw), before and after, with cluster-bootstrap replicates that draw the same clusters for
    both. Rows without a group or cluster are left out; a NaN value leaves its row out of that column only."""
    if statistic not in STATISTICS:
        raise ValueError(f"unknown statistic {statistic!r}; use one of {', '.join(STATISTICS)}")
    b = np.asarray(before, dtype=np.float64)
    a = np.asarray(after, dtype=np.float64)
    if b.ndim == 1:
        b, a = b[:, None], a[:, None]
    _check(b, a, confidence, n_bootstrap)
    n, K = b.shape
    cl = pd.Series(np.asarray(clusters, dtype=object))
    if statistic == "range":
        if groups is None:
            raise ValueError("the range over groups needs groups")
        gr = pd.Series(np.asarray(groups, dtype=object))
    else:
        gr = pd.Series(np.full(n, "all", dtype=object))
    if len(cl) != n or len(gr) != n:
        raise ValueError(f"values ({n} rows), clusters ({len(cl)}) and groups ({len(gr)}) must align")
    keep = (cl.notna() & gr.notna()).to_numpy()
    b, a, cl, gr = b[keep], a[keep], cl[keep], gr[keep]
    cid, _ = pd.factorize(cl)
    gid, _ = pd.factorize(gr)
    C, G = (int(cid.max()) + 1, int(gid.max()) + 1) if len(cid) else (0, 0)
    names = list(names) if names is not None else [f"v{k}" for k in range(K)]

    def sums(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(G, C, K) value sums and (G, C, K) row counts per group and cluster (NaN values count nowhere)."""
        ok = ~np.isnan(values)
        s = np.zeros((G, C, K))
        c = np.zeros((G, C, K))
        np.add.at(s, (gid, cid), np.where(ok, values, 0.0))
        np.add.at(c, (gid, cid), ok.astype(np.float64))
        return s, c

    sb, cb = sums(b)
    sa, ca = sums(a)

    def stat(w: np.ndarray, s: np.ndarray, c: np.ndarray) -> np.ndarray:
        """(R, K) statistic for R draws of cluster weights w (R, C)."""
        num = np.einsum("rc,gck->rgk", w, s)
        den = np.einsum("rc,gck->rgk", w, c)
        with np.errstate(invalid="ignore", divide="ignore"):
            means = np.where(den > 0, num / den, np.nan)
            if statistic == "mean":
                return means[:, 0, :]
            present = np.isfinite(means)
            hi = np.where(present, means, -np.inf).max(axis=1)
            lo = np.where(present, means, np.inf).min(axis=1)
            return np.where(present.sum(axis=1) >= 2, hi - lo, np.nan)

    one = np.ones((1, C))
    est_b, est_a = stat(one, sb, cb)[0], stat(one, sa, ca)[0]
    reps_b = np.full((n_bootstrap, K), np.nan)
    reps_a = np.full((n_bootstrap, K), np.nan)
    if C and n_bootstrap:
        rng = np.random.default_rng(seed)
        start = 0
        for w in count_chunks(rng, C, n_bootstrap, chunk=max(1, 2_000_000 // max(1, G * C * K)), sampler="indices"):
            reps_b[start : start + len(w)] = stat(w, sb, cb)
            reps_a[start : start + len(w)] = stat(w, sa, ca)
            start += len(w)
    return Paired(names, est_b, est_a, reps_b, reps_a, confidence, C)


def _d(counts_x: np.ndarray, counts_y: np.ndarray, sx: np.ndarray, sy: np.ndarray) -> np.ndarray:
    """Effect size per draw: weighted means of s over X and Y over the weighted sample SD of s over X ∪ Y."""
    nx, ny = counts_x.sum(axis=1), counts_y.sum(axis=1)
    mx, my = counts_x @ sx / nx, counts_y @ sy / ny
    n = nx + ny
    m = (counts_x @ sx + counts_y @ sy) / n
    ss = counts_x @ (sx**2) + counts_y @ (sy**2) - n * m**2
    with np.errstate(invalid="ignore", divide="ignore"):
        sd = np.sqrt(np.maximum(ss, 0) / (n - 1))
        return np.where(sd > 1e-12 * np.maximum(1.0, np.abs(m)), (mx - my) / sd, np.nan)


def paired_eat(
    s_before_x,
    s_before_y,
    s_after_x,
    s_after_y,
    *,
    n_bootstrap: int = 2000,
    confidence: float = 0.95,
    seed: int | None = 0,
) -> Paired:
    """The effect size d = (mean_X s - mean_Y s) / sd_{X ∪ Y} s (Caliskan et al. 2017, sample SD) before and after,
    from the per-target associations s(w, A, B) of the same targets, with replicates that resample X and Y within
    themselves, the same draw for both (the attribute sets A and B are held fixed: s already averages over them)."""
    bx, by = np.asarray(s_before_x, float), np.asarray(s_before_y, float)
    ax, ay = np.asarray(s_after_x, float), np.asarray(s_after_y, float)
    _check(bx, ax, confidence, n_bootstrap)
    _check(by, ay, confidence, n_bootstrap)
    one_x, one_y = np.ones((1, len(bx))), np.ones((1, len(by)))
    est_b, est_a = _d(one_x, one_y, bx, by), _d(one_x, one_y, ax, ay)
    reps_b = np.full((n_bootstrap, 1), np.nan)
    reps_a = np.full((n_bootstrap, 1), np.nan)
    if n_bootstrap:
        rng = np.random.default_rng(seed)
        start = 0
        for wx, wy in stratified_count_chunks(rng, [len(bx), len(by)], n_bootstrap):
            reps_b[start : start + len(wx), 0] = _d(wx, wy, bx, by)
            reps_a[start : start + len(wx), 0] = _d(wx, wy, ax, ay)
            start += len(wx)
    return Paired(["effect_size"], est_b, est_a, reps_b, reps_a, confidence, len(bx) + len(by))


def stack(parts: Sequence[Paired]) -> Paired:
    """Several paired values as one (their replicates side by side, e.g. the rows of an EAT battery, each drawn
    independently), so :meth:`Paired.aggregate` can summarise them."""
    if not parts:
        raise ValueError("nothing to stack")
    return Paired(
        [n for p in parts for n in p.names],
        np.concatenate([p.before for p in parts]),
        np.concatenate([p.after for p in parts]),
        np.concatenate([p.before_reps for p in parts], axis=1),
        np.concatenate([p.after_reps for p in parts], axis=1),
        parts[0].confidence,
        sum(p.n_units for p in parts),
    )
