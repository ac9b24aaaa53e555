"""Test helpers: generated images, vectors files and a tiny Hugging Face CLIP model, all built offline."""

from __future__ import annotations

import json
import shutil
import struct
import sys
import sysconfig
from pathlib import Path

import numpy as np


def console_script() -> str:
    """The installed ``vlbias`` command of this interpreter's environment (found even when it is not activated)."""
    exe = Path(sysconfig.get_path("scripts")) / ("vlbias.exe" if sys.platform == "win32" else "vlbias")
    return str(exe) if exe.exists() else (shutil.which("vlbias") or "vlbias")


def random_image(seed: int, size=(64, 48), mode: str = "RGB"):
    from PIL import Image

    rng = np.random.default_rng(seed)
    w, h = size
    if mode == "L":
        return Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8), "L")
    arr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    # a smooth gradient plus noise, so resizing and JPEG behave like on photos
    arr = (arr // 4 + np.linspace(0, 190, w, dtype=np.uint8)[None, :, None]).astype(np.uint8)
    img = Image.fromarray(arr, "RGB")
    return img.convert(mode) if mode != "RGB" else img


def write_images(folder: Path, n: int = 6, size=(64, 48), fmt: str = "JPEG", prefix: str = "img") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    ext = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}[fmt]
    paths = []
    for i in range(n):
        p = folder / f"{prefix}{i:03d}.{ext}"
        random_image(i, size).save(p, fmt)
        paths.append(p)
    return paths


def write_w2v_text(path: Path, keys: list[str], vectors: np.ndarray, header: bool = True) -> None:
    lines = [f"{len(keys)} {vectors.shape[1]}"] if header else []
    lines += [k + " " + " ".join(f"{x:.8g}" for x in v) for k, v in zip(keys, vectors)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_w2v_binary(path: Path, keys: list[str], vectors: np.ndarray) -> None:
    with open(path, "wb") as f:
        f.write(f"{len(keys)} {vectors.shape[1]}\n".encode())
        for k, v in zip(keys, vectors):
            f.write(k.encode() + b" " + struct.pack(f"<{len(v)}f", *v) + b"\n")


def write_parquet_vectors(path: Path, keys: list[str], vectors: np.ndarray, **extra) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    cols = {"key": keys, "vector": [list(map(float, v)) for v in vectors], **extra}
    pq.write_table(pa.table(cols), path)


def tiny_hf_clip(folder: Path, seed: int = 0) -> Path:
    """A random-init transformers CLIPModel with a real CLIP tokenizer, saved as a model folder.

    The tokenizer files are made from open_clip's bundled BPE vocabulary (the same vocabulary OpenAI's CLIP and
    Hugging Face's CLIPTokenizer use), so no download is needed.
    """
    import open_clip
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    tok = open_clip.SimpleTokenizer()
    special = {49406: "<|startoftext|>", 49407: "<|endoftext|>"}
    vocab = {special.get(v, k): v for k, v in tok.encoder.items()}
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    merges = sorted(tok.bpe_ranks.items(), key=lambda kv: kv[1])
    (folder / "merges.txt").write_text(
        "#version: 0.2\n" + "\n".join(f"{a} {b}" for (a, b), _ in merges) + "\n", encoding="utf-8"
    )
    tokenizer = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))
    cfg = CLIPConfig(
        text_config=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2),
        vision_config=dict(
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=32,
            patch_size=8,
        ),
        projection_dim=32,
    )
    torch.manual_seed(seed)
    model = CLIPModel(cfg)
    processor = CLIPProcessor(
        image_processor=CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
        tokenizer=tokenizer,
    )
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder
