"""What a report is made from: a sweep's results (its folder or its results.duckdb) or one audit's output folder.

Both become a :class:`ReportData`: the audit runs (one :class:`Run` per finished task), every task with its status
(so failures and skips are reported), each model's catalogue facts, imported downstream accuracy and the tables of
`vlbias analyze`. A run is the audit's :class:`~vlbias.audits.base.AuditResult` whose tables are read when first
needed, from the task's Parquet part (the sweep's source of truth) or, for a database without its parts, from the
database rows of that task.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import pandas as pd

from vlbias.audits.base import AuditResult, RunRecord, Tables, split_layers
from vlbias.audits.registry import get_audit
from vlbias.errors import VlbiasError
from vlbias.zoo.store import ResultsStore, quote

TASK_COLUMNS = ["task_id", "model", "audit", "dataset", "options", "status", "error_type", "error", "seconds"]


@dataclass
class Run(AuditResult):
    """One finished audit run in its place among the results: the :class:`AuditResult` (its tables read when first
    used) and what the sweep says about it."""

    #: the model spec as the sweep's tasks (or, for an audit output folder, the run record) name it
    model: str = ""
    #: the sweep task that made the run; None for an audit output folder
    task_id: str | None = None
    #: the dataset spec (``loader:root``, its one spelling), for an audit that ran on a face dataset
    dataset: str | None = None
    #: the options in the audit's canonical form (see :func:`_audit_options`): what a sweep config can give again
    options: dict[str, Any] = field(default_factory=dict)
    #: read from a results database without its parts: the record holds only what the tasks table keeps (stimulus
    #: labels without their kinds and hashes, no creation time; its config_hash is not the run's) and nothing is
    #: known about skipped items
    from_database: bool = False
    #: the folder of the run's own files (its part, or the audit output folder): each table is <folder>/<name>.parquet;
    #: None where the run's tables are not one file each (read from a database, or one layer of a several-layer run)
    folder: Path | None = None

    @classmethod
    def of(cls, result: AuditResult, **context: Any) -> Run:
        return cls(**{f.name: getattr(result, f.name) for f in fields(AuditResult)}, **context)


@dataclass
class ReportData:
    kind: str  # "sweep" or "audit"
    path: Path
    runs: list[Run]
    tasks: pd.DataFrame  # every task: done, failed and skipped, with the error or reason
    models: pd.DataFrame  # model -> catalogue facts (and what the run records add)
    analysis: dict[str, pd.DataFrame] = field(default_factory=dict)
    analysis_summary: dict[str, Any] | None = None
    accuracy: pd.DataFrame | None = None
    sweep: dict[str, Any] | None = None

    @property
    def model_order(self) -> list[str]:
        """Models in the sweep's order (as the config listed them), then any others."""
        listed = list((self.sweep or {}).get("models") or [])
        seen = list(dict.fromkeys([m for m in listed if m in set(self.tasks["model"])] + self.tasks["model"].tolist()))
        return [m for m in seen if isinstance(m, str)]

    def runs_of(self, audit: str) -> list[Run]:
        order = {m: i for i, m in enumerate(self.model_order)}
        return sorted((r for r in self.runs if r.audit == audit), key=lambda r: order.get(r.model, len(order)))

    @property
    def audits(self) -> list[str]:
        """The audits in the results, in the sweep's order (as the config listed them), then any others."""
        listed = [a.get("audit") for a in (self.sweep or {}).get("audits") or [] if isinstance(a, dict)]
        found = list(dict.fromkeys(self.tasks["audit"].dropna()))
        return list(dict.fromkeys([a for a in listed if a in found] + found))


def missing(v: Any) -> bool:
    """None, NaN or pd.NA (not an empty list or a zero)."""
    if v is None or v is pd.NA:
        return True
    try:
        return bool(pd.isna(v)) if not isinstance(v, (list, tuple, dict, str)) else False
    except (TypeError, ValueError):
        return False


def _value(v: Any) -> Any:
    return None if missing(v) else v


# ---------------------------------------------------------------------------------------------- database access
def _db_query(db: Path, sql: str, params: list | None = None) -> pd.DataFrame:
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, params or []).df()
    finally:
        con.close()


