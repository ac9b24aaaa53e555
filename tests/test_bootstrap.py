"""The one bootstrap module (vlbias.stats.bootstrap): count samplers, the percentile interval, its coverage, and the
numbers of every statistic that used to carry its own copy (stats.groups, stats.perception, stats.eat)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from vlbias.stats import bootstrap
from vlbias.stats import perception as sp
from vlbias.stats.bootstrap import (
    count_chunks,
    percentile_interval,
    resample_counts,
    stratified_count_chunks,
)
from vlbias.stats.eat import eat, sc_eat
from vlbias.stats.groups import compare_levels, group_means

# ---------------------------------------------------------------------------------------------------- the old copies
# Verbatim (bar names) from before the module existed: the reference the new module must reproduce bit for bit.


def old_groups_resample_counts(rng, m, b):  # stats/groups.py: _resample_counts
    draws = rng.integers(0, m, size=(b, m)) + (np.arange(b) * m)[:, None]
    return np.bincount(draws.ravel(), minlength=b * m).reshape(b, m).astype(np.float64)


def old_groups_percentile_interval(reps, ci):  # stats/groups.py: _percentile_interval
    alpha = (1 - ci) / 2
    if reps.shape[0] == 0:
        nan = np.full(reps.shape[1:], np.nan)
        return nan, nan
    method = "inverted_cdf" if np.isinf(reps).any() else "linear"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        low = np.nanpercentile(reps, 100 * alpha, axis=0, method=method)
        high = np.nanpercentile(reps, 100 * (1 - alpha), axis=0, method=method)
    return low, high


def old_perception_bootstrap_weights(n_clusters, n_boot, rng, max_cells=4_000_000):  # stats/perception.py
    chunk = max(1, min(n_boot, max_cells // max(n_clusters, 1)))
    p = np.full(n_clusters, 1.0 / n_clusters)
    done = 0
    while done < n_boot:
        b = min(chunk, n_boot - done)
        yield rng.multinomial(n_clusters, p, size=b).astype(np.float64)
        done += b


def old_perception_percentile_ci(boot, confidence, axis=0):  # stats/perception.py: percentile_ci
    a = (1 - confidence) / 2
    with np.errstate(invalid="ignore"):
        return np.nanquantile(boot, a, axis=axis), np.nanquantile(boot, 1 - a, axis=axis)


def old_eat_counts(rng, n, reps):  # stats/eat.py: _counts
    return rng.multinomial(n, np.full(n, 1.0 / n), size=reps).T.astype(np.float64)


def old_eat_ci(d, confidence):  # stats/eat.py: _ci
    d = d[np.isfinite(d)]
    if d.size < 2:
        return float("nan"), float("nan")
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(d, [alpha, 1 - alpha])
    return float(lo), float(hi)


def _same(a, b) -> None:
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))  # NaN equals NaN; no tolerance


# ---------------------------------------------------------------------------------------------------- samplers


@pytest.mark.parametrize("n, n_boot", [(1, 7), (13, 600), (40, 251)])
def test_indices_sampler_is_the_old_group_means_sampler(n, n_boot):
    new = list(count_chunks(np.random.default_rng(3), n, n_boot, chunk=250, sampler="indices"))
    rng = np.random.default_rng(3)
    old = [old_groups_resample_counts(rng, n, min(250, n_boot - s)) for s in range(0, n_boot, 250)]
    assert [len(w) for w in new] == [len(w) for w in old]
    _same(np.concatenate(new), np.concatenate(old))


@pytest.mark.parametrize("n, n_boot", [(5, 1), (37, 1000), (300, 40)])
@pytest.mark.parametrize("max_cells", [4_000_000, 1000])  # 1000: 300 units take several chunks
def test_multinomial_chunks_are_the_old_perception_weights(n, n_boot, max_cells, monkeypatch):
    monkeypatch.setattr(bootstrap, "MAX_CELLS", max_cells)
    new = list(count_chunks(np.random.default_rng(8), n, n_boot))
    old = list(old_perception_bootstrap_weights(n, n_boot, np.random.default_rng(8), max_cells))
    assert [w.shape for w in new] == [w.shape for w in old]
    for a, b in zip(new, old):
        _same(a, b)


def test_stratified_chunks_are_the_old_eat_draws():
    sizes, chunk, n_boot = (6, 8, 7, 9), 500, 1300
    rng = np.random.default_rng(11)
    old = []
    for start in range(0, n_boot, chunk):
        r = min(chunk, n_boot - start)
        old.append([old_eat_counts(rng, n, r) for n in sizes])
    new = list(stratified_count_chunks(np.random.default_rng(11), sizes, n_boot, chunk=chunk))
    assert len(new) == len(old) == 3
    for strata_new, strata_old in zip(new, old):
        for a, b in zip(strata_new, strata_old):
            _same(a.T, b)
            assert a.T.flags.f_contiguous == b.flags.f_contiguous  # the same layout into the same matrix products


def test_counts_are_resamples_of_n_units():
    w = resample_counts(np.random.default_rng(0), 12, 4000)
    assert w.shape == (4000, 12) and w.dtype == np.float64
    assert (w.sum(axis=1) == 12).all() and (w >= 0).all()
    # each count is Binomial(12, 1/12): mean 1, variance 11/12
    assert w.mean() == pytest.approx(1.0, abs=0.02) and w.var() == pytest.approx(11 / 12, abs=0.03)
    drawn = resample_counts(np.random.default_rng(0), 12, 4000, sampler="indices")
    assert (drawn.sum(axis=1) == 12).all() and drawn.var() == pytest.approx(11 / 12, abs=0.03)


def test_multinomial_counts_do_not_depend_on_the_chunk_size():
    one = np.concatenate(list(count_chunks(np.random.default_rng(1), 20, 101, chunk=101)))
    many = np.concatenate(list(count_chunks(np.random.default_rng(1), 20, 101, chunk=7)))
    _same(one, many)
    assert [len(w) for w in count_chunks(np.random.default_rng(1), 20, 101, chunk=7)][-1] == 101 - 14 * 7


def test_default_chunks_bound_the_cells(monkeypatch):
    monkeypatch.setattr(bootstrap, "MAX_CELLS", 100)
    assert [w.shape for w in count_chunks(np.random.default_rng(0), 30, 7)] == [(3, 30), (3, 30), (1, 30)]
    assert [w.shape for w in count_chunks(np.random.default_rng(0), 500, 2)] == [(1, 500), (1, 500)]  # at least one
    strata = [tuple(w.shape for w in ws) for ws in stratified_count_chunks(np.random.default_rng(0), (10, 15), 5)]
    assert strata == [((4, 10), (4, 15)), ((1, 10), (1, 15))]  # 4 * (10 + 15) cells
    assert list(count_chunks(np.random.default_rng(0), 5, 0)) == []


def test_bad_sampler_and_chunk():
    with pytest.raises(ValueError, match="unknown sampler 'bincount'"):
        resample_counts(np.random.default_rng(0), 3, 2, sampler="bincount")
    with pytest.raises(ValueError, match="chunk must be at least 1"):
        next(count_chunks(np.random.default_rng(0), 3, 2, chunk=0))


# ---------------------------------------------------------------------------------------------------- the interval


def _replicates(rng, shape, nan_share=0.0):
    reps = rng.normal(size=shape)
    reps[rng.random(shape) < nan_share] = np.nan
    return reps


@pytest.mark.parametrize("confidence", [0.95, 0.9, 0.99, 0.8, 0.5])
def test_interval_is_the_old_group_means_interval(confidence):
    rng = np.random.default_rng(0)
    for shape, nan_share in (((500, 3, 2), 0.0), ((300, 4, 1), 0.3), ((2000, 2), 0.05)):
        reps = _replicates(rng, shape, nan_share)
        for new, old in zip(percentile_interval(reps, confidence), old_groups_percentile_interval(reps, confidence)):
            _same(new, old)
    ratios = np.abs(rng.normal(size=(400, 1)))
    ratios[::37] = np.inf  # ratios over zero: the ends are observed replicates
    ratios[::53] = np.nan
    for new, old in zip(percentile_interval(ratios, confidence), old_groups_percentile_interval(ratios, confidence)):
        _same(new, old)
    empty = np.zeros((0, 2, 3))
    for new, old in zip(percentile_interval(empty, confidence), old_groups_percentile_interval(empty, confidence)):
        _same(new, old)


@pytest.mark.parametrize("confidence", [0.95, 0.9, 0.8])
def test_interval_is_the_old_perception_and_eat_intervals(confidence):
    rng = np.random.default_rng(1)
    for n, nan_share in ((1000, 0.0), (150, 0.2), (2, 0.0)):
        reps = _replicates(rng, n, nan_share)
        low, high = percentile_interval(reps, confidence)
        assert isinstance(low, float) and isinstance(high, float)
        old_lo, old_hi = old_perception_percentile_ci(reps, confidence)
        assert (low, high) == (float(old_lo), float(old_hi))
        assert (low, high) == old_eat_ci(reps, confidence)


def test_interval_needs_two_replicates_and_ignores_nan():
    reps = np.array([[0.3, np.nan, np.nan], [np.nan, 0.2, np.nan], [np.nan, 0.4, np.nan]])
    low, high = percentile_interval(reps, 0.9)
    # one replicate, two (linear interpolation between them), none
    assert low.tolist() == pytest.approx([np.nan, 0.21, np.nan], nan_ok=True)
    assert high.tolist() == pytest.approx([np.nan, 0.39, np.nan], nan_ok=True)
    assert np.isnan(percentile_interval(np.array([0.5]), 0.95)).all()


def test_infinite_replicates_give_observed_ends():
    reps = np.array([1.0, 2.0, 3.0, np.inf])
    assert percentile_interval(reps, 0.5) == (1.0, 3.0)  # inverted CDF: the 1st and 3rd of 4 ...
    assert percentile_interval(reps[:, None], 0.5)[1].tolist() == [3.0]
    reps = np.array([1.0, 2.0, np.inf, np.inf])
    assert percentile_interval(reps, 0.5) == (1.0, np.inf)  # ... infinite only when that share of replicates is
    both = np.column_stack([[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, np.inf]])
    low, high = percentile_interval(both, 0.5)
    assert low.tolist() == [1.75, 1.0] and high.tolist() == [3.25, 3.0]  # per column: the finite one interpolates


def test_interval_along_another_axis_and_a_bad_level():
    reps = np.random.default_rng(2).normal(size=(3, 400))
    _same(np.array(percentile_interval(reps, 0.9, axis=1)), np.array(percentile_interval(reps.T, 0.9)))
    with pytest.raises(ValueError, match="confidence must lie between 0 and 1"):
        percentile_interval(reps, 95)


def test_percentile_interval_of_a_mean_covers_at_its_level():
    """Coverage of the 95% percentile interval of the mean of n = 50 normal values.

    For a normal mean the bootstrap distribution is close to normal with the plug-in standard deviation
    (``ddof=0``), so the interval is close to ``mean ± z s sqrt((n-1)/n) / sqrt(n)`` and its coverage close to
    ``P(|T_{n-1}| <= z sqrt((n-1)/n)) = 0.942`` (the percentile bootstrap undercovers a little with few units).
    With S = 1000 simulations the empirical coverage has a standard error of ``sqrt(0.942 * 0.058 / S) = 0.0074``;
    the band is 3.5 standard errors either side (a correct implementation fails with probability < 0.001). A 90%
    or 99% interval (0.890, 0.986 expected) falls outside it.
    """
    n, n_sims, n_boot = 50, 1000, 1000
    z = stats.norm.ppf(0.975)
    expected = 1 - 2 * stats.t.sf(z * math.sqrt((n - 1) / n), n - 1)
    half_band = 3.5 * math.sqrt(expected * (1 - expected) / n_sims)
    assert expected == pytest.approx(0.942, abs=5e-4) and half_band == pytest.approx(0.026, abs=5e-4)
    rng = np.random.default_rng(2024)
    hits = 0
    for _ in range(n_sims):
        x = rng.normal(size=n)
        reps = np.concatenate([w @ x / n for w in count_chunks(rng, n, n_boot)])
        low, high = percentile_interval(reps, 0.95)
        hits += low <= 0.0 <= high
    assert expected - half_band <= hits / n_sims <= expected + half_band


# ---------------------------------------------------------------------------------------------------- the call sites
# Recorded with the code before vlbias.stats.bootstrap existed (each statistic with its own copy): the same seed
# must give these exact numbers.


def _data():
    rng = np.random.default_rng(123)
    n_people = 40
    k = rng.integers(1, 4, n_people)
    who = np.repeat(np.arange(n_people), k)
    n = len(who)
    g = np.array(["a", "b", "c"])[who % 3]
    vals = np.column_stack([rng.random(n) < 0.4, rng.random(n)]).astype(float)
    expr = np.array(["N", "HC"])[rng.integers(0, 2, n)]
    return who, g, vals, expr


def test_group_means_numbers_are_unchanged():
    who, g, vals, expr = _data()
    s = group_means(vals, pd.Series(g, name="g"), who, n_bootstrap=600, confidence=0.9, seed=4)
    low, high = s.interval()
    assert low.tolist() == [
        [0.2, 0.46531223787727855],
        [0.30303030303030304, 0.3857881006869887],
        [0.20833333333333334, 0.3892297200698104],
    ]
    assert high.tolist() == [
        [0.5416666666666666, 0.6310258844204168],
        [0.5716450216450214, 0.5135909128220952],
        [0.5909090909090909, 0.5420658696464864],
    ]
    assert float(s.replicates.sum()) == 1591.1512074290392
    assert s.disparity()[["difference_low", "difference_high", "ratio_low", "ratio_high"]].to_numpy().tolist() == [
        [-0.13731438111743716, 0.27280462280462275, 0.4266666666666667, 1.3777777777777778],
        [-0.006355229368839565, 0.19894747392262144, 0.6724039970243361, 1.0129216502471918],
    ]  # ratio: smallest over largest (was largest over smallest: [0.73, 2.34], [0.99, 1.49])
    crossed = group_means(vals, pd.Series(expr, name="e"), who, n_bootstrap=300, seed=7)
    low, high = crossed.interval()
    assert not crossed.stratified
    assert low.tolist() == [[0.37154605263157897, 0.4407707490297957], [0.1545454545454546, 0.37194949138790206]]
    assert high.tolist() == [[0.6860084033613445, 0.6096077765024174], [0.45835907335907333, 0.5144381798911788]]
    assert float(np.nansum(crossed.replicates)) == 539.2505569143948


def test_compare_levels_numbers_are_unchanged():
    who, g, vals, _ = _data()
    v = np.stack([vals[:, :1] * (u + 1) / 4 for u in range(4)])
    diff, _ = compare_levels(
        v, ["s", "s", "b", "b"], pd.Series(g, name="g"), who, baseline="s", n_bootstrap=200, seed=2
    )
    assert diff[["low", "high"]].to_numpy().tolist() == [
        [8.325, 27.506944444444446],
        [14.055765086206899, 29.170258620689665],
        [9.081027667984191, 31.840034965034974],
    ]


def _perception_data():
    rng = np.random.default_rng(2)
    ident = np.repeat(np.arange(30), 6)
    f = np.tile(np.arange(6), 30)
    g = np.tile([0, 1], 90)
    y = rng.normal(size=30)[ident] + 0.8 * f + 0.1 * g + rng.normal(0, 1, len(ident))
    return ident, f, g, y


def test_perception_numbers_are_unchanged():
    ident, f, g, y = _perception_data()
    shares = sp.variance_shares(
        y,
        {"identity": ident, "f": f, "g": g},
        clusters=ident,
        absorb="identity",
        n_bootstrap=150,
        rng=np.random.default_rng(9),
    )
    assert shares[["r2_ci_low", "r2_ci_high", "share_ci_low", "share_ci_high"]].to_numpy().tolist() == [
        [0.17611547487226828, 0.36530677753445756, 0.22183776363366933, 0.4493694356569431],
        [0.42774095202814477, 0.5907569789722015, 0.5360427478123018, 0.7437116224179486],
        [0.006876438661386989, 0.040384554857631975, 0.008631509237350687, 0.050002958100648774],
    ]
    per_group = sp.group_shares(
        (y > y.mean()).astype(float),
        np.array(["w", "b", "x"])[ident % 3],
        clusters=ident,
        extra={"m": y},
        n_bootstrap=250,
        confidence=0.8,
        rng=np.random.default_rng(1),
    )
    assert per_group[["share_ci_low", "share_ci_high", "m_ci_low", "m_ci_high"]].to_numpy().tolist() == [
        [0.4241258741258741, 0.6435714285714286, 1.691022696706092, 2.7049274427993035],
        [0.374537037037037, 0.5303030303030303, 1.164304958060031, 1.8826541575534883],
        [0.4, 0.5925925925925926, 1.7886320596602767, 2.633426663218448],
    ]
    frame = pd.DataFrame(
        {"identity": ident, "group": np.array(["p", "q", "r"])[ident % 3], "x": f.astype(float), "score": y}
    )
    curves = sp.level_curves(
        frame, ["score"], x="x", group="group", cluster="identity", n_bootstrap=120, rng=np.random.default_rng(3)
    )
    assert curves["extremes"]["p_most_extreme"].tolist() == [0.6166666666666667, 0.225, 0.15833333333333333]


def test_eat_numbers_are_unchanged():
    rng = np.random.default_rng(5)
    X, Y, A, B = (rng.normal(size=(m, 16)) for m in (7, 9, 6, 8))
    X = X + 0.3
    r = eat(X, Y, A, B, permutations=1000, n_bootstrap=1300, seed=11)
    assert (r.ci_low, r.ci_high) == (-1.4341704509311934, 0.4307137247273681)
    r = eat(X, Y, A, B, permutations=1000, n_bootstrap=1300, seed=11, confidence=0.9)
    assert (r.ci_low, r.ci_high) == (-1.3402111800346068, 0.2580345033811923)
    r = sc_eat(X, A, B, permutations=1000, n_bootstrap=1100, seed=3)
    assert (r.ci_low, r.ci_high) == (-1.7277157427472687, 0.692664200677661)
    r = sc_eat(X[0], A, B, permutations=1000, n_bootstrap=700, seed=3)
    assert (r.ci_low, r.ci_high) == (-1.3461560529071979, 0.7002432837270942)
