"""Image sources: a folder of images, or a CSV manifest that lists image paths.

Both resolve to an :class:`ImageSource`: the root the paths are relative to (the folder, or the manifest's
folder), the image paths in a stable order, and the files that are not images (which callers reject or skip).
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path

from vlbias.errors import StimulusError
from vlbias.models.images import list_image_folder
from vlbias.utils.io import check_columns

PATH_COLUMNS = ("path", "image", "file", "filepath", "filename", "image_path")


@dataclass
class ImageSource:
    root: Path
    paths: list[Path]
    non_images: list[Path] = field(default_factory=list)
    rows: list[dict[str, str]] | None = None  # manifest rows, aligned with paths

    def key(self, path: Path) -> str:
        """The path relative to the root, '/'-separated: the image key that vectors: files use."""
        try:
            return path.resolve().relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return path.as_posix()


def read_manifest(path: Path) -> ImageSource:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            check_columns(header, f"manifest {path}", StimulusError)
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise StimulusError(f"cannot read the manifest {path} ({e}); it must be a UTF-8 CSV file") from None
    col = next((c for c in header if c.strip().lower() in PATH_COLUMNS), None)
    if col is None:
        raise StimulusError(
            f"manifest {path} has no image path column; name one of its columns {' or '.join(PATH_COLUMNS[:3])}"
        )
    if not rows:
        raise StimulusError(f"manifest {path} lists no images")
    root = path.parent
    paths = []
    for i, row in enumerate(rows, 2):
        value = (row.get(col) or "").strip()
        if not value:
            raise StimulusError(f"manifest {path} line {i} has an empty {col!r}; give every row an image path")
        p = Path(value).expanduser()
        paths.append(p if p.is_absolute() else root / p)
    return ImageSource(root=root, paths=paths, rows=rows)


def image_source(path: str | os.PathLike) -> ImageSource:
    """A folder (searched recursively) or a .csv manifest."""
    p = Path(path).expanduser()
    if p.is_file() and p.suffix.lower() in (".csv", ".tsv"):
        return read_manifest(p)
    if p.is_dir():
        images, others = list_image_folder(p)
        if not images and not others:
            raise StimulusError(f"image folder {p} is empty; point to a folder with images")
        return ImageSource(root=p, paths=images, non_images=others)
    if p.exists():
        raise StimulusError(f"{p} is neither an image folder nor a .csv manifest")
    raise StimulusError(f"image folder or manifest not found: {p}; check the path")
