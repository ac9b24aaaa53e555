"""The loaders of SocialCounterfactuals, FACET and PATA on small releases in each release's own layout
(tests/benchmark_fixtures.py): what they read, how they map labels, and that every bad row is reported."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from tests.benchmark_fixtures import facet_person, make_facet, make_pata, make_socialcounterfactuals
from vlbias.datasets import DatasetSpec, load_dataset
from vlbias.datasets.facet import parse_box, skin_tone_median
from vlbias.datasets.socialcounterfactuals import subject_of
from vlbias.errors import StimulusError


def _reasons(ds) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for item, reason in ds.report.as_frame().itertuples(index=False):
        out.setdefault(reason, []).append(item)
    return out


# ---------------------------------------------------------------------------------------------------- SocialCF
@pytest.fixture(scope="module")
def sc_release(tmp_path_factory):
    return make_socialcounterfactuals(
        tmp_path_factory.mktemp("sc") / "SocialCounterfactuals",
        no_bytes=(("race-gender_chef_0", "Asian", "man"),),
        bad_caption=(("race-gender_nurse_1", "White", "woman"),),
        extra_race="Martian",
    )


def test_socialcounterfactuals_reads_the_parquet_shards(sc_release):
    ds = load_dataset(f"socialcounterfactuals:{sc_release['root']}")
    t = ds.table
    # 5 race-gender sets x 12, 2 physical-gender x 10, 1 physical-race x 30; one row without bytes, one extra row
    assert len(t) == 60 + 20 + 30 - 1 + 1
    assert t.groupby("attribute_type").size().to_dict() == {
        "race-gender": 60,
        "physical-gender": 20,
        "physical-race": 30,
    }
    assert t["identity"].equals(t["counterfactual_set"])
    row = t[(t["counterfactual_set"] == "race-gender_chef_1") & (t["a1"] == "Middle Eastern") & (t["a2"] == "woman")]
    assert len(row) == 1
    r = row.iloc[0]
    assert (r["race"], r["race_label"], r["gender"], r["gender_label"]) == (
        "middle_eastern",
        "Middle Eastern",
        "female",
        "woman",
    )
    assert r["subject"] == "chef" and r["caption"] == "A photo of a Middle Eastern woman chef"
    # the embedded bytes were written once, under the release, and the key is that file's relative path
    assert Path(r["path"]).is_file() and r["key"] == Path(r["path"]).relative_to(sc_release["root"]).as_posix()
    phys = t[t["attribute_type"] == "physical-race"].iloc[0]
    assert phys["physical"] in ("obese", "old", "skinny", "tattooed", "young") and phys["gender"] is None
    # images are PNG bytes of the shard, unchanged
    shard_rows = [r for r in sc_release["rows"] if r["image"]["bytes"] is not None]
    assert sorted(Path(p).read_bytes() for p in t["path"]) == sorted(r["image"]["bytes"] for r in shard_rows)


def test_socialcounterfactuals_reports_every_bad_row(sc_release):
    ds = load_dataset(f"socialcounterfactuals:{sc_release['root']}")
    got = _reasons(ds)
    assert len(got["metadata_without_images"]) == 1 and "race-gender_chef_0" in got["metadata_without_images"][0]
    assert got["unknown_labels"] == ["race=Martian (1 row)"]
    assert len(got["malformed"]) == 1 and "does not contain a2 'woman'" in got["malformed"][0]
    assert any("race-gender_chef_0 (11)" in n and "race-gender_chef_extra (1)" in n for n in got["notes"])
    bad = ds.table[ds.table["race_label"] == "Martian"]
    assert len(bad) == 1 and bad["race"].isna().all()  # kept, with no common label, and reported


def test_socialcounterfactuals_options_and_root(sc_release, tmp_path):
    root = sc_release["root"]
    assert DatasetSpec.parse(f"socialcounterfactuals:{root / 'data'}").root == str(root)
    only = load_dataset(f"socialcounterfactuals:{root}", attribute_types="physical-gender")
    assert set(only.table["attribute_type"]) == {"physical-gender"} and len(only.table) == 20
    out = tmp_path / "extracted"
    moved = load_dataset(f"socialcounterfactuals:{root}", images_dir=str(out), attribute_types="physical-race")
    assert all(Path(p).is_relative_to(out) for p in moved.table["path"])
    first = {p: os.stat(p).st_mtime_ns for p in moved.table["path"]}
    again = load_dataset(f"socialcounterfactuals:{root}", images_dir=str(out), attribute_types="physical-race")
    assert {p: os.stat(p).st_mtime_ns for p in again.table["path"]} == first  # written once, not rewritten
    with pytest.raises(StimulusError, match="attribute_types"):
        load_dataset(f"socialcounterfactuals:{root}", attribute_types="race")


def test_socialcounterfactuals_refuses_a_shard_without_its_columns(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "data").mkdir()
    pq.write_table(pa.table({"image": [b"x"], "caption": ["c"]}), tmp_path / "data" / "train-00000-of-00001.parquet")
    with pytest.raises(StimulusError, match="lacks column"):
        load_dataset(f"socialcounterfactuals:{tmp_path}")
    with pytest.raises(StimulusError, match="no SocialCounterfactuals shards"):
        load_dataset(f"socialcounterfactuals:{tmp_path / 'data' / 'train-00000-of-00001.parquet'}")


@pytest.mark.parametrize(
    "caption,a2,subject",
    [
        ("A photo of an obese Asian chef", "Asian", "chef"),
        ("A photo of a Black woman computer programmer.", "woman", "computer programmer"),
        ("A photo of a tattooed man man-servant", "man", "man-servant"),
        ("A photo of a chef", "woman", None),
    ],
)
def test_the_subject_follows_a2(caption, a2, subject):
    assert subject_of(caption, a2) == subject


# ---------------------------------------------------------------------------------------------------- FACET
def _facet_people() -> list[dict]:
    return [
        facet_person(1, "sa_1.jpg", "doctor", (2.4, 3.0, 10.0, 20.5), gender="masc", skin={2: 2, 3: 1}, age="young",
                     hair_color="black", hairtype="straight"),
        facet_person(2, "sa_1.jpg", "disk_jockey", (20, 1, 8, 8), gender="fem", skin={7: 1, 9: 2}, age="older",
                     class2="singer"),
        facet_person(3, "sa_2.jpg", "nurse", (0, 0, 30, 40), gender="non_binary", skin={3: 1, 4: 1}, age="middle"),
        facet_person(4, "sa_missing.jpg", "nurse", (0, 0, 5, 5), gender="fem"),
        facet_person(5, "sa_2.jpg", "astronautz", (0, 0, 5, 5)),
        facet_person(6, "sa_2.jpg", "nurse", (0, 0, -1, 5)),
        facet_person(7, "sa_2.jpg", "guard", (1, 1, 2, 2), gender="masc"),
    ]  # fmt: skip


def test_facet_one_row_per_person_with_its_box(tmp_path):
    people = _facet_people()
    people[1]["gender_presentation_masc"] = 1  # a tie between masc and fem: no value, and a note
    make_facet(tmp_path / "FACET", people, skip_images=("sa_missing.jpg",), images={"sa_extra.jpg": (10, 10)})
    ds = load_dataset(f"facet:{tmp_path / 'FACET'}")
    t = ds.table.set_index("identity")
    assert list(t.index) == ["1", "2", "3", "7"]
    assert t.loc["1", "crop"] == (2, 3, 13, 24)  # floor(x), floor(y), ceil(x + w), ceil(y + h)
    assert t.loc["1", "key"] == "imgs_1/sa_1.jpg@crop=2,3,13,24" and t.loc["3", "key"].startswith("imgs_2/sa_2.jpg@")
    assert t.loc["2", "person_class"] == "disk jockey" and t.loc["2", "person_class2"] == "singer"
    assert (t.loc["1", "gender"], t.loc["1", "gender_presentation"], t.loc["1", "age_group"]) == (
        "male",
        "masc",
        "young",
    )
    assert t.loc["2", "gender_presentation"] is None and t.loc["2", "gender"] is None
    assert t.loc["3", "gender_presentation"] == "non_binary" and t.loc["3", "gender"] is None
    # skin tone: the lower median of every vote, and its Monk bucket
    assert [int(t.loc[i, "skin_tone"]) for i in ("1", "2", "3")] == [2, 9, 3]
    assert list(t.loc[["1", "2", "3"], "skin_tone_group"]) == ["lighter", "darker", "lighter"]
    assert t.loc["2", "skin_tone_votes"] == "7:1,9:2"
    assert (t.loc["1", "hair_color"], t.loc["1", "hair_type"]) == ("black", "straight")
    got = _reasons(ds)
    assert got["images_without_metadata"] == ["imgs_2/sa_extra.jpg"]
    assert got["metadata_without_images"] == ["sa_missing.jpg (person 4)"]
    assert got["unknown_labels"] == ["class1=astronautz (1 row)"]
    assert len(got["malformed"]) == 1 and "(person 6)" in got["malformed"][0]
    assert "1 people with tied votes for gender_presentation: no gender_presentation value" in got["notes"]


def test_facet_options(tmp_path):
    make_facet(tmp_path / "FACET", _facet_people(), skip_images=("sa_missing.jpg",))
    assert set(load_dataset(f"facet:{tmp_path / 'FACET'}", classes="nurse,guard").table["identity"]) == {"3", "7"}
    small = load_dataset(f"facet:{tmp_path / 'FACET'}", min_box=5)
    assert "7" not in set(small.table["identity"]) and any("min_box" in n for n in small.report.notes)
    with pytest.raises(StimulusError, match="unknown FACET class"):
        load_dataset(f"facet:{tmp_path / 'FACET'}", classes="pilot")
    assert DatasetSpec.parse(f"facet:{tmp_path / 'FACET' / 'annotations'}").root == str(tmp_path / "FACET")


@pytest.mark.parametrize(
    "text,box",
    [
        ('{"x": 1.5, "y": 2, "width": 3.2, "height": 4}', (1, 2, 5, 6)),
        ("{'x': 0, 'y': 0, 'width': 10, 'height': 10}", (0, 0, 10, 10)),
        ('{"x": 1, "y": 2}', None),
        ('{"x": 1, "y": 2, "width": 0, "height": 3}', None),
        ("not a box", None),
    ],
)
def test_facet_boxes(text, box):
    assert parse_box(text) == box


def test_skin_tone_median_counts_every_vote():
    votes = np.zeros((4, 10))
    votes[0, [1, 2]] = [2, 1]  # 2, 2, 3 -> 2
    votes[1, [2, 3]] = [1, 1]  # 3, 4 -> lower median 3
    votes[3, [0, 9]] = [1, 2]  # 1, 10, 10 -> 10
    assert skin_tone_median(votes) == [2, 3, None, 10]


# ---------------------------------------------------------------------------------------------------- PATA
PATA_LINES = [
    "office_black_male_young", "office_caucasian_female_old", "office_eastasian_male_old", "office_hispanic_female_young",
    "gun_range_indian_male_young", "gun_range_black_female_young", "gun_range_caucasian_male_young",
    "bench_martian_female_young", "office_black_male_ancient", "broken line without bar",
]  # fmt: skip


def test_pata_reads_the_list_the_captions_and_the_downloaded_images(tmp_path):
    make_pata(tmp_path / "pata", PATA_LINES, missing=(1,))
    ds = load_dataset(f"pata:{tmp_path / 'pata'}")
    t = ds.table.set_index("identity")
    assert list(t.index) == ["line-0", "line-2", "line-3", "line-4", "line-5", "line-6", "line-7", "line-8"]
    assert t.loc["line-4", "scene"] == "gun_range" and t.loc["line-4", "race"] == "indian"
    assert [t.loc[f"line-{i}", "race"] for i in (0, 2, 3, 6)] == ["black", "east_asian", "latino_hispanic", "white"]
    assert (t.loc["line-2", "race_label"], t.loc["line-2", "gender"], t.loc["line-2", "age_group"]) == (
        "eastasian",
        "male",
        "old",
    )
    assert t.loc["line-0", "url"] == "https://example.org/0.jpg" and t.loc["line-0", "key"] == "images/0.jpg"
    got = _reasons(ds)
    assert got["metadata_without_images"] == ["line 1: office_caucasian_female_old (https://example.org/1.jpg)"]
    assert got["unknown_labels"] == ["race=martian (1 row)", "age=ancient (1 row)"]
    assert got["malformed"] == ["pata_fairness.files.lst line 9: 'broken line without bar|https://example.org/9.jpg'"]
    assert got["images_without_metadata"] == ["images/9.jpg"]  # the malformed line's image: named by no line
    assert "scene bench: images but no captions in pata_fairness.captions.json" in got["notes"]
    caps = ds.captions
    office = caps[caps["scene"] == "office"]
    assert len(office) == 7 and set(office["attribute"]) == {"race", "gender", "age"}
    assert office[(office["attribute"] == "race") & (office["polarity"] == "negative")]["caption"].tolist() == [
        "photo of a servant"
    ]
    assert len(caps[(caps["scene"] == "gun_range") & (caps["attribute"] == "age")]) == 0


def test_pata_images_named_by_label_and_line(tmp_path):
    make_pata(tmp_path / "pata", PATA_LINES[:3], name="{label}_{i}.png")
    ds = load_dataset(f"pata:{tmp_path / 'pata'}")
    assert list(ds.table["key"]) == [f"images/{label}_{i}.png" for i, label in enumerate(PATA_LINES[:3])]


def test_pata_without_images_says_how_to_get_them(tmp_path):
    (tmp_path / "pata").mkdir()
    (tmp_path / "pata" / "pata_fairness.files.lst").write_text("office_black_male_young|http://x/1.jpg\n")
    with pytest.raises(StimulusError, match="download each line's image"):
        load_dataset(f"pata:{tmp_path / 'pata'}")
    with pytest.raises(StimulusError, match="holds no pata_fairness.files.lst"):
        load_dataset(f"pata:{tmp_path}")


def test_a_release_s_captions_are_part_of_its_fingerprint(tmp_path):
    make_pata(tmp_path / "pata", PATA_LINES[:3])
    before = load_dataset(f"pata:{tmp_path / 'pata'}").fingerprint()
    path = tmp_path / "pata" / "pata_fairness.captions.json"
    caps = json.loads(path.read_text())
    caps[0]["neg"]["races"] = ["photo of a thief"]
    path.write_text(json.dumps(caps))
    assert load_dataset(f"pata:{tmp_path / 'pata'}").fingerprint() != before
