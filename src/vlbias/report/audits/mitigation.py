"""The report's mitigation page (``vlbias mitigation-compare`` outputs): per audit and method, before, after and the
paired difference with intervals, bias and accuracy side by side, and the trade-off figure of bias reduction against
accuracy cost."""

from __future__ import annotations

from typing import Any

from vlbias.report import blocks as B
from vlbias.report.fmt import interval, num, table
from vlbias.report.sections import Context
from vlbias.report.source import Run

TITLE = "Mitigation"


def _f(v: Any) -> str:
    return num(v, 3)


def section(ctx: Context, runs: list[Run]) -> list[B.Block]:
    out = [
        B.p(
            "Each mitigation was fitted on a fit set and the audit run twice on the same evaluation set, disjoint from "
            "it (by person for image-fitted methods): before (no vector changed) and after. Differences are after "
            "minus before, with percentile intervals from one bootstrap draw of the same units for both runs (targets "
            "of an association test; people of a face dataset). Bias rows: |d| of association tests, the range "
            "over groups of a class's top-1 share (percentage points), of a perception scale's mean score (Delta "
            "points), or of retrieval's association with negative captions (percentage points); accuracy rows: zero-shot accuracy on labelled "
            "tasks (percent), the cost. 'overall' is the mean of the absolute values of its kind."
        )
    ]
    res = ctx.concat(runs, "results")
    if res.empty:
        return out + [B.note("No comparison rows.")]
    csv = ctx.assets.data("mitigation-comparison", res)
    fig = ctx.assets.figure(
        "vlbias.plots.mitigation:tradeoff",
        {"table": res},
        stem="mitigation-tradeoff",
        title="Bias reduction against accuracy cost",
        caption="One marker per mitigation: x, the change of overall accuracy (after - before); y, the change of "
        "overall |bias|; bars, paired intervals. Down is less bias, left is lost accuracy.",
        data=[("comparison (CSV)", csv)],
    )
    out.append(B.figure(fig))
    for (audit, model), g in res.groupby(["audit", "model_label"], sort=False):
        out.append(B.h2(f"{audit}: {model}", id=f"mitigation-{len(out)}"))
        for kind in ("bias", "accuracy"):
            rows = g[g["kind"] == kind]
            if rows.empty:
                continue
            cols = {
                "mitigation": "mitigation",
                "value": "value",
                "before [CI]": lambda r: interval(r["before"], r["before_low"], r["before_high"], _f),
                "after [CI]": lambda r: interval(r["after"], r["after_low"], r["after_high"], _f),
                "after - before [CI]": lambda r: interval(
                    r["difference"], r["difference_low"], r["difference_high"], _f
                ),
                "units": lambda r: num(r["n_units"]),
            }
            caption = f"{kind}: {rows['statistic'].iloc[0]}, before and after, paired"
            out.append(B.table(table(rows, cols, caption=caption, csv=csv)))
    for run in runs:
        ctx.add(run.model, B.p(f"Mitigation comparison of {run.record.options.get('audit')}: see the Mitigation page."))
    return out
