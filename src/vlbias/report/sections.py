"""The report's sections, built from the audits' own tables: one function per audit (and the upstream analysis),
each returning the blocks of its page and adding each run's part to its model's page."""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from vlbias.audits.eat.run import RESULT_COLUMNS
from vlbias.report import blocks as B
from vlbias.report.assets import Assets, Figure
from vlbias.report.fmt import fixed, interval, model_labels, num, pvalue, signed, table
from vlbias.report.source import ReportData, Run, missing

CI_OVER_PEOPLE = "bars: {ci:.0%} cluster-bootstrap interval over people"


@dataclass
class Context:
    data: ReportData
    assets: Assets
    labels: dict[str, str] = field(default_factory=dict)  # model spec -> display name
    pages: dict[str, str] = field(default_factory=dict)  # model spec -> its page
    model_blocks: dict[str, list[B.Block]] = field(default_factory=dict)

    def __post_init__(self):
        from vlbias.report.assets import slug
        from vlbias.utils.io import stable_hash

        models = self.data.model_order
        self.labels = model_labels(models)
        self.pages = {m: f"models/{slug(self.labels[m], n=60)}-{stable_hash(m, n=6)}.html" for m in models}

    def add(self, model: str, *blocks: B.Block) -> None:
        self.model_blocks.setdefault(model, []).extend(blocks)

    def concat(self, runs: list[Run], name: str) -> pd.DataFrame:
        """Table ``name`` of every run, with the model's display name (``model_label``) in front."""
        parts = []
        for r in runs:
            t = r.tables.get(name)
            if t is not None and len(t):
                t = t.copy()
                t.insert(0, "model_label", self.labels.get(r.model, r.model))
                if "model" not in t.columns:
                    t.insert(1, "model", r.model)
                parts.append(t)
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def _options_key(run: Run) -> str:
    return json.dumps(run.options, sort_keys=True, default=str)


def configurations(runs: list[Run], describe) -> list[tuple[str, list[Run]]]:
    """Runs grouped by their options (one group per sweep options set, each model at most once), with a title:
    ``describe(options)``, plus the options that differ between the groups."""
    groups: dict[str, list[Run]] = {}
    for r in runs:
        groups.setdefault(_options_key(r), []).append(r)
    keys = list(groups)
    opts = [json.loads(k) for k in keys]
    varying = sorted({k for o in opts for k in o if len({json.dumps(x.get(k), default=str) for x in opts}) > 1})
    out = []
    for key, o in zip(keys, opts):
        title = describe(o)
        extra = ", ".join(f"{k}={_short(o.get(k))}" for k in varying if k not in ("dataset", "protocol"))
        out.append((f"{title} ({extra})" if extra and title else title or extra, groups[key]))
    return out


def _short(v: Any) -> str:
    s = v if isinstance(v, str) else json.dumps(v, default=str)
    return s if len(s) <= 60 else s[:57] + "…"


def _dataset_name(spec: Any) -> str:
    if not spec:
        return "no dataset"
    kind, _, path = str(spec).partition(":")
    return f"{kind}:{Path(path).name}" if path else kind


def _warning_text(runs: list[Run]) -> str | None:
    return next((r.content_warning for r in runs if r.content_warning), None)


def _wrap_warning(warning: str | None, blocks: list[B.Block]) -> list[B.Block]:
    if not warning:
        return blocks
    text = re.sub(r"^\s*content warning\s*[:.-]?\s*", "", warning, flags=re.IGNORECASE)
    return [B.warning(f"Content warning: {text}", blocks)]


