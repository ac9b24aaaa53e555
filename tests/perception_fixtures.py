"""Fixtures of the social-perception tests: a CausalFace tree in the release's naming (the package's demo writer),
and exact embeddings."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

# the CausalFace writer is the package's own (`vlbias demo causalface`); the tests import it from here too
from vlbias.datasets.demo import face_image, file_name, write_causalface  # noqa: F401


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
