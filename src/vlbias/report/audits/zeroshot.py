"""The report's presentation of the zero-shot audit: per protocol and dataset, the share of each group's images given
each label across models (forest plots), the gaps between groups, the model-group comparison of `vlbias analyze`,
each model's bar charts (drawn by :mod:`vlbias.plots.zeroshot`), all behind the content warning of offensive label
sets; and the tasks, classes and prompt templates for the methods page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from vlbias.report import blocks as B
from vlbias.report.assets import Figure
from vlbias.report.depth import LENS_NOTE, by_model, layers_text
from vlbias.report.fmt import fixed, interval, table
from vlbias.report.sections import (
    Context,
    configurations,
    dataset_name,
    option_value,
    skipped_summary,
    stimuli_of,
    warning_text,
    wrap_warning,
)
from vlbias.report.source import Run, missing
from vlbias.utils.provenance import of_kind

TITLE = "Zero-shot"
CI_OVER_PEOPLE = "bars: {ci:.0%} cluster-bootstrap interval over people"

#: the figures of one run (:func:`vlbias.plots.zeroshot.plot_audit`) and of a comparison (``plot_comparison``), by
#: the first word of their file name: title, and what they show
FIGURES = {
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


def _describe(ci: float, data: dict[str, list[tuple[str, str]]]):
    """Caption a figure of the zero-shot plots from its file name (``<kind>-<task>-...-<grouping>.png``), with the
    CSVs it draws (``data``: figure kind -> links)."""

    def describe(path: Path) -> Figure:
        kind, _, rest = path.stem.partition("-")
        title, what = FIGURES.get(kind, (kind, ""))
        rest = rest.replace("top1-pct-", "top-1 share, ").replace("mean-prob-", "mean probability, ")
        title = f"{title} ({rest.replace('-', ' ')})" if rest else title
        return Figure("", title, f"{what}; {CI_OVER_PEOPLE.format(ci=ci)}.", data.get(kind, []))

    return describe


def _group(r, end: str) -> str:
    """A disparity row's highest or lowest group with its share; "all equal" where no group is either."""
    name = r.get(f"{end}_group")
    return f"{'all equal' if missing(name) else name} ({fixed(r[end])}%)"


#: figures draw one panel per label: a task with more labels (FACET's 52 classes) shows the ones whose top-1 share
#: differs most between groups (every label is in the CSV files)
MAX_LABELS = 12


def _widest(res: pd.DataFrame, n: int) -> pd.DataFrame:
    """The rows of each task's ``n`` labels with the widest range of top-1 shares over groups (all, for fewer)."""
    parts = []
    for _, part in res.groupby("task", sort=False):
        if part["label"].nunique() <= n:
            parts.append(part)
            continue
        grouped = part[part["grouping"] != "all"]
        spread = grouped.groupby("label")["top1_pct"].agg(lambda s: s.max() - s.min()).sort_values(ascending=False)
        parts.append(part[part["label"].isin(spread.index[:n])])
    return pd.concat(parts) if parts else res


#: columns of a zero-shot disparity table: the groups with the highest and lowest share, and the gap
GAP_COLUMNS: dict[str, Any] = {
    "task": "task",
    "grouping": "grouping",
    "label": "label",
    "highest group": lambda r: _group(r, "max"),
    "lowest group": lambda r: _group(r, "min"),
    "gap, pp [CI]": lambda r: interval(r["difference"], r.get("difference_low"), r.get("difference_high"), fixed),
}


def within_column(comp: pd.DataFrame) -> str | None:
    """The model fact a comparison was made within (``--within``, e.g. family): the column `vlbias analyze` puts
    right after ``baseline`` that names no group (the grouping columns follow it), or None."""
    cols = list(comp.columns)
    if "baseline" not in cols or cols.index("baseline") + 1 >= len(cols):
        return None
    after = cols[cols.index("baseline") + 1]
    grouping = {c for g in comp["grouping"].dropna().astype(str) for c in g.split("+")} if "grouping" in comp else set()
    return None if after in grouping | {"group", "difference"} else after


