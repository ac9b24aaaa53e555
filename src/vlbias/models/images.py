"""Image inputs: references, content keys, decoding and the parallel loading dataset.

An image to encode is a path, a PIL image, or an :class:`ImageRef` (a path plus a crop box applied before the
model's own preprocessing, as the CausalFace protocol needs). Its cache key is the sha256 of the file's bytes (of
the pixel data for an in-memory PIL image), with the crop appended, so the same picture under two names is encoded
once and an edited file is encoded again.

Decoding follows the published CLIP pipelines: ``PIL.Image.open`` then ``convert("RGB")`` (palette images with
transparency go through RGBA first, as Pillow recommends); no EXIF rotation is applied.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vlbias.errors import StimulusError
from vlbias.utils.io import sha256_file_memo

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".jfif", ".pgm", ".ppm"}
)
_IGNORED_NAMES = {"Thumbs.db", "desktop.ini"}


@dataclass(frozen=True)
class ImageRef:
    """An image file, optionally cropped to ``crop = (left, upper, right, lower)`` before preprocessing."""

    path: Path
    crop: tuple[int, int, int, int] | None = None

    @property
    def suffix_key(self) -> str:
        return "" if self.crop is None else "@crop=" + ",".join(str(int(c)) for c in self.crop)


ImageInput = str | os.PathLike | ImageRef | Any  # Any: a PIL.Image.Image


def as_ref(item: ImageInput) -> ImageRef | Any:
    if isinstance(item, ImageRef):
        return item
    if isinstance(item, (str, os.PathLike)):
        return ImageRef(Path(item))
    if hasattr(item, "mode") and hasattr(item, "tobytes"):
        return item  # PIL image
    raise StimulusError(f"cannot use {type(item).__name__} as an image; pass file paths or PIL images")


def pil_key(img) -> str:
    h = hashlib.sha256()
    h.update(f"{img.mode}:{img.size[0]}x{img.size[1]}:".encode())
    h.update(img.tobytes())
    return "pil:" + h.hexdigest()


def content_key(ref: ImageRef | Any) -> str:
    """The cache key of an image: sha256 of its bytes (+ crop). Raises FileNotFoundError/OSError. A file's hash is
    remembered in this process while the file is unchanged (:func:`~vlbias.utils.io.sha256_file_memo`)."""
    if isinstance(ref, ImageRef):
        return sha256_file_memo(ref.path) + ref.suffix_key
    return pil_key(ref)


_HASH_THREADS = 8
_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _hash_pool() -> ThreadPoolExecutor:
    """One pool of hashing threads per process, started on first use (not one per call)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=_HASH_THREADS, thread_name_prefix="vlbias-hash")
        return _POOL


def _forget_pool() -> None:
    global _POOL, _POOL_LOCK
    _POOL, _POOL_LOCK = None, threading.Lock()  # a forked child has none of its parent's threads


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def content_keys(refs: Sequence[ImageRef | Any]) -> list[str | Exception]:
    """Keys for many images, errors returned in place. Files hashed before in this process (and unchanged since)
    cost a ``stat``; when 16 or more must be read (or PIL images hashed) they go to the process's hashing threads
    (hashlib releases the GIL), fewer are hashed on the caller's thread."""

    def one(ref):
        try:
            return content_key(ref)
        except OSError as e:
            return e

    keys: list[str | Exception | None] = [None] * len(refs)
    todo = []
    for i, ref in enumerate(refs):
        if not isinstance(ref, ImageRef):
            todo.append(i)
            continue
        try:
            digest = sha256_file_memo(ref.path, compute=False)
        except OSError as e:
            keys[i] = e
            continue
        if digest is None:
            todo.append(i)
        else:
            keys[i] = digest + ref.suffix_key
    if len(todo) < 16:
        for i in todo:
            keys[i] = one(refs[i])
    else:
        for i, key in zip(todo, _hash_pool().map(one, [refs[i] for i in todo], chunksize=16)):
            keys[i] = key
    return keys  # type: ignore[return-value]


def to_rgb(img):
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode != "RGB":
        img = img.convert("RGB")
    return img


def open_image(ref: ImageRef | Any):
    """Decode an image fully into RGB, applying the crop; raises on any decoding problem."""
    from PIL import Image

    if isinstance(ref, ImageRef):
        with Image.open(ref.path) as im:
            im.load()
            img = to_rgb(im)
    else:
        img = to_rgb(ref)
    if isinstance(ref, ImageRef) and ref.crop is not None:
        img = img.crop(ref.crop)
    return img


def describe(ref: ImageRef | Any) -> str:
    if isinstance(ref, ImageRef):
        return str(ref.path) + (f" (crop {ref.crop})" if ref.crop else "")
    return f"<in-memory {getattr(ref, 'mode', '?')} image {getattr(ref, 'size', '')}>"


class ImageDataset:
    """Map-style dataset for a torch DataLoader: decode + preprocess in worker processes.

    Each item is ``(position, tensor_or_None, error_or_None)`` so one bad file does not kill the loader.
    """

    def __init__(self, refs: Sequence[ImageRef | Any], positions: Sequence[int], preprocess: Callable):
        self.refs = list(refs)
        self.positions = list(positions)
        self.preprocess = preprocess

    def __len__(self) -> int:
        return len(self.refs)

    def __getitem__(self, i: int):
        ref = self.refs[i]
        try:
            img = open_image(ref)
            return self.positions[i], self.preprocess(img), None
        except Exception as e:  # noqa: BLE001 - any decoder failure is a bad image, reported by name
            return self.positions[i], None, f"{type(e).__name__}: {e}".splitlines()[0][:300]


def collate(items):
    import torch

    good = [(p, t) for p, t, err in items if err is None]
    bad = [(p, err) for p, _, err in items if err is not None]
    if good:
        positions = [p for p, _ in good]
        batch = torch.stack([t for _, t in good])
    else:
        positions, batch = [], None
    return positions, batch, bad


def list_image_folder(folder: str | os.PathLike, recursive: bool = True) -> tuple[list[Path], list[Path]]:
    """Image files in a folder (sorted) and the other files found there (hidden files ignored)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise StimulusError(f"image folder not found: {folder}; check the path")
    images, others = [], []
    it: Iterable[Path] = folder.rglob("*") if recursive else folder.iterdir()
    for p in sorted(it):
        rel = p.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts) or p.name in _IGNORED_NAMES or not p.is_file():
            continue
        (images if p.suffix.lower() in IMAGE_EXTENSIONS else others).append(p)
    return images, others
