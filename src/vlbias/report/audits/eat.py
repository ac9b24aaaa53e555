"""The report's presentation of the EAT audit: effect sizes by model, test and order (heat map, forest plots, a
table across models), each model's rows on its page, and how the tests were computed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from vlbias.audits.eat.run import RESULT_COLUMNS, SIGN_COLUMNS
from vlbias.plots.eat import COVERS_ZERO, P_AND_INTERVAL, covers_zero, marks
from vlbias.report import blocks as B
from vlbias.report.depth import LENS_NOTE, by_model, layers_text
from vlbias.report.fmt import interval, num, pvalue, signed, table
from vlbias.report.sections import Context, configurations, option_value, skipped_summary
from vlbias.report.source import Run, missing

TITLE = "Association tests"
_D = RESULT_COLUMNS.index("effect_size") + 1
#: the columns of the effect-size CSV (where present: a study's sign convention adds its signed d after effect_size)
CSV_COLUMNS = ["model", *RESULT_COLUMNS[:_D], *SIGN_COLUMNS, *RESULT_COLUMNS[_D:], "seed"]


def _title(o: dict[str, Any]) -> str:
    tests = list(o.get("tests") or []) + [Path(str(f)).stem for f in o.get("test_files") or []]
    battery = o.get("battery") or (None if tests else "standard")
    parts = [f"battery {battery}" if battery else "", ", ".join(tests)]
    return " + ".join(x for x in parts if x)


def has_null(df: pd.DataFrame) -> bool:
    """Whether the rows carry a random-init null (the null_seeds option)."""
    return "null_d_low" in df.columns and df["null_d_low"].notna().any()


def _null_range(r) -> str:
    return "–" if missing(r.get("null_d_low")) else f"[{signed(r['null_d_low'])}, {signed(r['null_d_high'])}]"


def _beyond(r) -> str:
    v = r.get("beyond_null")
    return "–" if missing(v) else "yes" if bool(v) else "no"


NULL_NOTE = (
    "random-init null: the smallest and largest d of random-init copies of the model's architecture (the "
    "null_seeds option) on the same stimuli; beyond: d exceeds the largest of their magnitudes in the direction of "
    "the test (a random network's sign is arbitrary)"
)


def _rows(df: pd.DataFrame) -> B.Block:
    """One model's rows: sets, sizes, d with its interval and marks, p, permutations, the random-init null where
    there is one, status."""
    conf = pd.to_numeric(df.get("confidence"), errors="coerce").dropna()
    level = f"{conf.iloc[0]:.0%}" if len(conf) else "95%"
    null = {"random-init null d": _null_range, "beyond null": _beyond} if has_null(df) else {}
    cols: dict[str, Any] = {
        "test": "test",
        "order": "order",
        "X vs Y": lambda r: f"{r['x_name']} vs {r['y_name']}",
        "A vs B": lambda r: f"{r['a_name']} vs {r['b_name']}",
        "sizes X/Y/A/B": lambda r: "/".join(num(r[c]) for c in ("x_size", "y_size", "a_size", "b_size")),
        f"d [{level} CI]": lambda r: (
            interval(r["effect_size"], r["ci_low"], r["ci_high"]) + marks(r["p_value"], r["ci_low"], r["ci_high"])
        ),
        "p": lambda r: pvalue(r["p_value"]),
        **null,
        "permutations": lambda r: (
            ("exact " if r.get("exact") in (True,) else "")
            + (num(r["n_permutations"]) if r.get("status") == "ok" else "–")
        ),
        "status": lambda r: r["status"] if r["status"] == "ok" else f"skipped: {r['reason']}",
    }
    caption = "One row per test and order; * p < .05, ** < .01, *** < .001 (unadjusted); " + P_AND_INTERVAL
    return B.table(table(df, cols, caption=caption + (f" {NULL_NOTE}." if null else "")))


def section(ctx: Context, runs: list[Run]) -> list[B.Block]:
    out = [
        B.p(
            "Embedding association tests: for each test, the effect size d is the difference between how much "
            "closer the targets X are to the attributes A than to B and how much closer the targets Y are, in "
            "pooled standard deviations (Caliskan et al. 2017); orders run the targets and attributes as texts, "
            "images, or one of each. p is a permutation test; intervals are percentile bootstrap intervals."
        ),
        B.note(P_AND_INTERVAL),
    ]
    for title, group in configurations(runs, _title):
        res = ctx.concat(group, "results")
        if res.empty:
            continue
        cols = ["model_label"] + [c for c in CSV_COLUMNS if c in res.columns]
        csv = ctx.assets.data("eat-results", res[cols])
        n_models = res["model"].nunique()
        out.append(B.h2(f"Association tests: {title}" if title else "Association tests", id=f"eat-{len(out)}"))
        heat = ctx.assets.figure(
            "vlbias.plots.eat:effect_heatmap",
            {"results": res, "title": f"Effect sizes of {n_models} model(s)", "row": "model_label"},
            stem="eat-heatmap",
            title="Effect sizes by model, test and order",
            caption="Cell colour and value: effect size d (red: X closer to A than Y is; blue: the reverse), on a "
            "fixed scale from -2 to +2; marks: permutation-test significance; hatched: rows that were skipped.",
            data=[("effect sizes", csv)],
        )
        forest = ctx.assets.figure(
            "vlbias.plots.eat:effect_forest",
            {"results": res, "title": "Effect sizes with intervals", "series": "model_label" if n_models > 1 else None},
            stem="eat-forest",
            title="Effect sizes with their bootstrap intervals",
            caption="Each marker is one model's effect size; the bar is its bootstrap interval; the dashed line is "
            "no association (d = 0). Hollow markers have no interval (bootstrap switched off).",
            data=[("effect sizes", csv)],
        )
        out += [B.figure(heat), B.figure(forest)]
        ok = res[res["status"] == "ok"]
        summary = (
            res.groupby(["test", "order"], sort=False)
            .agg(
                x=("x_name", "first"),
                y=("y_name", "first"),
                a=("a_name", "first"),
                b=("b_name", "first"),
                run=("status", lambda s: int((s == "ok").sum())),
                skipped=("status", lambda s: int((s != "ok").sum())),
            )
            .reset_index()
        )
        ok = ok.assign(
            covers=[covers_zero(p, lo, hi) for p, lo, hi in zip(ok["p_value"], ok["ci_low"], ok["ci_high"])],
            beyond=ok["beyond_null"].astype("boolean") if has_null(ok) else pd.NA,
        )
        stats = (
            ok.groupby(["test", "order"], sort=False)
            .agg(
                median=("effect_size", "median"),
                sig=("p_value", lambda s: int((s < 0.05).sum())),
                covers=("covers", "sum"),
                beyond=("beyond", lambda s: int(s.fillna(False).sum()) if s.notna().any() else pd.NA),
            )
            .reset_index()
        )
        summary = summary.merge(stats, on=["test", "order"], how="left")
        out.append(
            B.table(
                table(
                    summary,
                    {
                        "test": "test",
                        "order": "order",
                        "X vs Y": lambda r: f"{r['x']} vs {r['y']}",
                        "A vs B": lambda r: f"{r['a']} vs {r['b']}",
                        "models run": "run",
                        "skipped": "skipped",
                        "median d": lambda r: signed(r["median"]),
                        "models with p < .05": lambda r: (
                            "–"
                            if missing(r["sig"])
                            else num(r["sig"]) + (f" ({num(r['covers'])}{COVERS_ZERO})" if r["covers"] else "")
                        ),
                        **({"models beyond the random-init null": lambda r: num(r["beyond"])} if has_null(ok) else {}),
                    },
                    caption="Tests across models (per-model values on each model's page and in the data); "
                    f"(n{COVERS_ZERO}): of those, n whose interval covers 0",
                    csv=csv,
                )
            )
        )
        for run in group:
            mine = res[res["model"] == run.model]
            if mine.empty:
                continue
            f = forest
            if n_models > 1:
                f = ctx.assets.figure(
                    "vlbias.plots.eat:effect_forest",
                    {"results": mine, "title": f"{ctx.labels[run.model]}: effect sizes with intervals"},
                    stem=f"eat-forest-{ctx.labels[run.model]}",
                    title="Effect sizes with their bootstrap intervals",
                    caption="One row per test and order; bar: bootstrap interval; dashed line: d = 0.",
                    data=[("effect sizes", csv)],
                )
            ctx.add(
                run.model,
                B.h2(f"Association tests{': ' + title if title else ''}", id=f"eat-{run.task_id or 'run'}"),
                B.figure(f),
                _rows(mine),
            )
        out += skipped_summary(ctx, group)
    return out


def methods(ctx: Context, runs: list[Run]) -> list[B.Block]:
    perms, boot = option_value(runs, "permutations"), option_value(runs, "n_bootstrap")
    conf, alt, seed = option_value(runs, "confidence"), option_value(runs, "alternative"), option_value(runs, "seed")
    try:
        conf_text = f"{float(conf):.0%}"
    except ValueError:
        conf_text = conf
    drawn = (
        f"Sampled partitions drawn as Ghate et al. (2025) draw them (numpy's legacy RandomState({seed}) reseeded "
        "for every test, one shuffle per partition); the bootstrap from numpy's PCG64"
        if option_value(runs, "sampler") == "ghate2025-legacy"
        else "All randomness from numpy's PCG64"
    )
    text = (
        "Effect size: d = (mean over X of s(x, A, B) − mean over Y of s(y, A, B)) / sample standard deviation of "
        "s over X ∪ Y, with s(w, A, B) = mean cosine of w with A − mean cosine with B (Caliskan et al. 2017); "
        "undefined (and p = 1) when every s is equal. "
        f"p-value: {alt} permutation test over re-partitions of X ∪ Y into sets of |X| and |Y| items, exact when "
        f"all partitions number at most {perms}, otherwise {perms} sampled partitions, p = (1 + #)/(1 + N). "
        f"Interval: {conf_text} percentile bootstrap of d ({boot} resamples within X, Y, A and B). {drawn} "
        f"seeded with {seed}."
    )
    if any(r.options.get("battery") or not (r.options.get("tests") or r.options.get("test_files")) for r in runs):
        text += (
            " The standard battery (Ghate et al. 2025) has 26 rows per model, of which 24 run unless an instrument "
            "image set is supplied: the study did not release its instrument images and the iEAT stimuli have none."
        )
    presets = {str(r.options.get("preset")) for r in runs if r.options.get("preset")}
    if presets:
        text += f" Preset: {', '.join(sorted(presets))} (its differences from vlbias's defaults: docs/deviations.md)."
    out = [B.p(text), B.p(P_AND_INTERVAL)]
    seeds = option_value(runs, "null_seeds")
    if seeds not in ("0", "null"):
        out.append(
            B.p(
                f"Random-init null ({seeds} seeds): each row's effect size in random-init copies of the model's "
                "architecture (openclip:ARCH/random-1, random-2, …; the model's own seed left out), the same stimuli "
                "encoded by each; the row shows the smallest and largest of them, and whether the model's d exceeds "
                "the largest of their magnitudes in the direction of the alternative (greater: d above max |d|). "
                "The magnitude, because a random network's sign is arbitrary: copies that differ only in their seed "
                "give d of either sign. With N copies, a model that were one more untrained network would be beyond "
                "at most 1 time in N + 1 by chance."
            )
        )
    res = ctx.concat(runs, "results")
    if len(res):
        first = res.drop_duplicates(["test", "order"])
        out.append(
            B.table(
                table(
                    first,
                    {
                        "test": "test",
                        "order": "order",
                        "X": lambda r: f"{r['x_name']} ({num(r['x_size'])})",
                        "Y": lambda r: f"{r['y_name']} ({num(r['y_size'])})",
                        "A": lambda r: f"{r['a_name']} ({num(r['a_size'])})",
                        "B": lambda r: f"{r['b_name']} ({num(r['b_size'])})",
                        "modalities": lambda r: f"{r['target_modality']} targets, {r['attribute_modality']} attributes",
                    },
                    caption="Tests and orders with set sizes (of the first model that ran each; sizes can differ "
                    "where a model lacked stimuli)",
                )
            )
        )
    return out


def headline(ctx: Context, runs: list[Run]) -> list[B.Block]:
    """Per test and order, the model with the largest |d| among the runs, with its interval and the median d across
    models; the largest first."""
    res = ctx.concat(runs, "results")
    if res.empty:
        return []
    ok = res[(res["status"] == "ok") & res["effect_size"].notna()].copy()
    if ok.empty:
        return [B.p(f"No association test could be computed ({len(res)} row(s), every one skipped).")]
    ok["abs_d"] = ok["effect_size"].abs()
    top = ok.loc[ok.groupby(["test", "order"], sort=False)["abs_d"].idxmax()]
    stats = ok.groupby(["test", "order"], sort=False).agg(models=("model", "nunique"), median=("effect_size", "median"))
    top = top.merge(stats.reset_index(), on=["test", "order"]).sort_values("abs_d", ascending=False)
    n_models = ok["model"].nunique()
    cols = ["test", "order", "model_label", "effect_size", "ci_low", "ci_high", "p_value", "models", "median"]
    cols += [c for c in ("null_d_low", "null_d_high", "beyond_null") if has_null(top)]
    csv = ctx.assets.data("eat-headline", top[cols].rename(columns={"model_label": "model_with_largest_abs_d"}))
    return [
        B.table(
            table(
                top,
                {
                    "test": "test",
                    "order": "order",
                    "largest |d|: model": "model_label",
                    "d [95% CI]": lambda r: (
                        interval(r["effect_size"], r["ci_low"], r["ci_high"])
                        + marks(r["p_value"], r["ci_low"], r["ci_high"])
                    ),
                    **({"beyond random-init null": _beyond} if has_null(top) else {}),
                    "median d (models)": lambda r: f"{signed(r['median'])} ({num(r['models'])})",
                },
                caption=f"Per test and order, the model with the largest |d| of {n_models} model(s), with its "
                "bootstrap interval (* p < .05, ** < .01, *** < .001, unadjusted; † the interval covers 0 all the "
                "same, see the association-test page), and the median d across models; largest first",
                csv=csv,
                limit=12,
            )
        )
    ]


def depth(ctx: Context, runs: list[Run]) -> list[B.Block]:
    """Effect sizes over depth: per model read at several layers, one panel per test, one curve per order."""
    out = [
        B.h2("Association tests over depth", id="eat-depth"),
        B.p(
            "Where in the network does an association appear? Each model read at several layers: the effect size d "
            "of each test and order at each layer, with its bootstrap interval as a band. " + LENS_NOTE
        ),
    ]
    for title, group in configurations(runs, _title):
        for model, reading, mine in by_model(group):
            res = ctx.concat(mine, "results")
            if res.empty or "layer" not in res.columns:
                continue
            label = ctx.labels.get(model, model)
            cols = ["model_label", "layer", "reading"] + [c for c in CSV_COLUMNS if c in res.columns]
            csv = ctx.assets.data(f"eat-depth-{label}", res[[c for c in dict.fromkeys(cols) if c in res.columns]])
            fig = ctx.assets.figure(
                "vlbias.plots.depth:eat_depth",
                {"results": res, "model": label, "title": f"Effect sizes over depth{': ' + title if title else ''}"},
                stem=f"eat-depth-{label}",
                title=f"{label}: effect sizes over depth ({layers_text(mine)}, {reading})",
                caption="One panel per test, one curve per order; marker: the effect size d at that layer; band: "
                "its bootstrap interval; dashed line: no association (d = 0).",
                data=[("effect sizes by layer", csv)],
            )
            out.append(B.figure(fig))
            ctx.add(model, B.h2("Association tests over depth", id=f"eat-depth-{label}"), B.figure(fig))
    return out
