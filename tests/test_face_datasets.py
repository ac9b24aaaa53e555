"""Face-dataset loaders on fixture folders in each dataset's real layout, including their malformed cases."""

from __future__ import annotations

import math

import openpyxl
import pytest

from tests.faces_fixtures import UTK_IRREGULAR, UTK_MALFORMED, make_cfd, make_fairface, make_manifest, make_utkface
from vlbias.datasets import dataset_names, load_dataset
from vlbias.datasets._common import age_bin, common_gender, common_race
from vlbias.datasets.base import REQUIRED_COLUMNS
from vlbias.errors import VlbiasError


@pytest.fixture(scope="module")
def cfd(tmp_path_factory):
    return make_cfd(tmp_path_factory.mktemp("cfd"))


@pytest.fixture(scope="module")
def fairface(tmp_path_factory):
    return make_fairface(tmp_path_factory.mktemp("ff"))


def test_loaders_are_discovered():
    assert {"cfd", "fairface", "utkface", "manifest"} <= set(dataset_names())


# ------------------------------------------------------------------------------------------------------------ CFD
def test_cfd_default_is_one_neutral_image_per_us_model(cfd):
    ds = load_dataset(f"cfd:{cfd['root']}")
    t = ds.table
    assert list(t.columns[: len(REQUIRED_COLUMNS)]) == list(REQUIRED_COLUMNS)
    assert sorted(t["identity"]) == sorted(cfd["us_models"])  # 16 models, one row each
    assert set(t["expression"]) == {"N"} and set(t["subset"]) == {"CFD"}
    af = t[t["identity"] == "AF-200"].iloc[0]
    assert af["key"] == "Images/CFD/AF-200/CFD-AF-200-101-N.jpg"  # the first of its two neutral images
    assert (af["race"], af["race_label"], af["gender"], af["age"], af["age_group"]) == (
        "asian",
        "A",
        "female",
        33.0,
        "30-39",
    )
    assert af["Threatening"] == pytest.approx(1 + (200 * 37 % 60) / 10)
    assert t["Trustworthy"].dtype.kind == "f"
    assert ds.version == "CFD 3.0"
    rep = ds.report
    assert rep.malformed == ["Images/CFD/AF-200/CFD-AF-200-228-N (1).jpg"]
    assert rep.metadata_without_images == ["CFD WM-299"]
    assert rep.images_without_metadata == ["Images/CFD/WM-215/CFD-WM-215-132-N.jpg"]
    assert any("one_per_person" in n and "CFD-AF-200-900-N.jpg" in n for n in rep.notes)
    wm = t[t["identity"] == "WM-215"].iloc[0]  # no norming row: race and gender from the file name
    assert (wm["race"], wm["race_label"], wm["gender"]) == ("white", "W", "male") and math.isnan(wm["age"])
    assert math.isnan(t.loc[t["identity"] == "BF-205", "age"].iloc[0])  # blank AgeSelf
    assert t.loc[t["identity"] == "BF-205", "age_group"].iloc[0] == ""


def test_cfd_expressions_subsets_and_india_raters(cfd):
    ds = load_dataset(f"cfd:{cfd['root']}", expressions="all")
    assert len(ds.table) == 8 * 3 + 8 * 1
    assert ds.table.groupby("expression").size().to_dict() == {"A": 8, "HC": 8, "N": 16}
    assert len(load_dataset(f"cfd:{cfd['root']}", one_per_person=False).table) == 17

    ds = load_dataset(f"cfd:{cfd['root']}", subsets=["CFD-MR", "CFD-INDIA"])
    t = ds.table.set_index("identity")
    assert set(t.index) == {"MF-300", "MM-301", "IF-601", "IM-602"}
    assert t.loc["MF-300", "race"] == "multiracial" and t.loc["MF-300", "race_label"] == "Asian-White"
    assert t.loc["IF-601", "race"] == "indian" and t.loc["IF-601", "Model"] == "IF601-519"
    assert t.loc["IF-601", "norming_sheet"] == "CFD-I U.S. Norming Data"
    assert t.loc["IF-601", "Threatening"] != 6.5
    india = load_dataset(f"cfd:{cfd['root']}", subsets="CFD-INDIA", norming="india").table
    assert set(india["Threatening"]) == {6.5} and set(india["norming_sheet"]) == {"CFD-I INDIA Norming Data"}
    assert len(load_dataset(f"cfd:{cfd['root']}", subsets="all").table) == 16 + 2 + 2


