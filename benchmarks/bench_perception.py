"""Analysis cost of the perception audit on a CausalFace-sized design, against the straightforward ways to do it.

Everything here runs on synthetic scale scores for a full CausalFace grid (every seed: 6 race x gender versions of
10 age, 8 lighting, 5 pose and 10 smiling levels = 198 images), so it times the statistics only (the encoder's
cost is benchmarked in bench_encode.py). Each vlbias path is timed against a baseline measured in the same run:

- pair sampling (7 dimensions x 1000 pairs): vlbias' partner index vs the study's per-pair ``DataFrame.query``
  (timed on 100 pairs per dimension and scaled to 1000);
- variance shares (8 scales, 7 factors, identity effects): the sufficient-statistics path (all 2^7 subset
  regressions from per-identity Gram blocks, identity effects by block elimination) vs 2^7 statsmodels OLS fits
  with identity dummies per scale; then the 1000-resample cluster bootstrap, which the baseline would repeat
  1000 times;
- level curves with 1000 bootstrap resamples, retrieval skew (3 groupings x 55 rankings, 1000 random rankings).

    python benchmarks/bench_perception.py              # 60 seeds (11,880 images)
    python benchmarks/bench_perception.py --seeds 200
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np
import pandas as pd

from vlbias.datasets.causalface import LEVELS
from vlbias.stats import perception as sp
from vlbias.stats import skew as sk

SCALES = ["warm", "competent", "agency+", "agency-", "beliefs+", "beliefs-", "communion+", "communion-"]


def design(n_seeds: int, rng) -> tuple[pd.DataFrame, np.ndarray]:
    rows = []
    for seed, race, gender in itertools.product(range(n_seeds), ("asian", "black", "white"), ("female", "male")):
        for attr, levels in LEVELS.items():
            for lv in levels:
                rows.append((f"seed_{seed}", race, gender, attr, lv))
    d = pd.DataFrame(rows, columns=["identity", "race", "gender", "subset", "level"])
    for a in LEVELS:
        d[a] = np.where(d["subset"] == a, d["level"], np.nan)
    d["group"] = d["race"] + " " + d["gender"]
    ident = rng.normal(size=n_seeds)[d["identity"].str[5:].astype(int)]
    smile = np.nan_to_num(d["smiling"].to_numpy()) * 0.8
    y = np.column_stack([ident + smile * (1 + 0.1 * j) + rng.normal(0, 1, len(d)) for j in range(len(SCALES))])
    return d, y


def study_pairs(d: pd.DataFrame, by: str, n: int, rng) -> None:
    """The study's sampler: draw a first image, then query the frame for its partners, for every pair."""
    attrs = list(LEVELS)
    match = (
        ["identity", "race", "gender"]
        if by in attrs
        else [c for c in ("identity", "race", "gender") if c != by] + attrs
    )
    sub = d[d[by].notna()]
    for _ in range(n):
        first = sub.iloc[int(rng.integers(len(sub)))]
        mask = sub[by] != first[by]
        for c in match:
            mask &= (sub[c] == first[c]) | (sub[c].isna() & pd.isna(first[c]))
        cand = sub[mask]
        if by in ("age", "smiling"):
            cand = cand[(cand[by] - first[by]).abs() > 1.1]
        cand.iloc[int(rng.integers(len(cand)))]


def clock(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=60)
    ap.add_argument("--bootstrap", type=int, default=1000)
    args = ap.parse_args()
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    d, y = design(args.seeds, rng)
    print(f"CausalFace-sized design: {args.seeds} seeds, {len(d):,} images, {len(SCALES)} scales")
    attrs = list(LEVELS)
    dims = ["lighting", "pose", "smiling", "identity", "age", "gender", "race"]
    rows = []
    with threadpool_limits(limits=1, user_api="blas"):

        def ours_pairs():
            for dim in dims:
                match = (
                    ["identity", "race", "gender"]
                    if dim in attrs
                    else [c for c in ("identity", "race", "gender") if c != dim] + attrs
                )
                sp.sample_pairs(
                    d, dim, match, 1000, sp.dimension_rng(0, dim), 1.1 if dim in ("age", "smiling") else None
                )

        t_ours = clock(ours_pairs)
        t_study = clock(lambda: [study_pairs(d, dim, 100, np.random.default_rng(1)) for dim in dims]) * 10
        rows.append(("pair sampling, 7 x 1000 pairs", t_study, t_ours))

        factors = {"identity": d["identity"].to_numpy(), "race": d["race"].to_numpy(), "gender": d["gender"].to_numpy()}
        factors.update({a: d[a].to_numpy() for a in attrs})
        cov = {"subset": d["subset"].to_numpy()}
        kw = dict(covariates=cov, clusters=d["identity"].to_numpy(), absorb="identity", outcomes=SCALES)
        t_point = clock(lambda: sp.variance_shares(y, factors, n_bootstrap=0, **kw))

        def naive_point():
            import statsmodels.api as sm

            blocks = {
                name: pd.get_dummies(pd.Series(v).astype(str), drop_first=True, dtype=float).to_numpy()
                for name, v in factors.items()
            }
            base = pd.get_dummies(d["subset"], drop_first=True, dtype=float).to_numpy()
            for j in range(y.shape[1]):
                for k in range(len(blocks) + 1):
                    for s in itertools.combinations(blocks, k):
                        x = np.column_stack([np.ones(len(d)), base, *[blocks[b] for b in s]])
                        _ = sm.OLS(y[:, j], x).fit().rsquared

        t_naive = clock(naive_point)
        rows.append(("variance shares, point estimate (8 scales x 128 fits)", t_naive, t_point))
        t_boot = clock(
            lambda: sp.variance_shares(y, factors, n_bootstrap=args.bootstrap, rng=np.random.default_rng(0), **kw)
        )
        rows.append((f"variance shares + {args.bootstrap} bootstrap resamples", t_naive * (1 + args.bootstrap), t_boot))

        frame = d[["identity", "group"]].assign(x=d["smiling"])
        for j, s in enumerate(SCALES):
            frame[s] = y[:, j]
        frame = frame[frame["x"].notna()]
        t_curves = clock(
            lambda: sp.level_curves(
                frame,
                SCALES,
                x="x",
                group="group",
                cluster="identity",
                n_bootstrap=args.bootstrap,
                rng=np.random.default_rng(0),
            )
        )
        rows.append((f"level curves over smiling, {args.bootstrap} resamples", np.nan, t_curves))
        scores = rng.normal(size=(len(d), 55))

        def skew_all():
            for col in ("race", "gender", "group"):
                labels = d[col].to_numpy()
                keep = sk.balanced_subsample(labels, np.random.default_rng(0))
                sk.ranking_skew(scores[keep], labels[keep], k=1000, n_perm=1000, rng=np.random.default_rng(0))

        rows.append(("retrieval skew, 3 x 55 rankings, 1000 random rankings", np.nan, clock(skew_all)))

    print(f"\n{'step':58s} {'baseline s':>11s} {'vlbias s':>9s} {'speed-up':>9s}")
    for name, base, ours in rows:
        ratio = f"{base / ours:,.0f}x" if np.isfinite(base) else ""
        b = f"{base:,.1f}" if np.isfinite(base) else "-"
        print(f"{name:58s} {b:>11s} {ours:9.2f} {ratio:>9s}")


if __name__ == "__main__":
    main()
