"""The methods section, generated from the runs' own records: what was run, on which stimuli and versions, with which
options and seeds, by which vlbias, on which models; and a sweep config that runs it all again."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pandas as pd

from vlbias.report import blocks as B
from vlbias.report.fmt import table
from vlbias.report.presentation import presentation
from vlbias.report.sections import Context, stimuli_of, text_of
from vlbias.report.source import Run, missing
from vlbias.utils.provenance import kind_of, name_of


def rerun_config(ctx: Context) -> dict[str, Any]:
    """A sweep config with every model and, per audit, every options set a task ran (or tried) with."""
    audits: dict[str, list[dict[str, Any]]] = {}
    for t in ctx.data.tasks.itertuples():
        opts = json.loads(t.options) if isinstance(t.options, str) and t.options else {}
        sets = audits.setdefault(str(t.audit), [])
        if opts not in sets:
            sets.append(opts)
    return {"models": ctx.data.model_order, "audits": {a: s if len(s) > 1 else s[0] for a, s in audits.items()}}


def _catalogue(ctx: Context) -> pd.DataFrame | None:
    from vlbias.models.catalogue import COLUMNS

    m = ctx.data.models
    if m is None or not len(m):
        return None
    df = m.reset_index(drop=True).drop(columns="spec", errors="ignore").rename(columns={"model": "spec"})
    cols = [c for c in COLUMNS if c in df.columns]
    df = df[cols]
    keep = [c for c in cols if c == "spec" or df[c].notna().any()]
    return df[keep]


def _accuracy_wide(ctx: Context) -> pd.DataFrame | None:
    acc = ctx.data.accuracy
    if acc is None or not len(acc) or not {"spec", "metric", "value"} <= set(acc.columns):
        return None
    wide = acc.pivot_table(index="spec", columns="metric", values="value", aggfunc="first").reset_index()
    wide.columns.name = None
    return wide


def _options_table(runs: list[Run]) -> B.Block:
    keys = list(dict.fromkeys(k for r in runs for k in r.options))
    rows = []
    for k in keys:
        values = Counter(text_of(r.options.get(k)) for r in runs)
        if len(values) == 1:
            shown = next(iter(values))
        else:
            shown = "; ".join(f"{v} ({n} runs)" for v, n in values.most_common())
        rows.append({"option": k, "value": shown})
    return B.table(table(pd.DataFrame(rows), {"option": "option", "value": "value"}, caption="Options"))


def _stimuli_table(stimuli: list[dict[str, Any]], skip: tuple[str, ...] = ()) -> B.Block:
    rows = []
    for s in stimuli:
        digest = s.get("sha256") or s.get("manifest") or ""
        other = {
            k: v for k, v in s.items() if k not in ("kind", "name", "version", "sha256", "manifest", "runs", *skip)
        }
        rows.append(
            {
                "runs": s.get("runs"),
                "kind": kind_of(s) or "",
                "name": name_of(s),
                "version": s.get("version") or "",
                "content hash": (str(digest)[:16] + "…") if digest else "",
                "details": "; ".join(f"{k}: {text_of(v)}" for k, v in other.items()),
            }
        )
    return B.table(
        table(
            pd.DataFrame(rows, columns=["kind", "name", "version", "content hash", "runs", "details"]),
            {
                "kind": "kind",
                "stimulus set": "name",
                "version": "version",
                "content hash": "content hash",
                "runs": "runs",
                "details": "details",
            },
            caption="Stimuli and their versions, with the number of runs that used each (content hashes identify "
            "the exact texts and images; for a face dataset, its table of image keys and labels, the same for every "
            "model)",
        )
    )


def methods_section(ctx: Context) -> tuple[list[B.Block], dict[str, str]]:
    """The methods blocks and the files it adds (name -> relative path)."""
    import yaml

    data = ctx.data
    files: dict[str, str] = {}
    config = rerun_config(ctx)
    cat = _catalogue(ctx)
    if cat is not None:
        files["catalogue"] = ctx.assets.data("catalogue", cat, csv=True)
        config["catalogue"] = [files["catalogue"].rsplit("/", 1)[-1]]
    acc = _accuracy_wide(ctx)
    if acc is not None:
        files["accuracy"] = ctx.assets.data("accuracy", acc, csv=True)
        config["accuracy"] = files["accuracy"].rsplit("/", 1)[-1]
    versions = sorted({str(r.record.vlbias_version) for r in data.runs if r.record.vlbias_version})
    header = (
        f"# Runs the audits of this report again: vlbias sweep rerun.yaml\n"
        f"# made by vlbias {', '.join(versions) or 'unknown'}; dataset paths are those of the machine that made the "
        f"results:\n# point them at your copies. Options are complete (defaults included), seeds with them.\n"
    )
    text = header + yaml.safe_dump(config, sort_keys=False, allow_unicode=True)
    files["rerun"] = ctx.assets.text("rerun", ".yaml", text)
    out: list[B.Block] = [
        B.h2("How to run it again", id="rerun"),
        B.p(
            f"Install vlbias {' or '.join(versions) or ''} (the version that made these results; the packaged "
            f"stimuli and protocols are part of it), then run `vlbias sweep {files['rerun']}`. The config lists every "
            "model and, for each audit, every set of options a run used, with its seed; the catalogue file gives "
            "the models the facts the results were analysed with"
            + (" and the accuracy file their downstream accuracy" if "accuracy" in files else "")
            + ". Datasets are not bundled: the paths in the config are those of the machine that made the "
            "results, so point them at your copies; the dataset hashes below say whether yours are the same images."
        ),
        B.details(f"The config ({files['rerun']})", [B.code(text.strip())], md=True),
    ]
    created = sorted(str(r.record.created) for r in data.runs if r.record.created)
    facts = [f"vlbias version(s): {', '.join(versions) or 'not recorded'}"]
    if created:
        facts.append(f"runs made between {created[0]} and {created[-1]}")
    if data.sweep:
        facts.append(f"sweep config: {data.sweep.get('config') or 'not recorded'}")
    facts.append(f"{len(data.runs)} finished run(s); config hashes identify each run's exact inputs")
    out += [B.h2("Software and runs", id="software"), B.bullets(facts)]

    rows = []
    for m in data.model_order:
        rec: dict[str, Any] = {}
        for r in data.runs:  # a run on cached embeddings records less than one that loaded the model: merge them
            if r.model == m:
                rec.update({k: v for k, v in (r.record.model or {}).items() if not missing(v)})
        rows.append(
            {
                "model": ctx.labels.get(m, m),
                "spec": m,
                "identity": rec.get("identity", ""),
                "backend": rec.get("backend", m.partition(":")[0]),
                "weights": rec.get("pretrained", ""),
                "embedding": rec.get("embed_dim"),
                "precision": rec.get("precision", ""),
            }
        )
    out += [
        B.h2("Models", id="models"),
        B.table(
            table(
                pd.DataFrame(rows),
                {k: k for k in ("spec", "identity", "backend", "weights", "embedding", "precision")},
                caption="Model specs as run (the identity is a hash of the weights, preprocessing and precision)",
            )
        ),
    ]
    for audit in data.audits:
        runs = data.runs_of(audit)
        if not runs:
            continue
        out.append(B.h2(f"Audit: {audit}", id=f"m-{audit}"))
        out += presentation(audit).methods(ctx, runs)
        out.append(_options_table(runs))
        stimuli = stimuli_of(runs)
        if stimuli:
            out.append(_stimuli_table(stimuli, skip=("tasks",)))
        seeds = sorted({r.record.seed for r in runs if not missing(r.record.seed)})
        if seeds:
            out.append(B.p(f"Seeds: {', '.join(map(str, seeds))}."))
    return out, files
