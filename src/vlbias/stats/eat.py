"""Embedding Association Tests (WEAT, SEAT, iEAT and cross-modal EATs) on arrays of embeddings.

Definitions (Caliskan, Bryson & Narayanan 2017):

- ``s(w, A, B) = mean_{a in A} cos(w, a) - mean_{b in B} cos(w, b)``
- effect size ``d = (mean_{x in X} s(x, A, B) - mean_{y in Y} s(y, A, B)) / std_{w in X ∪ Y} s(w, A, B)`` with
  the sample standard deviation (``ddof=1``)
- one-sided permutation p-value ``Pr[S(X_i, Y_i) >= S(X, Y)]`` over re-partitions of ``X ∪ Y`` into sets of
  sizes ``|X|`` and ``|Y|``, ``S(X, Y) = Σ_x s(x, A, B) - Σ_y s(y, A, B)``, ties counted as extreme; exact when
  ``C(|X| + |Y|, |X|)`` is within the permutation budget, else sampled with ``p = (1 + #) / (1 + N)``
  (:mod:`vlbias.stats.permutation`). ``|X| != |Y|`` is allowed. When every ``s(w, A, B)`` is the same (up to
  rounding), ``d`` is undefined (NaN) and ``p = 1``.

The single-category test (SC-EAT; Caliskan et al. 2017's WEFAT, Toney-Wails & Caliskan 2021's SC-WEAT) scores one
target ``w`` (or a set ``W``, through each attribute's mean cosine to the set) against ``A`` and ``B``:
``d = (mean_{a in A} c(a) - mean_{b in B} c(b)) / std_{x in A ∪ B} c(x)`` with ``c(x) = mean_{w in W} cos(w, x)``,
and permutes ``A ∪ B``.

Every result carries a percentile bootstrap confidence interval for ``d`` that resamples with replacement within
each of X, Y, A and B (:mod:`vlbias.stats.bootstrap`). Inputs need not be normalised; they must be finite and
non-zero.

Many tests at once (:func:`eat_many`, as the battery runs them): tests with the same ``|X|``, ``|Y|`` and seed
share one set of drawn partitions, since the random partitions do not depend on the embeddings; each result is
the one :func:`eat` gives for that test alone, bit for bit.

BLAS runs on one thread inside these functions: the matrix products are small (tens to hundreds of rows), and on a
busy machine extra BLAS threads only contend (an exact 10 v 10 test took 49 ms with two OpenBLAS threads on two
busy cores, 3.9 ms with one).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from vlbias.errors import VlbiasError
from vlbias.stats.bootstrap import percentile_interval, stratified_count_chunks
from vlbias.stats.legacy_shuffle import legacy_shuffle_test
from vlbias.stats.permutation import ALTERNATIVES, subset_sum_test, subset_sum_tests
from vlbias.utils.threads import one_blas_thread

DEFAULT_PERMUTATIONS = 1_000_000
DEFAULT_BOOTSTRAP = 2000
DEFAULT_CONFIDENCE = 0.95
#: how sampled partitions are drawn: vlbias's seeded PCG64 sampler, or Ghate et al.'s legacy shuffles
#: (:mod:`vlbias.stats.legacy_shuffle`, slow, for their sampled p-values bit for bit)
SAMPLERS = ("vlbias", "ghate2025-legacy")


class EATInputError(VlbiasError, ValueError):
    """Arrays that cannot form an association test (an empty set, a set of one, mixed dimensions, ...)."""


@dataclass(frozen=True)
class EATResult:
    """One association test: effect size, p-value and their provenance."""

    effect_size: float
    p_value: float
    statistic: float  # S(X, Y) = Σ_x s(x) - Σ_y s(y) (SC-EAT: Σ_a c(a) - Σ_b c(b))
    n_permutations: int
    exact: bool
    alternative: str
    ci_low: float
    ci_high: float
    confidence: float
    n_bootstrap: int
    seed: int | None
    sizes: tuple[int, int, int, int]  # |X|, |Y|, |A|, |B| (SC-EAT: |W|, 0, |A|, |B|)
    kind: str = "eat"  # "eat" or "sc-eat"
    scores: np.ndarray | None = field(default=None, repr=False, compare=False)  # s(w) of X then Y; c(x) of A then B

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("scores")
        d["sizes"] = list(self.sizes)
        return d


# ---------------------------------------------------------------------------------------------------- basics
def _as_set(a, name: str, dim: int | None = None, min_size: int = 2) -> np.ndarray:
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim == 1 and arr.size and min_size <= 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise EATInputError(f"set {name} must be a 2-D array of embeddings (one row per item); got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise EATInputError(f"set {name} is empty; every set needs at least {min_size} items")
    if arr.shape[0] < min_size:
        raise EATInputError(
            f"set {name} has only {arr.shape[0]} item; an association test needs at least {min_size} per set"
        )
    if dim is not None and arr.shape[1] != dim:
        raise EATInputError(
            f"set {name} has embeddings of dimension {arr.shape[1]} but the others have {dim}; "
            f"all four sets must come from the same embedding space"
        )
    if not np.all(np.isfinite(arr)):
        raise EATInputError(f"set {name} holds a value that is not finite (NaN or infinity)")
    norms = np.linalg.norm(arr, axis=1)
    if np.any(norms == 0):
        raise EATInputError(
            f"set {name} holds an all-zero embedding (item {int(np.argmin(norms))}), which has no direction"
        )
    return arr / norms[:, None]


def _sets(X, Y, A, B, min_size: int = 2) -> tuple[np.ndarray, ...]:
    Xn = _as_set(X, "X", min_size=min_size)
    d = Xn.shape[1]
    return Xn, _as_set(Y, "Y", d, min_size), _as_set(A, "A", d), _as_set(B, "B", d)


def association(W, A, B) -> np.ndarray:
    """``s(w, A, B)`` for every row ``w`` of ``W``."""
    Wn = _as_set(W, "W", min_size=1)
    d = Wn.shape[1]
    An, Bn = _as_set(A, "A", d), _as_set(B, "B", d)
    with one_blas_thread():
        return (Wn @ An.T).mean(axis=1) - (Wn @ Bn.T).mean(axis=1)


#: a spread of the associations below this fraction of their magnitude is rounding noise, not variation
_RELATIVE_SPREAD_TOL = 1e-9


def _spread_floor(values: np.ndarray) -> float:
    return _RELATIVE_SPREAD_TOL * float(np.max(np.abs(values))) if values.size else 0.0


def _effect(sx: np.ndarray, sy: np.ndarray) -> float:
    """d, or NaN when every association is the same (up to rounding): the test then has no scale."""
    both = np.concatenate([sx, sy])
    sd = np.std(both, ddof=1)
    if not sd > _spread_floor(both):
        return float("nan")
    return float((sx.mean() - sy.mean()) / sd)


def effect_size(X, Y, A, B) -> float:
    """Caliskan's effect size ``d`` (NaN when every ``s(w, A, B)`` is equal)."""
    Xn, Yn, An, Bn = _sets(X, Y, A, B)
    s = association(np.vstack([Xn, Yn]), An, Bn)
    return _effect(s[: len(Xn)], s[len(Xn) :])


