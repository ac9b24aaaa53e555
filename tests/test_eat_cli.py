"""vlbias eat and vlbias stimuli on the command line: outputs, and one clear line for every bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from tests.test_eat_audit import seat_file, write_vectors
from vlbias.cli import main


def run(args, capsys):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def planted(tmp_path):
    """A SEAT file and a vectors file in which X and A (and Y and B) share a direction."""
    X = [f"This is x{i}." for i in range(7)]
    Y = [f"This is y{i}." for i in range(7)]
    A = [f"That is a{i}." for i in range(5)]
    B = [f"That is b{i}." for i in range(5)]
    f = seat_file(tmp_path / "planted.json", [("Xs", X), ("Ys", Y), ("As", A), ("Bs", B)])
    e = np.eye(12, dtype=np.float32)
    spec = write_vectors(
        tmp_path / "v.npz",
        X + Y + A + B,
        dim=12,
        shift={**{k: 3 * e[0] for k in X + A}, **{k: 3 * e[1] for k in Y + B}},
    )
    return f, spec


def test_table_json_csv_and_outputs(tmp_path, planted, capsys):
    f, spec = planted
    base = ["eat", "-m", spec, "--test-file", f, "--permutations", "exact", "--n-bootstrap", "200"]
    code, out, err = run(base, capsys)
    assert code == 0, err
    assert "planted" in out and "all-text" in out and "✓" in out and "exact in 1" in out
    assert "\n1 test, 0 skipped; p: permutation test" in out  # one row: "1 test", never "1 tests"
    code, out, _ = run([*base, "--format", "json"], capsys)
    rows = json.loads(out)
    assert len(rows) == 1 and rows[0]["effect_size"] > 1 and rows[0]["p_value"] < 0.01 and rows[0]["exact"]
    assert rows[0]["model"] == spec and rows[0]["n_permutations"] == 3432
    code, out, _ = run([*base, "--format", "csv", "--alternative", "less"], capsys)
    df = pd.read_csv(pd.io.common.StringIO(out))
    assert df.loc[0, "alternative"] == "less" and df.loc[0, "p_value"] > 0.99
    code, _, err = run([*base, "--out", tmp_path / "r.parquet"], capsys)
    assert code == 0 and "wrote 1 row to" in err
    back = pd.read_parquet(tmp_path / "r.parquet")
    assert back.loc[0, "effect_size"] == pytest.approx(rows[0]["effect_size"]) and "config_hash" in back
    code, _, _ = run([*base, "--out", tmp_path / "folder"], capsys)
    assert (
        code == 0
        and (tmp_path / "folder" / "record.json").is_file()
        and (tmp_path / "folder" / "items.parquet").is_file()
    )


@pytest.mark.parametrize(
    "extra,fragment",
    [
        (["--test", "weat99"], "unknown test 'weat99'"),
        (["--test-file", "nope.json"], "test file not found"),
        (["--permutations", "many"], "--permutations 'many': must be a whole number ≥ 1 or exact"),
        (["--permutations", "0"], "--permutations '0': must be a whole number ≥ 1 or exact"),
        (["--orders", "sideways"], "--orders 'sideways': 'sideways' is not one of all-text, all-image"),
        (["--image-set", "instruments"], "--image-set 'instruments': 'instruments' must be KEY=VALUE"),
        (["--test", "weat1"], "has no vector for"),
        (["--valence", "nrc-oasis"], "needs the NRC-VAD words (a lexicon file, or ghate2025) and the OASIS folder"),
    ],
)
def test_bad_input_is_one_line(planted, extra, fragment, capsys):
    _, spec = planted
    code, out, err = run(["eat", "-m", spec, *extra], capsys)
    assert code == 2 and fragment in err and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err


def test_drop_missing_reports_how_many(planted, capsys):
    _, spec = planted
    args = ["eat", "-m", spec, "--test", "weat7", "--drop-missing", "--permutations", "99"]
    code, out, err = run(args, capsys)
    assert code == 0 and "skipped" in out and "dropped 32 stimuli" in err
    code, out, err = run([*args, "--format", "json"], capsys)
    row = json.loads(out)[0]
    assert row["status"] == "skipped" and row["reason"] == (
        "set X (Math) has 0 item(s) left after dropping 32; an association test needs at least 2"
    )


def test_stimuli_list(tmp_path, capsys):
    code, out, _ = run(["stimuli", "list", "--stimuli-dir", tmp_path], capsys)
    assert code == 0 and "weat10" in out and "Flowers vs Insects" in out and "0 of 291 files" in out
    assert "24 run unless you supply instrument images" in " ".join(out.split())


def test_help_says_what_the_battery_runs(capsys):
    """The battery's 26 rows, the 24 that run without the unreleased instrument images, and the preset."""
    code, out, _ = run(["eat", "--help"], capsys)
    text = " ".join(out.split())
    assert code == 0 and "24 run unless you supply instrument images" in text and "--preset ghate2025" in text
    assert "24 rows run unless you supply instrument images" in text  # the --battery flag's own help
    assert "ghate2025-legacy" in text and "--sign-convention" in text and "--seat-sentences" in text


