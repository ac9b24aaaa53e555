"""Assemble a report: load the results, plan every section's blocks and figures, draw the figures once, and write the
pages (HTML through the packaged Jinja templates, or one Markdown file) into a folder that appears whole or not at
all."""

from __future__ import annotations

import json
import os
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from vlbias import __version__
from vlbias.audits.registry import get_audit
from vlbias.errors import VlbiasError, plural
from vlbias.report import blocks as B
from vlbias.report.assets import LINK_BYTES, Assets, default_workers
from vlbias.report.fmt import CODE_SPAN, data_label, fixed, md_text, num, safe_href, table
from vlbias.report.methods import methods_section
from vlbias.report.presentation import Presentation, presentation
from vlbias.report.sections import Context, upstream_section
from vlbias.report.source import ReportData, load, missing
from vlbias.utils.io import atomic_dir
from vlbias.utils.provenance import of_kind

FORMATS = ("html", "md")
MARKER = "report.json"
FACT_COLUMNS = [
    "backend",
    "architecture",
    "tag",
    "architecture_family",
    "n_params",
    "n_params_image",
    "n_params_text",
    "gflops",
    "embed_dim",
    "image_size",
    "pretraining_dataset",
    "dataset_family",
    "dataset_size",
    "samples_seen",
    "epochs",
    "fine_tuned",
    "fine_tuned_on",
    "duplicate_of",
    "dataset_source",
    "samples_seen_source",
    "identity",
    "model_identity",
    "pretrained",
    "precision",
    "modalities",
    "logit_scale",
    "hf_hub",
    "url",
]


@dataclass
class ReportSummary:
    out: Path
    format: str
    pages: list[str]
    figures: int
    csv: int
    seconds: float
    errors: list[str] = field(default_factory=list)


#: each format's default folder, beside the results: the two reports of one results folder never replace each other
DEFAULT_FOLDERS = {"html": "report", "md": "report-md"}
FORMAT_NAMES = {"html": "HTML", "md": "Markdown"}


def default_out(data: ReportData, fmt: str = "html") -> Path:
    return data.path / DEFAULT_FOLDERS[fmt]


def refuse_other_format(out: Path, fmt: str) -> None:
    """A report replaces only a report of its own format: an HTML report and a Markdown one live in two folders."""
    try:
        other = json.loads((out / MARKER).read_text(encoding="utf-8")).get("format")
    except (OSError, ValueError, AttributeError):
        return  # no report there (or not a readable one: the output rule of atomic_dir decides)
    if other in FORMAT_NAMES and other != fmt:
        raise VlbiasError(
            f"--out {out} holds the {FORMAT_NAMES[other]} report; write the {FORMAT_NAMES[fmt]} report to another "
            f"folder (its default is RESULTS/{DEFAULT_FOLDERS[fmt]})"
        )


def refuse_input(out: Path, source: Path) -> None:
    """A report never replaces the folder it is made from (the output rule of atomic_dir does the rest)."""
    o, s = out.resolve(), source.resolve()
    if o == s or o in s.parents:
        raise VlbiasError(f"--out {out} holds the results the report is made from; choose a folder outside it")


# ---------------------------------------------------------------------------------------------- summary page
def _task_counts(tasks: pd.DataFrame, by: str) -> dict[str, Counter]:
    out: dict[str, Counter] = {}
    for key, status in zip(tasks[by], tasks["status"]):
        out.setdefault(key, Counter())[status] += 1
    return out


def _datasets(ctx: Context) -> pd.DataFrame:
    rows: dict[str, dict[str, Any]] = {}
    for r in ctx.data.runs:
        if not r.dataset:
            continue
        row = rows.setdefault(r.dataset, {"dataset": r.dataset, "audits": set(), "version": "", "images": None})
        row["audits"].add(r.audit)
        for s in of_kind(r.record.stimuli, "dataset"):
            row["version"] = f"{s['name']}@{s.get('version', '')}"
            row["images"] = s.get("n_images")
    for spec in ctx.data.tasks["dataset"].dropna().unique():
        rows.setdefault(spec, {"dataset": spec, "audits": set(), "version": "", "images": None})
    df = pd.DataFrame(list(rows.values()), columns=["dataset", "audits", "version", "images"])
    df["audits"] = [", ".join(sorted(a)) for a in df["audits"]]
    return df


