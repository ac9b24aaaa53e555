"""The output rule of every command that writes where the user says (vlbias.utils.io.check_out): new outputs are
written atomically, an earlier vlbias output is replaced only with --overwrite, nothing else is ever deleted; the
outputs honour the umask; an output that is refused or cannot be written is one line, found before any work, and a
write that fails (a full disk) is one line that leaves nothing behind."""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.test_eat_audit import seat_file, write_vectors
from vlbias.cli import main
from vlbias.errors import VlbiasError
from vlbias.utils.io import MANIFEST

# a model that would need downloaded weights: a command that got as far as loading it would fail on that instead
UNLOADABLE = "openclip:ViT-B-32/laion2b_s34b_b79k"


def run(args, capsys):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vlbias: error: ") and "Traceback" not in err, err
    return lines[0]


def listing(folder) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


@pytest.fixture
def eat_args(tmp_path):
    """A fast eat run: a SEAT file and a vectors file with a planted association."""
    X, Y = [f"x{i} is here." for i in range(5)], [f"y{i} is here." for i in range(5)]
    A, B = [f"a{i} is good." for i in range(4)], [f"b{i} is bad." for i in range(4)]
    f = seat_file(tmp_path / "planted.json", [("Xs", X), ("Ys", Y), ("As", A), ("Bs", B)])
    e = np.eye(8, dtype=np.float32)
    spec = write_vectors(tmp_path / "v.npz", X + Y + A + B, dim=8, shift={k: 2 * e[0] for k in X + A})
    return ["eat", "-m", spec, "--test-file", f, "--permutations", "200", "--n-bootstrap", "0", "--format", "csv"]


@pytest.fixture
def sweep_config(tmp_path, eat_args):
    config = tmp_path / "zoo.yaml"
    config.write_text(
        f"models: [{eat_args[2]}]\n"
        f"audits:\n  eat: {{test_files: [{eat_args[4]}], permutations: 200, n_bootstrap: 0}}\n",
        encoding="utf-8",
    )
    return config


def _busy(tmp_path):
    busy = tmp_path / "results"
    busy.mkdir()
    (busy / "thesis.tex").write_text("three years of work")
    return busy


# every command that writes where the user says, each with inputs it would fail on only after the output check
FOLDER_COMMANDS = {
    "eat": lambda t, out: ["eat", "-m", UNLOADABLE, "--test", "weat1", "--out", out],
    "zeroshot": lambda t, out: ["zeroshot", "-m", UNLOADABLE, "-d", f"cfd:{t}/nowhere", "--out", out],
    "zeroshot-compare": lambda t, out: ["zeroshot-compare", t / "run1", t / "run2", "--out", out],
    "perception": lambda t, out: ["perception", "-m", UNLOADABLE, "-d", f"causalface:{t}/nowhere", "--out", out],
    "report": lambda t, out: ["report", t / "nowhere", "--out", out],
    "analyze": lambda t, out: ["analyze", "--db", t / "nowhere", "--out", out],
    "results export": lambda t, out: ["results", "export", out, "--db", t / "nowhere"],
    "sweep": lambda t, out: ["sweep", t / "zoo.yaml", "--out", out],
}
FILE_COMMANDS = {
    "embed": lambda t, out: ["embed", "-m", UNLOADABLE, "--texts", t / "nowhere.txt", "--out", out],
    "eat": lambda t, out: ["eat", "-m", UNLOADABLE, "--test", "weat1", "--out", out],
    "results query": lambda t, out: ["results", "query", "SELECT 1", "--db", t / "nowhere", "--out", out],
}


@pytest.mark.parametrize("overwrite", [False, True], ids=["plain", "overwrite"])
@pytest.mark.parametrize("command", FOLDER_COMMANDS)
def test_no_command_touches_a_folder_vlbias_did_not_write(command, overwrite, tmp_path, sweep_config, capsys):
    busy = _busy(tmp_path)
    before = listing(tmp_path)
    args = FOLDER_COMMANDS[command](tmp_path, busy) + (["--overwrite"] if overwrite and command != "sweep" else [])
    code, _, err = run(args, capsys)
    assert code == 2
    option = "OUT_DIR" if command == "results export" else "--out"
    want = f"vlbias: error: {option} {busy} holds files vlbias did not write (thesis.tex); give a new folder"
    assert one_line(err) == want
    assert (busy / "thesis.tex").read_text() == "three years of work" and listing(tmp_path) == before


