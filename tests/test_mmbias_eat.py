"""MMBias's association tests as rows of the EAT audit (``vlbias eat --battery mmbias --mmbias DIR``), read from a
release in its own layout (tests/benchmark_fixtures.py): the effect size checked against the WEAT/iEAT definition
computed here, a planted association recovered, and every row the release cannot feed reported with its reason."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.benchmark_fixtures import make_mmbias
from tests.helpers import write_parquet_vectors
from vlbias.audits.registry import get_audit
from vlbias.cli import main
from vlbias.errors import OptionError
from vlbias.models import load_model
from vlbias.models.images import list_image_folder

AUDIT = get_audit("eat")


def _vectors(release: dict, home: Path, name: str = "vectors.parquet") -> tuple[str, dict]:
    """Planted: Christian images and phrases near the pleasant side, Muslim ones near the unpleasant side."""
    ph = release["phrases"]
    rng = np.random.default_rng(8)
    eye = np.eye(12)
    pleasant, unpleasant = eye[0], eye[1]
    vec = {}
    for t in ph["pleasant_phrases"]:
        vec[t] = pleasant + rng.normal(scale=0.3, size=12)
    for t in ph["unpleasant_phrases"]:
        vec[t] = unpleasant + rng.normal(scale=0.3, size=12)
    for group, texts in ph["category_phrases"].items():
        lean = {"christian": pleasant, "muslim": unpleasant}.get(group, np.zeros(12))
        for t in texts:
            vec.setdefault(t, lean + rng.normal(scale=0.3, size=12))
    images, _ = list_image_folder(release["root"] / "data" / "Images")
    for p in images:
        lean = {"Christian": pleasant, "Muslim": unpleasant, "Pleasant": pleasant, "Unpleasant": unpleasant}
        vec[str(p)] = lean.get(p.parent.name, np.zeros(12)) + rng.normal(scale=0.3, size=12)
    write_parquet_vectors(home / name, list(vec), np.array(list(vec.values()), dtype=np.float32))
    return f"vectors:{home / name}", {k: v / np.linalg.norm(v) for k, v in vec.items()}


@pytest.fixture(scope="module")
def mmbias(tmp_path_factory):
    home = tmp_path_factory.mktemp("mmbias")
    release = make_mmbias(home / "MMBias", per_group=4, skip=("Mental",))
    spec, vec = _vectors(release, home)
    return {"root": release["root"], "spec": spec, "vec": vec, "phrases": release["phrases"]}


def _run(mmbias, **options):
    base = {"battery": "mmbias", "mmbias": str(mmbias["root"]), "permutations": "exact", "n_bootstrap": 100}
    return AUDIT.run(load_model(mmbias["spec"]), {**base, **options})


def _d(x, y, a, b) -> float:
    """WEAT/iEAT effect size from its definition (Caliskan et al. 2017; Steed & Caliskan 2021)."""

    def s(w):
        return np.mean([w @ v for v in a]) - np.mean([w @ v for v in b])

    sx, sy = [s(w) for w in x], [s(w) for w in y]
    return (np.mean(sx) - np.mean(sy)) / np.std(sx + sy, ddof=1)


def test_the_battery_has_every_test_in_every_order(mmbias):
    res = _run(mmbias)
    df = res.results
    assert len(df) == 10 * 4
    assert df.groupby("concept")["test"].nunique().to_dict() == {
        "religion": 4, "nationality": 3, "disability": 2, "sexual orientation": 1
    }  # fmt: skip
    assert set(df["order"]) == {"all-text", "all-image", "image-as-target", "text-as-target"}
    assert res.record.stimuli[0]["name"] == "mmbias" and res.record.stimuli[0]["phrases_sha256"]
    assert not any(e["name"] == "ieat" for e in res.record.stimuli)


def test_the_effect_size_is_the_definition_s_and_the_planted_bias_is_found(mmbias):
    res = _run(mmbias)
    df = res.results.set_index(["test", "order"])
    root, vec, ph = Path(mmbias["root"]) / "data" / "Images", mmbias["vec"], mmbias["phrases"]

    def images(*parts):
        return [vec[str(p)] for p in sorted((root.joinpath(*parts)).glob("*.jpg"))]

    def texts(key):
        return [vec[t] for t in (ph.get(key) or ph["category_phrases"][key])]

    x_img, y_img = images("Religion", "Christian"), images("Religion", "Muslim")
    a_img, b_img = images("Valence Images", "Pleasant"), images("Valence Images", "Unpleasant")
    x_txt, y_txt = texts("christian"), texts("muslim")
    a_txt, b_txt = texts("pleasant_phrases"), texts("unpleasant_phrases")
    cases = {
        "image-as-target": (x_img, y_img, a_txt, b_txt),
        "all-text": (x_txt, y_txt, a_txt, b_txt),
        "all-image": (x_img, y_img, a_img, b_img),
        "text-as-target": (x_txt, y_txt, a_img, b_img),
    }
    for order, sides in cases.items():
        row = df.loc[("mmbias-christian-muslim", order)]
        assert row["status"] == "ok"
        assert row["effect_size"] == pytest.approx(_d(*sides), abs=1e-5)
        assert row["effect_size"] > 1.0  # planted: Christian pleasant, Muslim not
        # exact permutation p-values: the smallest there is (1 of C(4, 2) = 6 partitions of two phrases a side; of
        # C(8, 4) = 70 of four images a side)
        assert row["p_value"] == pytest.approx(1 / 6 if len(sides[0]) == 2 else 1 / 70)
        assert (row["x_name"], row["y_name"], row["a_name"], row["b_name"]) == ("Christian", "Muslim", "Pleasant",
                                                                                "Unpleasant")  # fmt: skip


def test_a_group_the_release_lacks_is_reported_with_the_reason(mmbias, tmp_path):
    res = _run(mmbias)
    mental = res.results[res.results["test"] == "mmbias-nondisabled-mental"].set_index("order")
    for order in ("all-image", "image-as-target"):
        assert mental.loc[order, "status"] == "skipped"
        assert "no MMBias image folder named 'mental'" in mental.loc[order, "reason"]
    assert mental.loc["all-text", "status"] == "ok"
    assert res.skipped["item"].str.startswith("mmbias-nondisabled-mental").sum() == 2
    # the user supplies the folder: the rows run
    folder = tmp_path / "mental"
    folder.mkdir()
    for p in sorted((Path(mmbias["root"]) / "data" / "Images" / "Disability" / "Disability").glob("*.jpg")):
        (folder / p.name).write_bytes(p.read_bytes())
    vectors = tmp_path / "more.parquet"
    rng = np.random.default_rng(1)
    keys = list(mmbias["vec"]) + [str(p) for p in sorted(folder.glob("*.jpg"))]
    vecs = list(mmbias["vec"].values()) + [rng.normal(size=12) for _ in range(len(keys) - len(mmbias["vec"]))]
    write_parquet_vectors(vectors, keys, np.array(vecs, dtype=np.float32))
    res = AUDIT.run(load_model(f"vectors:{vectors}"), {"battery": "mmbias", "mmbias": str(mmbias["root"]),
                    "image_sets": {"mmbias/Mental disability": str(folder)}, "permutations": 100, "n_bootstrap": 0})  # fmt: skip
    mental = res.results[res.results["test"] == "mmbias-nondisabled-mental"].set_index("order")
    assert (mental["status"] == "ok").all() and mental.loc["all-image", "y_size"] == 4


def test_missing_phrases_skip_the_text_rows_with_the_reason(tmp_path):
    phrases = {"pleasant_phrases": ["good", "kind"], "unpleasant_phrases": ["bad", "evil"],
               "category_phrases": {"christian": ["church", "bible"]}}  # fmt: skip
    release = make_mmbias(tmp_path / "MMBias", per_group=2, phrases=phrases)
    spec, _ = _vectors(release, tmp_path)
    res = AUDIT.run(load_model(spec), {"battery": "mmbias", "mmbias": str(tmp_path / "MMBias" / "data"),
                                       "permutations": 100, "n_bootstrap": 0})  # fmt: skip
    row = res.results.set_index(["test", "order"]).loc[("mmbias-christian-muslim", "all-text")]
    assert row["status"] == "skipped" and "textual_phrases.txt has no phrases for 'muslim'" in row["reason"]
    assert res.results.set_index(["test", "order"]).loc[("mmbias-christian-muslim", "all-image"), "status"] == "ok"


def test_the_battery_needs_the_release(tmp_path):
    with pytest.raises(OptionError, match="needs the MMBias release folder"):
        AUDIT.parse_options({"battery": "mmbias"})
    from vlbias.errors import StimulusError

    with pytest.raises(StimulusError, match="holds no MMBias release"):
        AUDIT.run(load_model("st:all-MiniLM-L6-v2"), {"battery": "mmbias", "mmbias": str(tmp_path)})


def test_mmbias_from_the_command_line(mmbias, tmp_path):
    out = tmp_path / "out"
    assert main(["eat", "-m", mmbias["spec"], "--battery", "mmbias", "--mmbias", str(mmbias["root"]),
                 "--permutations", "200", "--n-bootstrap", "20", "--out", str(out)]) == 0  # fmt: skip
    assert (out / "results.csv").is_file() and (out / "skipped.csv").read_text().count("mmbias-nondisabled-mental") == 2