def _skipped_summary(ctx: Context, runs: list[Run]) -> list[B.Block]:
    """Items the runs skipped, counted by reason (with examples), and where to find them all."""
    rows = []
    for r in runs:
        sk = r.skipped
        if sk is None or not len(sk):
            continue
        for item, reason in zip(sk.get("item", []), sk.get("reason", [])):
            rows.append({"model": r.model, "item": str(item), "reason": str(reason)})
    if not rows:
        return []
    df = pd.DataFrame(rows)
    agg = (
        df.groupby("reason", sort=False)
        .agg(n=("item", "size"), models=("model", "nunique"), examples=("item", lambda s: ", ".join(s.unique()[:3])))
        .reset_index()
    )
    csv = ctx.assets.csv("skipped", df)
    return [
        B.table(
            table(
                agg,
                {"reason": "reason", "items": "n", "models": "models", "examples": "examples"},
                caption="Skipped items and notes, by reason (every item in the CSV)",
                csv=csv,
                limit=30,
            )
        )
    ]


# ---------------------------------------------------------------------------------------------- EAT
EAT_COLUMNS = ["model", *RESULT_COLUMNS, "seed"]


def _eat_title(o: dict[str, Any]) -> str:
    tests = list(o.get("tests") or []) + [Path(str(f)).stem for f in o.get("test_files") or []]
    battery = o.get("battery") or (None if tests else "standard")
    parts = [f"battery {battery}" if battery else "", ", ".join(tests)]
    return " + ".join(x for x in parts if x)


def _eat_rows(df: pd.DataFrame) -> B.Block:
    """One model's rows: sets, sizes, d with its interval and marks, p, permutations, status."""
    from vlbias.plots.eat import stars

    conf = pd.to_numeric(df.get("confidence"), errors="coerce").dropna()
    level = f"{conf.iloc[0]:.0%}" if len(conf) else "95%"
    cols: dict[str, Any] = {
        "test": "test",
        "order": "order",
        "X vs Y": lambda r: f"{r['x_name']} vs {r['y_name']}",
        "A vs B": lambda r: f"{r['a_name']} vs {r['b_name']}",
        "sizes X/Y/A/B": lambda r: "/".join(num(r[c]) for c in ("x_size", "y_size", "a_size", "b_size")),
        f"d [{level} CI]": lambda r: interval(r["effect_size"], r["ci_low"], r["ci_high"]) + stars(r["p_value"]),
        "p": lambda r: pvalue(r["p_value"]),
        "permutations": lambda r: (
            ("exact " if r.get("exact") in (True,) else "")
            + (num(r["n_permutations"]) if r.get("status") == "ok" else "–")
        ),
        "status": lambda r: r["status"] if r["status"] == "ok" else f"skipped: {r['reason']}",
    }
    return B.table(table(df, cols, caption="One row per test and order; * p < .05, ** < .01, *** < .001 (unadjusted)"))


def eat_section(ctx: Context) -> list[B.Block]:
    runs = ctx.data.runs_of("eat")
    if not runs:
        return []
    out = [
        B.p(
            "Embedding association tests: for each test, the effect size d is the difference between how much "
            "closer the targets X are to the attributes A than to B and how much closer the targets Y are, in "
            "pooled standard deviations (Caliskan et al. 2017); orders run the targets and attributes as texts, "
            "images, or one of each. p is a permutation test; intervals are percentile bootstrap intervals."
        )
    ]
    for title, group in configurations(runs, _eat_title):
        res = ctx.concat(group, "results")
        if res.empty:
            continue
        cols = ["model_label"] + [c for c in EAT_COLUMNS if c in res.columns]
        csv = ctx.assets.csv("eat-results", res[cols])
        n_models = res["model"].nunique()
        out.append(B.h2(f"Association tests: {title}" if title else "Association tests", id=f"eat-{len(out)}"))
        heat = ctx.assets.figure(
            "vlbias.plots.eat:effect_heatmap",
            {"results": res, "title": f"Effect sizes of {n_models} model(s)", "row": "model_label"},
            stem="eat-heatmap",
            title="Effect sizes by model, test and order",
            caption="Cell colour and value: effect size d (red: X closer to A than Y is; blue: the reverse), on a "
            "fixed scale from -2 to +2; marks: permutation-test significance; hatched: rows that were skipped.",
            data=[("effect sizes (CSV)", csv)],
        )
        forest = ctx.assets.figure(
            "vlbias.plots.eat:effect_forest",
            {"results": res, "title": "Effect sizes with intervals", "series": "model_label" if n_models > 1 else None},
            stem="eat-forest",
            title="Effect sizes with their bootstrap intervals",
            caption="Each marker is one model's effect size; the bar is its bootstrap interval; the dashed line is "
            "no association (d = 0). Hollow markers have no interval (bootstrap switched off).",
            data=[("effect sizes (CSV)", csv)],
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
        stats = (
            ok.groupby(["test", "order"], sort=False)
            .agg(median=("effect_size", "median"), sig=("p_value", lambda s: int((s < 0.05).sum())))
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
                        "models with p < .05": lambda r: num(r["sig"]) if not missing(r["sig"]) else "–",
                    },
                    caption="Tests across models (per-model values on each model's page and in the CSV)",
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
                    data=[("effect sizes (CSV)", csv)],
                )
            ctx.add(
                run.model,
                B.h2(f"Association tests{': ' + title if title else ''}", id=f"eat-{run.task_id or 'run'}"),
                B.figure(f),
                _eat_rows(mine),
            )
        out += _skipped_summary(ctx, group)
    return out