def test_a_finished_audit_does_not_delete_a_users_folder(tmp_path, eat_args, capsys):
    busy = _busy(tmp_path)
    for extra in ([], ["--overwrite"]):
        code, out, err = run([*eat_args, "--out", busy, *extra], capsys)
        assert code == 2 and out == "" and "holds files vlbias did not write (thesis.tex)" in one_line(err)
    assert listing(busy) == ["thesis.tex"] and (busy / "thesis.tex").read_text() == "three years of work"


@pytest.mark.parametrize("command", FILE_COMMANDS)
def test_no_command_replaces_a_file_vlbias_did_not_write(command, tmp_path, capsys):
    mine = tmp_path / ("mine.csv" if command == "results query" else "mine.parquet")
    mine.write_bytes(b"my own table")
    code, _, err = run([*FILE_COMMANDS[command](tmp_path, mine), "--overwrite"], capsys)
    assert code == 2
    if command == "results query":
        assert one_line(err) == (
            f"vlbias: error: --out {mine} exists, and a CSV file does not tell whether vlbias wrote it; give a new "
            f"file name"
        )
    else:
        assert one_line(err) == (
            f"vlbias: error: --out {mine} exists and vlbias did not write it; give a new file name (vlbias replaces "
            f"only its own outputs)"
        )
    assert mine.read_bytes() == b"my own table" and listing(tmp_path) == [mine.name]


def test_an_earlier_output_is_replaced_only_with_overwrite(tmp_path, eat_args, capsys):
    out = tmp_path / "run"
    code, first, err = run([*eat_args, "--out", out, "--seed", "1"], capsys)
    assert code == 0, err
    files = listing(out)
    assert MANIFEST in files and "record.json" in files
    assert json.loads((out / MANIFEST).read_text())["files"] == sorted(set(files) - {MANIFEST})
    record = (out / "record.json").read_text()
    code, _, err = run([*eat_args, "--out", out, "--seed", "2"], capsys)
    assert code == 2 and one_line(err) == (
        f"vlbias: error: --out {out} holds an earlier vlbias audit output; add --overwrite to replace it, or give a "
        f"new folder"
    )
    assert (out / "record.json").read_text() == record
    code, second, err = run([*eat_args, "--out", out, "--seed", "2", "--overwrite"], capsys)
    assert code == 0, err
    assert json.loads((out / "record.json").read_text())["seed"] == 2 and listing(out) == files
    assert sorted(p.name for p in tmp_path.iterdir()) == ["planted.json", "run", "v.npz"]  # nothing left beside it


def test_a_parquet_file_vlbias_wrote_is_replaced_only_with_overwrite(tmp_path, eat_args, capsys):
    out = tmp_path / "r.parquet"
    assert run([*eat_args, "--out", out], capsys)[0] == 0
    import pyarrow.parquet as pq

    meta = pq.read_schema(out).metadata
    assert meta[b"vlbias.audit"] == b"eat" and b"vlbias.version" in meta
    code, _, err = run([*eat_args, "--out", out], capsys)
    assert code == 2 and "holds an earlier vlbias Parquet file; add --overwrite" in one_line(err)
    assert run([*eat_args, "--out", out, "--overwrite", "--seed", "5"], capsys)[0] == 0
    assert pd.read_parquet(out)["seed"].tolist() == [5]


def test_files_added_inside_a_vlbias_output_are_never_deleted(tmp_path, eat_args, capsys):
    out = tmp_path / "run"
    assert run([*eat_args, "--out", out], capsys)[0] == 0
    (out / "notes").mkdir()
    (out / "notes" / "thesis.tex").write_text("mine")
    code, _, err = run([*eat_args, "--out", out, "--overwrite"], capsys)
    assert code == 2 and one_line(err) == (
        f"vlbias: error: --out {out} holds files that are not part of its audit output (notes/, notes/thesis.tex); "
        f"move them out of it, or give a new folder"
    )
    assert (out / "notes" / "thesis.tex").read_text() == "mine"


