"""Figures of zero-shot audit outputs: group shares, mean probabilities, accuracy and model-group changes.

Every bar shows its bootstrap interval; a result with a content warning carries it on each figure; the panels of
one figure share their y scale, so bars compare across panels. Drawn in the house style
(:mod:`vlbias.plots.style`); matplotlib is imported only when a figure is drawn.
"""

from __future__ import annotations

import math
import re
import textwrap
from pathlib import Path

import pandas as pd

from vlbias.plots.style import Figures, new_figure, save, series_colour

_NCOLS = 4


def _slug(*parts: str) -> str:
    text = "_".join(p for p in parts if p)
    return re.sub(r"[^A-Za-z0-9.+-]+", "-", text).strip("-")[:120] or "plot"


def _figure(n_panels: int, width_per: float = 3.4, height_per: float = 2.9):
    ncols = min(_NCOLS, n_panels)
    nrows = math.ceil(n_panels / ncols)
    fig = new_figure(max(width_per * ncols + 0.6, 7.5), height_per * nrows + 1.2)
    axes = fig.subplots(nrows, ncols, squeeze=False, sharey=True).ravel()
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    return fig, axes[:n_panels]


def _group_bars(ax, df: pd.DataFrame, x_col: str, hue_col: str | None, y: str, low: str, high: str) -> list:
    """Bars of ``y`` by x (and hue) with interval whiskers; returns legend handles."""
    xs = list(dict.fromkeys(df[x_col].astype(str)))
    hues = list(dict.fromkeys(df[hue_col].astype(str))) if hue_col else [None]
    width = 0.8 / len(hues)
    handles = []
    for h, hue in enumerate(hues):
        sub = df if hue is None else df[df[hue_col].astype(str) == hue]
        pos, vals, err_lo, err_hi = [], [], [], []
        for _, r in sub.iterrows():
            pos.append(xs.index(str(r[x_col])) - 0.4 + width * (h + 0.5))
            vals.append(r[y])
            err_lo.append(max(r[y] - r[low], 0) if pd.notna(r[low]) else 0)
            err_hi.append(max(r[high] - r[y], 0) if pd.notna(r[high]) else 0)
        colour = series_colour(h)
        bars = ax.bar(pos, vals, width=width * 0.95, color=colour, label=hue if hue is not None else None)
        ax.errorbar(pos, vals, yerr=[err_lo, err_hi], fmt="none", ecolor="#333333", elinewidth=0.9, capsize=2)
        handles.append(bars)
    ax.set_xticks(range(len(xs)))
    ax.set_xticklabels([x.replace("_", " ") for x in xs], rotation=30, ha="right", fontsize=8)
    ax.tick_params(axis="y", labelsize=8)
    return handles if hue_col else []