def headline_blocks(ctx: Context, shown: list[Presentation]) -> list[B.Block]:
    """Each audit's headline numbers (its presentation's ``headline``), under the audit's title, with a link to its
    page (HTML; the Markdown report has the audit's section below in the same file)."""
    out: list[B.Block] = []
    for s in shown:
        blocks = s.headline(ctx, ctx.data.runs_of(s.audit))
        if blocks:
            out += [
                B.h3(s.title, id=f"headline-{s.audit}"),
                *blocks,
                B.bullets([B.Link(f"{s.title}: all", s.page)], md=False),
            ]
    return [B.h2("Headlines", id="headlines"), *out] if out else []


def summary_blocks(
    ctx: Context, shown: list[Presentation], has_upstream: bool, headlines: list[B.Block] | None = None
) -> list[B.Block]:
    data = ctx.data
    audit_pages = {s.audit: s.page for s in shown}
    tasks = data.tasks
    status = Counter(tasks["status"])
    what = "sweep" if data.kind == "sweep" else "audit output folder"
    out = [
        B.p(
            f"Made by vlbias {__version__} on {time.strftime('%Y-%m-%d %H:%M')} from the {what} `{data.path}`. "
            "Every number comes from the results as stored; the methods page says how they were made and how to "
            "make them again; every figure links the data it draws."
        ),
    ]
    from_db = sum(r.from_database for r in data.runs)
    if from_db:
        out.append(
            B.note(
                f"{from_db} run(s) were read from the database alone (their parts are not beside it): their run "
                "records hold only what the tasks table keeps (stimulus names, not their full records) and the "
                "items they skipped are not listed."
            )
        )
    out += headlines or []
    out += [
        B.h2("At a glance", id="glance"),
        B.bullets(
            [
                f"{len(data.model_order)} model(s), {len(data.audits)} audit(s): {', '.join(data.audits)}",
                f"{len(tasks)} task(s): {status.get('done', 0)} done, {status.get('failed', 0)} failed, "
                f"{status.get('skipped', 0)} skipped",
                f"datasets: {', '.join(sorted(set(tasks['dataset'].dropna()))) or 'none (text and packaged stimuli only)'}",
            ]
        ),
    ]
    per_model = _task_counts(tasks, "model")
    rows = []
    for m in data.model_order:
        f = data.models.loc[m].to_dict() if m in data.models.index else {}
        c = per_model.get(m, Counter())
        rows.append(
            {
                "model": ctx.labels[m],
                "backend": f.get("backend") or m.partition(":")[0],
                "architecture": f.get("architecture"),
                "pretraining data": f.get("pretraining_dataset"),
                "parameters": f.get("n_params"),
                "done": c.get("done", 0),
                "failed": c.get("failed", 0),
                "skipped": c.get("skipped", 0),
            }
        )
    models_table = table(
        pd.DataFrame(rows), {k: k for k in rows[0]} if rows else {}, caption="Models (each links its page)"
    )
    models_table.csv = ctx.assets.data("models", data.models.reset_index(drop=True))
    for i, m in enumerate(data.model_order):
        models_table.links[(i, 0)] = ctx.pages[m]
    out += [B.h2("Models", id="models"), B.table(models_table)]

    per_audit = _task_counts(tasks, "audit")
    arows = []
    for a in data.audits:
        try:
            desc = get_audit(a).description
        except VlbiasError:
            desc = "(an audit this vlbias does not know)"
        c = per_audit.get(a, Counter())
        arows.append(
            {
                "audit": a,
                "what": desc,
                "runs": len(data.runs_of(a)),
                "tasks": f"{c.get('done', 0)} done, {c.get('failed', 0)} failed, {c.get('skipped', 0)} skipped",
            }
        )
    at = table(
        pd.DataFrame(arows),
        {"audit": "audit", "what it measures": "what", "runs": "runs", "tasks": "tasks"},
        caption="Audits (each links its page)",
    )
    for i, a in enumerate(data.audits):
        if a in audit_pages:
            at.links[(i, 0)] = audit_pages[a]
    out += [B.h2("Audits", id="audits"), B.table(at)]
    ds = _datasets(ctx)
    if len(ds):
        out += [
            B.h2("Datasets", id="datasets"),
            B.table(
                table(
                    ds,
                    {"dataset": "dataset", "name@version": "version", "images used": "images", "audits": "audits"},
                    caption="Face datasets (paths as on the machine that ran them)",
                )
            ),
        ]

    out.append(B.h2("What was skipped, and why", id="skipped"))
    failed = tasks[tasks["status"] == "failed"]
    skipped = tasks[tasks["status"] == "skipped"]
    if len(failed):
        ft = table(
            failed.assign(label=[ctx.labels.get(m, m) for m in failed["model"]]),
            {
                "model": "label",
                "audit": "audit",
                "dataset": "dataset",
                "error": lambda r: f"{r['error_type']}: {r['error']}",
            },
            caption="Failed tasks (a rerun of the sweep retries them)",
            csv=ctx.assets.data("failed-tasks", failed.drop(columns=[c for c in ("traceback",) if c in failed])),
        )
        out.append(B.table(ft))
    if len(skipped):
        out.append(
            B.table(
                table(
                    skipped.assign(label=[ctx.labels.get(m, m) for m in skipped["model"]]),
                    {"model": "label", "audit": "audit", "dataset": "dataset", "reason": "error"},
                    caption="Skipped tasks",
                )
            )
        )
    inner = []
    for r in data.runs:
        sk = r.skipped
        if sk is not None and len(sk):
            for item, reason in zip(sk.get("item", []), sk.get("reason", [])):
                inner.append({"audit": r.audit, "reason": str(reason), "item": str(item), "model": r.model})
    if inner:
        agg = (
            pd.DataFrame(inner)
            .groupby(["audit", "reason"], sort=False)
            .agg(items=("item", "size"), models=("model", "nunique"), example=("item", "first"))
            .reset_index()
        )
        out.append(
            B.table(
                table(
                    agg,
                    {"audit": "audit", "reason": "reason", "items": "items", "runs": "models", "example": "example"},
                    caption="Inside finished runs: items left out, by reason (details on each audit's page)",
                    limit=40,
                )
            )
        )
    if not len(failed) and not len(skipped) and not inner:
        out.append(B.p("Nothing: every task ran and no stimulus was left out."))
    notes = list(ctx.assets.errors)
    if ctx.assets.not_drawn:
        listed = "; ".join(ctx.assets.not_drawn[:3]) + ("; …" if len(ctx.assets.not_drawn) > 3 else "")
        notes.append(
            f"{len(ctx.assets.not_drawn)} figure(s) not drawn because their data cannot make them, each noted where "
            f"it would be: {listed}"
        )
    if ctx.assets.linked:
        notes.append(
            f"Linked, not copied: {plural(len(ctx.assets.linked), 'table')} of single runs larger than "
            f"{LINK_BYTES // 1000} kB, in the results' own files (under {_common_folder(ctx.assets.linked)}); a copy "
            "of this report away from its results loses those links, and `vlbias report --self-contained` copies them"
        )
    if notes:
        out += [B.h2("Report notes", id="notes"), B.bullets(notes)]
    contents = [B.Link(s.title, s.page) for s in shown]
    if has_upstream:
        contents.append(B.Link("Upstream analysis", "upstream.html"))
    contents.append(B.Link("Methods", "methods.html"))
    out += [B.Block("h2", "Contents", id="contents", md=False), B.bullets(contents, md=False)]
    return out


