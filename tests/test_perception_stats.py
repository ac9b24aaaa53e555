"""Statistics of the perception probe on hand-built arrays: exact values, two independent paths, calibration."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats

from vlbias.stats import perception as sp
from vlbias.stats import skew as sk

# ---------------------------------------------------------------------------------------------------- scores


def test_template_mean_and_delta_exact():
    sims = np.array([[0.2, 0.4, 0.1, 0.3, 0.5, 0.7]])  # words n, a, b (word-major, two templates each)
    cos = sp.template_mean(sims, 2)
    np.testing.assert_allclose(cos, [[0.3, 0.2, 0.6]])
    np.testing.assert_allclose(sp.delta(cos[:, 1:], cos[:, 0]), [[-10.0, 30.0]])
    np.testing.assert_allclose(sp.delta(cos[:, 1:], cos[:, 0], relative=True), [[-100 / 3, 100.0]])
    with pytest.raises(ValueError, match="whole number of 4 templates"):
        sp.template_mean(sims, 4)


# ---------------------------------------------------------------------------------------------------- pairs


def _causal_design(seeds=(1, 2, 3)):
    rows = []
    for s, race, gender in itertools.product(seeds, ("asian", "black", "white"), ("female", "male")):
        for lv in (-2.5, -0.5, 0.0, 0.5, 4.0):
            rows.append(
                {"identity": s, "race": race, "gender": gender, "subset": "smiling", "smiling": lv, "lighting": np.nan}
            )
        for lv in (-1.0, 6.0):
            rows.append(
                {"identity": s, "race": race, "gender": gender, "subset": "lighting", "smiling": np.nan, "lighting": lv}
            )
    return pd.DataFrame(rows)


def test_pairs_differ_in_the_dimension_only_and_respect_the_gap():
    d = _causal_design()
    p = sp.sample_pairs(d, "smiling", ["identity", "race", "gender"], 3000, np.random.default_rng(1), min_gap=1.1)
    a, b = d.iloc[p.first].reset_index(drop=True), d.iloc[p.second].reset_index(drop=True)
    assert (a[["identity", "race", "gender", "subset"]] == b[["identity", "race", "gender", "subset"]]).all(axis=None)
    assert (np.abs(a["smiling"] - b["smiling"]) > 1.1).all()
    # -0.5, 0 and 0.5 have partners (4.0, -2.5); every level can pair with something beyond 1.1 here
    assert p.n_candidates == 18 * 5 and p.n_without_partner == 0
    assert set(a["smiling"]) == {-2.5, -0.5, 0.0, 0.5, 4.0}
    # 0.0 pairs with -2.5 and 4.0 only, uniformly
    zero = b[a["smiling"] == 0.0]["smiling"]
    assert set(zero) == {-2.5, 4.0} and abs((zero == 4.0).mean() - 0.5) < 0.1


def test_pairs_exact_case_with_a_level_that_has_no_partner():
    d = pd.DataFrame({"identity": [1, 1, 1], "smiling": [0.0, 1.0, 2.0]})
    p = sp.sample_pairs(d, "smiling", ["identity"], 500, np.random.default_rng(0), min_gap=1.1)
    assert p.n_without_partner == 1  # level 1.0 is within 1.1 of both others
    assert set(zip(p.first, p.second)) == {(0, 2), (2, 0)}
    with pytest.raises(ValueError):
        sp.sample_pairs(d, "smiling", ["identity"], 0, np.random.default_rng(0))


def test_identity_and_race_pairs_match_missing_levels_exactly():
    d = _causal_design()
    attrs = ["smiling", "lighting"]
    p = sp.sample_pairs(d, "identity", ["race", "gender", *attrs], 2000, np.random.default_rng(2))
    a, b = d.iloc[p.first].reset_index(drop=True), d.iloc[p.second].reset_index(drop=True)
    assert (a["identity"] != b["identity"]).all()
    for c in ["race", "gender", "subset", *attrs]:
        same = (a[c] == b[c]) | (a[c].isna() & b[c].isna())
        assert same.all(), c
    assert (a["subset"] == "lighting").any() and (a["subset"] == "smiling").any()
    r = sp.sample_pairs(d, "race", ["identity", "gender", *attrs], 2000, np.random.default_rng(3))
    ra, rb = d.iloc[r.first].reset_index(drop=True), d.iloc[r.second].reset_index(drop=True)
    assert (ra["race"] != rb["race"]).all() and (ra["identity"] == rb["identity"]).all()


def test_pairs_are_seeded_per_dimension():
    d = _causal_design()
    one = sp.sample_pairs(d, "smiling", ["identity"], 50, sp.dimension_rng(5, "smiling"), min_gap=1.1)
    two = sp.sample_pairs(d, "smiling", ["identity"], 50, sp.dimension_rng(5, "smiling"), min_gap=1.1)
    other = sp.sample_pairs(d, "smiling", ["identity"], 50, sp.dimension_rng(6, "smiling"), min_gap=1.1)
    assert np.array_equal(one.first, two.first) and np.array_equal(one.second, two.second)
    assert not np.array_equal(one.first, other.first)


# ---------------------------------------------------------------------------------------------------- effects


@pytest.mark.parametrize("n", [5, 20, 101, 1000])
def test_median_interval_is_the_tightest_with_the_coverage(n):
    x = np.arange(n, dtype=float)
    lo, hi = sp.median_ci(x, 0.95)
    lo_i = int(lo) + 1  # 1-based order statistic
    assert hi == n - lo_i
    coverage = 1 - 2 * stats.binom.cdf(lo_i - 1, n, 0.5)
    assert coverage >= 0.95 or lo_i == 1
    if lo_i < n // 2:
        assert 1 - 2 * stats.binom.cdf(lo_i, n, 0.5) < 0.95  # one step tighter would fall short


def test_median_interval_calibration():
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(400):
        lo, hi = sp.median_ci(rng.exponential(size=60), 0.9)
        hits += lo <= math.log(2) <= hi
    assert 0.87 <= hits / 400 <= 0.98


def test_effect_summary_and_mann_whitney():
    rng = np.random.default_rng(0)
    changes = pd.concat(
        [
            pd.DataFrame({"scale": "s", "dimension": d, "abs_change": rng.exponential(m, 300)})
            for d, m in (("small", 0.5), ("big", 3.0), ("mid", 1.0))
        ]
    )
    eff = sp.effect_summary(changes)
    assert eff["dimension"].tolist() == ["big", "mid", "small"] and eff["rank"].tolist() == [1, 2, 3]
    samples = {d: g["abs_change"].to_numpy() for d, g in changes.groupby("dimension", sort=False)}
    t = sp.pairwise_mannwhitney(samples)
    assert len(t) == 3
    row = t[(t["dimension_a"] == "small") & (t["dimension_b"] == "big")].iloc[0]
    ref = stats.mannwhitneyu(samples["small"], samples["big"], alternative="two-sided")
    assert row.u == ref.statistic and row.p == ref.pvalue and row.prob_superiority < 0.3
    assert (t["p_holm"] >= t["p"]).all()


def test_holm_matches_statsmodels():
    from statsmodels.stats.multitest import multipletests

    p = np.array([0.01, 0.04, 0.03, 0.2, 0.001, 0.04, 0.5])
    np.testing.assert_allclose(sp.holm(p), multipletests(p, method="holm")[1])


# ---------------------------------------------------------------------------------------------------- shares


def _r2_statsmodels(y, columns):
    x = np.column_stack([np.ones(len(y)), *columns]) if columns else np.ones((len(y), 1))
    return sm.OLS(y, x).fit().rsquared


def _dummy_cols(labels):
    s = pd.Series(labels)
    levels = sorted(s.dropna().unique(), key=str)
    return [(s == lv).to_numpy(float) for lv in levels[1:]]


def test_shares_in_a_balanced_design_are_each_factors_sum_of_squares():
    a, b = np.meshgrid(np.arange(3), np.arange(4), indexing="ij")
    a, b = np.repeat(a.ravel(), 5), np.repeat(b.ravel(), 5)
    rng = np.random.default_rng(0)
    y = np.array([0.0, 2.0, 5.0])[a] + np.array([0.0, 1.0, -1.0, 0.5])[b] + rng.normal(0, 0.5, len(a))
    res = sp.variance_shares(y, {"A": a, "B": b}, n_bootstrap=0).set_index("factor")
    tss = ((y - y.mean()) ** 2).sum()
    for name, f in (("A", a), ("B", b)):
        ss = sum((f == lv).sum() * (y[f == lv].mean() - y.mean()) ** 2 for lv in np.unique(f))
        assert res.loc[name, "r2"] == pytest.approx(ss / tss, rel=1e-9)
    assert res["share"].sum() == pytest.approx(1.0) and res.loc["A", "rank"] == 1


def test_shares_agree_with_brute_force_shapley_and_statsmodels():
    rng = np.random.default_rng(1)
    n_id = 12
    ident = np.repeat(np.arange(n_id), 12)
    race = np.tile(np.repeat(["a", "b", "c"], 4), n_id)
    level = np.tile(np.array([0.0, 1.0, 2.0, np.nan]), 3 * n_id)  # missing = at the reference
    subset = np.where(np.isnan(level), "other", "varied")
    y = rng.normal(size=n_id)[ident] + (race == "b") * 0.7 + np.nan_to_num(level) * 0.4 + rng.normal(0, 0.3, len(ident))
    y2 = y * -2 + rng.normal(size=len(y))
    factors = {"identity": ident, "race": race, "level": level}
    cov = {"subset": subset}
    res = sp.variance_shares(
        np.column_stack([y, y2]),
        factors,
        covariates=cov,
        clusters=ident,
        absorb="identity",
        outcomes=["y", "y2"],
        n_bootstrap=0,
    )
    cols = {"identity": _dummy_cols(ident), "race": _dummy_cols(race), "level": _dummy_cols(level)}
    for outcome, yy in (("y", y), ("y2", y2)):
        r2 = {
            s: _r2_statsmodels(yy, _dummy_cols(subset) + [c for f in s for c in cols[f]])
            for k in range(4)
            for s in itertools.combinations(cols, k)
        }
        r2 = {frozenset(k): v for k, v in r2.items()}
        perms = list(itertools.permutations(cols))
        for f in cols:
            expected = np.mean([r2[frozenset(p[: p.index(f) + 1])] - r2[frozenset(p[: p.index(f)])] for p in perms])
            got = res[(res["outcome"] == outcome) & (res["factor"] == f)].iloc[0]
            assert got.r2 == pytest.approx(expected, abs=1e-9)
        assert got.r2_model == pytest.approx(r2[frozenset(cols)], abs=1e-9)
        assert got.r2_covariates == pytest.approx(r2[frozenset()], abs=1e-9)
    # the absorbed identity effects (block elimination) equal identity dummies in the design
    plain = sp.variance_shares(
        np.column_stack([y, y2]), factors, covariates=cov, clusters=ident, n_bootstrap=0, outcomes=["y", "y2"]
    )
    np.testing.assert_allclose(plain["r2"], res["r2"], atol=1e-9)


def test_share_intervals_resample_identities_and_are_seeded():
    rng = np.random.default_rng(2)
    ident = np.repeat(np.arange(30), 6)
    f = np.tile(np.arange(6), 30)
    g = np.tile([0, 1], 90)
    y = rng.normal(size=30)[ident] + 0.8 * f + 0.1 * g + rng.normal(0, 1, len(ident))
    kw = dict(clusters=ident, absorb="identity", n_bootstrap=200)
    one = sp.variance_shares(y, {"identity": ident, "f": f, "g": g}, rng=np.random.default_rng(9), **kw)
    two = sp.variance_shares(y, {"identity": ident, "f": f, "g": g}, rng=np.random.default_rng(9), **kw)
    pd.testing.assert_frame_equal(one, two)
    assert (one["share_ci_low"] <= one["share"] + 1e-12).all() and (one["share"] <= one["share_ci_high"] + 1e-12).all()
    top = one.set_index("factor")
    assert top.loc["f", "rank"] == 1 and top.loc["f", "share_ci_low"] > top.loc["g", "share_ci_high"]
    assert top.loc["identity", "share_ci_high"] > top.loc["identity", "share_ci_low"]


def test_regression_coefficients_recover_planted_effects():
    ident = np.repeat(np.arange(20), 8)
    level = np.tile([0.0, 1.0, 2.0, 3.0], 40)
    gender = np.tile(np.repeat(["female", "male"], 4), 20)
    rng = np.random.default_rng(3)
    y = rng.normal(size=20)[ident] * 5 + np.array([0.0, 1.0, 4.0, -2.0])[level.astype(int)] + 0.5 * (gender == "male")
    coefs = sp.regression_coefficients(
        y,
        {"identity": ident, "level": level, "gender": gender},
        clusters=ident,
        absorb="identity",
        references={"level": 1.0},
    )
    got = coefs.set_index(["factor", "level"])["coef"]
    assert got[("level", "0")] == pytest.approx(-1.0) and got[("level", "2")] == pytest.approx(3.0)
    assert got[("level", "3")] == pytest.approx(-3.0) and got[("gender", "male")] == pytest.approx(0.5)
    assert set(coefs["reference"]) == {"1", "female"} and coefs["interval"].str.startswith("cluster-robust").all()


def test_confounded_attributes_are_said_to_be_unidentified():
    a = np.tile([0, 1], 20)
    coefs = sp.regression_coefficients(np.arange(40.0), {"a": a, "b": a * 2})
    assert coefs["interval"].str.contains("rank-deficient").all()


# ---------------------------------------------------------------------------------------------------- curves


def test_level_curves_recover_quadratics_and_find_the_planted_extreme_group():
    rows = []
    groups = ["asian female", "black female", "white male"]
    for ident, g, x in itertools.product(range(12), groups, [-2.0, -1.0, 0.0, 1.0, 2.0, 3.0]):
        y = 1.0 + 0.5 * x + 0.1 * ident * 0  # the same line for everyone ...
        if g == "white male":
            y += 0.8 * (x - 1.0) ** 2  # ... but a planted U for one group
        rows.append({"identity": ident, "group": g, "x": x, "score": y + 0.01 * ((ident * 7) % 5 - 2)})
    frame = pd.DataFrame(rows)
    res = sp.level_curves(
        frame, ["score"], x="x", group="group", cluster="identity", n_bootstrap=200, rng=np.random.default_rng(0)
    )
    fits = res["fits"].set_index("group")
    assert fits.loc["white male", "b2"] == pytest.approx(0.8, abs=1e-6)
    assert fits.loc["white male", "vertex"] == pytest.approx(1 - 0.5 / 1.6, abs=1e-6)  # 0.5 + 1.6 (x - 1) = 0
    assert fits.loc["white male", "shape"] == "U"
    assert abs(fits.loc["asian female", "b2"]) < 1e-6 and fits.loc["asian female", "b1"] == pytest.approx(0.5, abs=1e-6)
    ex = res["extremes"]
    top = ex[ex["rank"] == 1].iloc[0]
    assert top.group == "white male" and top.direction == "above" and top.p_most_extreme == 1.0
    means = res["means"]
    m = means[(means["group"] == "white male") & (means["level"] == 3.0)].iloc[0]
    noise = 0.01 * np.mean([(i * 7) % 5 - 2 for i in range(12)])
    assert m["mean"] == pytest.approx(1.0 + 1.5 + 0.8 * 4 + noise) and m["n_clusters"] == 12
    assert m["ci_low"] < m["mean"] < m["ci_high"] and m["fit"] == pytest.approx(m["mean"], abs=0.01)
    assert len(res["grid"]) == 3 * 25


def test_group_shares_exact_and_clustered():
    ind = np.array([1, 0, 1, 1, 0, 0, 0, 1])
    groups = np.array(["w", "w", "w", "w", "b", "b", "b", "b"])
    res = sp.group_shares(
        ind,
        groups,
        clusters=np.arange(8) // 2,
        extra={"m": np.arange(8.0)},
        n_bootstrap=300,
        rng=np.random.default_rng(0),
    ).set_index("group")
    assert res.loc["w", "share"] == 0.75 and res.loc["b", "share"] == 0.25
    assert res.loc["w", "m"] == 1.5 and res.loc["b", "n"] == 4
    assert res.loc["w", "share_ci_low"] <= 0.75 <= res.loc["w", "share_ci_high"]
    # clusters {0,1} {2,3} are all 'w': resampled cluster pairs can only give shares 0.5, 0.75, 1
    assert {res.loc["w", "share_ci_low"], res.loc["w", "share_ci_high"]} <= {0.5, 0.75, 1.0}


# ---------------------------------------------------------------------------------------------------- skew


def test_skew_and_ndkl_by_hand():
    r = np.array([0, 0, 1, 1])
    s1 = sk.skew_at_k(r, 2, 1)
    assert s1[0] == pytest.approx(math.log(2)) and s1[1] == -np.inf
    s3 = sk.skew_at_k(r, 2, 3)
    np.testing.assert_allclose(s3, [math.log(4 / 3), math.log(2 / 3)])
    alt = np.array([0, 1, 0, 1])
    kl3 = 2 / 3 * math.log(4 / 3) + 1 / 3 * math.log(2 / 3)
    expected = (math.log(2) / 1 + 0 + kl3 / 2 + 0) / (1 + 1 / math.log2(3) + 1 / 2 + 1 / math.log2(5))
    assert sk.ndkl(alt, 2) == pytest.approx(expected)
    assert sk.ndkl(alt, 2, k=2) == pytest.approx(math.log(2) / (1 + 1 / math.log2(3)))
    q = np.array([0.25, 0.75])
    assert sk.skew_at_k(r, 2, 2, q)[0] == pytest.approx(math.log(1 / 0.25))
    with pytest.raises(ValueError):
        sk.skew_at_k(r, 2, 2, np.array([0.5, 0.6]))


def test_ranking_skew_table_and_null():
    labels = np.array(["a"] * 50 + ["b"] * 50)
    biased = np.r_[np.linspace(2, 1, 50), np.linspace(1, 0, 50)]  # every a above every b
    fair = np.where(labels == "a", 1.0, 1.0) - np.r_[np.arange(0, 100, 2), np.arange(1, 100, 2)] / 100
    t = sk.ranking_skew(
        np.column_stack([biased, fair]),
        labels,
        k=10,
        names=["biased", "fair"],
        n_perm=500,
        rng=np.random.default_rng(0),
    ).set_index("ranking")
    assert t.loc["biased", "max_skew"] == pytest.approx(math.log(2)) and t.loc["biased", "max_skew_group"] == "a"
    assert t.loc["biased", "min_skew"] == -np.inf and t.loc["biased", "max_skew_p"] == pytest.approx(1 / 501)
    assert t.loc["fair", "max_skew"] == pytest.approx(0.0) and t.loc["fair", "ndkl_p"] > 0.5
    assert t.loc["fair", "max_skew_null_mean"] > 0  # random rankings are skewed by chance


def test_ranking_skew_keeps_the_k_asked_beside_the_k_used():
    """k beyond the set: the table says both (so results join across datasets by the k asked), and MaxSkew of a
    balanced set's whole ranking is 0 by construction."""
    labels = np.array(["a"] * 20 + ["b"] * 20)
    scores = np.r_[np.linspace(2, 1, 20), np.linspace(1, 0, 20)]
    t = sk.ranking_skew(scores, labels, k=1000, n_perm=50, rng=np.random.default_rng(0))
    assert t.loc[0, ["k", "k_used", "n_items"]].tolist() == [1000, 40, 40]
    assert t.loc[0, "max_skew"] == 0.0 and t.loc[0, "max_skew_null_p95"] == 0.0
    t = sk.ranking_skew(scores, labels, k=10, n_perm=0)
    assert t.loc[0, ["k", "k_used"]].tolist() == [10, 10] and t.loc[0, "max_skew"] == pytest.approx(math.log(2))


