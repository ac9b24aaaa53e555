"""The CausalFace loader on a tree in the release's naming: rows, crops, variant choice, reports, bad input."""

from __future__ import annotations

import pytest

from tests.perception_fixtures import face_image, file_name, write_causalface
from vlbias.datasets import load_dataset
from vlbias.datasets.base import REQUIRED_COLUMNS
from vlbias.datasets.causalface import LEVELS
from vlbias.errors import VlbiasError

SMALL = {"age": (0.8, 4.4), "lighting": (-1, 6), "pose": (-3.0, -1.5, 0.0, 1.5, 3.0), "smiling": (-2.5, 0, 4)}


@pytest.fixture(scope="module")
def small_tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("cf_small")
    return write_causalface(root, seeds=(7, 11), levels=SMALL, rm_bg=True)


def test_release_file_names_are_the_real_ones():
    assert file_name("white", "female", "age", 2.3) == "white_female_age_2.3_o2.png"
    assert file_name("black", "male", "lighting", -1) == "black_male_l_-1.png"
    assert file_name("asian", "female", "pose", -3.0) == "asian_female_y_-3.0.png"
    assert file_name("asian", "female", "pose", 0.0) == "asian_female_y_0.0.png"
    assert file_name("white", "male", "smiling", 0) == "white_male_smiling_0_o2_corrected.png"
    assert file_name("white", "male", "smiling", -0.5) == "white_male_smiling_-0.5_o2_corrected.png"


def test_loads_every_image_once_with_the_common_columns(small_tree):
    ds = load_dataset(f"causalface:{small_tree}")
    t = ds.table
    assert ds.name == "causalface" and ds.root == small_tree
    assert set(REQUIRED_COLUMNS) <= set(t.columns)
    for col in ("face_seed", "attribute", "level", "variant", "o2", "corrected", "rm_bg", "crop"):
        assert col in t.columns
    assert "seed" not in t.columns  # the generator's seed of a face is face_seed: seed is a run's random seed
    expected = {a: 2 * 6 * len(lv) for a, lv in SMALL.items()}
    assert t.groupby("attribute").size().to_dict() == expected
    assert t["key"].is_unique and not t["rm_bg"].any()
    assert set(t["identity"]) == {"seed_7", "seed_11"} and set(t["face_seed"]) == {7, 11}
    assert set(t["race"]) == {"asian", "black", "white"} and set(t["gender"]) == {"female", "male"}
    assert t["age"].isna().all()
    row = t[t["key"] == "final_picked_age/seed_7/white_female_age_0.8_o2.png"].iloc[0]
    assert (row.attribute, row.level, row.race, row.gender, row.identity) == ("age", 0.8, "white", "female", "seed_7")
    assert row.path == str(small_tree / row.key)
    lighting = t[t["attribute"] == "lighting"]
    assert sorted(lighting["level"].unique()) == [-1.0, 6.0]


def test_crop_boxes_are_the_studys(small_tree):
    t = load_dataset(f"causalface:{small_tree}").table
    crops = {(a, lv): c for a, lv, c in zip(t["attribute"], t["level"], t["crop"])}
    assert crops[("age", 0.8)] == (40, 0, 472, 432)
    assert crops[("lighting", -1.0)] == (40, 0, 472, 432)
    assert crops[("smiling", 4.0)] == (40, 0, 472, 432)
    assert crops[("pose", -3.0)] == crops[("pose", -1.5)] == (0, 0, 432, 432)
    assert crops[("pose", 0.0)] == (40, 0, 472, 432)
    assert crops[("pose", 1.5)] == crops[("pose", 3.0)] == (80, 0, 512, 432)
    whole = load_dataset(f"causalface:{small_tree}", crop="false").table
    assert whole["crop"].isna().all()


def test_smiling_prefers_the_brightness_corrected_files(small_tree):
    ds = load_dataset(f"causalface:{small_tree}")
    smiling = ds.table[ds.table["attribute"] == "smiling"]
    assert smiling["corrected"].all() and smiling["key"].str.endswith("_o2_corrected.png").all()
    assert any("uncorrected smiling files replaced" in n for n in ds.report.notes)
    raw = load_dataset(f"causalface:{small_tree}", smiling_corrected=False).table
    raw_smiling = raw[raw["attribute"] == "smiling"]
    assert len(raw_smiling) == len(smiling) and not raw_smiling["corrected"].any()
    assert raw_smiling["key"].str.endswith("_o2.png").all()


def test_smiling_corrected_only_leaves_out_an_image_without_a_corrected_file(tmp_path):
    """The study's loader reads the corrected smiling files alone and skips a missing one (no fallback)."""
    root = write_causalface(tmp_path, seeds=(7,), levels={"smiling": (-2.5, 0, 4)})
    (root / "final_picked_smiling" / "seed_7" / "white_male_smiling_0_o2_corrected.png").unlink()
    prefer = load_dataset(f"causalface:{root}").table
    assert "final_picked_smiling/seed_7/white_male_smiling_0_o2.png" in set(prefer["key"]) and len(prefer) == 18
    only = load_dataset(f"causalface:{root}", smiling_corrected="only")
    assert len(only.table) == 17 and only.table["corrected"].all()
    assert "18 uncorrected smiling file(s) left out (smiling_corrected=only)" in only.report.notes