# ---------------------------------------------------------------------------------------------- zero-shot
_ZS_FIGURES = {
    "share": (
        "Share of images labelled as each class, by group",
        "top-1 share: % of the group's images whose most similar class is the label",
    ),
    "probability": (
        "Mean probability of each class, by group",
        "softmax probability of each class, averaged over the group's images (%)",
    ),
    "accuracy": ("Zero-shot accuracy by group", "% of the group's images classified correctly"),
    "change": (
        "Change between model groups",
        "difference of the mean over each level's models from the baseline's, in percentage points",
    ),
}


def _describe_zs(ci: float, data: dict[str, list[tuple[str, str]]]):
    """Caption a figure of the zero-shot plots from its file name (``<kind>-<task>-...-<grouping>.png``), with the
    CSVs it draws (``data``: figure kind -> links)."""

    def describe(path: Path) -> Figure:
        kind, _, rest = path.stem.partition("-")
        title, what = _ZS_FIGURES.get(kind, (kind, ""))
        rest = rest.replace("top1-pct-", "top-1 share, ").replace("mean-prob-", "mean probability, ")
        title = f"{title} ({rest.replace('-', ' ')})" if rest else title
        return Figure("", title, f"{what}; {CI_OVER_PEOPLE.format(ci=ci)}.", data.get(kind, []))

    return describe


#: columns of a zero-shot disparity table: the groups with the highest and lowest share, and the gap
GAP_COLUMNS: dict[str, Any] = {
    "task": "task",
    "grouping": "grouping",
    "label": "label",
    "highest group": lambda r: f"{r['max_group']} ({fixed(r['max'])}%)",
    "lowest group": lambda r: f"{r['min_group']} ({fixed(r['min'])}%)",
    "gap, pp [CI]": lambda r: interval(r["difference"], r.get("difference_low"), r.get("difference_high"), fixed),
}


def _zs_title(o: dict[str, Any]) -> str:
    proto = o.get("protocol") if not o.get("classes") else f"custom classes {Path(str(o['classes'])).name}"
    return f"{proto} on {_dataset_name(o.get('dataset'))}"


