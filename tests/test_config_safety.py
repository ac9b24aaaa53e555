"""Configs and input files as a careless or hostile user writes them: a sweep config never runs code, a file with
a key twice or an alias bomb is refused with one line, and a sweep whose tasks fail says so in its exit status."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.test_eat_audit import write_vectors
from vlbias.cli import main
from vlbias.cli.zeroshot import _read_meta
from vlbias.datasets.fairface import _read_labels
from vlbias.errors import VlbiasError
from vlbias.models.catalogue import load_catalogue
from vlbias.stimuli.eat_tests import read_test_file
from vlbias.stimuli.imagesets import read_manifest
from vlbias.stimuli.perception import load_lexicon
from vlbias.stimuli.prompts import read_templates
from vlbias.stimuli.valence import extreme_oasis_images, read_nrc_vad
from vlbias.stimuli.zeroshot import load_protocol
from vlbias.utils.io import MAX_YAML_VALUES, check_columns, load_json, load_yaml
from vlbias.utils.options import whole_number
from vlbias.zoo.accuracy import load_accuracy

PAYLOADS = [
    "@pd.io.common.os.system('touch PWNED') == 0",
    "__import__('os').system('touch PWNED') == 0",
    "spec.__class__.__mro__[1].__subclasses__() == 0",
    "(lambda: __import__('os').system('touch PWNED'))() == 0",
    "__builtins__ == 0",
    "spec == 'x' or " * 300 + "spec == 'x'",
    "not " * 60 + "fine_tuned",
]


def run(args, capsys):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("payload", PAYLOADS)
@pytest.mark.parametrize("dry_run", [True, False])
def test_a_sweep_config_filter_never_runs_code(payload, dry_run, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    cfg = tmp_path / "cfg.yaml"

    cfg.write_text(yaml.safe_dump({"models": [{"where": payload}], "audits": {"eat": {}}}), encoding="utf-8")
    code, out, err = run(["sweep", cfg, *(["--dry-run"] if dry_run else [])], capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cfg.yaml"]  # no PWNED, no output folder
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith(f"vlbias: error: {cfg}: models: where: ")


# ---------------------------------------------------------------------------------------------- duplicate keys
SEAT_TWICE = """{
  "targ1": {"category": "Flowers", "examples": ["rose", "tulip", "daisy"]},
  "targ2": {"category": "Insects", "examples": ["ant", "bee", "wasp"]},
  "targ1": {"category": "Insects", "examples": ["ant", "bee", "wasp"]},
  "attr1": {"category": "Pleasant", "examples": ["love", "joy", "peace"]},
  "attr2": {"category": "Unpleasant", "examples": ["hate", "pain", "war"]}
}
"""


def test_a_seat_file_with_a_key_twice_is_refused(tmp_path, capsys):

    seat = write(tmp_path / "seat.json", SEAT_TWICE)
    words = ["rose", "tulip", "daisy", "ant", "bee", "wasp", "love", "joy", "peace", "hate", "pain", "war"]
    spec = write_vectors(tmp_path / "v.npz", words, dim=8)
    code, out, err = run(["eat", "-m", spec, "--test-file", seat, "--permutations", "exact"], capsys)
    assert code == 2 and out == ""  # on main: d = 0 (X and Y the same words), exit 0
    assert err == f"vlbias: error: {seat} line 4: key 'targ1' appears twice (first at line 2); keep one\n"


def test_a_sweep_config_with_a_key_twice_is_refused(tmp_path, capsys):
    cfg = write(
        tmp_path / "cfg.yaml",
        "models: [openclip:ViT-B-32/random]\naudits: {eat: {tests: [weat1]}}\nseed: 0\naudits: {eat: {}}\n",
    )
    for extra in (["--dry-run"], []):
        code, out, err = run(["sweep", cfg, *extra], capsys)
        assert code == 2 and out == ""
        assert err == f"vlbias: error: {cfg} line 4: key 'audits' appears twice (first at line 2); keep one\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cfg.yaml"]


@pytest.mark.parametrize(
    "name, text, read, message",
    [
        (
            "t.yaml",
            "X: {name: a, texts: [p, q]}\nY: {name: b, texts: [r, s]}\nA: {name: c, texts: [t, u]}\n"
            "B: {name: d, texts: [v, w]}\nX: {name: b, texts: [r, s]}\n",
            "test",
            "line 5: key 'X' appears twice (first at line 1)",
        ),
        (
            "t.yaml",
            "X: {name: a, texts: [p, q], texts: [r, s]}\nY: {from: weat1.Y}\nA: {from: weat1.A}\nB: {from: weat1.B}\n",
            "test",
            "line 1: key 'texts' appears twice (first at line 1)",
        ),
        ("w.json", '{"flowers": ["a", "b"],\n "flowers": ["c", "d"]}', "wefe", "line 2: key 'flowers' appears twice"),
        ("p.yaml", "tasks:\n  - name: a\n    name: b\n", "protocol", "line 3: key 'name' appears twice"),
        ("l.yaml", "name: x\nscales:\n  s: [a, b]\n  s: [c]\n", "lexicon", "line 4: key 's' appears twice"),
        ("l.csv", "scale,word,Word\ns,a,b\n", "lexicon", "names column 'Word' twice (columns 2 and 3)"),
        ("tpl.json", '{"cat": ["a cat"],\n"cat": ["the cat"]}', "templates", "line 2: key 'cat' appears twice"),
        ("c.csv", "spec,n_params,n_params\nvectors:x.npz,1,2\n", "catalogue", "names column 'n_params' twice"),
        ("a.csv", "spec,average,average\nvectors:x.npz,0.5,0.6\n", "accuracy", "names column 'average' twice"),
        (
            "a.json",
            '{"dataset": "cifar10", "model": "ViT-B-32", "pretrained": "openai",\n'
            ' "metrics": {"acc1": 0.5, "acc1": 0.9}}',
            "accuracy",
            "line 2: key 'acc1' appears twice",
        ),
        ("m.csv", "path,race,race\nx.jpg,white,black\n", "manifest", "names column 'race' twice (columns 2 and 3)"),
        (
            "fairface_label_val.csv",
            "file,age,gender,race,race,service_test\nval/1.jpg,3-9,Male,White,Black,True\n",
            "fairface",
            "names column 'race' twice (columns 4 and 5)",
        ),
        ("OASIS.csv", "Theme,Valence_mean,Valence_mean\nA,1,2\n", "oasis", "names column 'Valence_mean' twice"),
        (
            "nrc.txt",
            "Word\tValence\tvalence\nlove\t0.9\t0.1\n",
            "nrc",
            "names column 'valence' twice (columns 2 and 3)",
        ),
    ],
)
def test_every_reader_refuses_a_key_or_column_twice(tmp_path, name, text, read, message):

    path = write(tmp_path / name, text)
    readers = {
        "test": read_test_file,
        "wefe": lambda p: read_test_file(f"{p}#flowers,flowers,flowers,flowers"),
        "protocol": lambda p: load_protocol(str(p)),
        "lexicon": load_lexicon,
        "templates": read_templates,
        "catalogue": lambda p: load_catalogue([p]),
        "accuracy": lambda p: load_accuracy(str(p)),
        "manifest": read_manifest,
        "fairface": lambda p: _read_labels(p.parent, p.parent, "val"),
        "oasis": extreme_oasis_images,
        "nrc": read_nrc_vad,
    }
    with pytest.raises(VlbiasError) as e:
        readers[read](path)
    assert message in str(e.value) and str(path.name) in str(e.value) and "\n" not in str(e.value)


def test_models_meta_csv_with_a_column_twice_is_refused(tmp_path, capsys):

    meta = write(tmp_path / "meta.csv", "model,data,data\nvectors:a.npz,small,large\n")
    with pytest.raises(VlbiasError, match="--models-meta .*meta.csv: the header names column 'data' twice"):
        _read_meta(meta)


def test_strict_loaders_keep_the_meaning_of_safe_load_and_json():

    files = [p for p in _walk(resources.files("vlbias.data")) if p.name.endswith(".yaml")]
    assert len(files) >= 26
    for p in files:  # every packaged file reads the same
        text = p.read_text(encoding="utf-8")
        assert load_yaml(text, p.name) == yaml.safe_load(text), p.name
    merged = "base: &b {x: 1, y: 2}\nd:\n  <<: *b\n  x: 3\nl: [*b, *b]\n"  # a merge key may be overridden
    assert (
        load_yaml(merged, "m.yaml")
        == yaml.safe_load(merged)
        == {
            "base": {"x": 1, "y": 2},
            "d": {"x": 3, "y": 2},
            "l": [{"x": 1, "y": 2}, {"x": 1, "y": 2}],
        }
    )
    assert load_yaml("", "e.yaml") is None
    text = '{"a": [1, {"b": null, "c": NaN}], "d": "\\u00e9"}'
    got = load_json(text, "x.json")
    assert got["d"] == "é" and got["a"][1]["b"] is None and got["a"][1]["c"] != got["a"][1]["c"]
    assert load_json('[{"a": 1}, {"a": 2}]', "x.json") == json.loads('[{"a": 1}, {"a": 2}]')
    check_columns(["a", "b", "", ""], "x.csv")  # unnamed columns are not names
    for text, message in [
        ("a: 1\nb: 2\na: 3\n", "x.yaml line 3: key 'a' appears twice (first at line 1); keep one"),
        ("{a: 1, a: 2}", "x.yaml line 1: key 'a' appears twice (first at line 1)"),
        ("yes: 1\ntrue: 2\n", "x.yaml line 2: key True appears twice"),  # both are YAML 1.1 booleans
        (
            "!!python/object/apply:os.system ['touch PWNED']",
            "x.yaml line 1 is not valid YAML (could not determine a constructor for the tag",
        ),
        ("a: [1, 2\n", "x.yaml line 2 is not valid YAML"),
    ]:
        with pytest.raises(VlbiasError, match="^" + re.escape(message)):
            load_yaml(text, "x.yaml")
    with pytest.raises(VlbiasError, match=r"^x.json line 3: key 'a' appears twice \(first at line 1\); keep one$"):
        load_json('{ "a" : 1 ,\n "b" : {"a": 2} ,\n "a" : 3 }', "x.json")


def _walk(folder):
    for p in folder.iterdir():
        if p.is_dir():
            yield from _walk(p)
        else:
            yield p


# ---------------------------------------------------------------------------------------------- size bounds
def _alias_bomb(levels: int = 7) -> str:
    """A list of 10 items, each level ten aliases of the one before: 10**levels items once expanded."""
    lines = ["l0: &l0 [" + ", ".join(["x"] * 10) + "]"]
    for i in range(1, levels + 1):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_before_it_expands(tmp_path, capsys):

    cfg = write(
        tmp_path / "bomb.yaml",
        _alias_bomb() + "models: [openclip:ViT-B-32/random]\naudits: {eat: {image_sets: *l7}}\n",
    )
    for extra in (["--dry-run"], []):
        code, out, err = run(["sweep", cfg, *extra], capsys)
        assert code == 2 and out == "" and err.count("\n") == 1
        assert err.startswith(f"vlbias: error: {cfg}: holds more than 100,000 values once its aliases (*name)")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bomb.yaml"]
    assert MAX_YAML_VALUES == 100_000
    assert len(load_yaml(_alias_bomb(3), "ok.yaml")["l3"]) == 10  # 1,000 values once expanded: fine
    with pytest.raises(VlbiasError, match=r"^self.yaml line 1: an alias \(\*name\) refers to a value that holds it"):
        load_yaml("&a [1, *a]", "self.yaml")


# ---------------------------------------------------------------------------------------------- failing sweeps
def _sweep_config(tmp_path: Path, **extra) -> Path:
    words = ["rose", "tulip", "ant", "bee", "love", "joy", "hate", "pain"]
    spec = write_vectors(tmp_path / "v.npz", words, dim=8)
    test = write(
        tmp_path / "t.yaml",
        "X: {name: F, texts: [rose, tulip]}\nY: {name: I, texts: [ant, bee]}\n"
        "A: {name: P, texts: [love, joy]}\nB: {name: U, texts: [hate, pain]}\n",
    )
    cfg = {"models": [spec], "audits": {"eat": [{"test_files": [str(test)], "n_bootstrap": 0}]}, **extra}
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


def test_a_sweep_whose_tasks_fail_exits_non_zero_and_says_how_many(tmp_path, capsys):
    # bad option values are refused when the config is read (test_parity); these tasks fail as they run: their
    # test files are not there
    cfg = _sweep_config(tmp_path)
    raw = yaml.safe_load(cfg.read_text())
    base = raw["audits"]["eat"][0]
    missing = [tmp_path / f"gone{i}.yaml" for i in range(4)]
    raw["audits"]["eat"] = [{**base, "test_files": [str(m)]} for m in missing] + [{**base, "permutations": "exact"}]
    cfg.write_text(yaml.safe_dump(raw), encoding="utf-8")
    out_dir = tmp_path / "out"
    code, _, err = run(["sweep", cfg, "--out", out_dir], capsys)
    lines = err.splitlines()
    assert code == 1  # on main: 0
    assert lines[-1] == (
        f"vlbias: error: 4 of 5 tasks failed; see their errors with `vlbias sweep {cfg} --out {out_dir} --status`, "
        f"and run the same command again to retry them"
    )
    assert "sweep: 1 done, 4 failed, 0 skipped of 5 tasks (0 were already done)" in err
    failures = sorted(line.split(": ", 1)[1] for line in lines if "FAILED" in line)
    assert failures == [f"test file not found: {m}; check the path" for m in missing]
    code, _, err = run(["sweep", cfg, "--out", out_dir, "--no-retry-failed"], capsys)
    assert code == 1 and "4 of 5 tasks failed" in err  # failures left alone are still failures
    raw["audits"]["eat"] = [{**base, "permutations": "exact"}]
    cfg.write_text(yaml.safe_dump(raw), encoding="utf-8")
    code, _, err = run(["sweep", cfg, "--out", out_dir], capsys)
    assert code == 0 and "error" not in err


@pytest.mark.parametrize(
    "extra, message",
    [
        ({"seed": -1}, "sweep option seed=-1: must be a whole number ≥ 0"),
        ({"seed": 2.5}, "sweep option seed=2.5: must be a whole number ≥ 0"),
        ({"seed": True}, "sweep option seed=True: must be a whole number ≥ 0"),
        ({"encoder": {"batch_size": 0}}, "encoder option batch_size=0: must be a whole number ≥ 1"),
        ({"encoder": {"batch_size": 2.5}}, "encoder option batch_size=2.5: must be a whole number ≥ 1"),
        ({"encoder": {"workers": -1}}, "encoder option workers=-1: must be a whole number ≥ 0"),
        ({"encoder": {"device": "gpu"}}, "encoder option device='gpu' is unknown; use auto, cpu, cuda or cuda:N"),
        ({"encoder": {"precision": "fp8"}}, "encoder option precision='fp8' is unknown; use one of fp32, fp16, bf16"),
        ({"accuracy": "nope.csv"}, "accuracy: 'nope.csv' is neither openclip nor an existing file or folder"),
    ],
)
def test_bad_sweep_settings_are_one_line_before_anything_is_made(tmp_path, capsys, extra, message):
    cfg = _sweep_config(tmp_path, **extra)
    before = sorted(p.name for p in tmp_path.iterdir())
    for args in (["--dry-run"], []):
        code, out, err = run(["sweep", cfg, *args], capsys)
        assert (code, out, err) == (2, "", f"vlbias: error: {cfg}: {message}\n")  # on main: every task failed, exit 0
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no output folder


def test_a_config_error_found_by_planning_leaves_no_output_folder(tmp_path, capsys):
    cfg = write(tmp_path / "cfg.yaml", "models: [openclip:ViT-B-32/random]\naudits: {perception: {}}\n")
    code, _, err = run(["sweep", cfg], capsys)
    assert code == 2 and "add datasets: [NAME:PATH]" in err and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cfg.yaml"]  # on main: an empty cfg/ was left
    mine = tmp_path / "mine"
    mine.mkdir()
    code, _, _ = run(["sweep", cfg, "--out", mine], capsys)
    assert code == 2 and mine.is_dir()  # a folder the run did not make is never removed


def test_whole_numbers_are_never_rounded():
    assert whole_number("encoder", "workers", 7) == 7 and whole_number("eat", "permutations", np.int64(3), 1) == 3
    assert whole_number("eat", "permutations", 1.0e6) == 1_000_000 and whole_number("sweep", "seed", "3") == 3
    for bad in (2.5, -1, True, "3.5", None):
        with pytest.raises(VlbiasError, match=r"^eat option permutations=.*: must be a whole number ≥ 0$"):
            whole_number("eat", "permutations", bad)
