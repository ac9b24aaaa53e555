"""Figures of the social-perception audit, drawn from its result tables (so they can be redrawn from a folder).

Each function returns :class:`~vlbias.plots.style.Figures`: the files it drew and the figures its tables cannot make
(with the reason); an absent table draws nothing and says nothing (the audit's notes say why the analysis did not
run)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from vlbias.plots.style import (
    BLUE,
    GREY,
    VERMILLION,
    Figures,
    NotDrawn,
    new_figure,
    save,
    series_colour,
    series_marker,
)

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


def factor_effects(tables: dict[str, pd.DataFrame], out: Path) -> Figures:
    pairs, effects = tables.get("factor_pairs"), tables.get("factor_effects")
    done = Figures()
    if pairs is None or effects is None:
        return done
    if not len(pairs) or not len(effects):
        done.skip("factor_effects", "no pairs of images that differ in one dimension only")
        return done
    with_pairs = set(pairs["dimension"])
    effects = effects[effects["dimension"].isin(with_pairs)]
    pooled = effects[effects["scale"] == "all scales"]
    if len(pooled):
        fig = new_figure(7, 4.8)
        ax = fig.add_subplot()
        _box_panel(ax, pairs, pooled, ylabel=True)
        n = int(pairs.groupby("dimension")["pair"].nunique().max())
        ax.set_title(
            f"How much one attribute moves social perception\n(all scales pooled; {n} random pairs per dimension; "
            "box: quartiles, bar: 95% CI of median)",
            fontsize="medium",
        )
        done.append(out / "factor_effects.png")
        save(fig, done[-1])
    else:
        done.skip("factor_effects", "no pooled (all scales) factor effects")

    scales = [s for s in effects["scale"].unique() if s != "all scales"]
    if not scales:
        done.skip("factor_effects_by_scale", "no factor effects per scale")
        return done
    rows, cols = _grid(len(scales))
    fig = new_figure(4 * cols, 3.4 * rows)
    for i, scale in enumerate(scales):
        ax = fig.add_subplot(rows, cols, i + 1)
        _box_panel(ax, pairs[pairs["scale"] == scale], effects[effects["scale"] == scale], ylabel=i % cols == 0)
        ax.set_title(scale)
        if ax.get_legend() and i:
            ax.get_legend().remove()
    fig.suptitle("Absolute change of each scale score within pairs that differ in one dimension")
    done.append(out / "factor_effects_by_scale.png")
    save(fig, done[-1])
    return done


def level_curves(tables: dict[str, pd.DataFrame], out: Path) -> Figures:
    means, grid, extremes = tables.get("level_means"), tables.get("curve_grid"), tables.get("extreme_groups")
    done = Figures()
    if means is None:
        return done
    if not len(means):
        done.skip("level_curves", "no level means")
        return done
    # a table without rows may come without columns too (no group had a level every other group has)
    if grid is not None and not {"attribute", "scale", "group", "x", "fit"} <= set(grid.columns):
        grid = None
    if extremes is not None and not {"attribute", "scale", "group", "rank"} <= set(extremes.columns):
        extremes = None
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
            top = ex.loc[ex["rank"] == 1, "group"].iloc[0] if ex is not None and (ex["rank"] == 1).any() else None
            span = float(m["level"].max() - m["level"].min()) or 1.0
            for gi, g in enumerate(groups):
                mg = m[(m["scale"] == scale) & (m["group"] == g)].sort_values("level")
                dodge = (gi - (len(groups) - 1) / 2) * 0.008 * span  # keeps the interval bars apart
                bold = g == top
                ls = "--" if g.endswith("male") and not g.endswith("female") else "-"
                err = [(mg["mean"] - mg["ci_low"]).clip(lower=0), (mg["ci_high"] - mg["mean"]).clip(lower=0)]
                ax.errorbar(
                    mg["level"] + dodge,
                    mg["mean"],
                    yerr=[e.fillna(0) for e in err],
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
                p = ex.loc[ex["rank"] == 1, "p_most_extreme"].iloc[0] if "p_most_extreme" in ex else np.nan
                title += f"\nmost extreme: {top}" + (f" (bootstrap p={p:.2f})" if pd.notna(p) else "")
            ax.set_title(title, fontsize="small")
            unit = m["unit"].iloc[0] if "unit" in m else "level"
            ax.set_xlabel(f"{attr} ({unit})")
            ax.grid(alpha=0.3)
        handles, labels = fig.axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncols=min(len(groups), 7), fontsize="small")
        fig.supylabel(f"scale score ({DELTA_UNIT})")
        fig.suptitle(f"Scale scores by {attr} level per race x gender group (mean, 95% CI; quadratic fit with band)")
        done.append(out / f"level_curves_{attr}.png")
        save(fig, done[-1])
    if extremes is None and len(done):
        done.skip("most extreme group", "no level that every group has, so no group is compared with the others")
    return done


def skew_bars(tables: dict[str, pd.DataFrame], out: Path) -> Figures:
    skew = tables.get("skew")
    done = Figures()
    if skew is None:
        return done
    if not len(skew):
        done.skip("skew", "no ranking with two or more groups")
        return done
    for grouping, s in skew.groupby("grouping", sort=False):
        s = s.reset_index(drop=True)
        name = f"skew_{grouping.replace(' ', '_')}"
        n_items = int(s["n_items"].iloc[0])
        k_used = int(s["k_used"].iloc[0] if "k_used" in s else s["k"].iloc[0])
        k = int(s["k"].iloc[0])
        if k_used >= n_items:  # the top k is the whole set: the same for every ranking
            done.skip(
                name,
                f"k = {k} covers all {n_items} images ranked, so MaxSkew@k is the same for every ranking (0 for a "
                f"balanced set); give a k below {n_items}",
            )
            continue
        groups = sorted(s["max_skew_group"].astype(str).unique())
        colours = {g: series_colour(i) for i, g in enumerate(groups)}
        fig = new_figure(7, 0.22 * len(s) + 1.6)
        ax = fig.add_subplot()
        y = np.arange(len(s))[::-1]
        ax.barh(y, s["max_skew"], color=[colours[str(g)] for g in s["max_skew_group"]])
        if "max_skew_null_p95" in s:
            ax.axvline(
                s["max_skew_null_p95"].iloc[0], color="black", ls="--", lw=1, label="95th percentile, random rankings"
            )
        labels = [f"{r} [{kind}]" if kind == "scale" else r for r, kind in zip(s["ranking"], s["kind"])]
        ax.set_yticks(y, labels, fontsize="x-small")
        ax.set_xlabel(f"MaxSkew@{k_used} (ln of over-representation of the most retrieved group; 0 = balanced)")
        from matplotlib.patches import Patch

        handles = [Patch(color=colours[g], label=f"most over-represented: {g}") for g in groups]
        handles += ax.get_legend_handles_labels()[0]
        ax.legend(handles=handles, fontsize="x-small", loc="lower right")
        ax.set_title(f"Retrieval skew over {grouping} (group-balanced set of {n_items} images)")
        ax.grid(axis="x", alpha=0.3)
        done.append(out / f"{name}.png")
        save(fig, done[-1])
    return done


def variance_shares(tables: dict[str, pd.DataFrame], out: Path) -> Figures:
    vs = tables.get("variance_shares")
    done = Figures()
    if vs is None:
        return done
    if not len(vs):
        done.skip("variance_shares", "no attribute with two or more values")
        return done
    scales = list(dict.fromkeys(vs["scale"]))
    attrs = list(dict.fromkeys(vs["attribute"]))
    rows, cols = _grid(len(scales))
    fig = new_figure(3.2 * cols, 0.28 * len(attrs) * rows + 1.4 * rows)
    for i, scale in enumerate(scales):
        ax = fig.add_subplot(rows, cols, i + 1)
        sub = vs[vs["scale"] == scale].drop_duplicates("attribute").set_index("attribute").reindex(attrs)
        y = np.arange(len(attrs))[::-1]
        err = None
        if "share_pct_ci_low" in sub:
            err = [
                np.clip(sub["share_pct"] - sub["share_pct_ci_low"], 0, None).fillna(0),
                np.clip(sub["share_pct_ci_high"] - sub["share_pct"], 0, None).fillna(0),
            ]
        ax.barh(
            y,
            sub["share_pct"].clip(lower=0).fillna(0),
            xerr=err,
            capsize=2,
            color=[_dimension_colour(a) for a in attrs],
            alpha=0.8,
        )
        ax.set_yticks(y, attrs if i % cols == 0 else [""] * len(attrs))
        ax.set_xlim(0, 100)
        r2 = sub["r2_model"].dropna() if "r2_model" in sub else pd.Series(dtype=float)
        ax.set_title(f"{scale} (R\u00b2 = {r2.iloc[0]:.2f})" if len(r2) else scale, fontsize="small")
        ax.grid(axis="x", alpha=0.3)
    fig.supxlabel("share of explained variance (LMG, %); bars: 95% bootstrap CI over identities", fontsize="small")
    fig.suptitle(
        "What explains each scale score (vermillion: protected, blue: not protected, grey: identity)", fontsize="medium"
    )
    done.append(out / "variance_shares.png")
    save(fig, done[-1])
    return done


def markedness(tables: dict[str, pd.DataFrame], out: Path) -> Figures:
    mk = tables.get("markedness")
    done = Figures()
    if mk is None:
        return done
    if not len(mk) or "neutral_closer_pct" not in mk or not mk["neutral_closer_pct"].notna().any():
        done.skip("markedness", "no group named by a control word")
        return done
    mk = mk[mk["neutral_closer_pct"].notna()]
    dims = list(dict.fromkeys(mk["dimension"]))
    fig = new_figure(5 * len(dims), 3.8)
    for i, dim in enumerate(dims):
        ax = fig.add_subplot(1, len(dims), i + 1)
        sub = mk[(mk["dimension"] == dim) & (mk["grouping"] == "race x gender")]
        if not len(sub):
            sub = mk[mk["dimension"] == dim]
        x = np.arange(len(sub))
        err = None
        if "neutral_closer_pct_ci_low" in sub:
            err = [
                (sub["neutral_closer_pct"] - sub["neutral_closer_pct_ci_low"]).clip(lower=0).fillna(0),
                (sub["neutral_closer_pct_ci_high"] - sub["neutral_closer_pct"]).clip(lower=0).fillna(0),
            ]
        ax.bar(
            x,
            sub["neutral_closer_pct"],
            yerr=err,
            capsize=3,
            color=[series_colour(j) for j in range(len(sub))],
        )
        ax.set_xticks(x, sub["group"], rotation=35, ha="right")
        ax.set_ylim(0, 100)
        ax.set_ylabel("share of images (%)")
        ax.set_title(
            f"Unmarked {dim}: the neutral prompt is closer\nthan the prompt naming the image's {dim} (95% CI)",
            fontsize="small",
        )
        ax.grid(axis="y", alpha=0.3)
    done.append(out / "markedness.png")
    save(fig, done[-1])
    return done


#: the figure functions of :func:`draw_all`, in the order they draw
FIGURE_FUNCTIONS = (factor_effects, variance_shares, level_curves, markedness, skew_bars)


def draw_all(tables: dict[str, pd.DataFrame], out: str | Path) -> Figures:
    """Every figure the tables allow, as PNG files in ``out``; the figures they do not allow are in ``not_drawn``
    with the reason (never an error: a figure that fails is noted too, so the audit's tables are never lost)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    done = Figures()
    for fn in FIGURE_FUNCTIONS:
        try:
            done.add(fn(tables, out))
        except NotDrawn as e:
            done.skip(fn.__name__, str(e))
        except Exception as e:  # noqa: BLE001 - a figure that cannot be drawn must not lose the audit's tables
            done.skip(fn.__name__, f"{type(e).__name__}: {e}")
    return done
