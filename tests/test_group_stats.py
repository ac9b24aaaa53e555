"""Group means with cluster-bootstrap intervals, disparities and unit-group comparisons (vlbias.stats.groups)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vlbias.stats.groups import compare_levels, group_means


def _frame(stats, **kw):
    return stats.frame(**kw).set_index([*stats.group_columns, "value"])


def test_estimates_are_image_weighted_means_per_group():
    values = pd.DataFrame({"a": [1, 0, 1, 1, 0, 0.0], "b": [0.2, 0.4, 0.6, 0.1, 0.1, 0.4]})
    groups = pd.DataFrame({"race": ["w", "w", "w", "b", "b", "b"]})
    s = group_means(values, groups, ["p1", "p1", "p2", "p3", "p4", "p5"], n_bootstrap=0)
    f = _frame(s)
    assert f.loc[("w", "a"), "estimate"] == pytest.approx(2 / 3)
    assert f.loc[("w", "b"), "estimate"] == pytest.approx(0.4)
    assert f.loc[("b", "b"), "estimate"] == pytest.approx(0.2)
    assert s.groups.set_index("race").loc["w", ["n", "n_clusters"]].tolist() == [3, 2]
    assert s.stratified
    assert np.isnan(f["low"]).all()  # no replicates, no interval
    overall = group_means(values, None, ["p1", "p1", "p2", "p3", "p4", "p5"], n_bootstrap=0)
    assert overall.labels() == ["all"] and overall.estimate[0, 0] == pytest.approx(0.5)


def test_interval_of_two_people_is_exact():
    # two people per group with values 0 and 1: a replicate's mean is 0, 0.5 or 1 with probabilities 1/4, 1/2, 1/4
    values = np.array([0.0, 1.0, 1.0, 1.0])
    groups = pd.Series(["g1", "g1", "g2", "g2"], name="g")
    s = group_means(values, groups, ["a", "b", "c", "d"], n_bootstrap=4000, seed=3)
    low, high = s.interval()
    assert (low[0, 0], high[0, 0]) == (0.0, 1.0)
    assert (low[1, 0], high[1, 0]) == (1.0, 1.0)
    share_half = np.mean(s.replicates[:, 0, 0] == 0.5)
    assert share_half == pytest.approx(0.5, abs=0.03)


def test_duplicated_images_of_a_person_do_not_narrow_the_interval():
    rng = np.random.default_rng(0)
    n = 60
    x = rng.random(n)
    groups = pd.Series(np.repeat(["a", "b", "c"], n // 3), name="g")
    people = np.arange(n)
    once = group_means(x, groups, people, n_bootstrap=500, seed=1)
    thrice = group_means(
        np.repeat(x, 3), pd.Series(np.repeat(groups, 3), name="g"), np.repeat(people, 3), n_bootstrap=500, seed=1
    )
    np.testing.assert_allclose(thrice.estimate, once.estimate)
    # identical, replicate for replicate
    np.testing.assert_allclose(np.array(thrice.interval()), np.array(once.interval()))
    naive = group_means(
        np.repeat(x, 3), pd.Series(np.repeat(groups, 3), name="g"), np.arange(3 * n), n_bootstrap=500, seed=1
    )
    width = lambda s: np.subtract(*s.interval()[::-1])  # noqa: E731
    assert (width(naive) < 0.75 * width(once)).all()  # treating images as independent understates uncertainty


def test_intervals_cover_the_true_mean_at_their_level():
    # people with 1-4 images each, images of one person strongly correlated: coverage of the 90% interval
    rng = np.random.default_rng(42)
    p_true, hits, sims = 0.3, 0, 300
    for _ in range(sims):
        n_people = 60
        k = rng.integers(1, 5, n_people)
        person_p = rng.beta(p_true * 4, (1 - p_true) * 4, n_people)  # mean p_true
        values = np.concatenate([rng.random(m) < q for m, q in zip(k, person_p)]).astype(float)
        who = np.repeat(np.arange(n_people), k)
        s = group_means(values, None, who, n_bootstrap=300, confidence=0.9, seed=int(rng.integers(1 << 30)))
        # the estimand is the image-weighted mean; with k independent of person_p it equals p_true
        low, high = s.interval()
        hits += low[0, 0] <= p_true <= high[0, 0]
    assert 0.84 <= hits / sims <= 0.96


def test_crossed_clusters_resample_people_jointly():
    # the same people appear under two expressions: a person's images move together between groups
    values = np.array([1, 1, 0, 0, 1, 0.0])
    groups = pd.Series(["N", "HC", "N", "HC", "N", "HC"], name="expression")
    s = group_means(values, groups, ["p1", "p1", "p2", "p2", "p3", "p3"], n_bootstrap=2000, seed=0)
    assert not s.stratified
    assert s.estimate[:, 0].tolist() == pytest.approx([1 / 3, 2 / 3])  # HC, N (sorted)
    # p1 contributes 1 to both groups, so the two groups' replicates are positively correlated
    r = s.replicates[:, :, 0]
    assert np.corrcoef(r[:, 0], r[:, 1])[0, 1] > 0.3


def test_disparity_difference_ratio_and_zero_division():
    values = pd.DataFrame({"x": [0.0, 0, 1, 1, 1, 0], "y": [1.0, 1, 1, 1, 1, 1]})
    groups = pd.Series(["a", "a", "b", "b", "c", "c"], name="g")
    s = group_means(values, groups, np.arange(6), n_bootstrap=300, seed=0)
    d = s.disparity(scale=100).set_index("value")
    assert (d.loc["x", "max_group"], d.loc["x", "min_group"]) == ("b", "a")
    assert d.loc["x", "difference"] == pytest.approx(100.0)
    assert d.loc["x", "ratio"] == 0.0  # smallest over largest, 0 / 1 (as fairlearn: at most 1)
    assert 0 <= d.loc["x", "ratio_low"] <= d.loc["x", "ratio_high"] <= 1
    # every group equal: no group is largest or smallest (none picked at random), difference 0, ratio 1
    assert d.loc["y", "difference"] == 0 and d.loc["y", "ratio"] == 1.0
    assert d.loc["y", ["max_group", "min_group"]].isna().all()
    assert d.loc["y", ["difference_low", "difference_high", "ratio_low", "ratio_high"]].isna().all()
    assert d.loc["x", "difference_low"] <= 100 <= d.loc["x", "difference_high"]
    assert d.loc["x", "n_groups"] == 3
    assert group_means(values, None, np.arange(6), n_bootstrap=10).disparity().empty


def test_compare_levels_unpaired_and_paired():
    # 4 models x 4 people (one image each), value = indicator; groups g1 = people 0,1; g2 = people 2,3
    v = np.array(
        [
            [1, 0, 0, 0],  # model 0: arch A, small
            [1, 1, 0, 0],  # model 1: arch B, small
            [1, 1, 1, 0],  # model 2: arch A, big
            [1, 1, 1, 1],  # model 3: arch C, big
        ],
        dtype=float,
    )[:, :, None]
    groups = pd.Series(["g1", "g1", "g2", "g2"], name="grp")
    levels = ["small", "small", "big", "big"]
    diff, stats = compare_levels(v, levels, groups, np.arange(4), baseline="small", value_names=["x"], n_bootstrap=200)
    d = diff.set_index("group")
    # g1: big mean (1 + 1)/2 = 1; small mean (0.5 + 1)/2 = 0.75 -> +25 pp; g2: 0.75 - 0 -> +75 pp
    assert d.loc["g1", "difference"] == pytest.approx(25.0)
    assert d.loc["g2", "difference"] == pytest.approx(75.0)
    assert d.loc["g1", "n_units"] == 2 and d.loc["g1", "level"] == "big"
    paired, _ = compare_levels(
        v,
        levels,
        groups,
        np.arange(4),
        baseline="small",
        value_names=["x"],
        pairs=["A", "B", "A", "C"],
        n_bootstrap=200,
    )
    p = paired.set_index("group")
    # only architecture A is at both levels: model 2 minus model 0
    assert p.loc["g1", "difference"] == pytest.approx(50.0) and p.loc["g2", "difference"] == pytest.approx(50.0)
    assert p.loc["g1", "n_pairs"] == 1 and p.loc["g1", "n_units"] == 1
    assert (p["low"] <= p["difference"]).all() and (p["difference"] <= p["high"]).all()
    assert stats.values[:2] == ["0|x", "1|x"]


def test_bad_arguments():
    with pytest.raises(ValueError, match="must align"):
        group_means([1.0, 2.0], pd.Series(["a"]), ["p", "q"])
    with pytest.raises(ValueError, match="finite"):
        group_means([1.0, np.nan], None, ["p", "q"])
    with pytest.raises(ValueError, match="baseline"):
        compare_levels(np.zeros((2, 2, 1)), ["a", "b"], None, [0, 1], baseline="c")
