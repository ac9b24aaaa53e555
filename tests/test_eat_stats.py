"""The EAT statistics: hand-computed cases, exact = enumerated, exact ≈ sampled, calibration under the null, a
planted effect recovered, reproducibility, and every bad input."""

from __future__ import annotations

import itertools
from math import comb

import numpy as np
import pytest
from scipy.stats import chisquare

from vlbias.stats.eat import EATInputError, association, beyond_null, eat, eat_many, effect_size, sc_eat, sc_eat_each
from vlbias.stats.permutation import sample_subset_sums, subset_sum_test, subset_sum_tests

C60, S60 = np.cos(np.pi / 3), np.sin(np.pi / 3)
# 2-D case worked by hand: s(w) = cos(w, e1) - cos(w, e2)
HX = [[1, 0], [C60, S60]]  # s = 1, 0.5 - 0.866 = -0.366
HY = [[0, 1], [S60, C60]]  # s = -1, 0.366
HA = [[1, 0], [1, 0]]
HB = [[0, 1], [0, 1]]


def test_hand_computed_case():
    s = association(np.vstack([HX, HY]), HA, HB)
    np.testing.assert_allclose(s, [1, C60 - S60, -1, S60 - C60])
    # mean_X s - mean_Y s = 0.634; s over X ∪ Y = {1, -0.366, -1, 0.366}: mean 0, sample var 2.268 / 3
    expected_d = (1 + C60 - S60) / np.sqrt((2 + 2 * (S60 - C60) ** 2) / 3)
    assert expected_d == pytest.approx(0.7291482, abs=1e-6)
    r = eat(HX, HY, HA, HB, n_bootstrap=0)
    assert r.effect_size == pytest.approx(expected_d, rel=1e-12)
    assert r.statistic == pytest.approx(2 * (1 + C60 - S60))
    # the 6 partitions of {1, -.366, -1, .366} into pairs have X-sums .634, 0, 1.366, -1.366, 0, -.634
    assert (r.p_value, r.n_permutations, r.exact) == (pytest.approx(2 / 6), 6, True)
    assert eat(HX, HY, HA, HB, alternative="less", n_bootstrap=0).p_value == pytest.approx(5 / 6)
    assert eat(HX, HY, HA, HB, alternative="two-sided", n_bootstrap=0).p_value == pytest.approx(4 / 6)
    assert effect_size(HX, HY, HA, HB) == pytest.approx(expected_d)


def test_sc_eat_hand_computed():
    # w = e1 against A = {e1, (c60, s60)}, B = {e2, (s60, c60)}: cosines 1, .5 | 0, .866
    r = sc_eat([1.0, 0.0], [[1, 0], [C60, S60]], [[0, 1], [S60, C60]], n_bootstrap=0)
    c = np.array([1, C60, 0, S60])
    assert r.effect_size == pytest.approx((c[:2].mean() - c[2:].mean()) / c.std(ddof=1))
    # pairs of {1, .5, 0, .866}: sums 1.5 (observed), 1, 1.866, .5, 1.366, .866 -> 2 of 6 are >= 1.5
    assert r.p_value == pytest.approx(2 / 6) and r.exact and r.sizes == (1, 0, 2, 2) and r.kind == "sc-eat"
    # a set W scores each attribute by its mean cosine to the set
    W = np.array([[1.0, 0.0], [0.0, 1.0]])
    rs = sc_eat(W, [[1, 0], [C60, S60]], [[0, 1], [S60, C60]], n_bootstrap=0)
    cw = np.array([0.5, (C60 + S60) / 2, 0.5, (C60 + S60) / 2])
    assert rs.effect_size == pytest.approx((cw[:2].mean() - cw[2:].mean()) / cw.std(ddof=1))
    each = sc_eat_each(W, [[1, 0], [C60, S60]], [[0, 1], [S60, C60]], n_bootstrap=0)
    assert [e.effect_size for e in each] == pytest.approx([r.effect_size, -r.effect_size])