def _seeds(seed) -> tuple[np.random.SeedSequence, np.random.SeedSequence]:
    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    perm, boot = ss.spawn(2)
    return perm, boot


def _check_common(alternative: str, n_bootstrap: int, confidence: float) -> None:
    if alternative not in ALTERNATIVES:
        raise EATInputError(f"unknown alternative {alternative!r}; use one of {', '.join(ALTERNATIVES)}")
    if n_bootstrap < 0:
        raise EATInputError(f"the number of bootstrap resamples must be 0 or more (got {n_bootstrap})")
    if not 0 < confidence < 1:
        raise EATInputError(f"the confidence level must be between 0 and 1 (got {confidence})")


def _check_permutations(permutations, sampler: str = "vlbias") -> None:
    if isinstance(permutations, str) and permutations != "exact":
        raise EATInputError(f"permutations must be a positive number or 'exact' (got {permutations!r})")
    if sampler not in SAMPLERS:
        raise EATInputError(f"unknown sampler {sampler!r}; use one of {', '.join(SAMPLERS)}")


def _permutation(scores, k, permutations, alternative, seed, sampler: str = "vlbias"):
    _check_permutations(permutations, sampler)
    test = legacy_shuffle_test if sampler == "ghate2025-legacy" else subset_sum_test
    try:
        return test(scores, k, permutations=permutations, alternative=alternative, seed=seed)
    except ValueError as e:
        raise EATInputError(str(e)) from None


def _permutations(scores: list[np.ndarray], k, permutations, alternative, seed):
    """The permutation test of every score vector (equal sizes), on one set of drawn partitions."""
    _check_permutations(permutations)
    try:
        return subset_sum_tests(np.stack(scores), k, permutations=permutations, alternative=alternative, seed=seed)
    except ValueError as e:
        raise EATInputError(str(e)) from None


