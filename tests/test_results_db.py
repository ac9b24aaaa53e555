"""The results store: atomic parts, concurrent writers and ingesters, schema evolution, query and export."""

from __future__ import annotations

import multiprocessing as mp
import shutil
from pathlib import Path

import pandas as pd
import pytest

from vlbias.audits.base import AuditResult, RunRecord
from vlbias.cli import main
from vlbias.errors import VlbiasError
from vlbias.zoo.plan import make_task
from vlbias.zoo.store import ResultsStore


def fake_result(model: str, audit: str, value: float, extra: dict | None = None) -> AuditResult:
    rec = RunRecord(
        audit=audit,
        model={"spec": model, "identity": f"id-{model}"},
        options={"v": value},
        seed=1,
        stimuli=[{"name": "words", "version": "2", "sha256": "a" * 64}],
    )
    df = pd.DataFrame(
        {"test": ["t1", "t2"], "order": ["text", "text"], "effect_size": [value, -value], **(extra or {})}
    )
    return AuditResult(audit, {"results": df}, rec)


def write(store: ResultsStore, model: str, audit: str, value: float, extra=None):
    task = make_task(model, audit, {"v": value})
    store.write_part(task, fake_result(model, audit, value, extra), {"model_identity": f"id-{model}", "seconds": 0.1})
    return task


def _writer(root: str, k: int) -> None:
    store = ResultsStore(root)
    for i in range(5):
        write(store, f"vectors:/m{k}.parquet", "demo", k * 10 + i)
        store.ingest()


def test_concurrent_writers_and_ingesters_never_corrupt_the_database(tmp_path):
    root = tmp_path / "db"
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(str(root), k)) for k in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    store = ResultsStore(root)
    df = store.query("SELECT model, count(*) AS n, count(DISTINCT task_id) AS k FROM demo.results GROUP BY model")
    assert len(df) == 4 and df["n"].eq(10).all() and df["k"].eq(5).all()
    assert store.query("SELECT count(*) AS n FROM tasks")["n"].item() == 20
    assert not list(root.glob(".results.duckdb.*")) and not list(root.glob("parts/*/.*"))


def test_rows_are_stamped_and_tables_evolve_by_name(tmp_path):
    store = ResultsStore(tmp_path)
    t1 = write(store, "vectors:/a.parquet", "demo", 1.0, {"ci_low": [0.1, -2.0]})
    write(store, "vectors:/b.parquet", "demo", 2.0, {"n_permutations": [100, 100]})
    df = store.query("SELECT * FROM demo.results ORDER BY model, test")
    assert df["ci_low"].isna().tolist() == [False, False, True, True]
    assert df["n_permutations"].isna().tolist() == [True, True, False, False]
    first = df.iloc[0]
    assert first["task_id"] == t1.task_id and first["stimuli"] == "words@2" and first["seed"] == 1
    assert first["config_hash"] == fake_result("vectors:/a.parquet", "demo", 1.0).record.config_hash
    assert pd.isna(first["dataset"])
    # the part is itself an audit output folder
    back = AuditResult.read(store.part_dir(t1))
    assert back.results["effect_size"].tolist() == [1.0, -1.0]
    assert store.ingest() is None  # nothing changed: no rebuild


def test_a_part_written_again_replaces_the_old_one(tmp_path):
    store = ResultsStore(tmp_path)
    write(store, "vectors:/a.parquet", "demo", 1.0)
    task = make_task("vectors:/a.parquet", "demo", {"v": 1.0})
    store.write_part(task, fake_result("vectors:/a.parquet", "demo", 5.0), {"model_identity": "new"})
    df = store.query("SELECT effect_size FROM demo.results ORDER BY effect_size")
    assert df["effect_size"].tolist() == [-5.0, 5.0]


