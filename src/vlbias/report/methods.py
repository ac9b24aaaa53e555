"""The methods section, generated from the runs' own records: what was run, on which stimuli and versions, with which
options and seeds, by which vlbias, on which models; and a sweep config that runs it all again."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pandas as pd

from vlbias.report import blocks as B
from vlbias.report.fmt import num, table
from vlbias.report.sections import Context, _wrap_warning
from vlbias.report.source import Run, missing
from vlbias.utils.provenance import kind_of, name_of, of_kind


def _value(v: Any) -> str:
    if isinstance(v, str):
        return v
    return json.dumps(v, default=str)


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
        values = Counter(_value(r.options.get(k)) for r in runs)
        if len(values) == 1:
            shown = next(iter(values))
        else:
            shown = "; ".join(f"{v} ({n} runs)" for v, n in values.most_common())
        rows.append({"option": k, "value": shown})
    return B.table(table(pd.DataFrame(rows), {"option": "option", "value": "value"}, caption="Options"))


def _stimuli(runs: list[Run]) -> list[dict[str, Any]]:
    """Every distinct stimulus record of the runs, with how many runs used it (``runs``)."""
    seen: dict[str, dict[str, Any]] = {}
    for r in runs:
        for s in r.record.get("stimuli") or []:
            key = json.dumps(s, sort_keys=True, default=str)
            seen.setdefault(key, {**s, "runs": 0})["runs"] += 1
    return list(seen.values())


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
                "details": "; ".join(f"{k}: {_value(v)}" for k, v in other.items()),
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


def _opt(runs: list[Run], key: str, default=None):
    values = {_value(r.options.get(key, r.record.get("options", {}).get(key, default))) for r in runs}
    return next(iter(values)) if len(values) == 1 else " / ".join(sorted(values))


def _eat_method(ctx: Context, runs: list[Run]) -> list[B.Block]:
    perms, boot, conf = _opt(runs, "permutations"), _opt(runs, "n_bootstrap"), _opt(runs, "confidence")
    alt, seed = _opt(runs, "alternative"), _opt(runs, "seed")
    try:
        conf_text = f"{float(conf):.0%}"
    except ValueError:
        conf_text = conf
    sampler = _opt(runs, "sampler", "vlbias")
    drawn = (
        f"sampled partitions drawn as Ghate et al. (2025) draw them (numpy's legacy RandomState({seed}) reseeded "
        "for every test, one shuffle per partition); the bootstrap from numpy's PCG64"
        if sampler == "ghate2025-legacy"
        else "All randomness from numpy's PCG64"
    )
    text = (
        "Effect size: d = (mean over X of s(x, A, B) − mean over Y of s(y, A, B)) / sample standard deviation of "
        "s over X ∪ Y, with s(w, A, B) = mean cosine of w with A − mean cosine with B (Caliskan et al. 2017); "
        "undefined (and p = 1) when every s is equal. "
        f"p-value: {alt} permutation test over re-partitions of X ∪ Y into sets of |X| and |Y| items, exact when "
        f"all partitions number at most {perms}, otherwise {perms} sampled partitions, p = (1 + #)/(1 + N). "
        f"Interval: {conf_text} percentile bootstrap of d ({boot} resamples within X, Y, A and B). {drawn} "
        f"seeded with {seed}."
    )
    if any(r.options.get("battery") or not (r.options.get("tests") or r.options.get("test_files")) for r in runs):
        text += (
            " The standard battery (Ghate et al. 2025) has 26 rows per model, of which 24 run unless an instrument "
            "image set is supplied: the study did not release its instrument images and the iEAT stimuli have none."
        )
    presets = {str(r.options.get("preset")) for r in runs if r.options.get("preset")}
    if presets:
        text += f" Preset: {', '.join(sorted(presets))} (its differences from vlbias's defaults: docs/deviations.md)."
    out = [B.p(text)]
    res = ctx.concat(runs, "results")
    if len(res):
        first = res.drop_duplicates(["test", "order"])
        out.append(
            B.table(
                table(
                    first,
                    {
                        "test": "test",
                        "order": "order",
                        "X": lambda r: f"{r['x_name']} ({num(r['x_size'])})",
                        "Y": lambda r: f"{r['y_name']} ({num(r['y_size'])})",
                        "A": lambda r: f"{r['a_name']} ({num(r['a_size'])})",
                        "B": lambda r: f"{r['b_name']} ({num(r['b_size'])})",
                        "modalities": lambda r: f"{r['target_modality']} targets, {r['attribute_modality']} attributes",
                    },
                    caption="Tests and orders with set sizes (of the first model that ran each; sizes can differ "
                    "where a model lacked stimuli)",
                )
            )
        )
    return out


def _zeroshot_method(ctx: Context, runs: list[Run]) -> list[B.Block]:
    scale = _opt(runs, "scale")
    out = [
        B.p(
            f"Each image is compared with one prompt per class (several templates: averaged normalised prompt "
            f"embeddings, or one result per template); probabilities are softmax({scale} · cosine) and the top-1 "
            f"class is the most similar one. Per group: the share of images whose top-1 class is each class or "
            f"category, and the mean probability, each with a {_opt(runs, 'confidence')} cluster-bootstrap interval over "
            f"people ({_opt(runs, 'n_bootstrap')} replicates, seed {_opt(runs, 'seed')}); a comparison of models resamples "
            "the same people for every model."
        )
    ]
    tasks = []
    for s in of_kind(_stimuli(runs), "protocol"):
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
        out += _wrap_warning(warning, blocks)
    return out


def _packaged_words(stimuli: list[dict[str, Any]]) -> list[B.Block]:
    """The words and templates of packaged lexicons and template sets, shown only where this vlbias's packaged copy
    has the content hash the run recorded (else the record's hash is all there is to go by)."""
    from vlbias.stimuli.perception import load_lexicon, load_templates
    from vlbias.utils.io import stable_hash

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


def _perception_method(ctx: Context, runs: list[Run]) -> list[B.Block]:
    return [
        B.p(
            "Each word is put into every template; an image's similarity to a word is its cosine similarity to "
            "each prompt, averaged over the templates. Delta = 100 (cos(image, word) − cos(image, neutral prompt)) "
            f"({_opt(runs, 'delta')}); a scale's score is the mean Delta of its words. Analyses: "
            f"{_opt(runs, 'analyses')}; {_opt(runs, 'pairs')} random pairs per dimension for the factor effects; "
            f"{_opt(runs, 'n_bootstrap')} cluster-bootstrap resamples of identities; {_opt(runs, 'n_random_rankings')} "
            f"random rankings for the skew null; k = {_opt(runs, 'k')}; confidence {_opt(runs, 'confidence')}; "
            f"seed {_opt(runs, 'seed')} for every random draw."
        ),
        *_packaged_words(_stimuli(runs)),
    ]


METHODS = {"eat": _eat_method, "zeroshot": _zeroshot_method, "perception": _perception_method}


def methods_section(ctx: Context) -> tuple[list[B.Block], dict[str, str]]:
    """The methods blocks and the files it adds (name -> relative path)."""
    import yaml

    data = ctx.data
    files: dict[str, str] = {}
    config = rerun_config(ctx)
    cat = _catalogue(ctx)
    if cat is not None:
        files["catalogue"] = ctx.assets.csv("catalogue", cat)
        config["catalogue"] = [files["catalogue"].rsplit("/", 1)[-1]]
    acc = _accuracy_wide(ctx)
    if acc is not None:
        files["accuracy"] = ctx.assets.csv("accuracy", acc)
        config["accuracy"] = files["accuracy"].rsplit("/", 1)[-1]
    versions = sorted({str(r.record.get("vlbias_version")) for r in data.runs if r.record.get("vlbias_version")})
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
    created = sorted(str(r.record.get("created")) for r in data.runs if r.record.get("created"))
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
                rec.update({k: v for k, v in (r.record.get("model") or {}).items() if not missing(v)})
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
        out += METHODS.get(audit, lambda c, r: [])(ctx, runs)
        out.append(_options_table(runs))
        stimuli = _stimuli(runs)
        if stimuli:
            out.append(_stimuli_table(stimuli, skip=("tasks",)))
        seeds = sorted({r.seed for r in runs if not missing(r.seed)})
        if seeds:
            out.append(B.p(f"Seeds: {', '.join(map(str, seeds))}."))
    return out, files
