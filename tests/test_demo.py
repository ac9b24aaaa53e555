"""`vlbias demo`: synthetic datasets in the layouts the loaders read, written under the output rule, no checkout's
tests/ needed."""

from __future__ import annotations

import json

import pytest

from vlbias.cli import main
from vlbias.datasets import load_dataset
from vlbias.datasets.causalface import GENDERS, RACES
from vlbias.datasets.demo import FACES_RACES, FEW_LEVELS


def run(args, capsys):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_demo_causalface_is_a_release_layout_folder_the_loader_reads(tmp_path, capsys):
    out = tmp_path / "cf"
    code, stdout, err = run(["demo", "causalface", out], capsys)
    assert code == 0 and stdout == ""
    assert err == f"wrote 168 images to {out}; use it as causalface:{out}\n"  # + 36 uncorrected smiling copies
    ds = load_dataset(f"causalface:{out}")
    t = ds.table
    per_identity = len(RACES) * len(GENDERS) * sum(len(v) for v in FEW_LEVELS.values())
    assert len(t) == 2 * per_identity == 132 and t["identity"].nunique() == 2
    assert set(t["race"]) == set(RACES) and set(t["gender"]) == set(GENDERS)
    assert sorted(t.loc[t["attribute"] == "smiling", "level"].unique()) == [-2.5, 0.0, 4.0]
    assert not ds.report.malformed and not ds.report.images_without_metadata
    # three levels of the age release's ten: each seed lacks the other 7 x 6 images (said per seed, never summed)
    assert "final_picked_age: 2 of 2 seeds lack 42 of the 60 race x gender x level images each seed has in the " in (
        "; ".join(ds.report.notes)
    )
    manifest = json.loads((out / ".vlbias-output.json").read_text())
    assert manifest["vlbias_output"] == "demo" and len(manifest["files"]) == 168 + 4 * 2 + 4  # files, seed folders


def test_demo_causalface_options(tmp_path, capsys):
    code, _, err = run(["demo", "causalface", tmp_path / "cf", "--seeds", "1", "--all-levels"], capsys)
    assert code == 0 and err.startswith("wrote 258 images to ")  # 6 x 33 levels + 6 x 10 uncorrected smiling
    t = load_dataset(f"causalface:{tmp_path / 'cf'}").table
    assert len(t) == 198 and t["identity"].nunique() == 1


def test_demo_faces_is_a_manifest_with_race_gender_and_age(tmp_path, capsys):
    out = tmp_path / "faces"
    code, _, err = run(["demo", "faces", out], capsys)
    assert code == 0 and err == f"wrote 24 images and faces.csv to {out}; use it as manifest:{out / 'faces.csv'}\n"
    ds = load_dataset(f"manifest:{out / 'faces.csv'}")
    t = ds.table
    assert len(t) == 24 and t["identity"].is_unique
    assert t.groupby(["race", "gender"]).size().eq(3).all() and set(t["race"]) == set(FACES_RACES)
    assert t["age"].between(18, 80).all() and t["age"].nunique() == 6
    assert t.groupby("gender")["age"].mean().round(1).tolist() == [43.2, 43.2]  # age not confounded with gender
    assert ds.report.as_frame().empty  # every image has its metadata, every label is in the vocabulary


def test_demo_writes_follow_the_output_rule(tmp_path, capsys):
    out = tmp_path / "faces"
    assert run(["demo", "faces", out, "--per-group", "1"], capsys)[0] == 0
    code, _, err = run(["demo", "faces", out], capsys)
    assert code == 2 and err == (
        f"vlbias: error: DIR {out} holds an earlier vlbias demo dataset; add --overwrite to replace it, or give a "
        "new folder\n"
    )
    assert len(list((out / "images").iterdir())) == 8  # untouched
    assert run(["demo", "faces", out, "--overwrite"], capsys)[0] == 0
    assert len(list((out / "images").iterdir())) == 24
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    code, _, err = run(["demo", "causalface", mine, "--overwrite"], capsys)
    assert code == 2 and err.startswith(f"vlbias: error: DIR {mine} ") and err.count("\n") == 1
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]


@pytest.mark.parametrize("name", ["causalface", "faces"])
def test_demo_help_names_the_dataset_spec(name, capsys):
    code, out, _ = run(["demo", name, "--help"], capsys)
    assert code == 0 and ("causalface:DIR" if name == "causalface" else "manifest:DIR/faces.csv") in out


def test_demo_is_no_dataset_name(tmp_path):
    from vlbias.datasets.spec import loader_names
    from vlbias.errors import VlbiasError

    assert "demo" not in loader_names()
    with pytest.raises(VlbiasError, match="unknown dataset 'demo'"):
        load_dataset(f"demo:{tmp_path}")