def _caliskan_brute_force(X, Y, A, B):
    """Every re-partition of X ∪ Y scored with Caliskan's S = Σ_X s - Σ_Y s, straight from the definition."""
    W = np.vstack([X, Y])
    Wn = W / np.linalg.norm(W, axis=1, keepdims=True)
    An = A / np.linalg.norm(A, axis=1, keepdims=True)
    Bn = B / np.linalg.norm(B, axis=1, keepdims=True)
    s = [np.mean([w @ a for a in An]) - np.mean([w @ b for b in Bn]) for w in Wn]
    nx, n = len(X), len(W)
    stats, means = [], []
    for xi in itertools.combinations(range(n), nx):
        rest = [i for i in range(n) if i not in xi]
        sx, sy = sum(s[i] for i in xi), sum(s[i] for i in rest)
        stats.append(sx - sy)
        means.append(sx / nx - sy / (n - nx))
    obs = sum(s[:nx]) - sum(s[nx:])
    obs_mean = sum(s[:nx]) / nx - sum(s[nx:]) / (n - nx)
    stats, means, eps = np.array(stats), np.array(means), 1e-12
    return {
        "greater": np.mean(stats >= obs - eps),
        "less": np.mean(stats <= obs + eps),
        "two-sided": np.mean(np.abs(means) >= abs(obs_mean) - eps),
    }


@pytest.mark.parametrize("nx,ny", [(4, 4), (5, 7), (8, 3), (6, 6)])
def test_exact_equals_enumeration(nx, ny):
    rng = np.random.default_rng(nx * 10 + ny)
    X, Y = rng.standard_normal((nx, 8)), rng.standard_normal((ny, 8))
    X[:, 0] += 0.5  # a mild association, so p-values are not all near 0.5
    A, B = rng.standard_normal((5, 8)) + np.eye(8)[0], rng.standard_normal((6, 8))
    ref = _caliskan_brute_force(X, Y, A, B)
    for alt, p in ref.items():
        r = eat(X, Y, A, B, alternative=alt, permutations="exact", n_bootstrap=0)
        assert r.exact and r.n_permutations == comb(nx + ny, nx)
        assert r.p_value == pytest.approx(p, abs=1e-15), alt


def test_exact_two_block_counter_equals_single_block():
    # pools above 22 items are counted by meet in the middle across two blocks; it must agree with brute force
    rng = np.random.default_rng(5)
    v = rng.standard_normal(24)
    k = 3  # C(24, 3) = 2024 partitions: enumerable directly
    sums = np.array([v[list(c)].sum() for c in itertools.combinations(range(24), k)])
    obs = v[:k].sum()
    assert subset_sum_test(v, k, permutations="exact").p_value == pytest.approx(np.mean(sums >= obs - 1e-12))
    assert subset_sum_test(v, k, permutations="exact", alternative="less").p_value == pytest.approx(
        np.mean(sums <= obs + 1e-12)
    )


def test_exact_and_sampled_agree():
    rng = np.random.default_rng(11)
    X, Y, A, B = (rng.standard_normal((n, 16)) for n in (10, 10, 10, 10))
    X[:, :2] += 0.3
    A[:, :2] += 0.5
    exact = eat(X, Y, A, B, permutations="exact", n_bootstrap=0)
    n = 100_000
    sampled = eat(X, Y, A, B, permutations=n, n_bootstrap=0, seed=3)
    assert exact.exact and exact.n_permutations == 184756
    assert not sampled.exact and sampled.n_permutations == n
    se = np.sqrt(exact.p_value * (1 - exact.p_value) / n)
    assert abs(sampled.p_value - exact.p_value) < 5 * se + 1 / n
    # a budget that covers every partition gives the exact test
    assert eat(X, Y, A, B, permutations=184756, n_bootstrap=0).exact
    assert not eat(X, Y, A, B, permutations=184755, n_bootstrap=0).exact


@pytest.mark.parametrize(
    "n,k,chunk",
    [
        (9, 4, 5000),  # mask bits set with probability 1/2
        (9, 2, 5000),  # 1/4: two raw words per mask word
        (9, 7, 333),  # 3/4
        (12, 5, 7),  # tiny batches
    ],
)
def test_sampler_draws_uniform_subsets(n, k, chunk):
    # powers of two make every subset's sum unique, so counting sums counts subsets
    v = 2.0 ** np.arange(n)
    rng = np.random.Generator(np.random.PCG64(1))
    sums = np.concatenate(list(sample_subset_sums(v, k, comb(n, k) * 400, rng, chunk=chunk)))
    values, counts = np.unique(sums, return_counts=True)
    assert len(values) == comb(n, k)
    assert all(bin(int(x)).count("1") == k for x in values)
    assert chisquare(counts).pvalue > 1e-3


