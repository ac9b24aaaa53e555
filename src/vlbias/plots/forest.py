"""Forest plots: estimates with their intervals, one row per item, optionally one dodged marker per series (model)
and one panel per group. Used for association-test effect sizes, zero-shot shares across models and perception
factor effects across models."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from vlbias.plots.style import BLUE, ORANGE, NotDrawn, new_figure, save, series_style, wrap

#: beyond this many series the legend is left out (the figure's data CSV names every marker)
MAX_LEGEND = 24


def _unique(values) -> list:
    return list(dict.fromkeys(v for v in values if not (isinstance(v, float) and math.isnan(v))))


def crowd_layout(
    part: pd.DataFrame, *, row: str, series: str, est: str, low: str, high: str, y_of: dict
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[tuple[str, float, float, bool]]]:
    """Where a forest plot of many series puts each estimate: within its row, the series sorted by estimate, the
    highest at the top of the row's band (+0.3) and the lowest at its bottom (-0.3), estimates without a value
    below them; returns y, the estimate, low, high (arrays in ``part``'s order) and the markers to name: per row,
    (series, estimate, y, True) for the highest and (…, False) for the lowest, the lowest only where it differs."""
    e = pd.to_numeric(part[est], errors="coerce").to_numpy(dtype=float)
    lo = pd.to_numeric(part[low], errors="coerce").to_numpy(dtype=float)
    hi = pd.to_numeric(part[high], errors="coerce").to_numpy(dtype=float)
    y = np.zeros(len(part))
    named: list[tuple[str, float, float, bool]] = []
    keys = part[row].to_numpy()
    names = part[series].astype(str).to_numpy()
    for r, base in y_of.items():
        idx = np.flatnonzero(keys == r)
        if not len(idx):
            continue
        order = idx[np.lexsort((np.arange(len(idx)), -np.nan_to_num(e[idx], nan=-np.inf)))]  # highest first, stable
        y[order] = base + (np.linspace(0.3, -0.3, len(order)) if len(order) > 1 else 0.0)
        valued = [i for i in order if np.isfinite(e[i])]
        if valued:
            named.append((names[valued[0]], e[valued[0]], y[valued[0]], True))
            if len(valued) > 1:
                named.append((names[valued[-1]], e[valued[-1]], y[valued[-1]], False))
    return y, e, lo, hi, named


def forest(
    df: pd.DataFrame,
    path: Path,
    *,
    row: str,
    est: str,
    low: str,
    high: str,
    xlabel: str,
    title: str,
    series: str | None = None,
    panel: str | None = None,
    rows: list | None = None,
    ref: float | None = 0.0,
    note: str | None = None,
    ncols: int = 3,
    missing: str | None = "no estimate",
    width: float = 4.2,
    dpi: int = 110,
) -> Path:
    """Draw ``df`` as a forest plot into ``path``.

    Each row of ``df`` is one estimate (``est``) with its interval (``low``, ``high``), placed on the y axis by
    ``row``; ``series`` dodges several estimates of a row (one per model) with a colour and marker each; ``panel``
    draws one panel per value, sharing both axes. Estimates without an interval are drawn hollow; rows without an
    estimate keep their place and read "(no estimate)". :class:`~vlbias.plots.style.NotDrawn` without a row.
    """
    if df is None or not len(df) or any(c not in df.columns for c in (row, est, low, high)):
        raise NotDrawn("no estimates to draw")
    panels = _unique(df[panel]) if panel else [None]
    if panel:  # a panel without any estimate (an order whose rows were all skipped) is named, not drawn empty
        valued = set(df.loc[pd.to_numeric(df[est], errors="coerce").notna(), panel])
        empty = [p for p in panels if p not in valued]
        panels = [p for p in panels if p in valued]
        if not panels:
            raise NotDrawn("no estimates to draw")
        if empty:
            note = (f"{note}; " if note else "") + f"no estimate in {', '.join(str(p) for p in empty)}"
    row_keys = rows if rows is not None else _unique(df[row])
    if not row_keys:
        raise NotDrawn("no rows to draw")
    series_keys = _unique(df[series]) if series else [None]
    n_s = len(series_keys)
    crowd = n_s > MAX_LEGEND  # too many to tell apart: one neutral colour, and the title says so
    per_row = 1.4 if crowd else max(0.32, 0.1 * n_s + 0.12)  # a crowd: one sorted band per row, no dodging
    ncols = max(1, min(ncols, len(panels)))
    nrows = math.ceil(len(panels) / ncols)
    label_width = min(3.2, 0.07 * max((len(str(r)) for r in row_keys), default=10) + 0.4)
    height = nrows * (per_row * len(row_keys) + 0.9) + 1.0
    legend_w = (
        0.09 * max((len(str(k)) for k in series_keys if k is not None), default=0) + 0.6 if 1 < n_s <= MAX_LEGEND else 0
    )
    fig = new_figure(label_width + width * ncols + legend_w, min(height, 60))
    axes = fig.subplots(nrows, ncols, squeeze=False, sharex=True, sharey=True).ravel()
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    offsets = np.linspace(0.3, -0.3, n_s) if n_s > 1 else np.zeros(1)
    y_of = {r: len(row_keys) - 1 - i for i, r in enumerate(row_keys)}
    handles = {}
    for ax, p in zip(axes, panels):
        sub = df if p is None else df[df[panel] == p]
        has_estimate = set()
        if crowd:  # many models: per row, sorted by estimate, the highest and the lowest named
            part = sub[sub[row].isin(y_of)]
            y, e, lo, hi, named = crowd_layout(part, row=row, series=series, est=est, low=low, high=high, y_of=y_of)
            ok = np.isfinite(e)
            has_estimate |= set(part.loc[ok, row])
            with_ci = ok & np.isfinite(lo) & np.isfinite(hi)
            ax.hlines(y[with_ci], lo[with_ci], hi[with_ci], color="0.55", lw=0.5)
            ax.plot(e[with_ci], y[with_ci], "o", color="0.3", ms=2.2, ls="none")
            ax.plot(e[ok & ~with_ci], y[ok & ~with_ci], "o", mfc="white", mec="0.3", ms=2.2, ls="none")
            for name, x, yy, top in named:
                ax.plot([x], [yy], "o", color=BLUE if top else ORANGE, ms=3.5, ls="none")
                ax.annotate(  # the highest to the left of its marker, the lowest to the right: inside the axes
                    name,
                    (x, yy),
                    xytext=(-5 if top else 5, 0),
                    textcoords="offset points",
                    ha="right" if top else "left",
                    va="center",
                    fontsize=6.5,
                    bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.8},
                )
        for si, s in enumerate([] if crowd else series_keys):
            part = sub if s is None else sub[sub[series] == s]
            colour, marker = series_style(si) if s is not None else (BLUE, "o")
            part = part[part[row].isin(y_of)]
            if part.empty:
                continue
            y = part[row].map(y_of).to_numpy(dtype=float) + offsets[si]
            e = pd.to_numeric(part[est], errors="coerce").to_numpy(dtype=float)
            lo = pd.to_numeric(part[low], errors="coerce").to_numpy(dtype=float)
            hi = pd.to_numeric(part[high], errors="coerce").to_numpy(dtype=float)
            ok = np.isfinite(e)
            has_estimate |= set(part.loc[ok, row])
            with_ci = ok & np.isfinite(lo) & np.isfinite(hi)
            lw, ms = 1.4, 5
            ax.hlines(y[with_ci], lo[with_ci], hi[with_ci], color=colour, lw=lw)
            h = ax.plot(e[with_ci], y[with_ci], marker, color=colour, ms=ms, ls="none")
            ax.plot(e[ok & ~with_ci], y[ok & ~with_ci], marker, mfc="white", mec=colour, ms=ms, ls="none")
            if s is not None and s not in handles and h:
                handles[s] = h[0]
        if ref is not None:
            ax.axvline(ref, color="0.45", lw=0.9, ls="--", zorder=0)
        # shared y axes share their labels: only a single panel can say which rows it has no estimate for
        plain = len(panels) > 1 or missing is None
        ax.set_yticks(list(y_of.values()), [str(r) if plain or r in has_estimate else f"{r} ({missing})" for r in y_of])
        ax.set_ylim(-0.7, len(row_keys) - 0.3)
        ax.grid(axis="x", alpha=0.3)
        ax.tick_params(labelsize=8)
        if p is not None:
            ax.set_title(str(p), fontsize=9)
    fig.supxlabel(wrap(xlabel, fig.get_figwidth(), 9), fontsize=9)
    if crowd:
        note = (f"{note}; " if note else "") + (
            f"one marker per {series.replace('_label', '')} ({n_s}), sorted by estimate within each row; "
            "the highest (blue) and the lowest (orange) named"
        )
    fig.suptitle(wrap(title + (f"\n{note}" if note else ""), fig.get_figwidth(), 10), fontsize=10)
    if 1 < n_s <= MAX_LEGEND and handles:
        fig.legend(
            list(handles.values()),
            [str(k) for k in handles],
            loc="outside right center",
            fontsize=7,
            frameon=False,
        )
    save(fig, path, dpi=dpi)
    return path
