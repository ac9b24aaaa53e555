"""Fixtures of the social-perception tests: a CausalFace tree in the release's naming, and exact embeddings."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

from vlbias.datasets.causalface import LEVELS

ABBR = {"age": "age", "lighting": "l", "pose": "y", "smiling": "smiling"}
SUFFIX = {"age": "_o2", "lighting": "", "pose": "", "smiling": "_o2_corrected"}
RACES = ("asian", "black", "white")
GENDERS = ("female", "male")


def level_text(attribute: str, level: float) -> str:
    """A level as the release's file names print it (Python's str of the study's lists)."""
    if attribute in ("age", "pose"):
        return str(float(level))
    return str(int(level)) if float(level).is_integer() else str(level)


def file_name(race: str, gender: str, attribute: str, level: float, suffix: str | None = None) -> str:
    suffix = SUFFIX[attribute] if suffix is None else suffix
    return f"{race}_{gender}_{ABBR[attribute]}_{level_text(attribute, level)}{suffix}.png"


def face_image(tag: str, size: int = 512):
    """A 512 x 512 picture that differs per file (a flat colour and a block; PNG keeps it small and fast)."""
    from PIL import Image, ImageDraw

    h = zlib.crc32(tag.encode())
    colour = (h & 255, (h >> 8) & 255, (h >> 16) & 255)
    img = Image.new("RGB", (size, size), colour)
    d = ImageDraw.Draw(img)
    x = (h >> 3) % (size // 2)
    d.rectangle([x, size // 4, x + size // 3, size // 2], fill=(255 - colour[0], 255 - colour[1], 128))
    return img


def write_causalface(
    root: Path,
    seeds=(101, 202, 303),
    levels: dict[str, tuple[float, ...]] | None = None,
    size: int = 512,
    uncorrected_smiling: bool = True,
    rm_bg: bool = False,
) -> Path:
    """A CausalFace folder: final_picked_<attribute>/seed_<n>/<race>_<gender>_<abbr>_<level><suffix>.png."""
    levels = levels or LEVELS
    for attribute, lv in levels.items():
        for seed in seeds:
            folder = root / f"final_picked_{attribute}" / f"seed_{seed}"
            folder.mkdir(parents=True, exist_ok=True)
            for race in RACES:
                for gender in GENDERS:
                    for level in lv:
                        name = file_name(race, gender, attribute, level)
                        face_image(f"{seed}/{name}", size).save(folder / name)
                        if attribute == "smiling" and uncorrected_smiling:
                            raw = file_name(race, gender, attribute, level, "_o2")
                            face_image(f"{seed}/{raw}", size).save(folder / raw)
                        if rm_bg:
                            bg = name.replace(".png", "_rm_bg.png")
                            if attribute == "lighting":
                                bg = bg.replace("_l_", "_lighting_").replace("_rm_bg", "_o2_rm_bg")
                            elif attribute == "pose":
                                bg = bg.replace("_rm_bg", "_o2_rm_bg")
                            face_image(f"{seed}/{bg}", size).save(folder / bg)
    return root


def write_npz(path: Path, keys: list[str], vectors: np.ndarray) -> Path:
    np.savez(path, keys=np.array(keys), vectors=np.asarray(vectors, dtype=np.float32))
    return path


# ---------------------------------------------------------------------------------------------------- embeddings

DIM = 24
CONTROL_AXES = {"white": 3, "black": 4, "asian": 5, "male": 6, "female": 7, "young": 8, "old": 9}


def axis(i: int) -> np.ndarray:
    v = np.zeros(DIM)
    v[i] = 1.0
    return v


def jitter(tag: str, scale: float) -> np.ndarray:
    """A small fixed vector in the last eight dimensions (word- or identity-specific)."""
    rng = np.random.default_rng(zlib.crc32(tag.encode()))
    v = np.zeros(DIM)
    v[16:] = rng.normal(size=8) * scale
    return v


def prompt_vector(word: str, template: int) -> np.ndarray:
    """Neutral prompts lie on axis 0, control words add their own axis, every lexicon word the 'social' axis 1."""
    base = axis(0) + 0.1 * axis(10 + template)
    if not word:
        return base
    if word in CONTROL_AXES:
        return base + axis(CONTROL_AXES[word])
    return base + axis(1) + jitter("word:" + word, 0.05)


def planted_vectors(path: Path, table, prompts, social) -> Path:
    """A vectors: file for every prompt and every image of ``table``: an image's projection on the social axis is
    0.3 + social(row), so ``social`` plants how the attributes move every scale score."""
    keys, vecs = [], []
    for wi, w in enumerate(prompts.words):
        for ti in range(prompts.n_templates):
            keys.append(prompts.prompts[wi * prompts.n_templates + ti])
            vecs.append(prompt_vector(w, ti))
    for row in table.itertuples():
        v = axis(0) + (0.3 + social(row)) * axis(1) + jitter(f"id:{row.identity}", 0.3)
        v = v + 0.5 * axis(CONTROL_AXES.get(row.race, 2)) + 0.5 * axis(CONTROL_AXES[row.gender])
        keys.append(row.key)
        vecs.append(v)
    uniq = dict(zip(keys, vecs))
    return write_npz(path, list(uniq), np.array(list(uniq.values())))