def test_random_rankings_give_calibrated_p_values():
    rng = np.random.default_rng(4)
    labels = np.repeat(["a", "b", "c"], 40)
    scores = rng.random((120, 300))
    t = sk.ranking_skew(scores, labels, k=30, n_perm=300, rng=rng)
    assert 0.02 <= (t["ndkl_p"] <= 0.1).mean() <= 0.2


def test_balanced_subsample():
    labels = np.array(["a"] * 10 + ["b"] * 3 + ["c"] * 5)
    keep = sk.balanced_subsample(labels, np.random.default_rng(0))
    assert len(keep) == 9 and pd.Series(labels[keep]).value_counts().tolist() == [3, 3, 3]
    assert np.array_equal(keep, sk.balanced_subsample(labels, np.random.default_rng(0)))


def test_pooled_median_interval_resamples_pairs_and_covers():
    """The pooled ("all scales") median of the factor effects: each pair gives eight correlated scale changes.

    Simulation with a known answer: 400 studies of 60 pairs; a pair's eight values are |a + e_s| with a shared
    a ~ N(0, 1) and e_s ~ N(0, 0.5^2), so every value is |N(0, 1.25)| and the true pooled median is
    sqrt(1.25) * Phi^-1(0.75) = 0.7541. With a fixed seed the coverage is one number; the band 0.95 +- 3 binomial
    standard deviations for 400 studies (sqrt(.95 * .05 / 400) = 0.011, so [0.917, 0.983]) is what an honest 95%
    interval passes whatever the random stream. The pair bootstrap covers 0.9475 here; the old interval, which
    counted the 480 values of a study as independent, covers 0.6975 (issue 13 saw 84% on CausalFace).
    """
    rng = np.random.default_rng(13)
    n_studies, n_pairs, n_scales = 400, 60, 8
    truth = math.sqrt(1.25) * stats.norm.ppf(0.75)
    frames = []
    for s in range(n_studies):
        values = np.abs(rng.normal(0, 1, (n_pairs, 1)) + rng.normal(0, 0.5, (n_pairs, n_scales)))
        frames.append(
            pd.DataFrame(
                {
                    "scale": "all scales",
                    "dimension": f"study {s}",
                    "pair": np.repeat(np.arange(n_pairs), n_scales),
                    "abs_change": values.reshape(-1),
                }
            )
        )
    changes = pd.concat(frames, ignore_index=True)
    eff = sp.effect_summary(changes, n_bootstrap=400, rng=np.random.default_rng(1))
    assert (eff["median_ci_method"] == "bootstrap of pairs (400)").all() and (eff["n_clusters"] == n_pairs).all()
    covered = ((eff["median_ci_low"] <= truth) & (truth <= eff["median_ci_high"])).mean()
    assert 0.917 <= covered <= 0.983, covered
    naive = sp.effect_summary(changes, cluster=None)  # every value as if independent: the interval issue 13 found
    assert ((naive["median_ci_low"] <= truth) & (truth <= naive["median_ci_high"])).mean() < 0.8


