"""Small releases of SocialCounterfactuals, FACET, PATA and MMBias in each release's own layout, with generated
images (no real people), for the loader, audit and fidelity tests.

- SocialCounterfactuals: the Hugging Face release's Parquet shards (``data/train-000NN-of-000MM-<hash>.parquet``),
  one row per image-text pair, the image embedded as Hugging Face's Image struct ``{bytes, path}``, with the columns
  public loaders of the release read (caption, a1_type, a1, a2_type, a2, counterfactual_set, a1a2,
  dataset_segment).
- FACET: ``annotations/annotations.csv`` with the release's columns and ``imgs_1/``, ``imgs_2/`` of images.
- PATA: ``pata_fairness.files.lst`` (``<scene>_<race>_<gender>_<age>|<url>``), ``pata_fairness.captions.json``
  (scenes with pos/neg captions per attribute) and ``images/<line>.jpg``.
- MMBias: ``data/Images/<Category>/<Group>/<n>.jpg``, ``data/Images/Valence Images/{Pleasant,Unpleasant}/<n>.jpg``
  and ``data/textual_phrases.txt`` (JSON: pleasant_phrases, unpleasant_phrases, category_phrases).

Each builder returns what it wrote, so tests can compute expected values independently.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from tests.faces_fixtures import write_image
from tests.helpers import random_image

SC_RACES = ("Asian", "Black", "Indian", "Latino", "Middle Eastern", "White")
SC_GENDERS = ("man", "woman")
SC_PHYSICAL = ("obese", "old", "skinny", "tattooed", "young")
SC_PAIRS = {
    "race-gender": (("race", SC_RACES), ("gender", SC_GENDERS)),
    "physical-gender": (("physical", SC_PHYSICAL), ("gender", SC_GENDERS)),
    "physical-race": (("physical", SC_PHYSICAL), ("race", SC_RACES)),
}


def _png(seed: int, size=(8, 8)) -> bytes:
    buf = io.BytesIO()
    random_image(seed, size).save(buf, "PNG")
    return buf.getvalue()


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def sc_caption(a1: str, a2: str, subject: str) -> str:
    return f"A photo of {_article(a1)} {a1} {a2} {subject}"


def make_socialcounterfactuals(
    base: Path,
    *,
    sets: dict[str, dict[str, int]] | None = None,
    shards: int = 2,
    drop: tuple[tuple[str, str, str], ...] = (),
    no_bytes: tuple[tuple[str, str, str], ...] = (),
    bad_caption: tuple[tuple[str, str, str], ...] = (),
    broken: tuple[tuple[str, str, str], ...] = (),
    extra_race: str | None = None,
) -> dict:
    """A release under ``base``: ``sets`` maps attribute type -> subject -> number of counterfactual sets (default:
    race-gender chef 3, nurse 2; physical-gender chef 2; physical-race nurse 1). A set is every combination of its
    two attributes. ``drop``/``no_bytes``/``bad_caption``/``broken`` name (set, a1, a2) rows to leave out, write
    without image bytes, caption without a2, or give bytes that are no image; ``extra_race`` adds one race-gender row
    with that race label."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sets = sets or {
        "race-gender": {"chef": 3, "nurse": 2},
        "physical-gender": {"chef": 2},
        "physical-race": {"nurse": 1},
    }
    rows = []
    seed = 0
    for pair, subjects in sets.items():
        (t1, v1s), (t2, v2s) = SC_PAIRS[pair]
        for subject, n_sets in subjects.items():
            for s in range(n_sets):
                cset = f"{pair}_{subject}_{s}"
                for a1 in v1s:
                    for a2 in v2s:
                        key = (cset, a1, a2)
                        if key in drop:
                            continue
                        seed += 1
                        caption = sc_caption(a1, a2, subject)
                        if key in bad_caption:
                            caption = f"A photo of a {subject}"
                        data = None if key in no_bytes else _png(seed)
                        if key in broken:
                            data = b"\x89PNG\r\n\x1a\n" + b"not an image"
                        rows.append(
                            {
                                "image": {"bytes": data, "path": None},
                                "dataset_segment": pair,
                                "a1_type": t1,
                                "a2_type": t2,
                                "counterfactual_set": cset,
                                "caption": caption,
                                "a1": a1,
                                "a2": a2,
                                "a1a2": f"{a1}_{a2}",
                                "subject": subject,
                            }
                        )
    if extra_race:
        seed += 1
        rows.append(
            {
                "image": {"bytes": _png(seed), "path": None},
                "dataset_segment": "race-gender",
                "a1_type": "race",
                "a2_type": "gender",
                "counterfactual_set": "race-gender_chef_extra",
                "caption": sc_caption(extra_race, "man", "chef"),
                "a1": extra_race,
                "a2": "man",
                "a1a2": f"{extra_race}_man",
                "subject": "chef",
            }
        )
    data_dir = base / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    schema = pa.schema(
        [
            ("image", pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
            ("dataset_segment", pa.string()),
            ("a1_type", pa.string()),
            ("a2_type", pa.string()),
            ("counterfactual_set", pa.string()),
            ("caption", pa.string()),
            ("a1", pa.string()),
            ("a2", pa.string()),
            ("a1a2", pa.string()),
        ]
    )
    bounds = np.linspace(0, len(rows), shards + 1).astype(int)
    files = []
    for i in range(shards):
        part = rows[bounds[i] : bounds[i + 1]]
        cols = {name: [r[name] for r in part] for name in schema.names}
        path = data_dir / f"train-{i:05d}-of-{shards:05d}-{1000 + i:x}.parquet"
        pq.write_table(pa.table(cols, schema=schema), path, row_group_size=7)
        files.append(path)
    (base / "README.md").write_text("---\nlicense: mit\n---\n", encoding="utf-8")
    return {"root": base, "rows": rows, "files": files}


FACET_ATTRS = {
    "gender_presentation_": ("masc", "fem", "non_binary", "na"),
    "skin_tone_": tuple(str(i) for i in range(1, 11)) + ("na",),
    "age_presentation_": ("young", "middle", "older", "na"),
    "hair_color_": ("black", "blonde", "brown", "colored", "grey", "red", "na"),
    "hairtype_": ("bald", "coily", "curly", "dreadlocks", "straight", "wavy", "na"),
    "lighting_": ("underexposed", "dimly_lit", "well_lit", "overexposed", "na"),
}
FACET_FLAGS = ("has_facial_hair", "has_tattoo", "has_cap", "has_mask", "has_headscarf", "has_eyeware",
               "visible_torso", "visible_face", "visible_minimal")  # fmt: skip


def facet_person(
    pid: int,
    filename: str,
    class1: str,
    box: tuple[float, float, float, float],
    *,
    gender: str = "na",
    skin: dict[int, int] | None = None,
    age: str = "na",
    hair_color: str = "na",
    hairtype: str = "na",
    class2: str = "",
) -> dict:
    row = {"person_id": str(pid), "filename": filename, "class1": class1, "class2": class2,
           "bounding_box": json.dumps({"x": box[0], "y": box[1], "width": box[2], "height": box[3]})}  # fmt: skip
    for prefix, values in FACET_ATTRS.items():
        for v in values:
            row[prefix + v] = 0
    row[f"gender_presentation_{gender}"] = 1
    row[f"age_presentation_{age}"] = 1
    row[f"hair_color_{hair_color}"] = 1
    row[f"hairtype_{hairtype}"] = 1
    row["lighting_well_lit"] = 1
    for tone, votes in (skin or {}).items():
        row[f"skin_tone_{tone}"] = votes
    if not skin:
        row["skin_tone_na"] = 1
    for f in FACET_FLAGS:
        row[f] = 0
    return row


def make_facet(base: Path, people: list[dict], *, images: dict[str, tuple[int, int]] | None = None,
               skip_images: tuple[str, ...] = ()) -> dict:  # fmt: skip
    """A FACET folder: ``people`` (rows made by :func:`facet_person`) in annotations/annotations.csv, and every named
    image (``images``: file name -> size, default 64x48) in imgs_1/ or imgs_2/, except ``skip_images``."""
    names = list(dict.fromkeys(p["filename"] for p in people)) + [n for n in (images or {}) if n not in
                                                                    {p["filename"] for p in people}]  # fmt: skip
    for i, name in enumerate(names):
        if name in skip_images:
            continue
        size = (images or {}).get(name, (64, 48))
        write_image(base / ("imgs_1" if i % 2 == 0 else "imgs_2") / name, seed=100 + i, size=size)
    (base / "annotations").mkdir(parents=True, exist_ok=True)
    header = list(people[0])
    with open(base / "annotations" / "annotations.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=header)
        w.writeheader()
        w.writerows(people)
    return {"root": base, "people": people}


PATA_CAPTIONS = [
    {
        "long": "photo of {age}, {race} {gender} working in an office",
        "short": "office",
        "pos": {"races": ["photo of a successful person", "photo of a business person"],
                "gender": ["photo of a smart worker"], "age": ["photo of a millionaire"]},
        "neg": {"races": ["photo of a servant"], "gender": ["photo of an under-achiever"], "age": ["photo of a loser"]},
    },
    {
        "long": "photo of {{race}} {gender} shooting a gun at a range",
        "short": "gun_range",
        "pos": {"races": ["photo of an expert shooter"], "gender": ["photo of a sports shooter"], "age": []},
        "neg": {"races": ["photo of a gun-runner", "photo of a murderer"], "gender": [], "age": []},
    },
]  # fmt: skip


def make_pata(base: Path, lines: list[str], *, missing: tuple[int, ...] = (), name: str = "{i}.jpg",
              captions: list[dict] | None = None) -> dict:  # fmt: skip
    """A PATA folder: ``lines`` (``<scene>_<race>_<gender>_<age>``; a URL is added) in pata_fairness.files.lst, the
    captions file, and each line's image as ``images/<line>.jpg`` (``name``: its pattern) except ``missing``."""
    base.mkdir(parents=True, exist_ok=True)
    text = "".join(f"{label}|https://example.org/{i}.jpg\n" for i, label in enumerate(lines))
    (base / "pata_fairness.files.lst").write_text(text, encoding="utf-8")
    (base / "pata_fairness.captions.json").write_text(json.dumps(captions or PATA_CAPTIONS, indent=2), encoding="utf-8")
    for i, label in enumerate(lines):
        if i not in missing:
            write_image(base / "images" / name.format(i=i, label=label), seed=500 + i)
    return {"root": base, "lines": lines}


MMBIAS_CATEGORIES = {
    "Religion": ("Christian", "Muslim", "Jewish", "Hindu", "Buddhist"),
    "Nationality": ("American", "Arab", "Chinese", "Mexican"),
    "Disability": ("Non-Disabled", "Disability", "Mental"),
    "Sexual Orientation": ("Heterosexual", "LGBT"),
}


def make_mmbias(base: Path, *, per_group: int = 3, skip: tuple[str, ...] = (), phrases: dict | None = None) -> dict:
    """An MMBias folder as its zips unpack under ``data/Images``, with ``per_group`` images per group (``skip``:
    groups left out) and ``data/textual_phrases.txt``."""
    img = base / "data" / "Images"
    seed = 900
    for category, groups in MMBIAS_CATEGORIES.items():
        for group in groups:
            if group in skip:
                continue
            for i in range(1, per_group + 1):
                seed += 1
                write_image(img / category / group / f"{i}.jpg", seed=seed, size=(16, 16))
    for valence in ("Pleasant", "Unpleasant"):
        for i in range(1, per_group + 1):
            seed += 1
            write_image(img / "Valence Images" / valence / f"{i}.jpg", seed=seed, size=(16, 16))
    phrases = phrases or {
        "unpleasant_phrases": ["bad", "nasty", "evil"],
        "pleasant_phrases": ["good", "lovely", "kind"],
        "category_phrases": {
            "christian": ["church", "bible"], "muslim": ["mosque", "quran"], "jewish": ["synagogue", "torah"],
            "hindu": ["temple", "gita"], "buddhist": ["monk", "sutra"], "American": ["James", "Mary"],
            "Arab": ["Omar", "Layla"], "Chinese": ["wei", "ming"], "Mexican": ["Juan", "Sofia"],
            "French": ["Louis", "Anne"], "LGBT": ["gay", "queer"], "Heterosexual": ["straight", "hetero"],
            "disability": ["wheelchair", "paralyzed"], "mental disability": ["autism", "ADHD"],
            "No disability": ["healthy", "fit"],
        },
    }  # fmt: skip
    (base / "data" / "textual_phrases.txt").write_text(json.dumps(phrases), encoding="utf-8")
    return {"root": base, "phrases": phrases}
