"""Depth curves: an audit's headline numbers over the layers of a model (:mod:`vlbias.models.layers`), with their
intervals as bands. One generic figure (:func:`depth_curves`) and one per audit: association-test effect sizes per
test and order (:func:`eat_depth`), zero-shot top-1 shares per group (:func:`zeroshot_depth`, one file per task and
grouping), perception factor effects per dimension (:func:`perception_depth`). Each draws from the audit's result
table with its ``layer`` column, so a curve can be redrawn from a folder or a database."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from vlbias.plots.style import new_figure, save, series_style, wrap

#: beyond this many series a panel's legend is left out (the data CSV names every line)
MAX_LEGEND = 16
LAYER_AXIS = "layer (transformer block, from the input)"


def _unique(values) -> list:
    return list(dict.fromkeys(v for v in values if isinstance(v, str) or pd.notna(v)))


def depth_curves(
    df: pd.DataFrame,
    path: Path,
    *,
    y: str,
    ylabel: str,
    title: str,
    low: str | None = None,
    high: str | None = None,
    series: str | None = None,
    panel: str | None = None,
    ref: float | None = None,
    note: str | None = None,
    ncols: int = 3,
    dpi: int = 110,
) -> Path:
    """One line per ``series`` over ``layer`` (markers at each layer, the interval ``low``..``high`` as a band), one
    panel per ``panel`` value sharing both axes; rows whose ``y`` is missing leave a gap. Layers are the table's
    ``layer`` column: block numbers from the input; negative numbers (counted from the top) only where there are
    no others, never both on one axis."""
    layer = pd.to_numeric(df["layer"], errors="coerce")
    df = df[layer > 0] if (layer > 0).any() else df[layer.notna()]
    panels = _unique(df[panel]) if panel else [None]
    keys = _unique(df[series]) if series else [None]
    ncols = max(1, min(ncols, len(panels)))
    nrows = math.ceil(len(panels) / ncols)
    legend = keys != [None] and len(keys) <= MAX_LEGEND
    legend_w = 0.08 * max((len(str(k)) for k in keys if k is not None), default=0) + 0.6 if legend else 0
    fig = new_figure(3.6 * ncols + legend_w + 0.6, 2.6 * nrows + 1.0)
    axes = fig.subplots(nrows, ncols, squeeze=False, sharex=True, sharey=True).ravel()
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    handles = {}
    layers = sorted({int(v) for v in df["layer"]})
    for ax, p in zip(axes, panels):
        sub = df if p is None else df[df[panel] == p]
        for i, key in enumerate(keys):
            part = sub if key is None else sub[sub[series] == key]
            part = part.sort_values("layer")
            if part.empty:
                continue
            colour, marker = series_style(i)
            x = part["layer"].to_numpy(dtype=float)
            v = pd.to_numeric(part[y], errors="coerce").to_numpy(dtype=float)
            if low and high and low in part and high in part:
                lo = pd.to_numeric(part[low], errors="coerce").to_numpy(dtype=float)
                hi = pd.to_numeric(part[high], errors="coerce").to_numpy(dtype=float)
                ok = np.isfinite(lo) & np.isfinite(hi)
                ax.fill_between(x, np.where(ok, lo, np.nan), np.where(ok, hi, np.nan), color=colour, alpha=0.15, lw=0)
            (h,) = ax.plot(x, v, marker=marker, color=colour, ms=3.5, lw=1.3)
            if key is not None:
                handles.setdefault(key, h)
        if ref is not None:
            ax.axhline(ref, color="0.45", lw=0.9, ls="--", zorder=0)
        ax.set_xticks(layers if len(layers) <= 16 else layers[:: math.ceil(len(layers) / 12)])
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=8)
        if p is not None:
            ax.set_title(wrap(str(p), 3.4, 9), fontsize=9)
    fig.supxlabel(LAYER_AXIS if min(layers, default=1) > 0 else "layer (transformer block, from the top)", fontsize=9)
    fig.supylabel(wrap(ylabel, 2.6 * nrows + 1.0, 9), fontsize=9)
    fig.suptitle(wrap(title + (f"\n{note}" if note else ""), fig.get_figwidth(), 10), fontsize=10)
    if legend and handles:
        fig.legend(
            list(handles.values()), [str(k) for k in handles], loc="outside right center", fontsize=7, frameon=False
        )
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save(fig, path, dpi=dpi)
    return Path(path)


def _model_note(df: pd.DataFrame, model: str | None) -> str:
    readings = _unique(df.get("reading", pd.Series(dtype=object)))
    parts = [model or ""] + ([f"reading {', '.join(map(str, readings))}"] if readings else [])
    return " · ".join(p for p in parts if p)


def eat_depth(results: pd.DataFrame, path: Path, model: str | None = None, title: str | None = None) -> Path:
    """Association-test effect sizes over depth: one panel per test, one line per order, bootstrap bands."""
    from vlbias.plots.eat import D_UNIT

    ok = results[results["status"] == "ok"]
    return depth_curves(
        ok,
        path,
        y="effect_size",
        low="ci_low",
        high="ci_high",
        series="order",
        panel="test",
        ref=0.0,
        ylabel=D_UNIT,
        title=title or "Association-test effect sizes over depth",
        note=_model_note(ok, model),
    )


def zeroshot_depth(results: pd.DataFrame, folder: Path, model: str | None = None) -> list[Path]:
    """Zero-shot top-1 shares over depth, one file per task, template and grouping: one panel per label (or
    category), one line per group, cluster-bootstrap bands."""
    headline = results[results["kind"] == "category"] if (results.get("kind") == "category").any() else results
    out = []
    for (task, template, grouping), sub in headline.groupby(["task", "template", "grouping"], sort=False):
        if grouping == "all" and headline.loc[headline["task"] == task, "grouping"].nunique() > 1:
            continue
        name = re.sub(r"[^A-Za-z0-9._+-]+", "-", f"depth-{task}-{grouping}-{template}").strip("-")[:120]
        out.append(
            depth_curves(
                sub,
                Path(folder) / f"{name}.png",
                y="top1_pct",
                low="top1_pct_low",
                high="top1_pct_high",
                series="group",
                panel="label",
                ylabel="top-1 share (% of the group's images)",
                title=f"{task}: share of each group's images given each label over depth, by "
                f"{grouping.replace('+', ' × ')} ({template})",
                note=_model_note(sub, model),
            )
        )
    return out


def perception_depth(factor_effects: pd.DataFrame, path: Path, model: str | None = None) -> Path:
    """Perception factor effects over depth (all scales pooled): one line per dimension, bands: the median's
    interval."""
    from vlbias.plots.perception import DELTA_UNIT

    pooled = factor_effects[factor_effects["scale"] == "all scales"]
    return depth_curves(
        pooled,
        path,
        y="median",
        low="median_ci_low",
        high="median_ci_high",
        series="dimension",
        ylabel=f"median |change| of the scale scores ({DELTA_UNIT})",
        title="How much each attribute moves social perception, over depth",
        note=_model_note(pooled, model),
    )