# ---------------------------------------------------------------------------------------------- loading
def load(path: str | os.PathLike) -> ReportData:
    """A sweep folder, its results.duckdb, or an audit output folder; a one-line error for anything else."""
    p = Path(path)
    if not p.exists():
        raise VlbiasError(f"{p} not found; give a sweep folder, its results.duckdb, or an audit output folder")
    if p.is_dir() and (p / "record.json").is_file():
        return load_audit_folder(p)
    return load_sweep(p)


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise VlbiasError(f"{path} cannot be read ({type(e).__name__}); {what}") from None
    if not isinstance(raw, dict):
        raise VlbiasError(f"{path} is not a JSON object; {what}")
    return raw


def _audit_options(audit: str, options: dict[str, Any]) -> dict[str, Any]:
    """A record's options in the audit's canonical form (current names and types, defaults included), also for
    records written before an option was renamed; values a record adds beyond the options are left out."""
    try:
        declared = get_audit(audit).options
    except VlbiasError:
        return dict(options)
    known = set(declared.names()) | set(declared.DEPRECATED)
    mine = {k: v for k, v in options.items() if k in known}
    try:
        return declared.parse(mine, warn=False).to_dict()
    except VlbiasError:  # a record of a version whose values no longer parse: shown as recorded
        return mine


def _read_run(folder: Path, damaged: str, **context: Any) -> Run:
    """The finished run in ``folder`` (an audit output folder or a sweep's part), its tables read when first used;
    a one-line error saying what to do (``damaged``) if its record cannot be read."""
    raw = _read_json(folder / "record.json", damaged)
    try:
        RunRecord.from_dict({k: v for k, v in raw.items() if k != "content_warning"})
    except TypeError:
        raise VlbiasError(
            f"{folder / 'record.json'} is not a vlbias run record; give an audit output folder (vlbias eat/zeroshot/"
            f"perception --out DIR)"
        ) from None
    return Run.of(AuditResult.read(folder, lazy=True), folder=folder, **context)


def load_audit_folder(folder: Path) -> ReportData:
    run = _read_run(folder, "the audit output folder is damaged; write it again")
    if not run.tables:
        raise VlbiasError(f"{folder} holds a record.json but no result tables (*.parquet); write the folder again")
    record = run.record
    model = str(record.model.get("spec") or "unknown model")
    options = _audit_options(record.audit, record.options)
    if record.seed is not None and "seed" not in options:
        options["seed"] = record.seed
    dataset = record.options.get("dataset")
    dataset = str(dataset) if dataset else None
    # a result of several layers of the model (--layer all): one run per layer
    layers = split_layers(run)
    runs = [
        Run.of(part, model=model, options=dict(options), dataset=dataset, folder=folder if len(layers) == 1 else None)
        for part in layers
    ]
    tasks = pd.DataFrame(
        [
            {
                "task_id": None,
                "model": model,
                "audit": record.audit,
                "dataset": dataset,
                "options": json.dumps(options, sort_keys=True, default=str),
                "status": "done",
                "error_type": None,
                "error": None,
                "seconds": None,
            }
            for _ in runs
        ],
        columns=TASK_COLUMNS,
    )
    facts = {k: v for k, v in runs[-1].record.model.items() if k not in ("layer", "reading", "base_identity")}
    if "base_identity" in runs[-1].record.model:  # the model's facts are the model's, not one layer's
        facts["identity"] = runs[-1].record.model["base_identity"]
    return ReportData("audit", folder, runs, tasks, _facts([model], {model: facts}))


def _facts(models: list[str], recorded: dict[str, dict[str, Any]], table: pd.DataFrame | None = None) -> pd.DataFrame:
    """Catalogue facts per model (the database's models table, else the catalogue), with the run record's model
    information (embedding size, logit scale, ...) where the catalogue has nothing."""
    from vlbias.models.catalogue import load_catalogue, model_facts

    rows = {}
    if table is not None and len(table):
        for r in table.to_dict("records"):
            rows[r["model"]] = r
    catalogue = None
    for m in models:
        if m not in rows:
            catalogue = catalogue if catalogue is not None else load_catalogue()
            try:
                rows[m] = {**model_facts(m, catalogue), "model": m}
            except VlbiasError:
                rows[m] = {"model": m}
        info = recorded.get(m) or {}
        for k, v in info.items():
            if k in ("spec", "extra") or isinstance(v, (dict, list)):
                continue
            if missing(rows[m].get(k)):
                rows[m][k] = v
    df = pd.DataFrame(list(rows.values()))
    return df.set_index("model", drop=False) if len(df) else pd.DataFrame(columns=["model"])


