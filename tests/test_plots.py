"""Every figure function of vlbias.plots copes with empty and degenerate tables: it draws what the data allow, or
says why it cannot (NotDrawn, or the not_drawn of the Figures it returns); it never fails otherwise. And the
figures of the issues found by new users: perception's level curves without a most extreme group, skew charts
whose k covers the whole set, upstream panels of two models, zero-shot panels on one y scale."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vlbias.plots import eat, forest, perception, upstream, zeroshot
from vlbias.plots.style import NotDrawn

SCALES = ["warm", "competent"]
GROUPS = ["white female", "black male"]


# ---------------------------------------------------------------------------------------------- full tables
def eat_results() -> pd.DataFrame:
    rows = []
    for m in ("model a", "model b"):
        for t in ("weat1", "weat7"):
            for o in ("all-text", "text-as-target"):
                rows.append(
                    {
                        "model_label": m,
                        "model": m,
                        "test": t,
                        "order": o,
                        "status": "ok",
                        "effect_size": 0.5,
                        "p_value": 0.03,
                        "ci_low": -0.1,
                        "ci_high": 1.1,
                        "confidence": 0.95,
                        "alternative": "greater",
                    }
                )
    return pd.DataFrame(rows)


def perception_tables() -> dict[str, pd.DataFrame]:
    dims = ["age", "race"]
    pairs = pd.DataFrame(
        [
            {
                "dimension": d,
                "pair": p,
                "key_a": "a",
                "key_b": "b",
                "scale": s,
                "change": 0.1 * p,
                "abs_change": 0.1 * p,
            }
            for d in dims
            for p in range(4)
            for s in SCALES
        ]
    )
    effects = pd.DataFrame(
        [
            {"scale": s, "dimension": d, "median": 0.2, "median_ci_low": 0.1, "median_ci_high": 0.3, "rank": i + 1}
            for s in ["all scales", *SCALES]
            for i, d in enumerate(dims)
        ]
    )
    means = pd.DataFrame(
        [
            {
                "attribute": "age",
                "unit": "years",
                "scale": s,
                "group": g,
                "level": lv,
                "mean": 1.0,
                "ci_low": 0.5,
                "ci_high": 1.5,
            }
            for s in SCALES
            for g in GROUPS
            for lv in (20.0, 40.0, 60.0)
        ]
    )
    grid = pd.DataFrame(
        [
            {
                "attribute": "age",
                "unit": "years",
                "scale": s,
                "group": g,
                "x": x,
                "fit": 1.0,
                "ci_low": 0.8,
                "ci_high": 1.2,
            }
            for s in SCALES
            for g in GROUPS
            for x in (20.0, 30.0, 40.0, 50.0, 60.0)
        ]
    )
    extremes = pd.DataFrame(
        [
            {"attribute": "age", "unit": "years", "scale": s, "group": g, "rank": r + 1, "p_most_extreme": 0.6}
            for s in SCALES
            for r, g in enumerate(GROUPS)
        ]
    )
    skew = pd.DataFrame(
        [
            {
                "grouping": gp,
                "kind": k,
                "ranking": r,
                "k": 10,
                "k_used": 10,
                "n_items": 40,
                "n_groups": 2,
                "max_skew": 0.3,
                "max_skew_group": "female",
                "max_skew_null_p95": 0.2,
            }
            for gp in ("gender", "race")
            for k, r in (("word", "warm"), ("scale", "competent"))
        ]
    )
    shares = pd.DataFrame(
        [
            {
                "scale": s,
                "attribute": a,
                "share_pct": 40.0,
                "share_pct_ci_low": 30.0,
                "share_pct_ci_high": 50.0,
                "r2_model": 0.6,
            }
            for s in SCALES
            for a in ("age", "race", "identity")
        ]
    )
    marked = pd.DataFrame(
        [
            {
                "dimension": "race",
                "grouping": gp,
                "group": g,
                "neutral_closer_pct": 50.0,
                "neutral_closer_pct_ci_low": 40.0,
                "neutral_closer_pct_ci_high": 60.0,
            }
            for gp in ("race", "race x gender")
            for g in GROUPS
        ]
    )
    return {
        "factor_pairs": pairs,
        "factor_effects": effects,
        "level_means": means,
        "curve_grid": grid,
        "extreme_groups": extremes,
        "skew": skew,
        "variance_shares": shares,
        "markedness": marked,
    }


def zeroshot_tables() -> dict[str, pd.DataFrame]:
    rows, acc = [], []
    for grouping in ("all", "race", "race+gender"):
        for g in ("white", "black") if grouping != "all" else ("all",):
            for gender in ("female", "male") if grouping == "race+gender" else (None,):
                for label in ("human being", "criminal"):
                    rows.append(
                        {
                            "task": "labels",
                            "template": "a photo of a {c}",
                            "grouping": grouping,
                            "group": g if gender is None else f"{g} {gender}",
                            "race": g,
                            "gender": gender,
                            "label": label,
                            "top1_pct": 40.0,
                            "top1_pct_low": 30.0,
                            "top1_pct_high": 50.0,
                            "mean_prob": 0.3,
                            "mean_prob_low": 0.2,
                            "mean_prob_high": 0.4,
                        }
                    )
            if grouping != "race+gender":
                acc.append(
                    {
                        "task": "race",
                        "template": "t",
                        "grouping": grouping,
                        "group": g,
                        "race": g,
                        "scoring": "top1",
                        "accuracy_pct": 60.0,
                        "accuracy_pct_low": 50.0,
                        "accuracy_pct_high": 70.0,
                    }
                )
    return {"results": pd.DataFrame(rows), "accuracy": pd.DataFrame(acc)}


def comparison_table() -> pd.DataFrame:
    rows = []
    for grouping in ("all", "race"):
        for g in ("white", "black") if grouping == "race" else ("all",):
            for label in ("human being", "criminal"):
                for metric in ("top1_pct", "mean_prob"):
                    rows.append(
                        {
                            "task": "labels",
                            "template": "t",
                            "grouping": grouping,
                            "group": g,
                            "race": g,
                            "level": "laion2b",
                            "baseline": "laion400m",
                            "family": "ViT-B-32",
                            "metric": metric,
                            "label": label,
                            "difference": 2.0,
                            "low": -1.0,
                            "high": 5.0,
                        }
                    )
    return pd.DataFrame(rows)


def upstream_tables() -> dict[str, pd.DataFrame]:
    fixed = pd.DataFrame(
        {
            "term": ["intercept", "log_params", "dataset_family[laion]"],
            "estimate": [0.1, 0.2, -0.1],
            "ci_low": [0.0, 0.1, -0.3],
            "ci_high": [0.2, 0.3, 0.1],
        }
    )
    data = pd.DataFrame(
        [
            {
                "model": f"m{i}",
                "test": t,
                "order": "all-text",
                "effect_size": 0.1 * i,
                "accuracy": 0.5 + 0.05 * i,
                "metric": "average",
            }
            for t in ("weat1", "weat7")
            for i in range(5)
        ]
    )
    from vlbias.stats.correlation import correlations_by_group

    corr = correlations_by_group(data, "accuracy", "effect_size", ["test", "order"])
    return {"fixed": fixed, "data": data, "corr": corr}


# ---------------------------------------------------------------------------------------------- the cases
def _eat(fn):
    return lambda t, out: fn(
        t["eat"],
        out / "f.png",
        title="t",
        **({"row": "model_label"} if fn is eat.effect_heatmap else {"series": "model_label"}),
    )


def _perception(fn):
    return lambda t, out: fn(t, out)


CASES = {
    "eat.effect_heatmap": (_eat(eat.effect_heatmap), "eat"),
    "eat.effect_forest": (_eat(eat.effect_forest), "eat"),
    "forest.forest": (
        lambda t, out: forest.forest(
            t["eat"],
            out / "f.png",
            row="test",
            est="effect_size",
            low="ci_low",
            high="ci_high",
            xlabel="d",
            title="t",
            series="model_label",
            panel="order",
        ),
        "eat",
    ),
    **{f"perception.{fn.__name__}": (_perception(fn), "perception") for fn in perception.FIGURE_FUNCTIONS},
    "perception.draw_all": (lambda t, out: perception.draw_all(t, out), "perception"),
    "upstream.plot_coefficients": (lambda t, out: upstream.plot_coefficients(t["fixed"], out / "f.png", "t"), "up"),
    "upstream.plot_bias_vs_accuracy": (
        lambda t, out: upstream.plot_bias_vs_accuracy(
            t["data"], t["corr"], out / "f.png", by=["test", "order"], effect="effect_size", metric="average"
        ),
        "up",
    ),
    "zeroshot.plot_audit": (lambda t, out: zeroshot.plot_audit(t, out, model="m"), "zeroshot"),
    "zeroshot.plot_comparison": (lambda t, out: zeroshot.plot_comparison(t, out), "comparison"),
}


def _tables(kind: str) -> dict[str, pd.DataFrame]:
    return {
        "eat": lambda: {"eat": eat_results()},
        "perception": perception_tables,
        "up": upstream_tables,
        "zeroshot": zeroshot_tables,
        "comparison": lambda: {"results": comparison_table()},
    }[kind]()


def _first_group(df: pd.DataFrame) -> pd.DataFrame:
    """The rows of the first model (or group, or attribute value) only."""
    for col in ("model_label", "model", "group", "dimension", "attribute", "term"):
        if col in df.columns:
            return df[df[col] == df[col].iloc[0]]
    return df.iloc[:1]


VARIANTS = {
    "empty": lambda df: df.iloc[0:0],
    "no columns": lambda df: pd.DataFrame(),
    "one row": lambda df: df.iloc[:1],
    "one group": _first_group,
    "all missing values": lambda df: df.assign(**{c: np.nan for c in df.columns if df[c].dtype.kind == "f"}),
}


def test_every_figure_function_has_a_case():
    """A new figure function gets the degenerate-input test below by getting a case here."""
    found = set()
    for module in (eat, forest, perception, upstream, zeroshot):
        for name, fn in inspect.getmembers(module, inspect.isfunction):
            params = inspect.signature(fn).parameters
            if (
                fn.__module__ == module.__name__
                and not name.startswith("_")
                and {"path", "out", "folder"} & set(params)
            ):
                found.add(f"{module.__name__.rsplit('.', 1)[1]}.{name}")
    assert found == set(CASES)


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("case", list(CASES))
def test_figures_cope_with_empty_and_degenerate_tables(case, variant, tmp_path):
    call, kind = CASES[case]
    tables = {k: VARIANTS[variant](v) for k, v in _tables(kind).items()}
    try:
        out = call(tables, tmp_path)
    except NotDrawn as e:
        assert str(e) and "\n" not in str(e)  # one line saying why
        assert not list(tmp_path.rglob("*.png"))
        return
    paths = list(out) if isinstance(out, (list, tuple)) else [out]
    for p in paths:
        assert Path(p).is_file() and Path(p).stat().st_size > 1000, p
    assert sorted(map(str, paths)) == sorted(str(p) for p in tmp_path.rglob("*.png"))
    for _figure, reason in getattr(out, "not_drawn", []):
        assert reason and "\n" not in reason
    if variant in ("empty", "no columns"):
        assert not paths  # nothing drawn from nothing


def test_full_tables_draw_every_figure(tmp_path):
    for case, (call, kind) in CASES.items():
        (tmp_path / case).mkdir()
        out = call(_tables(kind), tmp_path / case)
        paths = list(out) if isinstance(out, (list, tuple)) else [out]
        assert paths and all(Path(p).is_file() for p in paths), case
        assert not getattr(out, "not_drawn", []), (case, out.not_drawn)


def test_level_curves_without_a_most_extreme_group_are_drawn_and_noted(tmp_path):
    """The perception run of 24 faces whose race x gender groups share no age level: extreme_groups is a table
    without rows or columns; the curves are drawn, and why no group is marked is said."""
    t = perception_tables()
    t["extreme_groups"] = pd.DataFrame()
    done = perception.draw_all(t, tmp_path)
    assert (tmp_path / "level_curves_age.png").is_file()
    assert done.not_drawn == [
        ("most extreme group", "no level that every group has, so no group is compared with the others")
    ]
    assert done.notes()[0] == {
        "item": "figure most extreme group",
        "reason": "not drawn: no level that every group has, so no group is compared with the others",
    }


def test_skew_charts_whose_k_covers_the_set_are_not_drawn(tmp_path):
    t = {"skew": perception_tables()["skew"]}
    t["skew"].loc[t["skew"]["grouping"] == "race", ["k", "k_used"]] = (1000, 40)
    done = perception.skew_bars(t, tmp_path)
    assert [p.name for p in done] == ["skew_gender.png"]
    assert done.not_drawn == [
        (
            "skew_race",
            "k = 1000 covers all 40 images ranked, so MaxSkew@k is the same for every ranking (0 for a balanced "
            "set); give a k below 40",
        )
    ]


def test_upstream_panels_of_too_few_models_say_so_and_draw_no_line(tmp_path):
    from matplotlib.figure import Figure

    t = upstream_tables()
    two = t["data"][t["data"]["model"].isin(["m0", "m1"])]
    from vlbias.stats.correlation import correlations_by_group

    corr = correlations_by_group(two, "accuracy", "effect_size", ["test", "order"])
    titles, lines = [], []
    real_save = upstream.save

    def capture(fig: Figure, path, dpi=150):
        for ax in fig.axes:
            if ax.get_visible():
                titles.append(ax.get_title())
                lines.append(len(ax.lines))
        real_save(fig, path, dpi)

    upstream.save = capture
    try:
        upstream.plot_bias_vs_accuracy(
            two, corr, tmp_path / "a.png", by=["test", "order"], effect="effect_size", metric="average"
        )
        upstream.plot_bias_vs_accuracy(
            t["data"], t["corr"], tmp_path / "b.png", by=["test", "order"], effect="effect_size", metric="average"
        )
    finally:
        upstream.save = real_save
    assert titles[:2] == [
        "weat1 × all-text\ntoo few models for a correlation (n = 2)",
        "weat7 × all-text\ntoo few models for a correlation (n = 2)",
    ]
    assert lines[:2] == [0, 0]
    assert "nan" not in " ".join(titles)
    assert titles[2].startswith("weat1 × all-text\nr=1.00 [") and lines[2:] == [1, 1]


def test_zero_shot_small_multiples_share_one_y_scale(tmp_path):
    t = zeroshot_tables()
    res = t["results"]
    res.loc[res["label"] == "criminal", ["top1_pct", "top1_pct_low", "top1_pct_high"]] = (5.0, 2.0, 8.0)
    limits = []
    real_save = zeroshot.save

    def capture(fig, path, dpi=150):
        limits.append([ax.get_ylim() for ax in fig.axes if ax.get_visible() and ax.get_title()])
        real_save(fig, path, dpi)

    zeroshot.save = capture
    try:
        zeroshot.plot_audit({"results": res}, tmp_path, model="m")
    finally:
        zeroshot.save = real_save
    share = limits[0]  # the first figure: top-1 shares of both labels
    assert len(share) == 2 and share[0] == share[1] == (0.0, 54.0)


def test_perception_command_notes_what_it_cannot_draw(tmp_path):
    """CLI: a figure the tables cannot make is a row of skipped.csv, and the run's tables are written."""
    from vlbias.audits.base import AuditResult, RunRecord
    from vlbias.cli._common import note_figures

    t = perception_tables()
    t["extreme_groups"] = pd.DataFrame()
    result = AuditResult("perception", {"results": pd.DataFrame({"x": [1]})}, RunRecord("perception", {}, {}))

    def extras(tmp):
        note_figures(result, tmp, perception.draw_all(t, tmp / "plots"))

    out = result.write(tmp_path / "run", extras=extras)
    skipped = pd.read_csv(out / "skipped.csv")
    assert skipped.to_dict("records") == [
        {
            "item": "figure most extreme group",
            "reason": "not drawn: no level that every group has, so no group is compared with the others",
        }
    ]
    assert (out / "plots" / "level_curves_age.png").is_file() and (out / "results.parquet").is_file()


