"""Upstream analyses of a model-zoo sweep (`vlbias analyze`).

1. Which upstream choices predict bias: the 131-model study's mixed-effects model,
   ``effect_size ~ log_params + architecture_family + dataset_family + log_dataset_size`` with random intercepts
   and slopes (log_params, log_dataset_size) per test x order group, REML, log10 terms standardised
   (:func:`vlbias.stats.mixed.fit_mixed_model`). Models without the catalogue facts (random-init models, unknown
   datasets) are left out and counted. Results at several layers of the models (a sweep with ``layers:``) enter
   with ``terms=("layer",)`` (``--term layer``): depth as one more standardised numeric term, fitted on the
   layered rows; without it the rows of the models' own embeddings are used (see :func:`depth_rows`).
2. Bias vs downstream accuracy: per test x order, Pearson and Spearman correlations of the effect size with a
   downstream accuracy metric, with intervals, and Benjamini–Hochberg adjusted p-values across the tests (the
   study reported none). Accuracy joins on the model spec; quickgelu duplicates join the pair they duplicate.
3. Audit-specific zoo analyses: an audit whose ``AuditSpec.zoo_analysis`` is set gets its tables (with catalogue
   facts) and returns tables of its own (e.g. the zero-shot audit's grouped model comparison).

Tables go to ``<db>/analysis/`` (Parquet, also in the database as schema ``analysis``) and, with plots, to
``--out``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vlbias.errors import VlbiasError
from vlbias.plots.style import NotDrawn
from vlbias.plots.upstream import plot_bias_vs_accuracy, plot_coefficients
from vlbias.zoo.store import ResultsStore, quote


@dataclass
class AnalysisSettings:
    audit: str = "eat"
    table: str = "results"
    effect: str = "effect_size"
    by: tuple[str, ...] = ("test", "order")
    size_column: str = "n_params"
    reference: dict[str, str] = field(default_factory=dict)
    accuracy: str | None = None  # a source for load_accuracy; None: the database's accuracy table
    metric: str | None = None
    where: str | None = None  # SQL condition on the result rows, e.g. "seed = 0"
    #: options of the audits' zoo analyses: by, baseline, pair_by, within, n_bootstrap, confidence, seed
    compare: dict[str, Any] = field(default_factory=dict)
    alpha: float = 0.05
    fdr: float = 0.05
    #: more numeric terms of the result rows in the mixed model: ``layer`` (depth, for results at several layers)
    terms: tuple[str, ...] = ()


def load_results(store: ResultsStore, s: AnalysisSettings) -> pd.DataFrame:
    """The audit's result rows with their models' catalogue facts."""
    tables = set(store.tables()["table"])
    name = f"{s.audit}.{s.table}_with_models"
    if name not in tables:
        have = sorted(t for t in tables if t.endswith("_with_models"))
        raise VlbiasError(
            f"the results database has no {s.audit}.{s.table} table; it has {', '.join(have) or 'no audit results'}"
            f" (choose with --audit and --table)"
        )
    sql = f"SELECT * FROM {quote(s.audit)}.{quote(s.table + '_with_models')}"
    df = store.query(sql + (f" WHERE {s.where}" if s.where else ""))
    if df.empty:
        raise VlbiasError(f"no rows in {s.audit}.{s.table}" + (f" where {s.where}" if s.where else ""))
    missing = [c for c in (s.effect, *s.by) if c not in df.columns]
    if missing:
        raise VlbiasError(
            f"{s.audit}.{s.table} has no column {', '.join(missing)}; choose --effect and --by from "
            f"{', '.join(c for c in df.columns if c not in ('model_identity', 'config_hash'))}"
        )
    bad = [t for t in s.terms if t not in df.columns]
    if bad:
        raise VlbiasError(f"--term {bad[0]}: {s.audit}.{s.table} has no such column (a sweep with layers: has layer)")
    return depth_rows(df, s)


def depth_rows(df: pd.DataFrame, s: AnalysisSettings) -> pd.DataFrame:
    """The rows the analyses use where the results hold several layers of the models (:mod:`vlbias.models.layers`):
    with the ``layer`` term, the layered rows (depth is a term); without it, the rows of the models' own embeddings
    (a model's layers are not independent models); a one-line error if there are none. Results of one layer (or
    none) are used as they are."""
    if "layer" not in df.columns:
        return df
    layer = pd.to_numeric(df["layer"], errors="coerce")
    if layer.nunique(dropna=False) <= 1:
        return df
    if "layer" in s.terms:
        return df[layer.notna()].reset_index(drop=True)
    if layer.isna().any():
        return df[layer.isna()].reset_index(drop=True)
    held = ", ".join(str(int(k)) for k in sorted(layer.unique()))
    raise VlbiasError(
        f"the {s.audit}.{s.table} rows hold layers {held} of the models and none of their embeddings; add --term "
        f'layer to model depth, or choose one layer with --where "layer = {int(layer.max())}"'
    )


def _group_label(df: pd.DataFrame, by: tuple[str, ...]) -> pd.Series:
    return df[list(by)].astype(str).agg(" × ".join, axis=1)


def mixed_model_data(df: pd.DataFrame, s: AnalysisSettings) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Rows with every predictor, log10 terms added; and what was left out."""
    d = df.copy()
    d["group"] = _group_label(d, s.by)
    d["log_params"] = np.log10(pd.to_numeric(d[s.size_column], errors="coerce").astype(float))
    d["log_dataset_size"] = np.log10(pd.to_numeric(d["dataset_size"], errors="coerce").astype(float))
    for term in s.terms:
        d[term] = pd.to_numeric(d[term], errors="coerce").astype(float)
    numeric = [s.effect, "log_params", "log_dataset_size", *s.terms]
    need = [*numeric, "architecture_family", "dataset_family"]
    ok = d[need].notna().all(axis=1) & np.isfinite(d[numeric]).all(axis=1)
    kept = set(d.loc[ok, "model"])
    dropped = set(d.loc[~ok, "model"])
    info = {
        "rows": int(ok.sum()),
        "rows_left_out": int((~ok).sum()),
        "models": len(kept),
        # models with no row in the fit, and models of which only some rows (an undefined effect) were dropped
        "models_left_out": sorted(dropped - kept),
        "models_partly_left_out": sorted(dropped & kept),
        "reason": "missing parameter count, dataset size, architecture family or dataset family in the catalogue, "
        "or an undefined effect",
    }
    return d[ok].reset_index(drop=True), info


