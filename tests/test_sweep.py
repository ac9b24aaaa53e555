"""Model-zoo sweeps: one load per model, resumption after kills, shards, Ray, failures, and the results database.

The zoo: three random-init open_clip architectures, the packaged MiniLM (text only) and a `vectors:` model, through
two test-only audits (tests/sweep_fixtures.py) on two image folders. The reference run fills the embedding cache,
so the kill/resume, shard and Ray runs that follow compute nothing and compare their databases to it exactly.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import duckdb
import pandas as pd
import pytest

from tests.sweep_fixtures import IMAGEPROBE, TEXTPROBE, register_all, write_stimuli
from vlbias.audits.registry import unregister
from vlbias.cli import main
from vlbias.errors import VlbiasError
from vlbias.models.base import Encoder
from vlbias.zoo.plan import load_config, parse_shard, plan, shard_tasks
from vlbias.zoo.runner import run_sweep
from vlbias.zoo.store import ResultsStore

REPO = Path(__file__).resolve().parents[1]
MODELS = [
    "openclip:ViT-S-32-alt/random",
    "openclip:RN50/random",
    "openclip:ViT-S-16-alt/random",
    "st:all-MiniLM-L6-v2",
]
VOLATILE = {"seconds", "finished", "host", "traceback"}  # timing columns of the tasks table


def db_tables(root: Path) -> dict[str, pd.DataFrame]:
    """Every table of a sweep's database, rows sorted, timing columns dropped: comparable across runs."""
    ResultsStore(root).ingest()
    con = duckdb.connect(str(root / "results.duckdb"), read_only=True)
    try:
        names = con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' "
            "AND table_name NOT LIKE '\\_%' ESCAPE '\\'"
        ).fetchall()
        out = {}
        for schema, name in names:
            df = con.execute(f'SELECT * FROM "{schema}"."{name}"').df()
            df = df.drop(columns=[c for c in df.columns if c in VOLATILE])
            out[f"{schema}.{name}"] = df.sort_values(list(df.columns)).reset_index(drop=True)
        return out
    finally:
        con.close()


def assert_same_results(a: Path, b: Path) -> None:
    ta, tb = db_tables(a), db_tables(b)
    assert sorted(ta) == sorted(tb)
    for name in ta:
        pd.testing.assert_frame_equal(ta[name], tb[name], obj=name)