def test_a_forest_plot_of_many_models_sorts_each_row_and_names_its_extremes(tmp_path, monkeypatch):
    """Past MAX_LEGEND series (a zoo of 200 models) no legend can say which marker is which: each row is sorted by
    estimate (highest on top) and its highest and lowest models are named beside their markers."""
    n = forest.MAX_LEGEND + 6
    rng = np.random.default_rng(0)
    rows = []
    for t in ("weat1", "weat7"):
        for i in range(n):
            d = float(rng.normal()) if not (t == "weat7" and i == 3) else float("nan")
            rows.append({"test": t, "model_label": f"m{i:02d}", "d": d, "lo": d - 0.2, "hi": d + 0.2})
    df = pd.DataFrame(rows)
    y_of = {"weat1": 1, "weat7": 0}
    y, e, lo, hi, named = forest.crowd_layout(
        df, row="test", series="model_label", est="d", low="lo", high="hi", y_of=y_of
    )
    for t, base in y_of.items():
        sel = (df["test"] == t).to_numpy()
        ok = sel & np.isfinite(e)
        assert y[sel].max() == pytest.approx(base + 0.3) and y[sel].min() == pytest.approx(base - 0.3)
        # higher estimate, higher marker; the missing estimate at the bottom of its row
        assert (np.diff(y[ok][np.argsort(e[ok])]) < 0).sum() == 0
        if t == "weat7":
            assert y[sel & ~np.isfinite(e)][0] == pytest.approx(base - 0.3)
        top, bottom = df[ok].loc[lambda x: x["d"].idxmax()], df[ok].loc[lambda x: x["d"].idxmin()]
        assert (top["model_label"], top["d"], True) in [(a, b, c) for a, b, _, c in named]
        assert (bottom["model_label"], bottom["d"], False) in [(a, b, _ok) for a, b, _, _ok in named]
    assert len(named) == 4
    texts = []
    real_save = forest.save

    def capture(fig, path, dpi=110):
        texts.extend(t.get_text() for ax in fig.axes for t in ax.texts)
        texts.append(fig._suptitle.get_text())
        real_save(fig, path, dpi)

    monkeypatch.setattr(forest, "save", capture)
    forest.forest(
        df,
        tmp_path / "f.png",
        row="test",
        est="d",
        low="lo",
        high="hi",
        series="model_label",
        xlabel="d",
        title="effect sizes",
    )
    assert sorted(texts[:-1]) == sorted(name for name, *_ in named)
    assert f"one marker per model ({n}), sorted by estimate" in texts[-1].replace("\n", " ")
    # one model only: its single marker is both the highest and the lowest, named once
    one = df[df["model_label"] == "m00"]
    assert (
        len(forest.crowd_layout(one, row="test", series="model_label", est="d", low="lo", high="hi", y_of=y_of)[4]) == 2
    )