def _title(o: dict[str, Any]) -> str:
    proto = o.get("protocol") if not o.get("classes") else f"custom classes {Path(str(o['classes'])).name}"
    return f"{proto} on {dataset_name(o.get('dataset'))}"


def section(ctx: Context, runs: list[Run]) -> list[B.Block]:
    out = [
        B.p(
            "Zero-shot classification of face images: each image gets the class whose prompt it is most similar to; "
            "per group, the share of images given each class and the mean probability, with intervals from a "
            "cluster bootstrap over people (each person's images resampled together)."
        )
    ]
    comparison = ctx.data.analysis.get("zeroshot_comparison")
    comp_notes = ctx.data.analysis.get("zeroshot_comparison_notes")
    for title, group in configurations(runs, _title):
        res = ctx.concat(group, "results")
        if res.empty:
            continue
        ci = float(group[0].options.get("confidence", 0.95) or 0.95)
        warning = warning_text(group)
        inner: list[B.Block] = []
        csv = ctx.assets.data("zeroshot-results", res)
        headline = res[res["kind"] == "category"] if (res.get("kind") == "category").any() else res
        headline = _widest(headline, MAX_LABELS)
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
                data=[("group results", csv)],
            )
            inner.append(B.figure(fig))
        disp = ctx.concat(group, "disparity")
        if len(disp):
            disp = disp[(disp["metric"] == "top1_pct") & disp["label"].isin(labels) & (disp["grouping"] != "all")]
            dcsv = ctx.assets.data("zeroshot-disparity", disp)
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
        inner += _recall_blocks(ctx, group)
        # the grouped model comparison of `vlbias analyze`
        if comparison is not None and len(comparison):
            o = group[0].record.options
            comp = comparison[
                (comparison["protocol"].astype(str) == str(o.get("protocol")))
                & (comparison["dataset"].astype(str) == str(o.get("dataset")))
            ]
            if len(comp):
                ccsv = ctx.assets.data("zeroshot-comparison", comp)
                within = within_column(comp)
                by = next((c for c in comp.columns if c in ("level",)), None)
                inner += [
                    B.h3("Model groups compared"),
                    B.p(
                        f"The change from the baseline level ({', '.join(map(str, comp['baseline'].unique()))}) to "
                        f"each other level ({', '.join(map(str, comp[by].unique())) if by else ''}) of the model "
                        "fact compared, averaged over the models of each level (within pairs where `--pair-by` was "
                        "given"
                        + (f"; one comparison per {within}, each with its own figures" if within else "")
                        + f"), with intervals over people. Data: {ccsv}."
                    ),
                ]
                parts = [(None, comp)] if within is None else list(comp.groupby(within, sort=False, dropna=False))
                for value, part in parts:
                    where = "" if within is None else f"{within}-{value}-"
                    g = ctx.assets.group(
                        "vlbias.plots.zeroshot:plot_comparison",
                        {"tables": {"results": part}, "warning": warning},
                        folder=f"zeroshot-comparison-{where}{title}",
                        describe=_describe(ci, {"change": [("comparison", ccsv)]}),
                        arg="folder",
                        name="zero-shot comparison" + (f" ({within} {value})" if within else ""),
                    )
                    if within is not None:
                        inner.append(B.h3(f"Within {within} {value}"))
                    inner.append(B.group(g, md=True))
        if comp_notes is not None and len(comp_notes):
            inner.append(B.bullets([f"comparison note: {n}" for n in comp_notes["note"]]))
        per_model = []
        for run in group:
            tabs = {n: run.tables[n] for n in ("results", "accuracy") if n in run.tables}
            if "results" in tabs:
                tabs["results"] = _widest(tabs["results"], MAX_LABELS)
            # every model's group results are in one file (csv); its accuracy, in a file of its own
            csvs = {
                n: csv if n == "results" else ctx.run_data(run, n, f"zeroshot-{n}-{ctx.labels[run.model]}")
                for n in tabs
            }
            rcsv = csvs.get("results")
            links = {"share": "results", "probability": "results", "accuracy": "accuracy"}
            g = ctx.assets.group(
                "vlbias.plots.zeroshot:plot_audit",
                {"tables": tabs, "warning": run.content_warning, "model": ctx.labels[run.model]},
                folder=f"zeroshot-{ctx.labels[run.model]}-{title}",
                describe=_describe(ci, {k: [(t, csvs[t])] for k, t in links.items() if t in csvs}),
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
                *wrap_warning(run.content_warning, run_blocks),
            )
        inner += [B.h3("Group bar charts of each model", md=False), *per_model]
        inner += skipped_summary(ctx, group)
        out.append(B.h2(f"Zero-shot: {title}", id=f"zs-{len(out)}"))
        out += wrap_warning(warning, inner)
    return out