def test_results_cli_query_tables_export(tmp_path, capsys):
    store = ResultsStore(tmp_path / "db")
    for i, m in enumerate(["vectors:/a.parquet", "vectors:/b.parquet"]):
        write(store, m, "demo", float(i + 1))
    db = str(tmp_path / "db")
    assert (
        main(
            [
                "results",
                "query",
                "SELECT model, effect_size FROM demo.results ORDER BY 2",
                "--db",
                db,
                "--format",
                "csv",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "model,effect_size" and len(out.splitlines()) == 5
    assert main(["results", "tables", "--db", db]) == 0
    listing = capsys.readouterr().out
    for name in ("demo.results", "demo.results_with_models", "tasks", "models"):
        assert name in listing
    assert main(["results", "export", str(tmp_path / "ex"), "--db", db, "--format", "csv"]) == 0
    exported = pd.read_csv(tmp_path / "ex" / "demo.results.csv")
    assert len(exported) == 4 and (tmp_path / "ex" / "tasks.csv").is_file()
    assert main(["results", "export", str(tmp_path / "ex"), "--db", db, "--table", "demo.results"]) == 2
    assert "add --overwrite to replace it" in capsys.readouterr().err  # an export is replaced only when asked
    args = ["results", "export", str(tmp_path / "ex"), "--db", db, "--table", "demo.results", "--overwrite"]
    assert main(args) == 0
    assert capsys.readouterr().err == f"wrote 1 table to {tmp_path / 'ex'}\n"
    pq = pd.read_parquet(tmp_path / "ex" / "demo.results.parquet")
    assert sorted(pq["effect_size"]) == [-2.0, -1.0, 1.0, 2.0]
    assert sorted(p.name for p in (tmp_path / "ex").iterdir()) == [".vlbias-output.json", "demo.results.parquet"]
    assert (
        main(["results", "query", "SELECT * FROM demo.results", "--db", db, "--out", str(tmp_path / "q.parquet")]) == 0
    )
    assert len(pd.read_parquet(tmp_path / "q.parquet")) == 4
    one = ["results", "query", "SELECT * FROM demo.results LIMIT 1", "--db", db, "--out", str(tmp_path / "one.csv")]
    capsys.readouterr()
    assert main(one) == 0 and capsys.readouterr().err == f"wrote 1 row to {tmp_path / 'one.csv'}\n"


def test_results_ingest_counts_in_words(tmp_path, capsys):
    import re

    write(ResultsStore(tmp_path / "db"), "vectors:/a.parquet", "demo", 1.0)
    assert main(["results", "ingest", "--db", str(tmp_path / "db")]) == 0
    assert re.fullmatch(r"ingested 1 part into 1 table \(\d+\.\d s\)\n", capsys.readouterr().err)


@pytest.mark.parametrize(
    "args, message",
    [
        (["query", "SELECT * FROM nope"], "query failed"),
        (["query", "SELEC 1"], "query failed"),
        (["export", "OUT", "--table", "demo.nope"], "no table demo.nope"),
        (["query", "SELECT 1", "--out", "x.txt"], ".parquet or .csv"),
    ],
)
def test_results_cli_errors_are_one_line(tmp_path, capsys, args, message):
    store = ResultsStore(tmp_path / "db")
    write(store, "vectors:/a.parquet", "demo", 1.0)
    args = [a.replace("OUT", str(tmp_path / "ex")) for a in args]
    code = main(["results", *args, "--db", str(tmp_path / "db")])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1


def test_a_copied_database_file_is_queried_as_is(tmp_path):
    store = ResultsStore(tmp_path / "db")
    write(store, "vectors:/a.parquet", "demo", 1.0)
    store.ingest()
    (tmp_path / "copy").mkdir()
    shutil.copy(tmp_path / "db" / "results.duckdb", tmp_path / "copy" / "results.duckdb")
    copy = ResultsStore.open(tmp_path / "copy" / "results.duckdb")
    assert copy.query("SELECT count(*) AS n FROM demo.results")["n"].item() == 2  # not rebuilt from no parts
    with pytest.raises(VlbiasError, match="not a results database"):
        ResultsStore.open(tmp_path / "nothing-here")


def _dead_pid() -> int:
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _copy_as_killed_at_rename(store: ResultsStore, task, pid: int) -> Path:
    """What a writer killed at the rename leaves: a whole copy of the part in atomic_dir's hidden temporary folder
    (``.<task_id>.<random>.tmp``, made by tempfile.mkdtemp beside the part), its task.json naming the writer."""
    import json

    part = store.part_dir(task)
    tmp = part.parent / f".{task.task_id}.k1ll3d_x.tmp"
    shutil.copytree(part, tmp)
    d = json.loads((tmp / "task.json").read_text())
    (tmp / "task.json").write_text(json.dumps({**d, "pid": pid}))
    return tmp


def test_a_part_left_in_a_temporary_folder_is_not_ingested_twice(tmp_path):
    store = ResultsStore(tmp_path / "db")
    task = write(store, "vectors:/a.parquet", "demo", 1.0)
    write(store, "vectors:/b.parquet", "demo", 2.0)
    single = store.query("SELECT count(*) AS n FROM demo.results")["n"].item()
    assert single == 4
    _copy_as_killed_at_rename(store, task, _dead_pid())
    assert store.stale() is False  # the temporary folder is no input: it changes nothing
    counts = store.query(
        "SELECT (SELECT count(*) FROM demo.results) AS n, (SELECT count(DISTINCT task_id) FROM demo.results) AS k, "
        "(SELECT count(*) FROM tasks) AS t, (SELECT parts FROM _meta) AS p"
    )
    assert counts.values.tolist() == [[4, 2, 2, 2]]
    assert store.ingest(force=True).parts == 2
    assert [p.name for p in store.completed_parts()] == sorted(
        [task.task_id, make_task("vectors:/b.parquet", "demo", {"v": 2.0}).task_id]
    )


def test_stale_temporary_parts_are_cleaned_and_live_ones_kept(tmp_path):
    import os
    import time

    store = ResultsStore(tmp_path / "db")
    tasks = [write(store, f"vectors:/{m}.parquet", "demo", float(i)) for i, m in enumerate("abcde")]
    audit = store.root / "parts" / "demo"
    killed = _copy_as_killed_at_rename(store, tasks[0], _dead_pid())  # writer gone: removed now
    live = _copy_as_killed_at_rename(store, tasks[1], os.getpid())  # writer running: kept
    writing = audit / f".{tasks[2].task_id}.wr1t1ng_.tmp"  # no task.json yet: only its age tells
    writing.mkdir()
    aged = audit / f".{tasks[3].task_id}.0ld_0ld_.tmp"
    aged.mkdir()
    os.utime(aged, (time.time() - 3600, time.time() - 3600))
    replaced = audit / f".{tasks[4].task_id}.r3plac3d.old"  # the replaced part, after the new one is in place
    shutil.copytree(store.part_dir(tasks[4]), replaced / "x")
    replacing = audit / f".{tasks[3].task_id}.st4rt3d_.old"  # a replacement about to move the part aside
    replacing.mkdir()
    assert store.clean_temporaries() == 3
    assert not killed.exists()
    assert sorted(p.name for p in audit.glob(".*")) == sorted([live.name, writing.name, replacing.name])
    assert len(store.completed_parts()) == 5
    assert store.clean_temporaries(max_age_s=-1) == 3  # once old, every one goes
    assert not list(audit.glob(".*")) and len(store.completed_parts()) == 5


@pytest.fixture
def read_only(monkeypatch):
    """Make a folder read-only for this process: by its modes, or, for root (whom modes do not stop), by what
    os.access answers for it."""
    import os
    import stat

    made = []

    def make(folder: Path) -> None:
        if os.geteuid() != 0:
            for p in [folder, *folder.rglob("*")]:
                p.chmod(p.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
            made.append(folder)
            return
        real = os.access

        def access(path, mode, *a, **k):
            inside = Path(path).resolve() == folder.resolve() or folder.resolve() in Path(path).resolve().parents
            return False if inside and mode & os.W_OK else real(path, mode, *a, **k)

        monkeypatch.setattr(os, "access", access)

    yield make
    for folder in made:
        for p in [folder, *folder.rglob("*")]:
            p.chmod(p.stat().st_mode | stat.S_IWUSR)


def _snapshot(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")}


def test_a_read_only_sweep_folder_is_read_as_it_is(tmp_path, capsys, read_only):
    store = ResultsStore(tmp_path / "db")
    write(store, "vectors:/a.parquet", "demo", 1.0)
    store.ingest()
    (tmp_path / "db" / ".ingest.lock").unlink()
    fresh = tmp_path / "fresh"
    shutil.copytree(tmp_path / "db", fresh)
    write(store, "vectors:/b.parquet", "demo", 2.0)  # newer than the database: it would be ingested
    nodb = tmp_path / "nodb"
    shutil.copytree(tmp_path / "db", nodb, ignore=shutil.ignore_patterns("results.duckdb"))
    for folder in (tmp_path / "db", fresh, nodb):
        read_only(folder)
    before = {f: _snapshot(f) for f in (tmp_path / "db", fresh, nodb)}
    # up to date: no lock, no warning
    assert main(["results", "tables", "--db", str(fresh)]) == 0
    out, err = capsys.readouterr()
    assert "demo.results" in out and err == ""
    # stale: the database as it is, with one line saying so and how to refresh
    db = str(tmp_path / "db")
    assert main(["results", "query", "SELECT count(*) AS n FROM demo.results", "--db", db, "--format", "csv"]) == 0
    out, err = capsys.readouterr()
    assert out == "n\n2\n"
    assert err.count("\n") == 1 and err.startswith(f"vlbias: warning: {tmp_path / 'db' / 'results.duckdb'} may be")
    assert "out of date" in err and "vlbias results ingest --db COPY" in err
    assert main(["results", "tables", "--db", db]) == 0 and "out of date" in capsys.readouterr().err
    assert main(["report", db, "--format", "md", "--out", str(tmp_path / "report")]) == 0
    assert "may be out of date" in capsys.readouterr().err and (tmp_path / "report" / "report.md").is_file()
    # no database at all: one line
    assert main(["results", "tables", "--db", str(nodb)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "never ingested" in err and "cannot be written" in err
    # asking to ingest: one line
    assert main(["results", "ingest", "--db", db]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"cannot rebuild {tmp_path / 'db' / 'results.duckdb'}" in err
    assert {f: _snapshot(f) for f in before} == before  # nothing written, not even a lock file


def test_a_lock_that_cannot_be_taken_reads_the_database_as_it_is(tmp_path, capsys):
    store = ResultsStore(tmp_path / "db")
    write(store, "vectors:/a.parquet", "demo", 1.0)
    store.ingest()
    write(store, "vectors:/b.parquet", "demo", 2.0)
    lock = tmp_path / "db" / ".ingest.lock"
    lock.unlink()
    lock.mkdir()  # a lock file nobody can open, whoever runs this
    assert main(["results", "query", "SELECT count(*) AS n FROM demo.results", "--db", str(tmp_path / "db")]) == 0
    out, err = capsys.readouterr()
    assert out.split() == ["n", "2"] and err.count("\n") == 1 and "may be out of date" in err
    with pytest.raises(VlbiasError, match=r"cannot rebuild .*\.ingest\.lock cannot be written"):
        store.ingest()
    lock.rmdir()
    assert store.query("SELECT count(*) AS n FROM demo.results")["n"].item() == 4  # writable again: ingested