def test_a_forest_panel_without_estimates_is_named_not_drawn_empty(tmp_path, monkeypatch):
    df = pd.DataFrame(
        {
            "test": ["weat1", "weat7", "weat1", "weat7"],
            "order": ["all-text", "all-text", "all-image", "all-image"],
            "d": [0.4, -0.2, np.nan, np.nan],  # every all-image row skipped
            "lo": [0.1, -0.5, np.nan, np.nan],
            "hi": [0.7, 0.1, np.nan, np.nan],
        }
    )
    shown = []
    real_save = forest.save

    def capture(fig, path, dpi=110):
        shown.append(([ax.get_title() for ax in fig.axes if ax.get_visible()], fig._suptitle.get_text()))
        real_save(fig, path, dpi)

    monkeypatch.setattr(forest, "save", capture)
    kw = {"row": "test", "est": "d", "low": "lo", "high": "hi", "panel": "order", "xlabel": "d", "title": "t"}
    forest.forest(df, tmp_path / "f.png", **kw)
    with pytest.raises(NotDrawn, match="no estimates"):
        forest.forest(df[df["order"] == "all-image"], tmp_path / "g.png", **kw)
    [(titles, suptitle)] = shown
    assert titles == ["all-text"] and "no estimate in all-image" in suptitle.replace("\n", " ")