@pytest.mark.parametrize("k", [60, 30])
def test_sampler_includes_every_item_and_pair_equally_often(k):
    # rows of the identity score each item alone, so sums[i] says whether item i was drawn: over a 130-item pool
    # (halves of 65 items: two mask words each), every item must be in a k/n share of the subsets, and every pair
    # of items in k(k-1)/(n(n-1)), whether the two share a byte, a word, a half or none
    n, N = 130, 20_000
    rng = np.random.Generator(np.random.PCG64(3))
    drawn = np.concatenate([s.T for s in sample_subset_sums(np.eye(n), k, N, rng)])
    assert drawn.shape == (N, n) and set(np.unique(drawn)) == {0.0, 1.0} and (drawn.sum(axis=1) == k).all()
    p1 = k / n
    z = (drawn.mean(axis=0) - p1) / np.sqrt(p1 * (1 - p1) / N)
    assert np.abs(z).max() < 4.5  # 130 items: a 4.5-SE deviation anywhere has probability 1e-3
    pairs = drawn.T @ drawn / N
    p2 = k * (k - 1) / (n * (n - 1))
    i, j = np.triu_indices(n, 1)
    half = (n + 1) // 2
    local = np.where(i < half, i, i - half), np.where(j < half, j, j - half)
    same_half = (i < half) == (j < half)
    for name, sel in {
        "same byte": same_half & (local[0] // 8 == local[1] // 8),
        "same word, other byte": same_half & (local[0] // 64 == local[1] // 64) & (local[0] // 8 != local[1] // 8),
        "same half, other word": same_half & (local[0] // 64 != local[1] // 64),
        "other half": ~same_half,
    }.items():
        # each pair's share has variance <= p2 / N; a class mean of m pairs has SE <= sqrt(p2 / N) (pairs correlate)
        assert abs(pairs[i[sel], j[sel]].mean() - p2) < 4 * np.sqrt(p2 * (1 - p2) / N), name


def test_sampler_draws_more_masks_where_a_popcount_runs_short():
    from vlbias.stats.permutation import _Half, _share

    # thinning towards 2-subsets of 5 items draws about 3.5 masks per use, so 2,000 masks of popcount 4 (5 of 32
    # masks) run short and are drawn again; they must still be uniform over the five 4-subsets
    half = _Half(2.0 ** np.arange(5)[None, :], 1, 1, _share(5, 5, 4))
    picked = half.pick(np.random.Generator(np.random.PCG64(0)), np.full(2000, 4))
    masks = picked[0, :, 0]
    values, counts = np.unique(masks, return_counts=True)
    assert sorted(values) == [15, 23, 27, 29, 30] and chisquare(counts).pvalue > 1e-3
    assert (picked[:, :, 1:] == 0).all()


def test_sampled_shares_follow_the_hypergeometric_distribution():
    from scipy.stats import binom, hypergeom

    from vlbias.stats.permutation import _Half, _popcounts, _share

    for size, rest, need in [(5, 7, 6), (350, 350, 350), (65, 65, 30), (20, 3, 21)]:
        np.testing.assert_allclose(
            _share(size, rest, need), hypergeom.pmf(np.arange(size + 1), size + rest, size, need), atol=1e-14
        )
    for size, a, t in [(5, 1, 1), (350, 1, 1), (65, 3, 4), (700, 1, 9)]:
        np.testing.assert_allclose(_popcounts(size, a, t), binom.pmf(np.arange(size + 1), size, a / 2**t), atol=1e-14)
    # thinned masks: the first half's share of the group (12 items, 6 of them in the group)
    for a, t in [(1, 1), (3, 2)]:
        half = _Half(np.zeros((1, 5)), a, t, _share(5, 7, 6))
        _, counts = half.thin(np.random.default_rng(0), 100_000)
        expected = hypergeom.pmf(np.arange(6), 12, 5, 6) * 100_000
        assert chisquare(np.bincount(counts, minlength=6), expected).pvalue > 1e-3


def test_mask_density_is_the_simplest_close_to_the_group_share():
    from vlbias.stats.permutation import _density

    # equal or near-equal groups: one raw word per mask word; else the shortest dyadic fraction near k / n
    assert [_density(n, k) for n, k in [(700, 350), (680, 350), (2000, 1000), (20, 10)]] == [(1, 1)] * 4
    assert _density(600, 100) == (3, 4)  # 1/6 ≈ 3/16, within one SD on 300 items
    assert _density(1500, 2) == (1, 9)
    for n in range(2, 80):
        for k in range(1, n):
            a, t = _density(n, k)
            m = (n + 1) // 2
            assert a % 2 == 1 and 0 < a < 2**t
            assert (k * 2**t - a * n) ** 2 * m <= n * n * a * (2**t - a)


def test_popcount_without_numpy_bitwise_count(monkeypatch):
    from vlbias.stats.permutation import _popcount

    words = np.random.default_rng(0).integers(0, 2**64, 1000, dtype=np.uint64, endpoint=False)
    words[:3] = [0, 2**64 - 1, 1 << 63]
    expected = [bin(int(w)).count("1") for w in words]
    assert list(_popcount(words)) == expected
    v = ((np.arange(130) * 104729) % 257) / 257.0
    with_count = subset_sum_test(v, 60, permutations=5_000, seed=7)
    monkeypatch.delattr(np, "bitwise_count", raising=False)  # numpy < 2
    assert list(_popcount(words)) == expected
    assert subset_sum_test(v, 60, permutations=5_000, seed=7) == with_count


def test_shared_draws_give_each_row_its_own_p_value():
    rng = np.random.default_rng(6)
    rows = rng.standard_normal((5, 140))
    rows[1] *= 3
    rows[2, :70] += 0.4
    rows[3] = rows[3].mean()  # every partition ties: two-sided p is 1 without sampling
    rows[4, :70] += 0.1
    for alternative in ("greater", "less", "two-sided"):
        together = subset_sum_tests(rows, 70, permutations=30_000, alternative=alternative, seed=4)
        alone = [subset_sum_test(r, 70, permutations=30_000, alternative=alternative, seed=4) for r in rows]
        assert together == alone
        assert len({r.p_value for r in together}) >= 4
    exact = subset_sum_tests(rows[:, :20], 8, permutations="exact")
    assert exact == [subset_sum_test(r, 8, permutations="exact") for r in rows[:, :20]]


def test_eat_many_equals_eat_test_by_test():
    rng = np.random.default_rng(9)
    sizes = [(40, 40, 6, 7), (40, 40, 5, 5), (30, 34, 6, 6), (40, 40, 8, 3), (6, 6, 4, 4), (40, 40, 5, 6)]
    tests = [tuple(rng.standard_normal((m, 12)) + (0.3 if r == 0 else 0) for r, m in enumerate(s)) for s in sizes]
    kw = {"permutations": 20_000, "seed": 3, "n_bootstrap": 200}
    together = list(eat_many(tests, **kw))
    alone = [eat(*t, **kw) for t in tests]
    assert together == alone  # every field but the scores (not compared): d, p, CI, counts, sizes
    for a, b in zip(together, alone):
        np.testing.assert_array_equal(a.scores, b.scores)
    assert [r.exact for r in together] == [False, False, False, False, True, False]
    assert len({r.p_value for r in together}) == 6


def test_blas_runs_on_one_thread_inside_the_statistics(monkeypatch):
    # default OpenBLAS threads made the small products of association() 1.2-54 ms instead of 1.0-1.4 ms on a busy
    # machine (issue 18): the statistics pin BLAS to one thread, and give the caller's setting back
    from threadpoolctl import threadpool_info, threadpool_limits

    import vlbias.stats.eat as se

    def blas_threads():
        return {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}

    seen = []
    for name in ("association", "_bootstrap_eat", "_bootstrap_sc", "_permutations", "_permutation"):
        real = getattr(se, name)

        def spy(*args, _real=real, _name=name, **kw):
            seen.append((_name, blas_threads()))
            return _real(*args, **kw)

        monkeypatch.setattr(se, name, spy)
    rng = np.random.default_rng(0)
    X, Y, A, B = (rng.standard_normal((n, 8)) for n in (10, 10, 6, 6))
    with threadpool_limits(limits=2, user_api="blas"):
        before = blas_threads()
        eat(X, Y, A, B, n_bootstrap=50)
        sc_eat(X[0], A, B, n_bootstrap=50)
        assert blas_threads() == before
    assert sorted(name for name, _ in seen) == sorted(
        ["association", "_bootstrap_eat", "_permutations", "_bootstrap_sc", "_permutation"]
    )
    assert all(threads == {1} for _, threads in seen), seen


def test_sampled_memory_stays_within_its_bound():
    import tracemalloc

    from vlbias.stats.permutation import _Half, _share

    # every lookup table holds 256 sums (2 KiB), 256 bytes per item, and a batch of masks stays within a few MiB
    # whatever the pool size (the previous sampler peaked at 294 MiB on a 2,000-item pool, 94 MiB on 700)
    assert _Half(np.ones((3, 1000)), 1, 1, _share(1000, 1000, 1000)).tables.shape == (125, 3, 256)
    for n in (700, 2_000, 20_000):
        v = np.random.default_rng(n).standard_normal(n)
        tracemalloc.start()
        try:
            subset_sum_test(v, n // 2, permutations=20_000, seed=0)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 16 * 2**20 + 512 * n, (n, peak)  # 10 MiB measured at 2,000 items, 19 at 20,000


def test_same_seed_same_p_on_any_machine():
    # inputs from integer arithmetic only, so they are bit-identical everywhere; the p-values are pinned (they
    # changed with the masked-halves sampler of issue 18: same distribution, other draws)
    v = ((np.arange(50) * 7919) % 101) / 101.0
    r = subset_sum_test(v, 25, permutations=200_000, seed=2024)
    assert (r.p_value, r.n_extreme) == (126510 / 200001, 126509)
    big = ((np.arange(130) * 104729) % 257) / 257.0  # halves of 65 items: two mask words each
    assert subset_sum_test(big, 60, permutations=20_000, seed=7).n_extreme == 18052
    assert subset_sum_test(big, 30, permutations=20_000, seed=7).n_extreme == 19926  # mask bits set with Pr 1/4
    assert subset_sum_test(v, 25, permutations=200_000, seed=2025).n_extreme != r.n_extreme


@pytest.mark.parametrize("k", [22, 10])
def test_sampled_agrees_with_exact_on_a_44_item_pool(k):
    # the largest pool the exact counter takes: halves of 22 items, several mask bytes; k = 10 draws mask bits
    # with probability 1/4
    rng = np.random.default_rng(k + 100)
    v = rng.standard_normal(44)
    v[:k] += 0.4
    exact = subset_sum_test(v, k, permutations="exact")
    n = 200_000
    sampled = subset_sum_test(v, k, permutations=n, seed=1)
    assert exact.exact and not sampled.exact and 0.01 < exact.p_value < 0.5
    se = np.sqrt(exact.p_value * (1 - exact.p_value) / n)
    assert abs(sampled.p_value - exact.p_value) < 5 * se + 1 / n


def test_ties_survive_summation_order():
    # 0.1 + 0.2 != 0.3 + 0.0 in floating point, yet the partitions {0.1, 0.2} and {0.3, 0.0} tie
    r = subset_sum_test([0.1, 0.2, 0.3, 0.0], 2, permutations="exact")
    assert r.p_value == pytest.approx(4 / 6)
    assert subset_sum_test([0.1, 0.2, 0.3, 0.0], 2, permutations="exact", alternative="less").p_value == (
        pytest.approx(4 / 6)
    )
    # all scores equal: every partition ties
    assert eat([[1, 0], [1, 0]], [[1, 0], [1, 0]], HA, HB, n_bootstrap=0).p_value == 1.0


def test_sign_flips_when_targets_swap():
    rng = np.random.default_rng(3)
    X, Y, A, B = (rng.standard_normal((n, 10)) for n in (6, 7, 5, 5))
    xy = eat(X, Y, A, B, n_bootstrap=300, seed=1)
    yx = eat(Y, X, A, B, n_bootstrap=300, seed=1)
    assert yx.effect_size == pytest.approx(-xy.effect_size)
    assert yx.statistic == pytest.approx(-xy.statistic)
    assert yx.p_value == pytest.approx(eat(X, Y, A, B, alternative="less", n_bootstrap=0).p_value)
    ab = eat(X, Y, B, A, n_bootstrap=0)  # swapping the attributes flips d too
    assert ab.effect_size == pytest.approx(-xy.effect_size)


def _null_rejection_rate(n_sims, sizes, permutations, alternative, seed):
    rng = np.random.default_rng(seed)
    rejections = 0
    for i in range(n_sims):
        X, Y, A, B = (rng.standard_normal((n, 12)) for n in sizes)
        p = eat(X, Y, A, B, permutations=permutations, alternative=alternative, n_bootstrap=0, seed=i).p_value
        rejections += p <= 0.05
    return rejections / n_sims


@pytest.mark.parametrize(
    "sizes,permutations,alternative",
    [
        ((6, 6, 5, 5), "exact", "greater"),  # 924 partitions: the exact test's size is 46/924
        ((7, 5, 4, 6), "exact", "two-sided"),  # unequal sizes
        ((10, 10, 4, 4), 99, "greater"),  # sampled with the +1 correction: size exactly 5/100
        ((12, 4, 4, 4), 99, "two-sided"),  # sampled, unequal groups: mask bits set with probability 3/4
    ],
)
def test_type_one_error_is_calibrated(sizes, permutations, alternative):
    # 4000 null simulations: the standard error of the rejection rate at 0.05 is 0.0034, so [0.04, 0.06] is a
    # ±3 SE band that a miscalibrated test (e.g. without ties or the +1 correction) leaves
    rate = _null_rejection_rate(4000, sizes, permutations, alternative, seed=sum(sizes))
    assert 0.04 <= rate <= 0.06, rate


def test_sc_eat_type_one_error_is_calibrated():
    rng = np.random.default_rng(8)
    rejections = 0
    for i in range(3000):
        w, A, B = rng.standard_normal(12), rng.standard_normal((6, 12)), rng.standard_normal((6, 12))
        rejections += sc_eat(w, A, B, n_bootstrap=0, seed=i).p_value <= 0.05
    assert 0.04 <= rejections / 3000 <= 0.06


def _planted(rng, n, mu, sigma, eps=0.2, dim=12):
    """Targets whose s(w, A, B) is exactly sqrt(2) cos(phi) / sqrt(1 + eps^2) with cos(phi) ~ N(mu, sigma)."""
    cos_phi = np.clip(rng.normal(mu, sigma, n), -1, 1)
    z = rng.standard_normal((n, dim - 3))
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    w = np.zeros((n, dim))
    w[:, 0], w[:, 1] = cos_phi / np.sqrt(2), -cos_phi / np.sqrt(2)
    w[:, 3:] = np.sqrt(1 - cos_phi**2)[:, None] * z
    return w


def test_planted_association_is_recovered_within_its_interval():
    # A = {e1 ± eps e3}, B = {e2 ± eps e3}: s(w) is linear in cos(phi), so X ~ N(mu_x, sigma), Y ~ N(mu_y, sigma)
    # gives population d = (mu_x - mu_y) / sqrt(sigma^2 + (mu_x - mu_y)^2 / 4) for equal group sizes
    eps, mu_x, mu_y, sigma = 0.2, 0.10, -0.05, 0.15
    A = np.array([[1, 0, eps] + [0] * 9, [1, 0, -eps] + [0] * 9])
    B = np.array([[0, 1, eps] + [0] * 9, [0, 1, -eps] + [0] * 9])
    delta = mu_x - mu_y
    d_true = delta / np.sqrt(sigma**2 + delta**2 / 4)
    rng = np.random.default_rng(2)
    covered, estimates = 0, []
    n_sims = 150
    for i in range(n_sims):
        X, Y = _planted(rng, 40, mu_x, sigma), _planted(rng, 40, mu_y, sigma)
        r = eat(X, Y, A, B, permutations=2000, n_bootstrap=400, seed=i)
        estimates.append(r.effect_size)
        covered += r.ci_low <= d_true <= r.ci_high
    assert np.mean(estimates) == pytest.approx(d_true, abs=0.05)
    assert 0.88 <= covered / n_sims <= 0.99  # nominal 95% (percentile intervals run a little narrow)
    one = eat(_planted(rng, 60, mu_x, sigma), _planted(rng, 60, mu_y, sigma), A, B, seed=0)
    assert one.ci_low <= d_true <= one.ci_high and one.p_value < 0.001


def test_bootstrap_is_seeded_and_optional():
    rng = np.random.default_rng(4)
    X, Y, A, B = (rng.standard_normal((n, 6)) for n in (5, 5, 4, 4))
    a = eat(X, Y, A, B, seed=9, n_bootstrap=500)
    b = eat(X, Y, A, B, seed=9, n_bootstrap=500)
    assert (a.ci_low, a.ci_high, a.p_value) == (b.ci_low, b.ci_high, b.p_value)
    assert a.ci_low < a.effect_size < a.ci_high
    c = eat(X, Y, A, B, seed=9, n_bootstrap=0)
    assert np.isnan(c.ci_low) and c.p_value == a.p_value  # the p-value does not depend on the bootstrap


@pytest.mark.parametrize(
    "args,kw,message",
    [
        (([], HY, HA, HB), {}, "set X must be a 2-D array"),
        ((np.zeros((0, 2)), HY, HA, HB), {}, "set X is empty"),
        (([[1, 0]], HY, HA, HB), {}, "set X has only 1 item"),
        ((HX, HY, [[1, 0]], HB), {}, "set A has only 1 item"),
        ((HX, HY, HA, [[0, 1, 0], [1, 0, 0]]), {}, "set B has embeddings of dimension 3"),
        ((HX, [[np.nan, 1], [0, 1]], HA, HB), {}, "set Y holds a value that is not finite"),
        ((HX, [[0, 0], [0, 1]], HA, HB), {}, "all-zero embedding"),
        ((HX, HY, HA, HB), {"alternative": "bigger"}, "unknown alternative"),
        ((HX, HY, HA, HB), {"permutations": 0}, "at least 1"),
        ((HX, HY, HA, HB), {"permutations": "all"}, "positive number or 'exact'"),
        ((HX, HY, HA, HB), {"n_bootstrap": -1}, "0 or more"),
        ((HX, HY, HA, HB), {"confidence": 1.5}, "between 0 and 1"),
    ],
)
def test_bad_inputs_are_one_line_errors(args, kw, message):
    with pytest.raises(EATInputError, match=message) as e:
        eat(*args, **kw)
    assert "\n" not in str(e.value)


def test_exact_refused_when_too_large():
    rng = np.random.default_rng(0)
    X, Y, A, B = (rng.standard_normal((n, 4)) for n in (25, 25, 3, 3))
    with pytest.raises(EATInputError, match="too many to count"):
        eat(X, Y, A, B, permutations="exact", n_bootstrap=0)


def test_equal_associations_give_no_effect_size_and_no_interval():
    """All targets the same vector (up to rounding): d is undefined, and so is its bootstrap interval."""
    from vlbias.stats.eat import eat

    rng = np.random.default_rng(3)
    A, B = rng.standard_normal((6, 16)), rng.standard_normal((6, 16))
    base = rng.standard_normal(16)
    targets = base + 1e-15 * rng.standard_normal((10, 16))  # equal up to the last bits, like a collapsed encoder
    res = eat(targets[:5], targets[5:], A, B, permutations="exact", n_bootstrap=200, seed=0)
    assert np.isnan(res.effect_size)
    assert np.isnan(res.ci_low) and np.isnan(res.ci_high)


@pytest.mark.parametrize("alternative", ["greater", "less", "two-sided"])
@pytest.mark.parametrize("permutations", ["exact", 100])
def test_undefined_effect_size_has_p_one(alternative, permutations):
    """Targets that differ only in length (the same direction): every s(w, A, B) is equal up to the last bit, d is
    undefined, and p is 1 (it was 0.041 exact and 0.030 sampled here, from rounding noise)."""
    from vlbias.stats.eat import eat, sc_eat

    rng = np.random.default_rng(1)
    w = rng.normal(size=8)
    X, Y = (np.outer(rng.uniform(0.5, 3, 6), w) for _ in range(2))
    A, B = rng.normal(size=(4, 8)), rng.normal(size=(4, 8))
    res = eat(X, Y, A, B, permutations=permutations, alternative=alternative, n_bootstrap=0)
    assert np.ptp(res.scores) > 0 and np.isnan(res.effect_size)  # unequal in the last bits, yet d undefined
    assert res.p_value == 1.0
    sc = sc_eat(w, np.outer(rng.uniform(0.5, 3, 6), A[0]), np.outer(rng.uniform(0.5, 3, 6), A[0]),
                permutations=permutations, alternative=alternative, n_bootstrap=0)  # fmt: skip
    assert np.isnan(sc.effect_size) and sc.p_value == 1.0


@pytest.mark.parametrize("budget", [2.5, 0, -1, True, "100"])
def test_a_permutation_budget_is_a_whole_number_never_rounded(budget):
    v = np.arange(6.0)
    with pytest.raises(ValueError, match="the permutation budget must be a whole number of at least 1"):
        subset_sum_test(v, 3, permutations=budget)  # 2.5 used to run as 2
    assert subset_sum_test(v, 3, permutations=np.int64(20)).exact  # C(6, 3) = 20: numpy integers are whole numbers


def test_the_legacy_shuffle_sampler_draws_the_studys_partitions():
    """sampler="ghate2025-legacy": the partitions of np.random.seed(seed) + one shuffle of arange(n) per draw (Ghate
    et al.'s loop); exact within the budget; the study's one-sided test only."""
    from vlbias.stats.legacy_shuffle import legacy_shuffle_test
    from vlbias.stats.permutation import subset_sum_test

    v = np.random.default_rng(4).normal(size=16)
    rs, count = np.random.RandomState(7), 0
    for _ in range(300):
        a = np.arange(16)
        rs.shuffle(a)
        count += bool(v[a[:8]].sum() >= v[:8].sum())
    got = legacy_shuffle_test(v, 8, permutations=300, seed=7)
    assert (got.n_extreme, got.p_value, got.exact) == (count, (1 + count) / 301, False)
    exact = legacy_shuffle_test(v, 8, permutations=20_000, seed=7)  # C(16, 8) = 12,870 partitions
    assert exact == subset_sum_test(v, 8, permutations=20_000) and exact.exact
    with pytest.raises(ValueError, match="one-sided test \\(alternative greater\\), not two-sided"):
        legacy_shuffle_test(v, 8, permutations=300, alternative="two-sided", seed=7)
    with pytest.raises(ValueError, match="seed from 0 to 2\\*\\*32 - 1"):
        legacy_shuffle_test(v, 8, permutations=300, seed=2**32)


# ---------------------------------------------------------------------------------------------- random-init null
def test_beyond_null_compares_the_magnitude_of_the_copies_hand_cases():
    # the copies reach |d| = 1.1 with the other sign: an untrained network does that much, so +0.96 is not beyond
    assert beyond_null(0.96, [-1.10, -0.96, -1.0]) is False
    assert beyond_null(1.2, [-1.10, 0.3]) is True
    assert beyond_null(-1.2, [-1.10, 0.3], "less") is True and beyond_null(-1.0, [-1.10, 0.3], "less") is False
    assert beyond_null(-1.2, [0.5, 1.1], "two-sided") is True and beyond_null(1.05, [-1.1], "two-sided") is False
    assert beyond_null(1.1, [-1.1]) is False  # a tie is not beyond
    with pytest.raises(EATInputError, match="at least one finite"):
        beyond_null(0.5, [])
    with pytest.raises(EATInputError, match="at least one finite"):
        beyond_null(0.5, [float("nan")])
    with pytest.raises(EATInputError, match="unknown alternative"):
        beyond_null(0.5, [0.1], "bigger")


def test_beyond_null_happens_at_most_one_time_in_n_plus_one_for_an_untrained_model():
    """The guarantee, by simulation: a model exchangeable with its N copies (all d i.i.d., symmetric: the random sign
    of untrained networks) is beyond two-sided 1/(N+1) of the time, one-sided half that."""
    rng = np.random.default_rng(3)
    n, reps = 3, 20_000
    d = rng.standard_normal((reps, n + 1))
    two = np.mean([beyond_null(r[0], r[1:], "two-sided") for r in d])
    greater = np.mean([beyond_null(r[0], r[1:], "greater") for r in d])
    se = np.sqrt(0.25 * 0.75 / reps)
    assert abs(two - 1 / (n + 1)) < 4 * se, two
    assert abs(greater - 0.5 / (n + 1)) < 4 * se, greater