def test_cluster_median_is_the_median_of_the_resample():
    """The bootstrap's medians from cumulative counts equal numpy's median of the resample built out in full."""
    x = np.array([5.0, 1.0, 4.0, 2.0, 2.0, 9.0, 7.0])
    clusters = np.array([0, 0, 1, 1, 2, 3, 3])
    for seed in range(20):
        counts = np.random.default_rng(seed).multinomial(4, np.full(4, 0.25))
        resample = np.concatenate([x[clusters == c].repeat(k) for c, k in enumerate(counts)])
        lo, hi = sp.cluster_median_ci(x, clusters, 0.5, 2, _Fixed(counts))  # two equal replicates
        assert lo == hi == np.median(resample)
    # one value per cluster: the per-scale rows keep the order-statistic interval
    single = pd.DataFrame({"scale": "s", "dimension": "d", "pair": np.arange(7), "abs_change": x})
    eff = sp.effect_summary(single)
    assert eff.loc[0, "median_ci_method"] == "order statistics"
    assert (eff.loc[0, "median_ci_low"], eff.loc[0, "median_ci_high"]) == sp.median_ci(x, 0.95)


class _Fixed:
    """A stand-in generator whose one multinomial draw is given."""

    def __init__(self, counts):
        self.counts = np.asarray(counts)

    def multinomial(self, n, p, size):
        return np.tile(self.counts, (size, 1))


