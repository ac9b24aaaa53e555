"""The eat audit: agreement with the statistics on exact vectors, missing stimuli, the battery's 26 rows, the
valence variants and the audit contract."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.helpers import write_images
from vlbias.audits.base import AuditResult
from vlbias.audits.eat import AUDIT, EATOptions
from vlbias.audits.eat.run import plan_battery, resolve_images
from vlbias.audits.registry import get_audit
from vlbias.errors import MissingKeysError, StimulusError, VlbiasError
from vlbias.models import load_model
from vlbias.stats.eat import association, eat, sc_eat
from vlbias.stimuli.eat_tests import ORDERS, ImageSide, get_test

FAST = {"permutations": 500, "n_bootstrap": 0}


def write_vectors(path, keys, dim=16, seed=0, shift=None):
    """An .npz vectors file: random vectors, plus a planted direction for keys in ``shift``."""
    rng = np.random.default_rng(seed)
    vecs = rng.standard_normal((len(keys), dim)).astype(np.float32)
    for i, k in enumerate(keys):
        if shift and k in shift:
            vecs[i] += shift[k]
    np.savez(path, keys=np.array(keys), vectors=vecs)
    return f"vectors:{path}"


def seat_file(path, sets):
    obj = {k: {"category": c, "examples": ex} for k, (c, ex) in zip(("targ1", "targ2", "attr1", "attr2"), sets)}
    path.write_text(json.dumps(obj), encoding="utf-8")
    return path


@pytest.fixture
def small_test(tmp_path):
    X = [f"x{i} is here." for i in range(6)]
    Y = [f"y{i} is here." for i in range(5)]
    A = [f"a{i} is good." for i in range(4)]
    B = [f"b{i} is bad." for i in range(4)]
    f = seat_file(tmp_path / "small.json", [("Xs", X), ("Ys", Y), ("As", A), ("Bs", B)])
    e = np.eye(16, dtype=np.float32)
    shift = {**{k: 1.5 * e[0] for k in X + A}, **{k: 1.5 * e[1] for k in Y + B}}
    spec = write_vectors(tmp_path / "v.npz", X + Y + A + B, shift=shift)
    return f, spec, (X, Y, A, B)


def test_audit_agrees_with_the_statistics(small_test):
    f, spec, sets = small_test
    enc = load_model(spec)
    opts = {"test_files": [str(f)], "permutations": "exact", "n_bootstrap": 300, "seed": 5, "item_tests": True}
    res = AUDIT.run(enc, {**opts, "item_permutations": 50})
    row = res.results.iloc[0]
    vecs = [enc.encode_texts(s) for s in sets]
    direct = eat(*vecs, permutations="exact", n_bootstrap=300, seed=5)
    assert (row.status, row.test, row.order) == ("ok", "small", "all-text")
    assert (row.x_size, row.y_size, row.a_size, row.b_size) == (6, 5, 4, 4)
    assert row.effect_size == pytest.approx(direct.effect_size) and row.effect_size > 0.5
    assert row.p_value == direct.p_value and row.exact and row.n_permutations == 462
    assert (row.ci_low, row.ci_high) == (pytest.approx(direct.ci_low), pytest.approx(direct.ci_high))
    items = res.tables["items"]
    assert list(items["item"]) == sets[0] + sets[1] and set(items["role"]) == {"X", "Y"}
    np.testing.assert_allclose(items["association"], association(np.vstack(vecs[:2]), vecs[2], vecs[3]), rtol=1e-6)
    sc = sc_eat(vecs[1][2], vecs[2], vecs[3], permutations=50, seed=5, n_bootstrap=0)  # item y2 alone: exact (C(8,4))
    assert (items.iloc[8]["sc_effect_size"], items.iloc[8]["sc_p_value"]) == (pytest.approx(sc.effect_size), sc.p_value)
    assert res.skipped.empty and res.record.seed == 5
    assert res.record.stimuli[0]["name"] == "small"


def test_rows_of_equal_sizes_share_draws_and_keep_their_own_p_values(tmp_path):
    """Three sampled rows, two of them 12 v 12: the two share one set of drawn partitions, and every row's p-value,
    effect size and interval are the ones eat() gives for that row alone."""
    words = {r: [f"{r}{i} here." for i in range(12)] for r in ("x", "y", "u", "w", "p", "q")}
    A, B = [f"a{i} good." for i in range(5)], [f"b{i} bad." for i in range(6)]
    e = np.eye(16, dtype=np.float32)
    shift = {**{k: 2.0 * e[0] for k in words["x"] + words["u"] + A}, **{k: 2.0 * e[1] for k in B}}
    spec = write_vectors(tmp_path / "v.npz", sum(words.values(), []) + A + B, shift=shift)
    files = [
        seat_file(tmp_path / "one.json", [("X", words["x"]), ("Y", words["y"]), ("A", A), ("B", B)]),
        seat_file(tmp_path / "two.json", [("U", words["p"][:9]), ("V", words["q"]), ("A", A), ("B", B)]),
        seat_file(tmp_path / "three.json", [("U", words["u"]), ("W", words["w"]), ("A", A), ("B", B)]),
    ]
    enc = load_model(spec)
    opts = {"test_files": [str(f) for f in files], "permutations": 3000, "n_bootstrap": 100, "seed": 2}
    res = AUDIT.run(enc, opts).results
    assert list(res["x_size"]) == [12, 9, 12] and not res["exact"].any()
    for row, (xs, ys) in zip(res.itertuples(), [("x", "y"), ("p", "q"), ("u", "w")]):
        X = enc.encode_texts(words[xs][: row.x_size])
        alone = eat(X, enc.encode_texts(words[ys]), enc.encode_texts(A), enc.encode_texts(B), **opts_of(opts))
        assert (row.p_value, row.effect_size, row.ci_low, row.ci_high) == (
            alone.p_value,
            alone.effect_size,
            alone.ci_low,
            alone.ci_high,
        )
    assert res["p_value"].iloc[0] < 0.05 < res["p_value"].iloc[1]


def opts_of(opts):
    return {k: opts[k] for k in ("permutations", "n_bootstrap", "seed")}


def test_missing_texts_error_or_drop(tmp_path, small_test):
    f, _, (X, Y, A, B) = small_test
    spec = write_vectors(tmp_path / "partial.npz", X[2:] + Y + A + B)
    enc = load_model(spec)
    with pytest.raises(
        MissingKeysError, match=r"no vector for 2 text\(s\): 'x0 is here.', 'x1 is here.'.*--drop-missing"
    ):
        AUDIT.run(enc, {"test_files": [str(f)], **FAST})
    res = AUDIT.run(enc, {"test_files": [str(f)], "drop_missing": True, **FAST})
    row = res.results.iloc[0]
    assert row.status == "ok" and row.dropped == 2 and row.x_size == 4
    assert set(res.skipped["item"]) == {"x0 is here.", "x1 is here."}
    # dropping can leave a set too small: the row is reported, not run
    tiny = write_vectors(tmp_path / "tiny.npz", X[:1] + Y + A + B)
    res = AUDIT.run(load_model(tiny), {"test_files": [str(f)], "drop_missing": True, **FAST})
    row = res.results.iloc[0]
    assert row.status == "skipped" and "set X (Xs) has 1 item(s) left after dropping 5" in row.reason


def test_battery_has_26_rows_in_four_orders():
    rows = plan_battery("standard", EATOptions.parse(valence="default"))
    assert len(rows) == 26
    counts = pd.Series([r.order for r in rows]).value_counts().to_dict()
    assert counts == {"all-text": 8, "all-image": 5, "image-as-target": 5, "text-as-target": 8}
    assert [r.order for r in rows] == sorted((r.order for r in rows), key=ORDERS.index)
    text_rows = [r.test for r in rows if r.order == "all-text"]
    assert text_rows == [
        "sent-weat1",
        "sent-weat2",
        "sent-weat3",
        "sent-weat3b",
        "sent-weat4",
        "sent-gender-names-valence",
        "sent-gender-terms-valence",
        "sent-weat10",
    ]
    assert [r.test for r in rows if r.order == "text-as-target"] == text_rows
    # race has three text tests with the same attribute words: its image-as-target row is counted once
    iat = {r.concept: r for r in rows if r.order == "image-as-target"}
    assert list(iat) == ["flowers-insects", "instruments-weapons", "race", "gender", "age"]
    assert iat["race"].test == "sent-weat3" and iat["race"].sides["A"].texts == get_test("sent-weat3").A.texts
    assert iat["race"].sides["X"].name == "European-American faces"
    all_image = [r for r in rows if r.order == "all-image"]
    assert [r.test for r in all_image][0] == "ieat-flowers-insects"
    assert all(r.sides["A"].images.ref == "ieat/valence/pleasant" for r in all_image)
    with pytest.raises(VlbiasError, match="unknown battery"):
        plan_battery("huge", EATOptions.parse())
    with pytest.raises(VlbiasError, match="option valence='sunny': must be default or nrc-oasis"):
        EATOptions.parse(valence="sunny")


def _battery_texts() -> list[str]:
    return sorted(
        {
            t
            for r in plan_battery("standard", EATOptions.parse())
            for s in (r.sides or {}).values()
            if s.modality == "text"
            for t in s.texts
        }
    )


def test_battery_reports_missing_stimuli_and_text_only_models(tmp_path):
    spec = write_vectors(tmp_path / "battery.npz", _battery_texts(), dim=8)
    enc = load_model(spec)
    res = AUDIT.run(enc, {"stimuli_dir": str(tmp_path / "nothing"), **FAST})
    df = res.results
    assert len(df) == 26 and (df["status"] == "ok").sum() == 8
    assert set(df.loc[df.status == "ok", "order"]) == {"all-text"}
    skipped = df[df.status == "skipped"]
    assert skipped["reason"].str.contains("run `vlbias stimuli fetch ieat`|no public instrument images").all()
    assert len(res.skipped) == 18 and skipped[["effect_size", "p_value"]].isna().all().all()
    enc.modalities = ("text",)  # as a text-only model (st:, or an hf text encoder)
    res = AUDIT.run(enc, {"stimuli_dir": str(tmp_path / "nothing"), **FAST})
    reasons = res.results.loc[res.results.status == "skipped", "reason"]
    assert (reasons == f"{spec} is a text-only model").all() and len(reasons) == 18


def test_user_supplied_image_sets(tmp_path, image_dir):
    side = ImageSide(key="instruments", missing="not public")
    assert resolve_images(side, None, {}).reason == "not public"
    got = resolve_images(side, None, {"instruments": str(image_dir)})
    assert got.paths and all(p.parent == image_dir for p in got.paths) and got.reason == ""
    rel = resolve_images(ImageSide(ref=image_dir.name, root=image_dir.parent), None, {})
    assert len(rel.paths) == len(got.paths)
    with pytest.raises(StimulusError, match="image folder or manifest not found"):
        resolve_images(ImageSide(ref="nowhere", root=tmp_path), None, {})
    with pytest.raises(StimulusError, match="image not found"):
        resolve_images(ImageSide(files=("a.jpg",), root=tmp_path), None, {})
    with pytest.raises(StimulusError, match="not an iEAT set vlbias knows"):
        resolve_images(ImageSide(ref="ieat/cats/grumpy"), tmp_path, {})
    # or kept in the stimuli folder under its key (the instrument images no study released)
    (tmp_path / "instruments").symlink_to(image_dir, target_is_directory=True)
    kept = resolve_images(side, tmp_path, {})
    assert [p.name for p in kept.paths] == [p.name for p in got.paths] and kept.reason == ""
    fetched = resolve_images(ImageSide(ref="ieat/age/young"), tmp_path, {})
    assert fetched.paths is None and "iEAT images age/young not fetched" in fetched.reason
    own = resolve_images(ImageSide(ref="ieat/age/young"), tmp_path, {"ieat/age/young": str(image_dir)})
    assert own.paths == got.paths and own.expected is None  # a user's replacement is not checked against iEAT


def test_a_test_file_with_a_missing_image_folder_is_an_error(tmp_path, small_test):
    f, spec, _ = small_test
    (tmp_path / "img.yaml").write_text(
        "X: {name: a, texts: [x0 is here., x1 is here.], images: no-such-folder}\n"
        "Y: {name: b, texts: [y0 is here., y1 is here.], images: no-such-folder}\n"
        "A: {name: c, texts: [a0 is good., a1 is good.]}\nB: {name: d, texts: [b0 is bad., b1 is bad.]}\n",
        encoding="utf-8",
    )
    with pytest.raises(StimulusError, match="image folder or manifest not found: .*no-such-folder"):
        AUDIT.run(load_model(spec), {"test_files": [str(tmp_path / "img.yaml")], "orders": ["image-as-target"], **FAST})


def _nrc_file(path, header="Word\tValence\tArousal\tDominance"):
    lines = [header] + [f"w{i:02d}\t{i / 59:.3f}\t0.5\t0.5" for i in range(60)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _oasis_dir(tmp_path):
    folder = tmp_path / "oasis"
    images = folder / "Images"
    themes = [f"Theme {i}" for i in range(60)]
    paths = write_images(images, n=60, size=(24, 24))
    for p, t in zip(paths, themes):
        p.rename(images / f"{t}.jpg")
    rows = ["Theme,Category,Valence_mean"] + [f"{t},Object,{(i * 37) % 60 / 10:.2f}" for i, t in enumerate(themes)]
    (folder / "OASIS.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return folder


def test_nrc_oasis_valence_variant(tmp_path):
    nrc, oasis = _nrc_file(tmp_path / "NRC-VAD-Lexicon.txt"), _oasis_dir(tmp_path)
    rows = plan_battery("standard", EATOptions.parse(valence="nrc-oasis", nrc_vad=nrc, oasis=oasis))
    assert len(rows) == 26
    text_row = next(r for r in rows if r.order == "all-text")
    a, b = text_row.sides["A"].texts, text_row.sides["B"].texts
    assert len(a) == len(b) == 25 * 6 and a[0] == "This is the word w59." and b[0] == "This is the word w00."
    assert a[4] == "They are the word w59."
    img_row = next(r for r in rows if r.order == "text-as-target")
    files = img_row.sides["A"].images.files
    assert len(files) == 25 and files[0] == "Theme 47.jpg"  # (47 * 37) % 60 = 59: the highest Valence_mean
    # version 2 of the lexicon (lower-case header, scores in [-1, 1]) reads too
    v2 = _nrc_file(tmp_path / "v2.txt", header="term\tvalence\tarousal\tdominance")
    assert plan_battery("standard", EATOptions.parse(valence="nrc-oasis", nrc_vad=v2, oasis=oasis))
    with pytest.raises(VlbiasError, match="needs the NRC-VAD words"):
        EATOptions.parse(valence="nrc-oasis", nrc_vad=nrc)
    bad = tmp_path / "bad.txt"
    bad.write_text("Word\tValence\nhappy\tvery\n", encoding="utf-8")
    with pytest.raises(StimulusError, match="line 2 is not 'word<TAB>valence"):
        plan_battery("standard", EATOptions.parse(valence="nrc-oasis", nrc_vad=bad, oasis=oasis))
    (oasis / "Images" / "Theme 47.jpg").unlink()
    with pytest.raises(StimulusError, match="OASIS image\\(s\\) not found"):
        plan_battery("standard", EATOptions.parse(valence="nrc-oasis", nrc_vad=nrc, oasis=oasis))


def test_audit_contract(tmp_path, small_test):
    f, spec, _ = small_test
    assert get_audit("eat") is AUDIT and "text" in AUDIT.modalities
    assert all(f.spec.help for f in AUDIT.options.fields())
    with pytest.raises(VlbiasError, match="has no option 'colour'"):
        AUDIT.run(load_model(spec), {"colour": "red"})
    with pytest.raises(VlbiasError, match="'sideways' is not one of all-text"):
        AUDIT.run(load_model(spec), {"test_files": [str(f)], "orders": ["sideways"]})
    with pytest.raises(VlbiasError, match="permutations='lots': must be a whole number ≥ 1 or exact"):
        AUDIT.run(load_model(spec), {"test_files": [str(f)], "permutations": "lots"})
    for seed in (-1, 1.5, True, "x"):  # numpy refuses negative seeds: one line before any work, not a traceback
        with pytest.raises(VlbiasError, match=f"^eat option seed={seed!r}: must be a whole number ≥ 0$"):
            AUDIT.run(load_model(spec), {"test_files": [str(f)], "seed": seed})
    res = AUDIT.run(load_model(spec), {"test_files": [str(f)], "orders": ["all-text", "all-image"], **FAST})
    assert list(res.results["status"]) == ["ok", "skipped"]
    assert "has no image targets or image attributes" in res.results.iloc[1]["reason"]
    out = res.write(tmp_path / "out")
    back = AuditResult.read(out)
    stamped = back.tables["results"]
    for col in ("model", "model_identity", "audit", "vlbias_version", "config_hash", "seed", "effect_size"):
        assert col in stamped.columns
    assert (stamped["audit"] == "eat").all() and (stamped["model"] == spec).all()
    assert back.record.options["permutations"] == 500
    # exact is a bool (missing where the row did not run), here and read back
    for table in (res.results, stamped):
        assert table["exact"].dtype == "boolean"
        assert table["exact"].iloc[0] is np.True_ and table["exact"].isna().tolist() == [False, True]


# ---------------------------------------------------------------------------------------------- random-init null
def test_random_init_null_bounds_each_row_by_the_copies_of_its_architecture(tmp_path):
    """null_seeds: every row's d in random-init copies of the architecture (other seeds, the model's own left out)
    gives null_d_low/high, the smallest and largest of them, and beyond_null; the same as running each copy alone."""
    spec = "openclip:ViT-S-32-alt/random-2"
    enc = load_model(spec, device="cpu", cache=tmp_path / "cache")
    assert enc.random_copies(2) == ["openclip:ViT-S-32-alt/random-1", "openclip:ViT-S-32-alt/random-3"]
    opts = {"tests": ["weat7", "weat8"], "permutations": 200, "n_bootstrap": 50}
    res = AUDIT.run(enc, {**opts, "null_seeds": 2})
    rows = res.results.set_index("test")
    copies = [
        AUDIT.run(load_model(s, device="cpu", cache=tmp_path / "cache"), opts).results.set_index("test")
        for s in enc.random_copies(2)
    ]
    for test in ("weat7", "weat8"):
        d = [c.loc[test, "effect_size"] for c in copies]
        assert rows.loc[test, "null_d_low"] == pytest.approx(min(d), abs=1e-6)
        assert rows.loc[test, "null_d_high"] == pytest.approx(max(d), abs=1e-6)
        # alternative greater: beyond the largest magnitude of the copies' d
        assert rows.loc[test, "beyond_null"] == (rows.loc[test, "effect_size"] > max(abs(x) for x in d))
    assert res.results["beyond_null"].dtype == "boolean"
    assert [m["spec"] for m in res.record.resolved["null_models"]] == enc.random_copies(2)
    off = AUDIT.run(enc, opts).results
    assert off["null_d_low"].isna().all() and off["beyond_null"].isna().all()


def test_random_init_null_of_a_model_without_copies_is_a_note(tmp_path):
    path = write_vectors(tmp_path / "v.npz", ["a1", "a2", "b1", "b2", "x1", "x2", "y1", "y2"])
    test = tmp_path / "t.yaml"
    test.write_text(
        "X: {name: X, words: [x1, x2]}\nY: {name: Y, words: [y1, y2]}\nA: {name: A, words: [a1, a2]}\n"
        "B: {name: B, words: [b1, b2]}\n",
        encoding="utf-8",
    )
    res = AUDIT.run(load_model(path), {"test_files": [str(test)], "null_seeds": 3, **FAST})
    notes = dict(zip(res.skipped["item"], res.skipped["reason"]))
    assert notes["null_seeds"] == (
        f"{path} has no random-init copies (open_clip models only), so no row has a random-init null"
    )
    assert res.results["null_d_low"].isna().all()


def test_the_ghate2025_preset_plans_the_studys_rows(tmp_path):
    """Under the preset the battery's rows hold the study's stimuli: published SEAT targets (sent-weat2: 330
    instruments), its 25 + 25 NRC-VAD words in six templates, OASIS images tied in CSV order."""
    oasis = _oasis_dir(tmp_path)
    opts = EATOptions.parse(preset="ghate2025", oasis=oasis)
    rows = plan_battery("standard", opts)
    assert len(rows) == 26
    text = {r.test: r for r in rows if r.order == "all-text"}
    sizes = {t: tuple(len(r.sides[s].texts) for s in "XYAB") for t, r in text.items()}
    assert sizes == {
        "sent-weat1": (350, 350, 150, 150),
        "sent-weat2": (330, 330, 150, 150),
        "sent-weat3": (256, 256, 150, 150),
        "sent-weat3b": (195, 195, 150, 150),
        "sent-weat4": (128, 128, 150, 150),
        "sent-gender-names-valence": (64, 64, 150, 150),
        "sent-gender-terms-valence": (80, 80, 150, 150),
        "sent-weat10": (64, 64, 150, 150),
    }
    nrc = get_test("sent-weat11")
    assert all((r.sides["A"].texts, r.sides["B"].texts) == (nrc.A.texts, nrc.B.texts) for r in text.values())
    assert (text["sent-gender-names-valence"].sides["X"].texts, text["sent-gender-names-valence"].sides["Y"].texts) == (
        nrc.X.texts,
        nrc.Y.texts,
    )
    signs = {(r.concept, r.order): r.signs.get("ghate2025", 1) for r in rows}
    assert {k for k, v in signs.items() if v == -1} == {
        ("gender", o) for o in ("all-text", "all-image", "image-as-target", "text-as-target")
    }
    # vlbias's defaults: 350 instruments, each test's own words
    default = {r.test: r for r in plan_battery("standard", EATOptions.parse()) if r.order == "all-text"}
    assert len(default["sent-weat2"].sides["X"].texts) == 350 and len(default["sent-weat1"].sides["A"].texts) == 215
    assert (
        len(default["sent-gender-names-valence"].sides["A"].texts) == 40
    )  # WEAT 5's words, as the study's SEAT variant
    # the preset's OASIS tie rule: the study's stable sort (CSV order), not theme names
    csv = (oasis / "OASIS.csv").read_text().splitlines()
    (oasis / "OASIS.csv").write_text("\n".join(csv[:1] + [ln.rsplit(",", 1)[0] + ",5" for ln in csv[1:]]) + "\n")
    tied = plan_battery("standard", opts)
    files = next(r for r in tied if r.order == "text-as-target").sides["A"].images.files
    assert files == tuple(f"Theme {i}.jpg" for i in range(25))  # all tied: the first 25 rows
    by_theme = plan_battery("standard", opts.replace(oasis_ties="theme"))
    files = next(r for r in by_theme if r.order == "text-as-target").sides["A"].images.files
    assert files[:3] == ("Theme 0.jpg", "Theme 1.jpg", "Theme 10.jpg")


def test_ghate2025_nrc_words_and_their_record(tmp_path):
    oasis = _oasis_dir(tmp_path)
    opts = EATOptions.parse(valence="nrc-oasis", nrc_vad="ghate2025", oasis=oasis)
    from vlbias.audits.eat.run import plan

    rows, provenance = plan(opts)
    a = next(r for r in rows if r.order == "all-text").sides["A"].texts
    assert a == get_test("sent-weat11").A.texts and a[0] == "This is the word very positive."
    battery = next(p for p in provenance if p.get("kind") == "battery")
    assert battery["nrc_words"].startswith("ghate2025") and "nrc_vad_sha256" not in battery
    with pytest.raises(VlbiasError, match="nrc_vad='scm': must be a lexicon file or ghate2025"):
        EATOptions.parse(valence="nrc-oasis", nrc_vad="scm", oasis=oasis)
    # a preset's stimuli are needed only where the battery runs
    assert EATOptions.parse(preset="ghate2025", tests=["sent-weat11"]).oasis is None
    with pytest.raises(VlbiasError, match="needs the NRC-VAD words .* and the OASIS folder \\(OASIS.csv"):
        EATOptions.parse(preset="ghate2025")


def test_sign_convention_adds_the_studys_sign_beside_d(tmp_path, small_test):
    f, spec, sets = small_test
    body = yaml.safe_dump(
        {"reported_sign": {"ghate2025": -1}, **{r: {"name": r, "texts": list(t)} for r, t in zip("XYAB", sets)}}
    )
    (tmp_path / "gender.yaml").write_text(body, encoding="utf-8")
    enc = load_model(spec)
    files = [str(tmp_path / "gender.yaml"), str(f)]
    plain = AUDIT.run(enc, {"test_files": files, **FAST}).results
    assert "effect_size_reported" not in plain.columns and "reported_sign" not in plain.columns
    res = AUDIT.run(enc, {"test_files": files, "sign_convention": "ghate2025", **FAST}).results
    cols = list(res.columns)
    assert cols[cols.index("effect_size") + 1 : cols.index("effect_size") + 3] == [
        "reported_sign",
        "effect_size_reported",
    ]
    assert list(res["reported_sign"]) == [-1, 1]
    assert list(res["effect_size_reported"]) == [-res["effect_size"][0], res["effect_size"][1]]
    assert res["effect_size"].tolist() == plain["effect_size"].tolist()  # d itself is never flipped
    assert res["effect_size"][0] == res["effect_size"][1] > 0  # the same sets: the same d


def test_equal_sizes_skips_rows_with_unequal_targets(small_test):
    f, spec, _ = small_test  # |X| = 6, |Y| = 5
    res = AUDIT.run(load_model(spec), {"test_files": [str(f)], "equal_sizes": True, **FAST}).results
    assert res["status"].tolist() == ["skipped"]
    assert res["reason"][0].startswith("targets of unequal size (6 and 5); equal_sizes asks for |X| = |Y|")
    assert AUDIT.run(load_model(spec), {"test_files": [str(f)], **FAST}).results["status"].tolist() == ["ok"]


def test_the_legacy_sampler_through_the_audit(small_test):
    f, spec, sets = small_test
    enc = load_model(spec)
    opts = {"test_files": [str(f)], "n_bootstrap": 0, "permutations": 100, "seed": 82804230}
    res = AUDIT.run(enc, {**opts, "sampler": "ghate2025-legacy"}).results.iloc[0]
    X, Y, A, B = (enc.encode_texts(s) for s in sets)
    direct = eat(X, Y, A, B, permutations=100, seed=82804230, n_bootstrap=0, sampler="ghate2025-legacy")
    assert (res["p_value"], res["n_permutations"], bool(res["exact"])) == (direct.p_value, 100, False)
    assert direct.p_value != eat(X, Y, A, B, permutations=100, seed=82804230, n_bootstrap=0).p_value
    with pytest.raises(VlbiasError, match="sampler='ghate2025-legacy': is the study's one-sided test"):
        AUDIT.run(enc, {**opts, "sampler": "ghate2025-legacy", "alternative": "two-sided"})
    with pytest.raises(VlbiasError, match="seed=4294967296: the ghate2025-legacy sampler takes seeds below 2\\*\\*32"):
        AUDIT.run(enc, {**opts, "sampler": "ghate2025-legacy", "seed": 2**32})