def zeroshot_section(ctx: Context) -> list[B.Block]:
    runs = ctx.data.runs_of("zeroshot")
    if not runs:
        return []
    out = [
        B.p(
            "Zero-shot classification of face images: each image gets the class whose prompt it is most similar to; "
            "per group, the share of images given each class and the mean probability, with intervals from a "
            "cluster bootstrap over people (each person's images resampled together)."
        )
    ]
    comparison = ctx.data.analysis.get("zeroshot_comparison")
    comp_notes = ctx.data.analysis.get("zeroshot_comparison_notes")
    for title, group in configurations(runs, _zs_title):
        res = ctx.concat(group, "results")
        if res.empty:
            continue
        ci = float(group[0].options.get("confidence", 0.95) or 0.95)
        warning = _warning_text(group)
        inner: list[B.Block] = []
        csv = ctx.assets.csv("zeroshot-results", res)
        headline = res[res["kind"] == "category"] if (res.get("kind") == "category").any() else res
        labels = list(dict.fromkeys(headline["label"]))
        for (task, template, grouping), sub in headline.groupby(["task", "template", "grouping"], sort=False):
            if grouping == "all":
                continue
            fig = ctx.assets.figure(
                "vlbias.plots.forest:forest",
                {
                    "df": sub,
                    "row": "group",
                    "series": "model_label",
                    "panel": "label",
                    "est": "top1_pct",
                    "low": "top1_pct_low",
                    "high": "top1_pct_high",
                    "ref": None,
                    "xlabel": f"top-1 share (% of the group's images); {CI_OVER_PEOPLE.format(ci=ci)}",
                    "title": f"{task}: share of images labelled {', '.join(map(repr, labels[:3]))}"
                    f"{'…' if len(labels) > 3 else ''} by {grouping.replace('+', ' × ')} ({template})",
                },
                stem=f"zeroshot-{title}-{task}-{grouping}",
                title=f"Models compared: {task}, by {grouping.replace('+', ' × ')}",
                caption="One marker per model and group: the share of the group's images whose top-1 class is the "
                "label (or a class of the category).",
                data=[("group results (CSV)", csv)],
            )
            inner.append(B.figure(fig))
        disp = ctx.concat(group, "disparity")
        if len(disp):
            disp = disp[(disp["metric"] == "top1_pct") & disp["label"].isin(labels) & (disp["grouping"] != "all")]
            dcsv = ctx.assets.csv("zeroshot-disparity", disp)
            inner.append(
                B.table(
                    table(
                        disp,
                        {"model": "model_label", **GAP_COLUMNS},
                        caption="Largest minus smallest group share (percentage points) per model",
                        csv=dcsv,
                        limit=60,
                    )
                )
            )
        # the grouped model comparison of `vlbias analyze`
        if comparison is not None and len(comparison):
            o = group[0].record.options
            comp = comparison[
                (comparison["protocol"].astype(str) == str(o.get("protocol")))
                & (comparison["dataset"].astype(str) == str(o.get("dataset")))
            ]
            if len(comp):
                ccsv = ctx.assets.csv("zeroshot-comparison", comp)
                g = ctx.assets.group(
                    "vlbias.plots.zeroshot:plot_comparison",
                    {"tables": {"results": comp}, "warning": warning},
                    folder=f"zeroshot-comparison-{title}",
                    describe=_describe_zs(ci, {"change": [("comparison (CSV)", ccsv)]}),
                    arg="folder",
                    name="zero-shot comparison",
                )
                by = next((c for c in comp.columns if c in ("level",)), None)
                inner += [
                    B.h3("Model groups compared"),
                    B.p(
                        f"The change from the baseline level ({', '.join(map(str, comp['baseline'].unique()))}) to "
                        f"each other level ({', '.join(map(str, comp[by].unique())) if by else ''}) of the model "
                        "fact compared, averaged over the models of each level (within pairs where `--pair-by` was "
                        f"given), with intervals over people. Data: {ccsv}."
                    ),
                    B.group(g, md=True),
                ]
        if comp_notes is not None and len(comp_notes):
            inner.append(B.bullets([f"comparison note: {n}" for n in comp_notes["note"]]))
        per_model = []
        for run in group:
            tabs = {n: run.tables[n] for n in ("results", "accuracy") if n in run.tables}
            csvs = {n: ctx.assets.csv(f"zeroshot-{n}-{ctx.labels[run.model]}", t) for n, t in tabs.items()}
            rcsv = csvs.get("results")
            links = {"share": "results", "probability": "results", "accuracy": "accuracy"}
            g = ctx.assets.group(
                "vlbias.plots.zeroshot:plot_audit",
                {"tables": tabs, "warning": run.content_warning, "model": ctx.labels[run.model]},
                folder=f"zeroshot-{ctx.labels[run.model]}-{title}",
                describe=_describe_zs(ci, {k: [(f"{t} (CSV)", csvs[t])] for k, t in links.items() if t in csvs}),
                arg="folder",
                name=f"zero-shot bar charts of {run.model}",
            )
            per_model.append(B.details(ctx.labels[run.model], [B.group(g), *([B.p(f"Data: {rcsv}")] if rcsv else [])]))
            run_blocks = [B.group(g)]
            mine = disp[disp["model"] == run.model] if len(disp) else disp
            if len(mine):
                run_blocks.append(
                    B.table(
                        table(
                            mine,
                            GAP_COLUMNS,
                            caption="Largest minus smallest group share (percentage points)",
                            csv=rcsv,
                        )
                    )
                )
            ctx.add(
                run.model,
                B.h2(f"Zero-shot: {title}", id=f"zs-{run.task_id or 'run'}"),
                *_wrap_warning(run.content_warning, run_blocks),
            )
        inner += [B.h3("Group bar charts of each model", md=False), *per_model]
        inner += _skipped_summary(ctx, group)
        out.append(B.h2(f"Zero-shot: {title}", id=f"zs-{len(out)}"))
        out += _wrap_warning(warning, inner)
    return out