def test_cell_subsample_is_pandas_sample_with_the_seed_per_cell():
    """Hausladen et al.'s balanced set: per race x gender cell (first-appearance order) pandas'
    sample(n=min(len // cells, cell size), random_state=seed), cells one after the other."""
    rng = np.random.default_rng(4)
    df = pd.DataFrame(
        {"race": rng.choice(["w", "b", "a"], 97, p=[0.5, 0.3, 0.2]), "gender": rng.choice(["m", "f"], 97)}
    )
    m = len(df) // 6
    expected = [
        df[(df.race == r) & (df.gender == g)].sample(
            n=min(m, int(((df.race == r) & (df.gender == g)).sum())), random_state=42
        )
        for r in df.race.unique()
        for g in df.gender.unique()
    ]
    got = sk.cell_subsample(df["race"].to_numpy(), df["gender"].to_numpy(), 42)
    assert got.tolist() == pd.concat(expected).index.tolist()
    assert len(got) < len(df) and len(set(got)) == len(got)


def test_ndkl_depth_sums_the_top_k_or_the_whole_ranking():
    labels = np.array(["a", "b", "a", "b", "a", "a", "b", "b"])
    scores = np.arange(8, 0, -1, dtype=float)  # the ranking is the input order
    top = sk.ranking_skew(scores, labels, k=4, n_perm=0)
    whole = sk.ranking_skew(scores, labels, k=4, n_perm=0, ndkl_depth=None)
    codes = np.array([0, 1, 0, 1, 0, 0, 1, 1])
    assert top.loc[0, "ndkl_depth"] == 4 and whole.loc[0, "ndkl_depth"] == 8
    assert top.loc[0, "ndkl"] == pytest.approx(sk.ndkl(codes, 2, 4)) and whole.loc[0, "ndkl"] == pytest.approx(
        sk.ndkl(codes, 2, 8)
    )
    assert top.loc[0, "max_skew"] == whole.loc[0, "max_skew"] and top.loc[0, "ndkl"] != whole.loc[0, "ndkl"]