#: the model facts the mixed model needs, and what they are called in its advice
MIXED_MODEL_FACTS = {
    "architecture_family": "architecture family",
    "dataset_family": "dataset family",
    "dataset_size": "dataset size",
}
#: fewer models than this cannot separate the upstream facts
MIN_MIXED_MODELS = 3


def _missing_facts(df: pd.DataFrame, s: AnalysisSettings) -> dict[str, list[str]]:
    """Per model, the facts the mixed model needs that it lacks."""
    need = {s.size_column: "parameter count" if s.size_column == "n_params" else s.size_column, **MIXED_MODEL_FACTS}
    out = {}
    for model, rows in df.groupby("model", sort=True):
        lacking = [name for col, name in need.items() if col not in rows or rows[col].isna().all()]
        if lacking:
            out[model] = lacking
    return out


def run_mixed_model(df: pd.DataFrame, s: AnalysisSettings):
    from vlbias.stats.mixed import fit_mixed_model

    data, info = mixed_model_data(df, s)
    n_models = df["model"].nunique()
    if n_models < MIN_MIXED_MODELS:
        raise VlbiasError(
            f"too few models: the mixed model separates upstream facts across models and needs at least "
            f"{MIN_MIXED_MODELS}; these results have {n_models} (sweep more models)"
        )
    if info["models"] < MIN_MIXED_MODELS:
        lacking = _missing_facts(df, s)
        shown = "; ".join(f"{m} lacks {', '.join(f)}" for m, f in list(lacking.items())[:3])
        more = f"; and {len(lacking) - 3} more models" if len(lacking) > 3 else ""
        random = " (random-init models have no pretraining data)" if any("/random" in m for m in lacking) else ""
        raise VlbiasError(
            f"missing model facts: the mixed model needs {MIN_MIXED_MODELS} models with a known parameter count, "
            f"dataset size, architecture family and dataset family, and {info['models']} of the {n_models} models "
            f"have them: {shown}{more}{random}; add the facts in a catalogue file (columns spec and the facts) and "
            f"give it to `vlbias results facts --catalogue FILE` or `vlbias analyze --catalogue FILE`"
        )
    try:
        result = fit_mixed_model(
            data,
            response=s.effect,
            numeric=["log_params", "log_dataset_size", *s.terms],
            categorical=["architecture_family", "dataset_family"],
            group="group",
            random_slopes=["log_params", "log_dataset_size"],
            reference=s.reference,
            alpha=s.alpha,
        )
    except ValueError as e:
        raise VlbiasError(f"mixed model: {e}") from None
    return result, info