def test_a_file_where_a_folder_belongs_and_the_reverse(tmp_path, eat_args, capsys):
    (tmp_path / "notes").write_text("mine")
    code, _, err = run([*eat_args, "--out", tmp_path / "notes", "--overwrite"], capsys)
    assert code == 2
    notes = tmp_path / "notes"
    assert one_line(err) == f"vlbias: error: --out {notes} is a file; give a new folder for the audit output"
    (tmp_path / "d.parquet").mkdir()
    code, _, err = run([*eat_args, "--out", tmp_path / "d.parquet", "--overwrite"], capsys)
    assert code == 2
    folder = tmp_path / "d.parquet"
    assert one_line(err) == f"vlbias: error: --out {folder} is a folder; give a file name for the Parquet file"
    code, _, err = run([*eat_args, "--out", tmp_path / "notes" / "run"], capsys)
    assert code == 2
    assert one_line(err) == f"vlbias: error: --out {notes / 'run'}: {notes} is not a folder; give a path in a folder"
    assert (tmp_path / "notes").read_text() == "mine" and listing(tmp_path / "d.parquet") == []


def test_another_kind_of_vlbias_output_is_not_replaced(tmp_path, eat_args, capsys):
    from vlbias.utils.io import atomic_dir

    export = tmp_path / "export"
    with atomic_dir(export, "export") as tmp:
        (tmp / "tasks.csv").write_text("a\n1\n")
    code, _, err = run([*eat_args, "--out", export, "--overwrite"], capsys)
    assert code == 2 and one_line(err) == (
        f"vlbias: error: --out {export} holds a vlbias table export, not an audit output; give a new folder"
    )
    assert listing(export) == [MANIFEST, "tasks.csv"]


def test_a_symbolic_link_is_never_written_through(tmp_path, eat_args, capsys):
    target = tmp_path / "run"
    assert run([*eat_args, "--out", target], capsys)[0] == 0
    files = listing(target)
    link = tmp_path / "link"
    link.symlink_to(target)
    code, _, err = run([*eat_args, "--out", link, "--overwrite"], capsys)
    assert code == 2 and one_line(err) == (
        f"vlbias: error: --out {link} is a symbolic link (to {target}); vlbias does not write through links: give the "
        f"path it points to, or a new folder"
    )
    assert link.is_symlink() and listing(target) == files
    assert run([*eat_args, "--out", target, "--overwrite"], capsys)[0] == 0  # the real path is fine


def test_the_current_folder_is_never_replaced(tmp_path, eat_args, capsys, monkeypatch):
    out = tmp_path / "run"
    assert run([*eat_args, "--out", out], capsys)[0] == 0
    monkeypatch.chdir(out)
    code, _, err = run([*eat_args, "--out", ".", "--overwrite"], capsys)
    assert code == 2 and "holds the current folder" in one_line(err)
    assert (out / "record.json").is_file()


def test_outputs_of_an_earlier_vlbias_are_recognised_by_their_record(tmp_path, eat_args, capsys):
    from vlbias.utils.io import check_out

    out = tmp_path / "run"
    assert run([*eat_args, "--out", out], capsys)[0] == 0
    (out / MANIFEST).unlink()  # as written before the manifest existed
    assert run([*eat_args, "--out", out, "--overwrite"], capsys)[0] == 0
    report = tmp_path / "report"
    report.mkdir()
    (report / "report.json").write_text(json.dumps({"vlbias_report": 1}))
    (report / "index.html").write_text("<html>")
    check_out(report, "report", overwrite=True)
    with pytest.raises(VlbiasError, match="add --overwrite"):
        check_out(report, "report")
    (report / "report.json").write_text(json.dumps({"something": "else"}))
    with pytest.raises(VlbiasError, match=r"holds files vlbias did not write \(index.html, report.json\)"):
        check_out(report, "report", overwrite=True)


