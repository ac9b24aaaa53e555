"""``--preset ghate2025`` against an independent computation of Ghate et al.'s (2025) association test.

The reference below is written from the paper and from the logic of the released code, github.com/kshitishghate/
CLIP_bias at commit 8dffa18 (measure_bias_and_performance/sc_weat.py, class WEAT: ``similarities`` (cosine of every
row of X ∪ Y with every row of A ∪ B), ``s_wAB``, ``s_XAB`` (the sum of s over a candidate X), ``p`` (non-parametric
branch), ``effect_size``; measure_bias_and_performance/perform_cross_modal.py: ``np.random.seed(82804230)``
immediately before every test, ``npermutations = min(1_000_000, C(|X| + |Y|, |X|))``; experiments/
data_post_processing.ipynb cell 5: ``effect_size`` times -1 on every Gender/Valence row). It uses numpy's global
legacy generator, as the study does, and enumerates exact tests with itertools.combinations; it shares no code with
vlbias. Both sides get identical inputs: the float32 embeddings the ``vectors:`` model returns (the reference
computes in float64, as vlbias does; the study's float32 arithmetic is a listed deviation).

Figures (these inputs; the assertions hold them):

- effect sizes: max |d_vlbias - d_reference| = 2.2e-16 over the 8 rows of the battery-like command-line run (two
  tests in four orders; 1.4e-16 and 1.1e-16 in the two direct cases); asserted below 1e-12. The reported d (minus d
  on the gender-like rows) likewise.
- exact p-values (6 v 6 texts or images: C(12, 6) = 924 partitions; 7 rows): identical, max |difference| = 0.
- sampled p-values (12 v 12: C(24, 12) = 2,704,156 > 10^6, so 999,999 drawn partitions + the observed one; 3 rows):
  identical bit for bit with the ghate2025-legacy sampler (max |difference| = 0: the same count). vlbias's own
  sampler (``--sampler vlbias``) draws other partitions from the same distribution: 0.106263 against 0.105801,
  |difference| = 4.6e-4 within 4 sqrt(p (1 - p) / 10^6) = 1.2e-3.
- associations equal up to rounding (spread 6.6e-17): the study's logic reports d = -0.795 and p = 0.971, both
  rounding noise; vlbias reports d = NaN and p = 1.
"""

from __future__ import annotations

import itertools
from math import comb

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.helpers import write_images
from vlbias.cli import main
from vlbias.models import load_model
from vlbias.stats.eat import eat

SEED = 82804230


# ---------------------------------------------------------------------------------------------------- reference
def reference(X, Y, A, B, *, flip: bool = False, max_samples: int = 10**6):
    """Ghate et al.'s WEAT on (X, Y, A, B): (d, p, partitions counted, d as reported), from CLIP_bias's logic."""
    X, Y, A, B = (np.asarray(m, dtype=np.float64) for m in (X, Y, A, B))
    n = len(X)
    assert len(Y) == n  # WEAT.p asserts equal target sets
    XY, AB = np.concatenate([X, Y]), np.concatenate([A, B])

    def unit(M):
        return M / np.sqrt((M * M).sum(axis=1))[:, None]

    sim = unit(XY) @ unit(AB).T  # sklearn's cosine_similarity: rows normalised, then a dot product
    s = sim[:, : len(A)].mean(axis=1) - sim[:, len(A) :].mean(axis=1)  # s_wAB for every w of X then Y
    with np.errstate(invalid="ignore", divide="ignore"):
        d = (np.mean(s[:n]) - np.mean(s[n:])) / np.std(s, ddof=1)
    n_samples = min(max_samples, comb(2 * n, n))  # perform_cross_modal.py's npermutations
    observed = s[np.arange(n)].sum()
    true = total = 0
    if comb(2 * n, n) > n_samples:  # sampled: the observed partition counted once, then n_samples - 1 shuffles
        true = total = 1
        state = np.random.get_state()
        np.random.seed(SEED)
        try:
            for _ in range(n_samples - 1):
                a = np.arange(2 * n)
                np.random.shuffle(a)
                si = s[a[:n]].sum()
                true += bool(si > observed or si == observed)
                total += 1
        finally:
            np.random.set_state(state)
    else:  # exact: every partition, the observed one included
        for xi in itertools.combinations(np.arange(2 * n), n):
            si = s[np.array(xi)].sum()
            true += bool(si > observed or si == observed)
            total += 1
    return d, true / total, total, -d if flip else d


# ---------------------------------------------------------------------------------------------------- stats
def _sets(rng, sizes, dim=16, shift=0.4):
    e = np.eye(dim)
    X, Y, A, B = (rng.standard_normal((k, dim)) for k in sizes)
    return X + shift * e[0], Y + shift * e[1], A + shift * e[0], B + shift * e[1]


