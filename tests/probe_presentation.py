"""The report presentation of the test audit `textprobe` (tests/sweep_fixtures.py), found through its AuditSpec's
``presentation`` as a plugin's would be: a page with a paragraph, a forest plot of every pair's cosine and a table
per model, each run's part on its model's page, and a methods paragraph."""

from __future__ import annotations

from vlbias.report import blocks as B
from vlbias.report.fmt import table
from vlbias.report.sections import Context, option_value
from vlbias.report.source import Run

TITLE = "Probe similarities"
INTRO = "Cosine similarity of every pair of probe texts, as the probe presents it."


def section(ctx: Context, runs: list[Run]) -> list[B.Block]:
    res = ctx.concat(runs, "results")
    csv = ctx.assets.data("probe-results", res)
    fig = ctx.assets.figure(
        "vlbias.plots.forest:forest",
        {
            "df": res,
            "row": "test",
            "series": "model_label",
            "est": "effect_size",
            "low": "effect_size",
            "high": "effect_size",
            "xlabel": "cosine",
            "title": "Probe pairs",
        },
        stem="probe-pairs",
        title="Probe pairs across models",
        caption="One marker per model and pair.",
        data=[("pairs", csv)],
    )
    out = [B.p(INTRO), B.figure(fig)]
    for run in runs:
        t = B.table(
            table(run.tables["results"], {"pair": lambda r: f"{r['test']} / {r['other']}", "cosine": "effect_size"})
        )
        ctx.add(run.model, B.h2("Probe pairs", id=f"probe-{run.task_id}"), t)
        out += [B.h3(ctx.labels[run.model]), t]
    return out


def methods(ctx: Context, runs: list[Run]) -> list[B.Block]:
    return [B.p(f"Probe method: the cosine of each pair of {len(runs)} run(s), words {option_value(runs, 'words')}.")]