def test_help_imports_no_deep_learning_library():
    code = (
        "import sys, contextlib, io\n"
        "from vlbias.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    for args in (['--help'], ['eat', '--help'], ['stimuli', '--help'], ['stimuli', 'list']):\n"
        "        assert main(args) == 0, args\n"
        "heavy = {'torch', 'open_clip', 'transformers', 'sentence_transformers'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_names_with_markup_are_printed_as_written(tmp_path, capsys):
    """Set names, test names and model paths are the user's text: printed as written, never read as rich markup
    (a set named '[/x]' failed after the results were computed)."""
    names = ["[/x]", "[bold]Ys[/bold]", ":smile:", "[red"]
    words = [[f"{r}{i}" for i in range(3)] for r in "xyab"]
    f = seat_file(tmp_path / "[b]t.json", list(zip(names, words)))
    (tmp_path / "[").mkdir()
    spec = write_vectors(tmp_path / "[" / "x].npz", sum(words, []), dim=6)
    code, out, err = run(["eat", "-m", spec, "--test-file", f, "--permutations", "99", "--n-bootstrap", "0"], capsys)
    assert code == 0, err
    assert f"Embedding association tests: {spec}" in out
    assert "│ [b]t │" in out and "[/x] vs [bold]Ys[/bold]" in out and ":smile: vs [red" in out


def test_the_console_and_progress_bars_print_user_text_as_written(monkeypatch):
    import io

    from rich.console import Console
    from rich.table import Table

    from vlbias.cli._common import console
    from vlbias.utils.progress import progress

    con = console()
    con.file = io.StringIO()
    t = Table(title="[/x] title")
    t.add_column("[/y] label")
    t.add_row("[bold]cell[/bold] :smile:")
    con.print(t)
    con.print("wrote [/z]")
    shown = con.file.getvalue()
    assert "[/x] title" in shown and "[/y] label" in shown and "[bold]cell[/bold] :smile:" in shown
    assert "wrote [/z]" in shown

    monkeypatch.setenv("VLBIAS_PROGRESS", "1")
    with progress("encoding texts (vectors:/data/[/x].npz)", 2, "texts [/u]") as bar:
        bar.advance(1)
        prog = bar._prog
        prog.refresh()
        out = io.StringIO()
        Console(file=out, width=200).print(prog.make_tasks_table(prog.tasks))
    assert "encoding texts (vectors:/data/[/x].npz)" in out.getvalue() and "texts [/u]" in out.getvalue()


def test_p_below_05_beside_an_interval_covering_0_is_marked_and_explained(capsys):
    """MiniLM's WEAT 7: p = 0.027 with the interval [-0.25, +1.53]; the table marks it and its footer says why the
    two disagree (the permutation test holds the attribute words fixed, the bootstrap resamples them too)."""
    assert main(["eat", "-m", "st:all-MiniLM-L6-v2", "--test", "weat7", "--test", "weat1"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "[-0.25, +1.53] │ 0.027† │" in out and "│ 1.00e-06 │" in out  # weat1: no mark
    assert (
        "1 of them: † p < .05 while the interval covers 0: no contradiction. The permutation test holds the attribute "
        "sets A and B fixed and asks whether X and Y differ in their association with these very stimuli; the "
        "bootstrap interval also resamples A and B"
    ) in out