def test_cfd_root_can_be_the_parent_or_images_folder(cfd):
    keys = load_dataset(f"cfd:{cfd['root']}").table["key"].tolist()
    assert load_dataset(f"cfd:{cfd['root'].parent}").table["key"].tolist() == keys
    assert load_dataset(f"cfd:{cfd['root'] / 'Images'}").table["key"].tolist() == keys


def test_cfd_without_workbook_uses_file_names(tmp_path):
    info = make_cfd(tmp_path, workbook=False)
    ds = load_dataset(f"cfd:{info['root']}")
    assert len(ds.table) == 16 and ds.table["age"].isna().all()
    assert ds.table.set_index("identity").loc["LM-210", ["race", "gender"]].tolist() == ["latino_hispanic", "male"]
    assert any("no 'CFD 3.0 Norming Data and Codebook.xlsx'" in n for n in ds.report.notes)


def test_cfd_bad_inputs(cfd, tmp_path):
    with pytest.raises(VlbiasError, match="CFD folder not found"):
        load_dataset(f"cfd:{tmp_path / 'nope'}")
    with pytest.raises(VlbiasError, match="holds no CFD images"):
        load_dataset(f"cfd:{tmp_path}")
    with pytest.raises(VlbiasError, match="unknown CFD expression 'SAD'"):
        load_dataset(f"cfd:{cfd['root']}", expressions="N,SAD")
    with pytest.raises(VlbiasError, match="unknown CFD set"):
        load_dataset(f"cfd:{cfd['root']}", subsets="CFD-XX")
    with pytest.raises(VlbiasError, match="has no option 'expression'; did you mean expressions"):
        load_dataset(f"cfd:{cfd['root']}", expression="N")
    bad = tmp_path / "bad.xlsx"
    wb = openpyxl.Workbook()
    wb.active.title = "Sheet1"
    wb.save(bad)
    with pytest.raises(VlbiasError, match="has no sheet 'CFD U.S. Norming Data'"):
        load_dataset(f"cfd:{cfd['root']}", workbook=bad)
    (tmp_path / "notxlsx.xlsx").write_text("hello")
    with pytest.raises(VlbiasError, match="cannot read the CFD workbook"):
        load_dataset(f"cfd:{cfd['root']}", workbook=tmp_path / "notxlsx.xlsx")
    wb = openpyxl.Workbook()
    wb.active.title = "CFD U.S. Norming Data"
    wb.active.cell(8, 1, "Something")
    wb.save(bad)
    with pytest.raises(VlbiasError, match="no header row with 'Model'"):
        load_dataset(f"cfd:{cfd['root']}", workbook=bad)


# ------------------------------------------------------------------------------------------------------- FairFace
def test_fairface_val_margin_025(fairface):
    ds = load_dataset(f"fairface:{fairface['root']}")
    t = ds.table
    assert len(t) == fairface["n_val"] + 1  # the 14 rows plus the unknown-race row; the missing image is out
    assert t["key"].iloc[0] == "fairface-img-margin025-trainval/val/1.jpg" and t["identity"].iloc[0] == "val/1"
    first = t.iloc[0]
    assert (first["race"], first["race_label"], first["gender"], first["age_group"]) == (
        "white",
        "White",
        "female",
        "3-9",
    )
    assert t.set_index("identity").loc["val/5", "race"] == "southeast_asian"
    assert t["age"].isna().all() and set(t["split"]) == {"val"} and set(t["margin"]) == {"0.25"}
    assert t.set_index("identity").loc["val/15", "race"] is None
    rep = ds.report
    assert rep.unknown_labels == ["race=Martian (1 row)"]
    assert rep.metadata_without_images == ["val/16.jpg"]
    assert rep.images_without_metadata == ["val/24.jpg"]


def test_fairface_margin_split_and_service_test(fairface):
    t = load_dataset(f"fairface:{fairface['root']}", margin="1.25", split="all").table
    assert len(t) == fairface["n_val"] + 1 + fairface["n_train"]
    assert t["key"].str.startswith("fairface-img-margin125-trainval/").all()
    assert set(t["identity"]) >= {"train/1", "val/1"}  # the same stem in two splits: two identities
    st = load_dataset(f"fairface:{fairface['root']}", service_test=True).table
    assert set(st["identity"]) == {"val/3", "val/6", "val/9", "val/12"}