def test_the_statistic_agrees_with_the_reference():
    rng = np.random.default_rng(2025)
    # exact: 6 v 6 (C(12, 6) = 924 partitions)
    X, Y, A, B = _sets(rng, (6, 6, 4, 5), shift=0.2)
    d, p, total, _ = reference(X, Y, A, B)
    ours = eat(X, Y, A, B, permutations=999_999, sampler="ghate2025-legacy", seed=SEED, n_bootstrap=0)
    assert total == 924 and ours.exact and ours.n_permutations == 924
    assert abs(ours.effect_size - d) < 1e-12 and ours.p_value == p
    # sampled: 12 v 12 (C(24, 12) = 2,704,156 > 10^6)
    X, Y, A, B = _sets(rng, (12, 12, 5, 6), shift=0.1)
    d, p, total, _ = reference(X, Y, A, B)
    legacy = eat(X, Y, A, B, permutations=999_999, sampler="ghate2025-legacy", seed=SEED, n_bootstrap=0)
    assert total == 10**6 and not legacy.exact and legacy.n_permutations == 999_999
    assert abs(legacy.effect_size - d) < 1e-12
    assert legacy.p_value == p and 0.001 < p < 0.999  # bit for bit, on a p-value that is not at an edge
    own = eat(X, Y, A, B, permutations=999_999, seed=SEED, n_bootstrap=0)  # vlbias's sampler: other draws
    assert own.p_value != p and abs(own.p_value - p) <= 4 * np.sqrt(p * (1 - p) / 10**6)
    # every association equal up to rounding (targets of one direction, of different lengths): the study's code
    # divides rounding noise by rounding noise; vlbias says d is undefined and p = 1
    rng = np.random.default_rng(7)
    w = rng.standard_normal(16)
    X, Y = np.outer(rng.uniform(0.5, 3, 6), w), np.outer(rng.uniform(0.5, 3, 6), w)
    A, B = rng.standard_normal((4, 16)), rng.standard_normal((5, 16))
    with np.errstate(all="ignore"):
        d, p, _, _ = reference(X, Y, A, B)
    assert (round(d, 3), round(p, 3)) == (-0.795, 0.971)  # numbers made of rounding noise
    flat = eat(X, Y, A, B, permutations=999_999, sampler="ghate2025-legacy", seed=SEED, n_bootstrap=0)
    assert np.ptp(flat.scores) < 1e-15 and np.isnan(flat.effect_size) and flat.p_value == 1.0


# ---------------------------------------------------------------------------------------------------- the preset
def _battery_like(tmp_path):
    """Two cross-modal tests in the battery's shape: flowers-like (12 v 12 sentences: sampled; 6 v 6 images:
    exact) and gender-like (6 v 6 each way, reported with minus d), both against text and image attributes."""
    rng = np.random.default_rng(13)
    dim, keys, vecs, tests = 24, [], [], []
    e = np.eye(dim)
    attrs = {}
    for role, k, n_img in (("A", 7, 5), ("B", 6, 5)):
        texts = [f"This is the word {role.lower()}{i}." for i in range(k)]
        folder = tmp_path / f"val_{role}"
        imgs = write_images(folder, n=n_img, size=(8, 8), prefix=f"val{role}")
        attrs[role] = {"name": f"valence {role}", "texts": texts, "images": folder.name}
        keys += texts + [p.name for p in imgs]
        vecs += [rng.standard_normal(dim) + (0.3 * e[0] if role == "A" else 0.3 * e[1]) for _ in range(k + n_img)]
    for name, n_text, n_img, flip in (("flowers", 12, 6, False), ("gender", 6, 6, True)):
        sets = {}
        for role, bias in (("X", 0.15), ("Y", -0.05)):
            texts = [f"{name} {role} text {i}." for i in range(n_text)]
            folder = tmp_path / f"{name}_{role}"
            imgs = write_images(folder, n=n_img, size=(8, 8), prefix=f"{name}{role}")
            sets[role] = {"name": f"{name} {role}", "texts": texts, "images": folder.name}
            keys += texts + [p.name for p in imgs]
            vecs += [rng.standard_normal(dim) + bias * (e[0] - e[1]) for _ in range(n_text + n_img)]
        test = {"title": name, **sets, **attrs}
        if flip:
            test["reported_sign"] = {"ghate2025": -1}
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(test), encoding="utf-8")
        tests.append(tmp_path / f"{name}.yaml")
    np.savez(tmp_path / "vectors.npz", keys=np.array(keys), vectors=np.array(vecs, dtype=np.float32))
    return f"vectors:{tmp_path / 'vectors.npz'}", tests


@pytest.mark.slow
def test_vlbias_eat_preset_ghate2025_reproduces_the_study(tmp_path):
    """The command line with the preset, on a battery-like set of rows (two tests in four orders), gives the
    reference's d, p and reported d: exact p-values and sampled ones bit for bit."""
    spec, tests = _battery_like(tmp_path)
    out = tmp_path / "out.parquet"
    args = ["eat", "-m", spec, "--preset", "ghate2025", "--out", str(out)]
    assert main(args + [a for t in tests for a in ("--test-file", str(t))]) == 0
    got = pd.read_parquet(out)
    assert len(got) == 8 and (got["status"] == "ok").all()
    assert got["ci_low"].isna().all() and (got["alternative"] == "greater").all()  # the study has no interval
    enc = load_model(spec)
    worst_d, compared = 0.0, {"exact": 0, "sampled": 0}
    for row in got.itertuples():
        test = yaml.safe_load((tmp_path / f"{row.test}.yaml").read_text())
        sides = {}
        for role in "XYAB":
            s = test[role]
            if (row.target_modality if role in "XY" else row.attribute_modality) == "image":
                folder = tmp_path / s["images"]
                sides[role] = enc.encode_images(sorted(folder.iterdir()), root=folder)
            else:
                sides[role] = enc.encode_texts(s["texts"])
        d, p, total, reported = reference(*(sides[r] for r in "XYAB"), flip=row.test == "gender")
        worst_d = max(worst_d, abs(row.effect_size - d), abs(row.effect_size_reported - reported))
        assert row.p_value == p, (row.test, row.order)
        assert row.reported_sign == (-1 if row.test == "gender" else 1)
        if row.exact:
            assert row.n_permutations == total
        else:
            assert (row.n_permutations, total) == (999_999, 10**6)
        compared["exact" if row.exact else "sampled"] += 1
    assert worst_d < 1e-12
    assert compared == {"exact": 6, "sampled": 2}
