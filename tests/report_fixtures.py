"""A small real sweep for the report tests: every real audit over random-init open_clip and `vectors:` models.

The zoo: random-init ViT-S-32-alt (the real open_clip code path), three `vectors:` models whose vectors hold every
text and image the audits use (random directions with a planted association that grows from model to model, so
the EAT effect sizes differ and the upstream analysis has something to fit; the last one lacks the CausalFace
images, so its perception task fails), and the packaged MiniLM (text only, so its image rows and image audits are
skipped, with the reasons). Audits: EAT on two small cross-modal tests (all
four orders), the zero-shot birhane2024 protocol on a CFD-layout folder, and perception on a CausalFace-layout
folder. A user catalogue gives the models their facts and a CSV their downstream accuracy, so `vlbias analyze` fits
the mixed model and the bias-vs-accuracy correlations.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from tests.faces_fixtures import make_cfd
from tests.helpers import write_images, write_parquet_vectors
from tests.perception_fixtures import write_causalface

OPENCLIP = "openclip:ViT-S-32-alt/random"
MINILM = "st:all-MiniLM-L6-v2"
N_VECTORS = 3
DIM = 32

#: two small cross-modal association tests (words and pictures on every side)
EAT_TESTS = {
    "mini-flowers": {
        "X": ("Flowers", ["rose", "tulip", "daisy", "lily", "orchid", "aster"]),
        "Y": ("Insects", ["ant", "wasp", "moth", "flea", "gnat", "tick"]),
        "A": ("Pleasant", ["love", "peace", "joy", "gift", "honest", "lucky"]),
        "B": ("Unpleasant", ["hatred", "war", "filth", "agony", "poison", "rotten"]),
    },
    "mini-tools": {
        "X": ("Instruments", ["guitar", "violin", "flute", "drum", "harp", "cello"]),
        "Y": ("Weapons", ["gun", "sword", "bomb", "rifle", "dagger", "spear"]),
        "A": ("Pleasant", ["love", "peace", "joy", "gift", "honest", "lucky"]),
        "B": ("Unpleasant", ["hatred", "war", "filth", "agony", "poison", "rotten"]),
    },
}


def _eat_files(root: Path) -> tuple[list[Path], list[str], list[Path]]:
    """The test files, every word, and every image file."""
    files, words, images = [], [], []
    seed = 0
    for name, sets in EAT_TESTS.items():
        test = {"title": f"{name} (report test)", "source": "vlbias tests", "form": "words"}
        for role, (set_name, set_words) in sets.items():
            folder = root / "eat_images" / name / role
            seed += 1
            images += write_images(folder, n=4, prefix=f"{name}-{role}-{seed}")
            test[role] = {"name": set_name, "words": set_words, "class": "noun", "images": str(folder)}
            words += set_words
        path = root / f"{name}.yaml"
        path.write_text(yaml.safe_dump(test, sort_keys=False), encoding="utf-8")
        files.append(path)
    return files, list(dict.fromkeys(words)), images


def _unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.normal(size=(n, DIM))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def write_vector_models(
    root: Path, texts: list[str], images: dict[str, list[str]], n: int = N_VECTORS, omit: dict[int, str] | None = None
) -> list[str]:
    """``n`` Parquet vectors files holding every text and image key; model k pulls the first target set and the
    first attribute set together by 0.25 k (words and pictures alike), so the models differ. ``omit`` leaves an
    image group out of a model (model -> group), so that model's audit of those images fails."""
    flower = {w for sets in EAT_TESTS.values() for w in sets["X"][1]}
    pleasant = {w for sets in EAT_TESTS.values() for w in sets["A"][1]}
    shared = _unit(np.random.default_rng(7), 1)[0]
    specs = []
    for k in range(n):
        rng = np.random.default_rng(100 + k)
        keys = list(texts)
        vecs = _unit(rng, len(texts))
        for i, t in enumerate(texts):
            if t in flower or t in pleasant:
                vecs[i] += 0.25 * k * shared
        for group, ks in images.items():
            if (omit or {}).get(k) == group:
                continue
            keys += ks
            img = _unit(rng, len(ks))
            if group in ("X", "A"):
                img += 0.25 * k * shared
            vecs = np.concatenate([vecs, img])
        path = root / f"model{k}.parquet"
        write_parquet_vectors(path, keys, vecs.astype(np.float32))
        specs.append(f"vectors:{path}")
    return specs