def load_sweep(path: Path) -> ReportData:
    store = ResultsStore.open(path)
    con = store.connect()  # rebuilds the database if parts are newer (what `vlbias results` does)
    con.close()
    db = store.db_path
    listing = _db_query(
        db,
        "SELECT table_schema AS s, table_name AS t FROM information_schema.tables WHERE table_type = 'BASE TABLE'",
    )
    have = {(r.s, r.t) for r in listing.itertuples()}
    if ("main", "tasks") not in have:
        raise VlbiasError(
            f"{db} is not a vlbias results database (it has no tasks table); give a sweep's output folder"
        )
    tasks = _db_query(db, "SELECT * FROM tasks")
    if tasks.empty:
        raise VlbiasError(f"{store.root} holds no tasks yet; run a sweep into it first")
    for c in TASK_COLUMNS:
        if c not in tasks.columns:
            tasks[c] = None
    models = _db_query(db, "SELECT * FROM models") if ("main", "models") in have else None
    accuracy = _db_query(db, "SELECT * FROM accuracy") if ("main", "accuracy") in have else None
    analysis = {t: _db_query(db, f'SELECT * FROM analysis."{t}"') for s, t in sorted(have) if s == "analysis"}
    summary_path = store.root / "analysis" / "analysis.json"
    analysis_summary = _read_json(summary_path, "run `vlbias analyze` again") if summary_path.is_file() else None
    sweep_path = store.root / "sweep.json"
    sweep = _read_json(sweep_path, "run the sweep again") if sweep_path.is_file() else None

    tasks["dataset"] = pd.Series(
        [None if missing(d) else str(d) for d in tasks["dataset"]], index=tasks.index, dtype=object
    )
    runs = []
    for t in tasks[tasks["status"] == "done"].itertuples():
        audit, task_id = str(t.audit), str(t.task_id)
        part = store.root / "parts" / audit / task_id
        options = _audit_options(audit, json.loads(t.options) if isinstance(t.options, str) and t.options else {})
        context = {"model": t.model, "task_id": t.task_id, "dataset": _value(t.dataset), "options": options}
        if (part / "record.json").is_file() and (part / "task.json").is_file():
            damaged = "the sweep's part is damaged; delete it and run the sweep again"
            runs.append(_read_run(part, damaged, **context))
            continue
        # a database without its parts: what the tasks table records, and the task's rows of each table
        record = RunRecord(
            audit=audit,
            model={"spec": t.model, "identity": _value(getattr(t, "model_identity", None))},
            options=options,
            seed=None if missing(getattr(t, "seed", None)) else int(t.seed),
            stimuli=[{"name": s} for s in str(getattr(t, "stimuli", "") or "").split("; ") if s],
            vlbias_version=_value(getattr(t, "vlbias_version", None)),
            created="",
        )
        warning = getattr(t, "content_warning", None)
        warning = None if missing(warning) or not warning else str(warning)

        def read(name: str, audit: str = audit, task_id: str = task_id) -> pd.DataFrame:
            return _db_query(db, f"SELECT * FROM {quote(audit)}.{quote(name)} WHERE task_id = ?", [task_id])

        names = sorted(n for s, n in have if s == audit)
        run = Run(audit, Tables(names, read), record, content_warning=warning, from_database=True, **context)
        runs.append(run)
    models_list = list(dict.fromkeys(tasks["model"].dropna()))
    recorded = {r.model: r.record.model or {} for r in runs}
    return ReportData(
        "sweep",
        store.root,
        runs,
        tasks,
        _facts(models_list, recorded, models),
        analysis=analysis,
        analysis_summary=analysis_summary,
        accuracy=accuracy,
        sweep=sweep,
    )
