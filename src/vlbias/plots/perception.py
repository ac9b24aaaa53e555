"""Figures of the social-perception audit, drawn from its result tables (so they can be redrawn from a folder)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from vlbias.plots.style import BLUE, GREY, VERMILLION, new_figure, save, series_colour, series_marker

DELTA_UNIT = "Delta points (% cosine similarity)"
PROTECTED_COLOUR = VERMILLION
UNPROTECTED_COLOUR = BLUE
IDENTITY_COLOUR = GREY


def _dimension_colour(dim: str) -> str:
    if dim in ("age", "gender", "race"):
        return PROTECTED_COLOUR
    if dim == "identity":
        return IDENTITY_COLOUR
    return UNPROTECTED_COLOUR


def _grid(n: int) -> tuple[int, int]:
    cols = min(4, n)
    return (int(np.ceil(n / cols)), cols)


def _box_panel(ax, pairs: pd.DataFrame, effects: pd.DataFrame, ylabel: bool) -> None:
    from matplotlib.patches import Patch

    order = effects.sort_values("rank")["dimension"].tolist()
    data = [pairs.loc[pairs["dimension"] == d, "abs_change"].to_numpy() for d in order]
    bp = ax.boxplot(data, showfliers=False, patch_artist=True, widths=0.6, medianprops={"color": "black"})
    for patch, d in zip(bp["boxes"], order):
        patch.set_facecolor(_dimension_colour(d))
        patch.set_alpha(0.55)
    eff = effects.set_index("dimension").loc[order]
    x = np.arange(1, len(order) + 1)
    ax.errorbar(
        x,
        eff["median"],
        yerr=[eff["median"] - eff["median_ci_low"], eff["median_ci_high"] - eff["median"]],
        fmt="none",
        ecolor="black",
        elinewidth=2,
        capsize=4,
    )
    ax.set_xticks(x, order, rotation=35, ha="right")
    if ylabel:
        ax.set_ylabel(f"|change| in score ({DELTA_UNIT})")
    ax.set_xlabel("dimension changed (one at a time)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(
        handles=[
            Patch(facecolor=PROTECTED_COLOUR, alpha=0.55, label="protected"),
            Patch(facecolor=UNPROTECTED_COLOUR, alpha=0.55, label="not protected"),
            Patch(facecolor=IDENTITY_COLOUR, alpha=0.55, label="identity"),
        ],
        fontsize="x-small",
        loc="upper right",
    )


def factor_effects(tables: dict[str, pd.DataFrame], out: Path) -> list[Path]:
    pairs, effects = tables.get("factor_pairs"), tables.get("factor_effects")
    if pairs is None or effects is None or not len(pairs):
        return []
    paths = []
    fig = new_figure(7, 4.8)
    ax = fig.add_subplot()
    pooled = effects[effects["scale"] == "all scales"]
    _box_panel(ax, pairs, pooled, ylabel=True)
    n = int(pairs.groupby("dimension")["pair"].nunique().max())
    ax.set_title(
        f"How much one attribute moves social perception\n(all scales pooled; {n} random pairs per dimension; "
        "box: quartiles, bar: 95% CI of median)",
        fontsize="medium",
    )
    paths.append(out / "factor_effects.png")
    save(fig, paths[-1])

    scales = [s for s in effects["scale"].unique() if s != "all scales"]
    rows, cols = _grid(len(scales))
    fig = new_figure(4 * cols, 3.4 * rows)
    for i, scale in enumerate(scales):
        ax = fig.add_subplot(rows, cols, i + 1)
        _box_panel(ax, pairs[pairs["scale"] == scale], effects[effects["scale"] == scale], ylabel=i % cols == 0)
        ax.set_title(scale)
        if ax.get_legend() and i:
            ax.get_legend().remove()
    fig.suptitle("Absolute change of each scale score within pairs that differ in one dimension")
    paths.append(out / "factor_effects_by_scale.png")
    save(fig, paths[-1])
    return paths


def level_curves(tables: dict[str, pd.DataFrame], out: Path) -> list[Path]:
    means, grid, extremes = tables.get("level_means"), tables.get("curve_grid"), tables.get("extreme_groups")
    if means is None or not len(means):
        return []
    paths = []
    for attr, m in means.groupby("attribute", sort=False):
        scales = list(dict.fromkeys(m["scale"]))
        groups = sorted(m["group"].unique())
        colours = {g: series_colour(i) for i, g in enumerate(groups)}
        marker = {g: series_marker(i) for i, g in enumerate(groups)}
        rows, cols = _grid(len(scales))
        fig = new_figure(4.2 * cols, 3.5 * rows)
        for i, scale in enumerate(scales):
            ax = fig.add_subplot(rows, cols, i + 1)
            ex = (
                extremes[(extremes["attribute"] == attr) & (extremes["scale"] == scale)]
                if extremes is not None
                else None
            )
            top = ex.loc[ex["rank"] == 1, "group"].iloc[0] if ex is not None and len(ex) else None
            span = float(m["level"].max() - m["level"].min()) or 1.0
            for gi, g in enumerate(groups):
                mg = m[(m["scale"] == scale) & (m["group"] == g)].sort_values("level")
                dodge = (gi - (len(groups) - 1) / 2) * 0.008 * span  # keeps the interval bars apart
                bold = g == top
                ls = "--" if g.endswith("male") and not g.endswith("female") else "-"
                err = [mg["mean"] - mg["ci_low"], mg["ci_high"] - mg["mean"]]
                ax.errorbar(
                    mg["level"] + dodge,
                    mg["mean"],
                    yerr=err,
                    fmt=marker[g],
                    color=colours[g],
                    ms=4 if not bold else 6,
                    capsize=2,
                    elinewidth=0.8,
                    label=g,
                )
                if grid is not None and len(grid):
                    gg = grid[(grid["attribute"] == attr) & (grid["scale"] == scale) & (grid["group"] == g)]
                    if len(gg):
                        ax.plot(gg["x"], gg["fit"], ls, color=colours[g], lw=2.6 if bold else 1.2)
                        ax.fill_between(gg["x"], gg["ci_low"], gg["ci_high"], color=colours[g], alpha=0.12, lw=0)
            title = scale
            if top is not None:
                p = ex.loc[ex["rank"] == 1, "p_most_extreme"].iloc[0]
                title += f"\nmost extreme: {top}" + (f" (bootstrap p={p:.2f})" if pd.notna(p) else "")
            ax.set_title(title, fontsize="small")
            unit = m["unit"].iloc[0] if "unit" in m else "level"
            ax.set_xlabel(f"{attr} ({unit})")
            ax.grid(alpha=0.3)
        handles, labels = fig.axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncols=min(len(groups), 7), fontsize="small")
        fig.supylabel(f"scale score ({DELTA_UNIT})")
        fig.suptitle(f"Scale scores by {attr} level per race x gender group (mean, 95% CI; quadratic fit with band)")
        paths.append(out / f"level_curves_{attr}.png")
        save(fig, paths[-1])
    return paths


def skew_bars(tables: dict[str, pd.DataFrame], out: Path) -> list[Path]:
    skew = tables.get("skew")
    if skew is None or not len(skew):
        return []
    paths = []
    for grouping, s in skew.groupby("grouping", sort=False):
        s = s.reset_index(drop=True)
        groups = sorted(s["max_skew_group"].unique())
        colours = {g: series_colour(i) for i, g in enumerate(groups)}
        fig = new_figure(7, 0.22 * len(s) + 1.6)
        ax = fig.add_subplot()
        y = np.arange(len(s))[::-1]
        ax.barh(y, s["max_skew"], color=[colours[g] for g in s["max_skew_group"]])
        if "max_skew_null_p95" in s:
            ax.axvline(
                s["max_skew_null_p95"].iloc[0], color="black", ls="--", lw=1, label="95th percentile, random rankings"
            )
        labels = [f"{r} [{k}]" if k == "scale" else r for r, k in zip(s["ranking"], s["kind"])]
        ax.set_yticks(y, labels, fontsize="x-small")
        k = int(s["k"].iloc[0])
        ax.set_xlabel(f"MaxSkew@{k} (ln of over-representation of the most retrieved group; 0 = balanced)")
        from matplotlib.patches import Patch

        handles = [Patch(color=colours[g], label=f"most over-represented: {g}") for g in groups]
        handles += ax.get_legend_handles_labels()[0]
        ax.legend(handles=handles, fontsize="x-small", loc="lower right")
        ax.set_title(f"Retrieval skew over {grouping} (group-balanced set of {int(s['n_items'].iloc[0])} images)")
        ax.grid(axis="x", alpha=0.3)
        paths.append(out / f"skew_{grouping.replace(' ', '_')}.png")
        save(fig, paths[-1])
    return paths


def variance_shares(tables: dict[str, pd.DataFrame], out: Path) -> list[Path]:
    vs = tables.get("variance_shares")
    if vs is None or not len(vs):
        return []
    scales = list(dict.fromkeys(vs["scale"]))
    attrs = list(dict.fromkeys(vs["attribute"]))
    rows, cols = _grid(len(scales))
    fig = new_figure(3.2 * cols, 0.28 * len(attrs) * rows + 1.4 * rows)
    for i, scale in enumerate(scales):
        ax = fig.add_subplot(rows, cols, i + 1)
        sub = vs[vs["scale"] == scale].set_index("attribute").loc[attrs]
        y = np.arange(len(attrs))[::-1]
        err = None
        if "share_ci_low" in sub:
            err = [
                np.clip(sub["share"] - sub["share_ci_low"], 0, None),
                np.clip(sub["share_ci_high"] - sub["share"], 0, None),
            ]
        ax.barh(
            y, sub["share"].clip(lower=0), xerr=err, capsize=2, color=[_dimension_colour(a) for a in attrs], alpha=0.8
        )
        ax.set_yticks(y, attrs if i % cols == 0 else [""] * len(attrs))
        ax.set_xlim(0, 1)
        ax.set_title(f"{scale} (R\u00b2 = {sub['r2_model'].iloc[0]:.2f})", fontsize="small")
        ax.grid(axis="x", alpha=0.3)
    fig.supxlabel("share of explained variance (LMG, 0-1); bars: 95% bootstrap CI over identities", fontsize="small")
    fig.suptitle(
        "What explains each scale score (vermillion: protected, blue: not protected, grey: identity)", fontsize="medium"
    )
    path = out / "variance_shares.png"
    save(fig, path)
    return [path]


def markedness(tables: dict[str, pd.DataFrame], out: Path) -> list[Path]:
    mk = tables.get("markedness")
    if mk is None or not len(mk) or "share_neutral_closer" not in mk:
        return []
    mk = mk[mk["share_neutral_closer"].notna()]
    dims = list(dict.fromkeys(mk["dimension"]))
    fig = new_figure(5 * len(dims), 3.8)
    for i, dim in enumerate(dims):
        ax = fig.add_subplot(1, len(dims), i + 1)
        sub = mk[(mk["dimension"] == dim) & (mk["grouping"] == "race x gender")]
        if not len(sub):
            sub = mk[mk["dimension"] == dim]
        x = np.arange(len(sub))
        err = None
        if "share_neutral_closer_ci_low" in sub:
            err = [
                sub["share_neutral_closer"] - sub["share_neutral_closer_ci_low"],
                sub["share_neutral_closer_ci_high"] - sub["share_neutral_closer"],
            ]
        ax.bar(
            x,
            sub["share_neutral_closer"],
            yerr=err,
            capsize=3,
            color=[series_colour(j) for j in range(len(sub))],
        )
        ax.set_xticks(x, sub["group"], rotation=35, ha="right")
        ax.set_ylim(0, 1)
        ax.set_ylabel("share of images (0-1)")
        ax.set_title(
            f"Unmarked {dim}: the neutral prompt is closer\nthan the prompt naming the image's {dim} (95% CI)",
            fontsize="small",
        )
        ax.grid(axis="y", alpha=0.3)
    path = out / "markedness.png"
    save(fig, path)
    return [path]


def draw_all(tables: dict[str, pd.DataFrame], out: str | Path) -> list[Path]:
    """Every figure the tables allow, as PNG files in ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for fn in (factor_effects, variance_shares, level_curves, markedness, skew_bars):
        paths += fn(tables, out)
    return paths