def build_sweep(root: Path, n_vectors: int = N_VECTORS, openclip: bool = True, minilm: bool = True) -> dict:
    """Write every input and the sweep config; returns what the tests need. The benchmark asks for more `vectors:`
    models and none of the others (``openclip``, ``minilm``); then no model lacks images."""
    from vlbias.datasets import load_dataset
    from vlbias.stimuli.perception import Vocabulary, load_control, load_lexicon, load_templates
    from vlbias.stimuli.zeroshot import load_protocol

    cfd = make_cfd(root / "cfd")["root"]
    levels = {"age": (0.8, 2.6, 4.4), "smiling": (-2.5, 0.0, 3.0), "pose": (0.0, 3.0), "lighting": (-1.0, 3.0)}
    causalface = write_causalface(root / "causalface", seeds=(101, 202), levels=levels, uncorrected_smiling=False)
    eat_files, words, eat_images = _eat_files(root)

    zs_prompts = [p for t in load_protocol("birhane2024").tasks for ps in t.prompts().values() for p in ps]
    vocab = Vocabulary([load_lexicon("scm"), load_lexicon("abc")], load_control(), load_templates(), "as-written")
    texts = list(dict.fromkeys(words + zs_prompts + vocab.prompt_set().unique_prompts()))
    images = {
        "cfd": load_dataset(f"cfd:{cfd}").table["key"].astype(str).tolist(),
        "causalface": load_dataset(f"causalface:{causalface}").table["key"].astype(str).tolist(),
    }
    for p in eat_images:
        images.setdefault(p.parent.name, []).append(str(p))
    omit = {n_vectors - 1: "causalface"} if openclip and minilm else None
    vectors = write_vector_models(root, texts, images, n=n_vectors, omit=omit)
    models = [OPENCLIP] * openclip + vectors + [MINILM] * minilm
    scored = [m for m in models if m != MINILM]

    facts = ["spec,architecture,architecture_family,n_params,pretraining_dataset,dataset_family,dataset_size"]
    for i, spec in enumerate(scored):  # sizes that grow and datasets that shrink, two families, two data sets
        data, family = ("big data", "vit") if i % 2 else ("small data", "resnet")
        facts.append(f"{spec},arch{i % 2},{family},{1e6 * 4**i:.0f},{data},laion,{8e7 / 4**i:.0f}")
    if minilm:
        facts.append(f"{MINILM},MiniLM-L6,text,22700000,sentence pairs,other,1000000000")
    (root / "facts.csv").write_text("\n".join(facts) + "\n", encoding="utf-8")
    acc = ["spec,average,imagenet1k"] + [
        f"{spec},{0.3 + 0.1 * i:.2f},{0.2 + 0.15 * i:.2f}" for i, spec in enumerate(scored)
    ]
    (root / "accuracy.csv").write_text("\n".join(acc) + "\n", encoding="utf-8")

    config = {
        "models": models,
        "catalogue": ["facts.csv"],
        "accuracy": "accuracy.csv",
        "audits": {
            "eat": {"test_files": [str(f) for f in eat_files], "permutations": 2000, "n_bootstrap": 200},
            "zeroshot": {"dataset": f"cfd:{cfd}", "n_bootstrap": 50},
            "perception": {
                "dataset": f"causalface:{causalface}",
                "analyses": ["factors", "regression", "curves"],
                "n_bootstrap": 20,
                "n_random_rankings": 20,
                "pairs": 40,
                "k": 30,
            },
        },
        "seed": 0,
        "encoder": {"device": "cpu", "cache_dir": str(root / "cache")},
    }
    path = root / "zoo.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return {"config": path, "out": root / "zoo", "models": models, "cfd": cfd, "causalface": causalface}
