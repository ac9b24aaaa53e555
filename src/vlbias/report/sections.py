"""What every section of a report is built with: the :class:`Context` (the results, the files beside the pages,
the model pages), the helpers each audit's presentation shares, the generic section of an audit that brings no
presentation (:func:`other_section`), and the upstream analysis of a sweep (:func:`upstream_section`).

Each audit's own section lives in the module its :class:`~vlbias.audits.registry.AuditSpec` names as its
``presentation`` (see :mod:`vlbias.report.presentation`)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from vlbias.report import blocks as B
from vlbias.report.assets import Assets, slug
from vlbias.report.fmt import interval, model_labels, pvalue, table
from vlbias.report.source import ReportData, Run, missing
from vlbias.utils.io import stable_hash


@dataclass
class Context:
    """What a section is built from and adds to: the results (``data``), the figures and CSV files beside the pages
    (``assets``), each model's display name and page, and the blocks each run adds to its model's page."""

    data: ReportData
    assets: Assets
    labels: dict[str, str] = field(default_factory=dict)  # model spec -> display name
    pages: dict[str, str] = field(default_factory=dict)  # model spec -> its page
    model_blocks: dict[str, list[B.Block]] = field(default_factory=dict)

    def __post_init__(self):
        models = self.data.model_order
        self.labels = model_labels(models)
        self.pages = {m: f"models/{slug(self.labels[m], n=60)}-{stable_hash(m, n=6)}.html" for m in models}

    def add(self, model: str, *blocks: B.Block) -> None:
        self.model_blocks.setdefault(model, []).extend(blocks)

    def run_data(self, run: Run, name: str, stem: str) -> str:
        """Run ``run``'s table ``name`` for the report (see :meth:`Assets.data`): a copy as data/<stem>, or a link to
        the run's own file in the results where that is large."""
        source = run.folder / f"{name}.parquet" if run.folder is not None else None
        return self.assets.data(stem, run.tables[name], source=source)

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


def dataset_name(spec: Any) -> str:
    """A dataset spec (``loader:root``) shortened for titles: the loader and the root's folder name."""
    if not spec:
        return "no dataset"
    kind, _, path = str(spec).partition(":")
    return f"{kind}:{Path(path).name}" if path else kind


def warning_text(runs: list[Run]) -> str | None:
    """The content warning of the first run that has one."""
    return next((r.content_warning for r in runs if r.content_warning), None)


def wrap_warning(warning: str | None, blocks: list[B.Block]) -> list[B.Block]:
    """The blocks behind a click that shows the content warning first (the blocks as they are without one)."""
    if not warning:
        return blocks
    text = re.sub(r"^\s*content warning\s*[:.-]?\s*", "", warning, flags=re.IGNORECASE)
    return [B.warning(f"Content warning: {text}", blocks)]


def skipped_summary(ctx: Context, runs: list[Run]) -> list[B.Block]:
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
    csv = ctx.assets.data("skipped", df)
    return [
        B.table(
            table(
                agg,
                {"reason": "reason", "items": "n", "models": "models", "examples": "examples"},
                caption="Skipped items and notes, by reason (every item in the data file)",
                csv=csv,
                limit=30,
            )
        )
    ]


def text_of(v: Any) -> str:
    """An option's or a record's value as text: strings as they are, anything else as JSON."""
    if isinstance(v, str):
        return v
    return json.dumps(v, default=str)


def option_value(runs: list[Run], key: str) -> str:
    """The runs' value of option ``key`` as text; several values joined with " / "."""
    values = {text_of(r.options.get(key, r.record.options.get(key))) for r in runs}
    return next(iter(values)) if len(values) == 1 else " / ".join(sorted(values))


def stimuli_of(runs: list[Run]) -> list[dict[str, Any]]:
    """Every distinct stimulus record (provenance entry) of the runs, with how many runs used it (``runs``)."""
    seen: dict[str, dict[str, Any]] = {}
    for r in runs:
        for s in r.record.stimuli:
            key = json.dumps(s, sort_keys=True, default=str)
            seen.setdefault(key, {**s, "runs": 0})["runs"] += 1
    return list(seen.values())


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
        csv = ctx.assets.data("mixed-model-fixed-effects", fixed_tab)
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
            data=[("fixed effects", csv)],
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
                out.append(B.p(f"{name.replace('_', ' ')}: {ctx.assets.data(name, a[name])}"))
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
    dcsv = ctx.assets.data("bias-vs-accuracy-data", data)
    ccsv = ctx.assets.data("bias-vs-accuracy", corr)
    out.append(
        B.figure(
            ctx.assets.figure(
                "vlbias.plots.upstream:plot_bias_vs_accuracy",
                {"data": data, "corr": corr, "by": by, "effect": effect, "metric": metric},
                stem="bias-vs-accuracy",
                title=f"Effect size against downstream accuracy ({metric}), per test",
                caption="One point per model; line: least-squares fit; panel titles: Pearson's r with its 95% "
                "interval and the Benjamini-Hochberg adjusted p-value across tests.",
                data=[("points", dcsv), ("correlations", ccsv)],
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
def other_section(ctx: Context, runs: list[Run]) -> list[B.Block]:
    """The section of an audit without a presentation: each run's tables, one CSV file each."""
    out = []
    for run in runs:
        audit = run.audit
        links = [
            B.Link(f"{name} ({len(t)} rows)", ctx.run_data(run, name, f"{audit}-{name}-{ctx.labels[run.model]}"))
            for name, t in run.tables.items()
        ]
        blocks = wrap_warning(run.content_warning, [B.bullets(links)])
        ctx.add(run.model, B.h2(f"{audit}", id=f"{audit}-{run.task_id or 'run'}"), *blocks)
        out += [B.h3(ctx.labels[run.model]), *blocks]
    return out