# ---------------------------------------------------------------------------------------------- perception
DIMENSIONS = ("lighting", "pose", "smiling", "identity", "age", "gender", "race")
DELTA = "Delta points (% cosine similarity)"
_PE_FIGURES = {
    "factor_effects": (
        "How much one attribute moves social perception (all scales pooled)",
        "box: quartiles of the absolute change of the scale score within pairs of images that differ "
        "in that dimension only; bar: 95% interval of the median",
    ),
    "factor_effects_by_scale": ("Factor effects per scale", "as the pooled figure, one panel per scale"),
    "variance_shares": (
        "What explains each scale score",
        "share of the explained variance per attribute (LMG); bars: 95% bootstrap interval over identities",
    ),
    "level_curves_age": (
        "Scale scores by age level, per race × gender group",
        "mean with 95% interval across identities; line: quadratic fit with its band",
    ),
    "level_curves_smiling": (
        "Scale scores by smiling level, per race × gender group",
        "mean with 95% interval across identities; line: quadratic fit with its band",
    ),
    "markedness": (
        "Unmarked groups",
        "share of images for which the neutral prompt is closer than the prompt "
        "naming the image's own group; 95% interval",
    ),
}


#: the tables each perception figure draws (by file name, or its prefix)
PERCEPTION_FIGURE_DATA = {
    "factor_effects": ("factor_pairs", "factor_effects"),
    "variance_shares": ("variance_shares",),
    "level_curves": ("level_means", "curve_grid", "extreme_groups"),
    "markedness": ("markedness",),
    "skew": ("skew",),
}


def _describe_pe(csvs: dict[str, str]):
    """Caption a figure of the perception plots from its file name, with the CSVs of the tables it draws."""

    def describe(path: Path) -> Figure:
        if path.stem in _PE_FIGURES:
            title, caption = _PE_FIGURES[path.stem]
        elif path.stem.startswith("skew_"):
            title = f"Retrieval skew over {path.stem[5:].replace('_', ' ')}"
            caption = "MaxSkew@k of each word's ranking of a group-balanced image set; dashed: 95th percentile of "
            caption += "random rankings"
        elif path.stem.startswith("level_curves_"):
            title = f"Scale scores by {path.stem[13:]} level, per race × gender group"
            caption = "mean with 95% interval across identities; line: quadratic fit with its band"
        else:
            title, caption = path.stem.replace("_", " "), ""
        kind = next((k for k in PERCEPTION_FIGURE_DATA if path.stem.startswith(k)), None)
        data = [(f"{t} (CSV)", csvs[t]) for t in PERCEPTION_FIGURE_DATA.get(kind, ()) if t in csvs]
        return Figure("", title, caption + ".", data)

    return describe


PERCEPTION_FIGURE_TABLES = tuple(dict.fromkeys(t for ts in PERCEPTION_FIGURE_DATA.values() for t in ts))


