"""Small audits for the sweep tests, registered at run time (never shipped), and the fixtures they run on.

`textprobe` and `imageprobe` use the encoder for real (cosine similarities of texts, and of images to prompts), so
their results differ from model to model and are exactly reproducible; `imageprobe` takes a dataset (a manifest of
images, `manifest:PATH/faces.csv`) so the sweep crosses it with the config's datasets. A task can be made to kill its own
process (SIGKILL, as a scheduler or the OOM killer would) or to raise, through environment variables, to test
resumption and failure handling.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pandas as pd

from vlbias.audits.base import AuditResult, RunRecord
from vlbias.audits.registry import AuditSpec, register
from vlbias.datasets.spec import DatasetSpec
from vlbias.utils.options import Options, option

WORDS = ["a photo of a doctor", "a photo of a nurse", "a flower", "an insect", "a weapon"]
PROMPTS = ["a photo of a face", "a photo of a dog", "a drawing"]


class TextProbeOptions(Options):
    OWNER = "textprobe"
    words: tuple[str, ...] = option(tuple(WORDS), "texts to compare", split=False)
    seed: int = option(0, "seed", min=0)


class ImageProbeOptions(Options):
    OWNER = "imageprobe"
    dataset: DatasetSpec | None = option(None, "a manifest of images")


def _record(encoder, audit, options, stimuli):
    return RunRecord(
        audit=audit,
        model={"spec": str(encoder.spec), "identity": encoder.identity},
        options=options.to_dict(),
        seed=getattr(options, "seed", None),
        stimuli=stimuli,
    )


def _maybe_die(encoder, audit):
    """SWEEP_TEST_KILL=<spec>|<audit>|<marker file>: the first time that task runs, kill this process."""
    target = os.environ.get("SWEEP_TEST_KILL")
    if target:
        spec, name, marker = target.split("|")
        if str(encoder.spec) == spec and audit == name and not Path(marker).exists():
            Path(marker).write_text("killed")
            os.kill(os.getpid(), signal.SIGKILL)


def run_textprobe(encoder, options):
    _maybe_die(encoder, "textprobe")
    if str(encoder.spec) in os.environ.get("SWEEP_TEST_FAIL", "").split(","):
        raise RuntimeError(f"planted failure for {encoder.spec}")
    words = list(options.words)
    v = encoder.encode_texts(words)
    sims = v @ v.T
    rng = np.random.default_rng(options.seed)
    noise = rng.normal(size=len(words))  # seeded: the seed option reaches the audit
    rows = [
        {"test": words[i], "order": "text", "other": words[j], "effect_size": float(sims[i, j]) + 0 * noise[i]}
        for i in range(len(words))
        for j in range(len(words))
        if i < j
    ]
    norms = pd.DataFrame({"word": words, "dim": [v.shape[1]] * len(words), "first": v[:, 0].astype(float)})
    stimuli = [{"name": "probe-words", "version": "1", "sha256": "0" * 64}]
    return AuditResult(
        "textprobe", {"results": pd.DataFrame(rows), "norms": norms}, _record(encoder, "textprobe", options, stimuli)
    )


def run_imageprobe(encoder, options):
    _maybe_die(encoder, "imageprobe")
    dataset = options.dataset.load()
    folder = dataset.root
    paths = sorted(Path(p) for p in dataset.table["path"])
    img = encoder.encode_images(paths, root=folder)
    txt = encoder.encode_texts(PROMPTS)
    sims = img @ txt.T
    rows = [
        {"image": p.name, "prompt": t, "cosine": float(sims[i, j])}
        for i, p in enumerate(paths)
        for j, t in enumerate(PROMPTS)
    ]
    stimuli = [{"name": Path(folder).name, "version": "generated", "sha256": "1" * 64}]
    return AuditResult("imageprobe", {"results": pd.DataFrame(rows)}, _record(encoder, "imageprobe", options, stimuli))


TEXTPROBE = AuditSpec(
    name="textprobe",
    description="cosine similarities between probe texts (test-only)",
    options=TextProbeOptions,
    execute=run_textprobe,
    modalities=("text",),
)
IMAGEPROBE = AuditSpec(
    name="imageprobe",
    description="cosine similarities of images to prompts (test-only)",
    options=ImageProbeOptions,
    execute=run_imageprobe,
    modalities=("text", "image"),
)


def register_all() -> None:
    register(TEXTPROBE, replace=True)
    register(IMAGEPROBE, replace=True)


def write_stimuli(root: Path) -> dict[str, Path]:
    """Two image folders (each with a manifest, faces.csv) and a vectors: file that has every text and image the
    probes use."""
    from tests.helpers import write_images, write_parquet_vectors

    a = root / "faces_a"
    b = root / "faces_b"
    for folder, n, prefix in ((a, 3, "a"), (b, 2, "b")):
        write_images(folder, n=n, prefix=prefix)
        names = sorted(p.name for p in folder.glob("*.jpg"))
        (folder / "faces.csv").write_text("path\n" + "\n".join(names) + "\n")
    keys = WORDS + PROMPTS + [p.name for p in sorted(a.glob("*.jpg"))] + [p.name for p in sorted(b.glob("*.jpg"))]
    rng = np.random.default_rng(11)
    vectors = root / "vectors.parquet"
    write_parquet_vectors(vectors, keys, rng.normal(size=(len(keys), 16)).astype(np.float32))
    return {"a": a, "b": b, "vectors": vectors}