def accuracy_table(store: ResultsStore, s: AnalysisSettings) -> pd.DataFrame:
    from vlbias.zoo.accuracy import canonical_spec, load_accuracy

    if s.accuracy is not None:
        acc = load_accuracy(s.accuracy)
    elif "accuracy" in set(store.tables()["table"]):
        acc = store.query("SELECT * FROM accuracy")
    else:
        return pd.DataFrame(columns=["spec", "metric", "value"])
    metrics = set(acc["metric"])
    metric = s.metric or next((m for m in ("average", "imagenet1k", "imagenet1k/acc1") if m in metrics), None)
    if metric is None or metric not in metrics:
        raise VlbiasError(
            f"no downstream metric {s.metric!r} in the accuracy data; choose --metric from "
            f"{', '.join(sorted(metrics)[:20])}"
        )
    s.metric = metric
    acc = acc[acc["metric"] == metric].copy()
    from vlbias.models.catalogue import load_catalogue

    cat = load_catalogue()
    acc["canonical"] = [canonical_spec(x, cat) for x in acc["spec"]]
    dup = acc.duplicated("canonical", keep=False)
    if dup.any():
        acc = acc.groupby("canonical", as_index=False)["value"].mean()  # the same weights listed twice
    return acc[["canonical", "value"]].rename(columns={"value": "accuracy"})


def bias_vs_accuracy(df: pd.DataFrame, acc: pd.DataFrame, s: AnalysisSettings) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(one row per model per test x order with effect size and accuracy, correlations per test x order)."""
    from vlbias.models.catalogue import load_catalogue
    from vlbias.stats.correlation import correlations_by_group
    from vlbias.zoo.accuracy import canonical_spec

    cat = load_catalogue()
    by = (*s.by, *s.terms)  # with the layer term: one correlation per test, order and layer
    d = df[["model", *by, s.effect]].copy()
    d["canonical"] = [canonical_spec(m, cat) for m in d["model"]]
    d = d.merge(acc, on="canonical", how="inner")
    d = d.groupby(["model", *by], as_index=False).agg({s.effect: "mean", "accuracy": "first"})
    d["metric"] = s.metric
    corr = correlations_by_group(d, "accuracy", s.effect, list(by), alpha=s.alpha, fdr=s.fdr)
    corr.insert(len(by), "metric", s.metric)
    return d, corr


# ---------------------------------------------------------------------------------------------- all of it
def model_fact_map(store: ResultsStore) -> dict[str, dict[str, Any]]:
    """Every swept model's catalogue facts (spec -> {fact: value}, unknown facts left out)."""
    from vlbias.models.catalogue import _py

    models = store.query("SELECT * FROM models")
    out: dict[str, dict[str, Any]] = {}
    for row in models.to_dict("records"):
        out[row["model"]] = {k: v for k, v in ((k, _py(v)) for k, v in row.items()) if v is not None}
    return out


def zoo_analyses(store: ResultsStore, s: AnalysisSettings) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """The tables of every audit's own zoo analysis (``AuditSpec.zoo_analysis``), and their content warnings."""
    from vlbias.audits.base import AuditResult
    from vlbias.audits.registry import get_audit

    tables: dict[str, pd.DataFrame] = {}
    warnings: list[str] = []
    by_audit: dict[str, list[Path]] = {}
    for part in store.completed_parts():
        by_audit.setdefault(part.parent.name, []).append(part)
    facts = None
    for audit, parts in sorted(by_audit.items()):
        try:
            spec = get_audit(audit)
        except VlbiasError:
            continue
        if spec.zoo_analysis is None:
            continue
        runs = [AuditResult.read(part) for part in parts]
        facts = facts if facts is not None else model_fact_map(store)
        for name, table in spec.analyse_zoo(runs, facts, dict(s.compare)).items():
            tables[f"{audit}_{name}"] = table
        warnings += [r.content_warning for r in runs if r.content_warning]
    return tables, list(dict.fromkeys(warnings))


