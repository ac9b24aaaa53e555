"""A planted world for the mitigation tests: vectors in which the protected attribute is one known direction.

Dimension 0 (``G``) is gender: every female text or image has +1 along it, every male one -1, and nothing else does.
Dimension 1 (``SIGNAL``) is an attribute-independent signal (a person's "glasses"), +-1, drawn independently of
gender. The other dimensions are random content, independent of both. Prompt-set texts are content of the text with
its gender word replaced by one neutral token, plus the gender sign along G, so the definitional pairs differ
exactly along G.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from tests.faces_fixtures import write_image
from vlbias.mitigation.prompts import load_prompt_set

DIM = 24
G, SIGNAL = 0, 1
#: an association test with gender planted: career words lean male, family words female
CAREER = ["executive", "management", "professional", "salary", "office", "business"]
FAMILY = ["home", "parents", "children", "family", "cousins", "wedding"]
MALE = ["he", "him", "his", "man", "boy", "male"]
FEMALE = ["she", "her", "hers", "woman", "girl", "female"]


def _content(rng, n: int) -> np.ndarray:
    v = rng.standard_normal((n, DIM))
    v[:, [G, SIGNAL]] = 0.0
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def prompt_vectors(rng) -> dict[str, np.ndarray]:
    ps = load_prompt_set("gender")
    neutral = {w: "person" for row in ps.words for w in row}
    sign = {g: (1.0 if g == "female" else -1.0) for g in ps.groups}
    out: dict[str, np.ndarray] = {}
    content: dict[str, np.ndarray] = {}
    texts = [(t, g) for t, g in ps.attribute_prompts()]
    texts += [(t, g) for pair, _ in ps.concept_pairs() for t, g in zip(pair, ps.groups)]
    for text, group in texts:
        base = text
        for row in ps.words:
            for w in row:
                base = base.replace(f" {w} ", f" {neutral[w]} ").replace(f" {w}.", f" {neutral[w]}.")
        if base not in content:
            content[base] = _content(rng, 1)[0]
        v = content[base].copy()
        v[G] = sign[group]
        out[text] = v
    return out


def eat_vectors(rng, strength: float = 0.6) -> dict[str, np.ndarray]:
    out = {}
    for words, s in ((CAREER, -strength), (FAMILY, strength), (MALE, -1.0), (FEMALE, 1.0)):
        for w, v in zip(words, _content(rng, len(words))):
            v[G] = s
            out[w] = v
    return out


def people(n_people: int = 40, per_person: int = 2, seed: int = 3) -> list[dict]:
    """Manifest rows: person i is female when i is even; glasses drawn independently."""
    rng = np.random.default_rng(seed)
    glasses = rng.permutation(np.arange(n_people) % 2)
    rows = []
    for i in range(n_people):
        for j in range(per_person):
            rows.append({"path": f"img/p{i:02d}_{j}.png", "identity": f"p{i:02d}",
                         "gender": "female" if i % 2 == 0 else "male", "glasses": "yes" if glasses[i] else "no"})  # fmt: skip
    return rows


def image_vectors(rng, rows: list[dict]) -> dict[str, np.ndarray]:
    out = {}
    for r, v in zip(rows, _content(rng, len(rows))):
        v = 0.5 * v
        v[G] = 1.0 if r["gender"] == "female" else -1.0
        v[SIGNAL] = 1.0 if r["glasses"] == "yes" else -1.0
        out[r["path"]] = v
    return out


PROTOCOL = """name: planted
title: planted protocol (glasses is independent of gender; occupation leans on it)
scale: 100
tasks:
  - name: glasses
    classes: [glasses, no glasses]
    templates: ["{c}"]
    article: as-written
    truth: glasses
    truth_labels: {"yes": glasses, "no": no glasses}
    group_by: [[gender]]
  - name: occupation
    classes: [nurse, engineer]
    templates: ["{c}"]
    article: as-written
    group_by: [[gender]]
"""


def class_vectors(rng) -> dict[str, np.ndarray]:
    """The protocol's prompts: glasses purely along SIGNAL; nurse and engineer leaning female and male along G."""
    out = {}
    for text, g, s in (("glasses", 0, 1), ("no glasses", 0, -1), ("nurse", 0.7, 0), ("engineer", -0.7, 0)):
        v = 0.3 * _content(rng, 1)[0] if g else np.zeros(DIM)
        v[G], v[SIGNAL] = g, s
        out[text] = v
    return out


def planted_world(folder: Path, seed: int = 0, images: bool = True) -> dict:
    """Writes ``vectors.npz`` (prompts, EAT words, images), the EAT test, the zero-shot protocol and, with
    ``images``, a face manifest."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    vectors = {**prompt_vectors(rng), **eat_vectors(rng), **class_vectors(rng)}
    (folder / "protocol.yaml").write_text(PROTOCOL, encoding="utf-8")
    rows = people()
    if images:
        vectors.update(image_vectors(rng, rows))
        with open(folder / "faces.csv", "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
        for i, r in enumerate(rows):
            write_image(folder / r["path"], 7000 + i, size=(8, 8))
    keys = list(vectors)
    np.savez(
        folder / "vectors.npz", keys=np.array(keys), vectors=np.stack([vectors[k] for k in keys]).astype(np.float32)
    )
    test = folder / "planted.yaml"
    test.write_text(
        "title: planted gender test\n"
        + "".join(
            f"{r}:\n  name: {n}\n  words: [{', '.join(ws)}]\n"
            for r, n, ws in (
                ("X", "Career", CAREER),
                ("Y", "Family", FAMILY),
                ("A", "Male", MALE),
                ("B", "Female", FEMALE),
            )
        ),  # fmt: skip
        encoding="utf-8",
    )
    return {
        "model": f"vectors:{folder / 'vectors.npz'}",
        "dataset": f"manifest:{folder / 'faces.csv'}",
        "test": test,
        "protocol": folder / "protocol.yaml",
        "rows": rows,
        "vectors": vectors,
    }
