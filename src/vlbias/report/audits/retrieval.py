"""The report's presentation of the retrieval audit: per protocol and dataset, the skew summaries across models
(forest plots of the mean MaxSkew@k per grouping), the caption association by group (PATA), each model's tables on
its page, behind the content warning of offensive captions; and how the skew was measured, for the methods page."""

from __future__ import annotations

from typing import Any

import pandas as pd

from vlbias.report import blocks as B
from vlbias.report.fmt import data_label, fixed, interval, num, table
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
from vlbias.report.source import Run
from vlbias.utils.provenance import of_kind

TITLE = "Retrieval"


def _title(o: dict[str, Any]) -> str:
    # without a protocol option, the protocol published on the dataset, which the dataset's loader names
    proto = o.get("protocol") or str(o.get("dataset") or "").partition(":")[0] or "retrieval"
    return f"{proto} on {dataset_name(o.get('dataset'))}"


def _what(df: pd.DataFrame) -> pd.Series:
    """The row label of a summary: attribute type or attribute, polarity and measure, and the grouping."""
    cols = [c for c in ("attribute_type", "attribute", "polarity", "measure", "grouping") if c in df.columns]
    return df[cols].astype(str).agg(" / ".join, axis=1)


SUMMARY_COLUMNS: dict[str, Any] = {
    "model": "model_label",
    "ranking": "what",
    "rankings": "n_rankings",
    "mean MaxSkew@k [CI]": lambda r: interval(
        r["mean_max_skew"], r.get("mean_max_skew_low"), r.get("mean_max_skew_high")
    ),
    "median MaxSkew@k [CI]": lambda r: interval(
        r["median_max_skew"], r.get("median_max_skew_low"), r.get("median_max_skew_high")
    ),
    "mean NDKL [CI]": lambda r: interval(r.get("mean_ndkl"), r.get("mean_ndkl_low"), r.get("mean_ndkl_high")),
}
ASSOCIATION_COLUMNS: dict[str, Any] = {
    "model": "model_label",
    "attribute": "attribute",
    "group": "group",
    "images": lambda r: num(r["n_images"]),
    "P(negative caption), % [CI]": lambda r: interval(
        r["p_negative_pct"], r["p_negative_pct_low"], r["p_negative_pct_high"], fixed
    ),
    "best caption negative, % [CI]": lambda r: interval(
        r["top1_negative_pct"], r["top1_negative_pct_low"], r["top1_negative_pct_high"], fixed
    ),
}


def section(ctx: Context, runs: list[Run]) -> list[B.Block]:
    out = [
        B.p(
            "Retrieval audits: which groups a model's text queries bring up. MaxSkew@k is the log ratio of the most "
            "over-represented group's share among the top k to its intended share (0: as intended); NDKL the "
            "rank-discounted divergence of every prefix from the intended shares (Geyik et al. 2019). Intervals "
            "resample the units the protocol names (counterfactual sets; images)."
        )
    ]
    for title, group in configurations(runs, _title):
        res = ctx.concat(group, "results")
        if res.empty:
            continue
        res = res.assign(what=_what(res))
        csv = ctx.assets.data("retrieval-results", res)
        ci = float(group[0].options.get("confidence", 0.95) or 0.95)
        inner: list[B.Block] = []
        fig = ctx.assets.figure(
            "vlbias.plots.forest:forest",
            {
                "df": res,
                "row": "what",
                "series": "model_label",
                "est": "mean_max_skew",
                "low": "mean_max_skew_low",
                "high": "mean_max_skew_high",
                "ref": 0.0,
                "xlabel": f"mean MaxSkew@k over the rankings; {ci:.0%} interval",
                "title": f"Retrieval skew: {title}",
            },
            stem=f"retrieval-{title}",
            title=f"Mean MaxSkew@k by grouping: {title}",
            caption="One marker per model: the mean over the protocol's rankings (subjects; captions) of MaxSkew@k, "
            "with its bootstrap interval; 0 is the intended representation.",
            data=[("summaries", csv)],
        )
        inner += [
            B.figure(fig),
            B.table(table(res, SUMMARY_COLUMNS, caption="Skew summarised over rankings, per model", csv=csv, limit=80)),
        ]
        assoc = ctx.concat(group, "association")
        if len(assoc):
            pooled = assoc[assoc["scene"].astype(str) == "all"]
            acsv = ctx.assets.data("retrieval-association", assoc)
            inner.append(
                B.table(
                    table(
                        pooled,
                        ASSOCIATION_COLUMNS,
                        caption="Association of each group with the negative captions, pooled over scenes (per scene "
                        "in the data file)",
                        csv=acsv,
                        limit=80,
                    )
                )
            )
        for run in group:
            mine = res[res["model"] == run.model]
            blocks = [B.table(table(mine, {k: v for k, v in SUMMARY_COLUMNS.items() if k != "model"}))]
            ranks = run.tables.get("rankings")
            if ranks is not None and len(ranks):
                path = ctx.run_data(run, "rankings", f"retrieval-rankings-{ctx.labels[run.model]}")
                blocks.append(B.bullets([B.Link(data_label("every ranking", path), path)]))
            ctx.add(
                run.model,
                B.h2(f"Retrieval: {title}", id=f"rt-{run.task_id or 'run'}"),
                *wrap_warning(run.content_warning, blocks),
            )
        inner += skipped_summary(ctx, group)
        out.append(B.h2(f"Retrieval: {title}", id=f"rt-{len(out)}"))
        out += wrap_warning(warning_text(group), inner)
    return out


def methods(ctx: Context, runs: list[Run]) -> list[B.Block]:
    boot, conf, seed = option_value(runs, "n_bootstrap"), option_value(runs, "confidence"), option_value(runs, "seed")
    rows = []
    for s in of_kind(stimuli_of(runs), "protocol"):
        spec = s.get("spec") or {}
        rows.append(
            {
                "protocol": s["name"],
                "kind": spec.get("kind", ""),
                "pools": ", ".join(spec.get("pools") or []),
                "query": spec.get("query", "") if spec.get("kind") == "counterfactual" else "the scene's captions",
                "k": spec.get("k", ""),
                "target": spec.get("target", ""),
                "citation": s.get("citation", ""),
            }
        )
    out = [
        B.p(
            "Each pool of images (a subject's counterfactual sets; a scene's images) is ranked by its cosine "
            "similarity to a text query; Skew_g@k = ln(share of group g in the top k / g's intended share), MaxSkew "
            "and MinSkew their maximum and minimum over the groups, NDKL the discounted KL divergence of every prefix. "
            f"Intervals: {conf} percentile bootstrap over the protocol's clusters ({boot} resamples, seed {seed}); a "
            "summary's interval aggregates the same replicates of every ranking."
        )
    ]
    if rows:
        out.append(B.table(table(pd.DataFrame(rows), {k: k for k in rows[0]}, caption="Retrieval protocols")))
    return out