def perception_section(ctx: Context) -> list[B.Block]:
    runs = ctx.data.runs_of("perception")
    if not runs:
        return []
    out = [
        B.p(
            "Social perception of faces (Hausladen et al. 2025): each image's similarity to words of warmth, "
            f"competence and the ABC model, relative to a neutral prompt, in {DELTA}; which attributes of a face "
            "move those scores, and how the scores change with age and smiling in each race × gender group."
        )
    ]
    for title, group in configurations(runs, lambda o: f"on {_dataset_name(o.get('dataset'))}"):
        out.append(B.h2(f"Perception {title}", id=f"pe-{len(out)}"))
        fe = ctx.concat(group, "factor_effects")
        if len(fe):
            pooled = fe[fe["scale"] == "all scales"].copy()
            present = [d for d in DIMENSIONS if d in set(pooled["dimension"])]
            present += [d for d in dict.fromkeys(pooled["dimension"]) if d not in present]
            fcsv = ctx.assets.csv("perception-factor-effects", fe)
            out.append(
                B.figure(
                    ctx.assets.figure(
                        "vlbias.plots.forest:forest",
                        {
                            "df": pooled,
                            "row": "dimension",
                            "rows": present,
                            "series": "model_label",
                            "est": "median",
                            "low": "median_ci_low",
                            "high": "median_ci_high",
                            "ref": None,
                            "xlabel": f"median |change| of the scale scores ({DELTA}) within pairs of images that "
                            "differ in one dimension only; bars: 95% interval of the median",
                            "title": "Factor effects across models (all scales pooled)",
                        },
                        stem=f"perception-factors-{title}",
                        title="Factor effects across models",
                        caption="Each marker: one model's median absolute change of the scale scores when only that "
                        "dimension of the face changes (larger: the dimension moves social perception more).",
                        data=[("factor effects (CSV)", fcsv)],
                    )
                )
            )
            piv = pooled.assign(
                cell=[
                    interval(m, lo, hi, lambda v: f"{float(v):.2f}")
                    for m, lo, hi in zip(pooled["median"], pooled["median_ci_low"], pooled["median_ci_high"])
                ]
            )
            wide = (
                piv.pivot_table(index="model_label", columns="dimension", values="cell", aggfunc="first", sort=False)
                .reindex(columns=present)
                .reset_index()
            )
            out.append(
                B.table(
                    table(
                        wide,
                        {"model": "model_label", **{d: d for d in present}},
                        caption=f"Median |change| ({DELTA}) [95% CI], all scales pooled",
                        csv=fcsv,
                    )
                )
            )
        vs = ctx.concat(group, "variance_shares")
        if len(vs):
            vcsv = ctx.assets.csv("perception-variance-shares", vs)
            out.append(
                B.figure(
                    ctx.assets.figure(
                        "vlbias.plots.forest:forest",
                        {
                            "df": vs,
                            "row": "attribute",
                            "series": "model_label",
                            "panel": "scale",
                            "est": "share",
                            "low": "share_ci_low",
                            "high": "share_ci_high",
                            "ref": None,
                            "xlabel": "share of the scale score's explained variance (LMG, 0-1); bars: 95% "
                            "cluster-bootstrap interval over identities",
                            "title": "What explains each scale score, across models",
                            "ncols": 4,
                            "width": 3.0,
                        },
                        stem=f"perception-variance-{title}",
                        title="Variance shares across models",
                        caption="Each attribute's share of the variance of each scale score that the face's "
                        "attributes explain, per model.",
                        data=[("variance shares (CSV)", vcsv)],
                    )
                )
            )
        per_model = []
        for run in group:
            tabs = {n: run.tables[n] for n in PERCEPTION_FIGURE_TABLES if n in run.tables}
            csvs = {n: ctx.assets.csv(f"perception-{n}-{ctx.labels[run.model]}", t) for n, t in tabs.items() if len(t)}
            g = ctx.assets.group(
                "vlbias.plots.perception:draw_all",
                {"tables": tabs},
                folder=f"perception-{ctx.labels[run.model]}-{title}",
                describe=_describe_pe(csvs),
                arg="out",
                name=f"perception figures of {run.model}",
            )
            res = run.tables.get("results")
            rcsv = ctx.assets.csv(f"perception-{ctx.labels[run.model]}", res) if res is not None else None
            per_model.append(B.details(ctx.labels[run.model], [B.group(g), *([B.p(f"Data: {rcsv}")] if rcsv else [])]))
            blocks = [B.group(g)]
            if res is not None and len(res):
                head = (
                    res[(res["analysis"] == "factors") & (res["scale"] == "all scales")] if "analysis" in res else res
                )
                if len(head):
                    blocks.append(
                        B.table(
                            table(
                                head.sort_values("rank"),
                                {
                                    "rank": "rank",
                                    "dimension": "item",
                                    f"median |change| ({DELTA}) [95% CI]": lambda r: interval(
                                        r["value"], r["ci_low"], r["ci_high"], lambda v: f"{float(v):.2f}"
                                    ),
                                },
                                caption="Dimensions ranked by how much they move the scale scores (all scales pooled)",
                                csv=rcsv,
                            )
                        )
                    )
            ctx.add(run.model, B.h2(f"Perception {title}", id=f"pe-{run.task_id or 'run'}"), *blocks)
        notes = Counter(
            f"{i}: {r}"
            for run in group
            for i, r in zip(run.skipped.get("item", []), run.skipped.get("reason", []))
            if str(r).startswith("not run")
        )
        if notes:
            out.append(B.bullets([f"{k} ({n} model(s))" for k, n in notes.items()]))
        out += [B.h3("Figures of each model (level curves, factor effects, …)", md=False), *per_model]
        out += _skipped_summary(ctx, group)
    return out