def test_level_correlation_pools_words_and_resamples_identities():
    """r and p as scipy's pearsonr on the (level, value) pairs of every image and word; the bootstrap's r from
    per-identity sums equals the r of the resample built out in full."""
    rng = np.random.default_rng(0)
    ident = np.repeat(np.arange(6), 5)
    x = np.tile(np.arange(5.0), 6)
    y = 0.3 * x[:, None] + rng.normal(size=(30, 3)) + ident[:, None] * 0.2
    res = sp.level_correlation(x, y, ident, n_bootstrap=0)
    ref = stats.pearsonr(np.repeat(x, 3), y.reshape(-1))
    assert res["r"] == pytest.approx(ref.statistic, abs=1e-12) and res["p"] == pytest.approx(ref.pvalue, rel=1e-9)
    assert res["n_images"] == 30 and res["n_words"] == 3 and np.isnan(res["r_ci_low"])
    counts = np.random.default_rng(1).multinomial(6, np.full(6, 1 / 6))
    rows = np.concatenate([np.flatnonzero(ident == c).repeat(k) for c, k in enumerate(counts)])
    full = stats.pearsonr(np.repeat(x[rows], 3), y[rows].reshape(-1)).statistic
    one = sp.level_correlation(x, y, ident, n_bootstrap=2, confidence=0.5, rng=_Fixed(counts))
    assert one["r_ci_low"] == pytest.approx(full, abs=1e-12) == one["r_ci_high"]