#: columns of a recall-disparity table (FACET's disparity: recall of one group minus the other's, per class)
RECALL_GAP_COLUMNS: dict[str, Any] = {
    "model": "model_label",
    "class": "class",
    "grouping": "grouping",
    "groups": lambda r: f"{r['group_a']} − {r['group_b']}",
    "recall, %": lambda r: f"{fixed(r['recall_a'])} vs {fixed(r['recall_b'])}",
    "people": lambda r: f"{r['n_people_a']} / {r['n_people_b']}",
    "disparity, pp [CI]": lambda r: interval(r["disparity"], r.get("disparity_low"), r.get("disparity_high"), fixed),
}


def _recall_blocks(ctx: Context, group: list[Run]) -> list[B.Block]:
    """Per-class recall disparities (protocols with ``recall``, FACET's): the largest ones, every one in the CSV."""
    gaps = ctx.concat(group, "recall_disparity")
    if gaps.empty:
        return []
    csv = ctx.assets.data("zeroshot-recall-disparity", gaps)
    rcsv = ctx.assets.data("zeroshot-recall", ctx.concat(group, "recall"))
    top = gaps.reindex(gaps["disparity"].abs().sort_values(ascending=False).index)
    return [
        B.h3("Recall disparities by class"),
        B.p(
            "Per class, the recall of one group minus the other's (percentage points; FACET's disparity), with a "
            f"bootstrap interval over people; recall per class and group: {rcsv}."
        ),
        B.table(table(top, RECALL_GAP_COLUMNS, caption="The largest disparities", csv=csv, limit=40)),
    ]


def methods(ctx: Context, runs: list[Run]) -> list[B.Block]:
    scale, conf = option_value(runs, "scale"), option_value(runs, "confidence")
    boot, seed = option_value(runs, "n_bootstrap"), option_value(runs, "seed")
    out = [
        B.p(
            f"Each image is compared with one prompt per class (several templates: averaged normalised prompt "
            f"embeddings, or one result per template); probabilities are softmax({scale} · cosine) and the top-1 "
            f"class is the most similar one. Per group: the share of images whose top-1 class is each class or "
            f"category, and the mean probability, each with a {conf} cluster-bootstrap interval over "
            f"people ({boot} replicates, seed {seed}); a comparison of models resamples "
            "the same people for every model."
        )
    ]
    tasks = []
    for s in of_kind(stimuli_of(runs), "protocol"):
        for t in s.get("tasks") or []:
            tasks.append(
                {
                    "protocol": s["name"],
                    "task": t.get("name"),
                    "classes": ", ".join(t.get("classes") or []),
                    "templates": "; ".join(
                        t.get("templates")
                        if isinstance(t.get("templates"), list)
                        else [f"{k}: {v}" for k, v in (t.get("templates") or {}).items()]
                    ),
                    "groupings": "; ".join(" × ".join(g) for g in t.get("group_by") or []),
                    "categories": "; ".join(f"{k} = {' + '.join(v)}" for k, v in (t.get("categories") or {}).items()),
                }
            )
    if tasks:
        blocks = [
            B.table(
                table(
                    pd.DataFrame(tasks),
                    {k: k for k in ("protocol", "task", "classes", "templates", "groupings", "categories")},
                    caption="Tasks, class lists and prompt templates",
                )
            )
        ]
        warning = next((r.content_warning for r in runs if r.content_warning), None)
        out += wrap_warning(warning, blocks)
    return out


