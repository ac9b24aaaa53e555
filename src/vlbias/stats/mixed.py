"""Linear mixed-effects models for model-zoo studies (statsmodels MixedLM), with standardised predictors.

The model of the 131-model CLIP study (Ghate et al., NAACL 2025)::

    effect_size ~ log_params + architecture_family + dataset_family + log_dataset_size
                  + (1 + log_params + log_dataset_size | test x order)

fitted by REML: fixed effects for the numeric predictors (standardised: mean 0, standard deviation 1, so a
coefficient is the change in the response per standard deviation of the predictor) and for treatment-coded
categorical predictors (each level against a reference level, configurable; by default the most common level), and
per group a random intercept and random slopes for the numeric predictors with an unstructured covariance.

Intervals are Wald intervals ``estimate ± z_{1-α/2} · SE``. Convergence problems (a boundary fit, a singular random
effects covariance) are reported beside the table, not hidden.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd


@dataclass
class MixedModelResult:
    fixed: pd.DataFrame  # term, estimate, std_error, z, p_value, ci_low, ci_high
    random: pd.DataFrame  # group-level covariance: term_1, term_2, variance/covariance, sd/correlation
    scaling: pd.DataFrame  # numeric predictor, mean, sd (of the unstandardised values)
    n_obs: int
    n_groups: int
    converged: bool
    log_likelihood: float
    method: str
    formula: str
    re_formula: str
    reference: dict[str, str]
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        return {
            "n_obs": self.n_obs,
            "n_groups": self.n_groups,
            "converged": self.converged,
            "log_likelihood_reml": self.log_likelihood,
            "method": self.method,
            "formula": self.formula,
            "re_formula": self.re_formula,
            "reference": self.reference,
            "warnings": self.warnings,
        }


def _reference(values: pd.Series, given: str | None, name: str) -> str:
    levels = values.value_counts()
    if given is not None:
        if given not in levels.index:
            raise ValueError(
                f"reference level {given!r} of {name} is not in the data (levels: {', '.join(map(str, levels.index))})"
            )
        return given
    top = levels[levels == levels.max()].index
    return sorted(map(str, top))[0]


def fit_mixed_model(
    data: pd.DataFrame,
    response: str,
    numeric: Sequence[str],
    categorical: Sequence[str],
    group: str,
    random_slopes: Sequence[str] | None = None,
    reference: Mapping[str, str] | None = None,
    standardise: bool = True,
    alpha: float = 0.05,
) -> MixedModelResult:
    """Fit ``response ~ numeric + categorical + (1 + random_slopes | group)`` by REML.

    Rows with a missing value in any used column are dropped (count them before calling). Categorical predictors
    with a single level carry no information and are left out (with a warning in the result).
    """
    import statsmodels.api as sm
    from scipy import stats
    from statsmodels.tools.sm_exceptions import ConvergenceWarning

    reference = dict(reference or {})
    random_slopes = list(numeric if random_slopes is None else random_slopes)
    cols = [response, *numeric, *categorical, group]
    df = data[cols].dropna().copy()
    notes: list[str] = []
    if df.empty:
        raise ValueError("no rows with every variable of the model")
    scaling = []
    for col in numeric:
        x = df[col].astype(float)
        mean, sd = float(x.mean()), float(x.std(ddof=1))
        if not np.isfinite(sd) or sd == 0:
            raise ValueError(f"{col} does not vary; it cannot be a predictor")
        scaling.append({"predictor": col, "mean": mean, "sd": sd})
        if standardise:
            df[col] = (x - mean) / sd
    cats = []
    refs = {}
    for col in categorical:
        df[col] = df[col].astype(str)
        if df[col].nunique() < 2:
            notes.append(f"{col} has one level ({df[col].iloc[0]}) in the data and was left out")
            continue
        refs[col] = _reference(df[col], reference.get(col), col)
        cats.append(col)
    unknown = set(reference) - set(categorical)
    if unknown:
        raise ValueError(
            f"reference levels given for {', '.join(sorted(unknown))}, which are not categorical predictors"
        )
    terms = list(numeric) + [f"C({c}, Treatment(reference={refs[c]!r}))" for c in cats]
    formula = f"{response} ~ " + " + ".join(terms)
    re_formula = "~" + (" + ".join(random_slopes) if random_slopes else "1")
    exog, aliased = _full_rank_design(formula, df, first=["Intercept", *numeric])
    for name in aliased:
        notes.append(
            f"{_clean(name)} is not estimable: in these data it is a combination of other terms (e.g. a family "
            f"whose models all share one dataset family); it was left out"
        )
    exog_re = df[list(random_slopes)].assign(Intercept=1.0)[["Intercept", *random_slopes]]
    model = sm.MixedLM(df[response].astype(float), exog, groups=df[group], exog_re=exog_re)
    fit = None
    failed: list[str] = []
    kept_warnings: list[str] = []
    for method in ("lbfgs", "bfgs", "powell", "nm"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                attempt = model.fit(reml=True, method=method)
            except (np.linalg.LinAlgError, ValueError) as e:
                failed.append(f"{method} ({e})")
                continue
        messages = []
        for w in caught:
            if issubclass(w.category, (ConvergenceWarning, RuntimeWarning, UserWarning)):
                msg = str(w.message).splitlines()[0]
                if msg not in messages:
                    messages.append(msg)
        if fit is None or attempt.converged:
            fit, kept_warnings = attempt, messages
        if attempt.converged:
            break
        failed.append(f"{method} (did not converge)")
    if fit is None:
        raise ValueError("the mixed model could not be fitted: " + "; ".join(failed))
    if failed:
        notes.append(
            f"optimisers that failed before {'this fit' if fit.converged else 'giving up'}: {', '.join(failed)}"
        )
    notes += [m for m in kept_warnings if not m.startswith(("MixedLM optimization failed", "Gradient optimization"))]
    zc = stats.norm.ppf(1 - alpha / 2)
    names = list(fit.fe_params.index) + aliased
    est = np.concatenate([fit.fe_params.to_numpy(), np.full(len(aliased), np.nan)])
    se = np.concatenate([fit.bse_fe.to_numpy(), np.full(len(aliased), np.nan)])
    with np.errstate(invalid="ignore", divide="ignore"):
        z = est / se
    fixed = pd.DataFrame(
        {
            "term": [_clean(n) for n in names],
            "estimate": est,
            "std_error": se,
            "z": z,
            "p_value": 2 * stats.norm.sf(np.abs(z)),
            "ci_low": est - zc * se,
            "ci_high": est + zc * se,
        }
    )
    cov = fit.cov_re
    labels = [_clean(c) for c in cov.columns]
    rows = []
    for i, a in enumerate(labels):
        for j, b in enumerate(labels):
            if j < i:
                continue
            v = float(cov.iloc[i, j])
            if i == j:
                rows.append({"term_1": a, "term_2": a, "covariance": v, "sd_or_correlation": float(np.sqrt(max(v, 0)))})
            else:
                denom = np.sqrt(cov.iloc[i, i] * cov.iloc[j, j])
                rows.append(
                    {
                        "term_1": a,
                        "term_2": b,
                        "covariance": v,
                        "sd_or_correlation": float(v / denom) if denom > 0 else np.nan,
                    }
                )
    rows.append(
        {
            "term_1": "residual",
            "term_2": "residual",
            "covariance": float(fit.scale),
            "sd_or_correlation": float(np.sqrt(fit.scale)),
        }
    )
    return MixedModelResult(
        fixed=fixed,
        random=pd.DataFrame(rows),
        scaling=pd.DataFrame(scaling, columns=["predictor", "mean", "sd"]),
        n_obs=int(fit.nobs),
        n_groups=int(df[group].nunique()),
        converged=bool(fit.converged),
        log_likelihood=float(fit.llf),
        method=str(getattr(fit, "method", "")),
        formula=formula,
        re_formula=re_formula,
        reference=refs,
        warnings=notes,
    )


def _full_rank_design(formula: str, df: pd.DataFrame, first: Sequence[str]) -> tuple[pd.DataFrame, list[str]]:
    """The fixed-effects design without aliased columns (kept in order: ``first``, then the formula's order)."""
    import patsy

    _, x = patsy.dmatrices(formula, df, return_type="dataframe")
    order = [c for c in first if c in x.columns] + [c for c in x.columns if c not in first]
    kept: list[str] = []
    aliased: list[str] = []
    for col in order:
        trial = x[kept + [col]].to_numpy(dtype=float)
        if np.linalg.matrix_rank(trial) > len(kept):
            kept.append(col)
        else:
            aliased.append(col)
    return x[kept], aliased


def _clean(name: str) -> str:
    """``C(dataset_family, Treatment(reference='openai'))[T.laion]`` -> ``dataset_family[laion]``."""
    if name.startswith("C(") and "[T." in name:
        var = name[2:].split(",", 1)[0]
        level = name.split("[T.", 1)[1].rstrip("]")
        return f"{var}[{level}]"
    return "intercept" if name in ("Intercept", "Group") else name.replace(" Var", "")