# ---------------------------------------------------------------------------------------------------- bootstrap
def _weighted_d(S: np.ndarray, wx: np.ndarray, wy: np.ndarray) -> np.ndarray:
    """d per column of S (items × resamples), items weighted by resample counts (X rows first, then Y).

    The variance is the centred two-pass sum, so equal associations give a spread of rounding size, which (as in
    the point estimate) makes d undefined rather than huge.
    """
    nx = wx.shape[0]
    sx, sy = S[:nx], S[nx:]
    Nx, Ny = wx.sum(axis=0), wy.sum(axis=0)
    m1x, m1y = (wx * sx).sum(axis=0), (wy * sy).sum(axis=0)
    n = Nx + Ny
    mean = (m1x + m1y) / n
    var = ((wx * (sx - mean) ** 2).sum(axis=0) + (wy * (sy - mean) ** 2).sum(axis=0)) / (n - 1)
    floor = _RELATIVE_SPREAD_TOL * np.abs(S).max(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        sd = np.sqrt(var)
        d = (m1x / Nx - m1y / Ny) / np.where(sd > floor, sd, np.nan)
    return d


def _bootstrap_eat(Xn, Yn, An, Bn, n_bootstrap, confidence, seed, chunk: int = 500) -> tuple[float, float]:
    if n_bootstrap == 0:
        return float("nan"), float("nan")
    rng = np.random.Generator(np.random.PCG64(seed))
    W = np.vstack([Xn, Yn])
    CA, CB = W @ An.T, W @ Bn.T
    out = []
    for wa, wb, wx, wy in stratified_count_chunks(rng, (len(An), len(Bn), len(Xn), len(Yn)), n_bootstrap, chunk=chunk):
        S = CA @ wa.T / len(An) - CB @ wb.T / len(Bn)
        out.append(_weighted_d(S, wx.T, wy.T))
    return percentile_interval(np.concatenate(out), confidence)


def _bootstrap_sc(Wn, An, Bn, n_bootstrap, confidence, seed, chunk: int = 500) -> tuple[float, float]:
    if n_bootstrap == 0:
        return float("nan"), float("nan")
    rng = np.random.Generator(np.random.PCG64(seed))
    CA, CB = An @ Wn.T, Bn @ Wn.T  # attributes × targets
    sizes = (len(Wn), len(An), len(Bn)) if len(Wn) > 1 else (len(An), len(Bn))  # one target: nothing to resample
    out = []
    for *ww, wa, wb in stratified_count_chunks(rng, sizes, n_bootstrap, chunk=chunk):
        if ww:
            S = np.vstack([CA @ ww[0].T, CB @ ww[0].T]) / len(Wn)
        else:
            S = np.repeat(np.vstack([CA, CB]), len(wa), axis=1)
        out.append(_weighted_d(S, wa.T, wb.T))
    return percentile_interval(np.concatenate(out), confidence)


# ---------------------------------------------------------------------------------------------------- tests
def _result(scores, k, perm, ci, kind, sizes, confidence, n_bootstrap, seed) -> EATResult:
    d = _effect(scores[:k], scores[k:])
    p = perm.p_value
    if not np.isfinite(d):
        # every association is the same (up to rounding): no interval around an undefined effect size, and no
        # evidence against the null, so p = 1 (the partitions would otherwise be ranked by rounding noise)
        ci = (float("nan"), float("nan"))
        p = 1.0
    return EATResult(
        effect_size=d,
        p_value=p,
        statistic=float(scores[:k].sum() - scores[k:].sum()),
        n_permutations=perm.n_permutations,
        exact=perm.exact,
        alternative=perm.alternative,
        ci_low=ci[0],
        ci_high=ci[1],
        confidence=confidence,
        n_bootstrap=n_bootstrap,
        seed=seed,
        sizes=sizes,
        kind=kind,
        scores=scores,
    )


def eat(
    X,
    Y,
    A,
    B,
    *,
    permutations: int | str = DEFAULT_PERMUTATIONS,
    alternative: str = "greater",
    seed: int | None = 0,
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
    confidence: float = DEFAULT_CONFIDENCE,
    sampler: str = "vlbias",
) -> EATResult:
    """An embedding association test of targets X, Y against attributes A, B (rows are embeddings).

    ``sampler``: how sampled partitions are drawn (:data:`SAMPLERS`); ``"ghate2025-legacy"`` draws Ghate et al.'s
    partitions from ``RandomState(seed)`` (one-sided ``greater`` only; slow)."""
    (result,) = eat_many(
        [(X, Y, A, B)],
        permutations=permutations,
        alternative=alternative,
        seed=seed,
        n_bootstrap=n_bootstrap,
        confidence=confidence,
        sampler=sampler,
    )
    return result


def eat_many(
    tests: Iterable[tuple[Any, Any, Any, Any]],
    *,
    permutations: int | str = DEFAULT_PERMUTATIONS,
    alternative: str = "greater",
    seed: int | None = 0,
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
    confidence: float = DEFAULT_CONFIDENCE,
    sampler: str = "vlbias",
) -> Iterator[EATResult]:
    """:func:`eat` of every ``(X, Y, A, B)`` in ``tests``, yielded in order. Every test is checked first (the
    first bad one raises); the permutation tests of all tests with the test's ``|X|`` and ``|Y|`` run when the
    first of them is reached, on one set of drawn partitions (the same seed draws the same partitions), so each
    result equals ``eat(X, Y, A, B, ...)`` bit for bit. With ``seed=None`` one fresh seed serves every test.
    ``sampler="ghate2025-legacy"`` tests one at a time, each from a fresh ``RandomState(seed)`` (as the study)."""
    _check_common(alternative, n_bootstrap, confidence)
    _check_permutations(permutations, sampler)
    with one_blas_thread():
        prepared = []
        for X, Y, A, B in tests:
            Xn, Yn, An, Bn = _sets(X, Y, A, B)
            prepared.append((Xn, Yn, An, Bn, association(np.vstack([Xn, Yn]), An, Bn)))
    return _eat_results(prepared, permutations, alternative, seed, n_bootstrap, confidence, sampler)


def _eat_results(
    prepared, permutations, alternative, seed, n_bootstrap, confidence, sampler="vlbias"
) -> Iterator[EATResult]:
    perm_seed, boot_seed = _seeds(seed)
    tested: dict[int, Any] = {}
    for i, (Xn, Yn, An, Bn, s) in enumerate(prepared):
        sizes = (len(Xn), len(Yn), len(An), len(Bn))
        with one_blas_thread():
            if sampler == "ghate2025-legacy":  # the study reseeds its generator before every test
                tested[i] = _permutation(s, sizes[0], permutations, alternative, seed, sampler)
            elif i not in tested:
                group = [
                    j
                    for j in range(i, len(prepared))
                    if prepared[j][4].size == s.size and len(prepared[j][0]) == sizes[0]
                ]
                perms = _permutations([prepared[j][4] for j in group], sizes[0], permutations, alternative, perm_seed)
                tested.update(zip(group, perms))
            ci = _bootstrap_eat(Xn, Yn, An, Bn, n_bootstrap, confidence, boot_seed)
        yield _result(s, sizes[0], tested.pop(i), ci, "eat", sizes, confidence, n_bootstrap, seed)


def sc_eat(
    W,
    A,
    B,
    *,
    permutations: int | str = DEFAULT_PERMUTATIONS,
    alternative: str = "greater",
    seed: int | None = 0,
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
    confidence: float = DEFAULT_CONFIDENCE,
) -> EATResult:
    """Single-category test: one target vector (or a set W) against A and B, permuting A ∪ B."""
    _check_common(alternative, n_bootstrap, confidence)
    Wn = _as_set(W, "W", min_size=1)
    d = Wn.shape[1]
    An, Bn = _as_set(A, "A", d), _as_set(B, "B", d)
    na = len(An)
    perm_seed, boot_seed = _seeds(seed)
    with one_blas_thread():
        c = np.concatenate([An @ Wn.T, Bn @ Wn.T]).mean(axis=1)  # mean cosine of each attribute to the target(s)
        perm = _permutation(c, na, permutations, alternative, perm_seed)
        ci = _bootstrap_sc(Wn, An, Bn, n_bootstrap, confidence, boot_seed)
    sizes = (len(Wn), 0, na, len(Bn))
    return _result(c, na, perm, ci, "sc-eat", sizes, confidence, n_bootstrap, seed)


def sc_eat_each(W, A, B, **kw) -> list[EATResult]:
    """SC-EAT for every row of W separately (per-word or per-image scores). All rows share the same seed, so the
    same re-partitions of A ∪ B are drawn for each."""
    Wn = _as_set(W, "W", min_size=1)
    return [sc_eat(w[None, :], A, B, **kw) for w in Wn]


def beyond_null(d: float, null: Iterable[float], alternative: str = "greater") -> bool:
    """Whether effect size ``d`` exceeds what untrained networks of the same shape produce: the d of the same test
    in random-init copies of the architecture (``null``). The sign of a random network's association is arbitrary
    (copies differing only in their seed give d of either sign, up to |d| = 1.1 on the standard battery's cross-modal
    rows), so the copies bound the *magnitude* an untrained network reaches, m = max |null|: d is beyond when
    d > m (greater), d < -m (less), |d| > m (two-sided).

    Guarantee: if the model were one more untrained copy (its d exchangeable with the N copies'), it would be
    beyond with probability at most 1 / (N + 1) (exactly that, two-sided, without ties)."""
    _check_common(alternative, 0, DEFAULT_CONFIDENCE)
    values = np.asarray(list(null), dtype=np.float64)
    if not len(values) or not np.isfinite(values).all() or not np.isfinite(d):
        raise EATInputError("beyond_null needs a finite d and at least one finite null effect size")
    m = float(np.abs(values).max())
    return bool({"greater": d > m, "less": d < -m}.get(alternative, abs(d) > m))