def test_a_sweep_folder_is_resumed_and_a_foreign_one_refused(tmp_path, sweep_config, capsys):
    from vlbias.utils.io import check_out

    out = tmp_path / "zoo"
    assert run(["sweep", sweep_config, "--out", out], capsys)[0] == 0
    assert run(["sweep", sweep_config, "--out", out], capsys)[0] == 0  # resuming needs no --overwrite
    (tmp_path / "link").symlink_to(out)
    assert run(["sweep", sweep_config, "--out", tmp_path / "link"], capsys)[0] == 0  # nor does it replace a link
    assert (tmp_path / "link").is_symlink()
    (tmp_path / "dangling").symlink_to(tmp_path / "gone")
    code, _, err = run(["sweep", sweep_config, "--out", tmp_path / "dangling"], capsys)
    assert code == 2 and "is a symbolic link (to" in one_line(err)
    check_out(out, "sweep")
    with pytest.raises(VlbiasError, match="holds a vlbias sweep folder, not an audit output; give a new folder"):
        check_out(out, "audit", overwrite=True)


# ---------------------------------------------------------------------------------------------- umask
def _modes(root) -> dict:
    return {p: stat.S_IMODE(p.lstat().st_mode) for p in [root, *root.rglob("*")]}


@pytest.fixture(params=[0o022, 0o027, 0o002], ids=["umask022", "umask027", "umask002"])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def test_outputs_honour_the_umask(umask, tmp_path, eat_args, capsys):
    from tests.test_results_db import write
    from vlbias.zoo.store import ResultsStore

    texts = tmp_path / "t.txt"
    texts.write_text("a\nb\n")
    cache = tmp_path / "cache"
    out = tmp_path / "out"
    assert run([*eat_args, "--out", out / "run"], capsys)[0] == 0
    assert run([*eat_args, "--out", out / "r.parquet"], capsys)[0] == 0
    cmd = ["embed", "-m", "st:all-MiniLM-L6-v2", "--texts", texts, "--out", out / "e.parquet", "--cache-dir", cache]
    assert run(cmd, capsys)[0] == 0
    assert run(["report", out / "run", "--out", out / "report", "--format", "md", "--jobs", "1"], capsys)[0] == 0
    write(ResultsStore(out / "zoo"), "vectors:/a.parquet", "demo", 1.0)  # a sweep's part
    assert run(["results", "export", out / "export", "--db", out / "zoo"], capsys)[0] == 0
    modes = {**_modes(out), **_modes(cache)}
    want_dir, want_file = 0o777 & ~umask, 0o666 & ~umask
    assert {k: oct(v) for k, v in modes.items() if k.is_dir() and v != want_dir} == {}
    assert {k: oct(v) for k, v in modes.items() if k.is_file() and v != want_file} == {}
    made = ["run/record.json", "r.parquet", "e.parquet", "report/report.md", "zoo/parts/demo", "zoo/results.duckdb"]
    assert all(out / m in modes for m in made) and any(p.suffix == ".sqlite" for p in modes)


# ---------------------------------------------------------------------------------------------- failed writes
def _no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_is_one_line_and_leaves_nothing(tmp_path, eat_args, capsys, monkeypatch):
    import pyarrow.parquet as pq

    texts = tmp_path / "t.txt"
    texts.write_text("a\nb\n")
    monkeypatch.setattr(pq, "write_table", _no_space)
    monkeypatch.setattr(pd.DataFrame, "to_parquet", _no_space)
    before = listing(tmp_path)
    cmd = ["embed", "-m", "st:all-MiniLM-L6-v2", "--texts", texts, "--out", tmp_path / "e.parquet", "--no-cache"]
    code, _, err = run(cmd, capsys)
    assert code == 2 and one_line(err) == (
        f"vlbias: error: cannot write {tmp_path / 'e.parquet'}: No space left on device; free some space there, or "
        f"give a path on another disk"
    )
    for out in (tmp_path / "run", tmp_path / "r.parquet"):
        code, _, err = run([*eat_args, "--out", out], capsys)
        assert code == 2 and one_line(err) == (
            f"vlbias: error: cannot write {out}: No space left on device; free some space there, or give a path on "
            f"another disk"
        )
    assert listing(tmp_path) == before  # no temporary file or folder left behind


