"""FACET as a zero-shot protocol (``vlbias zeroshot -d facet:DIR -p facet``): each person classified from their own
box into the 52 classes; recall per class and group, and FACET's disparity recall(l1, C) - recall(l2, C), checked
on a FACET folder in the release's layout against planted predictions and an independent computation written from
the paper's definition."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.benchmark_fixtures import facet_person, make_facet
from tests.helpers import tiny_hf_clip, write_parquet_vectors
from vlbias.audits.registry import get_audit
from vlbias.cli import main
from vlbias.datasets import load_dataset
from vlbias.datasets.facet import CLASSES
from vlbias.models import load_model
from vlbias.stimuli.zeroshot import load_protocol

AUDIT = get_audit("zeroshot")
#: planted: (class, gender presentation, skin tone voted by three annotators) -> people, of them classified correctly
PLAN = {
    ("doctor", "masc", 2): (12, 9),
    ("doctor", "fem", 8): (12, 3),
    ("nurse", "masc", 2): (10, 2),
    ("nurse", "fem", 8): (10, 8),
    ("guard", "masc", 5): (4, 4),
    ("guard", "fem", 5): (3, 0),
}


def _prompt_vectors() -> dict[str, np.ndarray]:
    task = load_protocol("facet").tasks[0]
    prompts = task.prompts()
    eye = np.eye(64)
    return {prompts[c][0]: eye[i] for i, c in enumerate(task.classes)}


@pytest.fixture(scope="module")
def facet(tmp_path_factory):
    """People on shared images (three per image, side by side); each person's vector points at the class the plan
    says they are classified as (their own class, or 'waiter')."""
    root = tmp_path_factory.mktemp("facet") / "FACET"
    people, wrong = [], []
    pid = 0
    for (cls, gender, skin), (n, n_right) in PLAN.items():
        for j in range(n):
            pid += 1
            img, slot = divmod(pid - 1, 3)
            people.append(
                facet_person(
                    pid,
                    f"sa_{img}.jpg",
                    cls.replace(" ", "_"),
                    (slot * 20, 0, 18, 40),
                    gender=gender,
                    skin={skin: 3},
                    age="young" if j % 2 else "older",
                )  # fmt: skip
            )
            if j >= n_right:
                wrong.append(str(pid))
    make_facet(root, people, images={f"sa_{i}.jpg": (64, 48) for i in range((pid + 2) // 3)})
    ds = load_dataset(f"facet:{root}")
    prompts = _prompt_vectors()
    task = load_protocol("facet").tasks[0]
    by_class = dict(zip(task.classes, prompts.values()))
    rng = np.random.default_rng(0)
    keys, vecs = list(prompts), list(prompts.values())
    for key, ident, cls in zip(ds.table["key"], ds.table["identity"], ds.table["person_class"]):
        target = by_class["waiter"] if ident in wrong else by_class[cls]
        keys.append(key)
        vecs.append(target + rng.normal(scale=0.05, size=64))
    write_parquet_vectors(root.parent / "vectors.parquet", keys, np.array(vecs, dtype=np.float32))
    return {"root": root, "spec": f"vectors:{root.parent / 'vectors.parquet'}", "wrong": set(wrong), "table": ds.table}


def _run(facet, **options):
    return AUDIT.run(load_model(facet["spec"]), {"dataset": f"facet:{facet['root']}", "protocol": "facet", **options})


def test_every_person_is_classified_from_their_own_crop(facet):
    res = _run(facet, n_bootstrap=0)
    img = res.tables["images"]
    assert len(img) == sum(n for n, _ in PLAN.values())
    # three people share each image, and each got their own vector (the crop is part of the key)
    assert img.groupby(img["key"].str.split("@").str[0]).size().max() == 3
    predicted_wrong = set(img.loc[img["top1"] != img["person_class"], "identity"])
    assert predicted_wrong == facet["wrong"]
    assert img["crop"].str.fullmatch(r"\d+,0,\d+,40").all()


def test_recall_and_disparity_against_an_independent_computation(facet):
    res = _run(facet, n_bootstrap=300, seed=3)
    recall = res.tables["recall"]
    gp = recall[recall["grouping"] == "gender_presentation"].set_index(["class", "group"])
    # the plan, directly: recall = right / n
    for (cls, gender, _), (n, right) in PLAN.items():
        assert gp.loc[(cls, gender), "n_people"] == n
        assert gp.loc[(cls, gender), "recall_pct"] == pytest.approx(100 * right / n)
    # FACET's disparity, recomputed from the per-person predictions (argmax of cos over the 52 prompts)
    table = facet["table"].set_index("identity")
    vecs = pd.read_parquet(Path(facet["spec"][len("vectors:") :]))
    lookup = {k: np.asarray(v) for k, v in zip(vecs["key"], vecs["vector"])}
    prompts = np.stack(list(_prompt_vectors().values()))
    pred = {i: CLASSES[int(np.argmax(prompts @ lookup[table.loc[i, "key"]]))] for i in table.index}
    gaps = res.tables["recall_disparity"]
    skin = gaps[gaps["grouping"] == "skin_tone_group"]
    gender = gaps[gaps["grouping"] == "gender_presentation"].set_index("class")
    for cls in ("doctor", "nurse"):
        people = table[table["person_class"] == cls]
        rec = {
            g: np.mean([pred[i] == cls for i in people.index[people["gender_presentation"] == g]]) * 100
            for g in ("masc", "fem")
        }
        row = gender.loc[cls]
        assert (row["group_a"], row["group_b"], row["contrast"]) == ("masc", "fem", "named")
        assert row["disparity"] == pytest.approx(rec["masc"] - rec["fem"])
        assert row["disparity_low"] <= row["disparity"] <= row["disparity_high"]
    assert gender.loc["doctor", "disparity"] == pytest.approx(50.0) and gender.loc[
        "nurse", "disparity"
    ] == pytest.approx(-60.0)
    # guards: 4 and 3 people, below min_people (10): no contrast; skin tone: lighter vs darker only where both have 10
    assert "guard" not in gender.index
    assert set(zip(skin["group_a"], skin["group_b"])) == {("lighter", "darker")}
    assert set(skin["class"]) == {"doctor", "nurse"}


def test_recall_with_no_bootstrap_has_no_interval(facet):
    res = _run(facet, n_bootstrap=0)
    gaps = res.tables["recall_disparity"]
    assert len(gaps) and gaps["disparity_low"].isna().all()
    assert res.tables["recall"]["recall_pct_low"].isna().all()


def test_a_protocol_file_names_other_contrasts(facet, tmp_path):
    text = (Path(__file__).parents[1] / "src/vlbias/data/zeroshot/protocols/facet.yaml").read_text()
    text = text.replace("min_people: 10", "min_people: 3").replace(
        "gender_presentation: [[masc, fem]]", "gender_presentation: [[fem, masc]]"
    )
    text = text.replace("        skin_tone_group: [[lighter, darker], [lighter, medium], [medium, darker]]\n", "")
    (tmp_path / "mine.yaml").write_text(text)
    res = _run(facet, protocol=str(tmp_path / "mine.yaml"), n_bootstrap=0)
    gaps = res.tables["recall_disparity"]
    gender = gaps.query("grouping == 'gender_presentation'").set_index("class")
    assert gender.loc["doctor", "disparity"] == pytest.approx(-50.0)
    assert gender.loc["guard", "disparity"] == pytest.approx(-100.0)  # 0/3 - 4/4, now above min_people
    # skin tone without named contrasts: its highest group against its lowest (doctors: lighter 9/12, darker 3/12)
    skin = gaps.query("grouping == 'skin_tone_group'").set_index("class")
    assert tuple(skin.loc["doctor", ["contrast", "group_a", "group_b"]]) == ("max-min", "lighter", "darker")
    assert skin.loc["doctor", "disparity"] == pytest.approx(50.0)
    assert gaps.query("grouping == 'hair_color'").empty  # the fixture's people have no hair colour: no groups


def test_facet_on_a_real_model_with_a_broken_image(tmp_path):
    root = tmp_path / "FACET"
    people = [
        facet_person(1, "sa_1.jpg", "doctor", (0, 0, 20, 40), gender="masc"),
        facet_person(2, "sa_1.jpg", "nurse", (30, 0, 20, 40), gender="fem"),
        facet_person(3, "sa_2.jpg", "guard", (0, 0, 10, 10), gender="fem"),
    ]
    make_facet(root, people)
    (root / "imgs_2" / "sa_2.jpg").write_bytes(b"not a jpeg")
    model = load_model(f"hf:{tiny_hf_clip(tmp_path / 'clip')}", device="cpu")
    res = AUDIT.run(model, {"dataset": f"facet:{root}", "protocol": "facet", "n_bootstrap": 0, "skip_bad_images": True})
    img = res.tables["images"]
    assert list(img["identity"]) == ["1", "2"]
    assert res.skipped["item"].str.contains("sa_2.jpg@crop=0,0,10,10").any()
    # the two crops of sa_1.jpg are two images to the model
    assert img["p_doctor"].iloc[0] != img["p_doctor"].iloc[1]


def test_facet_runs_from_the_command_line(facet, tmp_path):
    out = tmp_path / "out"
    rc = main(["zeroshot", "-m", facet["spec"], "-d", f"facet:{facet['root']}", "-p", "facet", "--n-bootstrap", "50",
               "--out", str(out), "--no-plots"])  # fmt: skip
    assert rc == 0
    assert (out / "recall.parquet").is_file() and (out / "recall_disparity.csv").is_file()
    assert (out / "skipped.csv").is_file()


@pytest.mark.parametrize(
    "recall,error",
    [
        (True, None),
        ({"contrasts": {"g": [["a", "b"]]}, "min_people": 2}, None),
        ({"contrasts": {"g": [["a"]]}}, "pairs"),
        ({"min_people": 0}, "min_people"),
        ({"threshold": 2}, "mapping"),
    ],
)
def test_the_recall_entry_of_a_protocol_is_checked(recall, error):
    from vlbias.errors import StimulusError
    from vlbias.stimuli.zeroshot import parse_protocol

    task = {"classes": ["a", "b"], "templates": ["{c}"], "truth": "label", "recall": recall}
    if error is None:
        proto = parse_protocol({"name": "x", "tasks": [task]}, "test")
        assert proto.tasks[0].recall is not None and "recall" in proto.tasks[0].describe()
    else:
        with pytest.raises(StimulusError, match=error):
            parse_protocol({"name": "x", "tasks": [task]}, "test")
    with pytest.raises(StimulusError, match="needs 'truth'"):
        parse_protocol({"name": "x", "tasks": [{**task, "truth": None}]}, "test")