def _write_analysis_folder(
    out: Path,
    tables: dict[str, pd.DataFrame],
    summary: dict[str, Any],
    warnings: list[str],
    s: AnalysisSettings,
    plots: bool,
) -> None:
    """The tables as CSV, the plots, the content warnings and analysis.json, into the folder ``out``."""
    from vlbias.utils.io import write_json

    figures = []
    if plots and "mixed_model" in tables:
        mm = summary["mixed_model"]
        title = f"{s.effect} ~ upstream facts ({mm['n_obs']} rows, {mm['models']} models, {mm['n_groups']} groups)"
        figures.append(lambda: plot_coefficients(tables["mixed_model"], out / "mixed_model_coefficients.png", title))
    if plots and len(tables.get("bias_vs_accuracy_data", [])):
        figures.append(
            lambda: plot_bias_vs_accuracy(
                tables["bias_vs_accuracy_data"],
                tables["bias_vs_accuracy"],
                out / "bias_vs_accuracy.png",
                by=list(s.by),
                effect=s.effect,
                metric=s.metric,
            )
        )
    for draw in figures:
        try:
            draw()
        except NotDrawn as e:  # the tables are the analysis; a figure they cannot make is said, not fatal
            summary.setdefault("not_drawn", []).append(str(e))
    for name, table in tables.items():
        table.to_csv(out / f"{name}.csv", index=False)
    if warnings:
        (out / "CONTENT_WARNING.txt").write_text("\n\n".join(warnings) + "\n", encoding="utf-8")
    write_json(out / "analysis.json", json.loads(json.dumps(summary, default=str)))


def analyze(
    store: ResultsStore,
    out: Path | None,
    s: AnalysisSettings,
    plots: bool = True,
    overwrite: bool = False,
    catalogues=(),
) -> dict[str, Any]:
    """Run the analyses that the data allow; write tables (and plots); return a summary. ``out`` is written
    atomically under the output rule (an earlier analysis there is replaced only with ``overwrite``); without it, the
    sweep folder's own ``analysis/`` (whose tables the database also reads) is updated in place. The models' facts
    are refreshed first (:meth:`ResultsStore.refresh_model_facts`, with the ``catalogues`` files), so a catalogue
    made after the sweep counts."""
    from vlbias.utils.io import atomic_dir, check_out

    in_place = out is None
    out = Path(out) if out is not None else store.root / "analysis"
    if not in_place:
        check_out(out, "analysis", overwrite)
    refreshed = store.refresh_model_facts(catalogues=catalogues)
    tables: dict[str, pd.DataFrame] = {}
    summary: dict[str, Any] = {"audit": s.audit, "table": s.table, "effect": s.effect, "by": list(s.by)}
    if refreshed:
        summary["facts_refreshed"] = {m: f for m, f in refreshed.items() if f}
    if s.terms:
        summary["terms"] = list(s.terms)
    zoo_tables, warnings = zoo_analyses(store, s)
    have_bias_table = f"{s.audit}.{s.table}_with_models" in set(store.tables()["table"])
    if have_bias_table or not zoo_tables:
        df = load_results(store, s)  # the user error naming the tables there are, if there is nothing to analyse
        try:
            result, info = run_mixed_model(df, s)
        except VlbiasError as e:
            # the zoo may not separate the upstream facts (too few models, facts unknown): say so, and still run
            # the analyses that do not need the mixed model
            mixed_error: VlbiasError | None = e
            summary["mixed_model"] = f"not fitted: {e}"
        else:
            mixed_error = None
            tables["mixed_model"] = result.fixed
            tables["mixed_model_random_effects"] = result.random
            tables["mixed_model_scaling"] = result.scaling
            summary["mixed_model"] = {**result.summary(), **info}
        acc = accuracy_table(store, s)
        if len(acc):
            data, corr = bias_vs_accuracy(df, acc, s)
            tables["bias_vs_accuracy_data"] = data
            tables["bias_vs_accuracy"] = corr
            summary["bias_vs_accuracy"] = {
                "metric": s.metric,
                "models": int(data["model"].nunique()),
                "groups": int(len(corr) / 2),
                "significant_after_bh": int(corr["significant_bh"].sum()),
            }
        else:
            summary["bias_vs_accuracy"] = "no downstream accuracy: import it with `vlbias results import-accuracy`"
        if mixed_error is not None and not tables and not zoo_tables:
            raise mixed_error  # nothing at all could be analysed: the reason is the answer
    else:
        summary["mixed_model"] = f"no {s.audit}.{s.table} table in the database: the mixed model was not fitted"
    tables.update(zoo_tables)
    if warnings:
        summary["content_warning"] = warnings
    if in_place:
        out.mkdir(parents=True, exist_ok=True)
        _write_analysis_folder(out, tables, summary, warnings, s, plots)
    else:
        with atomic_dir(out, "analysis", overwrite) as tmp:
            _write_analysis_folder(tmp, tables, summary, warnings, s, plots)
    store.write_analysis(tables)
    store.ingest()
    summary["tables"] = tables
    summary["out"] = str(out)
    return summary
