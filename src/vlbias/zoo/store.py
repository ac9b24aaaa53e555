"""The results store of a sweep: one Parquet part per task, and an embedded DuckDB database built from them.

A sweep folder holds::

    sweep.json                        the plan: config, grid, vlbias version
    parts/<audit>/<task_id>/          one finished task: <table>.parquet per result table, skipped.csv,
                                      record.json (the audit's run record), task.json (the task and its timing)
    status/<task_id>.json             tasks that failed (with the error) or were skipped (with the reason)
    models/<hash>.json                each model's catalogue facts
    accuracy/<name>.parquet           imported downstream accuracy
    analysis/<table>.parquet          tables written by `vlbias analyze`
    results.duckdb                    the database

Each task writes its part atomically (a temporary folder renamed into place), so a killed task leaves no part and
concurrent tasks, processes or machines never write the same file. Only folders named by a task id count as parts
(:meth:`ResultsStore.completed_parts`): the hidden ``.<task_id>.*.tmp`` folder that a writer killed at the rename
leaves behind holds a whole copy of the part, and reading it too would count the task's rows twice; a sweep removes
such folders when it starts (:meth:`ResultsStore.clean_temporaries`). The parts are the source of truth: the
database is rebuilt from them into a temporary file that replaces ``results.duckdb`` in one rename, under a file
lock, so a reader never sees a half-built database and a kill during ingestion leaves the previous one intact.

In the database, each audit is a schema and each of its result tables a table (``eat.results``), with every row's
provenance columns (model, model_identity, audit, vlbias_version, config_hash, seed, task_id, dataset, stimuli);
``<audit>.<table>_with_models`` views join each row to its model's catalogue facts. ``tasks`` lists every task
with its status, ``models`` the models, ``accuracy`` imported downstream accuracy, schema ``analysis`` the tables
of `vlbias analyze`.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import socket
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vlbias import __version__
from vlbias.errors import VlbiasError, VlbiasWarning
from vlbias.models.catalogue import COLUMNS, load_catalogue, model_facts
from vlbias.utils.io import atomic_path, stable_hash, write_json
from vlbias.utils.provenance import label
from vlbias.zoo.plan import is_task_id

if TYPE_CHECKING:
    import duckdb
    import pandas as pd

    from vlbias.audits.base import AuditResult
    from vlbias.zoo.plan import Task

DB_NAME = "results.duckdb"
_TMP_MAX_AGE_S = 600  # a part's temporary folder lives seconds; older ones belong to killed writers
_STALE_DB_TMP_S = 3600
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def stimuli_label(stimuli: list[dict[str, Any]]) -> str | None:
    """``name@version`` of each stimulus set, ``; ``-separated (the full records are in record.json)."""
    if not stimuli:
        return None
    return "; ".join(label(s) for s in stimuli)


def _process_gone(host: Any, pid: Any) -> bool:
    """Whether process ``pid`` of ``host`` has ended; False when that cannot be known (another host, no pid)."""
    if host != socket.gethostname() or not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError):
        return False
    return False


def _writer_dead(name: str) -> bool:
    """Whether the ingestion that named a temporary database ``.results.duckdb.<host>-<pid>.tmp`` is gone."""
    m = re.match(rf"^\.{re.escape(DB_NAME)}\.(.+)-(\d+)\.tmp", name)
    return m is not None and _process_gone(m.group(1), int(m.group(2)))


class ReadOnlyResultsError(VlbiasError):
    """The sweep folder cannot be written, so its database cannot be rebuilt."""


@dataclass
class IngestSummary:
    parts: int
    tables: dict[str, int]  # "schema.table" -> rows
    tasks: int
    seconds: float


class ResultsStore:
    """A sweep folder: parts, statuses and the database built from them."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    # ------------------------------------------------------------------ layout
    @property
    def db_path(self) -> Path:
        return self.root / DB_NAME

    def part_dir(self, task: Task) -> Path:
        return self.root / "parts" / task.audit / task.task_id

    def status_path(self, task_id: str) -> Path:
        return self.root / "status" / f"{task_id}.json"

    @classmethod
    def open(cls, path: str | os.PathLike) -> ResultsStore:
        """A sweep folder, or the folder of a ``results.duckdb`` file; a user error if it is neither."""
        p = Path(path)
        if p.is_file() and p.suffix == ".duckdb":
            return cls(p.parent)
        if p.is_dir() and ((p / DB_NAME).is_file() or (p / "parts").is_dir() or (p / "sweep.json").is_file()):
            return cls(p)
        raise VlbiasError(
            f"{p} is not a results database: give a sweep's output folder (it holds results.duckdb and parts/) "
            f"or its results.duckdb file"
        )

    # ------------------------------------------------------------------ writing (tasks)
    def write_part(self, task: Task, result: AuditResult, info: dict[str, Any], transform: Any = None) -> Path:
        """Write one finished task atomically: the audit's output folder (tables stamped, and with the task's
        columns), the fitted mitigation of a mitigated task (``mitigation.npz``), plus task.json, the marker that the
        task is done."""
        import dataclasses

        import pandas as pd

        extra = {"task_id": task.task_id, "dataset": task.dataset, "stimuli": stimuli_label(result.record.stimuli)}
        tables = {}
        for name, df in result.tables.items():
            if not _IDENT.match(name):
                raise VlbiasError(f"audit {task.audit!r} returned a table named {name!r}; use a-z, 0-9 and _")
            df = df.copy()
            for col, value in extra.items():
                if col not in df.columns:
                    df[col] = pd.Series([value] * len(df), index=df.index, dtype="string")
            tables[name] = df
        payload = {
            **task.to_dict(),
            "status": "done",
            "config_hash": result.record.config_hash,
            "seed": result.record.seed,
            "stimuli": result.record.stimuli,
            "vlbias_version": result.record.vlbias_version,
            "content_warning": result.content_warning,
            "tables": {name: len(df) for name, df in result.tables.items()},
            "n_skipped": len(result.skipped),
            "host": socket.gethostname(),
            **info,
            "pid": os.getpid(),  # the writer: clean_temporaries removes its folder if it was killed at the rename
        }

        def task_json(tmp: Path) -> None:
            if transform is not None:
                transform.save(tmp / "mitigation.npz")
            (tmp / "task.json").write_text(json.dumps(payload, indent=2, default=str) + "\n")

        part = dataclasses.replace(result, tables=tables)
        return part.write(self.part_dir(task), csv=False, extras=task_json, overwrite=True)  # a stale part goes

    def write_status(self, task: Task, status: str, info: dict[str, Any]) -> None:
        write_json(self.status_path(task.task_id), {**task.to_dict(), "status": status, **info})

    def clear_status(self, task_id: str) -> None:
        try:
            self.status_path(task_id).unlink()
        except FileNotFoundError:
            pass

    def write_model_facts(self, spec: str, facts: dict[str, Any]) -> None:
        write_json(self.root / "models" / f"{stable_hash(spec, n=16)}.json", {**facts, "model": spec})

    def has_model_facts(self, spec: str) -> bool:
        return (self.root / "models" / f"{stable_hash(spec, n=16)}.json").is_file()

    def accuracy_path(self, name: str) -> Path:
        return self.root / "accuracy" / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}.parquet"

    def write_accuracy(self, df: pd.DataFrame, name: str) -> Path:
        dest = self.accuracy_path(name)
        with atomic_path(dest) as tmp:
            df.to_parquet(tmp, index=False)
        return dest

    def write_analysis(self, tables: dict[str, pd.DataFrame]) -> None:
        for name, df in tables.items():
            with atomic_path(self.root / "analysis" / f"{name}.parquet") as tmp:
                df.to_parquet(tmp, index=False)

    # ------------------------------------------------------------------ reading (tasks)
    def part_task(self, task: Task) -> dict[str, Any] | None:
        path = self.part_dir(task) / "task.json"
        try:
            return json.loads(path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def status(self, task_id: str) -> dict[str, Any] | None:
        try:
            return json.loads(self.status_path(task_id).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def state(self, task: Task, identity: str | None) -> str:
        """done, skipped, failed or todo. A part made by a different model identity is stale: todo."""
        part = self.part_task(task)
        if part is not None and (identity is None or part.get("model_identity") == identity):
            return "done"
        st = self.status(task.task_id)
        if st is not None and (identity is None or st.get("model_identity") in (identity, None)):
            if st.get("status") in ("skipped", "failed"):
                return st["status"]
        return "todo"

    def completed_parts(self) -> list[Path]:
        """The folders of finished tasks, ``parts/<audit>/<task_id>/`` with their task.json, sorted.

        A folder counts only if its name is a task id: the hidden folders of part writers, ``.<task_id>.*.tmp``
        (a whole copy of the part when the writer was killed at the rename) and ``.<task_id>.*.old`` (the part being
        replaced), are never read. Everything that reads parts (ingestion, the fingerprint, the tasks table, the
        zoo analyses) reads these.
        """
        parts = self.root / "parts"
        if not parts.is_dir():
            return []
        out = []
        for audit in sorted(parts.iterdir()):
            if audit.name.startswith(".") or not audit.is_dir():
                continue
            out += [p for p in sorted(audit.iterdir()) if is_task_id(p.name) and (p / "task.json").is_file()]
        return out

    def clean_temporaries(self, max_age_s: float = _TMP_MAX_AGE_S) -> int:
        """Remove what killed part writers left in ``parts/<audit>/``; returns how many folders were removed.

        These are hidden folders: ``.<task_id>.*.tmp`` (a part being written) and ``.<task_id>.*.old`` (a part
        being replaced). A writer that is still running, in this process or another, on this machine or another,
        must keep its folder, so one is removed only when it is older than ``max_age_s`` (writing a part takes
        seconds), or when it is certain that its writer is gone: a ``.tmp`` folder whose task.json (written last,
        just before the rename) names a process of this host that has ended, and a ``.old`` folder whose part was
        already replaced (its writer only deletes it now). Ingestion never reads these folders either way.
        """
        n = 0
        now = time.time()
        for tmp in sorted((self.root / "parts").glob("*/.*")):
            if not tmp.is_dir() or tmp.is_symlink() or not tmp.name.endswith((".tmp", ".old")):
                continue
            try:
                old = now - tmp.stat().st_mtime > max_age_s
                if not old and tmp.name.endswith(".tmp"):
                    old = self._writer_gone(tmp / "task.json")
                elif not old:  # .<task_id>.XXXX.old/x is the replaced part; the new one is in place
                    task_id = tmp.name[1:].split(".", 1)[0]
                    old = (tmp / "x").is_dir() and (tmp.parent / task_id / "task.json").is_file()
            except FileNotFoundError:
                continue
            if old:
                shutil.rmtree(tmp, ignore_errors=True)
                n += 1
        return n

    @staticmethod
    def _writer_gone(task_json: Path) -> bool:
        try:
            d = json.loads(task_json.read_text())
        except (OSError, ValueError):
            return False  # not written yet (or cut short): only its age tells
        return isinstance(d, dict) and _process_gone(d.get("host"), d.get("pid"))

    # ------------------------------------------------------------------ the database
    def _inputs(self) -> list[Path]:
        pats = ("status/*.json", "models/*.json", "accuracy/*.parquet", "analysis/*.parquet")
        parts = [p / "task.json" for p in self.completed_parts()]
        return sorted(parts + [p for pat in pats for p in self.root.glob(pat)])

    def _fingerprint(self) -> str:
        items = []
        for p in self._inputs():
            try:
                st = p.stat()
            except FileNotFoundError:
                continue
            items.append((str(p.relative_to(self.root)), st.st_mtime_ns, st.st_size))
        return stable_hash(items)

    def stale(self) -> bool:
        if not self.db_path.is_file():
            return True
        import duckdb

        try:
            con = duckdb.connect(str(self.db_path), read_only=True)
            try:
                rows = con.execute("SELECT fingerprint FROM _meta").fetchall()
            finally:
                con.close()
        except duckdb.Error:
            return True
        return not rows or rows[0][0] != self._fingerprint()

    def ingest(self, force: bool = False) -> IngestSummary | None:
        """Rebuild the database from the parts (if anything changed, or ``force``); atomic, under a lock.

        A folder this process cannot write (a read-only copy or mount, another user's folder) is a
        :class:`ReadOnlyResultsError`."""
        from filelock import FileLock

        self.root.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.root / ".ingest.lock"))
        try:
            if not os.access(self.root, os.W_OK):  # a read-only mount, or modes (which do not stop root)
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self.root))
            lock.acquire()
        except OSError as e:
            raise ReadOnlyResultsError(
                f"cannot rebuild {self.db_path}: {e.filename or self.root} cannot be written ({e.strerror or e}); "
                f"copy the folder somewhere writable and run `vlbias results ingest --db COPY` there"
            ) from None
        try:
            if not force and not self.stale():
                return None
            return self._rebuild()
        finally:
            lock.release()

    def refresh(self) -> None:
        """Ingest new parts before reading, if there are any (checked without the lock, which only writers take).

        A folder that cannot be written is read as it is: with a one-line :class:`VlbiasWarning` that its database
        may be out of date, or a user error when it has no database at all."""
        if not self.stale():
            return
        try:
            self.ingest()
        except ReadOnlyResultsError:
            if not self.db_path.is_file():
                raise VlbiasError(
                    f"{self.root} holds parts that were never ingested into {DB_NAME}, and the folder cannot be "
                    f"written; copy it somewhere writable and run `vlbias results ingest --db COPY` there"
                ) from None
            warnings.warn(
                f"{self.db_path} may be out of date: the folder cannot be written, so parts newer than the database "
                f"were not ingested; to refresh, copy the folder somewhere writable and run "
                f"`vlbias results ingest --db COPY` there",
                VlbiasWarning,
                stacklevel=2,
            )

    def _rebuild(self) -> IngestSummary:
        import duckdb
        import pandas as pd

        t0 = time.perf_counter()
        fingerprint = self._fingerprint()
        tasks = self._tasks_frame()
        by_table: dict[tuple[str, str], list[str]] = {}
        n_parts = 0
        for part in self.completed_parts():
            n_parts += 1
            for pq in sorted(part.glob("*.parquet")):
                by_table.setdefault((part.parent.name, pq.stem), []).append(str(pq))
        now = time.time()
        for old in self.root.glob(f".{DB_NAME}.*.tmp*"):  # left by a killed ingestion
            # we hold the lock, so none is in progress; the age check guards file systems whose locks do not work
            with contextlib.suppress(FileNotFoundError):
                if _writer_dead(old.name) or now - old.stat().st_mtime > _STALE_DB_TMP_S:
                    old.unlink()
        tmp = self.root / f".{DB_NAME}.{socket.gethostname()}-{os.getpid()}.tmp"
        counts: dict[str, int] = {}
        con = duckdb.connect(str(tmp))
        try:
            con.execute("BEGIN")
            con.register("tasks_df", tasks)
            con.execute("CREATE TABLE tasks AS SELECT * FROM tasks_df")
            con.unregister("tasks_df")
            models = self._models_frame(tasks)
            con.register("models_df", models)
            con.execute("CREATE TABLE models AS SELECT * FROM models_df")
            con.unregister("models_df")
            for (audit, table), files in sorted(by_table.items()):
                schema = quote(audit)
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
                con.execute(
                    f"CREATE TABLE {schema}.{quote(table)} AS SELECT * FROM read_parquet(?, union_by_name = true)",
                    [files],
                )
                counts[f"{audit}.{table}"] = con.execute(f"SELECT count(*) FROM {schema}.{quote(table)}").fetchall()[0][
                    0
                ]
                self._joined_view(con, schema, table, models)
            for folder, target in (("accuracy", "accuracy"), ("analysis", None)):
                files = sorted(str(p) for p in (self.root / folder).glob("*.parquet"))
                if not files:
                    continue
                if target:
                    con.execute(
                        f"CREATE TABLE {target} AS SELECT * FROM read_parquet(?, union_by_name = true)", [files]
                    )
                    counts[target] = con.execute(f"SELECT count(*) FROM {target}").fetchall()[0][0]
                else:
                    con.execute("CREATE SCHEMA IF NOT EXISTS analysis")
                    for f in files:
                        name = quote(Path(f).stem)
                        con.execute(f"CREATE TABLE analysis.{name} AS SELECT * FROM read_parquet(?)", [f])
                        counts[f"analysis.{Path(f).stem}"] = con.execute(
                            f"SELECT count(*) FROM analysis.{name}"
                        ).fetchall()[0][0]
            meta = pd.DataFrame(
                [{"fingerprint": fingerprint, "vlbias_version": __version__, "parts": n_parts, "built": time.time()}]
            )
            con.register("meta_df", meta)
            con.execute("CREATE TABLE _meta AS SELECT * FROM meta_df")
            con.unregister("meta_df")
            con.execute("COMMIT")
            con.execute("CHECKPOINT")
        except BaseException:
            con.close()
            tmp.unlink(missing_ok=True)
            raise
        con.close()
        os.replace(tmp, self.db_path)
        return IngestSummary(parts=n_parts, tables=counts, tasks=len(tasks), seconds=time.perf_counter() - t0)

    @staticmethod
    def _joined_view(con: duckdb.DuckDBPyConnection, schema: str, table: str, models: pd.DataFrame) -> None:
        cols = {r[0] for r in con.execute(f"DESCRIBE {schema}.{quote(table)}").fetchall()}
        if "model" not in cols:
            return
        extra = [c for c in models.columns if c not in cols and c != "model"]
        select = ", ".join(["r.*"] + [f"m.{quote(c)}" for c in extra])
        con.execute(
            f"CREATE VIEW {schema}.{quote(table + '_with_models')} AS SELECT {select} "
            f"FROM {schema}.{quote(table)} r LEFT JOIN models m ON r.model = m.model"
        )

    def _tasks_frame(self) -> pd.DataFrame:
        import pandas as pd

        rows: dict[str, dict[str, Any]] = {}
        for st in sorted(self.root.glob("status/*.json")):
            try:
                d = json.loads(st.read_text())
            except json.JSONDecodeError:
                continue
            rows[d["task_id"]] = d
        for part in self.completed_parts():
            d = json.loads((part / "task.json").read_text())
            rows[d["task_id"]] = d  # a finished part wins over an older failure record
        cols = [
            "task_id",
            "model",
            "audit",
            "dataset",
            "mitigation",
            "options",
            "status",
            "error_type",
            "error",
            "model_identity",
            "config_hash",
            "seed",
            "stimuli",
            "vlbias_version",
            "content_warning",
            "seconds",
            "finished",
            "host",
            "traceback",
        ]
        out = []
        for d in rows.values():
            r = {c: d.get(c) for c in cols}
            r["options"] = json.dumps(d.get("options", {}), sort_keys=True, default=str)
            r["stimuli"] = stimuli_label(d.get("stimuli") or [])
            out.append(r)
        df = pd.DataFrame(out, columns=cols)
        for c in cols:
            if c not in ("seed", "seconds", "finished"):
                df[c] = df[c].astype("string")
        df["seed"] = pd.to_numeric(df["seed"]).astype("Int64")
        df["seconds"] = pd.to_numeric(df["seconds"]).astype("Float64")
        df["finished"] = pd.to_numeric(df["finished"]).astype("Float64")
        return df.sort_values(["model", "audit", "task_id"]).reset_index(drop=True)

    def _models_frame(self, tasks: pd.DataFrame) -> pd.DataFrame:
        import pandas as pd

        facts: dict[str, dict[str, Any]] = {}
        for f in sorted(self.root.glob("models/*.json")):
            d = json.loads(f.read_text())
            facts[d["model"]] = d
        catalogue = None
        for spec in tasks["model"].dropna().unique():
            if spec not in facts:
                catalogue = catalogue if catalogue is not None else load_catalogue()
                facts[spec] = {**model_facts(spec, catalogue), "model": spec}
        cols = ["model"] + [c for c in COLUMNS if c != "spec"]
        rows = [{c: d.get(c) for c in cols} | {"model_identity": d.get("model_identity")} for d in facts.values()]
        df = pd.DataFrame(rows, columns=cols + ["model_identity"])
        for c, (kind, _) in COLUMNS.items():
            if c in df.columns:
                df[c] = df[c].astype(kind)
        df["model"] = df["model"].astype("string")
        df["model_identity"] = df["model_identity"].astype("string")
        return df.sort_values("model").reset_index(drop=True)

    # ------------------------------------------------------------------ querying
    def connect(self, ingest: bool = True) -> duckdb.DuckDBPyConnection:
        import duckdb

        if ingest and any((self.root / d).is_dir() for d in ("parts", "status")):
            self.refresh()  # only a folder with parts is rebuilt: a lone results.duckdb is never overwritten
        if not self.db_path.is_file():
            raise VlbiasError(f"{self.root} holds no results yet; run a sweep into it first")
        return duckdb.connect(str(self.db_path), read_only=True)

    def query(self, sql: str) -> pd.DataFrame:
        import duckdb

        con = self.connect()
        try:
            return con.execute(sql).df()
        except duckdb.Error as e:
            first = str(e).strip().splitlines()[0]
            raise VlbiasError(f"query failed: {first}; `vlbias results tables` lists the tables") from None
        finally:
            con.close()

    def tables(self) -> pd.DataFrame:
        import pandas as pd

        con = self.connect()
        try:
            rows = con.execute(
                "SELECT table_schema, table_name, table_type FROM information_schema.tables "
                "WHERE table_name NOT LIKE '\\_%' ESCAPE '\\' ORDER BY table_schema, table_name"
            ).fetchall()
            out = []
            for schema, name, kind in rows:
                full = name if schema == "main" else f"{schema}.{name}"
                n = con.execute(f"SELECT count(*) FROM {quote(schema)}.{quote(name)}").fetchall()[0][0]
                out.append({"table": full, "rows": n, "kind": "view" if kind == "VIEW" else "table"})
        finally:
            con.close()
        return pd.DataFrame(out, columns=["table", "rows", "kind"])

    def export(self, out_dir: str | os.PathLike, fmt: str = "parquet", tables: list[str] | None = None) -> list[Path]:
        """Each table (not the views) as ``<schema>.<table>.parquet`` or ``.csv`` in ``out_dir``, atomically."""
        listing = self.tables()
        names = listing.loc[listing["kind"] == "table", "table"].tolist()
        if tables:
            unknown = [t for t in tables if t not in set(listing["table"])]
            if unknown:
                raise VlbiasError(f"no table {', '.join(unknown)} in {self.db_path}; tables: {', '.join(names)}")
            names = tables
        out_dir = Path(out_dir)
        written = []
        con = self.connect(ingest=False)
        try:
            for name in names:
                ref = ".".join(quote(p) for p in name.split(".", 1))
                dest = out_dir / f"{name}.{fmt}"
                with atomic_path(dest, suffix=f".{fmt}") as tmp:
                    write_table(con.sql(f"SELECT * FROM {ref}"), tmp, fmt)
                written.append(dest)
        finally:
            con.close()
        return written


def write_table(relation, path: Path, fmt: str) -> None:
    """A query result to Parquet or CSV through Arrow (no SQL string holds the path)."""
    table = relation.to_arrow_table()
    if fmt == "parquet":
        import pyarrow.parquet as pq

        pq.write_table(table, path)
    else:
        import pyarrow.csv as pacsv

        pacsv.write_csv(table, path)