# ---------------------------------------------------------------------------------------------- upstream analysis
def upstream_section(ctx: Context) -> list[B.Block]:
    a = ctx.data.analysis
    summary = ctx.data.analysis_summary or {}
    out: list[B.Block] = []
    if ctx.data.kind != "sweep":
        return []
    out.append(
        B.p(
            "Which upstream choices predict bias, and does bias rise with downstream accuracy? The tables of "
            "`vlbias analyze` (stored in the results database), drawn."
        )
    )
    fixed_tab = a.get("mixed_model")
    if fixed_tab is None or not len(fixed_tab):
        mm = summary.get("mixed_model")
        why = mm if isinstance(mm, str) else "`vlbias analyze` has not been run on these results"
        out += [
            B.h2("Mixed model", id="mixed"),
            B.note(
                f"Not available: {why}. Run `vlbias analyze --db "
                f"{ctx.data.path}` to fit it, then make the report again."
            ),
        ]
    else:
        mm = summary.get("mixed_model") if isinstance(summary.get("mixed_model"), dict) else {}
        csv = ctx.assets.csv("mixed-model-fixed-effects", fixed_tab)
        effect = summary.get("effect", "effect_size")
        title = f"{effect} ~ upstream facts" + (
            f" ({mm.get('n_obs')} rows, {mm.get('models')} models, {mm.get('n_groups')} groups)" if mm else ""
        )
        fig = ctx.assets.figure(
            "vlbias.plots.upstream:plot_coefficients",
            {"fixed": fixed_tab, "title": title},
            stem="mixed-model-coefficients",
            title="Mixed-model coefficients with 95% intervals",
            caption="Fixed effects of the upstream facts on the effect size (numeric terms per standard deviation of "
            "their log10; families against the reference level); random intercepts and slopes per test × order.",
            data=[("fixed effects (CSV)", csv)],
        )
        out += [B.h2("Mixed model", id="mixed"), B.figure(fig)]
        out.append(
            B.table(
                table(
                    fixed_tab,
                    {
                        "term": "term",
                        "estimate [95% CI]": lambda r: (
                            "not estimable"
                            if missing(r["estimate"])
                            else interval(r["estimate"], r["ci_low"], r["ci_high"], lambda v: f"{float(v):+.3f}")
                        ),
                        "SE": "std_error",
                        "z": "z",
                        "p": lambda r: pvalue(r["p_value"]),
                    },
                    caption="Fixed effects (REML; Wald intervals)",
                    csv=csv,
                )
            )
        )
        for name in ("mixed_model_random_effects", "mixed_model_scaling"):
            if name in a:
                out.append(B.p(f"{name.replace('_', ' ')}: {ctx.assets.csv(name, a[name])}"))
        facts = []
        if mm:
            facts.append(f"reference levels: {', '.join(f'{k}={v}' for k, v in (mm.get('reference') or {}).items())}")
            facts.append(f"converged: {mm.get('converged')}")
            if mm.get("models_left_out"):
                facts.append(f"left out ({mm.get('reason', 'missing facts')}): {', '.join(mm['models_left_out'])}")
            if mm.get("models_partly_left_out"):
                facts.append(
                    f"some rows left out ({mm.get('reason', 'missing facts')}): "
                    + ", ".join(mm["models_partly_left_out"])
                )
            facts += [f"note: {w}" for w in mm.get("warnings", [])]
        if facts:
            out.append(B.bullets(facts))
    corr = a.get("bias_vs_accuracy")
    data = a.get("bias_vs_accuracy_data")
    out.append(B.h2("Bias and downstream accuracy", id="accuracy"))
    if corr is None or data is None or not len(corr):
        why = summary.get("bias_vs_accuracy")
        why = why if isinstance(why, str) else "no bias-vs-accuracy tables in the results database"
        out.append(B.note(f"Not available: {why}."))
        return out
    by = (
        [c for c in corr.columns[: list(corr.columns).index("metric")]]
        if "metric" in corr.columns
        else ["test", "order"]
    )
    effect = summary.get("effect") or next(
        (c for c in data.columns if c not in {"model", "accuracy", "metric", *by}), "effect_size"
    )
    metric = str(data["metric"].iloc[0]) if "metric" in data.columns and len(data) else None
    dcsv = ctx.assets.csv("bias-vs-accuracy-data", data)
    ccsv = ctx.assets.csv("bias-vs-accuracy", corr)
    out.append(
        B.figure(
            ctx.assets.figure(
                "vlbias.plots.upstream:plot_bias_vs_accuracy",
                {"data": data, "corr": corr, "by": by, "effect": effect, "metric": metric},
                stem="bias-vs-accuracy",
                title=f"Effect size against downstream accuracy ({metric}), per test",
                caption="One point per model; line: least-squares fit; panel titles: Pearson's r with its 95% "
                "interval and the Benjamini-Hochberg adjusted p-value across tests.",
                data=[("points (CSV)", dcsv), ("correlations (CSV)", ccsv)],
            )
        )
    )
    out.append(
        B.table(
            table(
                corr,
                {
                    **{c: c for c in by},
                    "method": "method",
                    "n": "n",
                    "r [95% CI]": lambda r: interval(r["r"], r["ci_low"], r["ci_high"]),
                    "p": lambda r: pvalue(r["p_value"]),
                    "BH-adjusted p": lambda r: pvalue(r["p_bh"]),
                    "significant after BH": lambda r: "yes" if r["significant_bh"] is True else "no",
                },
                caption=f"Correlations of {effect} with {metric}",
                csv=ccsv,
            )
        )
    )
    return out


# ---------------------------------------------------------------------------------------------- other audits
def other_section(ctx: Context, audit: str) -> list[B.Block]:
    runs = ctx.data.runs_of(audit)
    out = []
    for run in runs:
        blocks = []
        for name, t in run.tables.items():
            csv = ctx.assets.csv(f"{audit}-{name}-{ctx.labels[run.model]}", t)
            blocks.append(B.Link(f"{name} ({len(t)} rows)", csv))
        bl = [B.bullets(blocks)]
        ctx.add(
            run.model, B.h2(f"{audit}", id=f"{audit}-{run.task_id or 'run'}"), *_wrap_warning(run.content_warning, bl)
        )
        out += [B.h3(ctx.labels[run.model]), *_wrap_warning(run.content_warning, bl)]
    return out