# ---------------------------------------------------------------------------------------------- model pages
def model_blocks(ctx: Context, model: str) -> list[B.Block]:
    data = ctx.data
    facts = data.models.loc[model].to_dict() if model in data.models.index else {}
    rows = [{"fact": "spec", "value": model}]
    for k in FACT_COLUMNS + [c for c in facts if c not in FACT_COLUMNS]:
        v = facts.get(k)
        if k in ("model",) or missing(v) or v == "" or k in {r["fact"] for r in rows}:
            continue
        rows.append({"fact": k, "value": v if isinstance(v, str) else num(v)})
    out = [
        B.h2("Facts", id="facts"),
        B.table(
            table(
                pd.DataFrame(rows),
                {"fact": "fact", "value": "value"},
                caption="Catalogue facts and what the run records say about the model",
            )
        ),
    ]
    mine = data.tasks[data.tasks["model"] == model]
    if len(mine):
        out += [
            B.h2("Tasks", id="tasks"),
            B.table(
                table(
                    mine,
                    {
                        "audit": "audit",
                        "dataset": "dataset",
                        "status": "status",
                        "seconds": lambda r: fixed(r.get("seconds"), 1),
                        "error or reason": lambda r: "" if missing(r.get("error")) else str(r["error"]),
                    },
                )
            ),
        ]
    return out + ctx.model_blocks.get(model, [])