def headline(ctx: Context, runs: list[Run]) -> list[B.Block]:
    """The largest gaps between groups in the share of images given a headline label (a category where the protocol
    has them), across models, with their intervals over people; behind the content warning."""
    parts = []
    for run in runs:
        disp = run.tables.get("disparity") if "disparity" in run.tables else None
        if disp is None or not len(disp) or "metric" not in disp:
            continue
        d = disp[(disp["metric"] == "top1_pct") & (disp["grouping"] != "all")]
        if "kind" in d and (d["kind"] == "category").any():
            d = d[d["kind"] == "category"]
        if len(d):
            parts.append(d.assign(model_label=ctx.labels.get(run.model, run.model), setting=_title(run.options)))
    if not parts:
        return []
    gaps = pd.concat(parts, ignore_index=True).sort_values("difference", ascending=False)
    csv = ctx.assets.data("zeroshot-headline", gaps)
    blocks = [
        B.table(
            table(
                gaps,
                {"model": "model_label", "protocol and dataset": "setting", **GAP_COLUMNS},
                caption=f"The largest gaps between groups in the top-1 share of a label, of {len(parts)} run(s); "
                "largest first (intervals: cluster bootstrap over people)",
                csv=csv,
                limit=8,
            )
        )
    ]
    return wrap_warning(warning_text(runs), blocks)


def depth(ctx: Context, runs: list[Run]) -> list[B.Block]:
    """Top-1 shares over depth: per model read at several layers, per task and grouping, one panel per label and
    one curve per group."""
    out = [
        B.h2("Zero-shot over depth", id="zs-depth"),
        B.p(
            "Each model read at several layers: the share of each group's images given each label at each layer "
            "(lens reading: the image and the prompts through their towers' heads), with the cluster-bootstrap "
            "interval over people as a band. " + LENS_NOTE
        ),
    ]
    for title, group in configurations(runs, _title):
        for model, reading, mine in by_model(group):
            res = ctx.concat(mine, "results")
            if res.empty or "layer" not in res.columns:
                continue
            label = ctx.labels.get(model, model)
            csv = ctx.assets.data(f"zeroshot-depth-{label}-{title}", res)
            ci = float(mine[0].options.get("confidence", 0.95) or 0.95)

            def describe(path: Path, csv: str = csv, ci: float = ci) -> Figure:
                what = path.stem.removeprefix("depth-").replace("-", " ")
                return Figure(
                    "",
                    f"Shares over depth ({what})",
                    f"One panel per label, one curve per group: the top-1 share at each layer; band: "
                    f"{CI_OVER_PEOPLE.format(ci=ci).removeprefix('bars: ')}.",
                    [("group results by layer", csv)],
                )

            g = ctx.assets.group(
                "vlbias.plots.depth:zeroshot_depth",
                {"results": res, "model": label},
                folder=f"zeroshot-depth-{label}-{title}",
                describe=describe,
                arg="folder",
                name=f"zero-shot depth curves of {model}",
            )
            blocks = [B.h3(f"{label}: {title} ({layers_text(mine)}, {reading})"), B.group(g, md=True)]
            out += wrap_warning(warning_text(mine), blocks)
            ctx.add(
                model,
                B.h2(f"Zero-shot over depth: {title}", id=f"zs-depth-{label}"),
                *wrap_warning(warning_text(mine), [B.group(g)]),
            )
    return out
