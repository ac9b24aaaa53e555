"""Figures of the upstream analysis of a model zoo (`vlbias analyze`): the mixed model's coefficients, and effect
sizes against downstream accuracy."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from vlbias.plots.style import BLUE, VERMILLION, NotDrawn, new_figure, require_rows, save


def plot_coefficients(fixed: pd.DataFrame, path: Path, title: str) -> Path:
    """The fixed effects of the mixed model (``term``, ``estimate``, ``ci_low``, ``ci_high``; the intercept left out)
    with their intervals."""
    require_rows(fixed, "fixed effects", ("term", "estimate", "ci_low", "ci_high"))
    f = fixed[fixed["term"] != "intercept"].iloc[::-1]
    if not len(f):
        raise NotDrawn("the mixed model has no term besides the intercept")
    fig = new_figure(7, 0.45 * len(f) + 1.6)
    ax = fig.add_subplot()
    y = np.arange(len(f))
    ax.errorbar(
        f["estimate"],
        y,
        xerr=[f["estimate"] - f["ci_low"], f["ci_high"] - f["estimate"]],
        fmt="o",
        color=BLUE,
        ecolor=BLUE,
        capsize=3,
    )
    ax.axvline(0, color="0.4", lw=1, ls="--")
    ax.set_yticks(y, f["term"])
    ax.set_xlabel("coefficient (effect size units; numeric terms per SD of log10; 95% CI)")
    ax.set_title(title, fontsize=10)
    save(fig, path, dpi=120)
    return path


def _correlation_title(row, n: int) -> str:
    """Pearson's r with its interval and BH q, or why there is none (a correlation needs three models; its
    interval, four)."""
    if row is None or not np.isfinite(row["r"]):
        return f"too few models for a correlation (n = {n})" if n < 3 else "no correlation (a constant value)"
    ci = (
        f" [{row['ci_low']:.2f}, {row['ci_high']:.2f}]"
        if np.isfinite(row["ci_low"]) and np.isfinite(row["ci_high"])
        else " (no interval: too few models)"
    )
    q = f", BH q={row['p_bh']:.2g}" if np.isfinite(row["p_bh"]) else ""
    return f"r={row['r']:.2f}{ci}{q}"


def plot_bias_vs_accuracy(
    data: pd.DataFrame, corr: pd.DataFrame, path: Path, *, by: list[str], effect: str, metric: str | None
) -> Path:
    """One panel per group (``by``, e.g. test x order): each model's ``effect`` against its downstream accuracy
    (``metric``), Pearson's r from ``corr`` with its interval and BH-adjusted p, and the least-squares line where
    there is a correlation (three models or more); a panel with fewer models says so and draws no line."""
    by = list(by)
    require_rows(data, "models with a downstream accuracy", (*by, "accuracy", effect))
    groups = list(data.groupby(by, sort=True))
    n = len(groups)
    cols = min(4, n)
    rows = math.ceil(n / cols)
    fig = new_figure(3.2 * cols, 2.8 * rows)
    axes = fig.subplots(rows, cols, squeeze=False)
    pear = corr[corr["method"] == "pearson"].set_index(by) if corr is not None and len(corr) else None
    for ax, (key, part) in zip(axes.flat, groups):
        ax.scatter(part["accuracy"], part[effect], s=14, color=BLUE, alpha=0.8)
        look = key[0] if len(by) == 1 and isinstance(key, tuple) else key
        row = pear.loc[look] if pear is not None and look in pear.index else None
        if isinstance(row, pd.DataFrame):
            row = row.iloc[0]
        ok = part[["accuracy", effect]].apply(pd.to_numeric, errors="coerce").dropna()
        if row is not None and np.isfinite(row["r"]) and len(ok) >= 3 and ok["accuracy"].nunique() > 1:
            b, a = np.polyfit(ok["accuracy"], ok[effect], 1)
            xs = np.linspace(ok["accuracy"].min(), ok["accuracy"].max(), 2)
            ax.plot(xs, a + b * xs, color=VERMILLION, lw=1.5)
        label = " × ".join(map(str, key if isinstance(key, tuple) else (key,)))
        ax.set_title(f"{label}\n{_correlation_title(row, len(ok))}", fontsize=8)
        ax.set_xlabel(f"downstream accuracy ({metric})", fontsize=8)
        ax.set_ylabel(f"{effect}", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    save(fig, path, dpi=110)
    return path