def test_background_removed_variants_on_request(small_tree):
    ds = load_dataset(f"causalface:{small_tree}", background="removed")
    t = ds.table
    assert t["rm_bg"].all() and len(t) == 2 * 6 * sum(len(v) for v in SMALL.values())
    assert "final_picked_lighting/seed_7/white_female_lighting_6_o2_rm_bg.png" in set(t["key"])
    assert any("original-background" in n for n in ds.report.notes)
    default = load_dataset(f"causalface:{small_tree}")
    assert any("background=removed" in n for n in default.report.notes)


def test_one_attribute_folder_and_the_attributes_option(small_tree):
    one = load_dataset(f"causalface:{small_tree / 'final_picked_pose'}")
    assert set(one.table["attribute"]) == {"pose"} and one.root == small_tree
    assert one.table["key"].str.startswith("final_picked_pose/").all()
    two = load_dataset(f"causalface:{small_tree}", attributes="age,smiling")
    assert set(two.table["attribute"]) == {"age", "smiling"}


def test_what_does_not_fit_is_reported_not_dropped_silently(tmp_path):
    root = write_causalface(tmp_path / "cf", seeds=(3,), levels={"age": (0.8, 2.3)}, uncorrected_smiling=False)
    folder = root / "final_picked_age" / "seed_3"
    face_image("x").save(folder / "purple_female_age_0.8_o2.png")  # race outside the release
    face_image("y").save(folder / "white_female_age_5.0_o2.png")  # a level the release lacks
    (folder / "notes.txt").write_text("hello")
    face_image("z").save(folder / "white_female_l_-1.png")  # a lighting file in the age folder
    (root / "final_picked_age" / "misc").mkdir()
    (root / "final_picked_brightness").mkdir()
    small = face_image("s", size=256)
    small.save(folder / "asian_male_age_0.8_o2.png")  # a resized copy
    ds = load_dataset(f"causalface:{root}")
    r = ds.report
    assert "race=purple (1 rows)" in r.unknown_labels
    assert any(u.startswith("age level=5 ") for u in r.unknown_labels)
    assert any("notes.txt" in m for m in r.malformed) and any("white_female_l_-1.png" in m for m in r.malformed)
    assert any("misc" in m for m in r.malformed)
    assert any("final_picked_brightness" in n for n in r.notes)
    assert any("not 512x512" in n for n in r.notes)
    t = ds.table
    assert "final_picked_age/seed_3/white_female_age_5.0_o2.png" in set(t["key"])  # kept, and reported
    resized = t[t["key"] == "final_picked_age/seed_3/asian_male_age_0.8_o2.png"].iloc[0]
    assert resized.crop == (20, 0, 236, 216)  # the study's box scaled to 256 x 256
    assert len(r.as_frame()) == len(r.unknown_labels) + len(r.malformed) + len(r.notes)


def test_incomplete_seeds_are_noted(tmp_path):
    root = write_causalface(tmp_path / "cf", seeds=(3, 4), levels={"lighting": LEVELS["lighting"]})
    (root / "final_picked_lighting" / "seed_4" / "white_male_l_2.png").unlink()
    ds = load_dataset(f"causalface:{root}")
    assert any("1 of 2 seeds lacks 1 of the 48" in n for n in ds.report.notes)


@pytest.mark.parametrize(
    ("make", "options", "message"),
    [
        (lambda p: p / "nowhere", {}, "CausalFace folder not found"),
        (lambda p: (p / "empty").mkdir() or p / "empty", {}, "no CausalFace images under"),
        (lambda p: (p / "f.txt").write_text("x") and p / "f.txt", {}, "is not a folder"),
        (lambda p: p, {"background": "green"}, "background='green': must be original or removed"),
        (lambda p: p, {"smiling_corrected": "maybe"}, "smiling_corrected='maybe': must be true or false or only"),
        (lambda p: p, {"attributes": "hair"}, "attributes='hair': 'hair' is not one of age, lighting, pose, smiling"),
    ],
)
def test_bad_input_is_one_line(tmp_path, make, options, message):
    write_causalface(tmp_path, seeds=(1,), levels={"age": (0.8,)})
    with pytest.raises(VlbiasError) as e:
        load_dataset(f"causalface:{make(tmp_path)}", **options)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_only_malformed_files_is_an_error(tmp_path):
    folder = tmp_path / "final_picked_age" / "seed_1"
    folder.mkdir(parents=True)
    (folder / "readme.md").write_text("x")
    with pytest.raises(VlbiasError, match=r"no usable CausalFace images .* \(1 malformed\)"):
        load_dataset(f"causalface:{tmp_path}")
