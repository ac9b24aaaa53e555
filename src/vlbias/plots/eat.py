"""Figures of embedding association tests: the effect-size heat map (models x tests x orders) with significance
marks, and forest plots of effect sizes with their bootstrap intervals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from vlbias.plots.forest import forest
from vlbias.plots.style import new_figure, require_rows, save, wrap

#: the effect size's colour scale is fixed, so heat maps of different reports compare (|d| < 2 for equal set sizes)
D_LIMIT = 2.0
D_UNIT = "effect size d (difference of mean associations, in pooled standard deviations)"
STARS = ((0.001, "***"), (0.01, "**"), (0.05, "*"))
ORDERS = ("all-text", "all-image", "image-as-target", "text-as-target")


#: the mark of a row whose p-value is below .05 while its interval covers 0
COVERS_ZERO = "†"
#: why such a row is no contradiction, said wherever the marks are
P_AND_INTERVAL = (
    "† p < .05 while the interval covers 0: no contradiction. The permutation test holds the attribute sets A and B "
    "fixed and asks whether X and Y differ in their association with these very stimuli; the bootstrap interval "
    "also resamples A and B, so it carries the uncertainty of which attribute stimuli were chosen too, and is "
    "wider. Such a row is significant for these stimuli, not robustly beyond them."
)


def stars(p) -> str:
    """Significance marks of a p-value: *** < .001, ** < .01, * < .05."""
    if p is None or not np.isfinite(p):
        return ""
    return next((mark for level, mark in STARS if p < level), "")


def covers_zero(p, low, high) -> bool:
    """p < .05 while the interval [low, high] covers 0 (see :data:`P_AND_INTERVAL`)."""
    values = [p, low, high]
    if any(v is None or not np.isfinite(v) for v in values):
        return False
    return p < 0.05 and low <= 0 <= high


def marks(p, low, high) -> str:
    """The marks of a row: its significance stars, and † when the interval covers 0 all the same."""
    return stars(p) + (COVERS_ZERO if covers_zero(p, low, high) else "")


def _unique(values) -> list:
    return list(dict.fromkeys(v for v in values if isinstance(v, str) or pd.notna(v)))


def _alternative_text(results: pd.DataFrame) -> str:
    alts = _unique(results.get("alternative", pd.Series(dtype=object)))
    if alts == ["greater"]:
        return "one-sided permutation test that X is closer to A than Y is"
    if alts == ["less"]:
        return "one-sided permutation test that X is closer to B than Y is"
    if alts == ["two-sided"]:
        return "two-sided permutation test"
    return "permutation tests (" + ", ".join(map(str, alts)) + ")"


def significance_note(results: pd.DataFrame) -> str:
    return (
        f"* p < .05, ** p < .01, *** p < .001 ({_alternative_text(results)}; unadjusted); {COVERS_ZERO} the bootstrap "
        "interval covers 0 all the same (it also resamples the attribute stimuli); hatched: skipped; n/a: d undefined "
        "(all associations equal)"
    )


def effect_heatmap(results: pd.DataFrame, path: Path, *, title: str, row: str = "model") -> Path:
    """Effect sizes as colours, with their value and significance marks in each cell.

    Several models: one row per model (``row``), one column per test, grouped by order. One model: one row per test,
    one column per order. Skipped rows are hatched; cells never run stay blank.
    """
    require_rows(results, "association-test rows", (row, "test", "order", "status", "effect_size", "p_value"))
    df = results.copy()
    row_keys = _unique(df[row])
    present = set(df["order"])
    orders = [o for o in ORDERS if o in present] + [o for o in _unique(df["order"]) if o not in ORDERS]
    single = len(row_keys) == 1
    if single:
        rows = _unique(df["test"])
        cols: list = orders
        index = {(r.test, r.order): (rows.index(r.test), cols.index(r.order)) for r in df.itertuples()}
    else:
        rows = row_keys
        cols = [(o, t) for o in orders for t in _unique(df.loc[df["order"] == o, "test"])]
        index = {
            (getattr(r, row), (r.order, r.test)): (rows.index(getattr(r, row)), cols.index((r.order, r.test)))
            for r in df.itertuples()
        }
    mat = np.full((len(rows), len(cols)), np.nan)
    cell_marks = np.full(mat.shape, "", dtype=object)
    skipped = np.zeros(mat.shape, dtype=bool)
    undefined = np.zeros(mat.shape, dtype=bool)  # ran, but d has no value (every association equal)
    for r in df.itertuples():
        key = (r.test, r.order) if single else (getattr(r, row), (r.order, r.test))
        i, j = index[key]
        if r.status == "ok" and pd.notna(r.effect_size):
            mat[i, j] = r.effect_size
            cell_marks[i, j] = marks(r.p_value, getattr(r, "ci_low", np.nan), getattr(r, "ci_high", np.nan))
        elif r.status == "ok":
            undefined[i, j] = True
        else:
            skipped[i, j] = True
    label_w = min(3.5, 0.075 * max(len(str(x)) for x in rows) + 0.5)
    fig = new_figure(max(6.5, label_w + 0.62 * len(cols) + 1.6), 2.3 + 0.34 * len(rows))
    ax = fig.add_subplot()
    im = ax.imshow(np.ma.masked_invalid(mat), cmap="RdBu_r", vmin=-D_LIMIT, vmax=D_LIMIT, aspect="auto")
    from matplotlib.patches import Rectangle

    annotate = mat.size <= 600
    for i in range(len(rows)):
        for j in range(len(cols)):
            if skipped[i, j]:
                ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, facecolor="0.88", edgecolor="0.6", hatch="///", lw=0))
            elif undefined[i, j]:
                ax.text(j, i, "n/a", ha="center", va="center", fontsize=7, color="0.35")
            elif np.isfinite(mat[i, j]):
                text = (f"{mat[i, j]:+.2f}" if annotate else "") + cell_marks[i, j]
                colour = "white" if abs(mat[i, j]) > 1.2 else "black"
                ax.text(j, i, text, ha="center", va="center", fontsize=7, color=colour)
    ax.set_yticks(range(len(rows)), [str(r) for r in rows], fontsize=8)
    if single:
        ax.set_xticks(range(len(cols)), cols, fontsize=8)
        ax.set_xlabel("order (target modality - attribute modality)", fontsize=9)
        ax.set_ylabel("test", fontsize=9)
    else:
        ax.set_xticks(range(len(cols)), [t for _, t in cols], rotation=40, ha="right", fontsize=7)
        ax.set_ylabel("model", fontsize=9)
        ax.set_xlabel("test, grouped by order", fontsize=9)
        start = 0
        for o in orders:
            n = sum(1 for c in cols if c[0] == o)
            if start:
                ax.axvline(start - 0.5, color="black", lw=1.2)
            ax.text(start + (n - 1) / 2, -0.62, o, ha="center", va="bottom", fontsize=8, fontweight="bold")
            start += n
    ax.set_xticks(np.arange(-0.5, len(cols)), minor=True)
    ax.set_yticks(np.arange(-0.5, len(rows)), minor=True)
    ax.grid(which="minor", color="white", lw=0.6)
    ax.tick_params(which="minor", length=0)
    fig.colorbar(im, ax=ax, label="effect size d (pooled SD units)", shrink=0.9, aspect=30).ax.tick_params(labelsize=7)
    fig.suptitle(wrap(f"{title}\n{significance_note(df)}", fig.get_figwidth(), 9), fontsize=9)
    save(fig, path, dpi=110)
    return path


def _row_label(df: pd.DataFrame) -> pd.Series:
    """'test · order', saying why a row has no effect size."""
    label = df["test"].astype(str) + " · " + df["order"].astype(str)
    ok = df["status"] == "ok"
    label = label.where(ok, label + " (skipped)")
    return label.where(~ok | df["effect_size"].notna(), label + " (d undefined)")


def effect_forest(results: pd.DataFrame, path: Path, *, title: str, series: str | None = None) -> Path:
    """Effect sizes with their intervals: one row per test and order (one model), or per test with one marker per
    model (``series``) and one panel per order."""
    require_rows(results, "association-test rows", ("test", "order", "status", "effect_size", "ci_low", "ci_high"))
    df = results.copy()
    conf = pd.to_numeric(df.get("confidence"), errors="coerce").dropna()
    level = f"{conf.iloc[0]:.0%}" if len(conf) else "bootstrap"
    xlabel = f"{D_UNIT}; bars: {level} bootstrap interval"
    common = dict(est="effect_size", low="ci_low", high="ci_high", xlabel=xlabel, title=title, missing=None)
    if series is None:
        df["row"] = _row_label(df)
        return forest(df, path, row="row", **common)
    present = set(df["order"])
    df["order"] = pd.Categorical(df["order"], [o for o in ORDERS if o in present] + sorted(present - set(ORDERS)))
    df = df.sort_values("order", kind="stable")
    df["order"] = df["order"].astype(str)
    return forest(df, path, row="test", series=series, panel="order", ncols=2, **common)
