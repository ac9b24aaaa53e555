"""The trade-off figure of mitigations: bias reduction against accuracy cost, one point per method, with the paired
intervals of both (the ``overall`` rows of :mod:`vlbias.zoo.mitigation`'s comparison tables)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from vlbias.plots.style import new_figure, save, series_style


def tradeoff(table: pd.DataFrame, path: str | Path) -> Path:
    """x: the change of overall accuracy (after - before, percentage points; 0 where the audit has no accuracy),
    y: the change of overall |bias| (after - before); lower is less bias, left is lost accuracy."""
    overall = table[table["value"] == "overall"]
    fig = new_figure(5.5, 4.2)
    ax = fig.add_subplot()
    for i, (method, g) in enumerate(overall.groupby("method", sort=False)):
        bias = g[g["kind"] == "bias"]
        acc = g[g["kind"] == "accuracy"]
        if bias.empty:
            continue
        b = bias.iloc[0]
        colour, marker = series_style(i)
        if acc.empty:
            x, xerr = 0.0, None
        else:
            a = acc.iloc[0]
            x, xerr = (
                a["abs_change"],
                [[a["abs_change"] - a["abs_change_low"]], [a["abs_change_high"] - a["abs_change"]]],
            )
        yerr = [[b["abs_change"] - b["abs_change_low"]], [b["abs_change_high"] - b["abs_change"]]]
        ax.errorbar(x, b["abs_change"], xerr=xerr, yerr=yerr, fmt=marker, color=colour, label=method, capsize=3)
    ax.axhline(0, color="#999999", lw=0.8)
    ax.axvline(0, color="#999999", lw=0.8)
    ax.set_xlabel("accuracy change, after - before (percentage points)")
    ax.set_ylabel(f"bias change, mean |{overall['statistic'].iloc[0] if len(overall) else 'bias'}|")
    ax.set_title("Mitigations: bias reduction against accuracy cost (paired intervals)", fontsize=10)
    ax.legend(fontsize=8, frameon=False)
    path = Path(path)
    save(fig, path)
    return path
