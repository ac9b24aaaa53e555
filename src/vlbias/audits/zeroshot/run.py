"""Running the zero-shot audit, and comparing several models' runs (see :mod:`vlbias.audits.zeroshot`)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from vlbias.audits.base import AuditResult, RunRecord, encode_dataset_images
from vlbias.audits.zeroshot.options import ZeroshotOptions
from vlbias.datasets.base import GENDERS, RACES, FaceDataset, crop_text
from vlbias.errors import VlbiasError
from vlbias.stats.bootstrap import percentile_interval
from vlbias.stats.groups import compare_levels, group_means
from vlbias.stimuli.zeroshot import (
    CONTENT_WARNING,
    Protocol,
    Task,
    comparison_settings,
    custom_protocol,
    load_protocol,
    model_facts,
)
from vlbias.utils.io import stable_hash
from vlbias.utils.names import column_names
from vlbias.utils.options import whole_number
from vlbias.utils.provenance import entry, of_kind

GROUP_ORDERS = {
    "race": list(RACES),
    "gender": list(GENDERS),
    "race_binary": ["white", "non-white"],
    "age_group": ["0-2", "3-9", "10-19", "20-29", "30-39", "40-49", "50-59", "60-69", "more than 70"],
    # FACET's perceived attributes (vlbias.datasets.facet)
    "gender_presentation": ["masc", "fem", "non_binary"],
    "skin_tone_group": ["lighter", "medium", "darker"],
    "age_presentation": ["young", "middle", "older"],
}


# ---------------------------------------------------------------------------------------------------- resolving
def _dataset(opts: ZeroshotOptions) -> FaceDataset:
    if opts.dataset is None:
        raise VlbiasError(
            "the zeroshot audit needs a dataset: NAME:PATH, e.g. cfd:/data/CFD or fairface:/data/FairFace"
        )
    return opts.dataset.load()


def resolve_protocol(opts: ZeroshotOptions, dataset_name: str | None) -> Protocol:
    group_by = [list(g) for g in opts.group_by] if opts.group_by else None
    if opts.classes:
        proto = custom_protocol(
            opts.classes,
            opts.templates,
            dataset=dataset_name,
            group_by=group_by,
            article=opts.article or "grammatical",
        )
    else:
        proto = load_protocol(opts.protocol).with_overrides(group_by=group_by, article=opts.article)
    return proto.for_dataset(dataset_name)


def _scale(opts: ZeroshotOptions, encoder) -> tuple[float, str]:
    if opts.scale == "model":
        scale = encoder.info.logit_scale
        if scale is None:
            raise VlbiasError(f"{encoder.spec} has no logit scale; use --scale 100 (the published protocols' scale)")
        return float(scale), "model"
    return float(opts.scale), "fixed"


# ---------------------------------------------------------------------------------------------------- scoring
def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def class_embeddings(task: Task, prompt_vectors: dict[str, np.ndarray], mode: str) -> list[tuple[str, np.ndarray]]:
    """[(template label, (C, d) class embeddings)]: one entry (ensemble) or one per template (each)."""
    prompts = task.prompts()
    if mode == "each":
        out = []
        for i, label in enumerate(task.template_list()):
            out.append((label, np.stack([prompt_vectors[prompts[c][i]] for c in task.classes])))
        return out
    rows = []
    for c in task.classes:
        v = np.mean([prompt_vectors[p] for p in prompts[c]], axis=0, dtype=np.float64)
        rows.append(v / np.linalg.norm(v))
    templates = task.template_list()
    label = templates[0] if len(templates) == 1 else f"ensemble of {len(templates)} templates"
    return [(label, np.stack(rows))]


def _truth(task: Task, table: pd.DataFrame) -> tuple[pd.Series | None, str]:
    """The true class per row (None where unknown) and the scoring rule, or (None, reason)."""
    if not task.truth:
        return None, ""
    missing = [c for c in task.truth if c not in table.columns]
    if missing:
        return None, f"task {task.name}: the dataset has no column {', '.join(missing)}, so no accuracy"
    raw = table[list(task.truth)]
    keys = [
        "/".join(str(v) for v in row) if all(pd.notna(v) for v in row) else None for row in raw.itertuples(index=False)
    ]
    labels = task.truth_labels or {}
    truth = pd.Series([labels.get(k, k) if k is not None else None for k in keys], index=table.index, dtype=object)
    if task.binary:
        return truth, f"{task.binary} vs not {task.binary}"
    return truth.where(truth.isin(task.classes), None), "exact"


def _ordered(table: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    out = {}
    for c in cols:
        s = table[c]
        if c in GROUP_ORDERS:
            extra = sorted({str(v) for v in s.dropna()} - set(GROUP_ORDERS[c]))
            s = pd.Categorical(
                s.astype(object).where(s.notna(), None), categories=GROUP_ORDERS[c] + extra, ordered=True
            )
        out[c] = s
    return pd.DataFrame(out, index=table.index)


def label_values(
    top: np.ndarray,
    probs: np.ndarray,
    classes: list[str],
    categories: dict[str, tuple[str, ...]],
    pool: str = "sum",
) -> tuple[np.ndarray, list[str], list[str]]:
    """Per image, the top-1 indicator of each class and category, then the probability of each (n x 2L).

    A category (e.g. crime-related) counts an image whose top-1 class is any of its members; its probability pools
    the members' probabilities by ``pool``: ``sum``, the probability that the label is any of them (vlbias's), or
    ``mean``, their average (Birhane et al.'s "criminal or suspicious person": the mean of the two classes' pooled
    probabilities; with two members exactly half the sum). Returns the values, the L labels and their kinds
    (class or category).
    """
    cats = {name: [classes.index(m) for m in members if m in classes] for name, members in categories.items()}
    cats = {name: idx for name, idx in cats.items() if idx}
    labels = list(classes) + list(cats)
    n, c = len(top), len(classes)
    ind = np.zeros((n, len(labels)))
    ind[np.arange(n), top] = 1.0
    pr = np.zeros((n, len(labels)))
    pr[:, :c] = probs
    for k, idx in enumerate(cats.values()):
        ind[:, c + k] = ind[:, idx].sum(axis=1)
        pr[:, c + k] = probs[:, idx].sum(axis=1) if pool == "sum" else probs[:, idx].mean(axis=1)
    return np.concatenate([ind, pr], axis=1), labels, ["class"] * c + ["category"] * len(cats)


def _group_values(stats, g: int) -> dict[str, Any]:
    row = stats.groups.iloc[g]
    cols = [c for c in stats.group_columns if c != "group"]  # "group" is group_means' name for no grouping
    return {c: row[c] for c in cols} | {"n_images": int(row["n"]), "n_people": int(row["n_clusters"])}


def _summary_rows(stats, base: dict, labels: list[str], kinds: list[str]) -> list[dict]:
    """One row per group and label: counts, top-1 share (%) and mean probability, each with its interval."""
    low, high = stats.interval()
    n_labels = len(labels)
    rows = []
    for g, group in enumerate(stats.labels()):
        for k, label in enumerate(labels):
            rows.append(
                {
                    **base,
                    "group": group,
                    **_group_values(stats, g),
                    "label": label,
                    "kind": kinds[k],
                    "top1_pct": stats.estimate[g, k] * 100,
                    "top1_pct_low": low[g, k] * 100,
                    "top1_pct_high": high[g, k] * 100,
                    "mean_prob": stats.estimate[g, n_labels + k],
                    "mean_prob_low": low[g, n_labels + k],
                    "mean_prob_high": high[g, n_labels + k],
                }
            )
    return rows


def _disparity_rows(stats, base: dict, labels: list[str], kinds: list[str]) -> pd.DataFrame:
    """Largest minus smallest group per label, for the top-1 share (percentage points) and the mean probability."""
    d = stats.disparity()
    if d.empty:
        return d
    n_labels = len(labels)
    d["label"] = labels * 2
    d["kind"] = kinds * 2
    d["metric"] = ["top1_pct"] * n_labels + ["mean_prob"] * n_labels
    for col in ("max", "min", "difference", "difference_low", "difference_high"):
        d.loc[d["metric"] == "top1_pct", col] *= 100
    return d.drop(columns="value").assign(**base)


def _accuracy_rows(acc, base: dict) -> list[dict]:
    low, high = acc.interval()
    return [
        {
            **base,
            "group": group,
            **_group_values(acc, g),
            "accuracy_pct": acc.estimate[g, 0] * 100,
            "accuracy_pct_low": low[g, 0] * 100,
            "accuracy_pct_high": high[g, 0] * 100,
        }
        for g, group in enumerate(acc.labels())
    ]


RECALL_GAP_COLUMNS = [
    "task", "template", "grouping", "class", "contrast", "group_a", "group_b", "n_people_a", "n_people_b",
    "recall_a", "recall_b", "disparity", "disparity_low", "disparity_high",
]  # fmt: skip


def class_recall(
    task: Task,
    truth: pd.Series,
    correct: np.ndarray,
    table: pd.DataFrame,
    grouping: list[str],
    base: dict[str, Any],
    *,
    n_bootstrap: int,
    confidence: float,
    seed: int,
) -> tuple[list[dict], list[dict]]:
    """Per class of ``task``: its recall in each group of ``grouping`` (the share of the class's images whose top-1
    class is the class, in %) with a cluster-bootstrap interval over people, and the recall disparities of the
    task's contrasts for the grouping (recall of the first group minus the second's, in percentage points, FACET's
    disparity; without contrasts, the highest group minus the lowest), their intervals from the same replicates.
    A contrast is left out (said in the disparity table's absence) when a group has fewer than ``min_people``."""
    spec = task.recall
    rows, gaps = [], []
    truth_values = truth.to_numpy()
    for cls in task.classes:
        sel = np.flatnonzero(truth_values == cls)
        if not len(sel):
            continue
        sub = table.iloc[sel]
        gframe = _ordered(sub, grouping) if grouping else None
        stats = group_means(
            correct[sel], gframe, sub["identity"], n_bootstrap=n_bootstrap, confidence=confidence, seed=seed
        )
        if not len(stats.groups):
            continue
        low, high = stats.interval()
        labels = stats.labels()
        for g, group in enumerate(labels):
            rows.append(
                {
                    **base,
                    "class": cls,
                    "group": group,
                    **_group_values(stats, g),
                    "recall_pct": stats.estimate[g, 0] * 100,
                    "recall_pct_low": low[g, 0] * 100,
                    "recall_pct_high": high[g, 0] * 100,
                }
            )
        if len(grouping) != 1 or len(labels) < 2:
            continue
        people = stats.groups["n_clusters"].to_numpy()
        index = {lab: g for g, lab in enumerate(labels)}
        pairs = spec.contrasts.get(grouping[0])
        if pairs is None:  # no named contrasts: the highest group against the lowest
            est = stats.estimate[:, 0]
            pairs, kind = ((labels[int(np.argmax(est))], labels[int(np.argmin(est))]),), "max-min"
        else:
            kind = "named"
        for a, b in pairs:
            if a not in index or b not in index:
                continue
            ga, gb = index[a], index[b]
            if min(people[ga], people[gb]) < spec.min_people:
                continue
            diff = (stats.replicates[:, ga, 0] - stats.replicates[:, gb, 0])[:, None] * 100
            lo, hi = percentile_interval(diff, confidence)
            gaps.append(
                {
                    **base,
                    "class": cls,
                    "contrast": kind,
                    "group_a": a,
                    "group_b": b,
                    "n_people_a": int(people[ga]),
                    "n_people_b": int(people[gb]),
                    "recall_a": stats.estimate[ga, 0] * 100,
                    "recall_b": stats.estimate[gb, 0] * 100,
                    "disparity": (stats.estimate[ga, 0] - stats.estimate[gb, 0]) * 100,
                    "disparity_low": float(lo[0]),
                    "disparity_high": float(hi[0]),
                }
            )
    return rows, gaps


# ---------------------------------------------------------------------------------------------------- the audit
def run(encoder, opts: ZeroshotOptions) -> AuditResult:
    n_bootstrap, confidence, seed = opts.n_bootstrap, opts.confidence, opts.seed
    encoder._require("text")
    encoder._require("image")
    dataset = _dataset(opts)
    protocol = resolve_protocol(opts, dataset.name)
    table = dataset.table.copy()
    table["race_binary"] = np.where(
        table["race"] == "white", "white", np.where(table["race"].notna(), "non-white", None)
    )
    table["race_binary"] = table["race_binary"].astype(object).where(table["race"].notna(), None)
    for task in protocol.tasks:
        for grouping in task.group_by:
            bad = [c for c in grouping if c not in table.columns]
            if bad:
                cols = ", ".join(c for c in table.columns if c not in ("path", "key"))
                raise VlbiasError(
                    f"{dataset.name} has no column {', '.join(map(repr, bad))} to group by; its columns: {cols}"
                )

    # texts: every prompt of every task, embedded once
    prompts = {t.name: t.prompts() for t in protocol.tasks}
    unique = list(dict.fromkeys(p for tp in prompts.values() for ps in tp.values() for p in ps))
    text_vecs = encoder.encode_texts(unique)
    prompt_vectors = dict(zip(unique, text_vecs.astype(np.float64)))

    # images: from the cache where possible
    ok, image_vecs, skipped_images = encode_dataset_images(encoder, dataset, table, opts.skip_bad_images)
    scale, scale_kind = _scale(opts, encoder)
    skipped = [dataset.report.as_frame()]
    if len(skipped_images):
        skipped.append(skipped_images)
    table = table[ok].reset_index(drop=True)
    if not len(table):
        raise VlbiasError(f"no image of {dataset.spec} could be encoded")

    image_rows, summary, accuracy, disparity, notes = [], [], [], [], []
    recall, recall_gaps = [], []
    if protocol.datasets and dataset.name not in protocol.datasets:
        notes.append(f"protocol {protocol.name} was published on {', '.join(protocol.datasets)}, not {dataset.name}")
    keep_cols = [c for c in table.columns if c != "path"]
    for task in protocol.tasks:
        truth, scoring = _truth(task, table)
        if truth is None and scoring:
            notes.append(scoring)
        groupings = [list(g) for g in task.group_by] + [[]]
        for template, class_vecs in class_embeddings(task, prompt_vectors, opts.template_mode):
            cos = image_vecs @ class_vecs.T
            probs = softmax(scale * cos)
            top = cos.argmax(axis=1)
            classes = list(task.classes)
            top1 = np.array(classes, dtype=object)[top]
            rows = table[keep_cols].copy()
            if "crop" in rows.columns:
                rows["crop"] = [crop_text(c) for c in rows["crop"]]
            rows.insert(0, "task", task.name)
            rows.insert(1, "template", template)
            rows["top1"] = top1
            rows["top1_prob"] = probs[np.arange(len(top)), top]
            correct = None
            if truth is not None:
                rows["truth"] = truth.to_numpy()
                known = truth.notna().to_numpy()
                if task.binary:
                    is_b = truth.to_numpy() == task.binary
                    correct = np.where(known, (top1 == task.binary) == is_b, np.nan)
                else:
                    correct = np.where(known, top1 == truth.to_numpy(), np.nan)
                rows["correct"] = pd.array(np.where(known, correct == 1, None), dtype="boolean")
            for j, col in enumerate(column_names(classes, "p_")):  # p_suspicious_person: no quoting needed
                rows[col] = probs[:, j]
            image_rows.append(rows)

            values, labels, kinds = label_values(top, probs, classes, task.categories, opts.category_probability)
            for grouping in groupings:
                base = {"task": task.name, "template": template, "grouping": "+".join(grouping) or "all"}
                gframe = _ordered(table, grouping) if grouping else None
                stats = group_means(
                    values, gframe, table["identity"], n_bootstrap=n_bootstrap, confidence=confidence, seed=seed
                )
                if not len(stats.groups):
                    notes.append(f"task {task.name}: no image has a value for {', '.join(grouping)}; grouping left out")
                    continue
                summary += _summary_rows(stats, base, labels, kinds)
                disparity.append(_disparity_rows(stats, base, labels, kinds))
                if correct is not None and not np.isnan(correct).all():
                    known = ~np.isnan(correct)
                    gsub = _ordered(table[known], grouping) if grouping else None
                    acc = group_means(
                        correct[known],
                        gsub,
                        table["identity"][known],
                        n_bootstrap=n_bootstrap,
                        confidence=confidence,
                        seed=seed,
                    )
                    accuracy += _accuracy_rows(acc, {**base, "scoring": scoring})
                    if grouping and len(acc.groups) > 1:
                        d = acc.disparity(scale=100).drop(columns="value")
                        disparity.append(d.assign(label="correct", kind="accuracy", metric="accuracy_pct", **base))
                if task.recall is not None and correct is not None:
                    r, g = class_recall(
                        task,
                        truth,
                        correct,
                        table,
                        grouping,
                        base,
                        n_bootstrap=n_bootstrap,
                        confidence=confidence,
                        seed=seed,
                    )
                    recall += r
                    recall_gaps += g

    tables = {
        "results": _front(pd.DataFrame(summary), ["task", "template", "grouping", "group"]),
        "images": pd.concat(image_rows, ignore_index=True),
        "disparity": _front(
            pd.concat(disparity, ignore_index=True) if disparity else pd.DataFrame(),
            ["task", "template", "grouping", "metric", "label", "kind"],
        ),
        "prompts": pd.DataFrame(
            [
                {"task": t.name, "class": c, "template": tpl, "prompt": p}
                for t in protocol.tasks
                for c, ps in prompts[t.name].items()
                for tpl, p in zip(t.template_list(), ps)
            ]
        ),
    }
    if accuracy:
        tables["accuracy"] = _front(pd.DataFrame(accuracy), ["task", "template", "grouping", "group"])
    if recall:
        tables["recall"] = pd.DataFrame(recall)
        tables["recall_disparity"] = pd.DataFrame(recall_gaps, columns=RECALL_GAP_COLUMNS)
    if notes:
        skipped.append(pd.DataFrame([{"item": n, "reason": "notes"} for n in dict.fromkeys(notes)]))
    record = RunRecord(
        audit="zeroshot",
        model=encoder.record(),
        options=opts.to_dict(),
        seed=seed,
        resolved={"protocol": protocol.name, "scale": scale, "scale_kind": scale_kind, "dataset_options": dataset.options},
        stimuli=[
            dataset.provenance(len(table)),
            entry(
                "protocol",
                protocol.name,
                version=protocol.version,
                source=protocol.source,
                citation=protocol.citation,
                tasks=[t.describe() for t in protocol.tasks],
            ),
        ],
    )
    return AuditResult(
        audit="zeroshot",
        tables=tables,
        record=record,
        skipped=pd.concat(skipped, ignore_index=True),
        content_warning=CONTENT_WARNING if protocol.offensive else None,
    )


def _front(df: pd.DataFrame, first: list[str]) -> pd.DataFrame:
    if df.empty:
        return df
    cols = [c for c in first if c in df.columns]
    return df[cols + [c for c in df.columns if c not in cols]]


# ---------------------------------------------------------------------------------------------------- comparing models
def compare_runs(
    runs: list[AuditResult],
    *,
    by: str,
    baseline: str | None = None,
    pair_by: str | None = None,
    within: str | None = None,
    facts: dict[str, dict[str, Any]] | None = None,
    n_bootstrap: int = 2000,
    confidence: float = 0.95,
    seed: int | None = 0,
) -> AuditResult:
    """Compare zero-shot runs of several models (one protocol, one dataset), models grouped by the fact ``by``.

    Per task, template, grouping, group and label: the mean over the models of each level minus the mean over the
    ``baseline`` level's models, in percentage points, for the top-1 share and the mean probability, with
    cluster-bootstrap intervals over people (the same resampled people for every model); ``mean`` and
    ``baseline_mean`` are the two means (percent). How models of different kinds are set against each other:

    - neither: all the level's models against all the baseline's;
    - ``pair_by`` (e.g. ``architecture``): differences are taken within each value present at both levels and
      averaged into one, so the models compared differ in ``by`` alone (models whose value is not at both levels
      are left out);
    - ``within`` (e.g. ``family``): one comparison per value, each the mean over that value's models at the level
      minus the mean over its models at the baseline, with as many models on either side as there are (Birhane et
      al.'s comparison per architecture family); the value is a column named after the fact.

    Facts come from ``facts`` (model spec -> {fact: value}), else from the named model sets.
    """

    if seed is not None:
        seed = whole_number("zeroshot-compare", "seed", seed)
    if pair_by and within:
        raise VlbiasError(
            f"give pair_by or within, not both (pair_by={pair_by} averages the differences within each value into "
            f"one; within={within} reports one comparison per value)"
        )
    if len(runs) < 2:
        raise VlbiasError("a comparison needs the outputs of at least two runs")
    specs = [r.record.model.get("spec") for r in runs]
    for r, spec in zip(runs, specs):
        if r.audit != "zeroshot" or "images" not in r.tables:
            raise VlbiasError(f"the run of {spec} is not a zeroshot audit output; compare zeroshot runs only")
    if len(set(specs)) != len(specs):
        dup = sorted({s for s in specs if specs.count(s) > 1})
        raise VlbiasError(f"model {dup[0]} appears in two runs; give each model's run once")
    for key in ("protocol", "dataset"):
        seen = {next((e.get("version"), e.get("name")) for e in of_kind(r.record.stimuli, key)) for r in runs}
        if len(seen) != 1:
            raise VlbiasError(
                f"the runs used different {key}s ({', '.join(sorted(str(x[1]) for x in seen))}); compare runs of one protocol on one dataset"
            )
    for option, default, what in (("scale", None, "scales"), ("category_probability", "sum", "category poolings")):
        used = {r.record.options.get(option, default) for r in runs}  # older records lack category_probability
        if len(used) != 1:
            raise VlbiasError(
                f"the runs used different {what} ({', '.join(map(str, sorted(used, key=str)))}); rerun with one "
                f"{option}"
            )
    pool = runs[0].record.options.get("category_probability", "sum")

    facts = facts or {}

    def fact(spec: str, name: str):
        value = facts.get(spec, {}).get(name, model_facts(spec).get(name))
        if value is None or (isinstance(value, float) and np.isnan(value)):
            raise VlbiasError(
                f"no {name!r} known for model {spec}; give it in a --models-meta CSV (columns model,{name})"
            )
        return str(value)

    levels = [fact(s, by) for s in specs]
    keys = [fact(s, pair_by) for s in specs] if pair_by else None
    if len(set(levels)) < 2:
        raise VlbiasError(f"all runs have {by} = {levels[0]!r}; a comparison needs models at two levels of {by}")
    if baseline is None:
        baseline = sorted(set(levels))[0]
    elif baseline not in levels:
        raise VlbiasError(f"baseline {baseline!r} is no model's {by}; levels: {', '.join(sorted(set(levels)))}")
    if keys is not None:
        base_keys = {k for k, lv in zip(keys, levels) if lv == baseline}
        paired_levels = {lv for k, lv in zip(keys, levels) if lv != baseline and k in base_keys}
        unmatched = sorted(set(levels) - {baseline} - paired_levels)
        if unmatched:
            raise VlbiasError(
                f"no {pair_by} of the {by} level(s) {', '.join(unmatched)} is also at the baseline {baseline!r}; "
                f"add runs of those models, or compare without --pair-by"
            )
    # the slices compared on their own: every model, or the models of each value of `within`
    notes: list[str] = []
    if within:
        values_of = [fact(s, within) for s in specs]
        slices = []
        for value in dict.fromkeys(values_of):
            units = [u for u, v in enumerate(values_of) if v == value]
            at = {levels[u] for u in units}
            if baseline in at and len(at) > 1:
                slices.append((value, units))
            else:
                why = f"no model at the baseline {baseline!r}" if baseline not in at else f"models at {baseline!r} only"
                notes.append(f"{within} {value}: {why}; not compared")
        if not slices:
            raise VlbiasError(
                f"no {within} has models at the baseline {baseline!r} and at another {by}; add runs of those models, "
                f"or compare without --within"
            )
    else:
        slices = [(None, list(range(len(runs))))]

    tasks = {t["name"]: t for t in of_kind(runs[0].record.stimuli, "protocol")[0].get("tasks", [])}
    images = [r.tables["images"] for r in runs]
    common = set.intersection(*(set(df["key"]) for df in images))
    dropped = sorted(set.union(*(set(df["key"]) for df in images)) - common)
    rows, model_rows = [], []
    first = images[0]
    for (task_name, template), _ in first.groupby(["task", "template"], sort=False):
        subs = [
            df[(df["task"] == task_name) & (df["template"] == template) & df["key"].isin(common)].sort_values("key")
            for df in images
        ]
        if any(len(s) != len(subs[0]) for s in subs) or not len(subs[0]):
            continue
        base_rows = subs[0].reset_index(drop=True)
        info = tasks.get(task_name, {})
        classes = info.get("classes") or [c[2:] for c in base_rows.columns if c.startswith("p_")]
        categories = info.get("categories") or {}
        vals = []
        for sub in subs:
            top = pd.Categorical(sub["top1"], categories=classes).codes
            probs = sub[column_names(classes, "p_")].to_numpy(dtype=np.float64)
            v, labels, kinds = label_values(top, probs, classes, categories, pool)
            vals.append(v)
        values = np.stack(vals)
        names = [f"top1_pct|{lab}" for lab in labels] + [f"mean_prob|{lab}" for lab in labels]
        groupings = [list(g) for g in info.get("group_by", [])] + [[]]
        for grouping in groupings:
            if any(c not in base_rows.columns for c in grouping):
                continue
            gframe = _ordered(base_rows, grouping) if grouping else None
            for value, units in slices:
                unit_levels = [levels[u] for u in units]
                unit_keys = [keys[u] for u in units] if keys is not None else None
                diff, stats = compare_levels(
                    values[units],
                    unit_levels,
                    gframe,
                    base_rows["identity"],
                    baseline=baseline,
                    value_names=names,
                    pairs=unit_keys,
                    scale=100,
                    n_bootstrap=n_bootstrap,
                    confidence=confidence,
                    seed=seed,
                )
                if diff.empty:
                    continue
                means = _level_means(stats.estimate, unit_levels, unit_keys, baseline)
                g_index = {lab: g for g, lab in enumerate(stats.labels())}
                k_index = {name: k for k, name in enumerate(names)}
                at = [(g_index[g], k_index[v]) for g, v in zip(diff["group"], diff["value"])]
                diff["mean"] = [means[lv][0][g, k] * 100 for lv, (g, k) in zip(diff["level"], at)]
                diff["baseline_mean"] = [means[lv][1][g, k] * 100 for lv, (g, k) in zip(diff["level"], at)]
                metric_label = diff["value"].str.split("|", n=1, expand=True)
                diff.insert(0, "task", task_name)
                diff.insert(1, "template", template)
                diff.insert(2, "grouping", "+".join(grouping) or "all")
                if within:
                    diff.insert(diff.columns.get_loc("baseline") + 1, within, value)
                diff["metric"] = metric_label[0].to_numpy()
                diff["label"] = metric_label[1].to_numpy()
                diff["kind"] = diff["label"].map(dict(zip(labels, kinds)))
                rows.append(diff.drop(columns="value"))
                frame = stats.frame()
                unit_value = frame["value"].str.split("|", n=2, expand=True)
                frame = frame.rename(columns={"n": "n_images", "n_clusters": "n_people"})
                frame["run_model"] = [specs[units[int(u)]] for u in unit_value[0]]
                frame[by] = [levels[units[int(u)]] for u in unit_value[0]]
                if within:
                    frame[within] = value
                frame["metric"] = unit_value[1].to_numpy()
                frame["label"] = unit_value[2].to_numpy()
                pct = frame["metric"] == "top1_pct"
                for col in ("estimate", "low", "high"):
                    frame.loc[pct, col] *= 100
                frame.insert(0, "task", task_name)
                frame.insert(1, "template", template)
                frame.insert(2, "grouping", "+".join(grouping) or "all")
                frame["group"] = np.repeat(stats.labels(), len(stats.values))
                model_rows.append(frame.drop(columns="value"))
    if not rows:
        raise VlbiasError("the runs share no task and image set to compare")
    comparison = pd.concat(rows, ignore_index=True)
    per_model = pd.concat(model_rows, ignore_index=True)
    identities = [r.record.model.get("identity") for r in runs]
    record = RunRecord(
        audit="zeroshot-compare",
        model={"spec": f"{len(runs)} models", "identity": stable_hash(sorted(map(str, identities))), "models": specs},
        options={
            "by": by,
            "baseline": baseline,
            "pair_by": pair_by,
            "within": within,
            "levels": dict(zip(specs, levels)),
            "category_probability": pool,
            "n_bootstrap": n_bootstrap,
            "confidence": confidence,
        },
        seed=seed,
        stimuli=list(runs[0].record.stimuli),
    )
    skipped = pd.DataFrame(
        [{"item": k, "reason": "image not in every run"} for k in dropped]
        + [{"item": n, "reason": "notes"} for n in notes],
        columns=["item", "reason"],
    )
    return AuditResult(
        audit="zeroshot-compare",
        tables={"results": comparison, "models": per_model},
        record=record,
        skipped=skipped,
        content_warning=next((r.content_warning for r in runs if r.content_warning), None),
    )


def _level_means(
    estimate: np.ndarray, levels: list[str], keys: list[str] | None, baseline: str
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per level other than the baseline, its mean and the baseline's (each G x K) as
    :func:`~vlbias.stats.groups.compare_levels` sets them against each other (their difference is its estimate):
    the means over the units, or with ``keys`` the means over the keys at both levels of the mean within each key."""
    m = len(levels)
    est = estimate.reshape(estimate.shape[0], m, -1)
    base_units = [u for u in range(m) if levels[u] == baseline]
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for level in dict.fromkeys(levels):
        if level == baseline:
            continue
        units = [u for u in range(m) if levels[u] == level]
        if keys is None:
            out[level] = est[:, units].mean(axis=1), est[:, base_units].mean(axis=1)
            continue
        shared = [k for k in dict.fromkeys(keys[u] for u in units) if any(keys[b] == k for b in base_units)]

        def per_key(us: list[int], shared=shared) -> np.ndarray:
            return np.mean([est[:, [u for u in us if keys[u] == k]].mean(axis=1) for k in shared], axis=0)

        if shared:
            out[level] = per_key(units), per_key(base_units)
    return out


def zoo_compare(runs: list[AuditResult], facts: dict[str, dict[str, Any]], options: dict[str, Any]) -> dict:
    """The grouped model comparison (:func:`compare_runs`) across a sweep's zoo, for `vlbias analyze`.

    The runs of one protocol on one dataset (the same options) are compared by the model fact ``by``, against
    ``baseline``, paired by ``pair_by`` or compared within each value of ``within`` (:func:`compare_runs`): the
    options given, else the ``compare:`` defaults of the named model set that lists every compared model (the
    ``birhane2024`` set: by pretraining data, within each architecture family, as the study), else ``by``
    ``pretraining_dataset`` alone. ``n_bootstrap``, ``confidence`` and ``seed`` are the audits' options of those
    names. Models whose fact is unknown are left out, and a comparison that cannot be made is reported in
    ``comparison_notes`` instead of stopping.
    """
    groups: dict[str, list[AuditResult]] = {}
    for r in runs:
        key = {k: v for k, v in r.record.options.items() if k not in ("scale",)}
        groups.setdefault(json.dumps(key, sort_keys=True, default=str), []).append(r)
    found: dict[str, list[pd.DataFrame]] = {"comparison": [], "comparison_models": []}
    notes = []
    for key, group in groups.items():
        opts = json.loads(key)
        where = f"protocol {opts.get('protocol')} on {opts.get('dataset')}"
        specs = [r.record.model.get("spec") for r in group]
        settings = comparison_settings(specs, options, by="pretraining_dataset")
        by = settings["by"]

        def known(r: AuditResult, by=by) -> bool:
            spec = r.record.model.get("spec")
            return facts.get(spec, {}).get(by, model_facts(spec).get(by)) is not None

        usable = [r for r in group if known(r)]
        if len(usable) < len(group):
            notes.append(f"{where}: {len(group) - len(usable)} model(s) without a known {by} left out")
        if len(usable) < 2:
            notes.append(f"{where}: fewer than two models with a known {by}; nothing to compare")
            continue
        try:
            res = compare_runs(
                usable,
                **settings,
                facts=facts,
                n_bootstrap=whole_number("analyze --compare", "n_bootstrap", options.get("n_bootstrap", 2000)),
                confidence=float(options.get("confidence", 0.95)),
                seed=options.get("seed", 0),
            )
        except VlbiasError as e:
            notes.append(f"{where}: {e}")
            continue
        notes += [f"{where}: {n}" for n in res.skipped.loc[res.skipped["reason"] == "notes", "item"]]
        for name, target in (("results", "comparison"), ("models", "comparison_models")):
            df = res.tables[name].copy()
            df.insert(0, "protocol", opts.get("protocol"))
            df.insert(1, "dataset", opts.get("dataset"))
            found[target].append(df)
    out = {name: pd.concat(parts, ignore_index=True) for name, parts in found.items() if parts}
    if notes:
        out["comparison_notes"] = pd.DataFrame({"note": notes})
    return out
