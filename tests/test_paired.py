"""Paired before/after statistics: exact values on hand cases, the same draw for both conditions, and the coverage of
the difference's interval (and its type-I error at no change) measured by simulation."""

from __future__ import annotations

import numpy as np
import pytest

from vlbias.stats.eat import association, effect_size
from vlbias.stats.paired import paired_eat, paired_group_contrasts, stack


def test_group_range_and_mean_by_hand():
    # person p1 has two rows: clusters are resampled, the estimate is the plain mean of rows per group
    before = [1.0, 3.0, 2.0, 10.0]
    after = [1.0, 1.0, 2.0, 4.0]
    people = ["p1", "p1", "p2", "p3"]
    groups = ["f", "f", "m", "m"]
    p = paired_group_contrasts(before, after, people, groups, n_bootstrap=0)
    assert p.before.tolist() == [abs(2.0 - 6.0)] and p.after.tolist() == [abs(1.0 - 3.0)]
    assert p.difference.tolist() == [-2.0] and p.n_units == 3
    m = paired_group_contrasts(before, after, people, statistic="mean", n_bootstrap=0)
    assert (m.before[0], m.after[0]) == (4.0, 2.0)
    f = p.frame()
    assert (f["before"][0], f["after"][0], f["abs_change"][0], f["relative_change_pct"][0]) == (4, 2, -2, -50)


def test_paired_eat_estimate_is_the_effect_size():
    rng = np.random.default_rng(0)
    X, Y, A, B = (rng.standard_normal((n, 5)) for n in (6, 5, 4, 4))
    X2, Y2 = X + 0.1, Y - 0.1
    unit = lambda v: v / np.linalg.norm(v, axis=1, keepdims=True)  # noqa: E731
    s = [association(unit(w), unit(A), unit(B)) for w in (X, Y, X2, Y2)]
    p = paired_eat(*s, n_bootstrap=200, seed=1)
    assert p.before[0] == pytest.approx(effect_size(X, Y, A, B))
    assert p.after[0] == pytest.approx(effect_size(X2, Y2, A, B))
    # the same draw for both: unchanged associations give identical replicates, so a zero-width difference
    same = paired_eat(s[0], s[1], s[0], s[1], n_bootstrap=200, seed=1)
    np.testing.assert_array_equal(same.before_reps, same.after_reps)
    assert stack([p, same]).names == ["effect_size", "effect_size"] and stack([p, same]).n_units == 22


def _coverage(delta: float, n_sims: int = 300, n: int = 60) -> tuple[float, float]:
    """Share of simulated studies whose 95% interval of the paired difference of means holds ``delta`` (and 0)."""
    rng = np.random.default_rng(42)
    hit = zero = 0
    for i in range(n_sims):
        person = rng.standard_normal(n)  # a large person effect, shared by both conditions
        before = 3 * person + rng.standard_normal(n)
        after = 3 * person + delta + rng.standard_normal(n)
        p = paired_group_contrasts(before, after, np.arange(n), statistic="mean", n_bootstrap=400, seed=i)
        row = p.frame().iloc[0]
        hit += row.difference_low <= delta <= row.difference_high
        zero += row.difference_low <= 0 <= row.difference_high
    return hit / n_sims, zero / n_sims


def test_difference_interval_covers_at_the_level_and_keeps_type_one_error():
    cover, _ = _coverage(0.5)
    assert 0.90 <= cover <= 0.99  # measured 0.927 (300 studies of 60 people, 400 replicates; Monte Carlo SE 0.013)
    cover0, holds_zero = _coverage(0.0)
    assert cover0 == holds_zero and 0.90 <= holds_zero <= 0.99  # measured 0.927: type-I error 0.073 at 5% nominal


def test_pairing_narrows_the_interval_against_independent_draws():
    rng = np.random.default_rng(3)
    person = rng.standard_normal(80)
    before, after = 3 * person, 3 * person + 0.2 + 0.1 * rng.standard_normal(80)
    p = paired_group_contrasts(before, after, np.arange(80), statistic="mean", n_bootstrap=500, seed=0).frame()
    # unpaired: the two conditions' replicates from independent draws
    q = paired_group_contrasts(before, before, np.arange(80), statistic="mean", n_bootstrap=500, seed=1)
    r = paired_group_contrasts(after, after, np.arange(80), statistic="mean", n_bootstrap=500, seed=2)
    unpaired = np.percentile(r.after_reps[:, 0] - q.before_reps[:, 0], [2.5, 97.5])
    assert (p.difference_high - p.difference_low)[0] < 0.1 * (unpaired[1] - unpaired[0])


def test_mismatched_inputs_are_refused():
    with pytest.raises(ValueError, match="same shape"):
        paired_group_contrasts([1.0, 2.0], [1.0], [1, 2], [0, 1])
    with pytest.raises(ValueError, match="needs groups"):
        paired_group_contrasts([1.0, 2.0], [1.0, 2.0], [1, 2])
