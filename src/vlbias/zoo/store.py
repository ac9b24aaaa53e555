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
such folders when it starts (:meth:`ResultsStore.clean_temporaries`). The parts are the source of truth. Ingestion
(:meth:`ResultsStore.ingest`) adds the parts, statuses, facts and tables the database lacks to a copy of it (its
``_ingested`` table lists every input it holds, with its size and time), or rebuilds it from all of them where an
append could not give the same tables; either way into a temporary file that replaces ``results.duckdb`` in one
rename, under a file lock, so a reader never sees a half-built database and a kill during ingestion leaves the
previous one intact. The work is proportional to what is new (plus a byte copy of the database and a ``stat`` of
each input), so a sweep run as one invocation per task does not grow quadratically.

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
from vlbias.models.catalogue import (
    COLUMNS,
    _py,
    catalogue_key,
    load_catalogue,
    model_facts,
    read_catalogue_file,
    user_catalogue_paths,
)
from vlbias.utils.io import atomic_path, stable_hash, write_json
from vlbias.utils.provenance import label
from vlbias.zoo.plan import is_task_id

if TYPE_CHECKING:
    import duckdb
    import pandas as pd

    from vlbias.audits.base import AuditResult
    from vlbias.zoo.plan import Task

DB_NAME = "results.duckdb"
INGEST_FORMAT = 2  # the layout of _meta and _ingested; a database of another layout is rebuilt
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


