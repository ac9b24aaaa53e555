"""Before and after a mitigation, paired: what a debiasing transform buys (bias) and what it costs (accuracy).

:func:`compare` runs one audit twice on the same model: *before* through a transform that changes no vector but holds
the fit set's images out (:meth:`vlbias.mitigation.Transform.holdout_only`), *after* through the fitted transform.
Both runs therefore see exactly the same evaluation people and stimuli, disjoint from the fit set, and every value
is paired (:mod:`vlbias.stats.paired`): one bootstrap draw of the units serves both runs, so the interval of the
difference describes what the transform changed.

Values compared, per audit:

- ``eat``: per (test, order) row, the effect size d from the items' associations s(w, A, B), targets resampled
  within X and Y (kind ``bias``);
- ``zeroshot``: per task with true labels, the accuracy in percent, people resampled (kind ``accuracy``: the cost);
  per task and class, the range over the groups of ``group_by`` (the mitigation's attribute by default) of the
  top-1 share in percent, people resampled jointly across groups (kind ``bias``).
- ``perception``: per scale, the range over the groups of ``group_by`` (the mitigation's attribute by default) of
  the mean scale score (Delta points, the audit's own scores of each image) among the people whose groups the audit
  compares (its ``races``, ``merge_races``, ``min_age`` and ``group_subsets``), identities resampled jointly across
  groups (kind ``bias``); perception has no accuracy to pay.
- ``retrieval`` (protocols whose captions have both polarities, as PATA's): per scene and attribute of the protocol
  (or only ``group_by``), the range over its groups of the mean probability of a negative caption and of the share
  of images whose best caption is negative (percent), the protocol's clusters resampled (kind ``bias``).

Each kind is summarised by one ``overall`` row (the mean over its values of |before| and |after|, from the same
draws), so a method that lowers bias by collapsing accuracy shows both in two lines.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from vlbias.audits.base import AuditResult, RunRecord
from vlbias.audits.perception.options import PerceptionOptions
from vlbias.audits.perception.run import group_people
from vlbias.audits.registry import get_audit
from vlbias.errors import VlbiasError
from vlbias.mitigation import Mitigated, Transform, fit_transform
from vlbias.stats.paired import Paired, paired_eat, paired_group_contrasts, stack
from vlbias.stimuli.retrieval import load_protocol
from vlbias.utils.io import stable_hash

COMPARED = ("eat", "zeroshot", "perception", "retrieval")


@dataclass(frozen=True)
class Comparison:
    """The paired values of one audit and one mitigation (``table``), with the two runs they come from."""

    table: pd.DataFrame
    before: AuditResult
    after: AuditResult
    transform: Transform

    def result(self) -> AuditResult:
        """The comparison as an audit output (``mitigation_comparison``), provenance stamped on every row."""
        return comparison_result([self])


def comparison_result(comparisons: list[Comparison]) -> AuditResult:
    """Comparisons of one audit (several mitigations, same model and options) as one audit output: the audit
    ``mitigation_comparison``, its results one row per value and mitigation (each row naming its mitigation, its
    transform's and fit set's hashes), its record holding every transform's record. ``vlbias report`` presents it
    (the mitigation page)."""
    first = comparisons[0].after
    table = pd.concat(
        [
            c.table.assign(
                mitigation=c.transform.label, mitigation_hash=c.transform.transform_hash, fit_hash=c.transform.fit_hash
            )
            for c in comparisons
        ],
        ignore_index=True,
    )
    records = [c.after.record.mitigation for c in comparisons]
    record = RunRecord(
        audit="mitigation_comparison",
        model=first.record.model,
        options={"audit": first.audit, "options": first.record.options},
        seed=first.record.seed,
        stimuli=first.record.stimuli,
        mitigation={
            "label": " | ".join(r.get("label", "") for r in records),
            "method": "comparison",
            "transform_hash": stable_hash([r.get("transform_hash") for r in records], n=16),
            "fit_hash": stable_hash([r.get("fit_hash") for r in records], n=16),
            "comparisons": records,
        },
    )
    skipped = pd.concat([c.after.skipped for c in comparisons], ignore_index=True).drop_duplicates()
    return AuditResult("mitigation_comparison", {"results": table}, record, skipped=skipped)


def compare(
    encoder,
    mitigation: str | Transform | dict[str, Any],
    audit: str,
    options: dict[str, Any] | None = None,
    *,
    group_by: str | None = None,
    n_bootstrap: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Comparison:
    """Run ``audit`` with ``options`` before and after ``mitigation`` (fitted now unless a :class:`Transform`) on the
    same evaluation set, and pair its values (see the module docstring)."""
    if audit not in COMPARED:
        raise VlbiasError(f"mitigation comparisons pair the audits {', '.join(COMPARED)}; {audit!r} is not one yet")
    transform = mitigation if isinstance(mitigation, Transform) else fit_transform(encoder, mitigation)
    spec = get_audit(audit)
    before = spec.run(Mitigated(encoder, transform.holdout_only()), options or {})
    after = spec.run(Mitigated(encoder, transform), options or {})
    kw = {"n_bootstrap": n_bootstrap, "confidence": confidence, "seed": seed}
    attribute = group_by or transform.options.get("attribute") or "gender"
    if audit == "eat":
        parts = [("bias", "effect_size", 1.0, _eat_pairs(before, after, kw))]
    elif audit == "perception":
        parts = _perception_pairs(before, after, attribute, kw)
    elif audit == "retrieval":
        parts = _retrieval_pairs(before, after, group_by, kw)
    else:
        parts = _zeroshot_pairs(before, after, attribute, kw)
    frames = []
    for kind, what, scale, pairs in parts:
        if not pairs:
            continue
        joined = stack(pairs)
        if audit != "eat":  # every value comes from the same people
            joined = replace(joined, n_units=max(p.n_units for p in pairs))
        frame = pd.concat([joined.frame(scale), joined.aggregate("overall").frame(scale)], ignore_index=True)
        frames.append(frame.assign(kind=kind, statistic=what))
    if not frames:
        raise VlbiasError(f"the {audit} runs gave nothing to compare (no row with a value in both runs)")
    table = pd.concat(frames, ignore_index=True)
    table.insert(0, "audit", audit)
    table.insert(1, "method", transform.method)
    front = ["audit", "method", "kind", "statistic", "value"]
    return Comparison(table[front + [c for c in table.columns if c not in front]], before, after, transform)


def _paired_rows(before: pd.DataFrame, after: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """The two runs' rows side by side on ``keys`` (columns of both suffixed _b and _a); one line if the runs did not
    evaluate the same images."""
    joined = before.merge(after, on=keys, suffixes=("_b", "_a"))
    if len(joined) != len(before) or len(joined) != len(after):
        raise VlbiasError("the before and after runs evaluated different images; they cannot be paired")
    return joined


def _eat_pairs(before: AuditResult, after: AuditResult, kw: dict) -> list[Paired]:
    keys = ["test", "order"]
    ok = before.results[before.results["status"] == "ok"][keys].merge(
        after.results[after.results["status"] == "ok"][keys]
    )
    out = []
    for test, order in ok.itertuples(index=False):
        sides = []
        for r in (before, after):
            it = r.tables["items"]
            it = it[(it["test"] == test) & (it["order"] == order)]
            sides += [it.loc[it["role"] == role, "association"].to_numpy(float) for role in ("X", "Y")]
        p = paired_eat(*sides, **kw)
        out.append(Paired([f"{test} {order}"], p.before, p.after, p.before_reps, p.after_reps, p.confidence, p.n_units))
    return out


def _zeroshot_pairs(before: AuditResult, after: AuditResult, attribute: str, kw: dict) -> list:
    b, a = before.tables["images"], after.tables["images"]
    keys = ["task", "template", "key"]
    joined = _paired_rows(b, a, keys)
    accuracy, bias = [], []
    for (task, _template), g in joined.groupby(["task", "template"], sort=False):
        if "correct_b" in g and g["correct_b"].notna().any():
            values = [g[f"correct_{s}"].astype("Float64").to_numpy(float, na_value=np.nan) for s in "ba"]
            p = paired_group_contrasts(*values, g["identity_b"], statistic="mean", names=[f"{task} accuracy"], **kw)
            accuracy.append(p)
        group_col = f"{attribute}_b"
        if group_col in g:
            classes = sorted(set(g["top1_b"]) | set(g["top1_a"]))
            vb = np.stack([(g["top1_b"] == c).to_numpy(float) for c in classes], axis=1)
            va = np.stack([(g["top1_a"] == c).to_numpy(float) for c in classes], axis=1)
            names = [f"{task}: {c} top-1 share, range over {attribute}" for c in classes]
            bias.append(paired_group_contrasts(vb, va, g["identity_b"], g[group_col], names=names, **kw))
    return [("bias", "share range (pct points)", 100.0, bias), ("accuracy", "accuracy (pct)", 100.0, accuracy)]


def _perception_pairs(before: AuditResult, after: AuditResult, attribute: str, kw: dict) -> list:
    b, a = before.tables["scores"], after.tables["scores"]
    if "layer" in b.columns:
        raise VlbiasError("mitigation comparisons pair a model's embedding, not its layers; leave layer out")
    scales = [c for c in b.columns[b.columns.get_loc("cos_neutral") + 1 :] if pd.api.types.is_float_dtype(b[c])]
    joined = _paired_rows(b, a[["key", *scales]], ["key"])
    if attribute not in joined.columns:
        raise VlbiasError(
            f"the perception scores have no column {attribute!r} to compare groups of; give --group-by race or gender"
        )
    # the people whose groups the audit compares (races, merge_races, min_age, group_subsets), not every scored image
    joined = group_people(joined, PerceptionOptions.parse(before.record.options, warn=False))
    joined = joined[joined[attribute].notna()]
    vb, va = (joined[[f"{s}_{side}" for s in scales]].to_numpy(float) for side in "ba")
    names = [f"{s}: score range over {attribute}" for s in scales]
    p = paired_group_contrasts(vb, va, joined["identity"], joined[attribute], names=names, **kw)
    return [("bias", "score range (Delta points)", 1.0, [p])]


def _retrieval_pairs(before: AuditResult, after: AuditResult, group_by: str | None, kw: dict) -> list:
    b, a = before.tables.get("images"), after.tables.get("images")
    if b is None or "p_negative_pct" not in b.columns or b["p_negative_pct"].isna().all():
        raise VlbiasError(
            "the retrieval comparison pairs the association with negative captions (protocols whose captions have "
            "both polarities, as pata); this run has none"
        )
    proto = load_protocol(before.record.resolved["protocol"])
    scene = proto.pools[0]
    cols = ["key", "attribute", "p_negative_pct", "best_polarity"]
    joined = _paired_rows(b, a[cols], ["key", "attribute"])
    joined = joined[joined["p_negative_pct_b"].notna()]
    attributes = sorted(set(joined["attribute"]))
    if group_by is not None:
        if group_by not in attributes:
            raise VlbiasError(f"the retrieval run has no attribute {group_by!r} to compare; use one of {attributes}")
        joined = joined[joined["attribute"] == group_by]
    bias = []
    for (where, attribute), g in joined.groupby([scene, "attribute"], sort=True):
        if g["group"].nunique() < 2:
            continue
        values = [
            np.column_stack([g[f"p_negative_pct_{s}"], 100.0 * (g[f"best_polarity_{s}"] == "negative")]) for s in "ba"
        ]
        names = [f"{where}, {attribute}: P(negative caption)", f"{where}, {attribute}: best caption negative"]
        bias.append(paired_group_contrasts(*values, g[proto.clusters], g["group"], names=names, **kw))
    return [("bias", "range over groups (pct points)", 1.0, bias)]