# ---------------------------------------------------------------------------------------------- writing
def _templates():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("vlbias", "data/report"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["inline"] = _inline
    env.filters["href"] = safe_href
    env.filters["data_label"] = data_label
    return env


def _section(shown: Presentation, ctx: Context, runs: list) -> list[B.Block]:
    """An audit's section; results that lack a column it reads (written before a column was renamed) are one line
    that says what to do, not a traceback."""
    try:
        return shown.section(ctx, runs)
    except KeyError as e:
        key = str(e.args[0]) if e.args else ""
        named = re.findall(r"'([^']*)'", key) if " " in key else []  # pandas: "['x'] not in index", "Label(s) ['x'] …"
        raise VlbiasError(
            f"the {shown.audit} results lack the column {(named[0] if named else key)!r} that the report reads (were "
            f"they written by an earlier vlbias?); run the {shown.audit} audit again with vlbias {__version__}"
        ) from None


def _common_folder(paths: list[str]) -> str:
    return os.path.commonpath([os.path.dirname(p) for p in paths])


def _inline(text: str, root: str = ""):
    """Escaped text with `code` spans and links to the report's data files."""
    from markupsafe import Markup, escape

    html = str(escape(text))
    html = CODE_SPAN.sub(r"<code>\1</code>", html)
    html = re.sub(
        r"(?<![\w/\"])(data/[A-Za-z0-9._+-]+\.(?:csv|parquet|yaml))",
        lambda m: f'<a href="{root}{m.group(1)}">{m.group(1)}</a>',
        html,
    )
    return Markup(html)


def _md_targets(blocks: list[B.Block], found: set[int]) -> None:
    for b in blocks:
        if not b.md:
            continue
        if b.figure is not None:
            found.add(id(b.figure))
        if b.group is not None:
            found.add(id(b.group))
        _md_targets(b.blocks, found)


def build_report(
    results: str | os.PathLike,
    out: str | os.PathLike | None = None,
    fmt: str = "html",
    workers: int | None = None,
    overwrite: bool = False,
    self_contained: bool = False,
) -> ReportSummary:
    """Write the report of ``results`` (a sweep folder, its results.duckdb, or an audit output folder) into ``out``;
    an earlier report there is replaced only with ``overwrite``, anything else never. A run's table larger than
    :data:`~vlbias.report.assets.LINK_BYTES` is linked in the results, not copied, unless ``self_contained``."""
    t0 = time.perf_counter()
    if fmt not in FORMATS:
        raise VlbiasError(f"unknown report format {fmt!r}; use {' or '.join(FORMATS)}")
    data = load(results)
    out_path = Path(out) if out is not None else default_out(data, fmt)
    refuse_input(out_path, data.path)
    refuse_other_format(out_path, fmt)
    with atomic_dir(out_path, "report", overwrite) as tmp:
        assets = Assets(tmp, final=out_path, self_contained=self_contained)
        ctx = Context(data, assets)
        shown = [presentation(a) for a in data.audits if data.runs_of(a)]  # each audit presents its runs
        pages = [B.Page(s.page, s.title, s.audit, _section(s, ctx, data.runs_of(s.audit))) for s in shown]
        upstream = upstream_section(ctx)
        methods, files = methods_section(ctx)
        if upstream:
            pages.append(B.Page("upstream.html", "Upstream analysis", "upstream", upstream))
        pages.append(B.Page("methods.html", "Methods", "methods", methods))
        for m in data.model_order:
            pages.append(B.Page(ctx.pages[m], m, "models", model_blocks(ctx, m)))
        if fmt == "md":  # only what the Markdown shows is drawn
            keep: set[int] = set()
            for pg in pages:
                if not pg.file.startswith("models/"):
                    _md_targets(pg.blocks, keep)
            assets.jobs = [j for j in assets.jobs if id(j.target) in keep]
        headlines = headline_blocks(ctx, shown)
        assets.render(workers or default_workers())
        summary = summary_blocks(ctx, shown, bool(upstream), headlines)
        summary_page = B.Page("index.html", "Summary", "summary", summary)
        pages.insert(0, summary_page)
        name = data.path.name if data.kind == "sweep" else f"{data.runs[0].audit} run of {data.runs[0].model}"
        title = f"vlbias report: {name}"
        if fmt == "html":
            env = _templates()
            tpl = env.get_template("page.html.j2")
            nav = [("summary", "Summary", "index.html")]
            nav += [(s.audit, s.title, s.page) for s in shown]
            if upstream:
                nav.append(("upstream", "Upstream", "upstream.html"))
            nav += [("methods", "Methods", "methods.html"), ("models", "Models", "index.html#models")]
            for pg in pages:
                dest = tmp / pg.file
                dest.parent.mkdir(parents=True, exist_ok=True)
                html = tpl.render(page=pg, report_title=title, nav=nav, root=pg.root, version=__version__)
                dest.write_text(html, encoding="utf-8")
            written = [pg.file for pg in pages]
        else:
            parts = [f"# {md_text(title)}", B.markdown(summary_page.blocks)]
            for pg in pages[1:]:
                if pg.file.startswith("models/"):
                    continue
                parts += [f"## {md_text(pg.title)}", B.markdown(pg.blocks, level=3)]
            (tmp / "report.md").write_text("\n\n".join(p for p in parts if p) + "\n", encoding="utf-8")
            written = ["report.md"]
        warnings = list(dict.fromkeys(r.content_warning for r in data.runs if r.content_warning))
        if warnings:  # the figures of offensive label sets point here
            (tmp / "CONTENT_WARNING.txt").write_text("\n\n".join(warnings) + "\n", encoding="utf-8")
        figures = sorted(p.relative_to(tmp).as_posix() for p in tmp.glob("figures/**/*.png"))
        csvs = sorted(p.relative_to(tmp).as_posix() for p in tmp.glob("data/*") if p.suffix in (".csv", ".parquet"))
        marker = {
            "vlbias_report": 1,
            "format": fmt,
            "source": str(data.path),
            "kind": data.kind,
            "vlbias_version": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "pages": written,
            "figures": figures,
            "data": csvs,
            "rerun": files.get("rerun"),
            "errors": assets.errors,
            "not_drawn": assets.not_drawn,
            "linked": assets.linked,
        }
        (tmp / MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
    return ReportSummary(out_path, fmt, written, len(figures), len(csvs), time.perf_counter() - t0, assets.errors)


__all__ = ["FORMATS", "ReportSummary", "build_report"]
