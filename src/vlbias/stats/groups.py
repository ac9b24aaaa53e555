"""Per-group means with cluster-bootstrap intervals, disparities between groups, and comparisons of unit groups.

The unit of resampling is the *cluster* (in face audits: the person), never the row (the image): several images of
one person are not independent evidence. With clusters nested in groups (each person in one race x gender group)
the bootstrap is stratified: each replicate draws, within every group, as many clusters as the group has, with
replacement, and a group's replicate mean is the image-weighted mean over the drawn clusters (the ratio estimator
sum(values) / sum(images)). When clusters cross groups (grouping by expression, say), each replicate draws clusters
from all of them at once, so the groups' replicates stay jointly consistent. Intervals are percentile intervals
(:mod:`vlbias.stats.bootstrap`).

:func:`group_means` returns a :class:`GroupStats`, a small MetricFrame-like object: ``frame()`` gives one row per
group and value with the estimate and its interval; ``disparity()`` the largest minus the smallest group (and the
smallest over the largest, at most 1) per value with intervals from the same replicates. :func:`compare_levels` compares groups of *units* (for
example models grouped by their pretraining data) measured on the same rows, resampling clusters jointly across
units.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from vlbias.stats.bootstrap import count_chunks, percentile_interval

_CHUNK = 250  # replicates drawn at once (bounds memory for tens of thousands of clusters)


@dataclass
class GroupStats:
    """Estimates and bootstrap replicates of per-group means of several values."""

    group_columns: list[str]
    groups: pd.DataFrame  # one row per group: its group-column values, n (rows), n_clusters
    values: list[str]
    estimate: np.ndarray  # (G, K)
    replicates: np.ndarray  # (B, G, K); NaN where a group drew no rows (only with crossed clusters)
    confidence: float
    stratified: bool

    def interval(self) -> tuple[np.ndarray, np.ndarray]:
        return percentile_interval(self.replicates, self.confidence)

    def frame(self, scale: float = 1.0, value_name: str = "value") -> pd.DataFrame:
        """One row per group and value: group columns, value, n, n_clusters, estimate, low, high (times ``scale``)."""
        low, high = self.interval()
        G, K = self.estimate.shape
        out = self.groups.loc[self.groups.index.repeat(K)].reset_index(drop=True)
        out.insert(len(self.group_columns), value_name, np.tile(self.values, G))
        out["estimate"] = self.estimate.reshape(-1) * scale
        out["low"] = low.reshape(-1) * scale
        out["high"] = high.reshape(-1) * scale
        return out

    def labels(self) -> list[str]:
        """A readable label per group ("black female")."""
        return [" ".join(str(v) for v in row) for row in self.groups[self.group_columns].itertuples(index=False)]

    def disparity(self, scale: float = 1.0, value_name: str = "value") -> pd.DataFrame:
        """Per value: the groups with the largest and smallest estimate, their difference (largest minus smallest)
        and ratio (smallest over largest, at most 1, as fairlearn's ``demographic_parity_ratio``; 1 when both are
        0), with intervals.

        The two groups are chosen on the estimates; the intervals resample their difference (and ratio) with the
        same replicates, so they describe that contrast, not the range over all groups. Where every group has the
        same estimate no group is largest or smallest: ``max_group`` and ``min_group`` are missing, the difference
        is 0 and the ratio 1, without interval (no contrast was chosen to resample).
        """
        if len(self.groups) < 2:
            return pd.DataFrame()
        labels = self.labels()
        rows = []
        with np.errstate(divide="ignore", invalid="ignore"):
            for k, value in enumerate(self.values):
                est = self.estimate[:, k]
                hi_g, lo_g = int(np.nanargmax(est)), int(np.nanargmin(est))
                if est[hi_g] == est[lo_g]:  # all groups equal: no largest or smallest group to name
                    d_lo = d_hi = r_lo = r_hi = np.array([np.nan])
                    groups = (None, None)
                else:
                    diff = self.replicates[:, hi_g, k] - self.replicates[:, lo_g, k]
                    ratio_rep = self.replicates[:, lo_g, k] / self.replicates[:, hi_g, k]
                    ratio_rep[np.isnan(ratio_rep) & ~np.isnan(diff)] = 1.0  # 0 / 0: both groups at zero
                    d_lo, d_hi = percentile_interval(diff[:, None], self.confidence)
                    r_lo, r_hi = percentile_interval(ratio_rep[:, None], self.confidence)
                    groups = (labels[hi_g], labels[lo_g])
                ratio = est[lo_g] / est[hi_g] if est[hi_g] != 0 else 1.0  # the largest is 0: every group is
                rows.append(
                    {
                        value_name: value,
                        "max_group": groups[0],
                        "max": est[hi_g] * scale,
                        "min_group": groups[1],
                        "min": est[lo_g] * scale,
                        "difference": (est[hi_g] - est[lo_g]) * scale,
                        "difference_low": float(d_lo[0]) * scale,
                        "difference_high": float(d_hi[0]) * scale,
                        "ratio": float(ratio),
                        "ratio_low": float(r_lo[0]),
                        "ratio_high": float(r_hi[0]),
                        "n_groups": len(labels),
                    }
                )
        return pd.DataFrame(rows)


def _as_matrix(values) -> tuple[np.ndarray, list[str]]:
    if isinstance(values, pd.DataFrame):
        return values.to_numpy(dtype=np.float64), [str(c) for c in values.columns]
    if isinstance(values, pd.Series):
        return values.to_numpy(dtype=np.float64)[:, None], [str(values.name or "value")]
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    return arr, [f"v{i}" for i in range(arr.shape[1])]


def group_means(
    values,
    groups: pd.DataFrame | pd.Series | None,
    clusters: Sequence | np.ndarray | pd.Series,
    *,
    n_bootstrap: int = 2000,
    confidence: float = 0.95,
    seed: int | None = 0,
) -> GroupStats:
    """Means of ``values`` (n x K) per group of ``groups`` (n x g columns; None: one group of all rows), with
    cluster-bootstrap percentile intervals; rows whose group is missing are left out.

    Values must be finite (indicators for shares, probabilities, 0/1 correctness for accuracy).
    """
    mat, names = _as_matrix(values)
    n = mat.shape[0]
    if groups is None:
        gframe = pd.DataFrame({"group": np.full(n, "all", dtype=object)})
    elif isinstance(groups, pd.Series):
        gframe = groups.to_frame()
    else:
        gframe = groups
    gframe = gframe.reset_index(drop=True)
    clusters = pd.Series(np.asarray(clusters, dtype=object))
    if len(gframe) != n or len(clusters) != n:
        raise ValueError(f"values ({n} rows), groups ({len(gframe)}) and clusters ({len(clusters)}) must align")
    if not np.all(np.isfinite(mat)):
        raise ValueError("values must be finite; drop the rows without a value first")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie between 0 and 1 (got {confidence})")
    if n_bootstrap < 0:
        raise ValueError("n_bootstrap must be at least 0")
    gcols = list(gframe.columns)
    keep = gframe.notna().all(axis=1).to_numpy() & clusters.notna().to_numpy()
    mat, gframe, clusters = mat[keep], gframe[keep].reset_index(drop=True), clusters[keep].reset_index(drop=True)
    if not len(mat):  # no row has a group: no groups
        empty = pd.DataFrame({**{c: [] for c in gcols}, "n": [], "n_clusters": []})
        return GroupStats(
            gcols, empty, names, np.zeros((0, mat.shape[1])), np.zeros((n_bootstrap, 0, mat.shape[1])), confidence, True
        )

    grouped = gframe.groupby(gcols, sort=True, observed=True, dropna=True)
    gid = grouped.ngroup().to_numpy()
    table = grouped.size().reset_index(name="n")
    G, K = len(table), mat.shape[1]
    cid, _ = pd.factorize(clusters)
    n_clusters_total = int(cid.max()) + 1 if len(cid) else 0

    # per (group, cluster): value sums and row counts
    pair = gid.astype(np.int64) * max(n_clusters_total, 1) + cid
    upair, inverse = np.unique(pair, return_inverse=True)
    sums = np.zeros((len(upair), K))
    np.add.at(sums, inverse, mat)
    counts = np.bincount(inverse, minlength=len(upair)).astype(np.float64)
    pair_group = upair // max(n_clusters_total, 1)
    pair_cluster = upair % max(n_clusters_total, 1)
    table["n_clusters"] = np.bincount(pair_group, minlength=G)
    stratified = len(np.unique(pair_cluster)) == len(pair_cluster)  # every cluster in exactly one group

    estimate = np.zeros((G, K))
    for g in range(G):
        sel = pair_group == g
        estimate[g] = sums[sel].sum(axis=0) / counts[sel].sum()

    rng = np.random.default_rng(seed)
    reps = np.full((n_bootstrap, G, K), np.nan)
    if stratified:
        for g in range(G):
            sel = np.flatnonzero(pair_group == g)
            s, c, start = sums[sel], counts[sel], 0
            for w in count_chunks(rng, len(sel), n_bootstrap, chunk=_CHUNK, sampler="indices"):
                reps[start : start + len(w), g] = (w @ s) / (w @ c)[:, None]
                start += len(w)
    else:
        start = 0
        for w in count_chunks(rng, n_clusters_total, n_bootstrap, chunk=_CHUNK, sampler="indices"):
            b = len(w)
            for g in range(G):
                sel = np.flatnonzero(pair_group == g)
                wg = w[:, pair_cluster[sel]]
                with np.errstate(invalid="ignore", divide="ignore"):
                    den = wg @ counts[sel]
                    reps[start : start + b, g] = np.where(den[:, None] > 0, (wg @ sums[sel]) / den[:, None], np.nan)
            start += b
    return GroupStats(
        group_columns=gcols,
        groups=table,
        values=names,
        estimate=estimate,
        replicates=reps,
        confidence=confidence,
        stratified=stratified,
    )


def compare_levels(
    values: np.ndarray,
    levels: Sequence[str],
    groups: pd.DataFrame | None,
    clusters: Sequence,
    *,
    baseline: str,
    value_names: Sequence[str] | None = None,
    pairs: Sequence[str] | None = None,
    scale: float = 100.0,
    n_bootstrap: int = 2000,
    confidence: float = 0.95,
    seed: int | None = 0,
) -> tuple[pd.DataFrame, GroupStats]:
    """Compare groups of units (e.g. models) measured on the same rows.

    ``values`` is (m units, n rows, K values); ``levels[u]`` is unit u's group (e.g. its pretraining data). For every
    level other than ``baseline``, per row-group and value: the mean over the level's units minus the mean over the
    baseline's units, times ``scale`` (100: percentage points). With ``pairs`` (a key per unit, e.g. the
    architecture) only keys present in both levels count: the difference is taken within each key and then
    averaged over keys, so units that differ in the level alone are compared. Intervals resample clusters (people)
    jointly for all units; they describe uncertainty over people, with the models held fixed.

    Returns the comparison (one row per level, group and value) and the per-unit :class:`GroupStats` (values named
    ``<unit index>|<value>``).
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 3:
        raise ValueError("values must be (units, rows, values)")
    m, n, K = values.shape
    levels = [str(x) for x in levels]
    if len(levels) != m:
        raise ValueError(f"{m} units but {len(levels)} levels")
    if baseline not in levels:
        raise ValueError(f"baseline {baseline!r} is none of the levels {sorted(set(levels))}")
    names = list(value_names) if value_names is not None else [f"v{k}" for k in range(K)]
    flat = values.transpose(1, 0, 2).reshape(n, m * K)
    stats = group_means(flat, groups, clusters, n_bootstrap=n_bootstrap, confidence=confidence, seed=seed)
    est = stats.estimate.reshape(len(stats.groups), m, K)
    rep = stats.replicates.reshape(n_bootstrap, len(stats.groups), m, K)
    base_units = [u for u in range(m) if levels[u] == baseline]
    rows = []
    labels = stats.labels()
    for level in [lv for lv in dict.fromkeys(levels) if lv != baseline]:
        units = [u for u in range(m) if levels[u] == level]
        if pairs is not None:
            keys = [k for k in dict.fromkeys(pairs[u] for u in units) if any(pairs[b] == k for b in base_units)]
            if not keys:
                continue

            def contrast(a: np.ndarray, keys=keys, units=units) -> np.ndarray:
                per_key = [
                    a[..., [u for u in units if pairs[u] == k], :].mean(axis=-2)
                    - a[..., [b for b in base_units if pairs[b] == k], :].mean(axis=-2)
                    for k in keys
                ]
                return np.mean(per_key, axis=0)

            n_pairs = len(keys)
            used = [u for u in units if pairs[u] in keys], [b for b in base_units if pairs[b] in keys]
        else:

            def contrast(a: np.ndarray, units=units) -> np.ndarray:
                return a[..., units, :].mean(axis=-2) - a[..., base_units, :].mean(axis=-2)

            n_pairs = None
            used = units, base_units
        d_est = contrast(est)  # (G, K)
        d_rep = contrast(rep)  # (B, G, K)
        low, high = percentile_interval(d_rep, confidence)
        for g in range(len(stats.groups)):
            for k in range(K):
                rows.append(
                    {
                        "level": level,
                        "baseline": baseline,
                        **{c: stats.groups.iloc[g][c] for c in stats.group_columns},
                        "group": labels[g],
                        "value": names[k],
                        "difference": d_est[g, k] * scale,
                        "low": low[g, k] * scale,
                        "high": high[g, k] * scale,
                        "n_units": len(used[0]),
                        "n_baseline_units": len(used[1]),
                        "n_pairs": n_pairs,
                    }
                )
    stats.values = [f"{u}|{names[k]}" for u in range(m) for k in range(K)]
    return pd.DataFrame(rows), stats