def _finish(fig, title: str, warning: str | None, path: Path, handles=None, hue_title: str | None = None) -> Path:
    chars = int(fig.get_figwidth() * 11)  # about 11 characters per inch at 11 pt
    fig.suptitle("\n".join(textwrap.fill(line, chars) for line in title.splitlines()), fontsize=11)
    if handles:
        fig.legend(handles=handles, title=hue_title, loc="outside right center", fontsize=8, title_fontsize=8)
    if warning:
        height = fig.get_figheight()
        fig.get_layout_engine().set(rect=(0, 0.35 / height, 1, 1 - 0.35 / height))  # room for the footer
        fig.text(
            0.5,
            0.002,
            "Content warning: offensive labels by design (see CONTENT_WARNING.txt)",
            ha="center",
            va="bottom",
            fontsize=7,
            color="#7a0000",
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    save(fig, path, dpi=110)
    return path


def _panels(
    df: pd.DataFrame, grouping: str, y: str, ylabel: str, title: str, warning, path: Path, *, zero_line=False
) -> Path:
    """One panel per label; bars per group (x: first grouping column, colour: second) with interval whiskers."""
    low, high = ("low", "high") if y == "difference" else (f"{y}_low", f"{y}_high")
    cols = grouping.split("+")
    if len(cols) == 2:
        x_col, hue_col = cols
    else:
        x_col, hue_col = (cols[0] if len(cols) == 1 and cols[0] in df.columns else "group"), None
    labels = list(dict.fromkeys(df["label"]))
    fig, axes = _figure(len(labels))
    handles = []
    for i, (ax, label) in enumerate(zip(axes, labels)):
        sub = df[df["label"] == label]
        handles = _group_bars(ax, sub, x_col, hue_col, y, low, high) or handles
        ax.set_title(str(label), fontsize=9)
        if i % _NCOLS == 0:  # the panels share the y scale: its label once per row
            ax.set_ylabel(ylabel, fontsize=8)
        ax.set_xlabel(x_col.replace("_", " "), fontsize=8)
        if zero_line:
            ax.axhline(0, color="#555555", linewidth=0.8)
        ax.grid(axis="y", alpha=0.3)
    if not zero_line:  # shares, probabilities and accuracies start at zero, on one scale for every panel
        top = pd.to_numeric(pd.concat([df[y], df[high]]), errors="coerce").max(skipna=True)
        axes[0].set_ylim(0, max(float(top) * 1.08, 1.0) if pd.notna(top) else 1.0)
    return _finish(fig, title, warning, path, handles, hue_col)


def _template_tag(df: pd.DataFrame, task: str, template: str) -> str:
    """'' when the task has one template, else 't<k>' (its position), so per-template figures do not collide."""
    templates = list(dict.fromkeys(df.loc[df["task"] == task, "template"]))
    return "" if len(templates) == 1 else f"t{templates.index(template) + 1}"


#: the columns a zero-shot table needs to be drawn, by table
NEEDED = {
    "results": ("task", "template", "grouping", "group", "label", "top1_pct", "mean_prob"),
    "accuracy": ("task", "template", "grouping", "group", "scoring", "accuracy_pct"),
    "comparison": ("task", "template", "grouping", "group", "metric", "level", "baseline", "label", "difference"),
}


def _drawable(df: pd.DataFrame | None, table: str, done: Figures) -> pd.DataFrame:
    """The table's rows that are drawn (every grouping but ``all``), or an empty frame (noting why when there were
    rows to draw)."""
    if df is None or not len(df):
        return pd.DataFrame()
    absent = [c for c in NEEDED[table] if c not in df.columns]
    if absent:
        done.skip(table, f"the table lacks the column(s) {', '.join(absent)}")
        return pd.DataFrame()
    rows = df[df["grouping"] != "all"]
    if not len(rows):
        done.skip(table, "only the ungrouped results (grouping all): no group to draw")
    return rows


def plot_audit(tables: dict[str, pd.DataFrame], folder: Path, warning: str | None = None, model: str = "") -> Figures:
    """Figures of one zeroshot run (the ``results`` and ``accuracy`` tables) into ``folder``; returns the files
    (and, in ``not_drawn``, what its tables cannot draw)."""
    out = Figures()
    results = _drawable(tables.get("results"), "results", out)
    ci = "95% interval over people"
    for (task, template, grouping), df in (
        results.groupby(["task", "template", "grouping"], sort=False) if len(results) else []
    ):
        tag = _template_tag(results, task, template)
        out.append(
            _panels(
                df,
                grouping,
                "top1_pct",
                "top-1 share (% of images)",
                f"{model}: share of images labelled as each class, by {grouping.replace('+', ' × ')}\n"
                f"({task}: {template}; {ci})",
                warning,
                folder / f"{_slug('share', task, tag, grouping)}.png",
            )
        )
        df = df.assign(
            mean_pct=df["mean_prob"] * 100,
            mean_pct_low=df["mean_prob_low"] * 100,
            mean_pct_high=df["mean_prob_high"] * 100,
        )
        out.append(
            _panels(
                df,
                grouping,
                "mean_pct",
                "mean probability (%)",
                f"{model}: mean probability of each class, by {grouping.replace('+', ' × ')}\n"
                f"({task}: {template}; {ci})",
                warning,
                folder / f"{_slug('probability', task, tag, grouping)}.png",
            )
        )
    acc = _drawable(tables.get("accuracy"), "accuracy", out)
    for (task, template, grouping), df in (
        acc.groupby(["task", "template", "grouping"], sort=False) if not acc.empty else []
    ):
        tag = _template_tag(acc, task, template)
        df = df.assign(label=f"{task} accuracy ({df['scoring'].iloc[0]})")
        out.append(
            _panels(
                df,
                grouping,
                "accuracy_pct",
                "accuracy (%)",
                f"{model}: zero-shot {task} accuracy by {grouping.replace('+', ' × ')} ({ci})",
                warning,
                folder / f"{_slug('accuracy', task, tag, grouping)}.png",
            )
        )
    return out


def plot_comparison(tables: dict[str, pd.DataFrame], folder: Path, warning: str | None = None) -> Figures:
    """Figures of a model comparison: change in percentage points per group and class, with intervals."""
    out = Figures()
    comp = _drawable(tables.get("results"), "comparison", out)
    for (task, template, grouping, metric, level), df in (
        comp.groupby(["task", "template", "grouping", "metric", "level"], sort=False) if len(comp) else []
    ):
        base = df["baseline"].iloc[0]
        what = "top-1 share" if metric == "top1_pct" else "mean probability"
        out.append(
            _panels(
                df,
                grouping,
                "difference",
                f"change in {what} (pp)",
                f"{level} vs {base}: change in {what} by {grouping.replace('+', ' × ')} ({task}; mean over models, 95% interval over people)",
                warning,
                folder / f"{_slug('change', metric, task, _template_tag(comp, task, template), grouping, level)}.png",
                zero_line=True,
            )
        )
    return out