def write_config(root: Path, stim: dict, **extra) -> Path:
    cfg = {
        "models": MODELS + [f"vectors:{stim['vectors']}"],
        "audits": {"textprobe": {}, "imageprobe": {}},
        "datasets": [f"manifest:{stim['a'] / 'faces.csv'}", f"manifest:{stim['b'] / 'faces.csv'}"],
        "seed": 3,
        "encoder": {"device": "cpu", "cache_dir": str(root / "cache")},
        **extra,
    }
    import yaml

    path = root / "zoo.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    """The reference (uninterrupted) run, with every model load and prefetch recorded."""
    register_all()
    root = tmp_path_factory.mktemp("zoo")
    stim = write_stimuli(root)
    config = write_config(root, stim)
    loads: list[str] = []
    prefetches: list[tuple[str, str]] = []
    starts: list[str] = []
    import vlbias.zoo.runner as runner

    real_load, real_prefetch = Encoder.load, runner._prefetch

    def counting_load(self):
        if not self._loaded:
            loads.append(str(self.spec))
        return real_load(self)

    def recording_prefetch(model, encoder_kwargs):
        prefetches.append((model, threading.current_thread().name))
        starts.append(("prefetch", model))
        return real_prefetch(model, encoder_kwargs)

    def events(kind, task, outcome, state):
        if kind == "start":
            starts.append(("start", task.model))

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Encoder, "load", counting_load)
        mp.setattr(runner, "_prefetch", recording_prefetch)
        summary = run_sweep(load_config(config), out=root / "reference", on_event=events)
    yield SimpleNamespace(
        root=root, stim=stim, config=config, summary=summary, loads=loads, prefetches=prefetches, starts=starts
    )
    unregister("textprobe")
    unregister("imageprobe")


def test_the_grid_runs_each_task_once_and_loads_each_model_once(zoo):
    s = zoo.summary
    assert s.total == 15  # 5 models x (textprobe + imageprobe on 2 datasets)
    statuses = sorted((o.task.model, o.task.audit, o.status) for o in s.outcomes)
    assert len(statuses) == 15 and len({o.task.task_id for o in s.outcomes}) == 15
    skipped = [st for st in statuses if st[2] == "skipped"]
    assert skipped == [("st:all-MiniLM-L6-v2", "imageprobe", "skipped")] * 2  # text-only model
    assert s.state.done == 13 and s.state.failed == 0
    assert sorted(zoo.loads) == sorted(MODELS + [f"vectors:{zoo.stim['vectors']}"])  # each model loads once
    # the next model's weights are fetched in a background thread, before its first task starts
    assert [m for m, _ in zoo.prefetches] == MODELS[1:] + [f"vectors:{zoo.stim['vectors']}"]
    assert {t for _, t in zoo.prefetches} == {"vlbias-prefetch"}
    for model, _ in zoo.prefetches:
        assert zoo.starts.index(("prefetch", model)) < zoo.starts.index(("start", model))


def test_results_database_rows_carry_provenance_and_catalogue_facts(zoo):
    store = ResultsStore(zoo.root / "reference")
    tables = set(store.tables()["table"])
    assert {"textprobe.results", "textprobe.norms", "imageprobe.results", "tasks", "models"} <= tables
    df = store.query("SELECT * FROM textprobe.results_with_models")
    assert len(df) == 5 * 10 and df["seed"].eq(3).all() and df["stimuli"].eq("probe-words@1").all()
    assert df["vlbias_version"].notna().all() and df["config_hash"].str.len().eq(16).all()
    assert df["dataset"].isna().all()
    vit = df[df["model"] == "openclip:RN50/random"].iloc[0]
    assert vit["architecture_family"] == "ResNet" and vit["n_params"] == 102_007_137  # profiled on the meta device
    img = store.query("SELECT dataset, count(*) AS n FROM imageprobe.results GROUP BY dataset ORDER BY dataset")
    # 4 image models x 3 prompts x (3 images in a, 2 in b)
    assert img["n"].tolist() == [4 * 3 * 3, 4 * 3 * 2]
    # the same vectors through the database as from the encoder
    from vlbias.models import load_model

    enc = load_model(f"vectors:{zoo.stim['vectors']}")
    v = enc.encode_texts(["a flower", "a weapon"])
    got = store.query(
        "SELECT effect_size FROM textprobe.results WHERE model LIKE 'vectors:%' AND test = 'a flower' "
        "AND other = 'a weapon'"
    )["effect_size"].item()
    assert got == pytest.approx(float(v[0] @ v[1]), abs=1e-6)


def test_a_rerun_does_nothing_and_loads_no_model(zoo, monkeypatch):
    loads = []
    monkeypatch.setattr(Encoder, "load", lambda self: loads.append(self.spec) or self)
    before = (zoo.root / "reference" / "results.duckdb").stat().st_mtime_ns
    summary = run_sweep(load_config(zoo.config), out=zoo.root / "reference")
    assert summary.outcomes == [] and summary.already_done == 15 and loads == []
    assert (zoo.root / "reference" / "results.duckdb").stat().st_mtime_ns == before  # nothing to ingest


def _script(root: Path, config: Path, out: Path, kill_during_ingest: bool = False, kill_at_rename: int = 0) -> str:
    lines = [
        "import sys",
        f"sys.path[:0] = [{str(REPO / 'src')!r}, {str(REPO)!r}]",
        "import tests.sweep_fixtures as f",
        "f.register_all()",
    ]
    if kill_at_rename:  # SIGKILL at the rename of the k-th finished part's temporary folder into place
        lines += [
            "import os, signal",
            "real_replace, renames = os.replace, []",
            "def replace(src, dst, *a, **k):",
            "    if os.path.basename(os.path.dirname(os.path.dirname(str(dst)))) == 'parts' and os.path.isdir(src):",
            "        renames.append(dst)",
            f"        if len(renames) == {kill_at_rename}:",
            "            os.kill(os.getpid(), signal.SIGKILL)",
            "    return real_replace(src, dst, *a, **k)",
            "os.replace = replace",
        ]
    if kill_during_ingest:  # SIGKILL in the middle of rebuilding the database (after its first table)
        lines += [
            "import os, signal",
            "from vlbias.zoo.store import ResultsStore",
            "ResultsStore._joined_view = staticmethod(lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL))",
        ]
    lines += ["from vlbias.cli import main", f"sys.exit(main(['sweep', {str(config)!r}, '--out', {str(out)!r}]))"]
    return "\n".join(lines)


def _run(script: str, env_extra: dict[str, str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "VLBIAS_PROGRESS": "0", **env_extra}
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)


def test_killed_sweeps_resume_to_exactly_the_uninterrupted_results(zoo, tmp_path):
    out = tmp_path / "resumed"
    marker = tmp_path / "killed-once"
    # 1. SIGKILL in the middle of a task (the 13th of 15): 12 parts exist, no half-written part is visible
    r = _run(
        _script(zoo.root, zoo.config, out),
        {"SWEEP_TEST_KILL": f"vectors:{zoo.stim['vectors']}|textprobe|{marker}"},
    )
    assert r.returncode == -9, r.stderr
    assert len(list(out.glob("parts/*/*/task.json"))) == 10 and len(list(out.glob("status/*.json"))) == 2
    partial = ResultsStore(out).query("SELECT count(*) AS n, count(DISTINCT task_id) AS k FROM tasks")
    assert partial["n"].item() == partial["k"].item() == 12  # ingestion on query: no duplicates
    # 2. SIGKILL while the database is being rebuilt: the previous database stays whole
    r = _run(_script(zoo.root, zoo.config, out, kill_during_ingest=True), {})
    assert r.returncode == -9, r.stderr
    assert list(out.glob(".results.duckdb.*.tmp*"))  # the killed ingestion's file, removed by the next one
    con = duckdb.connect(str(out / "results.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM tasks").fetchone()[0] == 12  # the previous database, whole
    con.close()
    # 3. the same command again finishes the job
    r = _run(_script(zoo.root, zoo.config, out), {})
    assert r.returncode == 0, r.stderr
    assert "of 15 tasks (15 were already done)" in r.stderr
    assert not list(out.glob(".results.duckdb.*.tmp*")) and not list(out.glob("parts/*/.*"))
    assert_same_results(zoo.root / "reference", out)


def test_a_sweep_killed_at_the_rename_of_a_part_resumes_without_duplicates(zoo, tmp_path):
    """The 5th part is complete in its hidden temporary folder when the kill comes: the rerun runs that task again,
    removes the dead writer's folder and never reads it, so the database equals the uninterrupted run's."""
    out = tmp_path / "renamed"
    r = _run(_script(zoo.root, zoo.config, out, kill_at_rename=5), {})
    assert r.returncode == -9, r.stderr
    left = list(out.glob("parts/*/.*.tmp"))
    assert len(left) == 1 and (left[0] / "task.json").is_file()  # a whole part, under atomic_dir's hidden name
    assert len(list(out.glob("parts/*/[!.]*/task.json"))) == 4
    r = _run(_script(zoo.root, zoo.config, out), {})
    assert r.returncode == 0, r.stderr
    assert "of 15 tasks (4 were already done)" in r.stderr
    assert_same_results(zoo.root / "reference", out)  # every table, row for row: no task counted twice
    assert not list(out.glob("parts/*/.*"))  # the killed writer's folder is gone


@pytest.mark.parametrize("stop_at", [0, 4, 11])
def test_interrupted_at_any_task_resumes_to_the_same_results(zoo, tmp_path, monkeypatch, stop_at):
    """An interrupt (Ctrl-C) before task k, then a rerun: the same database as the uninterrupted run."""
    out = tmp_path / "interrupted"
    calls = {"n": 0}
    real = TEXTPROBE.execute, IMAGEPROBE.execute

    def make(fn):
        def wrapped(encoder, options):
            calls["n"] += 1
            if calls["n"] == stop_at + 1:
                raise KeyboardInterrupt
            return fn(encoder, options)

        return wrapped

    from dataclasses import replace

    from vlbias.audits.registry import register

    register(replace(TEXTPROBE, execute=make(real[0])), replace=True)
    register(replace(IMAGEPROBE, execute=make(real[1])), replace=True)
    try:
        with pytest.raises(KeyboardInterrupt):
            run_sweep(load_config(zoo.config), out=out)
    finally:
        register_all()
    assert len(list(out.glob("parts/*/*/task.json"))) <= stop_at
    summary = run_sweep(load_config(zoo.config), out=out)
    assert summary.state.failed == 0 and summary.state.remaining == 0
    assert_same_results(zoo.root / "reference", out)


def test_shards_partition_the_grid_and_their_union_is_the_whole(zoo, tmp_path):
    grid = plan(load_config(zoo.config))
    shards = [shard_tasks(grid, i, 3) for i in (1, 2, 3)]
    ids = [t.task_id for s in shards for t in s]
    assert sorted(ids) == sorted(t.task_id for t in grid) and len(set(ids)) == len(grid)
    for s in shards:  # whole models per shard: each model loads in one shard only
        assert all(set(t.model for t in s).isdisjoint(t.model for t in other) for other in shards if other is not s)
    assert shard_tasks(grid, 2, 3) == shards[1]  # deterministic
    out = tmp_path / "sharded"
    for i in (1, 2, 3):  # three SLURM array jobs writing into one folder
        assert main(["sweep", str(zoo.config), "--out", str(out), "--shard", f"{i}/3"]) == 0
    assert_same_results(zoo.root / "reference", out)
    for bad in ("0/3", "4/3", "1-3", "a/b"):
        with pytest.raises(VlbiasError, match="--shard"):
            parse_shard(bad)


def test_failing_model_is_recorded_and_the_sweep_goes_on(zoo, tmp_path, monkeypatch, capsys):
    out = tmp_path / "failing"
    shutil.copytree(zoo.root / "reference", out)
    shutil.rmtree(out / "parts" / "textprobe")  # textprobe runs again, and fails for one model
    monkeypatch.setenv("SWEEP_TEST_FAIL", "openclip:RN50/random")
    code = main(["sweep", str(zoo.config), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1 and "FAILED  openclip:RN50/random · textprobe: planted failure" in err
    assert err.splitlines()[-1] == (
        f"vlbias: error: 1 of 15 tasks failed; see their errors with `vlbias sweep {zoo.config} --out {out} "
        f"--status`, and run the same command again to retry them"
    )
    tasks = ResultsStore(out).query("SELECT model, audit, status, error_type, error FROM tasks WHERE status = 'failed'")
    assert tasks[["model", "audit", "error_type"]].values.tolist() == [
        ["openclip:RN50/random", "textprobe", "RuntimeError"]
    ]
    assert ResultsStore(out).query("SELECT count(*) n FROM textprobe.results")["n"].item() == 4 * 10
    code = main(["sweep", str(zoo.config), "--out", str(out), "--status"])
    status = capsys.readouterr().out
    assert "textprobe: 4 done, 1 failed" in status and "FAILED openclip:RN50/random · textprobe" in status
    monkeypatch.delenv("SWEEP_TEST_FAIL")
    assert main(["sweep", str(zoo.config), "--out", str(out)]) == 0  # a rerun retries the failure
    assert_same_results(zoo.root / "reference", out)


def test_unavailable_weights_fail_the_model_once_not_the_sweep(zoo, tmp_path):
    import yaml

    cfg = yaml.safe_load(zoo.config.read_text())
    cfg["models"] = ["openclip:RN50/openai", f"vectors:{zoo.stim['vectors']}"]  # no weights offline
    path = tmp_path / "offline.yaml"
    path.write_text(yaml.safe_dump(cfg))
    summary = run_sweep(load_config(path), out=tmp_path / "offline")
    failed = [o for o in summary.outcomes if o.status == "failed"]
    assert len(failed) == 3 and {o.task.model for o in failed} == {"openclip:RN50/openai"}
    assert all(o.error_type == "WeightsUnavailableError" and "@/path/to" in o.error for o in failed)
    assert summary.state.done == 3


def test_config_accuracy_is_imported_once(zoo, tmp_path):
    import yaml

    acc = tmp_path / "acc.csv"
    acc.write_text(f"spec,average\nvectors:{zoo.stim['vectors']},0.5\nst:all-MiniLM-L6-v2,0.25\n", encoding="utf-8")
    cfg = yaml.safe_load(zoo.config.read_text())
    cfg.update(models=[f"vectors:{zoo.stim['vectors']}"], accuracy=str(acc))
    path = tmp_path / "acc.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "acc-out"
    run_sweep(load_config(path), out=out)
    stamp = (out / "accuracy" / "acc.parquet").stat().st_mtime_ns
    got = ResultsStore(out).query("SELECT spec, value FROM accuracy ORDER BY value")
    assert got["value"].tolist() == [0.25, 0.5]
    run_sweep(load_config(path), out=out)
    assert (out / "accuracy" / "acc.parquet").stat().st_mtime_ns == stamp  # the same file is not imported again


def test_ray_executor_on_a_local_instance(zoo, tmp_path):
    ray = pytest.importorskip("ray")
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={
            "env_vars": {
                "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{REPO}",
                "HF_HUB_OFFLINE": "1",
                "VLBIAS_PROGRESS": "0",
            }
        },
    )
    try:
        summary = run_sweep(load_config(zoo.config), out=tmp_path / "ray", executor="ray")
    finally:
        ray.shutdown()
    assert summary.state.done == 13 and summary.state.skipped == 2 and not summary.failed
    assert_same_results(zoo.root / "reference", tmp_path / "ray")


@pytest.mark.parametrize(
    "config, message",
    [
        ({"models": ["openclip:ViT-B-32/random"]}, "no audits"),
        ({"models": ["openclip:ViT-B-32/random"], "audits": {"nope": {}}}, "unknown audit 'nope'"),
        ({"models": ["openclip:ViT-B-32/random"], "audits": {"textprobe": {"colour": 1}}}, "no option 'colour'"),
        ({"models": ["openclip:Nope-1/x"], "audits": ["textprobe"]}, "unknown open_clip architecture"),
        ({"models": ["openclip:ViT-Q-*/*"], "audits": ["textprobe"]}, "matches no catalogue model"),
        ({"models": [{"where": "n_params >"}], "audits": ["textprobe"]}, "models: where: 'n_params >'"),
        ({"models": ["openclip:ViT-B-32/random"], "audits": ["imageprobe"]}, "add datasets"),
        ({"models": ["openclip:ViT-B-32/random"], "audits": ["textprobe"], "colour": 1}, "unknown key"),
        ({"models": ["openclip:ViT-B-32/random"], "audits": ["textprobe"], "seed": "x"}, "seed"),
    ],
)
def test_bad_configs_are_one_line_errors(zoo, tmp_path, capsys, config, message):
    import yaml

    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    code = main(["sweep", str(path), "--dry-run"])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1


def test_model_selectors(zoo, tmp_path):
    import yaml

    path = tmp_path / "sel.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "models": [
                    "openclip:ViT-B-32*/laion400m*",
                    {"where": "dataset_family == 'openai' and architecture_family == 'ResNet'"},
                    "openclip:ViT-B-32/laion400m_e31",  # already selected: listed once
                ],
                "exclude": ["openclip:RN50x*/*"],
                "audits": ["textprobe"],
            }
        )
    )
    models = load_config(path).models
    assert models == [
        "openclip:ViT-B-32/laion400m_e31",  # the quickgelu duplicates are left out
        "openclip:ViT-B-32/laion400m_e32",
        "openclip:RN50/openai",
        "openclip:RN101/openai",
    ]


def test_dry_run_lists_the_grid(zoo, capsys):
    assert main(["sweep", str(zoo.config), "--out", str(zoo.root / "reference"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "15 tasks: 5 models x 2 audit settings" in out and out.count("[   done]") == 13


def test_a_one_task_sweep_counts_in_words(zoo, tmp_path, capsys):
    config = write_config(tmp_path, zoo.stim, models=[f"vectors:{zoo.stim['vectors']}"], audits={"textprobe": {}})
    out = tmp_path / "one"
    assert main(["sweep", str(config), "--out", str(out), "--dry-run"]) == 0
    assert capsys.readouterr().out.startswith(f"1 task: 1 model x 1 audit setting, into {out}\n")
    assert main(["sweep", str(config), "--out", str(out)]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "sweep: 1 task; 0 done · 0 running · 0 failed · 0 skipped · 1 remaining of 1"
    assert err[-1].startswith("sweep: 1 done, 0 failed, 0 skipped of 1 task (0 were already done); results in ")
    assert main(["sweep", str(config), "--out", str(out)]) == 0
    assert "of 1 task (1 was already done)" in capsys.readouterr().err


def test_sweep_commands_start_without_deep_learning_libraries():
    code = (
        "import sys, contextlib, io\n"
        "from vlbias.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    for args in (['sweep', '--help'], ['results', '--help'], ['analyze', '--help'], ['models', '--details']):\n"
        "        assert main(args) == 0, args\n"
        "heavy = {'torch', 'open_clip', 'transformers', 'ray', 'statsmodels', 'matplotlib'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONPATH": str(REPO / "src")})


def test_live_progress_prints_task_labels_as_written(monkeypatch):
    """On a terminal the sweep shows a live status line; a task label (model spec, dataset path) with rich markup
    in it is shown as written, not parsed (it failed at the first refresh)."""
    from vlbias.cli.sweep import _Printer
    from vlbias.zoo.runner import SweepState

    monkeypatch.setenv("VLBIAS_PROGRESS", "1")
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    printer = _Printer()
    state = SweepState(total=1)
    task = SimpleNamespace(label=lambda: "vectors:/data/[/x].npz · eat · [bold]d")
    printer("plan", None, None, state)
    try:
        printer("start", task, None, state)
        printer.live.refresh()
        assert "running vectors:/data/[/x].npz · eat · [bold]d" in printer.live.get_renderable().plain
        printer("done", task, SimpleNamespace(seconds=1.0), state)
        printer.live.refresh()
    finally:
        printer.close()
