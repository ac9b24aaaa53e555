"""The command line: fast start, embed round trips, and one clear line (never a traceback) for bad input."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from tests.helpers import console_script, write_images, write_w2v_text
from vlbias import __version__
from vlbias.cli import main
from vlbias.models import load_model
from vlbias.utils.io import write_parquet


def run(args, capsys):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_version(capsys):
    code, out, _ = run(["--version"], capsys)
    assert code == 0 and out.strip() == f"vlbias {__version__}"


def test_commands_that_load_no_model_import_no_deep_learning_library():
    code = (
        "import sys, contextlib, io\n"
        "from vlbias.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    for args in (['--help'], ['models'], ['cache', 'info'], ['embed', '--help']):\n"
        "        assert main(args) == 0, args\n"
        "heavy = {'torch', 'open_clip', 'transformers', 'sentence_transformers'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_console_script_runs():
    out = subprocess.run([console_script(), "--version"], capture_output=True, text=True, check=True).stdout
    assert __version__ in out


def test_models_lists_backends_and_pairs(capsys):
    code, out, _ = run(["models"], capsys)
    assert code == 0
    for fragment in ("openclip:", "hf:", "st:", "vectors:", "ViT-B-32", "laion2b_s34b_b79k"):
        assert fragment in out
    code, out, _ = run(["models", "--format", "csv"], capsys)
    assert "openclip:ViT-B-32/laion2b_s34b_b79k,openclip,ViT-B-32,laion2b_s34b_b79k" in out.splitlines()
    code, out, _ = run(["models", "--where", "spec == 'openclip:ViT-B-32/openai'", "--columns", "n_params"], capsys)
    assert code == 0 and out.splitlines()[0] == "model catalogue (1 model)"  # never "1 models"


def test_embed_texts_round_trip(tmp_path, capsys):
    texts = tmp_path / "t.txt"
    texts.write_text("This is a tulip.\n\nThese are ants.\nThis is a tulip.\n", encoding="utf-8")
    out = tmp_path / "t.parquet"
    code, _, err = run(["embed", "-m", "st:all-MiniLM-L6-v2", "--texts", texts, "--out", out], capsys)
    assert code == 0 and err == f"wrote 2 embeddings to {out}\n"
    df = pd.read_parquet(out)
    assert df["key"].tolist() == ["This is a tulip.", "These are ants."]
    direct = load_model("st:all-MiniLM-L6-v2", cache=False).encode_texts(df["key"].tolist())
    np.testing.assert_allclose(np.stack(df["vector"]), direct, atol=1e-6)
    again = load_model(f"vectors:{out}").encode_texts(["These are ants."])  # the output is a vectors: file
    np.testing.assert_allclose(again[0], direct[1], atol=1e-6)
    (tmp_path / "one.txt").write_text("a cat\n", encoding="utf-8")
    one = tmp_path / "one.parquet"
    code, _, err = run(["embed", "-m", "st:all-MiniLM-L6-v2", "--texts", tmp_path / "one.txt", "--out", one], capsys)
    assert code == 0 and err == f"wrote 1 embedding to {one}\n"


def test_embed_images_round_trip_and_skips(tmp_path, capsys):
    root = tmp_path / "imgs"
    write_images(root / "a", n=3)
    write_images(root / "b", n=2, fmt="PNG")
    out = tmp_path / "i.parquet"
    code, _, _ = run(["embed", "-m", "openclip:ViT-S-32-alt/random", "--images", root, "--out", out], capsys)
    assert code == 0
    df = pd.read_parquet(out)
    assert df["key"].tolist() == ["a/img000.jpg", "a/img001.jpg", "a/img002.jpg", "b/img000.png", "b/img001.png"]
    assert df["error"].isna().all() and df["sha256"].str.len().eq(64).all()
    direct = load_model("openclip:ViT-S-32-alt/random", cache=False).encode_images([root / k for k in df["key"]])
    np.testing.assert_allclose(np.stack(df["vector"]), direct, atol=1e-6)

    (root / "a" / "broken.jpg").write_bytes(b"garbage")
    (root / "readme.txt").write_text("not an image")
    out2 = tmp_path / "i2.parquet"
    args = ["embed", "-m", "openclip:ViT-S-32-alt/random", "--images", root, "--out", out2, "--skip-bad-images"]
    code, _, err = run(args, capsys)
    assert code == 0 and "2 skipped" in err
    df2 = pd.read_parquet(out2).set_index("key")
    assert df2.loc["a/broken.jpg", "vector"] is None and "cannot identify" in df2.loc["a/broken.jpg", "error"]
    assert df2.loc["readme.txt", "error"] == "not an image file"


@pytest.fixture
def bad_inputs(tmp_path):
    d = tmp_path
    (d / "texts.txt").write_text("a cat\na dog\n")
    (d / "empty.txt").write_text("\n\n")
    (d / "latin1.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    write_images(d / "corrupt", n=2)
    (d / "corrupt" / "bad.jpg").write_bytes(b"not an image")
    write_images(d / "mixed", n=2)
    (d / "mixed" / "notes.txt").write_text("hello")
    (d / "emptydir").mkdir()
    (d / "mixed_dims.txt").write_text("a 1 2 3\nb 1 2\n")
    write_w2v_text(d / "vec.txt", ["a"], np.ones((1, 3), np.float32))
    return d


BAD = [
    (["-m", "nope:x", "--texts", "texts.txt"], "unknown backend 'nope'"),
    (["-m", "openclip:ViT-Q-1/random", "--texts", "texts.txt"], "unknown open_clip architecture"),
    (["-m", "openclip:ViT-B-32/laion3000", "--texts", "texts.txt"], "unknown pretrained tag 'laion3000'"),
    (["-m", "openclip:ViT-B-32/laion2b_s34b_b79k", "--texts", "texts.txt"], "laion2b_s34b_b79k@/path/to/"),
    (["-m", "openclip:ViT-S-32-alt/random", "--texts", "missing.txt"], "texts file not found"),
    (["-m", "openclip:ViT-S-32-alt/random", "--texts", "empty.txt"], "holds no texts"),
    (["-m", "openclip:ViT-S-32-alt/random", "--texts", "latin1.txt"], "is not UTF-8 text"),
    (["-m", "openclip:ViT-S-32-alt/random", "--images", "corrupt"], "cannot decode image"),
    (["-m", "openclip:ViT-S-32-alt/random", "--images", "mixed"], "is not an image file"),
    (["-m", "openclip:ViT-S-32-alt/random", "--images", "emptydir"], "is empty"),
    (["-m", "openclip:ViT-S-32-alt/random", "--images", "nowhere"], "not found"),
    (["-m", "st:all-MiniLM-L6-v2", "--images", "mixed", "--skip-bad-images"], "text-only model"),
    (["-m", "vectors:mixed_dims.txt", "--texts", "texts.txt"], "has 2 values where the others have 3"),
    (["-m", "vectors:vec.txt", "--texts", "texts.txt"], "has no vector for 2 text(s)"),
    (["-m", "vectors:nowhere.txt", "--texts", "texts.txt"], "vectors file not found"),
    (["-m", "openclip:ViT-S-32-alt/random", "--texts", "texts.txt", "--images", "mixed"], "exactly one of"),
    (["-m", "openclip:ViT-S-32-alt/random"], "exactly one of"),
    (["--texts", "texts.txt"], "Missing option '--model'"),
    (["-m", "openclip:ViT-S-32-alt/random", "--texts", "texts.txt", "--batch-size", "0"], "--batch-size"),
]


@pytest.mark.parametrize("args, fragment", BAD, ids=[b[1][:30] for b in BAD])
def test_bad_input_one_line_no_output(bad_inputs, args, fragment, capsys, monkeypatch):
    monkeypatch.chdir(bad_inputs)
    out = bad_inputs / "out.parquet"
    write_parquet(pd.DataFrame({"key": ["previous output"]}), out)
    before = out.read_bytes()
    code, _, err = run(["embed", *args, "--out", out, "--overwrite"], capsys)
    assert code == 2
    assert fragment in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert out.read_bytes() == before  # nothing half-written over the earlier output
    assert [p.name for p in bad_inputs.iterdir() if p.name.startswith(".out")] == []


def test_bad_input_in_a_real_process_has_no_traceback(tmp_path):
    r = subprocess.run(
        [
            console_script(),
            "embed",
            "-m",
            "openclip:ViT-B-32/nonsense",
            "--texts",
            "x",
            "--out",
            str(tmp_path / "o.parquet"),
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.startswith("vlbias: error: unknown pretrained tag 'nonsense'")


def test_out_must_be_parquet(tmp_path, capsys):
    (tmp_path / "t.txt").write_text("a\n")
    code, _, err = run(
        ["embed", "-m", "st:all-MiniLM-L6-v2", "--texts", tmp_path / "t.txt", "--out", tmp_path / "o.csv"], capsys
    )
    assert code == 2 and "must be a .parquet file" in err


def test_cache_info_and_clear(tmp_path, capsys):
    cache = tmp_path / "cache"
    (tmp_path / "t.txt").write_text("a\nb\n")
    for model in ("st:all-MiniLM-L6-v2", "openclip:ViT-S-32-alt/random"):
        code, _, _ = run(
            [
                "embed",
                "-m",
                model,
                "--texts",
                tmp_path / "t.txt",
                "--out",
                tmp_path / f"{model.split(':')[0]}.parquet",
                "--cache-dir",
                cache,
            ],
            capsys,
        )
        assert code == 0
    code, out, _ = run(["cache", "info", "--cache-dir", cache], capsys)
    assert code == 0 and "st:all-MiniLM-L6-v2" in out and "openclip:ViT-S-32-alt/random" in out
    assert "2 models" in out and "4 embeddings" in out
    code, _, err = run(["cache", "clear", "--model", "st:all-MiniLM-L6-v2", "--cache-dir", cache], capsys)
    assert code == 0 and "removed 1" in err
    code, out, _ = run(["cache", "info", "--cache-dir", cache], capsys)
    assert "st:all-MiniLM-L6-v2" not in out and "openclip:ViT-S-32-alt/random" in out
    code, _, err = run(["cache", "clear", "--model", "st:nothing", "--cache-dir", cache], capsys)
    assert code == 2 and "no cache entries for st:nothing" in err
    code, _, err = run(["cache", "clear", "--yes", "--cache-dir", cache], capsys)
    assert code == 0
    code, out, _ = run(["cache", "info", "--cache-dir", cache], capsys)
    assert "empty" in out


def test_warm_rerun_uses_the_cache(tmp_path, capsys, monkeypatch):
    """The second embed of the same images loads no model: everything comes from the cache."""
    write_images(tmp_path / "imgs", n=3)
    args = ["embed", "-m", "openclip:ViT-S-32-alt/random", "--images", tmp_path / "imgs", "--cache-dir", tmp_path / "c"]
    assert run([*args, "--out", tmp_path / "a.parquet"], capsys)[0] == 0
    from vlbias.models.backends import openclip

    def refuse(self):
        raise AssertionError("model loaded on a warm cache")

    monkeypatch.setattr(openclip.Backend, "_load", refuse)
    assert run([*args, "--out", tmp_path / "b.parquet"], capsys)[0] == 0
    a, b = pd.read_parquet(tmp_path / "a.parquet"), pd.read_parquet(tmp_path / "b.parquet")
    np.testing.assert_array_equal(np.stack(a["vector"]), np.stack(b["vector"]))


# ---------------------------------------------------------------------------------------------- hostile inputs
_SETS = {"targ1": "x", "targ2": "y", "attr1": "a", "attr2": "b"}
_WORDS = [f"{p}{i}" for p in _SETS.values() for i in range(3)]


def _seat(path, **over):
    import json

    obj = {k: {"category": f"{p.upper()}s", "examples": [f"{p}{i}" for i in range(3)]} for k, p in _SETS.items()}
    obj.update(over)
    path.write_text(json.dumps(obj), encoding="utf-8")


@pytest.fixture
def hostile(tmp_path):
    """Bad inputs a careless or hostile user gives, each in its own file."""
    d = tmp_path
    np.savez(d / "v.npz", keys=np.array(_WORDS), vectors=np.random.default_rng(0).normal(size=(len(_WORDS), 8)))
    (d / "texts.txt").write_text("x0\ny0\n", encoding="utf-8")
    rest = "Y: {from: weat1.Y}\nA: {from: weat1.A}\nB: {from: weat1.B}\n"
    (d / "classes-list.yaml").write_text("X: {name: a, words: [x0, x1], classes: [noun]}\n" + rest)
    (d / "class-list.yaml").write_text("X: {name: a, words: [x0, x1], class: [noun]}\n" + rest)
    (d / "sentences-oops.yaml").write_text("sentences: oops\nX: {name: a, words: [x0, x1], class: noun}\n" + rest)
    (d / "omit-list.yaml").write_text("sentences: {omit: [X]}\nX: {name: a, words: [x0, x1], class: noun}\n" + rest)
    (d / "set-null.yaml").write_text("X:\n" + rest)
    (d / "top-list.yaml").write_text("- X\n- Y\n")
    (d / "words-numbers.yaml").write_text("X: {name: a, words: [1, 2]}\n" + rest)
    _seat(d / "ok.json")
    _seat(d / "examples-string.json", targ1={"category": "Xs", "examples": "x0 x1"})
    _seat(d / "examples-number.json", targ1={"category": "Xs", "examples": ["x0", 1]})
    _seat(d / "no-category.json", attr2={"examples": ["b0", "b1"]})
    _seat(d / "category-list.json", attr2={"category": ["B"], "examples": ["b0", "b1"]})
    (d / "huge.bin").write_bytes(b"100000000000 3\n" + b"x0 " + np.ones(3, "<f4").tobytes() + b"\n")
    (d / "negdim.bin").write_bytes(b"1 -3\nx0 \n")
    (d / "zerodim.bin").write_bytes(b"1 0\nx0 \n")
    (d / "bigdim.bin").write_bytes(b"1 999999999\nx0 \n")
    (d / "short.bin").write_bytes(b"2 3\n" + b"x0 " + np.ones(3, "<f4").tobytes() + b"\ny0 ")
    (d / "short.txt").write_text("3 2\nx0 1 2\ny0 3 4\n")
    return d


EAT = ["eat", "-m", "vectors:v.npz", "--permutations", "99", "--n-bootstrap", "0"]
HOSTILE = [
    ([*EAT, "--test-file", "classes-list.yaml"], "set X 'classes' must map template classes to words"),
    ([*EAT, "--test-file", "class-list.yaml"], "set X 'class' must be a string (got a list ['noun'])"),
    ([*EAT, "--test-file", "sentences-oops.yaml"], "'sentences' must be a mapping with 'omit' and 'source'"),
    ([*EAT, "--test-file", "omit-list.yaml"], "'sentences' 'omit' must be a mapping with sets X, Y, A or B"),
    ([*EAT, "--test-file", "set-null.yaml"], "set X must be a mapping with a name and words, texts or images"),
    ([*EAT, "--test-file", "top-list.yaml"], "top-list.yaml must be a mapping with sets X, Y, A and B (got a list)"),
    ([*EAT, "--test-file", "words-numbers.yaml"], "set X 'words' must be a list of strings, but holds a number 1"),
    ([*EAT, "--test-file", "examples-string.json"], "targ1.examples must be a list of strings (got a string)"),
    ([*EAT, "--test-file", "examples-number.json"], "targ1.examples must be a list of strings, but holds a number"),
    ([*EAT, "--test-file", "no-category.json"], "'attr2' has no 'category'"),
    ([*EAT, "--test-file", "category-list.json"], "attr2.category must name the set with a string (got a list"),
    ([*EAT, "--test-file", "ok.json", "--seed", "-1"], "--seed '-1': must be a whole number ≥ 0"),
    (["embed", "-m", "vectors:huge.bin", "--texts", "texts.txt"], "header announces 100,000,000,000 vectors of 3"),
    (["embed", "-m", "vectors:negdim.bin", "--texts", "texts.txt"], "the header 'N D' gives -3 values per vector"),
    (["embed", "-m", "vectors:zerodim.bin", "--texts", "texts.txt"], "the header 'N D' gives 0 values per vector"),
    (["embed", "-m", "vectors:bigdim.bin", "--texts", "texts.txt"], "gives 999,999,999 values per vector"),
    (["embed", "-m", "vectors:short.bin", "--texts", "texts.txt"], "the header announces 2 vectors of 3 values"),
    (["embed", "-m", "vectors:short.txt", "--texts", "texts.txt"], "header announces 3 vectors but the file holds 2"),
    ([*EAT[:2], "vectors:huge.bin", *EAT[3:], "--test-file", "ok.json"], "header announces 100,000,000,000 vectors"),
    ([*EAT, "--test-file", "ok.json", "--seed", "1.5"], "--seed '1.5': must be a whole number ≥ 0"),
    (["zeroshot", "-m", "vectors:v.npz", "-d", "cfd:nowhere", "--seed", "-1"], "--seed '-1': must be a whole"),
    (["perception", "-m", "vectors:v.npz", "-d", "causalface:nowhere", "--seed", "-1"], "--seed '-1': must be"),
    (["zeroshot-compare", "a", "b", "--seed", "-1"], "Invalid value for '--seed'"),
]


@pytest.mark.parametrize("args, fragment", HOSTILE, ids=[f"{a[0]}:{f[:40]}" for a, f in HOSTILE])
def test_hostile_input_is_one_line_and_writes_nothing(hostile, args, fragment, capsys, monkeypatch):
    """Through the real command line: a non-zero exit, exactly one line on stderr (vlbias's error line or click's
    usage line), no traceback, and nothing written (neither --out nor a temporary file beside it)."""
    import re

    monkeypatch.chdir(hostile)
    before = sorted(p.name for p in hostile.iterdir())
    code, _, err = run([*args, "--out", hostile / "result.parquet"], capsys)
    assert code != 0
    lines = err.splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert re.match(r"vlbias( [\w-]+)?: error: ", lines[0]) and fragment in lines[0], lines[0]
    assert sorted(p.name for p in hostile.iterdir()) == before


def test_counts_in_messages_are_in_words(tmp_path, capsys):
    """One of a thing is never "1 things" (an audit run of one row, and its one-page Markdown report)."""
    import re

    run_dir = tmp_path / "eat"
    args = ["eat", "-m", "st:all-MiniLM-L6-v2", "--test", "weat7", "--n-bootstrap", "20", "--out", run_dir]
    code, _, err = run(args, capsys)
    assert code == 0 and err == f"wrote 1 row to {run_dir}\n"
    code, out, err = run(["report", run_dir, "--format", "md", "--out", tmp_path / "rep", "--jobs", "1"], capsys)
    assert code == 0 and out == f"{tmp_path / 'rep' / 'report.md'}\n"
    assert re.fullmatch(r"report: 1 page, \d+ figures?, \d+ data files? in \d+\.\d s; open \S+report\.md\n", err), err