def test_a_full_disk_in_a_sweep(tmp_path, sweep_config, capsys, monkeypatch):
    import pyarrow.parquet as pq

    monkeypatch.setattr(pq, "write_table", _no_space)  # parts are written through Arrow
    monkeypatch.setattr(pd.DataFrame, "to_parquet", _no_space)
    out = tmp_path / "zoo"
    code, _, err = run(["sweep", sweep_config, "--out", out], capsys)
    assert "Traceback" not in err and "1 failed" in err
    (status,) = (out / "status").glob("*.json")
    error = json.loads(status.read_text())["error"]
    assert error.startswith(f"cannot write {out / 'parts' / 'eat'}/") and error.endswith(
        ": No space left on device; free some space there, or give a path on another disk"
    )
    assert listing(out / "parts") == ["eat"]  # no half-written part

    real_write_text = type(out).write_text

    def full(self, *args, **kwargs):
        if str(self).startswith(str(out)):
            _no_space()
        return real_write_text(self, *args, **kwargs)

    monkeypatch.setattr(type(out), "write_text", full)
    code, _, err = run(["sweep", sweep_config, "--out", out], capsys)
    assert code == 2 and one_line(err).startswith(f"vlbias: error: cannot write {out / 'sweep.json'}: No space left")
    assert not [p for p in out.iterdir() if p.name.startswith(".sweep.json.")]


@pytest.fixture
def locked(tmp_path):
    """A folder this process cannot write in: chmod 0o500, or for root (whom chmod does not stop) a read-only one."""
    if os.geteuid() != 0:
        folder = tmp_path / "locked"
        folder.mkdir()
        folder.chmod(0o500)
        yield folder
        folder.chmod(0o700)
    elif os.path.isdir("/proc/sys") and not os.access("/proc/sys", os.W_OK):
        yield Path("/proc/sys")
    else:
        pytest.skip("running as root (chmod does not stop root) and no read-only folder to write in")


def test_an_unwritable_folder_is_one_line(tmp_path, locked, eat_args, sweep_config, capsys):
    texts = tmp_path / "t.txt"
    texts.write_text("a\n")
    before = listing(locked) if locked.is_relative_to(tmp_path) else None
    cases = [
        ["embed", "-m", UNLOADABLE, "--texts", texts, "--out", locked / "e.parquet"],
        [*eat_args, "--out", locked / "vlbias-test" / "run"],
        ["sweep", sweep_config, "--out", locked / "vlbias-zoo"],
    ]
    for args in cases:
        code, _, err = run(args, capsys)
        assert code == 2 and one_line(err).endswith(
            f": {locked} cannot be written in (no permission, or a read-only disk); give a path in a folder you "
            f"can write to"
        )
    assert before is None or listing(locked) == before


def test_a_path_under_a_file_is_one_line_for_embed_eat_and_sweep(tmp_path, eat_args, sweep_config, capsys):
    (tmp_path / "afile").write_text("x")
    texts = tmp_path / "t.txt"
    texts.write_text("a\n")
    cases = {
        tmp_path / "afile" / "e.parquet": ["embed", "-m", UNLOADABLE, "--texts", texts],
        tmp_path / "afile" / "deeper" / "run": eat_args,
        tmp_path / "afile" / "zoo": ["sweep", sweep_config],
    }
    for out, args in cases.items():
        code, _, err = run([*args, "--out", out], capsys)
        assert code == 2 and one_line(err) == (
            f"vlbias: error: --out {out}: {tmp_path / 'afile'} is not a folder; give a path in a folder"
        )


def test_a_missing_parent_is_made(tmp_path, eat_args, capsys):
    out = tmp_path / "new" / "deeper" / "r.parquet"
    assert run([*eat_args, "--out", out], capsys)[0] == 0 and out.is_file()


def test_write_parquet_marks_its_files(tmp_path):
    import pyarrow.parquet as pq

    from vlbias.utils.io import write_parquet

    write_parquet(pd.DataFrame({"a": [1]}), tmp_path / "x.parquet", {"note": "hi"})
    meta = pq.read_schema(tmp_path / "x.parquet").metadata
    assert meta[b"vlbias.note"] == b"hi" and b"vlbias.version" in meta
