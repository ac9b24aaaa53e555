"""The report's presentation of the social-perception audit: per dataset, the factor effects and variance shares
across models (forest plots, a table), each model's figures (drawn by :mod:`vlbias.plots.perception` from its
tables) and ranked dimensions on its page; and the scores, analyses and packaged words for the methods page."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd

from vlbias.plots.perception import DELTA_UNIT
from vlbias.report import blocks as B
from vlbias.report.assets import Figure
from vlbias.report.depth import LENS_NOTE, by_model, layers_text
from vlbias.report.fmt import data_label, interval, table
from vlbias.report.sections import Context, configurations, dataset_name, option_value, skipped_summary, stimuli_of
from vlbias.report.source import Run
from vlbias.stimuli.perception import load_lexicon, load_templates
from vlbias.utils.io import stable_hash
from vlbias.utils.provenance import kind_of, name_of

TITLE = "Perception"
DIMENSIONS = ("lighting", "pose", "smiling", "identity", "age", "gender", "race")
#: the figures of :func:`vlbias.plots.perception.draw_all` by file name: title, and what they show (skew and level
#: curve figures, one per grouping or attribute, are captioned from their names)
FIGURES = {
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
    "markedness": (
        "Unmarked groups",
        "share of images for which the neutral prompt is closer than the prompt "
        "naming the image's own group; 95% interval",
    ),
}


#: the tables each perception figure draws (by file name, or its prefix)
FIGURE_DATA = {
    "factor_effects": ("factor_pairs", "factor_effects"),
    "variance_shares": ("variance_shares",),
    "level_curves": ("level_means", "curve_grid", "extreme_groups"),
    "markedness": ("markedness",),
    "skew": ("skew",),
}


def _describe(csvs: dict[str, str]):
    """Caption a figure of the perception plots from its file name, with the CSVs of the tables it draws."""

    def describe(path: Path) -> Figure:
        if path.stem in FIGURES:
            title, caption = FIGURES[path.stem]
        elif path.stem.startswith("skew_"):
            title = f"Retrieval skew over {path.stem[5:].replace('_', ' ')}"
            caption = "MaxSkew@k of each word's ranking of a group-balanced image set; dashed: 95th percentile of "
            caption += "random rankings"
        elif path.stem.startswith("level_curves_"):
            title = f"Scale scores by {path.stem[13:]} level, per race × gender group"
            caption = "mean with 95% interval across identities; line: quadratic fit with its band"
        else:
            title, caption = path.stem.replace("_", " "), ""
        kind = next((k for k in FIGURE_DATA if path.stem.startswith(k)), None)
        data = [(t, csvs[t]) for t in FIGURE_DATA.get(kind, ()) if t in csvs]
        return Figure("", title, caption + ".", data)

    return describe


FIGURE_TABLES = tuple(dict.fromkeys(t for ts in FIGURE_DATA.values() for t in ts))


def section(ctx: Context, runs: list[Run]) -> list[B.Block]:
    out = [
        B.p(
            "Social perception of faces (Hausladen et al. 2025): each image's similarity to words of warmth, "
            f"competence and the ABC model, relative to a neutral prompt, in {DELTA_UNIT}; which attributes of a "
            "face move those scores, and how the scores change with age and smiling in each race × gender group."
        )
    ]
    for title, group in configurations(runs, lambda o: f"on {dataset_name(o.get('dataset'))}"):
        out.append(B.h2(f"Perception {title}", id=f"pe-{len(out)}"))
        shared: dict[str, str] = {}  # tables of every model in one file, which each model's figures link too
        fe = ctx.concat(group, "factor_effects")
        if len(fe):
            pooled = fe[fe["scale"] == "all scales"].copy()
            present = [d for d in DIMENSIONS if d in set(pooled["dimension"])]
            present += [d for d in dict.fromkeys(pooled["dimension"]) if d not in present]
            fcsv = shared["factor_effects"] = ctx.assets.data("perception-factor-effects", fe)
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
                            "xlabel": f"median |change| of the scale scores ({DELTA_UNIT}) within pairs of images "
                            "that differ in one dimension only; bars: 95% interval of the median",
                            "title": "Factor effects across models (all scales pooled)",
                        },
                        stem=f"perception-factors-{title}",
                        title="Factor effects across models",
                        caption="Each marker: one model's median absolute change of the scale scores when only that "
                        "dimension of the face changes (larger: the dimension moves social perception more).",
                        data=[("factor effects", fcsv)],
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
                        caption=f"Median |change| ({DELTA_UNIT}) [95% CI], all scales pooled",
                        csv=fcsv,
                    )
                )
            )
        vs = ctx.concat(group, "variance_shares")
        if len(vs):
            vcsv = shared["variance_shares"] = ctx.assets.data("perception-variance-shares", vs)
            out.append(
                B.figure(
                    ctx.assets.figure(
                        "vlbias.plots.forest:forest",
                        {
                            "df": vs,
                            "row": "attribute",
                            "series": "model_label",
                            "panel": "scale",
                            "est": "share_pct",
                            "low": "share_pct_ci_low",
                            "high": "share_pct_ci_high",
                            "ref": None,
                            "xlabel": "share of the scale score's explained variance (LMG, %); bars: 95% "
                            "cluster-bootstrap interval over identities",
                            "title": "What explains each scale score, across models",
                            "ncols": 4,
                            "width": 3.0,
                        },
                        stem=f"perception-variance-{title}",
                        title="Variance shares across models",
                        caption="Each attribute's share of the variance of each scale score that the face's "
                        "attributes explain, per model.",
                        data=[("variance shares", vcsv)],
                    )
                )
            )
        per_model = []
        for run in group:
            tabs = {n: run.tables[n] for n in FIGURE_TABLES if n in run.tables}
            csvs = {
                n: shared.get(n) or ctx.run_data(run, n, f"perception-{n}-{ctx.labels[run.model]}")
                for n, t in tabs.items()
                if len(t)
            }
            g = ctx.assets.group(
                "vlbias.plots.perception:draw_all",
                {"tables": tabs},
                folder=f"perception-{ctx.labels[run.model]}-{title}",
                describe=_describe(csvs),
                arg="out",
                name=f"perception figures of {run.model}",
            )
            res = run.tables.get("results")
            rcsv = ctx.run_data(run, "results", f"perception-{ctx.labels[run.model]}") if res is not None else None
            data = [B.bullets([B.Link(data_label("data: the run's results", rcsv), rcsv)])] if rcsv else []
            per_model.append(B.details(ctx.labels[run.model], [B.group(g), *data]))
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
                                    f"median |change| ({DELTA_UNIT}) [95% CI]": lambda r: interval(
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
        out += skipped_summary(ctx, group)
    return out


def _packaged_words(stimuli: list[dict[str, Any]]) -> list[B.Block]:
    """The words and templates of packaged lexicons and template sets, shown only where this vlbias's packaged copy
    has the content hash the run recorded (else the record's hash is all there is to go by)."""
    rows, lines = [], []
    for s in stimuli:
        kind, name = kind_of(s), name_of(s)
        if s.get("origin") != "package" or kind not in ("lexicon", "templates"):
            continue
        try:
            if kind == "lexicon":
                lex = load_lexicon(name)
                if stable_hash(lex.scales) == s.get("sha256"):
                    rows += [{"lexicon": name, "scale": k, "words": ", ".join(v)} for k, v in lex.scales.items()]
                    continue
            else:
                tpl = load_templates(name)
                if stable_hash(list(tpl.templates)) == s.get("sha256"):
                    lines.append(f"templates {name}: " + " | ".join(f"`{t}`" for t in tpl.templates))
                    continue
        except Exception:  # noqa: BLE001 - a set this vlbias no longer packages: the hash is the record
            pass
        lines.append(f"{kind} {name}: this vlbias packages a different version; the run's is identified by its hash")
    out = [B.bullets(lines)] if lines else []
    if rows:
        out.append(
            B.details(
                "Lexicon words per scale (verified against the recorded hashes)",
                [B.table(table(pd.DataFrame(rows), {"lexicon": "lexicon", "scale": "scale", "words": "words"}))],
                md=True,
            )
        )
    return out


def methods(ctx: Context, runs: list[Run]) -> list[B.Block]:
    o = {k: option_value(runs, k) for k in ("delta", "analyses", "pairs", "n_bootstrap", "n_random_rankings", "k")}
    conf, seed = option_value(runs, "confidence"), option_value(runs, "seed")
    return [
        B.p(
            "Each word is put into every template; an image's similarity to a word is its cosine similarity to "
            "each prompt, averaged over the templates. Delta = 100 (cos(image, word) − cos(image, neutral prompt)) "
            f"({o['delta']}); a scale's score is the mean Delta of its words. Analyses: {o['analyses']}; "
            f"{o['pairs']} random pairs per dimension for the factor effects; {o['n_bootstrap']} cluster-bootstrap "
            f"resamples of identities; {o['n_random_rankings']} random rankings for the skew null; k = {o['k']}; "
            f"confidence {conf}; seed {seed} for every random draw."
        ),
        *_packaged_words(stimuli_of(runs)),
    ]


def headline(ctx: Context, runs: list[Run]) -> list[B.Block]:
    """Per model and dataset, the dimension that moves social perception most (the pooled factor effect ranked
    first, with its interval); without factor effects (an observational dataset), the attribute that explains the
    largest share of the scale scores' variance, averaged over the scales."""
    factors, shares = [], []
    for run in runs:
        base = {"model": ctx.labels.get(run.model, run.model), "dataset": dataset_name(run.dataset)}
        fe = run.tables.get("factor_effects") if "factor_effects" in run.tables else None
        if fe is not None and len(fe):
            pooled = fe[fe["scale"] == "all scales"].sort_values("rank")
            if len(pooled):
                first = pooled.iloc[0]
                factors.append(
                    {
                        **base,
                        "dimension": first["dimension"],
                        "median": first["median"],
                        "median_ci_low": first.get("median_ci_low"),
                        "median_ci_high": first.get("median_ci_high"),
                        "second": pooled.iloc[1]["dimension"] if len(pooled) > 1 else "",
                    }
                )
                continue
        vs = run.tables.get("variance_shares") if "variance_shares" in run.tables else None
        if vs is not None and len(vs):
            mean = vs.groupby("attribute", sort=False)["share_pct"].mean().sort_values(ascending=False)
            shares.append({**base, "attribute": mean.index[0], "mean_share_pct": mean.iloc[0]})
    out: list[B.Block] = []
    if factors:
        df = pd.DataFrame(factors)
        out.append(
            B.table(
                table(
                    df,
                    {
                        "model": "model",
                        "dataset": "dataset",
                        "top factor": "dimension",
                        f"median |change| ({DELTA_UNIT}) [95% CI]": lambda r: interval(
                            r["median"], r["median_ci_low"], r["median_ci_high"], lambda v: f"{float(v):.2f}"
                        ),
                        "second": "second",
                    },
                    caption="The dimension whose change alone moves the scale scores most (all scales pooled)",
                    csv=ctx.assets.data("perception-headline-factors", df),
                    limit=12,
                )
            )
        )
    if shares:
        df = pd.DataFrame(shares)
        out.append(
            B.table(
                table(
                    df,
                    {
                        "model": "model",
                        "dataset": "dataset",
                        "top attribute": "attribute",
                        "mean share of explained variance": lambda r: f"{float(r['mean_share_pct']):.1f}%",
                    },
                    caption="Runs without factor effects (an observational dataset): the attribute that explains the "
                    "largest share of the scale scores' variance (LMG, the mean over the scales; intervals per scale "
                    "on the perception page)",
                    csv=ctx.assets.data("perception-headline-variance", df),
                    limit=12,
                )
            )
        )
    return out


def depth(ctx: Context, runs: list[Run]) -> list[B.Block]:
    """Factor effects over depth: per model read at several layers, one curve per face dimension."""
    out = [
        B.h2("Perception over depth", id="pe-depth"),
        B.p(
            "Each model read at several layers: how much each attribute of a face moves its social-perception "
            f"scores ({DELTA_UNIT}, all scales pooled) at each layer, with the median's interval as a band. "
            + LENS_NOTE
        ),
    ]
    for title, group in configurations(runs, lambda o: f"on {dataset_name(o.get('dataset'))}"):
        for model, reading, mine in by_model(group):
            fe = ctx.concat(mine, "factor_effects")
            if fe.empty or "layer" not in fe.columns:
                continue
            label = ctx.labels.get(model, model)
            csv = ctx.assets.data(f"perception-depth-{label}", fe)
            fig = ctx.assets.figure(
                "vlbias.plots.depth:perception_depth",
                {"factor_effects": fe, "model": label},
                stem=f"perception-depth-{label}-{title}",
                title=f"{label}: factor effects over depth {title} ({layers_text(mine)}, {reading})",
                caption="One curve per dimension: the median absolute change of the scale scores within pairs of "
                "images that differ in that dimension only, at each layer; band: 95% interval of the median.",
                data=[("factor effects by layer", csv)],
            )
            out.append(B.figure(fig))
            ctx.add(model, B.h2(f"Perception over depth {title}", id=f"pe-depth-{label}"), B.figure(fig))
    return out
