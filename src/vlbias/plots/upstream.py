"""Figures of the upstream analysis of a model zoo (`vlbias analyze`): the mixed model's coefficients, and effect
sizes against downstream accuracy."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from vlbias.plots.style import BLUE, VERMILLION, new_figure, save


def plot_coefficients(fixed: pd.DataFrame, path: Path, title: str) -> Path:
    """The fixed effects of the mixed model (``term``, ``estimate``, ``ci_low``, ``ci_high``; the intercept left out)
    with their intervals."""
    f = fixed[fixed["term"] != "intercept"].iloc[::-1]
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


def plot_bias_vs_accuracy(
    data: pd.DataFrame, corr: pd.DataFrame, path: Path, *, by: list[str], effect: str, metric: str | None
) -> Path:
    """One panel per group (``by``, e.g. test x order): each model's ``effect`` against its downstream accuracy
    (``metric``), a least-squares line, and Pearson's r from ``corr`` with its interval and BH-adjusted p."""
    by = list(by)
    groups = list(data.groupby(by, sort=True))
    n = len(groups)
    cols = min(4, n)
    rows = math.ceil(n / cols)
    fig = new_figure(3.2 * cols, 2.8 * rows)
    axes = fig.subplots(rows, cols, squeeze=False)
    pear = corr[corr["method"] == "pearson"].set_index(by)
    for ax, (key, part) in zip(axes.flat, groups):
        ax.scatter(part["accuracy"], part[effect], s=14, color=BLUE, alpha=0.8)
        if part["accuracy"].nunique() > 1:
            b, a = np.polyfit(part["accuracy"], part[effect], 1)
            xs = np.linspace(part["accuracy"].min(), part["accuracy"].max(), 2)
            ax.plot(xs, a + b * xs, color=VERMILLION, lw=1.5)
        row = pear.loc[key] if key in pear.index else None
        label = " × ".join(map(str, key if isinstance(key, tuple) else (key,)))
        if row is not None:
            label += f"\nr={row['r']:.2f} [{row['ci_low']:.2f}, {row['ci_high']:.2f}], BH q={row['p_bh']:.2g}"
        ax.set_title(label, fontsize=8)
        ax.set_xlabel(f"downstream accuracy ({metric})", fontsize=8)
        ax.set_ylabel(f"{effect}", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    save(fig, path, dpi=110)
    return path
