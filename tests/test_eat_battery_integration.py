"""The whole battery end to end on the real iEAT stimuli with a random-init CLIP, and on a real text model.

The iEAT images are the real, messy files (JPEG in RGB, grayscale and CMYK; PNG in RGB, RGBA and palette mode;
WebP; 32x32 to 4000x3171 pixels). They are found as ``../shared/stimuli/ieat`` beside the checkout or through
``$VLBIAS_SHARED``; without them the image part skips.
"""

from __future__ import annotations

import shutil
from collections import Counter

import pytest

from tests.eat_fixtures import ieat_stimuli
from tests.helpers import tiny_hf_clip
from vlbias.audits.eat import AUDIT
from vlbias.models import load_model
from vlbias.stimuli import ieat

REAL = ieat_stimuli()
needs_ieat = pytest.mark.skipif(REAL is None, reason="the iEAT stimuli (../shared/stimuli/ieat) are not present")


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    """A random-init Hugging Face CLIPModel (2 layers, 32x32 images): the real hf: code path, fast on CPU."""
    folder = tiny_hf_clip(tmp_path_factory.mktemp("tinyclip"))
    return load_model(f"hf:{folder}", device="cpu", cache=tmp_path_factory.mktemp("cache"))


@needs_ieat
def test_the_whole_battery_on_the_real_stimuli(tiny_clip):
    res = AUDIT.run(tiny_clip, {"stimuli_dir": str(REAL), "permutations": 2000, "n_bootstrap": 100})
    df = res.results
    assert len(df) == 26
    assert Counter(df["order"]) == {"all-text": 8, "all-image": 5, "image-as-target": 5, "text-as-target": 8}
    skipped = df[df["status"] == "skipped"]
    assert list(skipped["concept"]) == ["instruments-weapons", "instruments-weapons"]
    assert set(skipped["order"]) == {"all-image", "image-as-target"}
    assert skipped["reason"].str.contains("instrument images").all()
    ok = df[df["status"] == "ok"]
    assert len(ok) == 24 and ok["effect_size"].notna().all() and ok["p_value"].between(0, 1).all()
    assert (ok["ci_low"] <= ok["effect_size"]).all() and (ok["effect_size"] <= ok["ci_high"]).all()
    # every image of every set was decoded and used: sizes are the manifest's
    per_set = Counter(e.path.rsplit("/", 1)[0] for e in ieat.manifest())
    img = ok[ok["order"] == "all-image"].set_index("concept")
    assert tuple(img.loc["flowers-insects", ["x_size", "y_size", "a_size", "b_size"]]) == (35, 35, 55, 55)
    assert tuple(img.loc["gender", ["x_size", "y_size"]]) == (per_set["gender/male"], per_set["gender/female"])
    assert tuple(img.loc["race", ["x_size", "y_size"]]) == (6, 6) and bool(img.loc["race", "exact"])
    assert (ok["dropped"] == 0).all() and len(res.skipped) == 2
    items = res.tables["items"]
    flowers = items[(items["test"] == "ieat-flowers-insects") & (items["role"] == "X")]
    assert len(flowers) == 35 and flowers["item"].str.startswith("insect-flower/flower/").all()
    assert res.record.stimuli[-1]["version"] == ieat.IEAT_COMMIT


@needs_ieat
def test_a_changed_stimulus_file_is_caught(tiny_clip, tmp_path):
    store = tmp_path / "stimuli"
    for rel in ("age/young", "age/old", "valence/pleasant", "valence/unpleasant"):
        shutil.copytree(REAL / "ieat" / rel, store / "ieat" / rel)
    victim = sorted((store / "ieat" / "age" / "old").iterdir())[0]
    from PIL import Image

    with Image.open(victim) as im:
        im.convert("RGB").resize((64, 64)).save(victim, "JPEG")
    res = AUDIT.run(tiny_clip, {"tests": [], "stimuli_dir": str(store), "orders": ["all-image"], "permutations": 100})
    age = res.results.set_index("concept").loc["age"]
    assert age["status"] == "skipped" and "does not match the iEAT manifest" in age["reason"]
    assert victim.name in age["reason"]


def test_real_text_model(minilm):
    """all-MiniLM-L6-v2 (real pretrained weights): flowers and instruments are strongly pleasant, as in every
    published WEAT/SEAT replication. (The README shows its eight battery text rows.)"""
    res = AUDIT.run(minilm, {"tests": ["weat1", "weat2"], "permutations": 5000, "n_bootstrap": 200})
    df = res.results.set_index("test")
    for name in ("weat1", "weat2"):
        assert df.loc[name, "status"] == "ok" and df.loc[name, "effect_size"] > 1 and df.loc[name, "p_value"] < 0.01
        assert df.loc[name, "ci_low"] > 0.5