def test_fairface_folder_names_of_birhane_et_al(tmp_path):
    """Birhane et al.'s code (evaluate-clip-models.py) reads FairFace images from <root>/fairface_margin125/."""
    info = make_fairface(tmp_path / "ff", margins=("125",), folder="fairface_margin{}")
    ds = load_dataset(f"fairface:{info['root']}", margin="1.25")
    t = ds.table
    assert len(t) == info["n_val"] + 1 and t["key"].iloc[0] == "fairface_margin125/val/1.jpg"
    assert ds.report.notes == [] and set(t["margin"]) == {"1.25"}
    with pytest.raises(VlbiasError, match="has the margin 1.25 images \\(fairface_margin125/\\)"):
        load_dataset(f"fairface:{info['root']}")
    other = make_fairface(tmp_path / "ff025", margins=("025",), folder="fairface_margin{}")
    assert load_dataset(f"fairface:{other['root']}").table["key"].str.startswith("fairface_margin025/val/").all()


def test_fairface_bad_inputs(fairface, tmp_path):
    only025 = make_fairface(tmp_path / "a", margins=("025",))
    with pytest.raises(VlbiasError, match=r"has the margin 0.25 images .* not the margin 1.25"):
        load_dataset(f"fairface:{only025['root']}", margin="1.25")
    with pytest.raises(VlbiasError, match="unknown FairFace margin"):
        load_dataset(f"fairface:{fairface['root']}", margin="0.5")
    with pytest.raises(VlbiasError, match="option split='test': must be one of val, train, all"):
        load_dataset(f"fairface:{fairface['root']}", split="test")
    (only025["root"] / "fairface_label_val.csv").write_text("file,age,gender\nval/1.jpg,3-9,Male\n")
    with pytest.raises(VlbiasError, match="lacks column.*race, service_test"):
        load_dataset(f"fairface:{only025['root']}")
    (only025["root"] / "fairface_label_val.csv").unlink()
    with pytest.raises(VlbiasError, match="fairface_label_val.csv not found"):
        load_dataset(f"fairface:{only025['root']}")
    with pytest.raises(VlbiasError, match="no FairFace images"):
        load_dataset(f"fairface:{tmp_path}")


# -------------------------------------------------------------------------------------------------------- UTKFace
def test_utkface_names_and_malformed(tmp_path):
    info = make_utkface(tmp_path)
    ds = load_dataset(f"utkface:{info['root']}")
    t = ds.table.set_index("key")
    assert len(t) == len(info["regular"]) + len(UTK_IRREGULAR)
    assert sorted(ds.report.malformed) == sorted(UTK_MALFORMED + ["1_3_0_20161219140530307.jpg.chip.jpg"])
    assert any(all(name in n for name in UTK_IRREGULAR) for n in ds.report.notes)
    row = t.loc["24_0_1_20170116220224657 .jpg.chip.jpg"]
    assert (row["age"], row["gender"], row["race"], row["identity"]) == (
        24.0,
        "male",
        "black",
        "24_0_1_20170116220224657",
    )
    for name in info["regular"]:
        age, gender, race = name.split("_")[:3]
        r = t.loc[name]
        assert r["age"] == int(age) and r["age_group"] == age_bin(int(age))
        assert r["gender"] == ("male", "female")[int(gender)]
        assert r["race"] == ("white", "black", "asian", "indian", "other")[int(race)]
    assert t.loc[info["regular"][-1], "race_label"] == "Others"


def test_utkface_folder_of_only_malformed_names(tmp_path):
    from tests.faces_fixtures import write_image

    write_image(tmp_path / "u" / UTK_MALFORMED[0], 1)
    with pytest.raises(VlbiasError, match=r"no UTKFace images .*1 image\(s\) with names that do not parse"):
        load_dataset(f"utkface:{tmp_path / 'u'}")


# ------------------------------------------------------------------------------------------------------- manifest
def test_manifest_columns_and_vocabulary(tmp_path):
    rows = [
        {"path": "a/1.jpg", "subject": "s1", "race": "Caucasian", "sex": "F", "age": "31", "lighting": "2"},
        {"path": "a/2.jpg", "subject": "s1", "race": "White", "sex": "female", "age": "31", "lighting": "3"},
        {"path": "b/3.png", "subject": "s2", "race": "African American", "sex": "M", "age": "unknown", "lighting": "1"},
        {"path": "b/4.jpg", "subject": "", "race": "Martian", "sex": "x", "age": "", "lighting": "1"},
        {"path": "b/5.jpg", "subject": "s5", "race": "Black", "sex": "M", "age": "50", "lighting": "1"},
    ]
    csv_path = make_manifest(tmp_path / "m", rows, skip=("b/5.jpg",))
    ds = load_dataset(f"manifest:{csv_path}")
    t = ds.table
    assert t["key"].tolist() == ["a/1.jpg", "a/2.jpg", "b/3.png", "b/4.jpg"]
    assert t["identity"].tolist() == ["s1", "s1", "s2", "b/4"]
    assert t["race"].tolist() == ["white", "white", "black", None]
    assert t["race_label"].tolist() == ["Caucasian", "White", "African American", "Martian"]
    assert t["gender"].tolist() == ["female", "female", "male", None]
    assert t["age"].iloc[0] == 31 and math.isnan(t["age"].iloc[2]) and t["age_group"].iloc[0] == "30-39"
    assert t["lighting"].tolist() == [2, 3, 1, 1]
    rep = ds.report
    assert rep.metadata_without_images == ["b/5.jpg"]
    assert sorted(rep.unknown_labels) == [
        "age=unknown (1 row; not a number)",
        "gender=x (1 row)",
        "race=Martian (1 row)",
    ]


def test_manifest_explicit_columns_and_errors(tmp_path):
    rows = [{"image": "1.jpg", "who": "p", "ethn": "Indian", "sex": "m"}]
    csv_path = make_manifest(tmp_path, rows)
    t = load_dataset(f"manifest:{csv_path}", identity="who", race="ethn").table
    assert (t["identity"].iloc[0], t["race"].iloc[0], t["gender"].iloc[0]) == ("p", "indian", "male")
    with pytest.raises(VlbiasError, match="has no column 'nope' \\(for race\\)"):
        load_dataset(f"manifest:{csv_path}", race="nope")
    (tmp_path / "nopath.csv").write_text("name,race\nx,white\n")
    with pytest.raises(VlbiasError, match="no image path column"):
        load_dataset(f"manifest:{tmp_path / 'nopath.csv'}")
    with pytest.raises(VlbiasError, match="manifest not found"):
        load_dataset(f"manifest:{tmp_path / 'absent.csv'}")
    (tmp_path / "gone.csv").write_text("path\nmissing.jpg\n")
    with pytest.raises(VlbiasError, match="none of the images listed"):
        load_dataset(f"manifest:{tmp_path / 'gone.csv'}")


def test_fingerprint_is_the_same_anywhere_and_changes_with_the_content(cfd, tmp_path):
    import shutil

    first = load_dataset(f"cfd:{cfd['root']}")
    copy = tmp_path / "elsewhere"
    shutil.copytree(cfd["root"], copy)
    moved = load_dataset(f"cfd:{copy}")
    assert moved.fingerprint() == first.fingerprint()  # absolute paths are not part of it
    assert len(first.fingerprint()) == 64
    # a relabelled person, or one image fewer, is a different stimulus set
    relabelled = load_dataset(f"cfd:{copy}")
    relabelled.table.loc[0, "gender"] = "male" if relabelled.table.loc[0, "gender"] == "female" else "female"
    assert relabelled.fingerprint() != first.fingerprint()
    fewer = load_dataset(f"cfd:{copy}")
    fewer.table = fewer.table.iloc[1:]
    assert fewer.fingerprint() != first.fingerprint()


def test_dataset_spec_errors():
    with pytest.raises(VlbiasError, match="must be NAME:PATH"):
        load_dataset("cfd")
    with pytest.raises(VlbiasError, match="unknown dataset 'celeba'"):
        load_dataset("celeba:/x")


def test_vocabulary_helpers():
    assert [common_race(x) for x in ("East Asian", "Latino_Hispanic", "middle-eastern", "Others", "x", None)] == [
        "east_asian",
        "latino_hispanic",
        "middle_eastern",
        "other",
        None,
        None,
    ]
    assert [common_gender(x) for x in ("Male", "F", "woman", "", "nb")] == ["male", "female", "female", None, None]
    assert [age_bin(a) for a in (0, 2, 3, 9.5, 10, 69, 70, 116)] == [
        "0-2",
        "0-2",
        "3-9",
        "3-9",
        "10-19",
        "60-69",
        "more than 70",
        "more than 70",
    ]
    assert age_bin(float("nan")) == ""