def _json_object(path: Path) -> dict[str, Any]:
    """A JSON file's object ({} for a file that is missing, unreadable or not an object)."""
    try:
        d = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return d if isinstance(d, dict) else {}


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
class _Held:
    """What a database was built from: its inputs' fingerprint, vlbias version and layout, and each input's
    ``(mtime_ns, size)``."""

    fingerprint: str
    format: int | None
    vlbias_version: str | None
    inputs: dict[str, tuple[int, int]]


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
        extra = {"task_id": task.task_id, "dataset": task.dataset, "stimuli": stimuli_label(result.record.stimuli)}
        for name in result.tables:
            if not _IDENT.match(name):
                raise VlbiasError(f"audit {task.audit!r} returned a table named {name!r}; use a-z, 0-9 and _")
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

        # a stale part goes
        return result.write(self.part_dir(task), csv=False, extras=task_json, overwrite=True, columns=extra)

    def write_status(self, task: Task, status: str, info: dict[str, Any]) -> None:
        write_json(self.status_path(task.task_id), {**task.to_dict(), "status": status, **info})

    def clear_status(self, task_id: str) -> None:
        try:
            self.status_path(task_id).unlink()
        except FileNotFoundError:
            pass

    def model_facts_path(self, spec: str) -> Path:
        return self.root / "models" / f"{stable_hash(spec, n=16)}.json"

    def write_model_facts(self, spec: str, facts: dict[str, Any]) -> None:
        write_json(self.model_facts_path(spec), {**facts, "model": spec})

    def has_model_facts(self, spec: str) -> bool:
        return self.model_facts_path(spec).is_file()

    def stored_model_facts(self, spec: str) -> dict[str, Any]:
        """The facts ``models/`` holds for a model ({} if none)."""
        return _json_object(self.model_facts_path(spec))

    def refresh_model_facts(
        self, identities: dict[str, str | None] | None = None, catalogues=()
    ) -> dict[str, list[str]]:
        """Each model's facts, brought up to date with the model catalogue: the facts stored before are kept, what
        they lack is added from the catalogue (shipped rows, with the architecture's facts computed on the meta
        device for open_clip models without a row), and the rows of the user's catalogue files
        (``$VLBIAS_CATALOGUE`` and ``catalogues``: a file made after the sweep is picked up here) replace them.
        ``identities`` (spec -> model identity) names the models; default: every model of the tasks and of
        ``models/``. Returns, per model whose facts changed, the names of the facts that changed. The database
        takes them (and, where every catalogue is silent, what the loaded encoders reported) at its next
        ingestion."""
        if identities is None:
            specs = {d.get("model") for d in self._task_records()}
            specs |= {_json_object(f).get("model") for f in self.root.glob("models/*.json")}
            identities = {s: None for s in sorted(x for x in specs if isinstance(x, str))}
        catalogue = load_catalogue(catalogues)
        given: dict[str, dict[str, Any]] = {}
        for path in user_catalogue_paths(catalogues):
            for row in read_catalogue_file(path).to_dict("records"):
                facts = {k: _py(v) for k, v in row.items()}
                given.setdefault(row["spec"], {}).update({k: v for k, v in facts.items() if v is not None})
        changed: dict[str, list[str]] = {}
        for spec, identity in identities.items():
            old = self.stored_model_facts(spec)
            known = {k: v for k, v in model_facts(spec, catalogue, profile=True).items() if v is not None}
            facts = {**known, **old, **given.get(catalogue_key(spec), {})}
            facts.update(model_identity=identity or old.get("model_identity"), model=spec)
            diff = sorted(k for k in facts if k not in ("model", "spec") and facts.get(k) != old.get(k))
            if diff or not old:
                self.write_model_facts(spec, facts)
                changed[spec] = diff
        return changed

    def _task_records(self) -> list[dict[str, Any]]:
        """The task.json of every finished part and the record of every failed or skipped task."""
        out = []
        for f in [p / "task.json" for p in self.completed_parts()] + sorted(self.root.glob("status/*.json")):
            d = _json_object(f)
            if d:
                out.append(d)
        return out

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
    def _snapshot(self) -> dict[str, tuple[int, int]]:
        """Every input of the database, ``relative path -> (mtime_ns, size)``, sorted: each finished part's
        task.json (its marker; a part is never changed in place, only replaced as a whole), the status files,
        model facts, accuracy and analysis tables."""
        pats = ("status/*.json", "models/*.json", "accuracy/*.parquet", "analysis/*.parquet")
        paths = [p / "task.json" for p in self.completed_parts()] + [p for pat in pats for p in self.root.glob(pat)]
        out = {}
        for p in sorted(paths):
            try:
                st = p.stat()
            except FileNotFoundError:
                continue
            out[p.relative_to(self.root).as_posix()] = (st.st_mtime_ns, st.st_size)
        return out

    @staticmethod
    def _fingerprint_of(snapshot: dict[str, tuple[int, int]]) -> str:
        return stable_hash([(k, *v) for k, v in snapshot.items()])

    def _fingerprint(self) -> str:
        return self._fingerprint_of(self._snapshot())

    def stale(self) -> bool:
        """Whether the database misses inputs (or holds ones that are gone), judged by their sizes and times."""
        return self._differs(self._snapshot())

    def ingest(self, force: bool = False) -> IngestSummary | None:
        """Bring the database up to date with the parts (if anything changed, or ``force``); atomic, under a lock.

        Only what is new is read: the parts, statuses, facts and tables added since the database was built are
        appended to a copy of it (:meth:`_append`), so a sweep run as one invocation per task (a SLURM array) costs
        each invocation its own parts, not all of them. Whatever an append cannot reproduce exactly (a part replaced
        or removed, a table whose new parts have other columns, another vlbias version), and ``force``, rebuilds
        the database from all the parts (:meth:`_rebuild`). Either way the new database is written to a temporary
        file that replaces ``results.duckdb`` in one rename, so a reader never sees a half-built database and a
        kill leaves the previous one intact; and it holds the tables a rebuild from the same parts holds.

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
            snapshot = self._snapshot()
            held = self._held()
            if not force and held is not None and held.fingerprint == self._fingerprint_of(snapshot):
                return None
            self._remove_dead_temporaries()
            if not force and held is not None:
                summary = self._append(snapshot, held)
                if summary is not None:
                    return summary
            return self._rebuild(snapshot)
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

    def _differs(self, snapshot: dict[str, tuple[int, int]]) -> bool:
        held = self._held(inputs=False)
        return held is None or held.fingerprint != self._fingerprint_of(snapshot)

    def _held(self, inputs: bool = True) -> _Held | None:
        """What the database was built from (the inputs only if ``inputs``); None if there is none or it cannot be
        read. A database of an older layout has its fingerprint only (and is rebuilt, never appended to)."""
        if not self.db_path.is_file():
            return None
        import duckdb

        try:
            con = duckdb.connect(str(self.db_path), read_only=True)
        except duckdb.Error:
            return None
        try:
            rows = con.execute("SELECT fingerprint FROM _meta").fetchall()
            if not rows:
                return None
            held = _Held(rows[0][0], None, None, {})
            if inputs:
                with contextlib.suppress(duckdb.Error):
                    fmt, version = con.execute("SELECT format, vlbias_version FROM _meta").fetchall()[0]
                    found = con.execute("SELECT path, mtime_ns, size FROM _ingested").fetchall()
                    held = _Held(held.fingerprint, fmt, version, {p: (m, n) for p, m, n in found})
            return held
        except duckdb.Error:
            return None
        finally:
            con.close()

    def _remove_dead_temporaries(self) -> None:
        now = time.time()
        for old in self.root.glob(f".{DB_NAME}.*.tmp*"):  # left by a killed ingestion
            # we hold the lock, so none is in progress; the age check guards file systems whose locks do not work
            with contextlib.suppress(FileNotFoundError):
                if _writer_dead(old.name) or now - old.stat().st_mtime > _STALE_DB_TMP_S:
                    old.unlink()

    def _temporary_db(self) -> Path:
        return self.root / f".{DB_NAME}.{socket.gethostname()}-{os.getpid()}.tmp"

    @staticmethod
    def _parts_tables(part_dirs: list[Path]) -> dict[tuple[str, str], list[str]]:
        """``(audit, table) -> [Parquet file, ...]`` of these parts, in part order."""
        by_table: dict[tuple[str, str], list[str]] = {}
        for part in part_dirs:
            for pq in sorted(part.glob("*.parquet")):
                by_table.setdefault((part.parent.name, pq.stem), []).append(str(pq))
        return by_table

    def _part_dirs(self, snapshot: dict[str, tuple[int, int]]) -> list[Path]:
        return [self.root / k[: -len("/task.json")] for k in snapshot if k.startswith("parts/")]

    def _rebuild(self, snapshot: dict[str, tuple[int, int]] | None = None) -> IngestSummary:
        """The database from all the parts in ``snapshot`` (the inputs now, if None), into a temporary file that
        replaces ``results.duckdb``."""
        import duckdb

        t0 = time.perf_counter()
        snapshot = self._snapshot() if snapshot is None else snapshot
        part_dirs = self._part_dirs(snapshot)
        tasks = self._tasks_frame(snapshot)
        tmp = self._temporary_db()
        tmp.unlink(missing_ok=True)
        counts: dict[str, int] = {}
        con = duckdb.connect(str(tmp))
        try:
            con.execute("BEGIN")
            self._put_frame(con, "tasks", tasks)
            self._put_frame(con, "models", self._models_frame(tasks["model"].dropna().unique()))
            for (audit, table), files in sorted(self._parts_tables(part_dirs).items()):
                counts[f"{audit}.{table}"] = self._load_parts(con, audit, table, files, append=False)
            counts |= self._load_folders(con, snapshot, changed=None)
            self._finish(con, snapshot, len(part_dirs), None)
        except BaseException:
            con.close()
            tmp.unlink(missing_ok=True)
            raise
        con.close()
        os.replace(tmp, self.db_path)
        return IngestSummary(parts=len(part_dirs), tables=counts, tasks=len(tasks), seconds=time.perf_counter() - t0)

    def _append(self, snapshot: dict[str, tuple[int, int]], held: _Held) -> IngestSummary | None:
        """The database with the inputs of ``snapshot`` it lacks added, in a copy that replaces it; None (and
        nothing written) when only a rebuild gives the right tables: a database of another vlbias version or
        format, a part it holds replaced or removed, or new parts of a table whose columns differ from the table's."""
        import duckdb

        t0 = time.perf_counter()
        if (held.format, held.vlbias_version) != (INGEST_FORMAT, __version__):
            return None
        if any(k.startswith("parts/") and snapshot.get(k) != v for k, v in held.inputs.items()):
            return None  # a part replaced (another model identity) or removed: rebuilt
        changed = {k for k, v in snapshot.items() if held.inputs.get(k) != v}
        changed |= {k for k in held.inputs if k not in snapshot}
        new_parts = [self.root / k[: -len("/task.json")] for k in sorted(changed) if k.startswith("parts/")]
        tmp = self._temporary_db()
        tmp.unlink(missing_ok=True)
        shutil.copyfile(self.db_path, tmp)  # a copy: readers keep the old file until the rename
        counts: dict[str, int] = {}
        con = duckdb.connect(str(tmp))
        try:
            con.execute("BEGIN")
            tables = set(con.execute("SELECT schema_name, table_name FROM duckdb_tables()").fetchall())
            new_tables = self._parts_tables(new_parts)
            for (audit, table), files in new_tables.items():
                if (audit, table) in tables and not self._same_columns(con, audit, table, files):
                    con.execute("ROLLBACK")
                    con.close()
                    tmp.unlink(missing_ok=True)
                    return None
            dropped = self._update_tasks(con, snapshot, changed)
            specs = [r[0] for r in con.execute("SELECT DISTINCT model FROM tasks WHERE model IS NOT NULL").fetchall()]
            have = {r[0] for r in con.execute("SELECT model FROM models").fetchall()}
            if dropped or any(k.startswith("models/") for k in changed) or not set(specs) <= have:
                self._put_frame(con, "models", self._models_frame(specs), replace=True)
            for (audit, table), files in sorted(new_tables.items()):
                append = (audit, table) in tables
                counts[f"{audit}.{table}"] = self._load_parts(con, audit, table, files, append=append)
            counts |= self._load_folders(con, snapshot, changed)
            parts = sum(1 for k in snapshot if k.startswith("parts/"))
            self._finish(con, snapshot, parts, changed)
            n_tasks = con.execute("SELECT count(*) FROM tasks").fetchall()[0][0]
        except BaseException:
            con.close()
            tmp.unlink(missing_ok=True)
            raise
        con.close()
        os.replace(tmp, self.db_path)
        return IngestSummary(parts=len(new_parts), tables=counts, tasks=n_tasks, seconds=time.perf_counter() - t0)

    @staticmethod
    def _put_frame(con: duckdb.DuckDBPyConnection, name: str, df: pd.DataFrame, replace: bool = False) -> None:
        con.register("frame_df", df)
        try:
            con.execute(f"CREATE {'OR REPLACE ' if replace else ''}TABLE {name} AS SELECT * FROM frame_df")
        finally:
            con.unregister("frame_df")

    @staticmethod
    def _same_columns(con: duckdb.DuckDBPyConnection, audit: str, table: str, files: list[str]) -> bool:
        """Whether every file has exactly the table's columns (names, order, types): then appending its rows gives
        the table that reading every part with ``union_by_name`` gives."""
        want = [r[:2] for r in con.execute(f"DESCRIBE {quote(audit)}.{quote(table)}").fetchall()]
        describe = "DESCRIBE SELECT * FROM read_parquet(?)"
        return all([r[:2] for r in con.execute(describe, [f]).fetchall()] == want for f in files)

    def _load_parts(
        self, con: duckdb.DuckDBPyConnection, audit: str, table: str, files: list[str], append: bool
    ) -> int:
        """One result table from its parts' Parquet files (appended to the table, or made with its view); the
        table's row count."""
        schema, name = quote(audit), f"{quote(audit)}.{quote(table)}"
        if append:
            con.execute(f"INSERT INTO {name} BY NAME SELECT * FROM read_parquet(?, union_by_name = true)", [files])
        else:
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM read_parquet(?, union_by_name = true)", [files])
            self._joined_view(con, schema, table)
        return con.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0]

    def _load_folders(
        self, con: duckdb.DuckDBPyConnection, snapshot: dict[str, tuple[int, int]], changed: set[str] | None
    ) -> dict[str, int]:
        """The ``accuracy`` table and schema ``analysis`` from their folders' Parquet files: made again where any of
        their files is in ``changed`` (all of them when ``changed`` is None)."""
        counts: dict[str, int] = {}
        acc = [str(self.root / k) for k in snapshot if k.startswith("accuracy/")]
        if changed is None or any(k.startswith("accuracy/") for k in changed):
            con.execute("DROP TABLE IF EXISTS accuracy")
            if acc:
                con.execute("CREATE TABLE accuracy AS SELECT * FROM read_parquet(?, union_by_name = true)", [acc])
                counts["accuracy"] = con.execute("SELECT count(*) FROM accuracy").fetchall()[0][0]
        for key in sorted(k for k in (changed if changed is not None else snapshot) if k.startswith("analysis/")):
            name = quote(Path(key).stem)
            con.execute("CREATE SCHEMA IF NOT EXISTS analysis")
            con.execute(f"DROP TABLE IF EXISTS analysis.{name}")
            if key in snapshot:
                con.execute(f"CREATE TABLE analysis.{name} AS SELECT * FROM read_parquet(?)", [str(self.root / key)])
                counts[f"analysis.{Path(key).stem}"] = con.execute(f"SELECT count(*) FROM analysis.{name}").fetchall()[
                    0
                ][0]
        return counts

    def _finish(
        self, con: duckdb.DuckDBPyConnection, snapshot: dict[str, tuple[int, int]], parts: int, changed: set[str] | None
    ) -> None:
        """What the database was built from (``_ingested``: the rows of ``changed`` inputs, all when None; and
        ``_meta``), then commit and checkpoint."""
        import pandas as pd

        keys = list(snapshot) if changed is None else sorted(k for k in changed if k in snapshot)
        ingested = pd.DataFrame([(k, *snapshot[k]) for k in keys], columns=["path", "mtime_ns", "size"]).astype(
            {"path": "string", "mtime_ns": "int64", "size": "int64"}
        )
        if changed is None:
            self._put_frame(con, "_ingested", ingested)
        else:
            con.register("changed_df", pd.DataFrame({"path": pd.array(sorted(changed), dtype="string")}))
            con.register("ingested_df", ingested)
            try:
                con.execute("DELETE FROM _ingested WHERE path IN (SELECT path FROM changed_df)")
                con.execute("INSERT INTO _ingested SELECT * FROM ingested_df")
            finally:
                con.unregister("changed_df")
                con.unregister("ingested_df")
        meta = pd.DataFrame(
            [
                {
                    "fingerprint": self._fingerprint_of(snapshot),
                    "vlbias_version": __version__,
                    "format": INGEST_FORMAT,
                    "parts": parts,
                    "built": time.time(),
                }
            ]
        )
        self._put_frame(con, "_meta", meta, replace=True)
        con.execute("COMMIT")
        con.execute("CHECKPOINT")

    @staticmethod
    def _joined_view(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> None:
        cols = {r[0] for r in con.execute(f"DESCRIBE {schema}.{quote(table)}").fetchall()}
        if "model" not in cols:
            return
        model_cols = [r[0] for r in con.execute("DESCRIBE models").fetchall()]
        extra = [c for c in model_cols if c not in cols and c != "model"]
        select = ", ".join(["r.*"] + [f"m.{quote(c)}" for c in extra])
        con.execute(
            f"CREATE VIEW {schema}.{quote(table + '_with_models')} AS SELECT {select} "
            f"FROM {schema}.{quote(table)} r LEFT JOIN models m ON r.model = m.model"
        )

    _TASK_COLUMNS = (
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
    )

    def _task_rows(self, snapshot: dict[str, tuple[int, int]], keys) -> dict[str, dict[str, Any]]:
        """``task_id -> task record`` from the status files and part markers among ``keys`` (of ``snapshot``); a
        finished part wins over an older failure record."""
        rows: dict[str, dict[str, Any]] = {}
        keys = sorted(keys)
        for key in [k for k in keys if k.startswith("status/")] + [k for k in keys if k.startswith("parts/")]:
            try:
                d = json.loads((self.root / key).read_text())
            except (FileNotFoundError, json.JSONDecodeError):
                continue
            rows[d["task_id"]] = d
        return rows

    def _tasks_frame_of(self, rows) -> pd.DataFrame:
        import pandas as pd

        cols = list(self._TASK_COLUMNS)
        out = []
        for d in rows:
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
        return df

    def _tasks_frame(self, snapshot: dict[str, tuple[int, int]] | None = None) -> pd.DataFrame:
        snapshot = self._snapshot() if snapshot is None else snapshot
        rows = self._task_rows(snapshot, [k for k in snapshot if k.startswith(("status/", "parts/"))])
        df = self._tasks_frame_of(rows.values())
        return df.sort_values(["model", "audit", "task_id"]).reset_index(drop=True)

    def _update_tasks(self, con: duckdb.DuckDBPyConnection, snapshot: dict[str, tuple[int, int]], changed) -> bool:
        """The ``tasks`` table with the rows of the changed status files and new parts made again: each affected
        task's row is its part's marker if it has a part, else its status file (none if both are gone); the rows
        sorted as a rebuild sorts them. Whether a task lost its row (so a model may have left the table)."""
        import pandas as pd

        touched = [k for k in changed if k.startswith(("status/", "parts/"))]
        if not touched:
            return False
        ids = set()
        for key in touched:
            if key.startswith("status/"):
                ids.add(Path(key).stem)
            else:
                ids.add(key.split("/")[2])
        keys = [k for k in snapshot if k.startswith("status/") and Path(k).stem in ids]
        keys += [k for k in snapshot if k.startswith("parts/") and k.split("/")[2] in ids]
        rows = self._task_rows(snapshot, keys)
        con.register("affected_df", pd.DataFrame({"task_id": pd.array(sorted(ids), dtype="string")}))
        con.register("rows_df", self._tasks_frame_of(rows.values()))
        try:
            con.execute("DELETE FROM tasks WHERE task_id IN (SELECT task_id FROM affected_df)")
            con.execute("INSERT INTO tasks BY NAME SELECT * FROM rows_df")
        finally:
            con.unregister("affected_df")
            con.unregister("rows_df")
        con.execute("CREATE OR REPLACE TABLE tasks AS SELECT * FROM tasks ORDER BY model, audit, task_id")
        return bool(ids - set(rows))

    def _models_frame(self, specs) -> pd.DataFrame:
        """Every model's catalogue facts: its ``models/`` file, else the catalogue's row of each spec in ``specs``."""
        import pandas as pd

        facts: dict[str, dict[str, Any]] = {}
        for f in sorted(self.root.glob("models/*.json")):
            d = json.loads(f.read_text())
            facts[d["model"]] = d
        catalogue = None
        for spec in specs:
            if spec not in facts:
                catalogue = catalogue if catalogue is not None else load_catalogue()
                facts[spec] = {**model_facts(spec, catalogue), "model": spec}
        # where the catalogue is silent, what the loaded encoder reported (a text model's architecture and size)
        for part in self.completed_parts():
            d = _json_object(part / "task.json")
            mine = facts.get(d.get("model"))
            if mine is not None and isinstance(d.get("model_facts"), dict):
                for k, v in d["model_facts"].items():
                    if mine.get(k) is None and v is not None:
                        mine[k] = v
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
